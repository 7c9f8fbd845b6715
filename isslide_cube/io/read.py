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
from isslide_cube.io.grid import Grid, check_window, grid_of, window_transform
from isslide_cube.io.sources import InterferogramSource
from isslide_cube.schema import BANDS, COHERENCE, PHASE, RawDataError

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
    returned unchanged, bit for bit (and without the float64 pass).

    Examples
    --------
    >>> wrap_phase(np.array([0.5, 2 * np.pi + 0.5, -np.pi, np.pi, np.nan])).round(4)
    array([ 0.5   ,  0.5   , -3.1416, -3.1416,     nan], dtype=float32)
    """
    p = np.asarray(phase)
    out = np.empty(p.shape, dtype=np.float32)
    _wrap_into(p, out)
    return out


def _range(a: np.ndarray) -> tuple[float, float]:
    """(min, max) ignoring NaN, without temporaries (NaN, NaN when all NaN or empty)."""
    if a.size == 0:
        return np.nan, np.nan
    return float(np.fmin.reduce(a, axis=None)), float(np.fmax.reduce(a, axis=None))


def _wrap_into(p: np.ndarray, out: np.ndarray,
               value_range: tuple[float, float] | None = None) -> None:
    """:func:`wrap_phase` of ``p`` written into the float32 array ``out``."""
    lo, hi = _range(p) if value_range is None else value_range
    if p.dtype == np.float32 and not (lo < -_PI32_BELOW or hi > _PI32_BELOW):  # NaN: False
        out[...] = p
        return
    p = p.astype(np.float64, copy=False)
    out[...] = np.mod(p + np.pi, 2 * np.pi) - np.pi
    np.copyto(out, -_PI32_BELOW, where=np.abs(out) > _PI32_BELOW)


def _read_band(path: Path, band: int, window: Window | None) -> tuple[np.ndarray, rasterio.Affine,
                                                                       rasterio.crs.CRS]:
    """(float64 array, transform of the window, CRS); corrupt files become RawDataError."""
    try:
        with rasterio.Env(**GDAL_READ_ENV), rasterio.open(path) as src:
            data = src.read(band, window=window, out_dtype="float64")
            transform = src.transform if window is None else window_transform(window, src.transform)
            return data, transform, src.crs
    except rasterio.errors.RasterioError as err:
        raise RawDataError(f"{path}: band {band} cannot be read, the file is truncated or "
                           f"corrupt ({err}); re-export or re-download it") from err


def _to_nan(data: np.ndarray, nodata: float | None) -> np.ndarray:
    if nodata is not None:
        data[data == nodata] = np.nan
    return data


def _source_window(path: Path, target: Grid, margin: int) -> Window | None:
    """The window of ``path`` that covers ``target`` (plus a margin for resampling), or None."""
    from rasterio.warp import transform_bounds

    with rasterio.Env(**GDAL_READ_ENV), rasterio.open(path) as src:
        bounds = transform_bounds(target.crs, src.crs, *target.bounds, densify_pts=21)
        win = rasterio.windows.from_bounds(*bounds, transform=src.transform)
        col0 = int(np.floor(win.col_off)) - margin
        row0 = int(np.floor(win.row_off)) - margin
        col1 = int(np.ceil(win.col_off + win.width)) + margin
        row1 = int(np.ceil(win.row_off + win.height)) + margin
        col0, row0 = max(col0, 0), max(row0, 0)
        col1, row1 = min(col1, src.width), min(row1, src.height)
    if col1 <= col0 or row1 <= row0:
        return None
    return Window(col0, row0, col1 - col0, row1 - row0)


def _scales(src: Grid, grid: Grid) -> tuple[float, float]:
    """Destination pixels per source pixel (x, y), from the whole reference grid.

    GDAL widens its bilinear kernel when downsampling by a factor it estimates
    per processing chunk; giving it one factor for the whole grid makes every
    window of the cube get the values a whole-file read would.
    """
    from rasterio.warp import transform_bounds

    left, bottom, right, top = transform_bounds(grid.crs, src.crs, *grid.bounds, densify_pts=21)
    dst_x, dst_y = (right - left) / grid.width, (top - bottom) / grid.height
    return src.res[0] / dst_x, src.res[1] / dst_y


def _reproject(arrays: np.ndarray, src: Grid, target: Grid, scales: tuple[float, float]
               ) -> np.ndarray:
    """Bilinear reprojection of (k, h, w) float arrays (NaN nodata) onto ``target`` with rioxarray."""
    import rioxarray  # noqa: F401  (registers .rio)
    import xarray as xr

    da = xr.DataArray(arrays, dims=("band", "y", "x"),
                      coords={"band": np.arange(arrays.shape[0]), "y": src.y, "x": src.x})
    da = da.rio.write_crs(src.crs).rio.write_transform(src.transform).rio.write_nodata(np.nan)
    out = da.rio.reproject(target.crs, shape=target.shape, transform=target.transform,
                           resampling=Resampling.bilinear, nodata=np.nan,
                           # exact transformer and one kernel scale for the whole grid: a
                           # chunk gets the values of a whole-file read (to ~1e-3 pixel; GDAL
                           # still offsets its sampling by a few 1e-4 pixel per destination window)
                           tolerance=0.0, XSCALE=str(scales[0]), YSCALE=str(scales[1]))
    return np.asarray(out.values, dtype=np.float64)


def _read_aligned(path: Path, band: int, nodata: float | None, grid: Grid, target: Grid,
                  cyclic: bool) -> np.ndarray:
    """One band of ``path`` reprojected onto ``target`` (a window of ``grid``).

    Phase (``cyclic``) is resampled through its cosine and sine, so that values
    on both sides of the +-pi jump do not average to 0.
    """
    scales = _scales(grid_of(path), grid)
    # bilinear reaches 1 source pixel, 1/scale when downsampling: read that much around
    margin = int(np.ceil(1.0 / min(1.0, *scales))) + 1
    win = _source_window(path, target, margin)
    if win is None:  # the file does not reach the target window
        return np.full(target.shape, np.nan)
    data, transform, crs = _read_band(path, band, win)
    data = _to_nan(data, nodata)
    src = Grid(crs, transform, data.shape[1], data.shape[0])
    if cyclic:
        out = _reproject(np.stack([np.cos(data), np.sin(data)]), src, target, scales)
        return np.arctan2(out[1], out[0])
    return _reproject(data[None], src, target, scales)[0]


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
    >>> inv = discover("shared/fixtures/pyrate_cropA")  # doctest: +SKIP
    >>> grid = check_grids(inv.items)  # doctest: +SKIP
    >>> read_interferogram(inv.items[0], grid, window=Window(0, 0, 50, 30)).shape  # doctest: +SKIP
    (2, 30, 50)
    """
    if grid is None:
        grid = grid_of(item.phase_path)
    if window is not None:
        check_window(window, grid)
    target = grid if window is None else grid.window_grid(window)
    # (kind, band, nodata) per file: a 2-band file is opened and decompressed once
    files: dict[Path, list[tuple[str, int, float | None]]] = {}
    files.setdefault(item.phase_path, []).append((PHASE, item.phase_band, item.phase_nodata))
    if item.coherence_path is not None:
        files.setdefault(item.coherence_path, []).append(
            (COHERENCE, int(item.coherence_band or 1), item.coherence_nodata))
    pieces: dict[str, np.ndarray] = {}
    for path, specs in files.items():
        data, diff = _read_on_grid(path, [band for _, band, _ in specs], window, grid)
        if data is None and not align:
            raise RawDataError(f"{path}: not on the reference grid ({'; '.join(diff)}); "
                               "reproject it with `isslide-cube build --align` (align=True)")
        for k, (kind, band, nodata) in enumerate(specs):
            if data is None:
                pieces[kind] = _read_aligned(path, band, nodata, grid, target, kind == PHASE)
            else:
                pieces[kind] = _as_float(data[k], nodata)

    phase = pieces[PHASE]
    lo, hi = _range(phase)
    if validate_values and not item.phase_unwrapped and max(-lo, hi) > np.pi + 1e-5:
        raise RawDataError(
            f"{item.phase_path}: wrapped phase reaches {max(-lo, hi):.3g} rad, beyond pi; if "
            "it is unwrapped, put 'unw' in its name, set the tag PHASE_UNWRAPPED=1, or give "
            "the role unwrapped_phase in a manifest")
    out = np.empty((2, *target.shape), dtype=np.float32)
    _wrap_into(phase, out[BANDS.index(PHASE)], (lo, hi))
    coherence = out[BANDS.index(COHERENCE)]
    if COHERENCE in pieces:
        np.multiply(pieces[COHERENCE], item.coherence_scale, out=coherence, casting="unsafe")
        c_lo, c_hi = _range(coherence) if validate_values else (0.0, 1.0)
        if c_lo < -COHERENCE_TOLERANCE or c_hi > 1 + COHERENCE_TOLERANCE:
            bad = (coherence < -COHERENCE_TOLERANCE) | (coherence > 1 + COHERENCE_TOLERANCE)
            raise RawDataError(
                f"{item.coherence_path}: coherence outside [0, 1] (min {c_lo:.4g}, max "
                f"{c_hi:.4g}, {int(bad.sum())} pixel(s)); give the coherence file (not "
                "amplitude or phase), scaled to 0..1")
    else:
        coherence[...] = np.nan
    # no phase, no interferogram: both bands NaN
    np.copyto(coherence, np.nan, where=np.isnan(phase))
    return out


def _read_on_grid(path: Path, bands: list[int], window: Window | None, grid: Grid
                  ) -> tuple[np.ndarray | None, list[str]]:
    """(bands of ``path`` in ``window`` in their own dtype, []) or (None, how its grid differs)."""
    try:
        with rasterio.Env(**GDAL_READ_ENV), rasterio.open(path) as src:
            if src.crs is None:
                raise RawDataError(f"{path}: has no CRS; georeference it (e.g. gdal_edit.py "
                                   "-a_srs EPSG:4326) or re-export it with its CRS")
            diff = grid.differences(Grid(src.crs, src.transform, src.width, src.height))
            if diff:
                return None, diff
            return src.read(bands, window=window), []
    except rasterio.errors.RasterioError as err:
        raise RawDataError(f"{path}: band(s) {bands} cannot be read, the file is truncated or "
                           f"corrupt ({err}); re-export or re-download it") from err


def _as_float(data: np.ndarray, nodata: float | None) -> np.ndarray:
    """float32 (float64 stays float64) with NaN where ``data`` is ``nodata``."""
    missing = None if nodata is None else data == nodata
    if data.dtype != np.float64:
        data = data.astype(np.float32, copy=False)
    if missing is not None:
        np.copyto(data, np.nan, where=missing)
    return data


def _read_block(item: InterferogramSource, grid: Grid, align: bool, validate_values: bool,
                block_info: dict | None = None) -> np.ndarray:
    """One dask block: the window of ``grid`` that ``block_info`` locates."""
    (_, _), (r0, r1), (c0, c1) = block_info[None]["array-location"]
    return read_interferogram(item, grid, window=Window(c0, r0, c1 - c0, r1 - r0), align=align,
                              validate_values=validate_values)


def lazy_interferogram(item: InterferogramSource, grid: Grid | None = None, *,
                       chunks: int | tuple[int, int] = 500, align: bool = False,
                       validate_values: bool = False):
    """:func:`read_interferogram` as a lazy dask array, one window read per ``chunks`` block.

    Parameters
    ----------
    item, grid, align, validate_values
        As for :func:`read_interferogram`.
    chunks
        Block size in pixels: ``n`` (square) or ``(rows, cols)``. Blocks hold
        both bands. Rows that are a multiple of the file's tile height avoid
        decompressing a tile twice.

    Returns
    -------
    dask.array.Array
        float32 ``(2, H, W)``, [coherence, phase]. Its name depends on the files'
        fingerprints, so a rewritten file gives a new graph.

    Examples
    --------
    >>> arr = lazy_interferogram(item, grid, chunks=256)  # doctest: +SKIP
    >>> arr[1, :256, :256].compute().shape  # doctest: +SKIP
    (256, 256)
    """
    import dask.array as da
    from dask.base import tokenize

    grid = grid_of(item.phase_path) if grid is None else grid
    rows, cols = (chunks, chunks) if isinstance(chunks, (int, np.integer)) else chunks
    if int(rows) <= 0 or int(cols) <= 0:
        raise ValueError(f"chunks must be positive pixel counts, got {chunks!r}")

    def splits(n: int, step: int) -> tuple[int, ...]:
        return tuple(min(step, n - k) for k in range(0, n, step))

    token = tokenize(item.describe(), item.fingerprint(), grid.to_dict(), align,
                     validate_values, rows, cols)
    return da.map_blocks(_read_block, item, grid, align, validate_values,
                         chunks=((2,), splits(grid.height, int(rows)), splits(grid.width, int(cols))),
                         dtype=np.float32, meta=np.empty((0, 0, 0), np.float32),
                         name=f"read-interferogram-{item.name}-{token}")


def open_interferogram(item: InterferogramSource, grid: Grid | None = None, *,
                       chunks: int | tuple[int, int] | None = None, align: bool = False,
                       validate_values: bool = False) -> xr.DataArray:
    """:func:`read_interferogram` as an ``xarray.DataArray`` (band, y, x) with coordinates and CRS.

    With ``chunks`` the data stay lazy (:func:`lazy_interferogram`); without,
    they are read now.

    Examples
    --------
    >>> da = open_interferogram(item, chunks=512)  # doctest: +SKIP
    >>> da.sel(band="phase").plot(cmap="twilight")  # doctest: +SKIP
    """
    import rioxarray  # noqa: F401
    import xarray as xr

    grid = grid_of(item.phase_path) if grid is None else grid
    if chunks is None:
        data = read_interferogram(item, grid, align=align, validate_values=validate_values)
    else:
        data = lazy_interferogram(item, grid, chunks=chunks, align=align,
                                  validate_values=validate_values)
    da = xr.DataArray(data, dims=("band", "y", "x"),
                      coords={"band": list(BANDS), "y": grid.y, "x": grid.x},
                      name="interferogram",
                      attrs={"first_date": f"{item.first:%Y-%m-%d}",
                             "second_date": f"{item.second:%Y-%m-%d}", "delay_days": item.delay,
                             "phase_was_unwrapped": int(item.phase_unwrapped)})
    return da.rio.write_crs(grid.crs).rio.write_transform(grid.transform)
