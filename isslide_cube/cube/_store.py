"""Where a cube store keeps its state: internal names, root attributes, size on disk.

Everything :mod:`isslide_cube.cube` writes besides the public variables is
named here, so the build, the resume logic and the reader agree on it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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


def _root_attrs(store: Path) -> dict[str, Any] | None:
    path = store / "zarr.json"
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return meta.get("attributes", {}) if meta.get("node_type") == "group" else None


def _set_attrs(store: Path, attrs: dict[str, Any]) -> None:
    import zarr

    zarr.open_group(store, mode="r+", zarr_format=3).attrs.update(attrs)


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


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
