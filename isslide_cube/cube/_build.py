"""The interferogram cube: a resumable Zarr v3 store built on Dask, and its readers.

:func:`build_cube` stacks every interferogram of a raw folder (or manifest)
into ``interferogram (start_date, delay, band, y, x)`` with the annotations
rasterized onto the same grid as ``mask``/``move_id`` (DESIGN.md section 3):

1. everything is discovered and checked first (:mod:`isslide_cube.io`,
   :mod:`isslide_cube.annotations`), so bad input leaves no store behind;
2. the template (metadata, coordinates, ``layover``, ``zone``, the polygon
   table) is written from a lazy dataset with ``to_zarr(compute=False)``;
3. one Dask task per interferogram writes all of that interferogram's chunks
   (chunks are 1 along ``start_date`` and ``delay``, so no chunk has two
   writers), then its done-marker (the internal ``build_done`` array);
4. the completion flag (``schema.ATTR_COMPLETE``) is set last.

Rerunning the same build resumes it: only the interferograms without a
done-marker are written again, and the result equals an uninterrupted build
array for array (each task rewrites whole chunks, so a task retried after a
crash or a lost worker is harmless). A store built from other inputs
(``schema.ATTR_FINGERPRINT``) is refused unless ``overwrite=True``.

The store
---------
Zarr v3, zstd, chunks {start_date: 1, delay: 1, band: 2, y: C, x: C} (C = 500
by default). Where a (start_date, delay) cell has no interferogram nothing is
written, so the arrays read their fill values: ``interferogram`` NaN,
``mask`` 255 (``_FillValue``), ``move_id`` -1 (``schema.MOVE_ID_FILL``).
Root attributes: ``wavelength``, ``incidence_angle``, ``pass``,
``polarisation`` (from the GDAL tags, when present), ``phase_was_unwrapped``
(0/1), ``source``, the fingerprint, the template/complete flags (0/1),
``chunk_size``, ``all_touched``. Beside the arrays: ``annotations.parquet``
(GeoParquet, :func:`open_annotations`) and two internal (start_date, delay)
arrays, ``build_done`` and ``build_annotated_pixels``, that
:func:`open_cube` drops. Metadata is consolidated when the build completes.

Examples
--------
>>> from isslide_cube.cube import build_cube, open_cube
>>> summary = build_cube("raw", "cube.zarr")  # doctest: +SKIP
>>> ds = open_cube("cube.zarr")  # doctest: +SKIP
>>> ds.interferogram.sel(delay=12, band="phase")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from isslide_cube import __version__, schema
from isslide_cube.schema import CubeError, IncompleteCubeError, RawDataError

log = logging.getLogger(__name__)

DEFAULT_CHUNK = 500  # spatial chunk side: a multiple of the 100 px patch
ZSTD_LEVEL = 3
DONE = "build_done"  # (start_date, delay) uint8, 1 once an interferogram is written
ANNOTATED = "build_annotated_pixels"  # (start_date, delay) int64, moving pixels written
INTERNAL_VARS = (DONE, ANNOTATED)
ATTR_TEMPLATE = "isslide_template_complete"
ATTR_SOURCE = "isslide_source"
ANNOTATIONS_FILE = "annotations.parquet"
# Testing only: SIGKILL this build (its process group when it leads one, e.g. the CLI
# started in a new session) once this many interferograms were written by this call.
CRASH_ENV = "ISSLIDE_CUBE_CRASH_AFTER"


# ----------------------------------------------------------------- summary
@dataclass
class BuildSummary:
    """What :func:`build_cube` left in the store (``str()`` gives a readable report)."""

    store: Path
    interferograms: int
    dates: int
    start_dates: int
    delays: tuple[int, ...]
    grid: Any
    size_bytes: int
    annotated_pixels: int | None
    written: int
    resumed: bool
    seconds: float
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def __str__(self) -> str:
        g = self.grid
        crs = g.crs.to_epsg() and f"EPSG:{g.crs.to_epsg()}" or g.crs.to_string()[:60]
        lines = [
            f"cube {self.store}",
            f"  interferograms: {self.interferograms} ({self.written} written by this run"
            f"{', resumed' if self.resumed else ''}, {self.seconds:.1f} s)",
            f"  dates: {self.dates} acquisitions, {self.start_dates} start dates",
            f"  delays (days): {', '.join(map(str, self.delays))}",
            f"  grid: {g.height} x {g.width} px, {crs}, pixel {g.res[0]:.6g} x {g.res[1]:.6g}",
            f"  size on disk: {self.size_bytes / 2**20:.1f} MiB",
            "  annotated pixels: " + ("none (no annotations)" if self.annotated_pixels is None
                                      else f"{self.annotated_pixels:,}"),
        ]
        if self.skipped:
            lines.append(f"  skipped files: {len(self.skipped)}")
            lines += [f"    - {p}: {why}" for p, why in self.skipped[:20]]
        return "\n".join(lines)


# ------------------------------------------------------------------- plan
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
    files = [f for p in (*ann_files, *static) for f in (p, *_side_files(p))]
    payload = {
        "inventory": inventory.fingerprint(),
        "files": [(str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns) for f in files],
        "grid": grid.to_dict(), "chunk": chunk, "align": align, "all_touched": all_touched,
        "annotations": annotations is not None,
    }
    fingerprint = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
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


def _side_files(path: Path) -> list[Path]:
    if path.suffix.lower() != ".shp":
        return []
    return [p for p in path.parent.glob(path.stem + ".*") if p != path]


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


# --------------------------------------------------------------- template
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


def _set_attrs(store: Path, attrs: dict[str, Any]) -> None:
    import zarr

    zarr.open_group(store, mode="r+", zarr_format=3).attrs.update(attrs)


# ------------------------------------------------------------------- task
class _Job:
    """The arguments of one interferogram's task, opaque to Dask (it does not traverse them)."""

    __slots__ = ("store", "item", "i", "j", "grid", "shapes", "chunk", "align", "all_touched")

    def __init__(self, store: str, item: Any, i: int, j: int, grid: Any, shapes: list | None,
                 chunk: int, align: bool, all_touched: bool) -> None:
        self.store, self.item, self.i, self.j, self.grid = store, item, i, j, grid
        self.shapes, self.chunk, self.align, self.all_touched = shapes, chunk, align, all_touched

    def __getstate__(self) -> tuple:
        return tuple(getattr(self, k) for k in self.__slots__)

    def __setstate__(self, state: tuple) -> None:
        for k, v in zip(self.__slots__, state, strict=True):
            setattr(self, k, v)


def _write_interferogram(job: _Job) -> int:
    """Write interferogram ``item`` at (``i``, ``j``): every chunk of it, then its done-marker.

    Runs on a Dask worker. Writes one row of chunks at a time so a worker holds
    at most ``2 x 2 chunk x width`` floats, whatever the grid. Idempotent.

    Returns
    -------
    int
        Moving pixels written to ``mask`` (0 without annotations).
    """
    import zarr

    from isslide_cube.annotations import rasterize_pair

    store, i, j, grid = job.store, job.i, job.j, job.grid
    # one metadata read per array and task (each zarr.open_array re-reads zarr.json)
    group = zarr.open_group(store, mode="r+", zarr_format=3)
    ifg = group[schema.INTERFEROGRAM]
    for r0, rows in _chunk_rows(job):
        ifg[i, j, :, r0:r0 + rows.shape[1], :] = rows
    moving = 0
    if job.shapes is not None:
        # one rasterization gives both (rasterize_pair burns move_id, mask is move_id > 0)
        mask, move_id = rasterize_pair(job.shapes, grid.transform, grid.shape,
                                       all_touched=job.all_touched)
        group[schema.MASK][i, j] = mask
        group[schema.MOVE_ID][i, j] = move_id
        moving = int(np.count_nonzero(mask))
    group[ANNOTATED][i, j] = moving
    # last: the interferogram counts as written once its marker is on disk
    group[DONE][i, j] = 1
    return moving


def _chunk_rows(job: _Job) -> Any:
    """Yield ``(row, rows)``: each row of chunks of the interferogram as float32 ``(2, n, width)``.

    Reads follow the file's tiling: a chunk row that ends inside a row of
    GeoTIFF tiles (500 px chunks on 256 px tiles) reads up to the end of that
    tile row and keeps the surplus for the next chunk row, so no tile is
    decompressed twice. The values are those of a whole read, window by window.
    """
    from isslide_cube.io import read_interferogram

    height, chunk = job.grid.height, job.chunk
    tile = 1 if job.align else _tile_height(job.item.phase_path, job.item.phase_band)
    if tile > chunk:  # holding a tile row taller than a chunk row would cost its memory
        tile = 1
    held = np.empty((2, 0, job.grid.width), np.float32)  # rows [r0, read_to) already read
    read_to = 0
    for r0 in range(0, height, chunk):
        r1 = min(r0 + chunk, height)
        if read_to < r1:
            end = min(height, -(-r1 // tile) * tile)
            new = _read_rows(read_interferogram, job.item, job.grid, read_to, end, job.align)
            held = new if not held.shape[1] else np.concatenate([held, new], axis=1)
            read_to = end
        yield r0, held[:, :r1 - r0]
        held = held[:, r1 - r0:]


def _tile_height(path: Path, band: int) -> int:
    """Rows per block of ``path`` (GeoTIFF tile or strip height); 1 when unknown."""
    import rasterio

    from isslide_cube.io.discover import GDAL_READ_ENV

    try:
        with rasterio.Env(**GDAL_READ_ENV), rasterio.open(path) as src:
            rows = int(src.block_shapes[band - 1][0])
    except (rasterio.errors.RasterioError, IndexError):
        return 1  # read_interferogram names the file and the fix
    return max(rows, 1)


def _read_rows(read: Any, item: Any, grid: Any, r0: int, r1: int, align: bool) -> np.ndarray:
    from rasterio.windows import Window

    window = Window(0, r0, grid.width, r1 - r0)
    # validate_values: coherence outside [0, 1] or a "wrapped" phase beyond pi is an error
    return np.asarray(read(item, grid, window=window, align=align, validate_values=True),
                      dtype="float32")


def _shapes_by_pair(plan: _Plan) -> dict[tuple, list]:
    from isslide_cube.annotations import FIRST_DATE, SECOND_DATE

    out: dict[tuple, list] = {}
    if plan.table is None:
        return out
    for (first, second), rows in plan.table.groupby([FIRST_DATE, SECOND_DATE], sort=False):
        out[(pd.Timestamp(first), pd.Timestamp(second))] = list(
            zip(rows.geometry.values, rows["move_id"].astype(int), strict=True))
    return out


# ------------------------------------------------------------------ build
def build_cube(
    source: Any,
    store: str | Path,
    *,
    annotations: str | Path | Sequence[str | Path] | None = None,
    chunks: int | dict[str, int] | None = None,
    client: Any = None,
    overwrite: bool = False,
    align: bool = False,
    all_touched: bool = False,
    progress: bool = False,
) -> BuildSummary:
    """Build (or resume) the Zarr v3 cube of every interferogram of ``source``.

    Parameters
    ----------
    source
        A raw folder (the layout of :func:`isslide_cube.synthetic.generate`,
        or any folder :func:`isslide_cube.io.discover` understands), a list of
        files, or a manifest (``.csv``/``.json``). Only read, never written.
        ``layover.tif`` and ``zones.gpkg`` in a raw folder become ``layover``
        and ``zone``.
    store
        The Zarr store (a local folder) to write.
    annotations
        A folder (or file, or list of files) of annotation polygons, any OGR
        format and CRS; default: ``SOURCE/annotations`` when it exists. Without
        any, the cube has no ``mask``/``move_id``.
    chunks
        Spatial chunk side in pixels (default 500; keep it a multiple of the
        patch size), or ``{"y": C, "x": C}``.
    client
        A ``distributed.Client`` or a scheduler address to compute on; None
        uses Dask's default scheduler. Never creates a cluster.
    overwrite
        Replace whatever is at ``store`` (otherwise a store built from the same
        inputs is resumed, or returned as is when complete, and any other
        content is refused).
    align
        Reproject files on another grid onto the first interferogram's grid.
    all_touched
        Rasterize every pixel a polygon touches (default: pixel centres).
    progress
        Show a tqdm bar (interferograms written / total).

    Returns
    -------
    BuildSummary
        Interferograms, dates, delays, grid, size on disk, annotated pixels.

    Raises
    ------
    RawDataError, RawFileNotFoundError
        Bad input (no store is left: values are checked while the tasks read
        them, and a store started by this call is removed).
    CubeError
        ``store`` holds something else than a build of these inputs, and
        ``overwrite`` is False (it is left intact).

    Examples
    --------
    >>> from isslide_cube.cluster import local_client
    >>> with local_client(n_workers=2) as client:  # doctest: +SKIP
    ...     print(build_cube("raw", "cube.zarr", client=client, progress=True))
    """
    started = time.perf_counter()
    store = Path(store)
    plan = _plan(source, store, annotations, chunks, align, all_touched)
    state = _store_state(store, plan.fingerprint, overwrite)
    resumed = state == "resume"
    if state == "complete":
        log.info("%s is already complete for these inputs; nothing to do", store)
        return _summary(plan, 0, False, started)
    if state == "fresh":
        if store.exists():
            shutil.rmtree(store) if store.is_dir() else store.unlink()
        _write_template(plan)
    todo = _todo(plan) if resumed else list(range(len(plan.items)))
    log.info("building %s: %d of %d interferogram(s) to write", store, len(todo),
             len(plan.items))
    try:
        _run(plan, todo, client, progress)
    except RawDataError:
        # A file's values are wrong (coherence outside [0, 1], a corrupt block): fixing
        # it changes the inputs' fingerprint, so a store started here could never be
        # resumed. Leave none behind; a resumed store is left as it was.
        if not resumed:
            shutil.rmtree(store, ignore_errors=True)
        raise
    _finish(plan)
    return _summary(plan, len(todo), resumed, started)


def _store_state(store: Path, fingerprint: str, overwrite: bool) -> str:
    """'fresh' (write from scratch), 'resume', or 'complete'; CubeError for foreign content."""
    if not store.exists() or (store.is_dir() and not any(store.iterdir())):
        return "fresh"
    if overwrite:
        log.warning("overwriting %s", store)
        return "fresh"
    attrs = _root_attrs(store)
    fix = ("pass --overwrite (overwrite=True) to replace it, or choose another STORE")
    if attrs is None or schema.ATTR_FINGERPRINT not in attrs:
        raise CubeError(f"{store} exists and is not a cube built by isslide_cube; {fix}")
    if attrs[schema.ATTR_FINGERPRINT] != fingerprint:
        raise CubeError(f"{store} exists and was built from other inputs (files, annotations, "
                        f"chunks or options differ); {fix}")
    if attrs.get(schema.ATTR_COMPLETE):
        return "complete"
    return "resume" if attrs.get(ATTR_TEMPLATE) else "fresh"


def _root_attrs(store: Path) -> dict[str, Any] | None:
    path = store / "zarr.json"
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return meta.get("attributes", {}) if meta.get("node_type") == "group" else None


def _todo(plan: _Plan) -> list[int]:
    import zarr

    done = zarr.open_array(plan.store / DONE, mode="r", zarr_format=3)[...]
    todo = [k for k, (i, j) in enumerate(plan.index) if done[i, j] != 1]
    log.info("resuming %s: %d interferogram(s) already written", plan.store,
             len(plan.index) - len(todo))
    return todo


def _run(plan: _Plan, todo: list[int], client: Any, progress: bool) -> None:
    """One task per interferogram, computed on ``client`` or the default scheduler."""
    import dask

    from isslide_cube.cluster import as_client

    shapes = _shapes_by_pair(plan)
    write = dask.delayed(_write_interferogram, pure=False)
    tasks = []
    for k in todo:
        item, (i, j) = plan.items[k], plan.index[k]
        pair_shapes = None if plan.table is None else shapes.get(item.pair, [])
        job = _Job(str(plan.store), item, i, j, plan.grid, pair_shapes, plan.chunk, plan.align,
                   plan.all_touched)
        # the store is in the key: two builds on one cluster never share a task
        token = dask.base.tokenize(str(plan.store.resolve()), plan.fingerprint, item.name)
        tasks.append(write(job, dask_key_name=f"write-interferogram-{item.name}-{token}"))
    if not tasks:
        return
    bar = _bar(len(tasks), progress)
    owned = isinstance(client, str)  # a client we open from an address, we close
    client = as_client(client)
    try:
        if client is not None:
            from distributed import as_completed

            futures = client.compute(tasks)
            for n, future in enumerate(as_completed(futures), start=1):
                future.result()  # re-raises a task's error here
                bar.update(1)
                _maybe_crash(n)
        else:
            from dask.callbacks import Callback

            keys = {t.key for t in tasks}
            counter = [0]

            def _posttask(key, result, dsk, state, worker_id):
                if key in keys:
                    counter[0] += 1
                    bar.update(1)
                    _maybe_crash(counter[0])

            with Callback(posttask=_posttask):
                dask.compute(*tasks, scheduler=_default_scheduler())
    finally:
        bar.close()
        if owned:
            client.close()


def _default_scheduler() -> Any:
    """Dask's default scheduler for ``dask.compute``, without importing ``distributed``.

    Dask's own lookup imports ``distributed`` (~0.5 s) only to ask for a default
    ``Client``; none can exist before ``distributed`` is imported, and then (or
    with a configured ``scheduler``) Dask's lookup is used as is.
    """
    import sys

    import dask

    if "distributed" in sys.modules or dask.config.get("scheduler", None) is not None:
        return None
    import dask.threaded

    return dask.threaded.get  # the default for delayed tasks


def _bar(total: int, progress: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="interferograms", unit="ifg", disable=not progress)


def _maybe_crash(n_written: int) -> None:
    after = os.environ.get(CRASH_ENV)
    if not after or n_written < int(after):
        return
    log.error("%s=%s: killing this build on purpose (testing)", CRASH_ENV, after)
    if os.getpgrp() == os.getpid():  # we lead our group (a CLI run in its own session)
        os.killpg(os.getpgrp(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def _finish(plan: _Plan) -> None:
    import zarr

    done = zarr.open_array(plan.store / DONE, mode="r", zarr_format=3)[...]
    missing = [plan.items[k].name for k, (i, j) in enumerate(plan.index) if done[i, j] != 1]
    if missing:  # a task returned without its marker: never expected, never hidden
        raise CubeError(f"{plan.store}: interferograms {missing[:10]} were not written; rerun "
                        f"`isslide-cube build {plan.source} {plan.store}` to finish")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        zarr.consolidate_metadata(plan.store, zarr_format=3)
    _set_attrs(plan.store, {schema.ATTR_COMPLETE: 1})  # last


def _summary(plan: _Plan, written: int, resumed: bool, started: float) -> BuildSummary:
    import zarr

    annotated = None
    if plan.table is not None:
        annotated = int(zarr.open_array(plan.store / ANNOTATED, mode="r", zarr_format=3)[...]
                        .sum())
    dates = {it.first for it in plan.items} | {it.second for it in plan.items}
    return BuildSummary(
        store=plan.store, interferograms=len(plan.items), dates=len(dates),
        start_dates=len(plan.start_dates), delays=tuple(int(d) for d in plan.delays),
        grid=plan.grid, size_bytes=_du(plan.store), annotated_pixels=annotated,
        written=written, resumed=resumed, seconds=time.perf_counter() - started,
        skipped=plan.skipped)


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


# ------------------------------------------------------------------- read
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
