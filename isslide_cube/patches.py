"""The ready-to-use dataset: global annotation map, move centres, patches, split.

The ISSLIDE paper (DESIGN.md sections 1 and 4) merges every annotation of
every date and delay into one global map, finds the moving areas with a
distance transform, and crops every interferogram and its mask around them
into ``size x size`` patches. This module does the same on any cube:

1. :func:`global_mask` -- the union of ``mask == 1`` over start_date and delay
   (lazy);
2. :func:`move_centres` -- the window index: greedy cover of the global map,
   most interior pixel first (exact EDT from :mod:`isslide_cube.kernels`);
3. :func:`extract_patches` -- every window on every interferogram that exists,
   read chunk by chunk (each touched cube chunk is read once), lazy;
4. :func:`split` -- ``train`` / ``eval`` / ``unused`` by the paper's scheme,
   by time or by zone, with a leak check;
5. :func:`write_patches` / :func:`open_patches` -- the Zarr store.

Examples
--------
>>> from isslide_cube.cube import open_cube                      # doctest: +SKIP
>>> cube = open_cube("cube.zarr")                                # doctest: +SKIP
>>> centres = move_centres(cube, size=100)                       # doctest: +SKIP
>>> patches = split(extract_patches(cube, 100, centres), "paper")  # doctest: +SKIP
"""

from __future__ import annotations

import bisect
import logging
import shutil
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from isslide_cube import schema as s
from isslide_cube.schema import CubeError, PatchesError

log = logging.getLogger(__name__)

SAMPLE_CHUNK = 256
SCHEMES = ("paper", "temporal", "spatial", "none")
CENTRE_COLUMNS = ("location", "row", "col", "centre_row", "centre_col", "component", "zone",
                  "lat", "lon")


# ----------------------------------------------------------------- checks
def _require_mask(cube: xr.Dataset) -> None:
    if s.MASK not in cube:
        raise CubeError(
            "the cube has no `mask` variable: it was built without annotations. Rebuild it "
            "with annotations (`isslide-cube build RAW CUBE --annotations DIR`, or "
            "build_cube(..., annotations=DIR)) to extract patches around the moving areas.")


def _check_size(size: int, ny: int, nx: int) -> int:
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size <= 0:
        raise PatchesError(f"patch size must be a positive integer number of pixels, got {size!r}")
    if size > ny or size > nx:
        raise PatchesError(
            f"patch size {size} is larger than the cube's grid ({ny} rows x {nx} columns); "
            f"choose size <= {min(ny, nx)}")
    return int(size)


# ------------------------------------------------------------ global mask
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
    _require_mask(cube)
    moving = (cube[s.MASK] == 1).any(dim=[s.START_DATE, s.DELAY])
    return moving.rename("global_mask").assign_attrs(
        long_name="annotated in at least one interferogram")


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


def _transform(cube: xr.Dataset):
    import rioxarray  # noqa: F401  (registers .rio)

    return cube.rio.transform()


def _crs(cube: xr.Dataset):
    import rioxarray  # noqa: F401

    return cube.rio.crs


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


# ------------------------------------------------------------- extraction
def _offsets(chunks: Sequence[int]) -> list[int]:
    return list(np.cumsum((0, *chunks)))


def _cut(block: np.ndarray, requests: np.ndarray) -> list[np.ndarray]:
    """Copy the parts of windows that fall in one cube chunk (one read per chunk).

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

    One task per touched cube chunk cuts every window part inside it; one task
    per group of ``n_block`` consecutive windows pastes the parts. A window
    crossing chunk borders takes its parts from up to four chunks. The graph
    is written directly (no ``dask.delayed`` per task): building it stays cheap
    at tens of thousands of windows.
    """
    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    if data.ndim == 5 and data.numblocks[2] != 1:  # keep both bands of a pixel in one task
        data = data.rechunk({2: -1})
    extra = data.shape[2:-2]
    zeros = (0,) * len(extra)
    if not windows:
        return da.zeros((0, *extra, size, size), dtype=dtype, chunks=(1, *extra, size, size))
    offs = [_offsets(c) for c in data.chunks]
    ys_off, xs_off = offs[-2], offs[-1]
    token = tokenize(data.name, windows, size, n_block, str(dtype), fill)
    name, cut_name = f"patch-windows-{token}", f"patch-cut-{token}"
    layer: dict[tuple, Any] = {}
    sizes = []
    for g, start in enumerate(range(0, len(windows), n_block)):
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
                    parts = requests[(bs, bd, by, bx)]
                    parts.append((si - offs[0][bs], di - offs[1][bd], y0 - ys_off[by],
                                  y1 - ys_off[by], x0 - xs_off[bx], x1 - xs_off[bx]))
                    placements.append(((bs, bd, by, bx), len(parts) - 1, k, y0 - r0, y1 - r0,
                                       x0 - c0, x1 - c0))
        index = {block: i for i, block in enumerate(requests)}
        cut_keys = []
        for block, i in index.items():
            key = (cut_name, g, i)
            source = (data.name, block[0], block[1], *zeros, block[2], block[3])
            layer[key] = (_cut, source, np.asarray(requests[block], dtype=np.int64))
            cut_keys.append(key)
        where = np.asarray([(index[b], *rest) for b, *rest in placements], dtype=np.int64)
        shape = (len(group), *extra, size, size)
        layer[(name, g, *zeros, 0, 0)] = (_assemble, shape, np.dtype(dtype).str, fill, where,
                                          cut_keys)
        sizes.append(len(group))
    graph = HighLevelGraph.from_collections(name, layer, dependencies=[data])
    chunks = (tuple(sizes), *((e,) for e in extra), (size,), (size,))
    return da.Array(graph, name, chunks=chunks, dtype=dtype)


def extract_patches(cube: xr.Dataset, size: int = 100, centres: pd.DataFrame | None = None, *,
                    sample_chunk: int = SAMPLE_CHUNK, client: Any = None) -> xr.Dataset:
    """Crop every interferogram and its mask around every location (lazy).

    Windows: every location of ``centres`` on every interferogram that exists
    (``has_interferogram``), ordered by start_date, delay, then location. Each
    touched chunk of the cube is read once: one task per chunk cuts all the
    window parts it holds; windows crossing chunk borders are pasted from up to
    four chunks. Nothing is read until the result is computed or written.

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
    import dask.array as da

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
    raw = _windows_from_chunks(msk_data, windows, size, n_block, "uint8", 0)
    pix = pix.rechunk((sample_chunk, -1, -1, -1))
    mask = (raw == 1).astype("uint8").rechunk((sample_chunk, -1, -1))
    fraction = mask.mean(axis=(1, 2), dtype="float32").astype("float32")

    si, di = ifgs[:, 0].repeat(n_loc), ifgs[:, 1].repeat(n_loc)
    tile = np.tile
    end = cube[s.END_DATE].transpose(s.START_DATE, s.DELAY).values
    coords = {
        s.BAND: np.array([str(b) for b in cube[s.BAND].values] if s.BAND in cube.coords
                         else s.BANDS, dtype=object),
        s.START_DATE: (s.SAMPLE, cube[s.START_DATE].values[si]),
        s.DELAY: (s.SAMPLE, cube[s.DELAY].values[di].astype("int64"), {"units": "days"}),
        s.END_DATE: (s.SAMPLE, end[si, di]),
        s.LOCATION: (s.SAMPLE, tile(centres.location.to_numpy("int64"), len(ifgs))),
        # object strings: Zarr v3 stores them with its specified variable-length string type
        s.ZONE: (s.SAMPLE, tile(centres.zone.to_numpy(str), len(ifgs)).astype(object)),
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
    if not isinstance(pix, da.Array):  # pragma: no cover - defensive
        raise PatchesError("internal: extraction did not produce a dask array")
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


# ------------------------------------------------------------------- split
def _ifg_codes(patches: xr.Dataset) -> tuple[np.ndarray, int]:
    keys = pd.MultiIndex.from_arrays([patches[s.START_DATE].values, patches[s.DELAY].values])
    codes, uniques = pd.factorize(keys, sort=True)
    return np.asarray(codes), len(uniques)


def _empty_side_error(scheme: str, side: str, zones: np.ndarray, has_move: np.ndarray,
                      eval_zones: Sequence[str], detail: str) -> PatchesError:
    per_zone = ", ".join(
        f"{z}: {int((zones == z).sum())} patches ({int(((zones == z) & has_move).sum())} with a move)"
        for z in sorted(set(zones.tolist())))
    return PatchesError(
        f"split {scheme!r}: the {side} side would be empty ({detail}); eval_zones="
        f"{tuple(eval_zones)}; patches per zone: {per_zone or 'none'}. Choose eval_zones among "
        f"the zones that hold patches, another train_fraction or seed, or split='none'.")


def split(patches: xr.Dataset, scheme: str = "paper", seed: int = 0,
          train_fraction: float = 0.8, eval_zones: Sequence[str] = ("queyras",), *,
          moving_only: bool = True) -> xr.Dataset:
    """Label every patch ``train``, ``eval`` or ``unused`` (a new ``split`` coordinate).

    Schemes:

    ``paper``
        By interferogram: ``round(train_fraction * n)`` interferograms drawn with
        ``np.random.default_rng(seed)`` train on the locations outside
        ``eval_zones``; the other interferograms evaluate on the locations in
        ``eval_zones``. No interferogram and no location is on both sides.
    ``temporal``
        The first ``round(train_fraction * n)`` start dates train, the later ones
        evaluate; a training interferogram that ends after the first evaluation
        date is ``unused`` so the two sides never overlap in time.
    ``spatial``
        Locations outside ``eval_zones`` train, inside evaluate, on every
        interferogram.

    With ``moving_only`` (the single-interferogram study) patches without a
    move are ``unused`` on both sides; every patch stays in the dataset.

    Parameters
    ----------
    patches
        From :func:`extract_patches` or :func:`open_patches` (not mutated).
    scheme, seed, train_fraction, eval_zones, moving_only
        As above.

    Returns
    -------
    xarray.Dataset
        ``patches`` with a ``split`` coordinate (str along ``sample``) whose
        attrs record the scheme and its parameters.

    Raises
    ------
    PatchesError
        Unknown scheme or zone, a fraction outside (0, 1), an empty train or
        eval side (the message gives the counts per zone), or a leak.

    Example
    -------
    >>> labelled = split(patches, "paper", seed=0)           # doctest: +SKIP
    >>> split_counts(labelled).loc["eval", "patches"]         # doctest: +SKIP
    572
    """
    if scheme not in SCHEMES[:-1]:
        raise PatchesError(f"unknown split scheme {scheme!r}; use one of {SCHEMES[:-1]}")
    if not 0.0 < float(train_fraction) < 1.0:
        raise PatchesError(f"train_fraction must lie in (0, 1), got {train_fraction}")
    eval_zones = (eval_zones,) if isinstance(eval_zones, str) else tuple(eval_zones)
    zones = np.asarray(patches[s.ZONE].values).astype(str)
    unknown = sorted(set(eval_zones) - set(s.ZONES) - set(zones.tolist()))
    if unknown:
        raise PatchesError(f"unknown eval zone(s) {unknown}; zones are {s.ZONES}")
    has_move = np.asarray(patches[s.HAS_MOVE].values, dtype=bool)
    in_eval = np.isin(zones, eval_zones)
    codes, n_ifg = _ifg_codes(patches)
    start = np.asarray(patches[s.START_DATE].values)
    if scheme == "paper":
        rng = np.random.default_rng(seed)
        n_train = int(round(train_fraction * n_ifg))
        train_ifg = np.zeros(n_ifg, dtype=bool)
        train_ifg[rng.permutation(n_ifg)[:n_train]] = True
        train, evaluate = train_ifg[codes] & ~in_eval, ~train_ifg[codes] & in_eval
        detail = f"{n_train} train / {n_ifg - n_train} held-out interferograms"
    elif scheme == "temporal":
        dates = np.unique(start)
        n_train = int(round(train_fraction * len(dates)))
        if not 0 < n_train < len(dates):
            raise PatchesError(f"split 'temporal' needs at least 2 start dates, got {len(dates)}")
        cutoff = dates[n_train]
        end = np.asarray(patches[s.END_DATE].values)
        train, evaluate = (start < cutoff) & (end <= cutoff), start >= cutoff
        detail = f"train before {pd.Timestamp(cutoff):%Y-%m-%d}, eval from it"
    else:
        train, evaluate = ~in_eval, in_eval
        detail = "by zone"
    if moving_only:
        train, evaluate = train & has_move, evaluate & has_move
    for side, chosen in (("train", train), ("eval", evaluate)):
        if not chosen.any():
            raise _empty_side_error(scheme, side, zones, has_move, eval_zones, detail)
    labels = np.full(zones.shape, "unused", dtype="<U6")
    labels[train], labels[evaluate] = "train", "eval"
    _leak_check(scheme, labels, codes, np.asarray(patches[s.LOCATION].values))
    attrs = {"scheme": scheme, "seed": int(seed), "train_fraction": float(train_fraction),
             "eval_zones": list(eval_zones), "moving_only": int(moving_only)}
    out = patches.assign_coords({s.SPLIT: (s.SAMPLE, labels, attrs)})
    counts = split_counts(out)
    log.info("split %r (%s):\n%s", scheme, detail, counts.to_string())
    return out


_split = split  # write_patches takes a `split` argument that shadows the function


def _leak_check(scheme: str, labels: np.ndarray, ifg: np.ndarray, loc: np.ndarray) -> None:
    forbidden = {"paper": ("interferogram", "location"), "temporal": ("interferogram",),
                 "spatial": ("location",)}[scheme]
    for name, key in (("interferogram", ifg), ("location", loc)):
        if name in forbidden:
            both = np.intersect1d(key[labels == "train"], key[labels == "eval"])
            if both.size:
                raise PatchesError(f"split {scheme!r} leaks: {both.size} {name}(s) on both train "
                                   f"and eval (e.g. {name} index {both[0]})")


def split_counts(patches: xr.Dataset) -> pd.DataFrame:
    """Patches, with/without a move, locations and interferograms per split side.

    Example
    -------
    >>> split_counts(split(patches))                        # doctest: +SKIP
            patches  with_move  without_move  locations  interferograms
    train      4821       4821             0        160              43
    """
    labels = np.asarray(patches[s.SPLIT].values).astype(str)
    has_move = np.asarray(patches[s.HAS_MOVE].values, dtype=bool)
    codes, _ = _ifg_codes(patches)
    loc = np.asarray(patches[s.LOCATION].values)
    rows = {}
    for side in s.SPLIT_VALUES:
        sel = labels == side
        rows[side] = {"patches": int(sel.sum()), "with_move": int((sel & has_move).sum()),
                      "without_move": int((sel & ~has_move).sum()),
                      "locations": len(np.unique(loc[sel])),
                      "interferograms": len(np.unique(codes[sel]))}
    return pd.DataFrame.from_dict(rows, orient="index")


# ------------------------------------------------------------------ stores
def _compute(obj: Any, client: Any = None, progress: bool = False) -> Any:
    """Compute a dask collection on ``client`` (or the default scheduler), with a bar."""
    import dask

    from isslide_cube.cluster import as_client

    if not dask.is_dask_collection(obj):
        return obj
    client = as_client(client)
    if client is not None:
        future = client.compute(obj)
        if progress:
            from distributed import progress as bar

            bar(future)
        return future.result()
    if progress:
        from dask.diagnostics import ProgressBar

        with ProgressBar():
            return dask.compute(obj)[0]
    return dask.compute(obj)[0]


@dataclass
class PatchesSummary:
    """What :func:`write_patches` wrote; ``str()`` gives the counts table."""

    store: Path
    patch_size: int
    locations: int
    components: int
    interferograms: int
    patches: int
    with_move: int
    without_move: int
    scheme: str
    sides: dict[str, dict[str, int]] = field(default_factory=dict)
    message: str = ""

    def __str__(self) -> str:
        lines = [f"patches store {self.store} ({self.patch_size} x {self.patch_size} px)",
                 f"  locations       {self.locations:>8,} (connected components: {self.components:,})",
                 f"  interferograms  {self.interferograms:>8,}",
                 f"  patches         {self.patches:>8,}",
                 f"  with move       {self.with_move:>8,}",
                 f"  without move    {self.without_move:>8,}"]
        if self.sides:
            lines.append(f"  split {self.scheme!r}:")
            lines += [f"    {side:<7} {c['patches']:>8,} patches ({c['with_move']:,} with move, "
                      f"{c['locations']:,} locations, {c['interferograms']:,} interferograms)"
                      for side, c in self.sides.items()]
        if self.message:
            lines.append(f"  note: {self.message}")
        return "\n".join(lines)


def _open_cube(cube_store: str | Path | xr.Dataset) -> xr.Dataset:
    if isinstance(cube_store, xr.Dataset):
        return cube_store
    from isslide_cube.cube import open_cube

    return open_cube(cube_store)


def write_patches(cube_store: str | Path | xr.Dataset, out: str | Path, size: int = 100,
                  split: str | None = "paper", seed: int = 0, overwrite: bool = False,
                  client: Any = None, progress: bool = False, **split_kwargs: Any,
                  ) -> PatchesSummary:
    """Extract the patches of a cube, split them, and write them to a Zarr store.

    The store (Zarr v3, chunks of 256 samples) holds every patch; the split
    is a ``split`` coordinate written after the data, from the stored
    ``has_move``, so each touched cube chunk is read once.

    Parameters
    ----------
    cube_store
        Cube store path (opened with :func:`isslide_cube.cube.open_cube`) or dataset.
    out
        Patches store to write.
    size
        Patch side in pixels.
    split
        ``paper`` | ``temporal`` | ``spatial`` | ``none`` (or None: no split).
    seed
        Seed of the split.
    overwrite
        Replace an existing ``out``.
    client
        ``distributed.Client``, scheduler address, or None (default scheduler).
    progress
        Show a progress bar while writing.
    **split_kwargs
        ``train_fraction``, ``eval_zones``, ``moving_only`` for :func:`split`.

    Returns
    -------
    PatchesSummary
        Counts (locations, patches, with / without move, per split side).

    Example
    -------
    >>> print(write_patches("cube.zarr", "patches.zarr"))   # doctest: +SKIP
    """
    out = Path(out)
    scheme = "none" if split is None else str(split)
    if scheme not in SCHEMES:
        raise PatchesError(f"unknown split scheme {scheme!r}; use one of {SCHEMES}")
    if out.exists():
        if not overwrite:
            raise PatchesError(f"{out} already exists; pass overwrite=True (--overwrite) to "
                               "replace it")
        shutil.rmtree(out) if out.is_dir() else out.unlink()
    cube = _open_cube(cube_store)
    centres = move_centres(cube, size, client=client)
    patches = extract_patches(cube, size, centres)
    encoding = {s.INTERFEROGRAM: {"chunks": (SAMPLE_CHUNK, len(patches[s.BAND]), size, size)},
                s.MASK: {"chunks": (SAMPLE_CHUNK, size, size)}}
    message = ""
    if patches.sizes[s.SAMPLE] == 0:
        message = ("the global annotation map is empty (no pixel with mask == 1 on any "
                   "interferogram): zero patches written; build the cube with annotations "
                   "that hold polygons")
        log.warning(message)
        patches = patches.compute()
        encoding = {}
    writer = patches.to_zarr(out, mode="w", compute=False, consolidated=False,
                             encoding=encoding)
    _compute(writer, client, progress)
    stored = open_patches(out, validate=False)
    sides: dict[str, dict[str, int]] = {}
    if scheme != "none" and stored.sizes[s.SAMPLE]:
        labelled = _split(stored, scheme, seed=seed, **split_kwargs)
        # appending replaces the group's attrs: write them again
        labels = xr.Dataset(coords={s.SPLIT: labelled[s.SPLIT].variable.astype(object)},
                            attrs=stored.attrs)
        labels.to_zarr(out, mode="a", consolidated=False)
        sides = split_counts(labelled).to_dict(orient="index")
    has_move = np.asarray(stored[s.HAS_MOVE].values, dtype=bool)
    summary = PatchesSummary(
        store=out, patch_size=size, locations=len(centres),
        components=int(centres.attrs.get("n_components", 0)),
        interferograms=int(np.asarray(cube[s.HAS_INTERFEROGRAM].values).sum()),
        patches=int(has_move.size), with_move=int(has_move.sum()),
        without_move=int((~has_move).sum()), scheme=scheme, sides=sides, message=message)
    log.info("%s", summary)
    return summary


def open_patches(store: str | Path, *, validate: bool = True) -> xr.Dataset:
    """Open a patches store lazily (dask, chunked along ``sample``).

    Parameters
    ----------
    store
        A store written by :func:`write_patches`.
    validate
        Check the schema (:func:`isslide_cube.schema.validate_patches`).

    Returns
    -------
    xarray.Dataset
        As :func:`extract_patches` returns, plus ``split`` when it was written.

    Raises
    ------
    PatchesError
        No store at ``store``, or one that breaks the schema.

    Example
    -------
    >>> patches = open_patches("patches.zarr")                # doctest: +SKIP
    >>> patches.sel(sample=patches.split == "train")          # doctest: +SKIP
    """
    store = Path(store)
    if not store.exists():
        raise PatchesError(f"no patches store at {store}; write one with "
                           f"`isslide-cube patches CUBE {store}` (write_patches)")
    ds = xr.open_zarr(store, consolidated=False)
    per_sample = [n for n in (*s.PATCH_COORDS, s.SPLIT) if n in ds.data_vars]
    ds = ds.set_coords(per_sample)
    # per-sample coordinates are small: load them so boolean selection works
    ds = ds.assign_coords({n: ds[n].load() for n in ds.coords if ds[n].dims == (s.SAMPLE,)})
    for name in (s.ZONE, s.SPLIT, s.BAND):  # Zarr strings come back as numpy StringDType
        if name in ds.coords:
            ds = ds.assign_coords({name: (ds[name].dims, np.array(ds[name].values.tolist(), str),
                                          ds[name].attrs)})
    if validate:
        s.validate_patches(ds)
    return ds
