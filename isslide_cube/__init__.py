"""isslide_cube: Sentinel-1 InSAR interferograms as an xarray/Dask/Zarr cube.

Importing the package registers the ``ds.isslide`` accessor; torch, distributed
and matplotlib are imported only by the functions that need them.
"""

from isslide_cube import accessor as _accessor  # noqa: F401  (registers ds.isslide)

__version__ = "0.1.0"
