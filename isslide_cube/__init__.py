"""isslide_cube: Sentinel-1 InSAR interferograms as an xarray/Dask/Zarr cube."""
__version__ = "0.1.0"
