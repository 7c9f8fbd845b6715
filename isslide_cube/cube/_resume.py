"""Fingerprint and resume: is a store ours, finished, half-built or foreign?

A build's inputs (the interferograms, the annotation and static files, the
grid and the options) hash to a fingerprint kept in the store's root
attributes. Rerunning the same build finds the same fingerprint and resumes:
only the interferograms without a done-marker (``build_done``) are written
again. A store with another fingerprint is refused unless ``overwrite``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from isslide_cube import schema
from isslide_cube.cube._store import ATTR_TEMPLATE, DONE, _root_attrs
from isslide_cube.schema import CubeError

log = logging.getLogger(__package__)


def _fingerprint(inventory: Any, inputs: Iterable[Path], grid: Any, chunk: int, align: bool,
                 all_touched: bool, annotations: bool) -> str:
    """SHA-256 of everything a build reads: the inventory, the annotation and static
    files (path, size, mtime, with a shapefile's side files), the grid and the options."""
    files = [f for p in inputs for f in (p, *_side_files(p))]
    payload = {
        "inventory": inventory.fingerprint(),
        "files": [(str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns) for f in files],
        "grid": grid.to_dict(), "chunk": chunk, "align": align, "all_touched": all_touched,
        "annotations": annotations,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _side_files(path: Path) -> list[Path]:
    if path.suffix.lower() != ".shp":
        return []
    return [p for p in path.parent.glob(path.stem + ".*") if p != path]


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


def _todo(store: Path, index: list[tuple[int, int]]) -> list[int]:
    """Positions in ``index`` (start date, delay) of the interferograms not yet written."""
    import zarr

    done = zarr.open_array(store / DONE, mode="r", zarr_format=3)[...]
    todo = [k for k, (i, j) in enumerate(index) if done[i, j] != 1]
    log.info("resuming %s: %d interferogram(s) already written", store, len(index) - len(todo))
    return todo

