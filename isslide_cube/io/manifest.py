"""Explicit manifests: a CSV or JSON table that says what each file is, for names discovery cannot read.

Columns (CSV header, or keys of JSON records):

========================  ========  ======================================================
column                    required  meaning
========================  ========  ======================================================
``path``                  yes       the raster; relative paths are relative to the manifest
``role``                  yes       ``phase``, ``unwrapped_phase`` (or ``unw``),
                                    ``coherence``, or ``interferogram`` (a 2-band file)
``first_date``            no        ISO or ``YYYYMMDD``; empty: taken from the name or tags
``second_date``           no        idem
``band``                  no        1-based band of a 1-role file (default 1)
``unwrapped``             no        true/false: the phase is unwrapped (role ``phase``)
========================  ========  ======================================================

JSON is a list of such records, or an object with the list under ``files``
(or ``interferograms``).

Example manifest (CSV)::

    path,role,first_date,second_date
    a/ifg_one.tif,phase,2018-07-06,2018-07-12
    a/coh_one.tif,coherence,2018-07-06,2018-07-12
    b/stack.tif,interferogram,20180712,20180718
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from isslide_cube.io import names
from isslide_cube.schema import RawDataError, RawFileNotFoundError

MANIFEST_SUFFIXES = (".csv", ".json")
_ROLE_ALIASES = {
    "phase": names.PHASE, "wrapped_phase": names.PHASE, "pha": names.PHASE,
    "unwrapped_phase": names.UNWRAPPED_PHASE, "unw": names.UNWRAPPED_PHASE,
    "unwrapped": names.UNWRAPPED_PHASE,
    "coherence": names.COHERENCE, "coh": names.COHERENCE, "cc": names.COHERENCE,
    "interferogram": names.INTERFEROGRAM, "ifg": names.INTERFEROGRAM,
}
_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f", ""}


@dataclass(frozen=True)
class ManifestEntry:
    """One row of a manifest, validated (dates may still be None: then name/tags decide)."""

    path: Path
    role: str
    first: pd.Timestamp | None = None
    second: pd.Timestamp | None = None
    band: int | None = None
    unwrapped: bool | None = None
    row: int = 0  # 1-based data row, for messages


def is_manifest(path: str | Path) -> bool:
    """True for a ``.csv`` or ``.json`` file path."""
    return Path(path).suffix.lower() in MANIFEST_SUFFIXES


def _blank(value: Any) -> bool:
    """An empty cell: None, "", or a float NaN (pandas writes those into JSON)."""
    return value is None or (isinstance(value, float) and value != value) or str(value).strip() == ""


def _records(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise RawDataError(f"manifest {path}: not valid JSON ({err}); fix its syntax") from err
        if isinstance(data, dict):
            data = data.get("files", data.get("interferograms"))
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise RawDataError(
                f"manifest {path}: expected a list of records (or {{'files': [...]}}) with "
                "keys path, role, first_date, second_date")
        return data
    rows = list(csv.DictReader(text.splitlines()))
    return [{(k or "").strip().lower(): (v or "").strip() for k, v in r.items()} for r in rows]


def read_manifest(path: str | Path) -> list[ManifestEntry]:
    """Read and check a manifest; every problem is reported at once.

    Parameters
    ----------
    path
        A ``.csv`` or ``.json`` manifest.

    Returns
    -------
    list of ManifestEntry
        In file order, paths resolved against the manifest's folder.

    Raises
    ------
    RawFileNotFoundError
        The manifest does not exist.
    RawDataError
        A missing column, an unknown role, an unreadable date, a bad band, a
        listed file that does not exist; the message lists every bad row.

    Examples
    --------
    >>> entries = read_manifest("manifest.csv")  # doctest: +SKIP
    >>> entries[0].role, entries[0].first
    ('phase', Timestamp('2018-07-06 00:00:00'))
    """
    path = Path(path)
    if not path.is_file():
        raise RawFileNotFoundError(f"manifest {path} does not exist; check the path")
    records = _records(path)
    if not records:
        raise RawDataError(f"manifest {path}: no rows; list one file per row "
                           "(columns path, role, first_date, second_date)")
    problems: list[str] = []
    entries: list[ManifestEntry] = []
    for i, rec in enumerate(records, start=1):
        rec = {str(k).strip().lower(): (None if _blank(v) else v) for k, v in rec.items()}
        where = f"row {i}"
        raw_path = str(rec.get("path") or "").strip()
        role = _ROLE_ALIASES.get(str(rec.get("role") or "").strip().lower())
        if not raw_path:
            problems.append(f"{where}: no path")
            continue
        file = Path(raw_path).expanduser()
        if not file.is_absolute():
            file = path.parent / file
        where = f"row {i} ({raw_path})"
        if role is None:
            problems.append(f"{where}: role {rec.get('role')!r} is not one of "
                            "phase, unwrapped_phase, coherence, interferogram")
        if not file.exists():
            problems.append(f"{where}: file {file} does not exist")
        dates, bad_date = [], False
        for key in ("first_date", "second_date"):
            value = rec.get(key)
            stamp = None if value is None else names.parse_date_value(str(value))
            if value not in (None, "") and stamp is None:
                problems.append(f"{where}: {key} {value!r} is not a date (use YYYY-MM-DD)")
                bad_date = True
            dates.append(stamp)
        if not bad_date and (dates[0] is None) != (dates[1] is None):
            problems.append(f"{where}: give both first_date and second_date, or neither")
        band = rec.get("band")
        band_no = None
        if band not in (None, ""):
            try:
                band_no = int(band)
            except (TypeError, ValueError):
                band_no = 0
            if band_no < 1:
                problems.append(f"{where}: band {band!r} is not a 1-based band number")
        unwrapped = rec.get("unwrapped")
        unw_flag = None
        if unwrapped not in (None, ""):
            text = str(unwrapped).strip().lower()
            if text not in _TRUE | _FALSE:
                problems.append(f"{where}: unwrapped {unwrapped!r} is not true/false")
            unw_flag = text in _TRUE
        if role == names.UNWRAPPED_PHASE:
            unw_flag = True
        entries.append(ManifestEntry(file, role or "", dates[0], dates[1], band_no, unw_flag, i))
    if problems:
        raise RawDataError(f"manifest {path}: {len(problems)} problem(s):\n"
                           + "\n".join(f"  - {p}" for p in problems))
    return entries
