"""Tests of the shared names and the raw-folder validator."""

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from isslide_cube import schema


def test_fringe_is_half_the_wavelength():
    assert schema.fringe_metres() == pytest.approx(0.027733)


def test_errors_subclass_builtin_types():
    assert issubclass(schema.RawDataError, ValueError)
    assert issubclass(schema.RawFileNotFoundError, FileNotFoundError)
    assert issubclass(schema.IncompleteCubeError, schema.CubeError)


def test_validate_raw_missing_folder(tmp_path: Path):
    report = schema.validate_raw(tmp_path / "nope")
    assert not report
    with pytest.raises(schema.RawDataError, match="does not exist"):
        schema.validate_raw(tmp_path / "nope", raise_on_error=True)


def _write(path: Path, bands: np.ndarray, *, crs="EPSG:4326", descriptions=schema.BANDS,
           tags=True) -> None:
    with rasterio.open(path, "w", driver="GTiff", width=bands.shape[2], height=bands.shape[1],
                       count=bands.shape[0], dtype=bands.dtype, crs=crs,
                       transform=from_origin(6.5, 45.5, 0.0003, 0.0003)) as dst:
        dst.write(bands)
        for i, d in enumerate(descriptions[: bands.shape[0]], start=1):
            dst.set_band_description(i, d)
        if tags:
            dst.update_tags(FIRST_DATE="2018-07-02", SECOND_DATE="2018-07-08")


def test_validate_raw_names_every_problem(tmp_path: Path):
    ifg = tmp_path / "interferograms"
    ifg.mkdir()
    good = np.stack([np.full((8, 8), 0.5), np.zeros((8, 8))]).astype("float32")
    _write(ifg / "S1_20180702_20180708.tif", good)
    one_band = good[:1]
    _write(ifg / "S1_20180702_20180714.tif", one_band)
    _write(ifg / "nodate.tif", good)
    bad_coh = good.copy()
    bad_coh[0, 0, 0] = 1.5
    _write(ifg / "S1_20180708_20180714.tif", bad_coh)
    _write(ifg / "S1_20180714_20180720.tif", good, crs="EPSG:32632")
    ann = tmp_path / "annotations"
    ann.mkdir()
    (ann / "S1_20180702_20180708.shp").write_bytes(b"")

    report = schema.validate_raw(tmp_path)
    text = str(report)
    assert "S1_20180702_20180714.tif: has 1 band(s)" in text
    assert "nodate.tif: name carries no dates" in text
    assert "S1_20180708_20180714.tif: coherence outside [0, 1]" in text
    assert "S1_20180714_20180720.tif: CRS is EPSG:32632" in text
    assert "S1_20180702_20180708.shp: side file S1_20180702_20180708.dbf is missing" in text
    assert "S1_20180702_20180708.tif" not in text  # the good file raises nothing
    assert len(report.problems) == 5


def test_validate_raw_accepts_the_dbase_truncated_repetitions_field(tmp_path: Path):
    import geopandas as gpd
    from shapely.geometry import box

    ifg = tmp_path / "interferograms"
    ifg.mkdir()
    _write(ifg / "S1_20180702_20180708.tif",
           np.stack([np.full((8, 8), 0.5), np.zeros((8, 8))]).astype("float32"))
    ann = tmp_path / "annotations"
    ann.mkdir()
    frame = gpd.GeoDataFrame({"move_id": [1], "class": ["Landslide"], "confidence": [0.9],
                              "repetition": [3]}, geometry=[box(6.5, 45.49, 6.501, 45.4995)],
                             crs="EPSG:4326")
    frame.to_file(ann / "S1_20180702_20180708.shp")
    assert schema.validate_raw(tmp_path), str(schema.validate_raw(tmp_path))
    frame.drop(columns="repetition").to_file(ann / "S1_20180702_20180708.shp")
    assert "fields ['repetitions'] missing" in str(schema.validate_raw(tmp_path))
