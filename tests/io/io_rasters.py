"""Helpers of the io tests: write small real rasters with rasterio (imported by conftest and tests)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

# Real Sentinel-1 files in ../shared/fixtures beside the repository (CI lays it there too);
# ISSLIDE_FIXTURES points elsewhere.
PYRATE = Path(os.environ.get("ISSLIDE_FIXTURES",
                             Path(__file__).resolve().parents[2].parent / "shared" / "fixtures"),
              ) / "pyrate_cropA"
H, W = 24, 32
TRANSFORM = from_origin(6.5, 45.5, 0.001, 0.001)


def write_raster(path: Path, data: np.ndarray, *, crs: str | None = "EPSG:4326",
                 transform=TRANSFORM, nodata: float | None = None, tags: dict | None = None,
                 descriptions: tuple[str, ...] | None = None, driver: str = "GTiff",
                 dtype: str | None = None) -> Path:
    """Write ``data`` ((H, W) or (bands, H, W)) as a raster with rasterio."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[None]
    dtype = dtype or str(data.dtype)
    profile = dict(driver=driver, width=data.shape[2], height=data.shape[1], count=data.shape[0],
                   dtype=dtype, transform=transform, nodata=nodata)
    if crs is not None:
        profile["crs"] = crs
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data.astype(dtype))
        if tags:
            dst.update_tags(**tags)
        for i, desc in enumerate(descriptions or (), start=1):
            dst.set_band_description(i, desc)
    return path


def rng_fields(seed: int, shape=(H, W)) -> tuple[np.ndarray, np.ndarray]:
    """(coherence in [0, 1], wrapped phase in (-pi, pi)) float32."""
    rng = np.random.default_rng(seed)
    coh = rng.uniform(0.05, 0.95, shape).astype("float32")
    pha = rng.uniform(-3.0, 3.0, shape).astype("float32")
    return coh, pha


LICSAR_PAIRS = (("20180106", "20180130"), ("20180130", "20180223"))
RAW_PAIRS = (("20180702", "20180708"), ("20180702", "20180714"), ("20180708", "20180726"))


