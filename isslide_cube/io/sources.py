"""What discovery returns: one :class:`InterferogramSource` per pair, gathered in an :class:`Inventory`."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# 8-bit coherence (LiCSAR's .geo.cc.tif) stores round(255 * coherence).
COHERENCE_SCALE_8BIT = 1.0 / 255.0


def side_files(path: Path) -> tuple[Path, ...]:
    """Files that belong to a raster and change its content: ENVI's ``.hdr`` beside an ``.img``."""
    out = []
    for hdr in (path.with_suffix(".hdr"), Path(str(path) + ".hdr")):
        if hdr.exists() and hdr not in out:
            out.append(hdr)
    return tuple(out)


@dataclass(frozen=True)
class InterferogramSource:
    """Where one interferogram's bands are, and how to turn them into coherence and phase.

    Attributes
    ----------
    first, second
        Acquisition dates (``pandas.Timestamp`` at midnight); ``second > first``.
    phase_path, phase_band
        File and 1-based band of the phase (radians).
    coherence_path, coherence_band
        File and 1-based band of the coherence, or ``None`` when there is no
        coherence (it reads as NaN). Same file as the phase for a 2-band
        interferogram.
    phase_unwrapped
        The phase is unwrapped (name word ``unw``, a ``PHASE_UNWRAPPED`` tag, or
        the manifest); :func:`~isslide_cube.io.read_interferogram` wraps it.
    coherence_scale
        Factor applied to the stored coherence: 1.0, or 1/255 for 8-bit files.
    phase_nodata, coherence_nodata
        The files' nodata values (``None`` when unset). NaN is always nodata.
        Where the phase is nodata both bands read NaN; where only the
        coherence is nodata, only the coherence does.
    """

    first: pd.Timestamp
    second: pd.Timestamp
    phase_path: Path
    phase_band: int = 1
    coherence_path: Path | None = None
    coherence_band: int | None = None
    phase_unwrapped: bool = False
    coherence_scale: float = 1.0
    phase_nodata: float | None = None
    coherence_nodata: float | None = None

    @property
    def delay(self) -> int:
        """Days from the first to the second acquisition."""
        return int((self.second - self.first) / pd.Timedelta(days=1))

    @property
    def pair(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """(first, second)."""
        return self.first, self.second

    @property
    def start_date(self) -> np.datetime64:
        """``first`` as ``datetime64[ns]`` (the cube's ``start_date`` coordinate)."""
        return np.datetime64(self.first.to_datetime64(), "ns")

    @property
    def end_date(self) -> np.datetime64:
        """``second`` as ``datetime64[ns]``."""
        return np.datetime64(self.second.to_datetime64(), "ns")

    @property
    def has_coherence(self) -> bool:
        return self.coherence_path is not None

    @property
    def paths(self) -> tuple[Path, ...]:
        """The distinct raster files read for this interferogram (phase first)."""
        if self.coherence_path is None or self.coherence_path == self.phase_path:
            return (self.phase_path,)
        return self.phase_path, self.coherence_path

    @property
    def name(self) -> str:
        """A short label: ``YYYYMMDD_YYYYMMDD``."""
        return f"{self.first:%Y%m%d}_{self.second:%Y%m%d}"

    def fingerprint(self) -> tuple[tuple[str, int, int], ...]:
        """(absolute path, size in bytes, mtime in ns) of every file read, side files included.

        Changes when a file is replaced or rewritten: the cube compares it to
        decide whether a store was built from these inputs.
        """
        out = []
        for path in self.paths:
            for f in (path, *side_files(path)):
                st = f.stat()
                out.append((str(f.resolve()), int(st.st_size), int(st.st_mtime_ns)))
        return tuple(out)

    def describe(self) -> dict[str, Any]:
        """JSON-ready description (dates ISO, paths as strings)."""
        return {
            "first": f"{self.first:%Y-%m-%d}", "second": f"{self.second:%Y-%m-%d}",
            "delay": self.delay, "phase_path": str(self.phase_path),
            "phase_band": self.phase_band,
            "coherence_path": None if self.coherence_path is None else str(self.coherence_path),
            "coherence_band": self.coherence_band, "phase_unwrapped": self.phase_unwrapped,
            "coherence_scale": self.coherence_scale, "phase_nodata": self.phase_nodata,
            "coherence_nodata": self.coherence_nodata,
        }


@dataclass
class Inventory:
    """Everything :func:`~isslide_cube.io.discover` found.

    Attributes
    ----------
    items
        One :class:`InterferogramSource` per pair, sorted by (first, second).
    skipped
        ``(file, reason)`` for every file that is not used, sorted by file.
    warnings
        Messages about kept interferograms (no coherence, unwrapped phase
        dropped for the wrapped one, dates of the name and tags disagreeing...).
        Each is also logged at WARNING level.
    source
        What was given to ``discover``.
    """

    items: list[InterferogramSource]
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    source: Any = None

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    @property
    def dates(self) -> list[pd.Timestamp]:
        """Every acquisition date, sorted, once."""
        return sorted({d for item in self.items for d in item.pair})

    @property
    def start_dates(self) -> list[pd.Timestamp]:
        """Distinct first dates, sorted (the cube's ``start_date`` axis)."""
        return sorted({item.first for item in self.items})

    @property
    def delays(self) -> list[int]:
        """Distinct delays in days, sorted (the cube's ``delay`` axis)."""
        return sorted({item.delay for item in self.items})

    @property
    def any_unwrapped(self) -> bool:
        return any(item.phase_unwrapped for item in self.items)

    def fingerprint(self) -> str:
        """SHA-256 (hex) of every item's description and files' (path, size, mtime).

        Equal fingerprints mean the same inputs, read the same way.
        """
        payload = []
        for item in self.items:
            desc = item.describe()
            # the same files reached by another spelling of their path are the same inputs
            for key in ("phase_path", "coherence_path"):
                if desc[key] is not None:
                    desc[key] = str(Path(desc[key]).resolve())
            payload.append([desc, item.fingerprint()])
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    def to_frame(self) -> pd.DataFrame:
        """One row per interferogram (the columns of :meth:`InterferogramSource.describe`)."""
        return pd.DataFrame([item.describe() for item in self.items])

    def summary(self) -> str:
        """A few human-readable lines: counts, dates, delays, warnings, skipped files."""
        lines = []
        n = len(self.items)
        if n:
            dates = self.dates
            lines.append(
                f"{n} interferogram(s) on {len(dates)} date(s) from {dates[0]:%Y-%m-%d} to "
                f"{dates[-1]:%Y-%m-%d}; delays (days): {', '.join(map(str, self.delays))}")
            n_unw = sum(item.phase_unwrapped for item in self.items)
            n_nocoh = sum(not item.has_coherence for item in self.items)
            if n_unw:
                lines.append(f"{n_unw} with unwrapped phase (wrapped to [-pi, pi) when read)")
            if n_nocoh:
                lines.append(f"{n_nocoh} without coherence (NaN coherence)")
        else:
            lines.append("no interferogram")
        if self.warnings:
            lines.append(f"{len(self.warnings)} warning(s):")
            lines += [f"  - {w}" for w in self.warnings]
        if self.skipped:
            lines.append(f"{len(self.skipped)} file(s) skipped:")
            lines += self._skipped_lines()
        return "\n".join(lines)

    def _skipped_lines(self, max_lines: int = 20, examples: int = 3) -> list[str]:
        """One line per skipped file, or per reason (with a few examples) when there are many."""
        if len(self.skipped) <= max_lines:
            return [f"  - {p}: {why}" for p, why in self.skipped]
        by_reason: dict[str, list[Path]] = {}
        for p, why in self.skipped:
            by_reason.setdefault(why, []).append(p)
        out = []
        for why, paths in by_reason.items():
            shown = ", ".join(str(p) for p in paths[:examples])
            more = f" and {len(paths) - examples} more" if len(paths) > examples else ""
            out.append(f"  - {len(paths)} x {why}: {shown}{more}")
        return out

    def __str__(self) -> str:
        return self.summary()
