"""build_cube / open_cube / open_annotations on real files on disk, checked against
rasterio reads and rasterio.features.rasterize of the same files."""

from __future__ import annotations

import json
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import zarr
from rasterio.features import rasterize

from isslide_cube import schema
from isslide_cube.annotations import AnnotationWarning
from isslide_cube.cube import DONE, BuildSummary, build_cube, open_annotations, open_cube

from .conftest import PYRATE, SHAPE, TRANSFORM, assert_stores_equal, pairs, to_shapefile, write_raw


def _pos(ds, first, second):
    return dict(start_date=np.datetime64(pd.Timestamp(first), "ns"),
                delay=int((second - first).days))


# ------------------------------------------------------------------ schema
@pytest.mark.slow  # checks every interferogram of a cube
def test_handmade_raw_builds_the_schema(raw, tmp_path):
    store = tmp_path / "cube.zarr"
    summary = build_cube(raw, store, chunks=16)
    assert isinstance(summary, BuildSummary)
    assert summary.interferograms == 7 and summary.written == 7 and summary.delays == (6, 12)
    text = str(summary)
    for word in ("interferograms: 7", "delays (days): 6, 12", "40 x 56 px", "size on disk",
                 "annotated pixels"):
        assert word in text

    ds = open_cube(store)
    assert schema.validate_cube(ds)
    assert ds.interferogram.dims == schema.CUBE_DIMS and ds.interferogram.dtype == np.float32
    assert ds.interferogram.data.chunksize == (1, 1, 2, 16, 16)
    assert ds.mask.data.chunksize == (1, 1, 16, 16)
    assert list(ds.band.values) == list(schema.BANDS)
    assert ds.start_date.dtype == "datetime64[ns]" and ds.delay.dtype == np.int64
    assert ds.delay.attrs["units"] == "days"
    np.testing.assert_array_equal(ds.start_date.values, DATES_NS[:4])
    np.testing.assert_array_equal(
        ds.end_date.values, ds.start_date.values[:, None]
        + ds.delay.values[None, :].astype("timedelta64[D]"))
    assert ds.has_interferogram.values.tolist() == [[True, True], [True, True],
                                                    [True, True], [True, False]]
    assert ds.rio.crs.to_epsg() == 4326
    assert ds.rio.transform().almost_equals(TRANSFORM)
    np.testing.assert_allclose(ds.x.values, TRANSFORM.c + TRANSFORM.a * (np.arange(56) + 0.5))
    for key in ("wavelength", "incidence_angle", "pass", "polarisation"):
        assert key in ds.attrs
    assert ds.attrs[schema.ATTR_PHASE_UNWRAPPED] == 0

    # where there is no interferogram: NaN, mask 255 (explicit _FillValue), move_id -1
    hole = ds.isel(start_date=3, delay=1)
    assert np.isnan(hole.interferogram.values).all()
    assert (hole.mask.values == schema.MASK_FILL).all() and ds.mask.dtype == np.uint8
    assert ds.mask.attrs["_FillValue"] == schema.MASK_FILL
    assert (hole.move_id.values == schema.MOVE_ID_FILL).all() and ds.move_id.dtype == np.int32
    present = ds.mask.where(ds.has_interferogram).values
    assert set(np.unique(present[~np.isnan(present)])) <= {0, 1}

    # interferograms equal the GeoTIFFs; masks equal rasterio's own rasterize of the files
    for first, second in pairs():
        stem = schema.raw_stem(first, second)
        with rasterio.open(raw / "interferograms" / f"{stem}.tif") as src:
            expected = src.read()
        cell = ds.sel(**_pos(ds, first, second))
        np.testing.assert_array_equal(cell.interferogram.values, expected)
        frame = gpd.read_file(raw / "annotations" / f"{stem}.shp")
        oracle = (rasterize([(g, 1) for g in frame.geometry], out_shape=SHAPE,
                            transform=TRANSFORM, dtype="uint8") if len(frame)
                  else np.zeros(SHAPE, "uint8"))
        np.testing.assert_array_equal(cell.mask.values, oracle, err_msg=stem)
        np.testing.assert_array_equal(cell.move_id.values > 0, oracle == 1)
        assert set(np.unique(cell.move_id.values)) <= {0, *frame["move_id"].tolist()}
    assert summary.annotated_pixels == int((ds.mask == 1).sum())
    assert summary.annotated_pixels > 0

    # layover and zone from layover.tif and zones.gpkg
    with rasterio.open(raw / "layover.tif") as src:
        np.testing.assert_array_equal(ds.layover.values, src.read(1) > 0)
    assert ds.layover.dtype == bool and ds.zone.dtype == np.uint8
    assert ds.zone.attrs["flag_meanings"] == " ".join(schema.ZONES)
    zones = gpd.read_file(raw / "zones.gpkg")
    oracle = rasterize([(g, schema.ZONES.index(n)) for g, n in zip(zones.geometry, zones.name, strict=True)],
                       out_shape=SHAPE, transform=TRANSFORM, dtype="uint8")
    np.testing.assert_array_equal(ds.zone.values, oracle)

    table = open_annotations(store)
    assert len(table) == sum(len(gpd.read_file(p)) for p in (raw / "annotations").glob("*.shp"))
    for col in ("move_id", "class", "confidence", "repetitions", "first_date", "second_date",
                "geometry"):
        assert col in table.columns
    assert table.crs.to_epsg() == 4326


DATES_NS = np.array(pd.date_range("2018-07-02", periods=5, freq="6D"), dtype="datetime64[ns]")


def test_no_annotations_no_mask(tmp_path):
    raw = write_raw(tmp_path / "raw", annotations=False, static=False)
    ds = open_cube(build_cube(raw, tmp_path / "c.zarr").store)
    assert schema.MASK not in ds and schema.MOVE_ID not in ds and schema.ZONE not in ds
    assert build_cube(raw, tmp_path / "c.zarr").annotated_pixels is None
    with pytest.raises(schema.CubeError, match="without annotations"):
        open_annotations(tmp_path / "c.zarr")


def test_annotations_in_another_crs_are_reprojected(tmp_path):
    raw = write_raw(tmp_path / "raw", ann_crs="EPSG:32632", static=False)
    ds = open_cube(build_cube(raw, tmp_path / "c.zarr", all_touched=True).store)
    for first, second in pairs():
        shp = raw / "annotations" / f"{schema.raw_stem(first, second)}.shp"
        frame = gpd.read_file(shp).to_crs("EPSG:4326")
        oracle = (rasterize([(g, 1) for g in frame.geometry], out_shape=SHAPE,
                            transform=TRANSFORM, all_touched=True, dtype="uint8")
                  if len(frame) else np.zeros(SHAPE, "uint8"))
        np.testing.assert_array_equal(ds.mask.sel(**_pos(ds, first, second)).values, oracle)


# ------------------------------------------------------------------- PyRate
def test_pyrate_real_files(tmp_path):
    ds = open_cube(build_cube(PYRATE, tmp_path / "pyrate.zarr").store)
    schema.validate_cube(ds)
    assert int(ds.has_interferogram.sum()) == 30
    assert ds.attrs[schema.ATTR_PHASE_UNWRAPPED] == 1
    assert 12 in ds.delay.values and 132 in ds.delay.values  # nothing assumes 6/12/18
    assert ds.attrs["wavelength"] == pytest.approx(0.0556, abs=1e-3)
    for unw in sorted(PYRATE.glob("cropA_*_unw.tif"))[::7]:
        first, second = (pd.Timestamp(d) for d in unw.name.split("_")[1].split("-"))
        with rasterio.open(unw) as src:
            phase = src.read(1).astype("float64")
        with rasterio.open(str(unw).replace("_eqa_unw", "_flat_eqa_cc")) as src:
            coh = src.read(1)
        cell = ds.interferogram.sel(**_pos(ds, first, second)).values
        nodata = phase == 0
        assert np.isnan(cell[1][nodata]).all() and np.isnan(cell[0][nodata]).all()
        wrapped = np.angle(np.exp(1j * phase[~nodata]))
        got = cell[1][~nodata].astype("float64")
        # wrapped to [-pi, pi): equal modulo 2 pi within float32 rounding
        assert np.all((got >= -np.pi) & (got < np.pi))
        np.testing.assert_allclose(np.angle(np.exp(1j * (got - wrapped))), 0, atol=2e-6)
        ok = ~nodata & (coh != 0)
        np.testing.assert_array_equal(cell[0][ok], coh[ok])


# ------------------------------------------------------------------- resume
@pytest.mark.slow  # builds two or three cubes
def test_resume_after_a_partial_build_equals_a_full_build(raw, tmp_path):
    reference = open_cube(build_cube(raw, tmp_path / "ref.zarr", chunks=16).store)
    store = tmp_path / "cube.zarr"
    build_cube(raw, store, chunks=16)
    # simulate a crash: three interferograms half written and unmarked, flag unset
    root = zarr.open_group(store, mode="r+")
    done = root[DONE]
    lost = [(0, 0), (2, 1), (3, 0)]
    for i, j in lost:
        done[i, j] = 0
        root["interferogram"][i, j, :, :16, :] = 7.0
        root["mask"][i, j] = 9
    root.attrs[schema.ATTR_COMPLETE] = 0
    with pytest.raises(schema.IncompleteCubeError, match=rf"isslide-cube build {raw} {store}"):
        open_cube(store)
    summary = build_cube(raw, store, chunks=16)
    assert summary.resumed and summary.written == len(lost)
    assert_stores_equal(open_cube(store), reference)
    again = build_cube(raw, store, chunks=16)  # complete: nothing to do
    assert again.written == 0


@pytest.mark.slow  # builds two or three cubes
def test_store_built_from_other_inputs_is_refused(raw, tmp_path):
    store = tmp_path / "cube.zarr"
    build_cube(raw, store, chunks=16)
    before = {p: p.stat().st_mtime_ns for p in store.rglob("*")}
    with pytest.raises(schema.CubeError, match=rf"{store}.*other inputs.*--overwrite"):
        build_cube(raw, store, chunks=32)
    other = write_raw(tmp_path / "other", seed=1)
    with pytest.raises(schema.CubeError, match="--overwrite"):
        build_cube(other, store, chunks=16)
    assert {p: p.stat().st_mtime_ns for p in store.rglob("*")} == before  # left intact
    build_cube(other, store, chunks=16, overwrite=True)
    with rasterio.open(sorted((other / "interferograms").glob("*.tif"))[0]) as src:
        first = src.read()
    np.testing.assert_array_equal(open_cube(store).interferogram[0, 0].values, first)


def test_foreign_folder_is_refused(raw, tmp_path):
    store = tmp_path / "mine"
    store.mkdir()
    (store / "notes.txt").write_text("keep me")
    with pytest.raises(schema.CubeError, match="not a cube built by isslide_cube"):
        build_cube(raw, store)
    assert (store / "notes.txt").read_text() == "keep me"
    with pytest.raises(schema.CubeError, match="no cube store"):
        open_cube(store)


# ----------------------------------------------------------------- bad input
def test_annotation_without_crs_writes_nothing(raw, tmp_path):
    next((raw / "annotations").glob("*.prj")).unlink()
    with pytest.raises(schema.RawDataError, match=r"\.shp has no CRS"):
        build_cube(raw, tmp_path / "cube.zarr")
    assert not (tmp_path / "cube.zarr").exists()


def test_annotation_for_a_missing_pair_writes_nothing(raw, tmp_path):
    gpd.read_file(next((raw / "annotations").glob("*.shp"))).to_file(
        raw / "annotations" / "S1_20180702_20180801.shp")
    with pytest.raises(schema.RawDataError, match=r"S1_20180702_20180801\.shp.*no interferogram"):
        build_cube(raw, tmp_path / "cube.zarr")
    assert not (tmp_path / "cube.zarr").exists()


def test_bad_input_leaves_an_existing_store_intact(raw, tmp_path):
    store = tmp_path / "cube.zarr"
    build_cube(raw, store)
    meta = (store / "zarr.json").read_bytes()
    next((raw / "annotations").glob("*.prj")).unlink()
    with pytest.raises(schema.RawDataError):
        build_cube(raw, store, overwrite=True)
    assert (store / "zarr.json").read_bytes() == meta
    open_cube(store)


def test_polygons_outside_the_grid_warn(raw, tmp_path):
    shp = raw / "annotations" / f"{schema.raw_stem(*pairs()[1])}.shp"
    frame = gpd.read_file(shp)
    frame.geometry = frame.geometry.translate(xoff=1.0)  # 1 degree east: off the grid
    frame.to_file(shp)
    with pytest.warns(AnnotationWarning, match="outside the interferogram grid"):
        ds = open_cube(build_cube(raw, tmp_path / "cube.zarr").store)
    assert int(ds.mask.sel(**_pos(ds, *pairs()[1])).sum()) == 0


def test_invalid_polygon_is_repaired(raw, tmp_path):
    from shapely.geometry import Polygon

    shp = raw / "annotations" / f"{schema.raw_stem(*pairs()[0])}.shp"
    x0, y0 = TRANSFORM @ (10, 10)
    x1, y1 = TRANSFORM @ (30, 30)
    bowtie = Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])
    to_shapefile(gpd.GeoDataFrame({"move_id": [3], "class": ["Landslide"], "confidence": [0.5],
                                   "repetitions": [2]}, geometry=[bowtie], crs="EPSG:4326"), shp)
    with pytest.warns(AnnotationWarning, match="make_valid"):
        ds = open_cube(build_cube(raw, tmp_path / "cube.zarr").store)
    assert int(ds.mask.sel(**_pos(ds, *pairs()[0])).sum()) > 100


def test_progress_bar(raw, tmp_path, capsys):
    build_cube(raw, tmp_path / "cube.zarr", progress=True)
    assert "interferograms" in capsys.readouterr().err


def test_bad_chunks(raw, tmp_path):
    with pytest.raises(schema.CubeError, match="positive"):
        build_cube(raw, tmp_path / "c.zarr", chunks=0)
    with pytest.raises(schema.CubeError, match="square"):
        build_cube(raw, tmp_path / "c.zarr", chunks={"y": 10, "x": 20})
    assert not (tmp_path / "c.zarr").exists()


def test_root_metadata_is_consolidated(raw, tmp_path):
    store = build_cube(raw, tmp_path / "cube.zarr").store
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        meta = json.loads((store / "zarr.json").read_text())
    assert meta["attributes"][schema.ATTR_COMPLETE] == 1
    assert "consolidated_metadata" in meta


def test_other_grid_needs_align(raw, tmp_path):
    """A file one pixel off the grid: an error naming it (and --align), or reprojected."""
    from affine import Affine

    from isslide_cube.io import check_grids, discover, read_interferogram

    first, second = pairs()[2]
    tif = raw / "interferograms" / f"{schema.raw_stem(first, second)}.tif"
    with rasterio.open(tif) as src:
        data = src.read()
    shifted = TRANSFORM @ Affine.translation(1, 1)
    from .conftest import write_interferogram

    write_interferogram(tif, first, second, data, transform=shifted)
    with pytest.raises(schema.RawDataError, match=rf"(?s){tif.name}.*--align"):
        build_cube(raw, tmp_path / "cube.zarr")
    assert not (tmp_path / "cube.zarr").exists()

    ds = open_cube(build_cube(raw, tmp_path / "cube.zarr", align=True).store)
    assert ds.rio.transform().almost_equals(TRANSFORM)
    items = discover(raw / "interferograms").items
    item = next(it for it in items if it.pair == (first, second))
    expected = read_interferogram(item, check_grids(items, align=True), align=True)
    got = ds.interferogram.sel(**_pos(ds, first, second)).values
    np.testing.assert_array_equal(got, expected)
    # the file's pixel (r, c) is the grid's pixel (r + 1, c + 1)
    np.testing.assert_allclose(got[:, 5:30, 5:30], data[:, 4:29, 4:29], atol=1e-5)


def test_coherence_out_of_range_leaves_no_store(raw, tmp_path):
    first, second = pairs()[3]
    tif = raw / "interferograms" / f"{schema.raw_stem(first, second)}.tif"
    with rasterio.open(tif) as src:
        data = src.read()
    data[0, 3, 3] = 1.5
    from .conftest import write_interferogram

    write_interferogram(tif, first, second, data)
    with pytest.raises(schema.RawDataError, match=rf"(?i){tif.name}.*coherence"):
        build_cube(raw, tmp_path / "cube.zarr")
    assert not (tmp_path / "cube.zarr").exists()


@pytest.mark.slow  # builds two or three cubes
def test_crash_while_writing_the_template_restarts_it(raw, tmp_path):
    reference = open_cube(build_cube(raw, tmp_path / "ref.zarr", chunks=16).store)
    store = tmp_path / "cube.zarr"
    build_cube(raw, store, chunks=16)
    root = zarr.open_group(store, mode="r+")
    root.attrs.update({"isslide_template_complete": 0, schema.ATTR_COMPLETE: 0})
    import shutil

    shutil.rmtree(store / "mask")  # the template had not reached it
    summary = build_cube(raw, store, chunks=16)
    assert not summary.resumed and summary.written == 7
    assert_stores_equal(open_cube(store), reference)


@pytest.mark.parametrize("chunk", [7, 16, 25, 40, 100])
def test_chunk_rows_follow_the_tiling_and_equal_a_whole_read(tmp_path, chunk):
    """Rows of chunks read tile row by tile row (16 px tiles) are a whole read, sliced."""
    from isslide_cube.cube import _chunk_rows, _Job, _tile_height
    from isslide_cube.io import check_grids, discover, read_interferogram

    rng = np.random.default_rng(3)
    height, width = 70, 48
    data = np.stack([rng.uniform(0, 1, (height, width)),
                     rng.uniform(-np.pi, np.pi, (height, width))]).astype("float32")
    data[:, 30:33, 5:9] = np.nan
    path = tmp_path / "S1_20180702_20180708.tif"
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=2,
                       dtype="float32", crs="EPSG:4326", transform=TRANSFORM, nodata=np.nan,
                       tiled=True, blockxsize=16, blockysize=16) as dst:
        dst.write(data)
        dst.descriptions = schema.BANDS
    item = discover(tmp_path).items[0]
    grid = check_grids([item])
    assert _tile_height(path, 1) == 16
    job = _Job(str(tmp_path / "unused.zarr"), item, 0, 0, grid, None, chunk, False, False)
    rows = list(_chunk_rows(job))
    assert [r0 for r0, _ in rows] == list(range(0, height, chunk))
    assert all(r.shape == (2, min(chunk, height - r0), width) for r0, r in rows)
    whole = read_interferogram(item, grid)
    np.testing.assert_array_equal(np.concatenate([r for _, r in rows], axis=1), whole)
    np.testing.assert_array_equal(whole, data)
