"""Annotation polygons -> aligned rasters, checked against rasterio.features.rasterize."""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from affine import Affine
from rasterio.features import rasterize
from shapely.geometry import Polygon, box

from isslide_cube import annotations as ann
from isslide_cube import schema

# A 40 x 50 px grid of 0.001 deg pixels in the Alps (EPSG:4326).
TRANSFORM = Affine(0.001, 0, 6.5, 0, -0.001, 45.3)
SHAPE = (40, 50)
BOUNDS = (6.5, 45.3 - 0.040, 6.5 + 0.050, 45.3)


def _frame(geoms, ids=None, crs="EPSG:4326", **cols):
    ids = list(range(1, len(geoms) + 1)) if ids is None else ids
    data = {"move_id": ids, "class": ["Landslide"] * len(geoms),
            "confidence": [0.8] * len(geoms), "repetitions": [3] * len(geoms), **cols}
    return gpd.GeoDataFrame(data, geometry=list(geoms), crs=crs)


def _shp(frame, path):
    """Write ``frame`` as a shapefile the way a GIS does: DBF field names hold at most 10
    characters, so ``repetitions`` is written ``repetition`` (read back under its name)."""
    frame.rename(columns={"repetitions": "repetition"}).to_file(path)


@pytest.fixture
def ann_dir(tmp_path):
    folder = tmp_path / "annotations"
    folder.mkdir()
    _shp(_frame([box(6.51, 45.27, 6.52, 45.285), box(6.53, 45.265, 6.545, 45.29)]),
         folder / "S1_20180702_20180708.shp")
    _shp(_frame([Polygon([(6.505, 45.295), (6.515, 45.28), (6.52, 45.296)])], ids=[4]),
         folder / "S1_20180702_20180714.shp")
    _shp(_frame([]), folder / "S1_20180708_20180714.shp")  # annotated, no move
    return folder


PAIRS = [(pd.Timestamp("2018-07-02"), pd.Timestamp("2018-07-08")),
         (pd.Timestamp("2018-07-02"), pd.Timestamp("2018-07-14")),
         (pd.Timestamp("2018-07-08"), pd.Timestamp("2018-07-14"))]


def test_read_annotations_table(ann_dir):
    table = ann.read_annotations(ann_dir, PAIRS, crs="EPSG:4326")
    assert list(table.columns) == list(ann.TABLE_COLUMNS)
    assert len(table) == 3
    assert table["move_id"].dtype == np.int32
    assert table["delay"].tolist() == [6, 6, 12]
    assert table[ann.FIRST_DATE].dtype == "datetime64[ns]"
    # the shapefile driver truncates 'repetitions' to 'repetition': read back under its name
    assert table["repetitions"].tolist() == [3, 3, 3]
    assert set(table[ann.SOURCE_FILE]) == {"S1_20180702_20180708.shp", "S1_20180702_20180714.shp"}
    assert ann.annotated_pairs(ann_dir) == PAIRS


@pytest.mark.parametrize("all_touched", [False, True])
def test_rasterize_pair_equals_rasterio(ann_dir, all_touched):
    shp = ann_dir / "S1_20180702_20180708.shp"
    table = ann.read_annotation_file(shp, crs="EPSG:4326")
    mask, move_id = ann.rasterize_pair(table, TRANSFORM, SHAPE, all_touched=all_touched)
    oracle = rasterize([(g, 1) for g in gpd.read_file(shp).geometry], out_shape=SHAPE,
                       transform=TRANSFORM, all_touched=all_touched, dtype="uint8")
    assert mask.dtype == np.uint8 and move_id.dtype == np.int32
    np.testing.assert_array_equal(mask, oracle)
    assert mask.sum() > 0
    assert set(np.unique(move_id)) == {0, 1, 2}
    np.testing.assert_array_equal(move_id > 0, mask == 1)


def test_all_touched_burns_more(ann_dir):
    table = ann.read_annotation_file(ann_dir / "S1_20180702_20180714.shp")
    centre, _ = ann.rasterize_pair(table, TRANSFORM, SHAPE)
    touched, _ = ann.rasterize_pair(table, TRANSFORM, SHAPE, all_touched=True)
    assert touched.sum() > centre.sum() and np.all(touched >= centre)


def test_reprojected_from_another_crs(tmp_path):
    """A file in UTM 32N burns the same pixels as the same polygon in EPSG:4326."""
    geo = _frame([box(6.51, 45.27, 6.52, 45.285)])
    path = tmp_path / "S1_20180702_20180708.gpkg"
    geo.to_crs("EPSG:32632").to_file(path)
    table = ann.read_annotation_file(path, crs="EPSG:4326")
    mask, _ = ann.rasterize_pair(table, TRANSFORM, SHAPE)
    oracle = rasterize([(g, 1) for g in gpd.read_file(path).to_crs("EPSG:4326").geometry],
                       out_shape=SHAPE, transform=TRANSFORM, dtype="uint8")
    np.testing.assert_array_equal(mask, oracle)
    # ... and within a pixel of the original rectangle (reprojection bends edges)
    direct, _ = ann.rasterize_pair(geo, TRANSFORM, SHAPE)
    assert abs(int(mask.sum()) - int(direct.sum())) <= 2 * (10 + 15)


def test_invalid_geometry_repaired_with_warning(tmp_path):
    bowtie = Polygon([(6.51, 45.27), (6.53, 45.29), (6.53, 45.27), (6.51, 45.29)])
    assert not bowtie.is_valid
    path = tmp_path / "S1_20180702_20180708.shp"
    _shp(_frame([bowtie]), path)
    with pytest.warns(ann.AnnotationWarning, match="make_valid"):
        table = ann.read_annotation_file(path)
    assert table.geometry.is_valid.all()
    # two triangles of base 0.02 deg and height 0.01 deg: make_valid keeps both
    assert table.geometry.iloc[0].area == pytest.approx(2 * 0.02 * 0.01 / 2, rel=1e-6)
    mask, _ = ann.rasterize_pair(table, TRANSFORM, SHAPE)
    assert mask.sum() > 0


def test_file_without_crs_is_an_error(tmp_path):
    path = tmp_path / "S1_20180702_20180708.shp"
    _shp(_frame([box(6.51, 45.27, 6.52, 45.285)]), path)
    path.with_suffix(".prj").unlink()
    with pytest.raises(schema.RawDataError, match=r"S1_20180702_20180708\.shp has no CRS"):
        ann.read_annotations(tmp_path, PAIRS)


def test_pair_without_interferogram_is_an_error(ann_dir):
    with pytest.raises(schema.RawDataError, match=r"S1_20180708_20180714\.shp.*no interferogram"):
        ann.read_annotations(ann_dir, PAIRS[:2])


def test_bad_names_and_ids(tmp_path):
    _shp(_frame([box(6.51, 45.27, 6.52, 45.285)]), tmp_path / "moves.shp")
    with pytest.raises(schema.RawDataError, match="no pair dates"):
        ann.read_annotations(tmp_path / "moves.shp")
    _shp(_frame([box(6.51, 45.27, 6.52, 45.285)]), tmp_path / "S1_20180708_20180702.shp")
    with pytest.raises(schema.RawDataError, match="second date not after the first"):
        ann.read_annotations(tmp_path / "S1_20180708_20180702.shp")
    _shp(_frame([box(6.51, 45.27, 6.52, 45.285)], ids=[0]), tmp_path / "S1_20180702_20180708.shp")
    with pytest.raises(schema.RawDataError, match="positive integer"):
        ann.read_annotations(tmp_path / "S1_20180702_20180708.shp")
    with pytest.raises(schema.RawFileNotFoundError):
        ann.read_annotations(tmp_path / "absent")


def test_dates_from_columns(tmp_path):
    """One GeoPackage for several pairs, dated by columns."""
    path = tmp_path / "all_moves.gpkg"
    _frame([box(6.51, 45.27, 6.52, 45.285)] * 2, ids=[1, 2],
           first_date=["2018-07-02", "2018-07-08"], second_date=["2018-07-08", "2018-07-14"]
           ).to_file(path)
    table = ann.read_annotations(path, PAIRS)
    assert table["delay"].tolist() == [6, 6]


def test_outside_grid_warns():
    table = _frame([box(6.51, 45.27, 6.52, 45.285), box(7.5, 46.0, 7.6, 46.1)])
    table["source_file"] = "S1_20180702_20180708.shp"
    with pytest.warns(ann.AnnotationWarning, match="1 annotation polygon.*outside"):
        assert ann.warn_outside(table, BOUNDS) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ann.warn_outside(table.iloc[:1], BOUNDS) == 0


def test_rasterize_zones(tmp_path):
    zones = gpd.GeoDataFrame({"name": ["vanoise", "Queyras"]},
                             geometry=[box(6.5, 45.26, 6.52, 45.3), box(6.53, 45.26, 6.55, 45.28)],
                             crs="EPSG:4326")
    path = tmp_path / "zones.gpkg"
    zones.to_file(path)
    zone = ann.rasterize_zones(path, TRANSFORM, SHAPE, "EPSG:4326")
    assert zone.dtype == np.uint8
    assert set(np.unique(zone)) == {0, schema.ZONES.index("vanoise"), schema.ZONES.index("queyras")}
    assert zone[0, 0] == schema.ZONES.index("vanoise") and zone[0, -1] == 0
    zones.assign(name=["atlantis", "queyras"]).to_file(tmp_path / "bad.gpkg")
    with pytest.raises(schema.RawDataError, match="atlantis"):
        ann.rasterize_zones(tmp_path / "bad.gpkg", TRANSFORM, SHAPE, "EPSG:4326")
