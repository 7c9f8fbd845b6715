"""Find every interferogram under a folder, in a list of files, or in a manifest; pair phase with coherence.

See the package docstring (:mod:`isslide_cube.io`) for the rules.
"""

from __future__ import annotations

import logging
import os
import warnings as _warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio
from rasterio.windows import Window

from isslide_cube.io import names
from isslide_cube.io.manifest import ManifestEntry, is_manifest, read_manifest
from isslide_cube.io.sources import COHERENCE_SCALE_8BIT, InterferogramSource, Inventory
from isslide_cube.schema import (
    RAW_INTERFEROGRAMS,
    RAW_NAME_RE,
    RawDataError,
    RawFileNotFoundError,
)

log = logging.getLogger(__name__)


class RawDataWarning(UserWarning):
    """A raw input is usable but not as expected (no coherence, dates that disagree...)."""

# Extensions GDAL opens that exporters use for interferograms (.img: ENVI in SNAP's .data folders).
RASTER_SUFFIXES = frozenset({".tif", ".tiff", ".img", ".vrt"})
# Files that only accompany a raster (never listed as skipped).
_SIDE_SUFFIXES = (".aux.xml", ".ovr", ".hdr", ".msk")
PHASE_DTYPES = frozenset({np.dtype("float32"), np.dtype("float64")})
COHERENCE_DTYPES = PHASE_DTYPES | {np.dtype("uint8")}
_TRUE = {"1", "true", "yes", "y", "t"}
# Tags that mark a phase band unwrapped.
UNWRAPPED_TAGS = ("PHASE_UNWRAPPED", "UNWRAPPED")

# Never let GDAL write .aux.xml statistics next to the inputs: the source folder is read-only to us.
GDAL_READ_ENV = {"GDAL_PAM_ENABLED": "NO"}


@dataclass
class _Candidate:
    """One raster that may be a phase, a coherence or a 2-band interferogram."""

    path: Path
    role: str
    first: pd.Timestamp
    second: pd.Timestamp
    bands: dict[str, int]  # role ("phase"/"coherence") -> 1-based band
    unwrapped: bool = False
    scale: float = 1.0
    nodata: dict[str, float | None] = field(default_factory=dict)


class _Problems:
    """Collects every error of one discovery so the user can fix them all at once."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, path: Path | str, what: str, fix: str) -> None:
        self.lines.append(f"{path}: {what} (fix: {fix})")

    def raise_if_any(self, subject: str) -> None:
        if self.lines:
            raise RawDataError(f"{subject}: {len(self.lines)} problem(s):\n"
                               + "\n".join(f"  - {line}" for line in self.lines))


def _is_side_file(path: Path, all_files: set[Path]) -> bool:
    name = path.name.lower()
    if name.endswith(".aux.xml") or name.endswith(".ovr") or name.endswith(".msk"):
        return True
    if name.endswith(".hdr"):  # ENVI header beside foo.img (or foo.img.hdr)
        return any(p in all_files for p in (path.with_suffix(".img"), path.with_suffix("")))
    return False


def _walk(folder: Path) -> list[Path]:
    """Every file under ``folder``, sorted; hidden entries and Zarr stores are not entered."""
    out = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not d.endswith(".zarr"))
        out += [Path(root) / f for f in sorted(files) if not f.startswith(".")]
    return out


def _last_block(src: rasterio.io.DatasetReader, band: int) -> Window:
    bh, bw = src.block_shapes[band - 1]
    row, col = ((src.height - 1) // bh) * bh, ((src.width - 1) // bw) * bw
    return Window(col, row, min(bw, src.width - col), min(bh, src.height - row))


def _unwrapped_tag(tags: dict[str, str]) -> bool:
    upper = {k.upper(): str(v).strip().lower() for k, v in tags.items()}
    return any(upper.get(t) in _TRUE for t in UNWRAPPED_TAGS)


def _classify(path: Path, entry: ManifestEntry | None, explicit: bool, problems: _Problems,
              skipped: list[tuple[Path, str]], warnings: list[str]) -> _Candidate | None:
    """Open one raster's header and decide what it is; None when skipped or wrong."""
    name_role = entry.role if entry is not None else names.parse_role(path.name)
    name_dates = names.parse_dates(path.name)
    if name_dates is None and name_role is not None:
        # SNAP's <product>_06Jul2018_12Jul2018.data/Phase_ifg_VV.img, <pair>/unw.tif...
        name_dates = names.parse_dates(path.parent.name)
    looks_like_ifg = explicit or name_role is not None or name_dates is not None \
        or bool(RAW_NAME_RE.match(path.stem))
    try:
        with rasterio.Env(**GDAL_READ_ENV), rasterio.open(path) as src:
            count, dtypes, crs = src.count, [np.dtype(d) for d in src.dtypes], src.crs
            nodatavals, descriptions, tags = src.nodatavals, src.descriptions, src.tags()
            # A truncated file opens (the header is intact) but its last block is gone.
            for band in range(1, count + 1):
                src.read(band, window=_last_block(src, band))
    except rasterio.errors.RasterioError as err:
        if looks_like_ifg:
            problems.add(path, f"cannot be read as a raster, truncated or corrupt ({err})",
                         "re-export or re-download the file")
        else:
            skipped.append((path, f"not a readable raster ({err})"))
        return None

    role = name_role
    bands: dict[str, int] = {}
    described = False  # phase and coherence bands named by the band descriptions
    if role is None:
        bands = names.band_roles(descriptions)
        if bands:
            role, described = names.INTERFEROGRAM, True
        elif RAW_NAME_RE.match(path.stem) and (
                explicit or path.parent.name == RAW_INTERFEROGRAMS
                or (count == 2 and not any(descriptions))):
            # our raw layout: a 2-band interferogram, band 1 coherence, band 2 phase. Elsewhere
            # (the generator's truth/coherence/S1_*.tif...) a 1-band file so named is not one.
            role, bands = names.INTERFEROGRAM, {names.COHERENCE: 1, names.PHASE: 2}
            if any(descriptions):
                problems.add(path, f"band descriptions are {descriptions}, expected "
                                   "('coherence', 'phase')",
                             "set the band descriptions to 'coherence' and 'phase'")
                return None

    tag_dates = names.dates_from_tags(tags)
    if entry is not None and entry.first is not None:
        dates = (entry.first, entry.second)
    elif name_dates is not None:
        dates = name_dates
        if tag_dates is not None and tuple(tag_dates) != tuple(name_dates):
            warnings.append(f"{path}: the name says {name_dates[0]:%Y-%m-%d}/"
                            f"{name_dates[1]:%Y-%m-%d}, the tags {tag_dates[0]:%Y-%m-%d}/"
                            f"{tag_dates[1]:%Y-%m-%d}; the name is used")
    else:
        dates = tag_dates
    if dates is None and described:
        # a SNAP GeoTIFF export: bands Phase_ifg_VV_06Jul2018_12Jul2018, coh_IW1_VV_06Jul2018_...
        dates = names.parse_dates(descriptions[bands[names.PHASE] - 1] or "")

    if role is None and dates is None:
        if explicit:
            problems.add(path, "neither its name nor its tags say what it is (no dates, no role)",
                         "name it <role>_<YYYYMMDD>_<YYYYMMDD>.tif or list it in a manifest")
        else:
            skipped.append((path, "not an interferogram (no dates, no phase/coherence role "
                                  "in its name or tags)"))
        return None
    if role is None:
        if explicit:
            problems.add(path, "has dates but nothing says whether it is phase or coherence",
                         "put unw/phase/coh/cc in its name, or give its role in a manifest")
        else:
            skipped.append((path, "dates but no phase/coherence role in its name"))
        return None
    if dates is None:
        problems.add(path, f"is named as {role} but no dates can be read from its name or tags",
                     f"put the dates in its name ({names.DATE_FORMS[0]}), set FIRST_DATE/"
                     "SECOND_DATE tags, or give them in a manifest")
        return None
    first, second = dates
    if second <= first:
        problems.add(path, f"second date {second:%Y-%m-%d} is not after the first "
                           f"{first:%Y-%m-%d}", "name the earlier acquisition first")
        return None
    if crs is None:
        problems.add(path, "has no CRS", "georeference it (e.g. gdal_edit.py -a_srs EPSG:4326) "
                                         "or re-export it with its CRS")
        return None

    if role == names.INTERFEROGRAM:
        if entry is not None and not bands:
            bands = names.band_roles(descriptions) or {names.COHERENCE: 1, names.PHASE: 2}
            described = bool(names.band_roles(descriptions))
        # bands found by their descriptions may sit among others (SNAP exports i/q/intensity)
        if count != 2 and not described:
            problems.add(path, f"has {count} band(s), a 2-band interferogram needs 2",
                         "write band 1 = coherence and band 2 = phase")
            return None
    else:
        band = entry.band if entry is not None and entry.band else 1
        if count != 1 and not (entry is not None and entry.band):
            problems.add(path, f"has {count} bands, a {role} file needs 1",
                         "give the band to use in a manifest (column band)")
            return None
        if band > count:
            problems.add(path, f"has {count} band(s), the manifest asks for band {band}",
                         "fix the band column of the manifest")
            return None
        kind = names.COHERENCE if role == names.COHERENCE else names.PHASE
        bands = {kind: band}

    ok = True
    for kind, band in bands.items():
        allowed = COHERENCE_DTYPES if kind == names.COHERENCE else PHASE_DTYPES
        if dtypes[band - 1] not in allowed:
            problems.add(path, f"{kind} band {band} has dtype {dtypes[band - 1]}, expected "
                               f"{' or '.join(sorted(str(d) for d in allowed))}",
                         f"export the {kind} as float32")
            ok = False
    if not ok:
        return None
    nodata = {}
    for kind, band in bands.items():
        value = nodatavals[band - 1]
        nodata[kind] = None if value is None or np.isnan(value) else float(value)
    unwrapped = role == names.UNWRAPPED_PHASE or _unwrapped_tag(tags) or bool(
        entry is not None and entry.unwrapped)
    if role == names.PHASE and unwrapped:
        role = names.UNWRAPPED_PHASE  # kept apart so that a wrapped phase of the pair wins
    scale = 1.0
    if names.COHERENCE in bands and dtypes[bands[names.COHERENCE] - 1] == np.uint8:
        scale = COHERENCE_SCALE_8BIT
    return _Candidate(path, role, first, second, bands, unwrapped, scale, nodata)


def _pair(candidates: list[_Candidate], *, require_coherence: bool, problems: _Problems,
          skipped: list[tuple[Path, str]], warnings: list[str]) -> list[InterferogramSource]:
    groups: dict[tuple[pd.Timestamp, pd.Timestamp], list[_Candidate]] = {}
    for cand in candidates:
        groups.setdefault((cand.first, cand.second), []).append(cand)
    items = []
    for (first, second), group in sorted(groups.items()):
        label = f"pair {first:%Y-%m-%d}/{second:%Y-%m-%d}"
        by_role: dict[str, list[_Candidate]] = {}
        for cand in group:
            by_role.setdefault(cand.role, []).append(cand)
        dup = {role: c for role, c in by_role.items() if len(c) > 1}
        for role, cands in dup.items():
            problems.add(label, f"{len(cands)} {role} files: "
                                + ", ".join(str(c.path) for c in cands),
                         "keep one per pair and role (another folder, or a manifest)")
        full = by_role.get(names.INTERFEROGRAM, [])
        if full and len(group) > len(full):
            problems.add(label, "both a 2-band interferogram and separate files: "
                                + ", ".join(str(c.path) for c in group),
                         "keep either the 2-band file or the phase/coherence files")
            continue
        if dup:
            continue
        coherence = by_role.get(names.COHERENCE, [None])[0]
        phase = (full or by_role.get(names.PHASE) or by_role.get(names.UNWRAPPED_PHASE)
                 or [None])[0]
        unwrapped = by_role.get(names.UNWRAPPED_PHASE, [None])[0]
        if phase is None:
            skipped.append((coherence.path, f"coherence of {label} has no phase file"))
            warnings.append(f"{coherence.path}: coherence without a phase file for {label}; "
                            "it is not used")
            continue
        if unwrapped is not None and phase is not unwrapped:
            skipped.append((unwrapped.path, f"unwrapped phase of {label}: the wrapped phase "
                                            f"{phase.path.name} is used instead"))
        if phase.role == names.INTERFEROGRAM:
            coherence = phase
        if coherence is None:
            if require_coherence:
                problems.add(phase.path, f"phase of {label} has no coherence file",
                             "add the coherence (same dates, coh/cc in the name) or "
                             "build without requiring coherence")
                continue
            warnings.append(f"{phase.path}: no coherence for {label}; its coherence is NaN")
        items.append(InterferogramSource(
            first=first, second=second, phase_path=phase.path,
            phase_band=phase.bands[names.PHASE],
            coherence_path=None if coherence is None else coherence.path,
            coherence_band=None if coherence is None else coherence.bands[names.COHERENCE],
            phase_unwrapped=phase.unwrapped,
            coherence_scale=1.0 if coherence is None else coherence.scale,
            phase_nodata=phase.nodata.get(names.PHASE),
            coherence_nodata=None if coherence is None else coherence.nodata.get(names.COHERENCE),
        ))
    return items


def _gather(source: str | Path | Sequence[str | Path], manifest: str | Path | None
            ) -> tuple[list[tuple[Path, bool]], dict[Path, ManifestEntry], str]:
    """(file, explicit) pairs to look at, manifest entries by resolved path, and a label."""
    entries: list[ManifestEntry] = []
    files: list[tuple[Path, bool]] = []
    if isinstance(source, (str, os.PathLike)):
        root = Path(source)
        label = str(root)
        if not root.exists():
            raise RawFileNotFoundError(f"{root} does not exist; give the folder of the raw "
                                       "interferograms, a list of files, or a manifest")
        if root.is_dir():
            found = _walk(root)
            if not found:
                raise RawFileNotFoundError(
                    f"folder {root} is empty; put the interferograms in it (or give the "
                    "folder that holds them)")
            files = [(p, False) for p in found]
        elif is_manifest(root):
            entries = read_manifest(root)
        else:
            files = [(root, True)]
    else:
        label = f"{len(source)} given file(s)"
        for item in source:
            p = Path(item)
            if not p.exists():
                raise RawFileNotFoundError(f"{p} does not exist; check the list of files")
            if p.is_dir():
                files += [(f, False) for f in _walk(p)]
            elif is_manifest(p):
                entries += read_manifest(p)
            else:
                files.append((p, True))
        if not files and not entries:
            raise RawFileNotFoundError("the list of files is empty; give at least one raster")
    if manifest is not None:
        entries += read_manifest(manifest)
    by_path = {e.path.resolve(): e for e in entries}
    seen = {p.resolve() for p, _ in files}
    files += [(e.path, True) for e in entries if e.path.resolve() not in seen]
    # absolute paths: Dask workers may run in another working directory
    return [(p.absolute(), explicit) for p, explicit in files], by_path, label


def discover(source: str | Path | Sequence[str | Path], *, manifest: str | Path | None = None,
             require_coherence: bool = False) -> Inventory:
    """Find the interferograms in ``source`` and pair their phase and coherence files.

    Reads file names and raster headers only (plus one block per band to catch
    truncated files); writes nothing, so ``source`` may be read-only.

    Parameters
    ----------
    source
        A folder (searched recursively), one raster, a list of files (and
        folders), or a manifest (``.csv``/``.json``, see
        :mod:`isslide_cube.io.manifest`).
    manifest
        A manifest describing some files of ``source`` (or more files): its
        rows override what names and tags say.
    require_coherence
        Make a phase without coherence an error instead of a warning.

    Returns
    -------
    Inventory
        ``items`` sorted by (first, second); ``skipped`` files with reasons;
        ``warnings``; ``summary()``.

    Raises
    ------
    RawFileNotFoundError
        ``source`` (or a listed file) does not exist, or the folder is empty.
    RawDataError
        No interferogram recognised, or bad files: every problem is listed
        (file, what is wrong, how to fix it).

    Examples
    --------
    >>> inv = discover("shared/fixtures/pyrate_cropA")  # doctest: +SKIP
    >>> len(inv.items), inv.delays[:3]
    (30, [12, 24, 36])
    """
    files, entries, label = _gather(source, manifest)
    all_files = {p for p, _ in files}
    problems = _Problems()
    skipped: list[tuple[Path, str]] = []
    warnings: list[str] = []
    candidates = []
    for path, explicit in files:
        entry = entries.get(path.resolve())
        if entry is None and _is_side_file(path, all_files):
            continue
        if entry is None and path.suffix.lower() not in RASTER_SUFFIXES:
            if explicit:
                problems.add(path, f"is not a raster ({path.suffix or 'no extension'})",
                             f"give GeoTIFF or ENVI files ({', '.join(sorted(RASTER_SUFFIXES))})")
            else:
                skipped.append((path, f"not a raster ({path.suffix or 'no extension'})"))
            continue
        cand = _classify(path, entry, explicit or entry is not None, problems, skipped, warnings)
        if cand is not None:
            candidates.append(cand)
    problems.raise_if_any(f"discovering interferograms in {label}")
    items = _pair(candidates, require_coherence=require_coherence, problems=problems,
                  skipped=skipped, warnings=warnings)
    problems.raise_if_any(f"discovering interferograms in {label}")
    if not items:
        looked = ", ".join(p.name for p, _ in skipped[:8]) + (" ..." if len(skipped) > 8 else "")
        raise RawDataError(
            f"no interferogram recognised in {label} ({len(skipped)} file(s) skipped: {looked}). "
            f"Understood: {names.understood_names()}. For other names, list the files in a "
            "manifest (CSV/JSON with columns path, role, first_date, second_date) and pass it "
            "as the source or as manifest=")
    if warnings:
        # one warning per discovery (all its messages), so that none is de-duplicated away
        _warnings.warn(f"discovering interferograms in {label}: {len(warnings)} warning(s):\n"
                       + "\n".join(f"  - {w}" for w in warnings), RawDataWarning, stacklevel=2)
    skipped.sort(key=lambda pr: str(pr[0]))
    inventory = Inventory(items=items, skipped=skipped, warnings=warnings, source=source)
    log.info("discovered %d interferogram(s) in %s, skipped %d file(s)", len(items), label,
             len(skipped))
    return inventory

