"""Small cubes and patches datasets in the contract formats (DESIGN.md 3-4), for issue 8 tests.

The phase inside each move is known exactly: ``4 pi / lambda * v * delay / 365.25``
(plus a little noise), so velocities can be checked against the truth table.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import rioxarray  # noqa: F401  (registers .rio)
import xarray as xr
from affine import Affine

from isslide_cube import schema

TRANSFORM = Affine(0.0005, 0.0, 6.5, 0.0, -0.0005, 45.3)  # EPSG:4326, ~40 m pixels

# move_id, centre row/col, radius (px), LOS velocity (m/yr), active start-date indices
MOVES = (
    (1, 18, 20, 7, 0.25, None),
    (2, 44, 40, 9, -0.08, None),
    (3, 20, 50, 5, 0.15, (0, 1, 2, 3)),  # stops after the 4th date: a deactivation period
)


def phase_of(v: float, delay: int, wavelength: float = schema.WAVELENGTH_M) -> float:
    return 4 * np.pi / wavelength * v * delay / 365.25


def make_cube(n_dates: int = 8, delays=(6, 12, 18), size: int = 64, seed: int = 0,
              noise: float = 0.05, chunk: int = 32) -> xr.Dataset:
    """An in-memory cube following the schema, with the moves of :data:`MOVES`."""
    rng = np.random.default_rng(seed)
    starts = pd.date_range("2018-07-02", periods=n_dates, freq="6D").values.astype("datetime64[ns]")
    delays = np.asarray(delays, dtype=np.int64)
    last = starts[-1]
    end = starts[:, None] + delays[None, :].astype("timedelta64[D]")
    has = end <= last
    n_s, n_d = has.shape
    yy, xx = np.mgrid[0:size, 0:size]
    ifg = np.full((n_s, n_d, 2, size, size), np.nan, np.float32)
    mask = np.full((n_s, n_d, size, size), schema.MASK_FILL, np.uint8)
    move_id = np.full((n_s, n_d, size, size), schema.MOVE_ID_FILL, np.int32)
    for i in range(n_s):
        for j in range(n_d):
            if not has[i, j]:
                continue
            phase = rng.normal(0, noise, (size, size))
            coh = np.clip(0.7 + rng.normal(0, 0.05, (size, size)), 0, 1)
            mask[i, j] = 0
            move_id[i, j] = 0
            for mid, r0, c0, rad, v, active in MOVES:
                if active is not None and i not in active:
                    continue
                inside = (yy - r0) ** 2 + (xx - c0) ** 2 <= rad ** 2
                phase[inside] += phase_of(v, int(delays[j]))
                mask[i, j][inside] = 1
                move_id[i, j][inside] = mid
            ifg[i, j, 0] = coh
            ifg[i, j, 1] = np.angle(np.exp(1j * phase))
    x = TRANSFORM.c + (np.arange(size) + 0.5) * TRANSFORM.a
    y = TRANSFORM.f + (np.arange(size) + 0.5) * TRANSFORM.e
    dims4 = schema.MASK_DIMS
    ds = xr.Dataset(
        {
            schema.INTERFEROGRAM: (schema.CUBE_DIMS, ifg),
            schema.MASK: (dims4, mask),
            schema.MOVE_ID: (dims4, move_id),
            schema.LAYOVER: (("y", "x"), np.zeros((size, size), bool)),
            schema.ZONE: (("y", "x"), np.ones((size, size), np.uint8), schema.zone_attrs()),
        },
        coords={
            schema.START_DATE: starts,
            schema.DELAY: (schema.DELAY, delays, {"units": "days"}),
            schema.BAND: list(schema.BANDS),
            "y": y, "x": x,
            schema.END_DATE: ((schema.START_DATE, schema.DELAY), end.astype("datetime64[ns]")),
            schema.HAS_INTERFEROGRAM: ((schema.START_DATE, schema.DELAY), has),
        },
    )
    ds = ds.rio.write_crs("EPSG:4326").rio.write_transform(TRANSFORM)
    for v in ds.data_vars:
        ds[v].encoding.pop("grid_mapping", None)
    return ds


def truth_table(wavelength: float = schema.WAVELENGTH_M) -> pd.DataFrame:
    return pd.DataFrame([{"move_id": m[0], "velocity_m_per_yr": m[4]} for m in MOVES])


def write_cube(ds: xr.Dataset, path: Path, chunk: int = 32) -> Path:
    chunks = {schema.START_DATE: 1, schema.DELAY: 1, schema.BAND: 2, "y": chunk, "x": chunk}
    ds = ds.copy()
    # what build_cube marks: a finished build, so open_cube accepts the store
    ds.attrs.update({schema.ATTR_FINGERPRINT: "test-fixture", schema.ATTR_COMPLETE: 1})
    enc = {schema.MASK: {"_FillValue": schema.MASK_FILL},
           schema.MOVE_ID: {"_FillValue": schema.MOVE_ID_FILL}}
    ds = _object_strings(ds.chunk({k: v for k, v in chunks.items() if k in ds.dims}))
    with warnings.catch_warnings():  # zarr's notice that v3 has no consolidated metadata spec
        warnings.simplefilter("ignore", category=UserWarning)
        ds.to_zarr(path, mode="w", consolidated=True, zarr_format=3, encoding=enc)
    return Path(path)


def _object_strings(ds: xr.Dataset) -> xr.Dataset:
    # zarr v3 has no spec for numpy's fixed-width unicode: store strings as objects (in
    # memory, not dask, so xarray need not load them to find their dtype)
    return ds.assign_coords({n: (ds[n].dims, ds[n].values.astype(object)) for n in ds.coords
                             if ds[n].dtype.kind == "U"})


def open_store(path: Path) -> xr.Dataset:
    try:
        from isslide_cube.cube import open_cube
        return open_cube(path)
    except ImportError:
        return xr.open_zarr(path, decode_coords="all", mask_and_scale=False)


def make_patches(cube: xr.Dataset, size: int = 16, locations=((10, 12), (36, 32), (40, 4)),
                 drop=()) -> xr.Dataset:
    """Patches at every interferogram of each location (row, col), like ``extract_patches``.

    ``drop`` lists (location, start index, delay index) triples to leave out.
    """
    ifg = cube[schema.INTERFEROGRAM].values
    mask = cube[schema.MASK].values
    has = cube[schema.HAS_INTERFEROGRAM].values
    rows = []
    for loc, (r, c) in enumerate(locations):
        for i in range(cube.sizes[schema.START_DATE]):
            for j in range(cube.sizes[schema.DELAY]):
                if has[i, j] and (loc, i, j) not in drop:
                    rows.append((loc, i, j, r, c))
    n = len(rows)
    img = np.stack([ifg[i, j, :, r:r + size, c:c + size] for _, i, j, r, c in rows])
    msk = np.stack([mask[i, j, r:r + size, c:c + size] for _, i, j, r, c in rows]).astype(np.uint8)
    loc, ii, jj, rr, cc = (np.array(a) for a in zip(*rows, strict=True))
    frac = msk.reshape(n, -1).mean(1).astype(np.float32)
    t = TRANSFORM
    ds = xr.Dataset(
        {schema.INTERFEROGRAM: (schema.PATCH_DIMS, img),
         schema.MASK: ((schema.SAMPLE, "y", "x"), msk)},
        coords={
            schema.BAND: list(schema.BANDS),
            schema.START_DATE: (schema.SAMPLE, cube[schema.START_DATE].values[ii]),
            schema.DELAY: (schema.SAMPLE, cube[schema.DELAY].values[jj]),
            schema.END_DATE: (schema.SAMPLE, cube[schema.END_DATE].values[ii, jj]),
            schema.LOCATION: (schema.SAMPLE, loc),
            schema.ZONE: (schema.SAMPLE, np.array(["vanoise"] * n)),
            schema.ROW: (schema.SAMPLE, rr), schema.COL: (schema.SAMPLE, cc),
            schema.LAT: (schema.SAMPLE, t.f + (rr + size / 2) * t.e),
            schema.LON: (schema.SAMPLE, t.c + (cc + size / 2) * t.a),
            schema.HAS_MOVE: (schema.SAMPLE, frac > 0),
            schema.MOVING_FRACTION: (schema.SAMPLE, frac),
            # the paper split, by interferogram: the last start dates are held out
            schema.SPLIT: (schema.SAMPLE, np.where(ii < 5, "train", "eval")),
        },
        attrs={"crs": cube.rio.crs.to_wkt(), "transform": list(TRANSFORM.to_gdal()),
               "patch_size": size},
    )
    return ds


def open_patches(path: Path) -> xr.Dataset:
    from isslide_cube.patches import open_patches as _open

    return _open(path)


def write_patches(ds: xr.Dataset, path: Path) -> Path:
    _object_strings(ds.chunk({schema.SAMPLE: 256})).to_zarr(path, mode="w", consolidated=False)
    return Path(path)
