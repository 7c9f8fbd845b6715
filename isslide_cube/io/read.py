"""Read one interferogram as float32 ``[coherence, phase]``, optionally one window, optionally reprojected."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.windows import Window

from isslide_cube.io.discover import GDAL_READ_ENV
from isslide_cube.io.grid import Grid, check_window, grid_of
from isslide_cube.io.sources import InterferogramSource
from isslide_cube.schema import BANDS, RawDataError

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

log = logging.getLogger(__name__)

_PI32_BELOW = np.nextafter(np.float32(np.pi), np.float32(0))  # largest float32 < pi
# Coherence a hair outside [0, 1] is float rounding in the exporter, not bad data.
COHERENCE_TOLERANCE = 1e-5


def wrap_phase(phase: np.ndarray) -> np.ndarray:
    """Wrap phase (radians) to [-pi, pi), as float32; NaN stays NaN.

    Computed in float64, then cast; values that round to +-pi in float32 become
    the float32 just above -pi, so every result ``v`` obeys ``-pi <= v < pi``
    in float64 too. Already-wrapped float32 phase strictly inside (-pi, pi) is
    returned unchanged, bit for bit.

    Examples
    --------
    >>> wrap_phase(np.array([0.5, 2 * np.pi + 0.5, -np.pi, np.pi, np.nan])).round(4)
    array([ 0.5   ,  0.5   , -3.1416, -3.1416,     nan], dtype=float32)
    """
    p = np.asarray(phase, dtype=np.float64)
    out = (np.mod(p + np.pi, 2 * np.pi) - np.pi).astype(np.float32)
    out[np.abs(out) > _PI32_BELOW] = -_PI32_BELOW
    return out


def _read_band(path: Path, band: int, window: Window | None) -> tuple[np.ndarray, rasterio.Affine,
                                                                       rasterio.crs.CRS]:
    """(float64 array, transform of the window, CRS); corrupt files become RawDataError."""
    try:
        with rasterio.Env(**GDAL_READ_ENV), rasterio.open(path) as src:
            data = src.read(band, window=window, out_dtype="float64")
            transform = src.transform if window is None else src.window_transform(window)
            return data, transform, src.crs
    except rasterio.errors.RasterioError as err:
        raise RawDataError(f"{path}: band {band} cannot be read, the file is truncated or "
                           f"corrupt ({err}); re-export or re-download it") from err


def _to_nan(data: np.ndarray, nodata: float | None) -> np.ndarray:
    if nodata is not None:
        data[data == nodata] = np.nan
    return data


def _source_window(path: Path, target: Grid, margin: int = 2) -> Window | None:
    """The window of ``path`` that covers ``target`` (plus a margin for resampling), or None."""
    from rasterio.warp import transform_bounds

    with rasterio.Env(**GDAL_READ_ENV), rasterio.open(path) as src:
        bounds = transform_bounds(target.crs, src.crs, *target.bounds, densify_pts=21)
        win = rasterio.windows.from_bounds(*bounds, transform=src.transform)
        win = win.round_offsets("floor").round_lengths("ceil")
        col0, row0 = int(win.col_off) - margin, int(win.row_off) - margin
        col1 = int(win.col_off + win.width) + margin
        row1 = int(win.row_off + win.height) + margin
        col0, row0 = max(col0, 0), max(row0, 0)
        col1, row1 = min(col1, src.width), min(row1, src.height)
    if col1 <= col0 or row1 <= row0:
        return None
    return Window(col0, row0, col1 - col0, row1 - row0)


def _reproject(arrays: np.ndarray, transform: rasterio.Affine, crs: rasterio.crs.CRS,
               target: Grid) -> np.ndarray:
    """Bilinear reprojection of (k, h, w) float arrays (NaN nodata) onto ``target`` with rioxarray."""
    import rioxarray  # noqa: F401  (registers .rio)
    import xarray as xr

    k, h, w = arrays.shape
    src_grid = Grid(crs, transform, w, h)
    da = xr.DataArray(arrays, dims=("band", "y", "x"),
                      coords={"band": np.arange(k), "y": src_grid.y, "x": src_grid.x})
    da = da.rio.write_crs(crs).rio.write_transform(transform).rio.write_nodata(np.nan)
    out = da.rio.reproject(target.crs, shape=target.shape, transform=target.transform,
                           resampling=Resampling.bilinear, nodata=np.nan)
    return np.asarray(out.values, dtype=np.float64)


def _read_aligned(path: Path, bands: list[tuple[int, float | None]], target: Grid,
                  cyclic: bool) -> np.ndarray:
    """Bands of ``path`` reprojected onto ``target``; phase (``cyclic``) goes through cos/sin."""
    win = _source_window(path, target)
    if win is None:  # the file does not reach the target window
        return np.full((len(bands), *target.shape), np.nan)
    layers, transform, crs = [], None, None
    for band, nodata in bands:
        data, transform, crs = _read_band(path, band, win)
        layers.append(_to_nan(data, nodata))
    if cyclic:
        phase = layers[0]
        out = _reproject(np.stack([np.cos(phase), np.sin(phase)]), transform, crs, target)
        return np.arctan2(out[1], out[0])[None]
    return _reproject(np.stack(layers), transform, crs, target)


def read_interferogram(item: InterferogramSource, grid: Grid | None = None, *,
                       window: Window | None = None, align: bool = False,
                       validate_values: bool = False) -> np.ndarray:
    """Coherence and phase of one interferogram, as float32 ``(2, H, W)`` in ``schema.BANDS`` order.

    - phase in radians, wrapped to [-pi, pi) (unwrapped phase is wrapped here);
    - coherence scaled to [0, 1] (8-bit coherence times 1/255); NaN when the
      interferogram has no coherence file;
    - NaN where a file holds its nodata value or NaN: where the phase is
      nodata both bands are NaN (PyRate's nodata 0, for instance), where only
      the coherence is, only the coherence;
    - on ``grid``: the files' own grid must be ``grid`` unless ``align``; with
      ``align`` a file on another grid (CRS, resolution, extent) is
      reprojected onto ``grid`` by rioxarray (bilinear; phase through its
      cosine and sine so that it is not smeared across the +-pi jump).

    Parameters
    ----------
    item
        From :func:`isslide_cube.io.discover`.
    grid
        The target grid (from :func:`isslide_cube.io.check_grids`); ``None``:
        the phase file's own grid.
    window
        Read only this ``rasterio.windows.Window`` of ``grid`` (integer
        offsets, inside the grid): what a cube chunk needs. ``None``: all.
    align
        Reproject files that are not on ``grid``.
    validate_values
        Check the values: coherence in [0, 1], and a phase that the inputs call
        wrapped within [-pi, pi] (else it was probably unwrapped).

    Returns
    -------
    numpy.ndarray
        float32, shape ``(2, window.height, window.width)`` (or the grid's).

    Raises
    ------
    RawDataError
        A file on another grid without ``align``; a truncated or corrupt file;
        with ``validate_values``, values out of range. The message names the file.

    Examples
    --------
    >>> from isslide_cube.io import discover, check_grids, read_interferogram
    >>> inv = discover("/work/shared/fixtures/pyrate_cropA")  # doctest: +SKIP
    >>> grid = check_grids(inv.items)  # doctest: +SKIP
    >>> read_interferogram(inv.items[0], grid, window=Window(0, 0, 50, 30)).shape  # doctest: +SKIP
    (2, 30, 50)
    """
    if grid is None:
        grid = grid_of(item.phase_path)
    if window is not None:
        check_window(window, grid)
    target = grid if window is None else grid.window_grid(window)
    pieces = {}
    for kind, path, band, nodata in (
            ("phase", item.phase_path, item.phase_band, item.phase_nodata),
            ("coherence", item.coherence_path, item.coherence_band, item.coherence_nodata)):
        if path is None:
            continue
        own = grid_of(path)
        diff = grid.differences(own)
        if not diff:
            pieces[kind] = _to_nan(_read_band(path, band, window)[0], nodata)
        elif align:
            pieces[kind] = _read_aligned(path, [(band, nodata)], target, kind == "phase")[0]
        else:
            raise RawDataError(f"{path}: not on the reference grid ({'; '.join(diff)}); "
                               "reproject it with `isslide-cube build --align` (align=True)")
    phase = pieces["phase"]
    if validate_values and not item.phase_unwrapped:
        worst = np.nanmax(np.abs(phase), initial=0.0)
        if worst > np.pi + 1e-5:
            raise RawDataError(
                f"{item.phase_path}: wrapped phase reaches {worst:.3g} rad, beyond pi; if it is "
                "unwrapped, put 'unw' in its name, set the tag PHASE_UNWRAPPED=1, or give the "
                "role unwrapped_phase in a manifest")
    out = np.empty((2, *target.shape), dtype=np.float32)
    out[BANDS.index("phase")] = wrap_phase(phase)
    if "coherence" in pieces:
        coh = pieces["coherence"] * item.coherence_scale
        if validate_values:
            bad = np.isfinite(coh) & ((coh < -COHERENCE_TOLERANCE) | (coh > 1 + COHERENCE_TOLERANCE))
            if bad.any():
                raise RawDataError(
                    f"{item.coherence_path}: coherence outside [0, 1] (min {np.nanmin(coh):.4g}, "
                    f"max {np.nanmax(coh):.4g}, {int(bad.sum())} pixel(s)); give the coherence "
                    "file (not amplitude or phase), scaled to 0..1")
        out[BANDS.index("coherence")] = coh
    else:
        out[BANDS.index("coherence")] = np.nan
    out[:, np.isnan(phase)] = np.nan
    return out


def open_interferogram(item: InterferogramSource, grid: Grid | None = None, *,
                       align: bool = False, validate_values: bool = False) -> xr.DataArray:
    """:func:`read_interferogram` as an ``xarray.DataArray`` (band, y, x) with coordinates and CRS.

    Examples
    --------
    >>> da = open_interferogram(item)  # doctest: +SKIP
    >>> da.sel(band="phase").plot(cmap="twilight")  # doctest: +SKIP
    """
    import rioxarray  # noqa: F401
    import xarray as xr

    grid = grid_of(item.phase_path) if grid is None else grid
    data = read_interferogram(item, grid, align=align, validate_values=validate_values)
    da = xr.DataArray(data, dims=("band", "y", "x"),
                      coords={"band": list(BANDS), "y": grid.y, "x": grid.x},
                      name="interferogram",
                      attrs={"first_date": f"{item.first:%Y-%m-%d}",
                             "second_date": f"{item.second:%Y-%m-%d}", "delay_days": item.delay,
                             "phase_was_unwrapped": int(item.phase_unwrapped)})
    return da.rio.write_crs(grid.crs).rio.write_transform(grid.transform)
