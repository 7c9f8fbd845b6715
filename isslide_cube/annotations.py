"""Annotation polygons to rasters aligned with the cube, and their attribute table.

The annotators drew one vector file per interferogram (the raw layout's
``annotations/S1_<d1>_<d2>.shp``), each polygon carrying ``move_id``,
``class``, ``confidence`` and ``repetitions``. This module

* reads them from any OGR vector format and any CRS (:func:`read_annotations`),
  checks them (a CRS, a pair that has an interferogram, positive move ids),
  repairs invalid geometries with :func:`shapely.make_valid` (with an
  :class:`AnnotationWarning`) and reprojects them onto the cube's CRS;
* burns the polygons of one interferogram into a ``mask`` (uint8, 1 moving,
  0 stable) and a ``move_id`` (int32, 0 none) raster with
  :func:`rasterio.features.rasterize` (:func:`rasterize_pair`);
* burns the region polygons of ``zones.gpkg`` into the ``zone`` flags
  (:func:`rasterize_zones`).

The table itself is written once beside the arrays as GeoParquet by
:func:`isslide_cube.cube.build_cube` and read back by
:func:`isslide_cube.cube.open_annotations`.

Examples
--------
>>> from affine import Affine
>>> import geopandas as gpd, pandas as pd
>>> from shapely.geometry import box
>>> frame = gpd.GeoDataFrame({"move_id": [7]}, geometry=[box(1, -3, 3, -1)], crs="EPSG:4326")
>>> mask, move_id = rasterize_pair(frame, Affine(1, 0, 0, 0, -1, 0), (4, 4))
>>> mask.sum(), int(move_id.max())
(np.uint64(4), 7)
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from isslide_cube import schema
from isslide_cube.schema import RawDataError, RawFileNotFoundError

log = logging.getLogger(__name__)

# Suffixes of the OGR vector formats looked for in an annotation folder.
VECTOR_SUFFIXES = (".shp", ".gpkg", ".geojson", ".json", ".fgb", ".gml", ".kml", ".sqlite")
# Two dates in a file name, YYYYMMDD, joined by "_" or "-" (S1_20180702_20180708, ...).
PAIR_RE = re.compile(r"(?<!\d)(\d{8})[_-](\d{8})(?!\d)")
FIRST_DATE = "first_date"
SECOND_DATE = "second_date"
SOURCE_FILE = "source_file"
FIELD_ALIASES = {"repetition": "repetitions", "confidenc": "confidence", "move id": "move_id"}
TABLE_COLUMNS = (*schema.ANNOTATION_FIELDS, FIRST_DATE, SECOND_DATE, schema.DELAY, SOURCE_FILE,
                 "geometry")


class AnnotationWarning(UserWarning):
    """An annotation was repaired or cannot show on the grid; the message names the file."""


# ------------------------------------------------------------------- reading
def find_annotation_files(source: str | Path | Sequence[str | Path]) -> list[Path]:
    """Every vector file of ``source`` (a folder, one file, or a list of files).

    Raises
    ------
    RawFileNotFoundError
        When ``source`` (or a listed file) does not exist.
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise RawFileNotFoundError(
                f"annotation source {path} does not exist; give a folder of vector files "
                "(one per interferogram, e.g. S1_<YYYYMMDD>_<YYYYMMDD>.shp) or omit it")
        if path.is_dir():
            return sorted(p for p in path.iterdir()
                          if p.suffix.lower() in VECTOR_SUFFIXES and not p.name.startswith("."))
        return [path]
    files = [Path(p) for p in source]
    missing = [str(p) for p in files if not p.exists()]
    if missing:
        raise RawFileNotFoundError(f"annotation files not found: {missing}")
    return sorted(files)


def read_annotation_file(path: str | Path, *, crs: Any = None) -> Any:
    """Read one annotation file into the table of :data:`TABLE_COLUMNS`.

    The pair (first and second acquisition dates) comes from ``first_date`` /
    ``second_date`` columns when the file has them (one file for many
    interferograms), else from the two ``YYYYMMDD`` dates in the file name.

    Parameters
    ----------
    path
        Any vector file OGR reads (Shapefile, GeoPackage, GeoJSON, ...).
    crs
        Reproject the polygons to this CRS (the cube's); None keeps the file's.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns :data:`TABLE_COLUMNS`; invalid geometries repaired.

    Raises
    ------
    RawDataError
        No CRS, no pair dates, second date not after the first, no or
        non-positive ``move_id``, or an unreadable file.
    """
    import geopandas as gpd

    frame, geoms, file_crs = _read_table(path)
    table = gpd.GeoDataFrame(frame, geometry=geoms, crs=file_crs)
    return table.to_crs(crs) if crs is not None else table


def _read_table(path: str | Path) -> tuple[pd.DataFrame, np.ndarray, Any]:
    """Attributes (plain DataFrame), polygons (shapely array) and CRS of one file."""
    columns, geoms, crs = _read_columns(path)
    return _table_frame([columns]), geoms, crs


def _read_columns(path: str | Path) -> tuple[dict[str, np.ndarray], np.ndarray, Any]:
    """The raw columns (numpy, one value per kept polygon), polygons and CRS of one file.

    Every check that names the file is made here, on numpy arrays; the pandas
    conversions that are the same for every file are left to
    :func:`_table_frame`, once for all the files of a dataset (a DataFrame per
    file costs ~25 ms, most of the read, for the hundreds of small files).
    """
    import pyogrio.raw
    import shapely

    path = Path(path)
    try:
        meta, _, wkb, values = pyogrio.raw.read(path)
    except Exception as err:  # pyogrio raises several types for bad files
        raise RawDataError(f"annotation file {path} cannot be read ({err}); rewrite it "
                           "with a GIS (any OGR vector format)") from err
    if not meta.get("crs"):
        raise RawDataError(f"annotation file {path} has no CRS (a shapefile needs its .prj); "
                           f"write it with a CRS, e.g. gdf.set_crs('{schema.RAW_CRS}')"
                           ".to_file(...)")
    fields = dict(zip(meta["fields"], values, strict=True))
    # DBF field names have at most 10 characters: 'repetitions' comes back as 'repetition'
    for short, name in FIELD_ALIASES.items():
        if short in fields and name not in fields:
            fields[name] = fields.pop(short)
    if "move_id" not in fields:
        raise RawDataError(f"annotation file {path} has no 'move_id' field; give every polygon "
                           f"a positive integer move_id (fields {schema.ANNOTATION_FIELDS})")
    n = len(fields["move_id"])
    first, second = _pair_columns(fields, path, n)
    ids = pd.to_numeric(np.asarray(fields["move_id"]), errors="coerce")
    if n and (np.isnan(ids.astype("float64")).any() or (ids <= 0).any()):
        raise RawDataError(f"annotation file {path}: move_id must be a positive integer "
                           f"(0 means no move in the cube); found {sorted(set(ids.tolist()))[:5]}")
    absent = np.full(n, None, dtype=object)  # a missing field: its default in _table_frame
    columns = {
        "move_id": ids.astype(schema.MOVE_ID_DTYPE),
        "class": fields.get("class", absent),
        "confidence": fields.get("confidence", absent),
        "repetitions": fields.get("repetitions", absent),
        FIRST_DATE: first, SECOND_DATE: second,
        SOURCE_FILE: np.full(n, path.name, dtype=object),
    }
    geoms = (shapely.from_wkb(wkb) if wkb is not None
             else np.full(n, None, dtype=object))
    geoms = _repair(geoms, path)
    keep = ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)
    if not keep.all():
        columns = {k: v[keep] for k, v in columns.items()}
    return columns, geoms[keep], meta["crs"]


def _table_frame(parts: list[dict[str, np.ndarray]]) -> pd.DataFrame:
    """One DataFrame of :data:`TABLE_COLUMNS` (but geometry) from :func:`_read_columns` parts."""
    names = [c for c in TABLE_COLUMNS if c != "geometry"]
    cat = {k: (np.concatenate([p[k] for p in parts]) if len(parts) > 1 else parts[0][k])
           for k in names if k != schema.DELAY}
    frame = pd.DataFrame({
        "move_id": cat["move_id"].astype(schema.MOVE_ID_DTYPE),
        "class": pd.Series(cat["class"], dtype=object).fillna("Unknown").astype(str),
        "confidence": pd.to_numeric(pd.Series(cat["confidence"], dtype=object),
                                    errors="coerce").astype("float64"),
        "repetitions": pd.to_numeric(pd.Series(cat["repetitions"], dtype=object),
                                     errors="coerce").fillna(0).astype("int32"),
        FIRST_DATE: cat[FIRST_DATE].astype("datetime64[ns]"),
        SECOND_DATE: cat[SECOND_DATE].astype("datetime64[ns]"),
        schema.DELAY: ((cat[SECOND_DATE] - cat[FIRST_DATE]) // np.timedelta64(1, "D"))
        .astype("int64"),
        SOURCE_FILE: pd.Series(cat[SOURCE_FILE], dtype=object).astype(str),
    })
    return frame[names]


def _pair_columns(fields: dict[str, np.ndarray], path: Path, n: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(first, second) dates of each polygon, datetime64[ns], from columns or the file name."""
    if FIRST_DATE in fields and SECOND_DATE in fields:
        try:
            first = pd.to_datetime(pd.Series(fields[FIRST_DATE])).astype("datetime64[ns]")
            second = pd.to_datetime(pd.Series(fields[SECOND_DATE])).astype("datetime64[ns]")
        except (ValueError, TypeError) as err:
            raise RawDataError(f"annotation file {path}: columns {FIRST_DATE}/{SECOND_DATE} "
                               f"are not dates ({err}); write ISO dates (2018-07-02)") from err
        first, second = first.to_numpy(), second.to_numpy()
    else:
        match = PAIR_RE.search(path.stem)
        if not match:
            raise RawDataError(
                f"annotation file {path}: no pair dates in its name; name it "
                f"S1_<YYYYMMDD>_<YYYYMMDD>{path.suffix} like its interferogram, or add "
                f"'{FIRST_DATE}' and '{SECOND_DATE}' columns")
        try:
            # strptime: pandas' parser costs ~1 ms a call, once per file
            a, b = (np.datetime64(datetime.strptime(g, "%Y%m%d"), "ns") for g in match.groups())
        except ValueError as err:
            raise RawDataError(f"annotation file {path}: {match.group(0)} is not two "
                               "YYYYMMDD dates; rename it S1_<YYYYMMDD>_<YYYYMMDD>") from err
        first = np.full(n, a, dtype="datetime64[ns]")
        second = np.full(n, b, dtype="datetime64[ns]")
    bad = second <= first
    if bad.any():
        k = int(np.argmax(bad))
        raise RawDataError(f"annotation file {path}: second date not after the first "
                           f"({pd.Timestamp(first[k]):%Y-%m-%d} -> "
                           f"{pd.Timestamp(second[k]):%Y-%m-%d}); swap them")
    return first, second


def _repair(geoms: np.ndarray, path: Path) -> np.ndarray:
    """``make_valid`` every invalid geometry (with a warning) and keep its polygonal part."""
    import shapely

    geoms = np.asarray(geoms, dtype=object)
    invalid = ~shapely.is_missing(geoms) & ~shapely.is_valid(geoms)
    if invalid.any():
        warnings.warn(f"annotation file {path}: {int(invalid.sum())} invalid polygon(s) "
                      "repaired with shapely.make_valid; check them in a GIS",
                      AnnotationWarning, stacklevel=4)
        geoms = geoms.copy()
        geoms[invalid] = [_polygonal(shapely.make_valid(g)) for g in geoms[invalid]]
    return geoms


def _polygonal(geom: Any) -> Any:
    """The polygonal part of a geometry (``make_valid`` can add lines and points)."""
    import shapely

    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else shapely.Polygon()


def read_annotations(
    source: str | Path | Sequence[str | Path],
    pairs: Iterable[tuple[Any, Any]] | None = None,
    *,
    crs: Any = None,
) -> Any:
    """Read every annotation file of ``source`` into one table.

    Parameters
    ----------
    source
        A folder of vector files (the raw layout's ``annotations/``), one file,
        or a list of files; any OGR format and CRS.
    pairs
        The (first, second) dates that have an interferogram. An annotation
        file for another pair is an error (it would be silently lost).
    crs
        Reproject every polygon to this CRS (the cube's).

    Returns
    -------
    geopandas.GeoDataFrame
        Columns :data:`TABLE_COLUMNS` (``move_id`` int32, ``class``,
        ``confidence`` float64, ``repetitions`` int32, ``first_date``,
        ``second_date``, ``delay`` int64 days, ``source_file``, ``geometry``),
        one row per polygon, sorted by pair then file order.

    Raises
    ------
    RawDataError
        A file without CRS, without pair dates, for a pair with no
        interferogram, or without positive ``move_id``.

    Examples
    --------
    >>> table = read_annotations("raw/annotations", pairs, crs="EPSG:4326")  # doctest: +SKIP
    """
    import geopandas as gpd

    files = find_annotation_files(source)
    known = None if pairs is None else {_pair_key(a, b) for a, b in pairs}
    parts, geoms, crss = [], [], []
    for path in files:
        columns, polygons, file_crs = _read_columns(path)
        if known is not None:
            keys = {_pair_key(a, b) for a, b in set(zip(columns[FIRST_DATE].tolist(),
                                                        columns[SECOND_DATE].tolist(),
                                                        strict=True))}
            if not len(polygons):  # an empty file still names its pair
                keys = {_pair_key(*_pair_from_name(path))} if PAIR_RE.search(path.stem) else set()
            orphans = sorted(keys - known)
            if orphans:
                raise RawDataError(
                    f"annotation file {path} annotates pair(s) {orphans} that have no "
                    "interferogram; add the interferogram(s) to the source, or move the "
                    "annotation file out of the annotation folder")
        parts.append(columns)
        geoms.append(polygons)
        crss.append(file_crs)
    if not parts:
        return gpd.GeoDataFrame(columns=list(TABLE_COLUMNS), geometry="geometry", crs=crs)
    crs = crs if crs is not None else crss[0]
    # one reprojection per distinct CRS, not per file
    out = np.empty(sum(len(g) for g in geoms), dtype=object)
    offsets = np.cumsum([0] + [len(g) for g in geoms])
    for file_crs in set(crss):
        sel = [k for k, c in enumerate(crss) if c == file_crs]
        series = gpd.GeoSeries(np.concatenate([geoms[k] for k in sel]), crs=file_crs).to_crs(crs)
        values, at = series.values, 0
        for k in sel:
            out[offsets[k]:offsets[k + 1]] = values[at:at + len(geoms[k])]
            at += len(geoms[k])
    table = gpd.GeoDataFrame(_table_frame(parts), geometry=out, crs=crs)
    return table.sort_values([FIRST_DATE, SECOND_DATE], kind="stable").reset_index(drop=True)


def _pair_from_name(path: Path) -> tuple[pd.Timestamp, pd.Timestamp]:
    first, second = PAIR_RE.search(path.stem).groups()
    return pd.Timestamp(first), pd.Timestamp(second)


def _pair_key(first: Any, second: Any) -> str:
    return f"{pd.Timestamp(first):%Y-%m-%d}/{pd.Timestamp(second):%Y-%m-%d}"


def annotated_pairs(source: str | Path | Sequence[str | Path]) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """The pairs that have an annotation file, even an empty one (from the names)."""
    return sorted({_pair_from_name(p) for p in find_annotation_files(source)
                   if PAIR_RE.search(p.stem)})


def warn_outside(table: Any, bounds: tuple[float, float, float, float]) -> int:
    """Warn about polygons entirely outside ``bounds`` (left, bottom, right, top, in the table's CRS).

    Returns
    -------
    int
        How many polygons lie entirely outside (they rasterize to nothing).
    """
    import shapely

    if not len(table):
        return 0
    outside = ~shapely.intersects(np.asarray(table.geometry.values, dtype=object),
                                  shapely.box(*bounds))
    n = int(outside.sum())
    if n:
        files = sorted(set(table.loc[outside, SOURCE_FILE]))
        warnings.warn(f"{n} annotation polygon(s) lie entirely outside the interferogram grid "
                      f"(bounds {tuple(round(b, 6) for b in bounds)}) and will not show in the "
                      f"mask: files {files[:10]}{' ...' if len(files) > 10 else ''}; check "
                      "their CRS (reprojected onto the cube's) and coordinates",
                      AnnotationWarning, stacklevel=2)
    return n


# ---------------------------------------------------------------- rasterize
def rasterize_pair(
    polygons: Any,
    transform: Any,
    shape: tuple[int, int],
    *,
    all_touched: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Burn the polygons of one interferogram into ``mask`` and ``move_id`` rasters.

    Parameters
    ----------
    polygons
        A GeoDataFrame with ``move_id`` and ``geometry`` already in the grid's
        CRS, or a sequence of ``(geometry, move_id)`` pairs.
    transform
        The grid's affine transform (``rasterio``/GDAL convention).
    shape
        ``(height, width)`` in pixels.
    all_touched
        Burn every pixel a polygon touches instead of only the pixels whose
        centre is inside (GDAL's rule; the default, as in QGIS).

    Returns
    -------
    mask : np.ndarray
        uint8 ``(height, width)``: 1 inside any polygon, 0 elsewhere.
    move_id : np.ndarray
        int32 ``(height, width)``: the ``move_id`` of the polygon at each pixel
        (the later polygon where two overlap), 0 elsewhere.
    """
    from rasterio.features import rasterize

    if hasattr(polygons, "geometry"):
        shapes = list(zip(polygons.geometry.values, polygons["move_id"].astype(int), strict=True))
    else:
        shapes = [(g, int(v)) for g, v in polygons]
    shapes = [(g, v) for g, v in shapes if g is not None and not g.is_empty]
    height, width = int(shape[0]), int(shape[1])
    if not shapes:
        return (np.zeros((height, width), schema.MASK_DTYPE),
                np.zeros((height, width), schema.MOVE_ID_DTYPE))
    move_id = rasterize(shapes, out_shape=(height, width), transform=transform, fill=0,
                        all_touched=all_touched, dtype="int32")
    if all(v > 0 for _, v in shapes):  # ids are positive: a pixel moves where it has one
        return (move_id > 0).astype(schema.MASK_DTYPE), move_id
    mask = rasterize([(g, 1) for g, _ in shapes], out_shape=(height, width),
                     transform=transform, fill=0, all_touched=all_touched, dtype="uint8")
    return mask, move_id


def rasterize_zones(
    path: str | Path,
    transform: Any,
    shape: tuple[int, int],
    crs: Any,
    *,
    column: str = "name",
) -> np.ndarray:
    """Burn the region polygons of ``zones.gpkg`` into the ``zone`` flag raster.

    Each polygon's ``name`` (one of :data:`isslide_cube.schema.ZONES`) becomes
    its index; pixels outside every polygon are ``other`` (0). Pixel-centre rule.

    Returns
    -------
    np.ndarray
        uint8 ``(height, width)`` of flag values (``schema.zone_attrs()``).

    Raises
    ------
    RawDataError
        No CRS, no ``name`` column, or a name not in ``schema.ZONES``.
    """
    import geopandas as gpd
    from rasterio.features import rasterize

    path = Path(path)
    frame = gpd.read_file(path)
    if frame.crs is None:
        raise RawDataError(f"zones file {path} has no CRS; write it with a CRS "
                           f"(e.g. {schema.RAW_CRS})")
    if column not in frame.columns:
        raise RawDataError(f"zones file {path} has no '{column}' column; name each polygon "
                           f"one of {schema.ZONES}")
    names = frame[column].astype(str).str.lower()
    unknown = sorted(set(names) - set(schema.ZONES))
    if unknown:
        raise RawDataError(f"zones file {path}: unknown zone name(s) {unknown}; use "
                           f"{schema.ZONES}")
    frame = frame.set_geometry(_repair(frame.geometry.values, path), crs=frame.crs).to_crs(crs)
    shapes = [(g, schema.ZONES.index(n)) for g, n in zip(frame.geometry, names, strict=True)
              if g is not None and not g.is_empty]
    out_shape = (int(shape[0]), int(shape[1]))
    if not shapes:
        return np.zeros(out_shape, schema.ZONE_DTYPE)
    return rasterize(shapes, out_shape=out_shape, transform=transform, fill=0,
                     dtype="uint8").astype(schema.ZONE_DTYPE)
