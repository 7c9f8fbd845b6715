"""The annotators' repetition criterion over a cube of detections, and move labels in time."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
from numba import njit, prange

from isslide_cube import schema

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

log = logging.getLogger(__name__)


# ------------------------------------------------------------------ numba kernels
@njit(nogil=True, cache=True, parallel=True)
def _component_support(labels, hits, window):  # pragma: no cover - compiled
    """Number of start dates within +-window where each component has a hit.

    labels: (S, Y, X) int32 components of each start date (0 background);
    hits: (S, Y, X) bool detections (possibly dilated). Returns (S, Y, X) int32,
    the support of the component at each pixel (0 outside components).
    """
    n_s, n_y, n_x = labels.shape
    out = np.zeros((n_s, n_y, n_x), np.int32)
    for s in prange(n_s):
        n_lab = 0
        for y in range(n_y):
            for x in range(n_x):
                if labels[s, y, x] > n_lab:
                    n_lab = labels[s, y, x]
        if n_lab == 0:
            continue
        count = np.zeros(n_lab + 1, np.int32)
        stamp = np.full(n_lab + 1, -1, np.int64)
        for s2 in range(max(0, s - window), min(n_s, s + window + 1)):
            for y in range(n_y):
                for x in range(n_x):
                    lab = labels[s, y, x]
                    if lab > 0 and hits[s2, y, x] and stamp[lab] != s2:
                        stamp[lab] = s2
                        count[lab] += 1
        for y in range(n_y):
            for x in range(n_x):
                out[s, y, x] = count[labels[s, y, x]] if labels[s, y, x] > 0 else 0
    return out


@njit(nogil=True, cache=True, parallel=True)
def _pixel_support(hits, window):  # pragma: no cover - compiled
    """Number of start dates within +-window with a hit at the same pixel."""
    n_s, n_y, n_x = hits.shape
    out = np.zeros((n_s, n_y, n_x), np.int32)
    for y in prange(n_y):
        for s in range(n_s):
            for s2 in range(max(0, s - window), min(n_s, s + window + 1)):
                for x in range(n_x):
                    if hits[s2, y, x]:
                        out[s, y, x] += 1
    return out


# ----------------------------------------------------------- repetition filter
def _disk(radius: int) -> np.ndarray:
    yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    return yy ** 2 + xx ** 2 <= radius ** 2


def _repetition_block(det: np.ndarray, n_min: int, window: int, radius: int,
                      mode: str) -> np.ndarray:
    """numpy (S, Y, X) bool -> (S, Y, X) bool for one delay."""
    from scipy import ndimage

    det = np.ascontiguousarray(det, dtype=bool)
    hits = det
    if radius > 0:  # a repetition may sit a few pixels away (moves grow, noise shifts)
        hits = ndimage.binary_dilation(det, structure=_disk(radius)[None])
    if mode == "pixel":
        return det & (_pixel_support(np.ascontiguousarray(hits), window) >= n_min)
    labels = np.zeros(det.shape, np.int32)
    eight = np.ones((3, 3), bool)
    for s in range(det.shape[0]):
        labels[s] = ndimage.label(det[s], structure=eight)[0]
    return _component_support(labels, np.ascontiguousarray(hits), window) >= n_min


def repetition_filter(detections: xr.DataArray, n_min: int = 2, window: int = 1, *,
                      radius: int = 0, mode: str = "component",
                      threshold: float | None = None) -> xr.DataArray:
    """Keep the detections that repeat on neighbouring interferograms of the same delay.

    A detected connected component (8-connectivity) of the interferogram
    ``(s, d)`` is kept when at least ``n_min`` of the interferograms
    ``(s', d)``, ``|s' - s| <= window`` (itself included) have a detected pixel
    inside it (within ``radius`` pixels). ``mode="pixel"`` applies the same
    count to each pixel instead of each component. Interferograms that do not
    exist count as no detection, so near the ends of the series fewer
    neighbours can vote.

    Parameters
    ----------
    detections
        (start_date, delay, y, x): bool, 0/1 mask (255 = no interferogram
        counts as 0), or probabilities with ``threshold``.
    n_min
        Minimum number of interferograms showing it (1 keeps everything).
    window
        Half-width of the window along ``start_date`` (steps of the cube).
    radius
        Spatial tolerance in pixels.
    mode
        ``"component"`` (default) or ``"pixel"``.
    threshold
        Binarise float input with ``>= threshold``.

    Returns
    -------
    xr.DataArray
        bool, same dims and coords; lazy when the input is (parallel over
        ``delay``, each task holding one delay's full ``start_date x y x x``).

    Example
    -------
    >>> kept = repetition_filter(cube.mask == 1, n_min=3, window=2)  # doctest: +SKIP
    """
    import xarray as xr

    if mode not in ("component", "pixel"):
        raise ValueError(f"mode={mode!r}: use 'component' or 'pixel'")
    if n_min < 1 or window < 0 or radius < 0:
        raise ValueError(f"need n_min >= 1, window >= 0, radius >= 0 (got {n_min}, {window}, {radius})")
    missing = [d for d in (schema.START_DATE, "y", "x") if d not in detections.dims]
    if missing:
        raise ValueError(f"detections need dims start_date, y, x (missing {missing}); "
                         f"got {detections.dims}")
    det = detections
    if det.dtype == bool:
        pass
    elif np.issubdtype(det.dtype, np.floating):
        if threshold is None:
            raise ValueError("float detections need a threshold (e.g. threshold=0.5)")
        det = det >= threshold
    else:
        det = det == 1
    core = [schema.START_DATE, "y", "x"]
    if det.chunks is not None:
        det = det.chunk({d: -1 for d in core})
    out = xr.apply_ufunc(
        _apply_repetition, det, input_core_dims=[core], output_core_dims=[core],
        kwargs={"n_min": int(n_min), "window": int(window), "radius": int(radius), "mode": mode},
        dask="parallelized", output_dtypes=[bool],
    )
    out = out.transpose(*detections.dims)
    out.attrs.update(repetition_n_min=n_min, repetition_window=window, repetition_radius=radius,
                     repetition_mode=mode)
    return out.rename("detection")


def _apply_repetition(det: np.ndarray, **kw) -> np.ndarray:
    # apply_ufunc hands (..., S, Y, X); loop over the leading (delay) axes
    lead = det.shape[:-3]
    flat = det.reshape((-1,) + det.shape[-3:])
    out = np.stack([_repetition_block(b, **kw) for b in flat]) if flat.shape[0] else flat.copy()
    return out.reshape(lead + det.shape[-3:])


# ----------------------------------------------------------------- labelling
def label_moves(detections: xr.DataArray) -> xr.DataArray:
    """Give the detections of every interferogram the id of their move in time.

    The moves are the 8-connected components of the union of all detections
    (every start date and delay), so a move that grows, shrinks or pauses
    keeps one id.

    Returns
    -------
    xr.DataArray
        int32 (start_date, delay, y, x), 0 where nothing is detected.
    """
    import xarray as xr
    from scipy import ndimage

    det = detections if detections.dtype == bool else detections == 1
    union = det.any([d for d in det.dims if d not in ("y", "x")]).values
    labels, n = ndimage.label(union, structure=np.ones((3, 3), bool))
    log.info("label_moves: %d moves", n)
    ids = xr.DataArray(labels.astype(np.int32), dims=("y", "x"))
    return xr.where(det, ids, 0).astype(np.int32).transpose(*det.dims).rename(schema.MOVE_ID)
