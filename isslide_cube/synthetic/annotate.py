"""The synthetic annotator: polygons where a move is visible above the noise and coherent.

Rules (after the ISSLIDE annotation protocol, DESIGN.md section 1):

1. *visible*: the peak phase of the move exceeds ``max(PHASE_FLOOR, SNR_MIN * sigma)``,
   ``sigma`` the multilook phase noise std (Cramer-Rao bound) at the mean coherence of
   the footprint;
2. *coherent*: that mean coherence (true coherence including the fringe-gradient loss)
   is at least ``COHERENCE_MIN`` and at least half the footprint is usable (no layover,
   shadow, water or no data);
3. the outline follows the bubble down to ``max(PHASE_FLOOR / 2, 10 %)`` of its peak,
   restricted to coherent usable pixels;
4. *repetition*: a pattern is kept only if it shows on at least ``MIN_REPETITIONS``
   interferograms of the same delay; ``repetitions`` counts them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import rasterio.features
import shapely
from affine import Affine
from shapely.geometry import shape as to_shape

from isslide_cube.synthetic.noise import cramer_rao_std

PHASE_FLOOR = 0.6  # rad (2.6 mm of LOS motion): a fainter bubble drowns in atmosphere
SNR_MIN = 3.0
COHERENCE_MIN = 0.25
MIN_USABLE = 0.5
OUTLINE_COHERENCE = 0.2
MIN_REPETITIONS = 2
MIN_PIXELS = 6


@dataclass
class Annotation:
    """One polygon of one move on one interferogram (before the repetition count)."""

    pair: int
    delay: int
    move_id: int
    cls: str
    confidence: float
    geometry: object  # shapely (Multi)Polygon


def annotate_move(peak_phase: float, bump: np.ndarray, gamma: np.ndarray, usable: np.ndarray,
                  transform: Affine, looks: int, resolution: float) -> tuple[object, float] | None:
    """Outline of one move on one interferogram, or None when an annotator would not see it.

    Parameters
    ----------
    peak_phase
        |peak LOS displacement| * 4 pi / lambda (rad).
    bump
        Unit-peak displacement shape on the move's window.
    gamma
        True coherence on the window (with the fringe-gradient loss).
    usable
        Pixels of the window that are neither layover, shadow, water nor no data.
    transform
        Affine transform of the window.
    looks
        Number of looks (for the noise level).
    resolution
        Pixel size in degrees (for the simplification tolerance).

    Returns
    -------
    (geometry, confidence) or None
    """
    foot = bump > 0
    if not foot.any() or peak_phase <= 0:
        return None
    if usable[foot].mean() < MIN_USABLE:
        return None
    mean_gamma = float(gamma[foot & usable].mean()) if (foot & usable).any() else 0.0
    if mean_gamma < COHERENCE_MIN:
        return None
    sigma = float(cramer_rao_std(mean_gamma, looks))
    if peak_phase < max(PHASE_FLOOR, SNR_MIN * sigma):
        return None
    level = max(PHASE_FLOOR / 2, 0.1 * peak_phase)
    region = (bump * peak_phase >= level) & usable & (gamma >= OUTLINE_COHERENCE)
    if region.sum() < MIN_PIXELS:
        return None
    polys = [to_shape(geom) for geom, val in
             rasterio.features.shapes(region.astype("uint8"), mask=region, transform=transform)
             if val == 1]
    geom = shapely.union_all(polys).simplify(0.5 * resolution, preserve_topology=True)
    geom = _drop_specks(geom, MIN_PIXELS * resolution**2)
    if geom.is_empty:
        return None
    snr = peak_phase / max(sigma, 1e-6)
    confidence = float(np.clip((1 - np.exp(-snr / 6)) * min(1.0, mean_gamma / 0.6), 0.05, 1.0))
    return geom, round(confidence, 2)


def _drop_specks(geom: object, min_area: float) -> object:
    parts = [g for g in getattr(geom, "geoms", [geom]) if g.area >= min_area]
    return shapely.union_all(parts) if parts else shapely.Polygon()


def count_repetitions(annotations: list[Annotation]) -> dict[tuple[int, int], int]:
    """(move_id, delay) -> number of interferograms of that delay showing the move."""
    counts: dict[tuple[int, int], int] = {}
    for a in annotations:
        counts[(a.move_id, a.delay)] = counts.get((a.move_id, a.delay), 0) + 1
    return counts
