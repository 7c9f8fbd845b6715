"""The build plan: every input found, read and checked before the store is touched.

Discovery (:mod:`isslide_cube.io`), the common grid, the (start_date, delay)
position of each interferogram, the annotation table in the grid's CRS, the
static layers (``layover``, ``zone``) on the grid, the root attributes and the
fingerprint: bad input fails here, so it leaves no store behind.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from isslide_cube import __version__, schema
from isslide_cube.cube._resume import _fingerprint
from isslide_cube.cube._store import ATTR_SOURCE, DEFAULT_CHUNK
from isslide_cube.schema import CubeError, RawDataError

log = logging.getLogger(__package__)


@dataclass
class _Plan:
    """Everything decided before the store is touched."""

    source: Any
    store: Path
    items: list[Any]
    skipped: list[tuple[Path, str]]
    grid: Any
    start_dates: np.ndarray  # datetime64[ns]
    delays: np.ndarray  # int64
    index: list[tuple[int, int]]  # (start_date, delay) position of each item
    table: Any  # GeoDataFrame of polygons in the grid's CRS, or None
    chunk: int
    align: bool
    all_touched: bool
    layover: np.ndarray | None
    zone: np.ndarray | None
    attrs: dict[str, Any]
    fingerprint: str


def _plan(source: Any, store: Path, annotations: Any, chunks: Any, align: bool,
          all_touched: bool) -> _Plan:
    from isslide_cube import annotations as ann
    from isslide_cube.io import check_grids, discover

    raw = Path(source) if isinstance(source, (str, Path)) and Path(source).is_dir() else None
    # The raw layout keeps its interferograms in interferograms/; the rest of the folder
    # (truth/, dem.tif, ...) holds rasters that are not interferograms.
    layout = raw is not None and (raw / schema.RAW_INTERFEROGRAMS).is_dir()
    inventory = discover(raw / schema.RAW_INTERFEROGRAMS if layout else source)
    items = sorted(inventory.items, key=lambda it: (it.first, it.second))
    grid = check_grids(items, align=align)
    chunk = _chunk_size(chunks)
    start_dates = np.array(sorted({it.start_date for it in items}), dtype="datetime64[ns]")
    delays = np.array(sorted({it.delay for it in items}), dtype="int64")
    s_pos = {d: k for k, d in enumerate(start_dates)}
    d_pos = {int(d): k for k, d in enumerate(delays)}
    index = [(s_pos[np.datetime64(it.start_date, "ns")], d_pos[it.delay]) for it in items]

    if annotations is None and raw is not None and (raw / schema.RAW_ANNOTATIONS).is_dir():
        annotations = raw / schema.RAW_ANNOTATIONS
    table, ann_files = None, []
    if annotations is not None:
        ann_files = ann.find_annotation_files(annotations)
        table = ann.read_annotations(ann_files, [it.pair for it in items], crs=grid.crs)
        ann.warn_outside(table, grid.bounds)
        annotated = set(ann.annotated_pairs(ann_files)) | set(
            zip(table[ann.FIRST_DATE], table[ann.SECOND_DATE], strict=True))
        bare = [it.name for it in items if it.pair not in annotated]
        if bare:
            warnings.warn(f"{len(bare)} interferogram(s) have no annotation file in "
                          f"{annotations}; their mask is all 0 (stable): {bare[:10]}",
                          ann.AnnotationWarning, stacklevel=3)
    layover = zone = None
    static: list[Path] = []
    if raw is not None and (raw / schema.RAW_LAYOVER).exists():
        static.append(raw / schema.RAW_LAYOVER)
        layover = _read_static_raster(raw / schema.RAW_LAYOVER, grid, align) > 0
    if raw is not None and (raw / schema.RAW_ZONES).exists():
        static.append(raw / schema.RAW_ZONES)
        zone = ann.rasterize_zones(raw / schema.RAW_ZONES, grid.transform, grid.shape, grid.crs)
    attrs = _source_attrs(items, inventory, source)
    fingerprint = _fingerprint(inventory, [*ann_files, *static], grid, chunk, align,
                               all_touched, annotations is not None)
    return _Plan(source, store, items, list(inventory.skipped), grid, start_dates, delays,
                 index, table, chunk, align, all_touched, layover, zone, attrs, fingerprint)


def _chunk_size(chunks: Any) -> int:
    if chunks is None:
        return DEFAULT_CHUNK
    if isinstance(chunks, dict):
        sizes = {chunks.get(schema.Y, DEFAULT_CHUNK), chunks.get(schema.X, DEFAULT_CHUNK)}
        if len(sizes) != 1:
            raise CubeError(f"spatial chunks must be square, got {chunks}; give one size "
                            "(chunks=500) or equal y and x")
        chunks = sizes.pop()
    if isinstance(chunks, bool) or not isinstance(chunks, (int, np.integer)) or chunks <= 0:
        raise CubeError(f"chunks must be a positive number of pixels, got {chunks!r}")
    return int(chunks)


def _read_static_raster(path: Path, grid: Any, align: bool) -> np.ndarray:
    """Band 1 of a raster on the cube grid (reprojected, nearest, with ``align``)."""
    from isslide_cube.io import grid_of

    own = grid_of(path)
    if own.same_as(grid):
        import rasterio

        with rasterio.open(path) as src:
            return src.read(1)
    if not align:
        raise RawDataError(f"{path} is not on the interferograms' grid "
                           f"({'; '.join(grid.differences(own))}); reproject it onto them, or "
                           "build with --align (align=True)")
    import rioxarray
    from rasterio.enums import Resampling

    da = rioxarray.open_rasterio(path).isel(band=0)
    template = _grid_dataarray(grid)
    return da.rio.reproject_match(template, resampling=Resampling.nearest,
                                  nodata=0).values


def _grid_dataarray(grid: Any) -> Any:
    import rioxarray  # noqa: F401  (registers .rio)
    import xarray as xr

    da = xr.DataArray(np.zeros(grid.shape, "uint8"), dims=(schema.Y, schema.X),
                      coords={schema.Y: grid.y, schema.X: grid.x})
    return da.rio.write_crs(grid.crs).rio.write_transform(grid.transform)


def _source_attrs(items: list[Any], inventory: Any, source: Any) -> dict[str, Any]:
    import rasterio

    attrs: dict[str, Any] = {
        "title": "ISSLIDE interferogram cube",
        "Conventions": "CF-1.10",
        "source": f"{len(items)} interferogram(s) from {source}",
        "history": f"built by isslide_cube {__version__} build_cube",
        schema.ATTR_PHASE_UNWRAPPED: int(inventory.any_unwrapped),
        # what `isslide-cube build SOURCE STORE` resumes from (a file list has no one path)
        ATTR_SOURCE: str(source) if isinstance(source, (str, Path)) else "SOURCE",
    }
    with rasterio.open(items[0].phase_path) as src:
        tags = src.tags()
    for tag, name, cast in ((schema.TAG_WAVELENGTH, "wavelength", float),
                            (schema.TAG_INCIDENCE, "incidence_angle", float),
                            (schema.TAG_PASS, "pass", str),
                            (schema.TAG_POLARISATION, "polarisation", str)):
        if tag in tags:
            try:
                attrs[name] = cast(tags[tag])
            except ValueError:
                log.warning("tag %s=%r of %s is not a %s; not recorded", tag, tags[tag],
                            items[0].phase_path, cast.__name__)
    return attrs

