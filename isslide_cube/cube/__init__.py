"""The interferogram cube: a resumable Zarr v3 store built on Dask, and its readers.

Step one of splitting ``cube.py`` into a package: the module moved to
``_build.py`` unchanged and this package re-exports its names.
"""

from isslide_cube.cube._build import (
    ANNOTATED,
    ANNOTATIONS_FILE,
    ATTR_SOURCE,
    ATTR_TEMPLATE,
    CRASH_ENV,
    DEFAULT_CHUNK,
    DONE,
    INTERNAL_VARS,
    ZSTD_LEVEL,
    BuildSummary,
    _chunk_rows,
    _Job,
    _tile_height,
    build_cube,
    open_annotations,
    open_cube,
)

__all__ = ["BuildSummary", "build_cube", "open_annotations", "open_cube"]
