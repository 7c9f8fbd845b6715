"""Every location on every interferogram, cut chunk by chunk (each chunk read once)."""

from __future__ import annotations

import bisect
import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from isslide_cube import schema as s
from isslide_cube.patches._centres import move_centres
from isslide_cube.patches._common import (
    SAMPLE_CHUNK,
    _check_size,
    _ChunkTasks,
    _crs,
    _require_mask,
    _transform,
)
from isslide_cube.schema import PatchesError

log = logging.getLogger("isslide_cube.patches")


def _offsets(chunks: Sequence[int]) -> list[int]:
    return list(np.cumsum((0, *chunks)))


def _cut(block: np.ndarray, requests: np.ndarray) -> list[np.ndarray]:
    """Copy the parts of windows that fall in one cube chunk (the chunk is then dropped).

    ``requests`` rows: start_date and delay index in the block, then y0, y1, x0, x1.
    """
    return [np.array(block[i, j, ..., y0:y1, x0:x1]) for i, j, y0, y1, x0, x1 in requests]


def _assemble(shape: tuple[int, ...], dtype: str, fill: Any, placements: np.ndarray,
              pieces: list[list[np.ndarray]]) -> np.ndarray:
    """Paste window parts: ``placements`` rows: cut, part, sample, y0, y1, x0, x1."""
    out = np.full(shape, fill, dtype=dtype)
    for src, k, sample, y0, y1, x0, x1 in placements:
        out[sample, ..., y0:y1, x0:x1] = pieces[src][k]
    return out


def _windows_from_chunks(data, windows: list[tuple[int, int, int, int]], size: int,
                         n_block: int, dtype, fill) -> Any:
    """Dask array (n, [band,] size, size) of the windows ``(s, d, row, col)``.

    One task per group of ``n_block`` consecutive windows: for each cube chunk
    the group touches, it reads the chunk once, cuts every window part inside
    it (then drops the chunk), and pastes the parts. A window crossing chunk
    borders takes its parts from up to four chunks. The chunk reads are nested
    inside the group's task (:class:`_ChunkTasks`), so the graph has one task
    per group, not one per chunk: what keeps a distributed cluster's per-task
    cost small. The graph is written directly: building it stays cheap at tens
    of thousands of windows.
    """
    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph
    from dask.task_spec import List, Task

    if data.ndim == 5 and data.numblocks[2] != 1:  # keep both bands of a pixel in one task
        data = data.rechunk({2: -1})
    extra = data.shape[2:-2]
    zeros = (0,) * len(extra)
    if not windows:
        return da.zeros((0, *extra, size, size), dtype=dtype, chunks=(1, *extra, size, size))
    offs = [_offsets(c) for c in data.chunks]
    ys_off, xs_off = offs[-2], offs[-1]
    token = tokenize(data.name, windows, size, n_block, str(dtype), fill)
    name = f"patch-windows-{token}"
    groups = []
    uses: dict[tuple, int] = defaultdict(int)
    for start in range(0, len(windows), n_block):
        group = windows[start:start + n_block]
        requests: dict[tuple, list] = defaultdict(list)
        placements = []
        for k, (si, di, r0, c0) in enumerate(group):
            bs = bisect.bisect_right(offs[0], si) - 1
            bd = bisect.bisect_right(offs[1], di) - 1
            for by in range(bisect.bisect_right(ys_off, r0) - 1,
                            bisect.bisect_left(ys_off, r0 + size)):
                y0, y1 = max(r0, ys_off[by]), min(r0 + size, ys_off[by + 1])
                for bx in range(bisect.bisect_right(xs_off, c0) - 1,
                                bisect.bisect_left(xs_off, c0 + size)):
                    x0, x1 = max(c0, xs_off[bx]), min(c0 + size, xs_off[bx + 1])
                    parts = requests[(bs, bd, *zeros, by, bx)]
                    parts.append((si - offs[0][bs], di - offs[1][bd], y0 - ys_off[by],
                                  y1 - ys_off[by], x0 - xs_off[bx], x1 - xs_off[bx]))
                    placements.append(((bs, bd, *zeros, by, bx), len(parts) - 1, k, y0 - r0,
                                       y1 - r0, x0 - c0, x1 - c0))
        for block in requests:
            uses[block] += 1
        groups.append((len(group), requests, placements))
    chunks_of = _ChunkTasks(data, uses)
    layer: dict[tuple, Any] = {}
    for g, (n, requests, placements) in enumerate(groups):
        index = {block: i for i, block in enumerate(requests)}
        cuts = List(*(Task(None, _cut, chunks_of.node(block),
                           np.asarray(parts, dtype=np.int64))
                      for block, parts in requests.items()))
        where = np.asarray([(index[b], *rest) for b, *rest in placements], dtype=np.int64)
        key = (name, g, *zeros, 0, 0)
        layer[key] = Task(key, _assemble, (n, *extra, size, size), np.dtype(dtype).str, fill,
                          where, cuts)
    graph = HighLevelGraph.from_collections(name, layer, dependencies=[chunks_of.array])
    chunks = (tuple(n for n, _, _ in groups), *((e,) for e in extra), (size,), (size,))
    return da.Array(graph, name, chunks=chunks, dtype=dtype)


def extract_patches(cube: xr.Dataset, size: int = 100, centres: pd.DataFrame | None = None, *,
                    sample_chunk: int = SAMPLE_CHUNK, client: Any = None) -> xr.Dataset:
    """Crop every interferogram and its mask around every location (lazy).

    Windows: every location of ``centres`` on every interferogram that exists
    (``has_interferogram``), ordered by start_date, delay, then location. Each
    touched chunk of the cube is read once: one task per interferogram reads
    its touched chunks in turn, cuts the window parts each holds and pastes
    them (windows crossing chunk borders take parts from up to four chunks).
    The graph has one task per interferogram and variable, not one per chunk,
    so a distributed cluster's per-task cost stays small. Nothing is read until
    the result is computed or written.

    Parameters
    ----------
    cube
        A cube (DESIGN.md section 3) with ``interferogram`` and ``mask``.
    size
        Patch side in pixels.
    centres
        Locations from :func:`move_centres` (columns ``location``, ``row``,
        ``col``, ``zone``, ``lat``, ``lon``); computed when None.
    sample_chunk
        Dask chunk along ``sample`` (the Zarr chunk when written).
    client
        Used only to compute the centres when ``centres`` is None.

    Returns
    -------
    xarray.Dataset
        Dims ``sample, band, y, x``: ``interferogram`` float32 (sample, band, y,
        x), ``mask`` uint8 0/1 (sample, y, x); per-sample coords ``start_date``,
        ``delay``, ``end_date``, ``location``, ``zone``, ``row``, ``col``, ``lat``,
        ``lon``, ``has_move`` and ``moving_fraction`` (these two lazy, from the
        mask). attrs: ``crs`` (WKT), ``transform`` (GDAL order), ``patch_size``.

    Example
    -------
    >>> patches = extract_patches(cube, size=100)            # doctest: +SKIP
    >>> patches.interferogram.shape                          # doctest: +SKIP
    (13230, 2, 100, 100)
    """
    _require_mask(cube)
    ny, nx = cube.sizes[s.Y], cube.sizes[s.X]
    size = _check_size(size, ny, nx)
    if centres is None:
        centres = move_centres(cube, size, client=client)
    _check_centres(centres, size, ny, nx)

    has = np.asarray(cube[s.HAS_INTERFEROGRAM].transpose(s.START_DATE, s.DELAY).values, bool)
    ifgs = np.argwhere(has)  # (start_date index, delay index), row-major = date then delay
    n_loc = len(centres)
    loc_rows, loc_cols = centres.row.to_numpy(), centres.col.to_numpy()
    windows = [(int(si), int(di), int(r), int(c)) for si, di in ifgs
               for r, c in zip(loc_rows, loc_cols, strict=True)]
    n_block = max(n_loc, 1)

    ifg = cube[s.INTERFEROGRAM].transpose(*s.CUBE_DIMS)
    msk = cube[s.MASK].transpose(*s.MASK_DIMS)
    ifg_data = _as_dask(ifg)
    msk_data = _as_dask(msk)
    pix = _windows_from_chunks(ifg_data, windows, size, n_block, "float32", np.nan)
    # cut in the cube's own mask dtype (uint8 255-filled, or float if someone decoded it)
    raw = _windows_from_chunks(msk_data, windows, size, n_block, msk_data.dtype, 0)
    pix = pix.rechunk((sample_chunk, -1, -1, -1))
    mask = (raw == 1).astype("uint8").rechunk((sample_chunk, -1, -1))
    fraction = mask.mean(axis=(1, 2), dtype="float32").astype("float32")

    si, di = ifgs[:, 0].repeat(n_loc), ifgs[:, 1].repeat(n_loc)
    tile = np.tile
    end = cube[s.END_DATE].transpose(s.START_DATE, s.DELAY).values
    coords = {
        s.BAND: [str(b) for b in cube[s.BAND].values] if s.BAND in cube.coords else list(s.BANDS),
        s.START_DATE: (s.SAMPLE, cube[s.START_DATE].values[si]),
        s.DELAY: (s.SAMPLE, cube[s.DELAY].values[di].astype("int64"), {"units": "days"}),
        s.END_DATE: (s.SAMPLE, end[si, di]),
        s.LOCATION: (s.SAMPLE, tile(centres.location.to_numpy("int64"), len(ifgs))),
        s.ZONE: (s.SAMPLE, tile(centres.zone.to_numpy(str), len(ifgs))),
        s.ROW: (s.SAMPLE, tile(loc_rows.astype("int64"), len(ifgs))),
        s.COL: (s.SAMPLE, tile(loc_cols.astype("int64"), len(ifgs))),
        s.LAT: (s.SAMPLE, tile(centres.lat.to_numpy("float64"), len(ifgs))),
        s.LON: (s.SAMPLE, tile(centres.lon.to_numpy("float64"), len(ifgs))),
        s.HAS_MOVE: (s.SAMPLE, fraction > 0),
        s.MOVING_FRACTION: (s.SAMPLE, fraction),
    }
    crs = _crs(cube)
    attrs = {
        "crs": crs.to_wkt() if crs is not None else "",
        "transform": [float(v) for v in _transform(cube).to_gdal()],
        "patch_size": size,
    }
    out = xr.Dataset(
        {s.INTERFEROGRAM: ((s.SAMPLE, s.BAND, s.Y, s.X), pix,
                           {"long_name": "coherence and wrapped phase (radians)"}),
         s.MASK: ((s.SAMPLE, s.Y, s.X), mask, {"flag_values": [0, 1],
                                                "flag_meanings": "stable moving"})},
        coords=coords, attrs=attrs)
    log.info("%d patches: %d locations x %d interferograms", out.sizes[s.SAMPLE], n_loc, len(ifgs))
    return out


def _as_dask(var: xr.DataArray):
    import dask.array as da

    if isinstance(var.data, da.Array):
        return var.data
    return da.from_array(var.data, chunks=(1, 1, *(-1,) * (var.ndim - 2)))


def _check_centres(centres: pd.DataFrame, size: int, ny: int, nx: int) -> None:
    missing = [c for c in ("location", "row", "col", "zone", "lat", "lon") if c not in centres]
    if missing:
        raise PatchesError(f"centres table lacks columns {missing}; make it with move_centres()")
    rows, cols = centres.row.to_numpy(), centres.col.to_numpy()
    bad = (rows < 0) | (cols < 0) | (rows + size > ny) | (cols + size > nx)
    if bad.any():
        i = int(np.argmax(bad))
        raise PatchesError(
            f"location {centres.location.iloc[i]} (row {rows[i]}, col {cols[i]}) with size {size} "
            f"falls outside the {ny} x {nx} grid; recompute centres with move_centres(cube, {size})")
