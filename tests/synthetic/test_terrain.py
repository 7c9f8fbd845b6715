"""Terrain: layover/shadow from the descending geometry, fractal DEM, land cover."""

import numpy as np
import pytest
import rasterio

from isslide_cube import schema
from isslide_cube.synthetic import terrain
from isslide_cube.synthetic.atmosphere import radial_psd_slope

SPACING = (30.0, 30.0)


def _plane(slope_deg, towards_sensor=True, n=16):
    y, x = np.mgrid[0:n, 0:n] * 30.0
    e, nn = terrain.sensor_unit()
    sign = 1.0 if towards_sensor else -1.0
    return sign * np.tan(np.deg2rad(slope_deg)) * (e * x - nn * y)


@pytest.mark.parametrize("slope,layover", [(38.0, False), (40.0, True), (60.0, True)])
def test_layover_when_slope_facing_sensor_exceeds_incidence(slope, layover):
    lay, sha = terrain.layover_shadow(_plane(slope), SPACING, schema.INCIDENCE_DEG)
    assert lay.all() == layover and lay.any() == layover
    assert not sha.any()


@pytest.mark.parametrize("slope,shadow", [(50.0, False), (52.0, True)])
def test_shadow_when_slope_facing_away_exceeds_complement(slope, shadow):
    lay, sha = terrain.layover_shadow(_plane(slope, towards_sensor=False), SPACING,
                                      schema.INCIDENCE_DEG)
    assert sha.all() == shadow and not lay.any()


def test_descending_sensor_looks_west():
    e, n = terrain.sensor_unit()
    assert e > 0.9 and abs(n) < 0.3  # the sensor sits east(-south-east) of the ground


def test_dem_is_fractal_and_alpine():
    rng = np.random.default_rng(0)
    dem = terrain.make_dem((512, 512), rng, SPACING)
    slope = terrain.slope_deg(dem, SPACING)
    beta = -radial_psd_slope(dem.astype("float64"), 30.0, 0.03, 0.3)
    print(f"DEM: median slope {np.median(slope):.1f} deg, spectral exponent {beta:.2f}, "
          f"elevation {dem.min():.0f}-{dem.max():.0f} m")
    assert 22 < np.median(slope) < 32
    assert 2.8 < beta < 4.0  # power-law terrain (beta = 3.4 by construction)
    assert dem.dtype == np.float32 and 500 <= dem.min() and dem.max() <= 4300


def test_landcover_follows_elevation():
    rng = np.random.default_rng(1)
    dem = terrain.make_dem((256, 256), rng, SPACING, mean_elevation=2400.0)
    cover = terrain.make_landcover(dem, SPACING, rng)
    assert dem[cover == terrain.FOREST].mean() < dem[cover == terrain.MEADOW].mean()
    if (cover == terrain.SNOW).any():
        assert dem[cover == terrain.SNOW].mean() > dem[cover == terrain.ROCK].mean()


def test_generated_layover_faces_the_sensor(tiny_raw):
    with rasterio.open(tiny_raw / schema.RAW_DEM) as src:
        dem = src.read(1).astype("float64")
        res = src.res
    with rasterio.open(tiny_raw / schema.RAW_LAYOVER) as src:
        lay = src.read(1)
        assert src.dtypes[0] == "uint8" and src.crs.to_string() == schema.RAW_CRS
    assert set(np.unique(lay)) <= {0, 1} and 0 < lay.mean() < 0.5
    spacing = terrain.pixel_spacing_m(res[0], 44.95)
    gy, gx = np.gradient(dem, *spacing)  # d/drow (south), d/dcol (east)
    e, n = terrain.sensor_unit()
    rise = gx * e - gy * n
    # layover or shadow: steep along the range direction, never on flat ground
    assert np.all(np.abs(rise[lay == 1]) > 0.8)
    assert np.all(lay[np.abs(rise) < 0.8] == 0)
