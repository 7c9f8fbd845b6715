"""Names shared by every layer, and the validators that enforce them.

This module is the contract of ``../shared/DESIGN.md`` sections 3 and 4 in code:
dimension, variable, band, coordinate and attribute names, the raw-layout file
names, the physical constants of Sentinel-1, the error tree, and
``validate_raw`` / ``validate_cube`` / ``validate_patches``.

It imports nothing heavier than numpy at module level so that every layer
(including ``io`` and ``synthetic``) can depend on it.

Examples
--------
>>> from isslide_cube import schema
>>> schema.CUBE_DIMS
('start_date', 'delay', 'band', 'y', 'x')
>>> schema.fringe_metres()  # one fringe of line-of-sight motion
0.027733
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

# --------------------------------------------------------------------------- dims
START_DATE = "start_date"
DELAY = "delay"
BAND = "band"
Y = "y"
X = "x"
SAMPLE = "sample"

CUBE_DIMS = (START_DATE, DELAY, BAND, Y, X)
MASK_DIMS = (START_DATE, DELAY, Y, X)
PATCH_DIMS = (SAMPLE, BAND, Y, X)

# ---------------------------------------------------------------------- variables
INTERFEROGRAM = "interferogram"
MASK = "mask"
MOVE_ID = "move_id"
LAYOVER = "layover"
ZONE = "zone"

COHERENCE = "coherence"
PHASE = "phase"
BANDS = (COHERENCE, PHASE)

# ------------------------------------------------------------------------- coords
END_DATE = "end_date"
HAS_INTERFEROGRAM = "has_interferogram"
SPATIAL_REF = "spatial_ref"

# per-sample coordinates of a patches dataset (DESIGN.md section 4)
LOCATION = "location"
ROW = "row"
COL = "col"
LAT = "lat"
LON = "lon"
HAS_MOVE = "has_move"
MOVING_FRACTION = "moving_fraction"
SPLIT = "split"
PATCH_COORDS = (
    START_DATE, DELAY, END_DATE, LOCATION, ZONE, ROW, COL, LAT, LON, HAS_MOVE, MOVING_FRACTION,
)
SPLIT_VALUES = ("train", "eval", "unused")

# ------------------------------------------------------------------------ dtypes
INTERFEROGRAM_DTYPE = np.dtype("float32")
MASK_DTYPE = np.dtype("uint8")
MOVE_ID_DTYPE = np.dtype("int32")
ZONE_DTYPE = np.dtype("uint8")
MASK_FILL = 255  # `_FillValue` of `mask` where there is no interferogram
MOVE_ID_FILL = -1  # `_FillValue` of `move_id` where there is no interferogram

# -------------------------------------------------------------------------- zones
# Flag value = index. "other" is everything outside the three annotated parks.
ZONES = ("other", "vanoise", "ecrins", "queyras")
ZONE_FLAG_VALUES = tuple(range(len(ZONES)))

# ------------------------------------------------------------------ annotations
CLASSES = ("Landslide", "Rock Glacier", "Unknown")
ANNOTATION_FIELDS = ("move_id", "class", "confidence", "repetitions")
# dBASE caps field names at 10 characters: shapefiles from QGIS/GDAL hold "repetition".
ANNOTATION_FIELD_ALIASES = {"repetitions": ("repetition",)}

# ----------------------------------------------------------------- raw layout
RAW_INTERFEROGRAMS = "interferograms"
RAW_ANNOTATIONS = "annotations"
RAW_LAYOVER = "layover.tif"
RAW_DEM = "dem.tif"
RAW_ZONES = "zones.gpkg"
RAW_MANIFEST = "manifest.json"
RAW_TRUTH = "truth"
RAW_MOVES_CSV = "truth/moves.csv"
RAW_NAME_RE = re.compile(r"^S1_(\d{8})_(\d{8})$")


def raw_stem(first: Any, second: Any) -> str:
    """File stem of one interferogram in the raw layout: ``S1_<YYYYMMDD>_<YYYYMMDD>``."""
    import pandas as pd

    return f"S1_{pd.Timestamp(first):%Y%m%d}_{pd.Timestamp(second):%Y%m%d}"


# GDAL metadata tags on every raw interferogram
TAG_FIRST_DATE = "FIRST_DATE"
TAG_SECOND_DATE = "SECOND_DATE"
TAG_WAVELENGTH = "WAVELENGTH_METRES"
TAG_INCIDENCE = "INCIDENCE_DEGREES"
TAG_PASS = "PASS"
TAG_POLARISATION = "POLARISATION"
RAW_TAGS = (TAG_FIRST_DATE, TAG_SECOND_DATE, TAG_WAVELENGTH, TAG_INCIDENCE, TAG_PASS,
            TAG_POLARISATION)
RAW_CRS = "EPSG:4326"

# ------------------------------------------------------------------- physics
WAVELENGTH_M = 0.055466  # Sentinel-1 C band
INCIDENCE_DEG = 39.0  # mid-swath IW incidence over the Alps
REVISIT_DAYS = 6


def fringe_metres(wavelength: float = WAVELENGTH_M) -> float:
    """Line-of-sight motion that makes one 2*pi phase cycle (half a wavelength)."""
    return round(wavelength / 2.0, 6)


# ------------------------------------------------------------ cube attributes
ATTR_COMPLETE = "isslide_build_complete"  # set last by build_cube
ATTR_FINGERPRINT = "isslide_inputs_fingerprint"
ATTR_PHASE_UNWRAPPED = "phase_was_unwrapped"  # the source phase was unwrapped, then wrapped


# ------------------------------------------------------------------- errors
class IsslideError(Exception):
    """Base class of every error this library raises on purpose."""


class RawDataError(IsslideError, ValueError):
    """A raw file (interferogram, annotation, manifest) is wrong; the message says which and how to fix it."""


class RawFileNotFoundError(IsslideError, FileNotFoundError):
    """An expected raw file or folder is missing."""


class CubeError(IsslideError, ValueError):
    """A cube store or dataset does not follow the schema."""


class IncompleteCubeError(CubeError):
    """A cube store whose build did not finish; rerun the build to resume it."""


class PatchesError(IsslideError, ValueError):
    """A patches dataset does not follow the schema, or a split cannot be made."""


class TrainingError(IsslideError, ValueError):
    """A training run cannot start or resume as asked."""


# ------------------------------------------------------------------ reports
@dataclass
class Problem:
    """One problem found by a validator: where, what, and how to fix it."""

    where: str
    what: str
    fix: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what} (fix: {self.fix})"


@dataclass
class ValidationReport:
    """Every problem a validator found; falsy when there is none."""

    subject: str
    problems: list[Problem] = field(default_factory=list)

    def add(self, where: str | Path, what: str, fix: str) -> None:
        self.problems.append(Problem(str(where), what, fix))

    def __bool__(self) -> bool:  # truthy == valid
        return not self.problems

    def __str__(self) -> str:
        if not self.problems:
            return f"{self.subject}: valid"
        lines = [f"{self.subject}: {len(self.problems)} problem(s)"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)

    def raise_if_invalid(self, error: type[IsslideError] = RawDataError) -> None:
        if self.problems:
            raise error(str(self))


# ------------------------------------------------------------- validate_raw
def validate_raw(path: str | Path, *, raise_on_error: bool = False) -> ValidationReport:
    """Check a raw ISSLIDE folder and report every problem with its file and fix.

    Checks the layout written by :func:`isslide_cube.synthetic.generate` (and
    expected of the real dataset): ``interferograms/S1_<d1>_<d2>.tif`` with two
    float32 bands described ``coherence`` and ``phase``, a CRS equal to
    EPSG:4326, coherence in [0, 1], phase in [-pi, pi]; ``annotations/*.shp``
    with their ``.dbf``/``.shx`` side files, the fields ``move_id``, ``class``,
    ``confidence``, ``repetitions``, a CRS, and a matching interferogram.

    Parameters
    ----------
    path
        The raw folder.
    raise_on_error
        Raise :class:`RawDataError` listing every problem instead of returning.

    Returns
    -------
    ValidationReport
        Truthy when the folder is valid; ``str(report)`` lists the problems.

    Examples
    --------
    >>> report = validate_raw("/nonexistent")
    >>> bool(report), report.problems[0].what
    (False, 'folder does not exist')
    """
    root = Path(path)
    report = ValidationReport(f"raw dataset {root}")
    if not root.is_dir():
        report.add(root, "folder does not exist", "give the folder written by `isslide-cube synth`")
        if raise_on_error:
            report.raise_if_invalid()
        return report
    ifg_dir = root / RAW_INTERFEROGRAMS
    tifs = sorted(ifg_dir.glob("*.tif")) if ifg_dir.is_dir() else []
    if not tifs:
        report.add(ifg_dir, "no interferogram GeoTIFF found",
                   f"put one S1_<YYYYMMDD>_<YYYYMMDD>.tif per pair in {RAW_INTERFEROGRAMS}/")
    stems = set()
    for tif in tifs:
        stems.add(tif.stem)
        _check_raw_interferogram(tif, report)
    ann_dir = root / RAW_ANNOTATIONS
    if ann_dir.is_dir():
        for shp in sorted(ann_dir.glob("*.shp")):
            _check_raw_annotation(shp, stems, report)
    manifest = root / RAW_MANIFEST
    if manifest.exists():
        try:
            json.loads(manifest.read_text())
        except json.JSONDecodeError as err:
            report.add(manifest, f"not valid JSON ({err})", "regenerate it or fix the syntax")
    if raise_on_error:
        report.raise_if_invalid()
    return report


def _check_raw_interferogram(tif: Path, report: ValidationReport) -> None:
    import rasterio
    from rasterio.crs import CRS

    match = RAW_NAME_RE.match(tif.stem)
    if not match:
        report.add(tif, "name carries no dates",
                   "rename it S1_<YYYYMMDD>_<YYYYMMDD>.tif (first and second acquisition)")
    elif match.group(2) <= match.group(1):
        report.add(tif, "second date is not after the first",
                   "name it S1_<earlier>_<later>.tif")
    try:
        with rasterio.open(tif) as src:
            if src.count != 2:
                report.add(tif, f"has {src.count} band(s), expected 2 (coherence, phase)",
                           "write band 1 = coherence and band 2 = phase")
                return
            names = tuple(d or "" for d in src.descriptions)
            if names != BANDS:
                report.add(tif, f"band descriptions are {names}, expected {BANDS}",
                           "set the band descriptions to 'coherence' and 'phase'")
            if src.crs is None:
                report.add(tif, "has no CRS", f"write it with crs={RAW_CRS}")
            elif src.crs != CRS.from_string(RAW_CRS):
                report.add(tif, f"CRS is {src.crs.to_string()}, expected {RAW_CRS}",
                           f"reproject it to {RAW_CRS} (e.g. gdalwarp -t_srs {RAW_CRS})")
            if any(np.dtype(dt) != INTERFEROGRAM_DTYPE for dt in src.dtypes):
                report.add(tif, f"dtypes are {src.dtypes}, expected float32",
                           "write both bands as float32")
            tags = src.tags()
            missing = [t for t in (TAG_FIRST_DATE, TAG_SECOND_DATE) if t not in tags]
            if missing:
                report.add(tif, f"GDAL tags {missing} missing",
                           "set FIRST_DATE and SECOND_DATE (ISO dates) as dataset tags")
            coh = src.read(1, masked=True).astype("float64").filled(np.nan)
            pha = src.read(2, masked=True).astype("float64").filled(np.nan)
    except Exception as err:  # rasterio raises several types for corrupt files
        report.add(tif, f"cannot be read ({err})", "rewrite the file; it may be truncated")
        return
    if np.any((coh < 0) | (coh > 1)):
        report.add(tif, f"coherence outside [0, 1] (min {np.nanmin(coh):.3g}, max {np.nanmax(coh):.3g})",
                   "band 1 must be coherence in [0, 1]; scale 8-bit coherence by 1/255")
    if np.any(np.abs(pha) > np.pi + 1e-6):
        report.add(tif, "phase outside [-pi, pi]",
                   "wrap it: np.angle(np.exp(1j * phase)); band 2 must be wrapped phase")


def _check_raw_annotation(shp: Path, stems: set[str], report: ValidationReport) -> None:
    for ext in (".dbf", ".shx"):
        if not shp.with_suffix(ext).exists():
            report.add(shp, f"side file {shp.with_suffix(ext).name} is missing",
                       f"copy the whole shapefile ({shp.stem}.shp, .shx, .dbf, .prj) together")
            return
    if shp.stem not in stems:
        report.add(shp, "annotates a pair with no interferogram",
                   f"add interferograms/{shp.stem}.tif or remove the shapefile")
    try:
        import pyogrio

        info = pyogrio.read_info(shp)
    except Exception as err:
        report.add(shp, f"cannot be read ({err})", "rewrite the shapefile")
        return
    if not info.get("crs"):
        report.add(shp, "has no CRS (.prj missing)", f"write it with crs={RAW_CRS}")
    fields = tuple(info.get("fields", ()))
    missing = [f for f in ANNOTATION_FIELDS
               if f not in fields and not set(ANNOTATION_FIELD_ALIASES.get(f, ())) & set(fields)]
    if missing:
        report.add(shp, f"fields {missing} missing", f"each polygon needs {ANNOTATION_FIELDS}")


# ------------------------------------------------------------ validate_cube
def _require(report: ValidationReport, ok: bool, where: str, what: str, fix: str) -> None:
    if not ok:
        report.add(where, what, fix)


def validate_cube(ds: xr.Dataset, *, raise_on_error: bool = True) -> ValidationReport:
    """Check that ``ds`` follows the cube schema (DESIGN.md section 3).

    Checks dims and dtypes of ``interferogram`` (and ``mask``/``move_id`` when
    present), the band names, the ``start_date``/``delay``/``end_date``/
    ``has_interferogram`` coordinates and a CRS. Lazy arrays stay lazy: only
    metadata is read.

    Raises
    ------
    CubeError
        Listing every problem, when ``raise_on_error`` (the default).
    """
    report = ValidationReport("cube")
    if INTERFEROGRAM not in ds:
        report.add(INTERFEROGRAM, "variable missing", "build the cube with isslide_cube.cube.build_cube")
    else:
        da = ds[INTERFEROGRAM]
        _require(report, da.dims == CUBE_DIMS, INTERFEROGRAM, f"dims {da.dims} != {CUBE_DIMS}",
                 f"transpose with ds.transpose(*{CUBE_DIMS})")
        _require(report, da.dtype == INTERFEROGRAM_DTYPE, INTERFEROGRAM,
                 f"dtype {da.dtype} != float32", "cast with .astype('float32')")
        if BAND in ds.coords:
            bands = tuple(str(b) for b in ds[BAND].values)
            _require(report, bands == BANDS, BAND, f"bands {bands} != {BANDS}",
                     "order the bands coherence, phase")
    for name, dtype in ((MASK, MASK_DTYPE), (MOVE_ID, MOVE_ID_DTYPE)):
        if name in ds:
            da = ds[name]
            _require(report, da.dims == MASK_DIMS, name, f"dims {da.dims} != {MASK_DIMS}",
                     f"transpose with .transpose(*{MASK_DIMS})")
            _require(report, da.dtype == dtype, name, f"dtype {da.dtype} != {dtype}",
                     f"cast to {dtype}")
    for coord in (START_DATE, DELAY, END_DATE, HAS_INTERFEROGRAM, X, Y):
        _require(report, coord in ds.coords, coord, "coordinate missing",
                 "rebuild the cube with build_cube")
    if START_DATE in ds.coords:
        _require(report, np.issubdtype(ds[START_DATE].dtype, np.datetime64), START_DATE,
                 f"dtype {ds[START_DATE].dtype} is not datetime64", "decode times when opening")
    if DELAY in ds.coords:
        _require(report, np.issubdtype(ds[DELAY].dtype, np.integer), DELAY,
                 f"dtype {ds[DELAY].dtype} is not integer days", "store delays as integer days")
    _require(report, SPATIAL_REF in ds.coords, SPATIAL_REF, "no CRS coordinate",
             "open with isslide_cube.cube.open_cube or call ds.rio.write_crs(...)")
    if raise_on_error:
        report.raise_if_invalid(CubeError)
    return report


def validate_patches(ds: xr.Dataset, *, raise_on_error: bool = True) -> ValidationReport:
    """Check that ``ds`` follows the patches schema (DESIGN.md section 4).

    Raises
    ------
    PatchesError
        Listing every problem, when ``raise_on_error`` (the default).
    """
    report = ValidationReport("patches")
    for name, dims in ((INTERFEROGRAM, PATCH_DIMS), (MASK, (SAMPLE, Y, X))):
        if name not in ds:
            report.add(name, "variable missing", "extract with isslide_cube.patches.extract_patches")
            continue
        _require(report, ds[name].dims == dims, name, f"dims {ds[name].dims} != {dims}",
                 f"transpose with .transpose(*{dims})")
    for coord in PATCH_COORDS:
        _require(report, coord in ds.coords, coord, "per-sample coordinate missing",
                 "extract with isslide_cube.patches.extract_patches")
    if SPLIT in ds.coords:
        # object first: zarr v3 may hand back numpy StringDType, which astype(str) rejects
        values = np.asarray(ds[SPLIT].values, dtype=object).astype(str)
        bad = sorted({str(v) for v in np.unique(values)} - set(SPLIT_VALUES))
        _require(report, not bad, SPLIT, f"unknown split values {bad}",
                 f"use only {SPLIT_VALUES}")
    if raise_on_error:
        report.raise_if_invalid(PatchesError)
    return report


def zone_attrs() -> dict[str, Any]:
    """CF flag attributes of the ``zone`` variable."""
    return {
        "flag_values": list(ZONE_FLAG_VALUES),
        "flag_meanings": " ".join(ZONES),
        "long_name": "annotated region",
    }


def zone_names(codes: Iterable[int]) -> list[str]:
    """Zone flag values to names."""
    return [ZONES[int(c)] for c in codes]
