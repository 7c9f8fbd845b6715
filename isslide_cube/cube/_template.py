"""The store's skeleton: metadata, coordinates and small variables, written first.

:func:`_write_template` writes a lazy dataset with ``to_zarr(compute=False)``
(Zarr v3, zstd, chunks {start_date: 1, delay: 1, band: 2, y: C, x: C}), the
polygon table beside it, then sets ``ATTR_TEMPLATE``: until then a store is
rewritten from scratch, after it a build resumes.
"""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from isslide_cube import schema
from isslide_cube.cube._store import (
    ANNOTATED,
    ANNOTATIONS_FILE,
    ATTR_TEMPLATE,
    DONE,
    INTERNAL_VARS,
    ZSTD_LEVEL,
    _set_attrs,
)

if TYPE_CHECKING:
    from isslide_cube.cube._plan import _Plan


def _template(plan: _Plan) -> Any:
    """The lazy dataset whose ``to_zarr(compute=False)`` writes the store's skeleton.

    Its big variables are single-chunk dask arrays that are never computed: only
    their metadata is written (the Zarr chunking comes from the encoding), and a
    one-task graph costs nothing where a graph of every chunk costs seconds.
    """
    import dask.array as da
    import rioxarray  # noqa: F401
    import xarray as xr

    n_s, n_d = len(plan.start_dates), len(plan.delays)
    height, width = plan.grid.shape
    c = plan.chunk
    has = np.zeros((n_s, n_d), bool)
    for i, j in plan.index:
        has[i, j] = True
    end = plan.start_dates[:, None] + plan.delays[None, :].astype("timedelta64[D]")
    coords = {
        schema.START_DATE: (schema.START_DATE, plan.start_dates, {"long_name": "first acquisition"}),
        schema.DELAY: (schema.DELAY, plan.delays,
                       {"units": "days", "long_name": "days from first to second acquisition"}),
        schema.BAND: (schema.BAND, np.array(schema.BANDS, dtype=object)),
        schema.Y: (schema.Y, plan.grid.y), schema.X: (schema.X, plan.grid.x),
        schema.END_DATE: ((schema.START_DATE, schema.DELAY), end.astype("datetime64[ns]"),
                          {"long_name": "second acquisition"}),
        schema.HAS_INTERFEROGRAM: ((schema.START_DATE, schema.DELAY), has),
    }
    pair = (schema.START_DATE, schema.DELAY)

    def named(var: str) -> str:  # a given name spares Dask tokenizing (cloudpickle) each array
        return f"isslide-template-{var}-{plan.fingerprint[:16]}"

    variables = {
        schema.INTERFEROGRAM: (schema.CUBE_DIMS, da.full(
            (n_s, n_d, 2, height, width), np.nan, dtype="float32", chunks=-1,
            name=named(schema.INTERFEROGRAM)),
            {"long_name": "coherence (0..1) and wrapped phase (radians, [-pi, pi))"}),
        DONE: (pair, da.zeros((n_s, n_d), dtype="uint8", chunks=-1, name=named(DONE))),
        ANNOTATED: (pair, da.zeros((n_s, n_d), dtype="int64", chunks=-1,
                                   name=named(ANNOTATED))),
    }
    if plan.table is not None:
        variables[schema.MASK] = (schema.MASK_DIMS, da.full(
            (n_s, n_d, height, width), schema.MASK_FILL, dtype="uint8", chunks=-1,
            name=named(schema.MASK)),
            {"long_name": "moving area", "flag_values": [0, 1],
             "flag_meanings": "stable moving"})
        variables[schema.MOVE_ID] = (schema.MASK_DIMS, da.full(
            (n_s, n_d, height, width), schema.MOVE_ID_FILL, dtype="int32", chunks=-1,
            name=named(schema.MOVE_ID)),
            {"long_name": "annotated move id (0: none)"})
    if plan.layover is not None:
        variables[schema.LAYOVER] = ((schema.Y, schema.X), plan.layover.astype(bool),
                                     {"long_name": "layover or shadow"})
    if plan.zone is not None:
        variables[schema.ZONE] = ((schema.Y, schema.X), plan.zone.astype(schema.ZONE_DTYPE),
                                  schema.zone_attrs())
    ds = xr.Dataset(variables, coords=coords, attrs=dict(plan.attrs))
    ds = ds.rio.write_crs(plan.grid.crs).rio.write_transform(plan.grid.transform)
    ds.attrs[schema.ATTR_FINGERPRINT] = plan.fingerprint
    ds.attrs[ATTR_TEMPLATE] = 0
    ds.attrs[schema.ATTR_COMPLETE] = 0
    ds.attrs["chunk_size"] = c
    ds.attrs["all_touched"] = int(plan.all_touched)
    return ds


def _encoding(ds: Any, chunk: int) -> dict[str, dict[str, Any]]:
    from zarr.codecs import ZstdCodec

    zstd = [ZstdCodec(level=ZSTD_LEVEL)]
    spatial = {schema.INTERFEROGRAM: ((1, 1, 2, chunk, chunk), np.nan),
               schema.MASK: ((1, 1, chunk, chunk), schema.MASK_FILL),
               schema.MOVE_ID: ((1, 1, chunk, chunk), schema.MOVE_ID_FILL)}
    enc: dict[str, dict[str, Any]] = {}
    for name, (chunks, fill) in spatial.items():
        if name in ds:
            enc[name] = {"chunks": chunks, "compressors": zstd, "_FillValue": fill,
                         "fill_value": fill, "grid_mapping": schema.SPATIAL_REF}
    for name in (schema.LAYOVER, schema.ZONE):
        if name in ds:
            enc[name] = {"chunks": (chunk, chunk), "compressors": zstd,
                         "grid_mapping": schema.SPATIAL_REF}
    for name in INTERNAL_VARS:
        enc[name] = {"chunks": (1, 1), "compressors": None}
    for name in (schema.START_DATE, schema.END_DATE):
        enc[name] = {"units": "days since 1970-01-01", "calendar": "proleptic_gregorian",
                     "dtype": "int64"}
    return enc


def _write_template(plan: _Plan) -> None:
    ds = _template(plan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)  # consolidated metadata notice
        ds.to_zarr(plan.store, mode="w", compute=False, encoding=_encoding(ds, plan.chunk),
                   zarr_format=3, consolidated=False)
    if plan.table is not None:
        tmp = plan.store / (ANNOTATIONS_FILE + ".tmp")
        plan.table.to_parquet(tmp, index=False)
        os.replace(tmp, plan.store / ANNOTATIONS_FILE)
    _set_attrs(plan.store, {ATTR_TEMPLATE: 1})

