"""Reading a cube back: the arrays lazily (dask) with their CRS, and the polygon table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from isslide_cube import schema
from isslide_cube.cube._store import ANNOTATIONS_FILE, ATTR_SOURCE, INTERNAL_VARS, _root_attrs
from isslide_cube.schema import CubeError, IncompleteCubeError


def open_cube(store: str | Path) -> Any:
    """Open a complete cube store lazily (dask), with its CRS restored.

    Parameters
    ----------
    store
        A store written by :func:`build_cube`.

    Returns
    -------
    xarray.Dataset
        Dask-backed, chunked as stored ({start_date: 1, delay: 1, band: 2,
        y: C, x: C}); ``mask`` and ``move_id`` undecoded (uint8 255 / int32
        -1 where there is no interferogram: use ``has_interferogram``);
        ``ds.rio.crs`` and ``ds.rio.transform()`` work. Passes
        :func:`isslide_cube.schema.validate_cube`.

    Raises
    ------
    CubeError
        No cube at ``store``.
    IncompleteCubeError
        The build did not finish; the message quotes the command that resumes it.

    Examples
    --------
    >>> ds = open_cube("cube.zarr")  # doctest: +SKIP
    >>> ds.rio.crs  # doctest: +SKIP
    CRS.from_epsg(4326)
    """
    import rioxarray  # noqa: F401  (registers .rio)
    import xarray as xr

    store = Path(store)
    attrs = _root_attrs(store)
    if attrs is None or schema.ATTR_FINGERPRINT not in attrs:
        raise CubeError(f"no cube store at {store}; build one with "
                        f"`isslide-cube build SOURCE {store}`")
    if not attrs.get(schema.ATTR_COMPLETE):
        source = attrs.get(ATTR_SOURCE, "SOURCE")
        raise IncompleteCubeError(
            f"cube store {store} is incomplete (its build was interrupted); resume it with "
            f"`isslide-cube build {source} {store}` (or build_cube({str(source)!r}, "
            f"{str(store)!r}))")
    raw = {schema.MASK: False, schema.MOVE_ID: False}
    ds = xr.open_zarr(store, chunks={}, consolidated=True, zarr_format=3,
                      mask_and_scale=raw, decode_coords="all", decode_timedelta=False,
                      drop_variables=list(INTERNAL_VARS))
    for name in (schema.END_DATE, schema.HAS_INTERFEROGRAM):
        ds[name] = ds[name].load()
    ds = ds.assign_coords({schema.BAND: np.array([str(b) for b in ds[schema.BAND].values]),
                           schema.START_DATE: ds[schema.START_DATE].astype("datetime64[ns]"),
                           schema.END_DATE: ds[schema.END_DATE].astype("datetime64[ns]")})
    schema.validate_cube(ds)
    return ds


def open_annotations(store: str | Path) -> Any:
    """The polygon table of a cube: one row per annotated polygon, in the cube's CRS.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``move_id``, ``class``, ``confidence``, ``repetitions``,
        ``first_date``, ``second_date``, ``delay``, ``source_file``, ``geometry``.

    Raises
    ------
    CubeError
        The cube was built without annotations (or ``store`` is no cube).

    Examples
    --------
    >>> table = open_annotations("cube.zarr")  # doctest: +SKIP
    >>> table.groupby("class").size()  # doctest: +SKIP
    """
    import geopandas as gpd

    path = Path(store) / ANNOTATIONS_FILE
    if not path.exists():
        raise CubeError(f"{store} has no {ANNOTATIONS_FILE}: it was built without annotations "
                        "(rebuild with annotations=FOLDER / --annotations FOLDER)")
    return gpd.read_parquet(path)
