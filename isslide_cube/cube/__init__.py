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

The package
-----------
One concern per module, all private; import from :mod:`isslide_cube.cube`.

- ``_build``: :func:`build_cube`, :class:`BuildSummary`, the Dask run, the
  completion flag;
- ``_plan``: discovery, the grid, the annotation table and static layers,
  all checked before the store is touched;
- ``_resume``: the inputs' fingerprint, resume / refuse / start afresh;
- ``_template``: the lazy template and its Zarr encoding;
- ``_write``: one interferogram's task (chunk rows that follow the GeoTIFF
  tiling, then the done-marker);
- ``_mask``: the annotations rasterized into ``mask`` and ``move_id``;
- ``_open``: :func:`open_cube`, :func:`open_annotations`;
- ``_store``: internal names, root attributes and the per-interferogram job shared by all of them.

Examples
--------
>>> from isslide_cube.cube import build_cube, open_cube
>>> summary = build_cube("raw", "cube.zarr")  # doctest: +SKIP
>>> ds = open_cube("cube.zarr")  # doctest: +SKIP
>>> ds.interferogram.sel(delay=12, band="phase")  # doctest: +SKIP
"""

from isslide_cube.cube._build import BuildSummary, build_cube
from isslide_cube.cube._open import open_annotations, open_cube

# Private helpers that tests/cube exercise directly (the tiling-aware reader).
from isslide_cube.cube._store import (
    ANNOTATED,
    ANNOTATIONS_FILE,
    ATTR_SOURCE,
    ATTR_TEMPLATE,
    CRASH_ENV,
    DEFAULT_CHUNK,
    DONE,
    INTERNAL_VARS,
    ZSTD_LEVEL,
    _Job,  # noqa: F401
)
from isslide_cube.cube._write import _chunk_rows, _tile_height  # noqa: F401

__all__ = [
    "ANNOTATED",
    "ANNOTATIONS_FILE",
    "ATTR_SOURCE",
    "ATTR_TEMPLATE",
    "CRASH_ENV",
    "DEFAULT_CHUNK",
    "DONE",
    "INTERNAL_VARS",
    "ZSTD_LEVEL",
    "BuildSummary",
    "build_cube",
    "open_annotations",
    "open_cube",
]
