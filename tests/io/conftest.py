"""Small real rasters in the layouts of our generator, SNAP, GAMMA/PyRate and LiCSAR, written with rasterio."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from io_rasters import LICSAR_PAIRS, PYRATE, RAW_PAIRS, H, W, rng_fields, write_raster
from rasterio.transform import from_origin


@pytest.fixture
def raw_layout(tmp_path: Path) -> Path:
    """Our raw layout: 2-band S1_<d1>_<d2>.tif plus the non-interferogram files beside them."""
    import geopandas as gpd
    from shapely.geometry import box

    root = tmp_path / "raw"
    for i, (d1, d2) in enumerate(RAW_PAIRS):
        coh, pha = rng_fields(i)
        pha[0, :3] = np.nan
        write_raster(root / "interferograms" / f"S1_{d1}_{d2}.tif", np.stack([coh, pha]),
                     nodata=np.nan, descriptions=("coherence", "phase"),
                     tags={"FIRST_DATE": f"{d1[:4]}-{d1[4:6]}-{d1[6:]}",
                           "SECOND_DATE": f"{d2[:4]}-{d2[4:6]}-{d2[6:]}", "PASS": "descending"})
        gdf = gpd.GeoDataFrame({"move_id": [1], "class": ["Landslide"], "confidence": [0.9]}, geometry=[box(6.505, 45.49, 6.51, 45.495)],
                               crs="EPSG:4326")
        (root / "annotations").mkdir(parents=True, exist_ok=True)
        gdf.to_file(root / "annotations" / f"S1_{d1}_{d2}.shp")
    write_raster(root / "layover.tif", np.zeros((H, W), "uint8"))
    write_raster(root / "dem.tif", np.full((H, W), 2000.0, "float32"))
    gpd.GeoDataFrame({"name": ["vanoise"]}, geometry=[box(6.5, 45.48, 6.52, 45.5)],
                     crs="EPSG:4326").to_file(root / "zones.gpkg")
    (root / "manifest.json").write_text(json.dumps({"preset": "tiny", "seed": 0}))
    (root / "truth").mkdir()
    (root / "truth" / "moves.csv").write_text("move_id,x,y\n1,6.5,45.5\n")
    # the generator's ground truth: 1-band rasters with raw names, not interferograms
    for d1, d2 in RAW_PAIRS:
        write_raster(root / "truth" / "coherence" / f"S1_{d1}_{d2}.tif",
                     np.full((H, W), 0.5, "float32"), descriptions=("true_coherence",))
        write_raster(root / "truth" / "los_displacement" / f"S1_{d1}_{d2}.tif",
                     np.zeros((H, W), "float32"), descriptions=("los_displacement_m",))
    return root


@pytest.fixture
def snap_folder(tmp_path: Path) -> Path:
    """SNAP BEAM-DIMAP exports: <product>.dim + <product>.data/*.img (ENVI), in UTM."""
    root = tmp_path / "snap"
    utm = from_origin(300000.0, 5000000.0, 20.0, 20.0)
    for i, (d1, d2) in enumerate((("06Jul2018", "12Jul2018"), ("12Jul2018", "24Jul2018"))):
        product = f"S1A_IW_SLC__1SDV_20180706T054012_20180706T054039_022660_Orb_Stack_ifg_{d1}_{d2}"
        data = root / f"{product}.data"
        coh, pha = rng_fields(10 + i)
        kw = dict(crs="EPSG:32632", transform=utm, driver="ENVI")
        write_raster(data / f"Phase_ifg_VV_{d1}_{d2}.img", pha, **kw)
        write_raster(data / f"coh_VV_{d1}_{d2}.img", coh, **kw)
        write_raster(data / f"i_ifg_VV_{d1}_{d2}.img", np.cos(pha), **kw)
        write_raster(data / f"q_ifg_VV_{d1}_{d2}.img", np.sin(pha), **kw)
        write_raster(data / "elevation.img", np.full((H, W), 1500.0, "float32"), **kw)
        (data / "vector_data").mkdir()
        (data / "vector_data" / "pins.csv").write_text("Name\n")
        (root / f"{product}.dim").write_text("<Dimap_Document/>")
    return root


@pytest.fixture
def licsar_folder(tmp_path: Path) -> Path:
    """LiCSAR GEOC products: .geo.diff_pha.tif, .geo.unw.tif, 8-bit .geo.cc.tif (nodata 0).

    The first pair has both wrapped and unwrapped phase; the second only unwrapped.
    """
    root = tmp_path / "GEOC"
    for i, (d1, d2) in enumerate(LICSAR_PAIRS):
        pair = f"{d1}_{d2}"
        coh, pha = rng_fields(20 + i)
        cc = np.round(coh * 255).astype("uint8")
        cc[:2, :] = 0
        unw = pha + 2 * np.pi * (np.arange(W)[None, :] // 4)
        if i == 0:
            write_raster(root / pair / f"{pair}.geo.diff_pha.tif", pha, nodata=0.0)
        write_raster(root / pair / f"{pair}.geo.unw.tif", unw.astype("float32"), nodata=0.0)
        write_raster(root / pair / f"{pair}.geo.cc.tif", cc, nodata=0)
    write_raster(root / "metadata" / "073D_13256_001823.geo.hgt.tif",
                 np.full((H, W), 900.0, "float32"))
    write_raster(root / "metadata" / "073D_13256_001823.geo.E.tif", np.zeros((H, W), "float32"))
    (root / "metadata" / "metadata.txt").write_text("master=20180106\n")
    return root


@pytest.fixture
def pyrate_copy(tmp_path: Path) -> Path:
    """A writable copy of the real PyRate cropA files (the originals are read-only)."""
    import shutil

    dst = tmp_path / "cropA"
    shutil.copytree(PYRATE, dst)
    for p in [dst, *dst.iterdir()]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    return dst
