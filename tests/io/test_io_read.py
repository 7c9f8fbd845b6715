"""Reading: values, nodata, wrapping, windows, reprojection onto a reference grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from hypothesis import given, settings
from hypothesis import strategies as st
from io_rasters import PYRATE, TRANSFORM, H, W, rng_fields, write_raster
from rasterio.enums import Resampling
from rasterio.transform import from_origin
from rasterio.warp import reproject
from rasterio.windows import Window

from isslide_cube.io import (
    Grid,
    check_grids,
    discover,
    grid_of,
    lazy_interferogram,
    open_interferogram,
    read_interferogram,
    wrap_phase,
)


# ------------------------------------------------------------------------ wrap
@settings(max_examples=120, deadline=None)
@given(st.lists(st.floats(-1e4, 1e4, allow_nan=False), min_size=1, max_size=50))
def test_wrap_phase_range_and_angle(values):
    p = np.array(values)
    w = wrap_phase(p)
    assert w.dtype == np.float32
    assert np.all(w >= -np.pi) and np.all(w < np.pi)  # compared in float64
    # same angle: float32 keeps ~1e-7 relative; large inputs lose absolute precision in float32
    np.testing.assert_allclose(np.cos(w), np.cos(p), atol=1e-5)
    np.testing.assert_allclose(np.sin(w), np.sin(p), atol=1e-5)


def test_wrap_phase_keeps_wrapped_float32_bit_for_bit():
    rng = np.random.default_rng(0)
    p = rng.uniform(-np.pi, np.pi, 10000).astype("float32")
    p = p[np.abs(p) < np.float32(np.pi)]
    np.testing.assert_array_equal(wrap_phase(p), p)
    edges = np.array([np.float32(np.pi), np.float32(-np.pi), np.pi, -np.pi, np.nan])
    got = wrap_phase(edges)
    assert np.all(got[:4] >= -np.pi) and np.all(got[:4] < np.pi) and np.isnan(got[4])
    # float32(-pi) lies below -pi: it wraps to the top of the range, the same angle
    np.testing.assert_allclose(np.exp(1j * got[:4]), np.exp(1j * edges[:4]), atol=1e-6)
    assert got[2] == got[3] == -np.nextafter(np.float32(np.pi), np.float32(0))


# -------------------------------------------------------------------- real data
def test_pyrate_values():
    inv = discover(PYRATE)
    grid = check_grids(inv.items)
    assert grid.shape == (60, 100) and grid.crs.to_epsg() == 4326
    for item in inv.items[::7]:
        got = read_interferogram(item, grid, validate_values=True)
        with rasterio.open(item.phase_path) as src:
            unw = src.read(1).astype("float64")
        with rasterio.open(item.coherence_path) as src:
            cc = src.read(1)
        nodata = unw == 0.0
        assert nodata.any() and np.isnan(got[:, nodata]).all()  # both bands NaN
        ok = ~nodata
        assert np.abs(unw[ok]).max() > np.pi  # really unwrapped
        np.testing.assert_allclose(np.exp(1j * got[1, ok]), np.exp(1j * unw[ok]), atol=1e-5)
        assert np.nanmin(got[1]) >= -np.pi and np.nanmax(got[1]) < np.pi
        coh = got[0, ok & (cc != 0)]
        np.testing.assert_array_equal(coh, cc[ok & (cc != 0)])
        assert np.isnan(got[0, cc == 0]).all()
        assert 0 <= np.nanmin(got[0]) and np.nanmax(got[0]) <= 1


def test_window_equals_slice_of_full_read():
    inv = discover(PYRATE)
    grid = check_grids(inv.items)
    item = inv.items[3]
    full = read_interferogram(item, grid)
    for win in (Window(0, 0, 50, 30), Window(50, 30, 50, 30), Window(17, 5, 3, 41)):
        got = read_interferogram(item, grid, window=win)
        np.testing.assert_array_equal(got, full[:, win.row_off:win.row_off + win.height,
                                                  win.col_off:win.col_off + win.width])
    with pytest.raises(ValueError, match="inside the 60 x 100 grid"):
        read_interferogram(item, grid, window=Window(90, 0, 20, 10))


def test_open_interferogram_dataarray():
    inv = discover(PYRATE)
    da = open_interferogram(inv.items[0])
    grid = grid_of(inv.items[0].phase_path)
    assert da.dims == ("band", "y", "x") and list(da.band.values) == ["coherence", "phase"]
    np.testing.assert_array_equal(da.x.values, grid.x)
    assert da.rio.crs.to_epsg() == 4326 and da.rio.transform().almost_equals(grid.transform)
    assert da.attrs["delay_days"] == inv.items[0].delay


# ----------------------------------------------------------------------- grids
def test_grid_coordinates_match_rasterio():
    grid = grid_of(next(PYRATE.glob("*_unw.tif")))
    xs, _ = rasterio.transform.xy(grid.transform, np.zeros(grid.width), np.arange(grid.width))
    _, ys = rasterio.transform.xy(grid.transform, np.arange(grid.height), np.zeros(grid.height))
    np.testing.assert_allclose(grid.x, xs, rtol=0, atol=1e-12)
    np.testing.assert_allclose(grid.y, ys, rtol=0, atol=1e-12)
    assert Grid.from_dict(grid.to_dict()) == grid and grid.same_as(Grid.from_dict(grid.to_dict()))
    sub = grid.window_grid(Window(10, 20, 5, 6))
    assert sub.shape == (6, 5)
    np.testing.assert_allclose([sub.x[0], sub.y[0]], [grid.x[10], grid.y[20]], rtol=1e-14)


def _oracle(src_path: Path, band: int, grid: Grid, cyclic: bool) -> np.ndarray:
    """Reprojection by rasterio.warp directly (an independent path to GDAL's warper)."""
    with rasterio.open(src_path) as src:
        data = src.read(band).astype("float64")
        layers = [np.cos(data), np.sin(data)] if cyclic else [data]
        outs = []
        for layer in layers:
            out = np.full(grid.shape, np.nan)
            reproject(layer, out, src_transform=src.transform, src_crs=src.crs,
                      dst_transform=grid.transform, dst_crs=grid.crs,
                      resampling=Resampling.bilinear, src_nodata=np.nan, dst_nodata=np.nan,
                      tolerance=0.0)
            outs.append(out)
    return np.arctan2(outs[1], outs[0]) if cyclic else outs[0]


def test_align_integer_shift_is_exact(tmp_path: Path):
    coh, pha = rng_fields(0)
    write_raster(tmp_path / "20180106_20180130.geo.diff_pha.tif", pha)
    write_raster(tmp_path / "20180106_20180130.geo.cc.tif", coh)
    coh2, pha2 = rng_fields(1)
    shifted = from_origin(6.5 + 5 * 0.001, 45.5 - 3 * 0.001, 0.001, 0.001)  # 5 px E, 3 px S
    write_raster(tmp_path / "20180130_20180211.geo.diff_pha.tif", pha2, transform=shifted)
    write_raster(tmp_path / "20180130_20180211.geo.cc.tif", coh2, transform=shifted)
    inv = discover(tmp_path)
    grid = check_grids(inv.items, align=True)
    assert grid.transform.almost_equals(TRANSFORM)
    got = read_interferogram(inv.items[1], grid, align=True)
    # grid pixel (r, c) is pixel (r - 3, c - 5) of the shifted file
    np.testing.assert_allclose(got[0, 3:, 5:], coh2[:-3, :-5], atol=1e-6)
    np.testing.assert_allclose(got[1, 3:, 5:], pha2[:-3, :-5], atol=1e-5)
    assert np.isnan(got[:, :3, :]).all() and np.isnan(got[:, :, :5]).all()


def _utm_pair(tmp_path: Path, pixel: float, size: tuple[int, int]) -> tuple[Path, Path]:
    """A reference pair in EPSG:4326 near 6.5E 45.5N and a second pair in UTM 32N over it."""
    coh, pha = rng_fields(0)
    write_raster(tmp_path / "a" / "20180106_20180130.geo.diff_pha.tif", pha, transform=TRANSFORM)
    write_raster(tmp_path / "a" / "20180106_20180130.geo.cc.tif", coh, transform=TRANSFORM)
    x0, y0 = rasterio.warp.transform("EPSG:4326", "EPSG:32632", [6.495], [45.505])
    utm_t = from_origin(round(x0[0]), round(y0[0]), pixel, pixel)
    ys, xs = np.mgrid[0:size[0], 0:size[1]] * pixel / 80.0
    smooth_coh = (0.2 + 0.6 * xs / xs.max()).astype("float32")
    smooth_pha = np.angle(np.exp(1j * (0.4 * xs + 0.3 * ys))).astype("float32")
    p2 = write_raster(tmp_path / "b" / "20180130_20180211.geo.diff_pha.tif", smooth_pha,
                      crs="EPSG:32632", transform=utm_t)
    c2 = write_raster(tmp_path / "b" / "20180130_20180211.geo.cc.tif", smooth_coh,
                      crs="EPSG:32632", transform=utm_t)
    return p2, c2


def test_align_other_crs_matches_rasterio_warp(tmp_path: Path):
    # 200 m UTM pixels onto ~80 x 110 m geographic ones: upsampling, GDAL's plain bilinear kernel
    p2, c2 = _utm_pair(tmp_path, 200.0, (14, 18))
    inv = discover(tmp_path)
    grid = check_grids(inv.items, align=True)
    got = read_interferogram(inv.items[1], grid, align=True, validate_values=True)
    want_coh = _oracle(c2, 1, grid, cyclic=False)
    want_pha = _oracle(p2, 1, grid, cyclic=True)
    assert np.isfinite(got[0]).sum() > 100  # the files overlap
    np.testing.assert_allclose(got[0], np.where(np.isnan(want_pha), np.nan, want_coh), atol=1e-5)
    np.testing.assert_allclose(got[1], want_pha, atol=1e-4)


@pytest.mark.parametrize("pixel, size", [(200.0, (14, 18)), (30.0, (100, 110)), (10.0, (300, 330))])
def test_align_windows_equal_the_whole_read(tmp_path: Path, pixel, size):
    # 30 m pixels: downsampling, where GDAL widens its kernel by a per-chunk estimate unless told
    _utm_pair(tmp_path, pixel, size)
    inv = discover(tmp_path)
    grid = check_grids(inv.items, align=True)
    whole = read_interferogram(inv.items[1], grid, align=True)
    assert np.isfinite(whole[1]).sum() > 100
    for win in (Window(8, 4, 16, 12), Window(0, 0, 8, 8), Window(24, 16, 8, 8)):
        part = read_interferogram(inv.items[1], grid, window=win, align=True)
        np.testing.assert_allclose(part, whole[:, win.row_off:win.row_off + win.height,
                                               win.col_off:win.col_off + win.width], atol=1e-3)


def test_align_window_outside_the_file_is_nan(tmp_path: Path):
    coh, pha = rng_fields(0)
    write_raster(tmp_path / "20180106_20180130.geo.diff_pha.tif", pha)
    write_raster(tmp_path / "20180106_20180130.geo.cc.tif", coh)
    far = from_origin(7.5, 45.5, 0.001, 0.001)
    write_raster(tmp_path / "20180130_20180211.geo.diff_pha.tif", pha, transform=far)
    write_raster(tmp_path / "20180130_20180211.geo.cc.tif", coh, transform=far)
    inv = discover(tmp_path)
    grid = check_grids(inv.items, align=True)
    got = read_interferogram(inv.items[1], grid, align=True)
    assert got.shape == (2, H, W) and np.isnan(got).all()


def test_lazy_interferogram_equals_eager():
    import dask

    inv = discover(PYRATE)
    grid = check_grids(inv.items)
    item = inv.items[5]
    eager = read_interferogram(item, grid)
    lazy = lazy_interferogram(item, grid, chunks=(25, 40))
    assert lazy.chunks == ((2,), (25, 25, 10), (40, 40, 20)) and lazy.dtype == np.float32
    with dask.config.set(scheduler="threads"):
        np.testing.assert_array_equal(lazy.compute(), eager)
        np.testing.assert_array_equal(lazy[:, 20:30, 35:45].compute(), eager[:, 20:30, 35:45])
    assert lazy.name == lazy_interferogram(item, grid, chunks=(25, 40)).name
    da_lazy = open_interferogram(item, grid, chunks=32)
    assert da_lazy.chunks is not None
    np.testing.assert_array_equal(da_lazy.values, eager)
    with pytest.raises(ValueError, match="positive"):
        lazy_interferogram(item, grid, chunks=0)


def test_two_spellings_of_one_crs_are_one_grid():
    from rasterio.crs import CRS

    esri_wgs84 = CRS.from_wkt(
        'GEOGCS["GCS_WGS_1984",DATUM["D_WGS_1984",SPHEROID["WGS_1984",6378137.0,'
        '298.257223563]],PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]]')
    a, b = Grid("EPSG:4326", TRANSFORM, W, H), Grid(esri_wgs84, TRANSFORM, W, H)
    assert a.crs != b.crs  # rasterio says different ...
    assert a.same_as(b)  # ... but they are one grid
    assert not a.same_as(Grid("EPSG:4258", TRANSFORM, W, H))  # ETRS89 is another datum
