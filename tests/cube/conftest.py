"""Fixtures of the cube tests: raw folders written here with rasterio/geopandas, the
synthetic ``tiny`` preset (built once per session) and the real PyRate files."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from rasterio.transform import from_origin
from shapely.geometry import Point, box

from isslide_cube import schema

# Real Sentinel-1 files in ../shared/fixtures beside the repository (CI lays it there too);
# ISSLIDE_FIXTURES points elsewhere.
PYRATE = Path(os.environ.get("ISSLIDE_FIXTURES",
                             Path(__file__).resolve().parents[2].parent / "shared" / "fixtures"),
              ) / "pyrate_cropA"

# A hand-made raw folder: 5 dates 6 days apart, delays 6 and 12 (4 + 3 = 7 interferograms,
# so the (start_date, delay) grid has holes), 40 x 56 px of 0.0005 deg.
DATES = pd.date_range("2018-07-02", periods=5, freq="6D")
SHAPE = (40, 56)
TRANSFORM = from_origin(6.60, 45.20, 0.0005, 0.0005)


def pairs(dates=DATES, delays=(6, 12)):
    return [(a, a + pd.Timedelta(days=d)) for d in delays for a in dates
            if a + pd.Timedelta(days=d) <= dates[-1]]


def write_interferogram(path: Path, first, second, data: np.ndarray, *, transform=TRANSFORM,
                        crs="EPSG:4326", tags: bool = True) -> None:
    height, width = data.shape[1:]
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=2,
                       dtype="float32", crs=crs, transform=transform, nodata=np.nan) as dst:
        dst.write(data.astype("float32"))
        dst.descriptions = schema.BANDS
        if tags:
            dst.update_tags(FIRST_DATE=f"{first:%Y-%m-%d}", SECOND_DATE=f"{second:%Y-%m-%d}",
                            WAVELENGTH_METRES=str(schema.WAVELENGTH_M), INCIDENCE_DEGREES="39.0",
                            PASS="DESCENDING", POLARISATION="VV")


def to_shapefile(frame, path: Path) -> None:
    """``frame.to_file`` without the notice that DBF truncates 'repetitions' (we read it back)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        frame.to_file(path)


def annotation_frame(rng: np.random.Generator, n: int, transform=TRANSFORM, shape=SHAPE):
    """``n`` polygons (discs and rectangles) inside the grid, with the raw fields."""
    geoms = []
    for _ in range(n):
        x, y = transform @ (rng.uniform(4, shape[1] - 4), rng.uniform(4, shape[0] - 4))
        r = rng.uniform(2, 6) * transform.a
        geoms.append(Point(x, y).buffer(r) if rng.random() < 0.5 else box(x - r, y - r, x + r,
                                                                           y + r / 2))
    return gpd.GeoDataFrame(
        {"move_id": rng.integers(1, 50, n), "class": rng.choice(list(schema.CLASSES), n),
         "confidence": rng.uniform(0, 1, n), "repetitions": rng.integers(1, 4, n)},
        geometry=geoms, crs="EPSG:4326")


def write_raw(root: Path, *, seed: int = 0, annotations: bool = True, static: bool = True,
              ann_crs: str = "EPSG:4326") -> Path:
    """A raw folder in the layout of ``synthetic.generate``, written directly."""
    rng = np.random.default_rng(seed)
    (root / schema.RAW_INTERFEROGRAMS).mkdir(parents=True)
    if annotations:
        (root / schema.RAW_ANNOTATIONS).mkdir()
    for k, (first, second) in enumerate(pairs()):
        coh = rng.uniform(0, 1, SHAPE)
        pha = rng.uniform(-np.pi, np.pi, SHAPE)
        coh[rng.random(SHAPE) < 0.05] = np.nan  # nodata in both bands
        pha[np.isnan(coh)] = np.nan
        stem = schema.raw_stem(first, second)
        write_interferogram(root / schema.RAW_INTERFEROGRAMS / f"{stem}.tif", first, second,
                            np.stack([coh, pha]))
        if annotations:
            frame = annotation_frame(rng, k % 3)  # 0, 1 or 2 polygons; an empty file too
            to_shapefile(frame.to_crs(ann_crs), root / schema.RAW_ANNOTATIONS / f"{stem}.shp")
    if static:
        layover = (rng.random(SHAPE) < 0.1).astype("uint8")
        with rasterio.open(root / schema.RAW_LAYOVER, "w", driver="GTiff", width=SHAPE[1],
                           height=SHAPE[0], count=1, dtype="uint8", crs="EPSG:4326",
                           transform=TRANSFORM) as dst:
            dst.write(layover, 1)
        left, top = TRANSFORM.c, TRANSFORM.f
        gpd.GeoDataFrame({"name": ["vanoise", "queyras"]}, geometry=[
            box(left, top - 0.01, left + 0.012, top), box(left + 0.015, top - 0.02,
                                                          left + 0.028, top - 0.005)],
            crs="EPSG:4326").to_file(root / schema.RAW_ZONES)
    return root


@pytest.fixture
def raw(tmp_path) -> Path:
    return write_raw(tmp_path / "raw")


@pytest.fixture(scope="session")
def tiny_raw(tmp_path_factory) -> Path:
    from isslide_cube import synthetic

    return synthetic.generate(tmp_path_factory.mktemp("synthetic") / "tiny", preset="tiny",
                              seed=0)


@pytest.fixture(scope="session")
def tiny_cube(tiny_raw, tmp_path_factory) -> Path:
    """``tiny`` built once (chunks of 100 px: 3 x 3 chunks with partial edges)."""
    import dask

    from isslide_cube.cube import build_cube

    store = tmp_path_factory.mktemp("cubes") / "tiny.zarr"
    with dask.config.set(scheduler="synchronous"):  # the single-threaded reference
        build_cube(tiny_raw, store, chunks=100)
    return store


@pytest.fixture(scope="module")
def cluster_client():
    """A real 2-worker, process-based LocalCluster (one thread each)."""
    from isslide_cube.cluster import local_client

    with local_client(n_workers=2, threads_per_worker=1, processes=True) as client:
        yield client


def assert_stores_equal(a, b) -> None:
    """Every variable and coordinate of two opened cubes equal, NaN == NaN."""
    assert set(a.variables) == set(b.variables)
    for name in a.variables:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
