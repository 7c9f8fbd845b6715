"""Raw interferograms in: discovery, reading and grid checks (the layer under ``cube``).

Three steps, each a function::

    from isslide_cube.io import discover, check_grids, read_interferogram

    inv = discover("raw/")                 # Inventory: .items, .skipped, .warnings, .summary()
    grid = check_grids(inv.items)          # Grid: one grid for all (or RawDataError)
    for item in inv.items:                 # InterferogramSource, sorted by (first, second)
        arr = read_interferogram(item, grid)   # float32 (2, H, W): [coherence, phase]
        # or one chunk: read_interferogram(item, grid, window=Window(col, row, w, h))

Nothing here writes next to the inputs (GDAL's .aux.xml is disabled): the source
folder may be read-only. Nothing here needs Dask (but the optional
:func:`lazy_interferogram`); every function is a plain call that a Dask task can
run (items and grids pickle).

What ``discover(source, *, manifest=None, require_coherence=False)`` understands
---------------------------------------------------------------------------------
``source`` is a folder (searched recursively; hidden entries and ``*.zarr``
skipped), one raster, a list of files/folders, or a manifest (``.csv``/``.json``,
see :mod:`isslide_cube.io.manifest`: columns ``path, role, first_date,
second_date``, optional ``band``, ``unwrapped``; roles ``phase``,
``unwrapped_phase``, ``coherence``, ``interferogram``). ``manifest=`` adds a
manifest to a folder: its rows override names and tags.

Rasters are ``.tif``/``.tiff``/``.img`` (ENVI, as in SNAP's BEAM-DIMAP ``.data``
folders)/``.vrt``. The role comes from the manifest, else the name, else (2-band
files) the band descriptions; the dates from the manifest, else the name, else
the folder's name (role-named files), else the GDAL tags
(:mod:`isslide_cube.io.names`):

- our raw layout: 2-band ``S1_<YYYYMMDD>_<YYYYMMDD>.tif``, bands described
  ``coherence`` and ``phase`` (any 2-band file so described, any name with dates
  or FIRST_DATE/SECOND_DATE tags). An ``S1_d1_d2.tif`` in a folder named
  ``interferograms`` (or given explicitly) must be such a file: other band
  counts or descriptions are errors; undescribed bands are read as 1 coherence,
  2 phase. Elsewhere (the generator's ``truth/coherence/S1_*.tif``) a 1-band
  file so named has no role and is skipped;
- separate files, role from words of the name: ``unw``/``unwrapped`` (unwrapped
  phase); ``diff_pha`` (LiCSAR), ``Phase_ifg`` (SNAP), ``phase``, ``pha``
  (wrapped phase); ``cc``, ``coh``, ``coherence``, ``cor`` (coherence). E.g.
  GAMMA/PyRate ``cropA_20180106-20180130_VV_8rlks_eqa_unw.tif`` +
  ``..._flat_eqa_cc.tif``; LiCSAR ``20180106_20180130.geo.diff_pha.tif``,
  ``.geo.unw.tif``, ``.geo.cc.tif`` (uint8: scaled by 1/255); SNAP
  ``<product>.data/Phase_ifg_VV_06Jul2018_12Jul2018.img`` +
  ``coh_VV_06Jul2018_12Jul2018.img``; ASF HyP3
  ``S1AA_20180106T002033_20180130T002033_VVP024_INT80_G_ueF_5A3C_unw_phase.tif``
  (``_wrapped_phase``, ``_corr``). A role-named file with no dates in its name
  takes them from its folder's name (``<product>_06Jul2018_12Jul2018.data/
  Phase_ifg_VV.img``, ``20180106_20180130/unw.tif``);
- a multi-band file whose band descriptions name one phase and one coherence
  band (SNAP's GeoTIFF export: ``i_ifg_VV_06Jul2018_12Jul2018``, ``q_ifg_..``,
  ``Phase_ifg_..``, ``coh_IW1_..``): those two bands are used, and the dates
  come from the phase band's name when the file name and tags have none;
- dates: ``YYYYMMDD`` pairs joined by ``_``/``-``, SNAP's ``06Jul2018_12Jul2018``,
  ISO ``2018-01-06_2018-01-30``, HyP3's ``20180106T002033_20180130T002033`` (a
  product name's start/stop of one acquisition is not a pair); else tags
  ``FIRST_DATE``/``SECOND_DATE``, ``MASTER_DATE``/``SLAVE_DATE``,
  ``REFERENCE_DATE``/``SECONDARY_DATE``. When name and tags disagree the name
  wins (a warning says so). The delays are whatever the data hold.

Pairing, per (first, second): a 2-band file, or a phase file plus at most one
coherence file. **When a pair has both a wrapped and an unwrapped phase, the
wrapped one is used** (it is what the network sees; wrapping the unwrapped one
would give the same up to the unwrapping's own errors) and the unwrapped file
is listed in ``skipped``. A phase without coherence is kept with NaN coherence
and a warning (an error with ``require_coherence=True``); a coherence without
phase is skipped with a warning. Unwrapped phase: name word ``unw``, a tag
``PHASE_UNWRAPPED=1``, or the manifest.

Skipped, listed in ``Inventory.skipped`` with a reason and in ``summary()``:
non-rasters (text lists, README, shapefiles, ``zones.gpkg``, ``manifest.json``
inside a folder), rasters with neither dates nor a role (``dem.tif``,
``layover.tif``, ``cropA_T005A_dem.tif``), rasters with dates but no role
(SNAP's ``i_ifg``/``q_ifg``, HyP3's ``_amp``/``_dem``/``_lv_theta``), unreadable files that do not look like
interferograms. Side files (``.hdr``, ``.aux.xml``, ``.ovr``) are ignored silently.

Errors (every problem of a discovery is listed at once, each with its file and fix):

- :class:`~isslide_cube.schema.RawFileNotFoundError`: ``source`` or a listed
  file does not exist; the folder is empty.
- :class:`~isslide_cube.schema.RawDataError`: no interferogram recognised (the
  message says which names are understood and that a manifest serves for the
  rest); a role-named or explicitly given file without readable dates (or
  without a role, if given explicitly); second date not after the first; two
  files for the same pair and role (or a 2-band file and separate files); a
  phase without coherence when ``require_coherence``; a raster without CRS;
  a wrong band count (1 per role file, 2 for a raw-layout file) or dtype
  (phase float32/float64; coherence float32/float64/uint8); a truncated or
  corrupt raster (headers are opened and one block per band read).

The objects
-----------
``Inventory`` (dataclass): ``items: list[InterferogramSource]`` sorted by (first,
second); ``skipped: list[tuple[Path, str]]``; ``warnings: list[str]`` (also
issued together as one :class:`RawDataWarning`, a ``UserWarning``); ``source``;
``dates``, ``start_dates``, ``delays`` (sorted distinct values, from the data);
``any_unwrapped``; ``fingerprint() -> str`` (sha256 of every item's
description and files' path/size/mtime); ``to_frame()``; ``summary() -> str``.

``InterferogramSource`` (frozen dataclass): ``first``, ``second``
(``pandas.Timestamp``); ``delay`` (int days, property); ``start_date``,
``end_date`` (``datetime64[ns]``); ``phase_path``, ``phase_band`` (1-based);
``coherence_path`` (or None), ``coherence_band`` (or None); ``phase_unwrapped``;
``coherence_scale`` (1.0 or 1/255); ``phase_nodata``, ``coherence_nodata``
(the files' nodata values, None when unset; NaN is always nodata); ``paths``
(distinct files, phase first); ``name`` (``YYYYMMDD_YYYYMMDD``);
``fingerprint()`` -> tuple of (absolute path, size, mtime_ns) of its files
(ENVI ``.hdr`` included); ``describe()`` -> JSON-ready dict.

``Grid`` (frozen dataclass): ``crs`` (rasterio ``CRS``), ``transform`` (``Affine``,
pixel corners), ``width``, ``height``; ``shape`` (height, width); ``x``, ``y``
(pixel-centre coordinates, float64); ``res``; ``bounds``; ``window_grid(window)``;
``to_gdal()``/``from_gdal``; ``to_dict()``/``from_dict`` (WKT, JSON-ready);
``differences(other) -> list[str]``; ``same_as(other)``.
``grid_of(path) -> Grid``; ``check_grids(items, align=False) -> Grid``: the
first item's phase grid; any file on another grid (CRS, resolution, extent) is
a RawDataError listing every such file and how it differs, suggesting
``--align``, unless ``align=True``. A file without CRS, or a rotated reference
grid, is always an error. Two spellings of one EPSG CRS (SNAP's ESRI WKT and
EPSG:4326) are one CRS; transforms agree to 1e-6 pixel.

Reading
-------
``read_interferogram(item, grid=None, *, window=None, align=False,
validate_values=False) -> np.ndarray`` float32 ``(2, H, W)`` in
``schema.BANDS`` order [coherence, phase]:

- phase wrapped to [-pi, pi) (:func:`wrap_phase`; a wrapped input inside
  (-pi, pi) is returned bit for bit);
- coherence times ``coherence_scale``; all-NaN coherence when there is none;
- NaN where a file has its nodata value or NaN; where the phase is nodata both
  bands are NaN (PyRate: nodata 0, so true zeros are lost: that is the files'
  convention), where only the coherence is, only the coherence;
- ``window``: a ``rasterio.windows.Window`` of ``grid`` (integer, inside):
  reads only that block, for chunk-aligned region writes; the result equals
  the same slice of a whole read, bit for bit. Each call opens the file(s)
  once; windows whose rows are a multiple of the file's tile height do not
  decompress a tile twice (``benchmarks/io_read.py``);
- a file whose grid differs from ``grid``: RawDataError unless ``align``, then
  reprojected with rioxarray (``DataArray.rio.reproject`` onto the grid's
  CRS/transform/shape, bilinear; phase via cos/sin; only the part of the file
  covering the window is read; one kernel scale for the whole grid so that
  windows agree with a whole read to ~1e-3 pixel; NaN outside the file);
- ``validate_values``: coherence outside [0, 1] (1e-5 tolerance) and wrapped
  phase beyond pi are RawDataError naming the file;
- a truncated/corrupt file: RawDataError naming it.

``lazy_interferogram(item, grid=None, *, chunks=500, align=False,
validate_values=False) -> dask.array.Array``: the same, lazy, one window read per
block (dask is imported only here). ``open_interferogram(item, grid=None, *,
chunks=None, align=False, validate_values=False)``: as an ``xarray.DataArray``
(band, y, x) with coords and CRS (rioxarray), lazy when ``chunks`` is given.

Examples
--------
>>> from isslide_cube.io import discover, check_grids, read_interferogram
>>> inv = discover("shared/fixtures/pyrate_cropA")  # doctest: +SKIP
>>> print(inv.summary())  # doctest: +SKIP
30 interferogram(s) on 13 date(s) from 2018-01-06 to 2018-07-17; delays (days): 12, 24, ...
"""

from isslide_cube.io.discover import RawDataWarning, discover
from isslide_cube.io.grid import Grid, check_grids, grid_of
from isslide_cube.io.manifest import ManifestEntry, read_manifest
from isslide_cube.io.names import parse_dates, parse_role
from isslide_cube.io.read import (
    lazy_interferogram,
    open_interferogram,
    read_interferogram,
    wrap_phase,
)
from isslide_cube.io.sources import InterferogramSource, Inventory

__all__ = [
    "Grid",
    "InterferogramSource",
    "Inventory",
    "ManifestEntry",
    "RawDataWarning",
    "check_grids",
    "discover",
    "grid_of",
    "lazy_interferogram",
    "open_interferogram",
    "parse_dates",
    "parse_role",
    "read_interferogram",
    "read_manifest",
    "wrap_phase",
]
