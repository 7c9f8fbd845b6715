"""Bad input: each case gives a clear error naming the file and the fix."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from io_rasters import PYRATE, rng_fields, write_raster

from isslide_cube.io import (
    RawDataWarning,
    check_grids,
    discover,
    grid_of,
    read_interferogram,
    read_manifest,
)
from isslide_cube.schema import RawDataError, RawFileNotFoundError


def _pair(folder: Path, stem: str = "20180106_20180130", **kw) -> tuple[Path, Path]:
    coh, pha = rng_fields(0)
    return (write_raster(folder / f"{stem}.geo.diff_pha.tif", pha, **kw),
            write_raster(folder / f"{stem}.geo.cc.tif", coh, **kw))


def test_missing_source(tmp_path: Path):
    with pytest.raises(RawFileNotFoundError, match="does not exist"):
        discover(tmp_path / "nope")
    with pytest.raises(RawFileNotFoundError, match="nope.tif does not exist"):
        discover([tmp_path / "nope.tif"])


def test_empty_folder(tmp_path: Path):
    (tmp_path / "raw" / "sub").mkdir(parents=True)
    with pytest.raises(RawFileNotFoundError, match=r"raw is empty; put the interferograms"):
        discover(tmp_path / "raw")


def test_no_interferogram_recognised(tmp_path: Path):
    write_raster(tmp_path / "dem.tif", np.ones((4, 4), "float32"))
    write_raster(tmp_path / "2018_a.tif", np.ones((4, 4), "float32"))
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(RawDataError) as err:
        discover(tmp_path)
    msg = str(err.value)
    assert "no interferogram recognised" in msg and "dem.tif" in msg and "notes.txt" in msg
    assert "YYYYMMDD_YYYYMMDD" in msg and "diff_pha" in msg and "FIRST_DATE" in msg
    assert "manifest" in msg


def test_no_dates_in_explicit_file(tmp_path: Path):
    path = write_raster(tmp_path / "mystery.tif", np.ones((4, 4), "float32"))
    with pytest.raises(RawDataError, match=r"mystery.tif: neither its name nor its tags .*manifest"):
        discover([path])


def test_no_role_in_explicit_file(tmp_path: Path):
    path = write_raster(tmp_path / "ifg_20180106_20180130.tif", np.ones((4, 4), "float32"))
    with pytest.raises(RawDataError, match=r"ifg_20180106_20180130.tif: has dates but .*coh"):
        discover([path])


def test_no_dates_in_file_named_as_phase(tmp_path: Path):
    _pair(tmp_path)
    write_raster(tmp_path / "coherence_final.tif", np.ones((4, 4), "float32"))
    with pytest.raises(RawDataError,
                       match=r"coherence_final.tif: is named as coherence but no dates .*FIRST_DATE"):
        discover(tmp_path)


def test_second_date_not_after_first(tmp_path: Path):
    _pair(tmp_path, "20180130_20180106")
    with pytest.raises(RawDataError, match=r"20180130_20180106.geo.diff_pha.tif: second date "
                                           r"2018-01-06 is not after the first"):
        discover(tmp_path)


def test_two_files_same_pair_and_role(tmp_path: Path):
    _pair(tmp_path)
    coh, _ = rng_fields(1)
    write_raster(tmp_path / "other" / "coh_20180106_20180130.tif", coh)
    with pytest.raises(RawDataError) as err:
        discover(tmp_path)
    msg = str(err.value)
    assert "2 coherence files" in msg and "20180106_20180130.geo.cc.tif" in msg
    assert "coh_20180106_20180130.tif" in msg and "keep one per pair and role" in msg


def test_two_band_and_separate_files(tmp_path: Path):
    _pair(tmp_path)
    coh, pha = rng_fields(1)
    write_raster(tmp_path / "S1_20180106_20180130.tif", np.stack([coh, pha]),
                 descriptions=("coherence", "phase"))
    with pytest.raises(RawDataError, match="both a 2-band interferogram and separate files"):
        discover(tmp_path)


def test_phase_without_coherence_required(tmp_path: Path):
    _pair(tmp_path)
    _, pha = rng_fields(2)
    lone = write_raster(tmp_path / "20180130_20180211.geo.diff_pha.tif", pha)
    with pytest.warns(RawDataWarning, match="no coherence"):
        assert len(discover(tmp_path).items) == 2
    with pytest.raises(RawDataError, match=rf"{lone.name}: phase of pair 2018-01-30/2018-02-11 "
                                           "has no coherence file"):
        discover(tmp_path, require_coherence=True)


def test_raster_without_crs(tmp_path: Path):
    phase, _ = _pair(tmp_path, crs=None)
    with pytest.raises(RawDataError, match=r"diff_pha.tif: has no CRS \(fix: georeference"):
        discover(tmp_path)
    with pytest.raises(RawDataError, match="has no CRS; write one"):
        grid_of(phase)


@pytest.mark.parametrize("bands, descriptions, expect", [
    (3, None, "has 3 band"),
    (1, None, "has 1 band"),
    (2, ("amplitude", "phase"), "band descriptions are"),
])
def test_wrong_band_count_raw_layout(tmp_path: Path, bands, descriptions, expect):
    data = np.ones((bands, 4, 4), "float32")
    path = write_raster(tmp_path / "interferograms" / "S1_20180702_20180708.tif", data,
                        descriptions=descriptions)
    with pytest.raises(RawDataError, match=rf"S1_20180702_20180708.tif: {expect}"):
        discover(tmp_path)
    with pytest.raises(RawDataError, match=rf"S1_20180702_20180708.tif: {expect}"):
        discover([path])


def test_wrong_band_count_role_file(tmp_path: Path):
    coh, pha = rng_fields(0)
    write_raster(tmp_path / "20180106_20180130.geo.diff_pha.tif", np.stack([pha, pha]))
    write_raster(tmp_path / "20180106_20180130.geo.cc.tif", coh)
    with pytest.raises(RawDataError, match=r"diff_pha.tif: has 2 bands, a phase file needs 1 "
                                           r"\(fix: give the band"):
        discover(tmp_path)


@pytest.mark.parametrize("role_file, dtype", [("diff_pha", "int16"), ("cc", "int16"),
                                              ("diff_pha", "uint8"), ("cc", "complex64")])
def test_wrong_dtype(tmp_path: Path, role_file: str, dtype: str):
    phase, coh = _pair(tmp_path)
    bad = phase if role_file == "diff_pha" else coh
    write_raster(bad, np.ones((4, 4)), dtype=dtype)
    with pytest.raises(RawDataError, match=rf"{bad.name}: .* band 1 has dtype {dtype}"):
        discover(tmp_path)


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_geotiff_at_discovery(tmp_path: Path, keep: float):
    phase, _ = _pair(tmp_path)
    os.truncate(phase, int(phase.stat().st_size * keep))
    with pytest.raises(RawDataError, match=r"diff_pha.tif: cannot be read .*truncated or corrupt"):
        discover(tmp_path)


def test_corrupt_geotiff_at_discovery(tmp_path: Path):
    (tmp_path / "S1_20180702_20180708.tif").write_bytes(b"II*\x00" + os.urandom(500))
    with pytest.raises(RawDataError, match=r"S1_20180702_20180708.tif: cannot be read"):
        discover(tmp_path)


def test_unreadable_non_interferogram_is_skipped(tmp_path: Path):
    _pair(tmp_path)
    (tmp_path / "dem.tif").write_bytes(b"not a tiff at all")
    inv = discover(tmp_path)
    assert any(p.name == "dem.tif" and "not a readable raster" in why for p, why in inv.skipped)


def test_truncated_after_discovery_fails_at_read(tmp_path: Path):
    phase, _ = _pair(tmp_path)
    (item,) = discover(tmp_path).items
    os.truncate(phase, phase.stat().st_size // 2)
    with pytest.raises(RawDataError, match=r"diff_pha.tif: band\(s\) \[1\] cannot be read, the file is "
                                           "truncated or corrupt"):
        read_interferogram(item)


def test_coherence_outside_0_1(tmp_path: Path):
    phase, coh = _pair(tmp_path)
    values = np.full((24, 32), 0.5, "float32")
    values[3, 4] = 1.7
    write_raster(coh, values)
    (item,) = discover(tmp_path).items
    read_interferogram(item)  # values are only checked when asked
    with pytest.raises(RawDataError, match=r"geo.cc.tif: coherence outside \[0, 1\] .*max 1.7"):
        read_interferogram(item, validate_values=True)


def test_wrapped_phase_out_of_range_is_flagged(tmp_path: Path):
    phase, _ = _pair(tmp_path)
    write_raster(phase, np.full((24, 32), 7.0, "float32"))
    (item,) = discover(tmp_path).items
    with pytest.raises(RawDataError, match=r"diff_pha.tif: wrapped phase reaches 7 .*'unw'"):
        read_interferogram(item, validate_values=True)


def test_explicit_non_raster(tmp_path: Path):
    note = tmp_path / "list.txt"
    note.write_text("x")
    with pytest.raises(RawDataError, match=r"list.txt: is not a raster"):
        discover([note])


def test_bad_manifest(tmp_path: Path):
    write_raster(tmp_path / "a.tif", np.ones((4, 4), "float32"))
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,role,first_date,second_date\n"
                        "a.tif,amplitude,2018-01-06,2018-01-30\n"
                        "missing.tif,phase,2018-01-06,2018-01-30\n"
                        "a.tif,phase,yesterday,2018-01-30\n"
                        "a.tif,phase,2018-01-06,\n")
    with pytest.raises(RawDataError) as err:
        read_manifest(manifest)
    msg = str(err.value)
    assert "4 problem(s)" in msg and "role 'amplitude'" in msg and "missing.tif does not exist" in msg
    assert "'yesterday' is not a date" in msg and "give both first_date and second_date" in msg
    (tmp_path / "m.json").write_text(json.dumps({"nothing": 1}))
    with pytest.raises(RawDataError, match="expected a list of records"):
        discover(tmp_path / "m.json")
    with pytest.raises(RawFileNotFoundError, match="manifest .* does not exist"):
        discover(tmp_path, manifest=tmp_path / "none.csv")


def test_every_problem_listed_at_once(tmp_path: Path):
    shutil.copytree(PYRATE, tmp_path / "cropA")
    for name in ("cropA_20180106-20180130_VV_8rlks_eqa_unw.tif",
                 "cropA_20180307-20180319_VV_8rlks_flat_eqa_cc.tif"):
        p = tmp_path / "cropA" / name
        p.chmod(0o644)
        os.truncate(p, 3000)
    with pytest.raises(RawDataError, match="2 problem") as err:
        discover(tmp_path / "cropA")
    assert "20180106-20180130_VV_8rlks_eqa_unw" in str(err.value)
    assert "20180307-20180319_VV_8rlks_flat_eqa_cc" in str(err.value)


def test_different_grids_error_lists_every_file(tmp_path: Path):
    from rasterio.transform import from_origin

    _pair(tmp_path, "20180106_20180130")
    p2, _ = _pair(tmp_path, "20180130_20180211", crs="EPSG:32632",
                  transform=from_origin(300000, 5000000, 20, 20))
    p3, c3 = _pair(tmp_path, "20180211_20180223", transform=from_origin(6.5, 45.5, 0.002, 0.002))
    p4, _ = _pair(tmp_path, "20180223_20180307", transform=from_origin(6.6, 45.5, 0.001, 0.001))
    inv = discover(tmp_path)
    with pytest.raises(RawDataError) as err:
        check_grids(inv.items)
    msg = str(err.value)
    assert "6 file(s) are not on the grid of" in msg and "--align" in msg
    assert f"{p2}: CRS EPSG:32632 instead of EPSG:4326" in msg
    assert f"{p3}: resolution (0.002, 0.002) instead of (0.001, 0.001)" in msg
    assert f"{c3}: resolution" in msg
    assert f"{p4}: extent (6.6, " in msg
    assert check_grids(inv.items, align=True).crs.to_epsg() == 4326
    with pytest.raises(RawDataError, match=r"not on the reference grid .*--align"):
        read_interferogram(inv.items[1], check_grids(inv.items, align=True))


def test_rotated_reference_grid(tmp_path: Path):
    from affine import Affine

    rotated = Affine(0.001, 0.0002, 6.5, 0.0002, -0.001, 45.5)
    _pair(tmp_path, transform=rotated)
    inv = discover(tmp_path)
    with pytest.raises(RawDataError, match=r"diff_pha.tif: its grid is rotated .*north-up"):
        check_grids(inv.items)
