"""The global annotation map and the patch locations (greedy EDT cover)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from isslide_cube import schema as s
from isslide_cube.patches._common import (
    _check_size,
    _ChunkTasks,
    _compute,
    _crs,
    _require_mask,
    _transform,
)

log = logging.getLogger("isslide_cube.patches")


def global_mask(cube: xr.Dataset) -> xr.DataArray:
    """The global annotation map: a pixel is True where any interferogram marks it moving.

    Definition: ``any(mask == 1)`` over ``start_date`` and ``delay``. The fill
    value 255 (no interferogram) is not 1, so it never counts.

    Parameters
    ----------
    cube
        A cube (DESIGN.md section 3) with a ``mask`` variable.

    Returns
    -------
    xarray.DataArray
        bool (y, x), named ``global_mask``, lazy when the cube is dask-backed.

    Raises
    ------
    CubeError
        The cube has no ``mask`` (built without annotations).

    Example
    -------
    >>> gm = global_mask(cube)            # doctest: +SKIP
    >>> int(gm.sum())                     # doctest: +SKIP
    5321
    """
    from dask import is_dask_collection

    _require_mask(cube)
    mask = cube[s.MASK].transpose(s.START_DATE, s.DELAY, s.Y, s.X)
    moving = (mask == 1).any(dim=[s.START_DATE, s.DELAY])
    if is_dask_collection(mask.data):
        moving = moving.copy(data=_union_per_tile(mask.data))
    return moving.rename("global_mask").assign_attrs(
        long_name="annotated in at least one interferogram")


def _moving(block: np.ndarray) -> np.ndarray:
    return (block == 1).any(axis=(0, 1))


def _union(tiles: list[np.ndarray]) -> np.ndarray:
    return np.logical_or.reduce(tiles)


def _union_per_tile(mask):
    """``(mask == 1).any(axis=(0, 1))`` with one task per (y, x) tile of chunks.

    Each tile's task reads every start_date / delay chunk above it in turn
    (the chunk reads nested in it, see ``_ChunkTasks``): as many tasks as
    tiles, where a dask reduction makes one per chunk plus a tree, which a
    distributed cluster pays for in scheduling time.
    """
    import itertools

    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph
    from dask.task_spec import List, Task


    ns, nd, ny, nx = mask.numblocks
    stack = list(itertools.product(range(ns), range(nd)))
    chunks_of = _ChunkTasks(mask, {(i, j, by, bx): 1 for i, j in stack
                                   for by in range(ny) for bx in range(nx)})
    name = f"global-mask-{tokenize(mask.name)}"
    layer = {(name, by, bx): Task((name, by, bx), _union,
                                  List(*(Task(None, _moving, chunks_of.node((i, j, by, bx)))
                                         for i, j in stack)))
             for by in range(ny) for bx in range(nx)}
    graph = HighLevelGraph.from_collections(name, layer, dependencies=[chunks_of.array])
    return da.Array(graph, name, chunks=mask.chunks[2:], dtype=bool)


# ------------------------------------------------------------- centres
def _edt(mask: np.ndarray) -> np.ndarray:
    from isslide_cube.kernels import edt

    return np.asarray(edt(mask, dtype=np.float64))


def _zone_lookup(cube: xr.Dataset) -> list[str] | None:
    if s.ZONE not in cube:
        return None
    attrs = cube[s.ZONE].attrs
    values = attrs.get("flag_values", list(s.ZONE_FLAG_VALUES))
    meanings = str(attrs.get("flag_meanings", " ".join(s.ZONES))).split()
    names = ["other"] * (max(int(v) for v in np.atleast_1d(values)) + 1)
    for value, name in zip(np.atleast_1d(values), meanings, strict=False):
        names[int(value)] = name
    return names


def _lonlat(cube: xr.Dataset, rows: np.ndarray, cols: np.ndarray, size: int):
    """Longitude and latitude of the geometric centres of the windows."""
    transform = _transform(cube)
    xs = transform.c + transform.a * (cols + size / 2) + transform.b * (rows + size / 2)
    ys = transform.f + transform.d * (cols + size / 2) + transform.e * (rows + size / 2)
    crs = _crs(cube)
    if crs is not None and not crs.is_geographic and len(xs):
        from rasterio.warp import transform as warp

        xs, ys = warp(crs, "EPSG:4326", list(xs), list(ys))
    return np.asarray(xs, dtype="float64"), np.asarray(ys, dtype="float64")


def move_centres(cube: xr.Dataset | xr.DataArray, size: int = 100, *,
                 client: Any = None) -> pd.DataFrame:
    """The patch locations: a greedy cover of the global annotation map.

    Algorithm: ``d`` = exact Euclidean distance transform of the global map
    padded with one stable pixel, so the grid border counts as outside the
    moving area. Annotated pixels are visited by decreasing ``d`` (ties: lowest
    row, then lowest column: deterministic); each one not yet covered gets a
    ``size x size`` window centred on it (top-left ``pixel - size // 2``),
    shifted inward at the grid border so the window is whole, and every pixel
    of the window becomes covered. It stops when every annotated pixel lies in
    a window. Distances are those of the global map (not recomputed after
    each window): the first windows sit on the cores of the moving areas, the
    later ones on what sticks out of them.

    Parameters
    ----------
    cube
        A cube with ``mask`` (or a boolean global map ``(y, x)`` DataArray).
    size
        Window side in pixels (positive, at most the grid's sides).
    client
        Optional ``distributed.Client`` or address that computes the global map.

    Returns
    -------
    pandas.DataFrame
        One row per location: ``location`` (0..n-1, in the order chosen),
        ``row``, ``col`` (top-left pixel in the cube's y/x index), ``centre_row``,
        ``centre_col`` (the chosen pixel), ``component`` (8-connected component
        of the global map holding the centre, from 1), ``zone`` (name at the
        centre; ``other`` when the cube has no zone map), ``lat``, ``lon`` (of the
        window's geometric centre). ``attrs``: ``patch_size``, ``n_components``,
        ``locations_per_component`` {component: count}. Empty (with those
        columns) when nothing is annotated.

    Example
    -------
    >>> centres = move_centres(cube, size=100)              # doctest: +SKIP
    >>> centres.attrs["locations_per_component"]            # doctest: +SKIP
    {1: 1, 2: 4, 3: 1}
    """
    from scipy import ndimage

    gm_da = cube if isinstance(cube, xr.DataArray) else global_mask(cube)
    ny, nx = gm_da.sizes[s.Y], gm_da.sizes[s.X]
    size = _check_size(size, ny, nx)
    gm = np.asarray(_compute(gm_da.transpose(s.Y, s.X).data, client), dtype=bool)

    rows_cols: list[tuple[int, int, int, int]] = []
    if gm.any():
        dist = _edt(np.pad(gm, 1))[1:-1, 1:-1]
        r, c = np.nonzero(gm)  # row-major: already sorted by (row, col)
        order = np.argsort(-dist[r, c], kind="stable")
        covered = np.zeros_like(gm)
        half = size // 2
        for i in order:
            pr, pc = int(r[i]), int(c[i])
            if covered[pr, pc]:
                continue
            r0 = min(max(pr - half, 0), ny - size)
            c0 = min(max(pc - half, 0), nx - size)
            covered[r0:r0 + size, c0:c0 + size] = True
            rows_cols.append((r0, c0, pr, pc))
    labels, n_comp = ndimage.label(gm, structure=np.ones((3, 3), dtype=bool))
    table = pd.DataFrame(rows_cols, columns=["row", "col", "centre_row", "centre_col"],
                         dtype="int64")
    table.insert(0, "location", np.arange(len(table), dtype="int64"))
    table["component"] = labels[table.centre_row, table.centre_col].astype("int64")
    names = _zone_lookup(cube) if isinstance(cube, xr.Dataset) else None
    if names is None:
        table["zone"] = "other"
    else:
        codes = _compute(cube[s.ZONE].transpose(s.Y, s.X).data, client)
        table["zone"] = [names[int(z)] for z in np.asarray(codes)[table.centre_row,
                                                                     table.centre_col]]
    table["lon"], table["lat"] = _lonlat(gm_da, table.row.to_numpy(), table.col.to_numpy(), size)
    per_comp = {int(k): int(v) for k, v in table.groupby("component").size().items()}
    table.attrs.update(patch_size=size, n_components=int(n_comp),
                       locations_per_component=per_comp)
    if table.empty:
        log.warning("the global annotation map is empty: no annotated pixel, no patch location")
    else:
        log.info("%d locations of %d px over %d connected components (largest: %d locations)",
                 len(table), size, n_comp, max(per_comp.values()))
    return table
