"""What a file name (or a raster's tags) says about an interferogram: its dates and its role.

Dates
    Two acquisition dates in the name, joined by ``_``, ``-`` or ``--``, in one of
    the forms listed in :data:`DATE_FORMS` (``20180106_20180130``,
    ``20180106-20180130``, SNAP's ``06Jul2018_12Jul2018``, ISO
    ``2018-01-06_2018-01-30``, ASF HyP3's ``20180106T002033_20180130T002033``).
    A Sentinel-1 product name's start/stop times of one acquisition
    (``20180706T054012_20180706T054039``) are not a pair. Otherwise the
    GDAL tags ``FIRST_DATE``/``SECOND_DATE``, ``MASTER_DATE``/``SLAVE_DATE`` or
    ``REFERENCE_DATE``/``SECONDARY_DATE`` (ISO or ``YYYYMMDD``).

Roles
    The name is split into lower-case words at ``_ - . space``; the words decide:
    ``unw``/``unwrapped`` -> unwrapped phase; ``diff_pha`` (LiCSAR), ``phase``,
    ``pha``, ``wrapped`` -> wrapped phase (HyP3's ``unw_phase`` is unwrapped, its
    ``wrapped_phase`` wrapped); ``cc``, ``coh``, ``coherence``, ``cor``, ``corr`` ->
    coherence. SNAP's ``Phase_ifg_VV_..`` is phase, ``coh_VV_..`` is
    coherence, its ``i_ifg``/``q_ifg`` (real and imaginary parts) are neither.

Examples
--------
>>> parse_dates("cropA_20180106-20180130_VV_8rlks_eqa_unw.tif")
(Timestamp('2018-01-06 00:00:00'), Timestamp('2018-01-30 00:00:00'))
>>> parse_dates("Phase_ifg_VV_06Jul2018_12Jul2018.img")
(Timestamp('2018-07-06 00:00:00'), Timestamp('2018-07-12 00:00:00'))
>>> parse_role("20180106_20180130.geo.diff_pha.tif"), parse_role("coh_VV_06Jul2018_12Jul2018.img")
('phase', 'coherence')
>>> parse_role("cropA_20180106-20180130_VV_8rlks_eqa_unw.tif")
'unwrapped_phase'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

# Roles of a file (or of a band); the manifest uses the same words.
PHASE = "phase"  # wrapped phase, radians
UNWRAPPED_PHASE = "unwrapped_phase"  # unwrapped phase, radians: wrapped on read
COHERENCE = "coherence"  # 0..1 (or 0..255 in 8 bits)
INTERFEROGRAM = "interferogram"  # one file holding both coherence and phase bands
ROLES = (PHASE, UNWRAPPED_PHASE, COHERENCE, INTERFEROGRAM)

_UNWRAPPED_WORDS = frozenset({"unw", "unwrapped"})
_PHASE_WORDS = frozenset({"phase", "pha", "wrapped"})
_COHERENCE_WORDS = frozenset({"cc", "coh", "coherence", "cor", "corr"})

# Date tags, in order of preference: (first, second)
DATE_TAGS = (
    ("FIRST_DATE", "SECOND_DATE"),
    ("MASTER_DATE", "SLAVE_DATE"),
    ("REFERENCE_DATE", "SECONDARY_DATE"),
)

_MONTHS = "jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec"
_SEP = r"(?:_|-|--|__)"
# (regex of one date, strptime-like parser); the pair is DATE SEP DATE
_DATE_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"\d{4}-\d{2}-\d{2}", "%Y-%m-%d"),
    (r"\d{8}", "%Y%m%d"),
    (rf"\d{{2}}(?:{_MONTHS})\d{{4}}", "%d%b%Y"),
)
_PAIR_RES = tuple(
    (re.compile(rf"(?<!\d)({d}){_SEP}({d})(?!\d)", re.IGNORECASE), fmt)
    for d, fmt in _DATE_PATTERNS
)
# ASF HyP3: S1AA_20180106T002033_20180130T002033_VVP024_INT80_..._unw_phase.tif. Tried last,
# and only a pair of two different days counts: a Sentinel-1 product name's
# <start>T<time>_<stop>T<time> is one acquisition.
_DATETIME_PAIR_RE = re.compile(r"(?<!\d)(\d{8})T\d{6}_(\d{8})T\d{6}(?!\d)", re.IGNORECASE)
# Human-readable list for error messages.
DATE_FORMS = (
    "YYYYMMDD_YYYYMMDD", "YYYYMMDD-YYYYMMDD", "DDMonYYYY_DDMonYYYY (SNAP)",
    "YYYY-MM-DD_YYYY-MM-DD", "YYYYMMDDTHHMMSS_YYYYMMDDTHHMMSS (HyP3)",
)
ROLE_WORDS = {
    UNWRAPPED_PHASE: sorted(_UNWRAPPED_WORDS),
    PHASE: ["diff_pha", "Phase_ifg", *sorted(_PHASE_WORDS)],
    COHERENCE: sorted(_COHERENCE_WORDS),
}


def understood_names() -> str:
    """One paragraph saying which file names :func:`parse_dates`/:func:`parse_role` understand."""
    roles = "; ".join(f"{role}: {', '.join(words)}" for role, words in ROLE_WORDS.items())
    return (
        f"dates as {', '.join(DATE_FORMS)} in the name, or GDAL tags "
        f"{', '.join('/'.join(t) for t in DATE_TAGS)}; roles from words of the name "
        f"({roles}), or a 2-band file whose bands are described 'coherence' and 'phase' "
        "(e.g. S1_20180706_20180712.tif)"
    )


def _to_timestamp(text: str, fmt: str) -> pd.Timestamp | None:
    try:
        stamp = pd.Timestamp(pd.to_datetime(text, format=fmt))
    except (ValueError, OverflowError):
        return None
    # eight digits that are an orbit or a frame number, not a SAR acquisition date
    return stamp if 1980 <= stamp.year <= 2100 else None


def parse_dates(name: str | Path) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """The (first, second) acquisition dates written in a file or folder name.

    Parameters
    ----------
    name
        A file name or path; only the last component is read.

    Returns
    -------
    tuple of pandas.Timestamp, or None
        ``None`` when the name holds no valid date pair. The order is the
        name's: the caller checks that the second date is after the first.

    Examples
    --------
    >>> parse_dates("20180106_20180130.geo.cc.tif")[1]
    Timestamp('2018-01-30 00:00:00')
    >>> parse_dates("S1A_IW_SLC__1SDV_20180706T054012_20180706T054039_022660.tif") is None
    True
    """
    text = Path(name).name
    for regex, fmt in _PAIR_RES:
        for match in regex.finditer(text):
            first, second = _to_timestamp(match.group(1), fmt), _to_timestamp(match.group(2), fmt)
            if first is not None and second is not None:
                return first, second
    for match in _DATETIME_PAIR_RE.finditer(text):
        first = _to_timestamp(match.group(1), "%Y%m%d")
        second = _to_timestamp(match.group(2), "%Y%m%d")
        if first is not None and second is not None and first != second:
            return first, second
    return None


def parse_date_value(value: str) -> pd.Timestamp | None:
    """One date from a tag or a manifest cell: ISO (``2018-01-06``, with or without a time) or ``YYYYMMDD``."""
    text = str(value).strip()
    if not text or text.lower() in {"nan", "none", "null"}:
        return None
    if re.fullmatch(r"\d{8}", text):
        return _to_timestamp(text, "%Y%m%d")
    try:
        stamp = pd.Timestamp(text)
    except (ValueError, OverflowError):
        return _to_timestamp(text, "%d%b%Y")
    if stamp is pd.NaT:
        return None
    return stamp.tz_localize(None).normalize() if stamp.tzinfo else stamp.normalize()


def dates_from_tags(tags: Mapping[str, str]) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """The (first, second) dates of GDAL dataset tags, or None when no known pair is there.

    Examples
    --------
    >>> dates_from_tags({"MASTER_DATE": "20180106", "SLAVE_DATE": "2018-01-30"})[0]
    Timestamp('2018-01-06 00:00:00')
    """
    upper = {str(k).upper(): v for k, v in tags.items()}
    for first_tag, second_tag in DATE_TAGS:
        if first_tag in upper and second_tag in upper:
            first, second = parse_date_value(upper[first_tag]), parse_date_value(upper[second_tag])
            if first is not None and second is not None:
                return first, second
    return None


def _words(name: str) -> list[str]:
    return [w for w in re.split(r"[_\-.\s]+", name.lower()) if w]


def parse_role(name: str | Path) -> str | None:
    """The role a file (or band) name announces: one of :data:`ROLES` but ``interferogram``, or None.

    Unwrapped beats wrapped phase (``..._unw_phase``); a name with both a phase
    and a coherence word (``phase_and_coherence``) is ambiguous and returns None.

    Examples
    --------
    >>> parse_role("i_ifg_VV_06Jul2018_12Jul2018.img") is None
    True
    >>> parse_role("20180106_20180130.geo.unw.tif")
    'unwrapped_phase'
    """
    text = Path(name).name
    # the extension is not a word of the name (".cor" files aside, which ISCE names so)
    suffix = Path(text).suffix.lower()
    if suffix in {".tif", ".tiff", ".img", ".vrt", ".hdr"}:
        text = text[: -len(suffix)]
    words = set(_words(text))
    is_phase = bool(words & (_PHASE_WORDS | _UNWRAPPED_WORDS))
    is_coherence = bool(words & _COHERENCE_WORDS)
    if is_phase and is_coherence:
        return None
    if words & _UNWRAPPED_WORDS:
        return UNWRAPPED_PHASE
    if is_phase:
        return PHASE
    if is_coherence:
        return COHERENCE
    return None


def band_roles(descriptions: tuple[str | None, ...]) -> dict[str, int]:
    """Map ``coherence``/``phase`` to 1-based band numbers from band descriptions.

    Returns an empty dict unless exactly one band is coherence and one is
    (wrapped or unwrapped) phase.

    Examples
    --------
    >>> band_roles(("coherence", "phase"))
    {'coherence': 1, 'phase': 2}
    """
    found: dict[str, list[int]] = {}
    for index, desc in enumerate(descriptions, start=1):
        role = parse_role(desc or "")
        if role == UNWRAPPED_PHASE:
            role = PHASE
        if role is not None:
            found.setdefault(role, []).append(index)
    if len(found.get(COHERENCE, ())) == 1 and len(found.get(PHASE, ())) == 1:
        return {COHERENCE: found[COHERENCE][0], PHASE: found[PHASE][0]}
    return {}
