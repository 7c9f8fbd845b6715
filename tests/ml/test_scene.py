"""Full-scene prediction: COGs on the cube's exact grid, Zarr, GeoPackage polygons."""

import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
import xarray as xr

sys.path.insert(0, str(Path(__file__).parents[1]))
from temporal_fixtures import make_cube, make_patches, open_store, write_cube, write_patches  # noqa: E402

from isslide_cube import schema  # noqa: E402
from isslide_cube.ml.scene import (  # noqa: E402
    _tile_starts,
    default_threshold,
    hann_window,
    predict_array,
    predict_scenes,
    scene_probability,
)

SMALL = {"width": 8, "depth": 2}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from isslide_cube.ml.training import train

    root = tmp_path_factory.mktemp("scene")
    cube = make_cube(n_dates=5, size=56)
    store = write_cube(cube, root / "cube.zarr", chunk=24)  # 24, 24, 8: ragged chunks
    patches = write_patches(make_patches(cube, locations=((8, 10), (30, 30))), root / "p.zarr")
    runs = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny nets: torch's threads only contend on a loaded machine
    try:
        for name, temporal in (("resunet", None), ("convgru_unet", "start")):
            run = root / name
            train(patches, run, model=name, preset="quick", epochs=1, batch_size=8, lr=1e-3,
                  temporal=temporal, model_kwargs=SMALL, device="cpu")
            runs[name] = run
    finally:
        torch.set_num_threads(threads)
    return open_store(store), store, runs


def test_tiles_cover_and_window_positive():
    assert _tile_starts(10, 16, 8) == [0]
    assert _tile_starts(40, 16, 8) == [0, 8, 16, 24]
    assert _tile_starts(41, 16, 8)[-1] == 25
    w = hann_window(16)
    assert w.min() > 0 and w[8, 8] == w.max()


def test_blending_of_a_constant_model_is_exact():
    import torch

    class Constant(torch.nn.Module):
        def forward(self, x):
            return torch.full((x.shape[0], 1, *x.shape[-2:]), 1.0)

    stack = np.zeros((1, 2, 37, 50), np.float32)
    stack[0, :, :3, :4] = np.nan
    p = predict_array(Constant(), stack, tile=16)
    expect = np.full((37, 50), 1 / (1 + np.exp(-1)), np.float32)
    expect[:3, :4] = np.nan
    np.testing.assert_allclose(p, expect, rtol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resunet", "convgru_unet"])
def test_probability_is_lazy_and_blocks_match_whole_scene(setup, name):
    cube, store, runs = setup
    prob = scene_probability(runs[name], cube)
    assert prob.chunks is not None and prob.dims == schema.MASK_DIMS
    assert prob.attrs["tile"] == 16
    values = prob.values
    has = cube.has_interferogram.values
    assert np.isnan(values[~has]).all()
    ok = values[has]
    assert np.isfinite(ok).all() and (ok >= 0).all() and (ok <= 1).all()
    # chunked with a halo of half a tile == one chunk for the whole scene, away from chunk edges
    whole = scene_probability(runs[name], cube.chunk({"y": -1, "x": -1})).values
    inner = np.ones(values.shape[-2:], bool)
    for edge in (24, 48):
        inner[edge - 8:edge + 8] = False
        inner[:, edge - 8:edge + 8] = False
    np.testing.assert_allclose(values[has][:, inner], whole[has][:, inner], atol=0.05)


@pytest.mark.slow
def test_predict_scenes_outputs(setup, tmp_path):
    import geopandas as gpd
    from distributed import Client, LocalCluster
    from rasterio import features

    cube, store, runs = setup
    prob = scene_probability(runs["resunet"], cube).values
    thr = float(np.nanquantile(prob, 0.8))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        summary = predict_scenes(runs["resunet"], store, tmp_path / "out", threshold=thr,
                                 write_zarr=True, client=client)
    has = cube.has_interferogram.values
    assert len(summary.cogs) == int(has.sum())
    transform, crs = cube.rio.transform(), cube.rio.crs
    gdf = gpd.read_file(summary.gpkg, layer="moving_areas")
    assert gdf.crs == crs and len(gdf) == summary.n_polygons > 0
    assert {"probability_mean", "probability_max", "area_px", "area_m2", "start_date",
            "end_date", "delay"} <= set(gdf.columns)
    assert (gdf.probability_max >= gdf.probability_mean).all()
    assert (gdf.probability_mean >= thr).all()
    z = xr.open_zarr(summary.zarr)
    np.testing.assert_array_equal(z.y.values, cube.y.values)
    np.testing.assert_array_equal(z.start_date.values, cube.start_date.values)
    starts = cube.start_date.values
    for cog in summary.cogs:
        with rasterio.open(cog) as src:
            assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
            assert src.transform == transform and src.crs == crs
            assert (src.height, src.width) == (cube.sizes["y"], cube.sizes["x"])
            band = src.read(1)
            d1 = np.datetime64(src.tags()["FIRST_DATE"], "ns")
        i = int(np.flatnonzero(starts == d1)[0])
        stem = cog.name.removesuffix("_probability.tif")
        j = [k for k in range(len(cube.delay)) if has[i, k] and
             schema.raw_stem(starts[i], cube.end_date.values[i, k]) == stem][0]
        np.testing.assert_allclose(band, prob[i, j], atol=1e-6, equal_nan=True)
        np.testing.assert_allclose(z.probability.values[i, j], band, equal_nan=True)
        # the polygons of this interferogram rasterize back to the thresholded map
        mine = gdf[gdf.interferogram == stem]
        burnt = features.rasterize(mine.geometry, out_shape=band.shape, transform=transform) \
            if len(mine) else np.zeros(band.shape, np.uint8)
        np.testing.assert_array_equal(burnt.astype(bool), np.nan_to_num(band) >= thr)
        if len(mine):
            assert mine.area_px.sum() == int((np.nan_to_num(band) >= thr).sum())
            assert (mine.delay == int(cube.delay.values[j])).all()


def test_default_threshold(tmp_path):
    assert default_threshold(tmp_path) == 0.5
    (tmp_path / "metrics.json").write_text('{"threshold": 0.31}')
    assert default_threshold(tmp_path) == pytest.approx(0.31)
