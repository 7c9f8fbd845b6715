"""Following moves in time: the annotators' repetition criterion and per-move time series.

Two tools over a cube of detections (``start_date x delay x y x x``):

* :func:`repetition_filter` keeps a detection only if it repeats on at least
  ``n_min`` interferograms of the same delay whose start dates lie within
  ``window`` steps of its own (itself included), as the ISSLIDE annotators did.
* :func:`move_time_series` tabulates each move (``move_id`` or a predicted
  connected component) over ``start_date x delay``: area, mean coherence, mean
  phase relative to a stable ring around it, line-of-sight velocity (with the
  fringe ambiguity flagged), and the Hausdorff distance between successive
  outlines (``isslide_cube.kernels.hausdorff_distance``).

Velocity convention (the one of the synthetic generator): a LOS velocity ``v``
(m/yr, positive = range increase, away from the sensor) over a delay of ``d`` days
makes a phase ``4 pi / lambda * v * d / 365.25``. One fringe (2 pi) is ``lambda / 2``
of motion; beyond half a fringe (phase pi) the wrapped phase is ambiguous. The
synthetic truth (``truth/moves.csv``) holds each move's *peak* LOS velocity (the
centre of its displacement bump), so the estimate is taken on the deepest pixels of
the outline, against a ring of stable ground a few pixels beyond it.

Example
-------
>>> det = open_cube("cube.zarr").mask == 1                      # doctest: +SKIP
>>> kept = repetition_filter(det, n_min=2, window=1)           # doctest: +SKIP
>>> table = move_time_series(open_cube("cube.zarr"))           # doctest: +SKIP
"""

from isslide_cube.tracking._repetition import label_moves, repetition_filter
from isslide_cube.tracking._series import (
    DAYS_PER_YEAR,
    EARTH_RADIUS_M,
    move_time_series,
    outline_changes,
    pixel_area_m2,
    velocity_from_phase,
)
from isslide_cube.tracking._truth import compare_with_truth, truth_ambiguous

__all__ = ["DAYS_PER_YEAR", "EARTH_RADIUS_M", "compare_with_truth", "label_moves",
           "move_time_series", "outline_changes", "pixel_area_m2", "repetition_filter",
           "truth_ambiguous", "velocity_from_phase"]
