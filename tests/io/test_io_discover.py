"""Discovery of every supported layout, on files written here with rasterio and on real PyRate files."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from io_rasters import LICSAR_PAIRS, PYRATE, RAW_PAIRS, H, W, rng_fields, write_raster

from isslide_cube.io import RawDataWarning, check_grids, discover, read_interferogram
from isslide_cube.io.sources import COHERENCE_SCALE_8BIT

T = pd.Timestamp


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*"))}


# ------------------------------------------------------------------ raw layout
def test_raw_layout(raw_layout: Path):
    inv = discover(raw_layout)
    assert [(i.first, i.second) for i in inv.items] == [(T(a), T(b)) for a, b in RAW_PAIRS]
    assert [i.delay for i in inv.items] == [6, 12, 18]
    assert inv.delays == [6, 12, 18] and inv.start_dates == [T("20180702"), T("20180708")]
    for item in inv.items:
        assert item.phase_path == item.coherence_path
        assert (item.coherence_band, item.phase_band) == (1, 2)
        assert not item.phase_unwrapped and item.coherence_scale == 1.0
    skipped = {p.relative_to(raw_layout).as_posix() for p, _ in inv.skipped}
    # shapefile parts, the vector layers, tables: all listed, none used
    assert {"layover.tif", "dem.tif", "zones.gpkg", "manifest.json", "truth/moves.csv",
            "annotations/S1_20180702_20180708.shp",
            "annotations/S1_20180702_20180708.dbf"} <= skipped
    reasons = {p.relative_to(raw_layout).as_posix(): why for p, why in inv.skipped}
    assert "no phase/coherence role" in reasons["truth/coherence/S1_20180702_20180708.tif"]
    assert "no phase/coherence role" in reasons["truth/los_displacement/S1_20180708_20180726.tif"]
    summary = inv.summary()
    assert "3 interferogram(s)" in summary and "layover.tif" in summary and "dem.tif" in summary
    # many skipped files: one line per reason, with examples and a count
    assert "6 x dates but no phase/coherence role in its name" in summary
    assert len(summary.splitlines()) < len(inv.skipped)


def test_raw_layout_values_are_the_files(raw_layout: Path):
    inv = discover(raw_layout)
    grid = check_grids(inv.items)
    for item in inv.items:
        got = read_interferogram(item, grid, validate_values=True)
        with rasterio.open(item.phase_path) as src:
            want = src.read()
        want[0][np.isnan(want[1])] = np.nan  # no phase, no interferogram: both bands NaN
        assert got.dtype == np.float32 and got.shape == (2, H, W)
        np.testing.assert_array_equal(got, want)  # NaN where NaN, bit for bit elsewhere
        assert np.isnan(got[:, 0, :3]).all()


def test_two_band_in_other_order_and_any_name(tmp_path: Path):
    coh, pha = rng_fields(1)
    write_raster(tmp_path / "stack_a.tif", np.stack([pha, coh]),
                 descriptions=("phase", "coherence"),
                 tags={"FIRST_DATE": "2019-03-01", "SECOND_DATE": "2019-03-13"})
    (item,) = discover(tmp_path).items
    assert (item.phase_band, item.coherence_band, item.delay) == (1, 2, 12)
    got = read_interferogram(item)
    np.testing.assert_array_equal(got[0], coh)
    np.testing.assert_array_equal(got[1], pha)


def test_undescribed_two_band_raw_name(tmp_path: Path):
    coh, pha = rng_fields(2)
    write_raster(tmp_path / "S1_20180702_20180708.tif", np.stack([coh, pha]))
    (item,) = discover(tmp_path).items
    assert (item.coherence_band, item.phase_band) == (1, 2)


# ------------------------------------------------------------------------ SNAP
def test_snap_beam_dimap(snap_folder: Path):
    inv = discover(snap_folder)
    assert [(i.first, i.second, i.delay) for i in inv.items] == [
        (T("2018-07-06"), T("2018-07-12"), 6), (T("2018-07-12"), T("2018-07-24"), 12)]
    for item in inv.items:
        assert item.phase_path.name.startswith("Phase_ifg_VV_")
        assert item.coherence_path.name.startswith("coh_VV_")
        assert item.phase_path.parent.suffix == ".data"
        # the ENVI header is part of what the cube checks on resume
        assert any(f.endswith(".hdr") for f, _, _ in item.fingerprint())
    reasons = {p.name: why for p, why in inv.skipped}
    assert "no phase/coherence role" in reasons["i_ifg_VV_06Jul2018_12Jul2018.img"]
    assert "no dates" in reasons["elevation.img"]
    assert "pins.csv" in reasons and not any(n.endswith(".hdr") for n in reasons)
    grid = check_grids(inv.items)
    assert grid.crs.to_epsg() == 32632 and grid.shape == (H, W)
    coh, pha = rng_fields(10)
    got = read_interferogram(inv.items[0], grid)
    np.testing.assert_array_equal(got[0], coh)
    np.testing.assert_array_equal(got[1], pha)


def test_snap_dates_from_the_data_folder(tmp_path: Path):
    coh, pha = rng_fields(3)
    data = tmp_path / "S1A_IW_SLC_Orb_Stack_ifg_06Jul2018_18Jul2018.data"
    write_raster(data / "Phase_ifg_VV.img", pha, driver="ENVI")
    write_raster(data / "coh_VV.img", coh, driver="ENVI")
    (item,) = discover(tmp_path).items
    assert (item.first, item.delay) == (T("2018-07-06"), 12)


# --------------------------------------------------------------- GAMMA / PyRate
def test_pyrate_real_files():
    inv = discover(PYRATE)
    assert len(inv.items) == 30
    names = sorted(p.name for p in PYRATE.glob("*_unw.tif"))
    for item in inv.items:
        d1, d2 = item.phase_path.name.split("_")[1].split("-")
        assert (item.first, item.second) == (T(d1), T(d2))
        assert item.delay == (T(d2) - T(d1)).days
        assert item.coherence_path.name == item.phase_path.name.replace("_eqa_unw", "_flat_eqa_cc")
        assert item.phase_unwrapped and item.phase_nodata == 0.0 and item.coherence_nodata == 0.0
    assert sorted(i.phase_path.name for i in inv.items) == names
    assert min(inv.delays) == 12 and max(inv.delays) == 132
    assert len(inv.dates) == 13
    skipped = {p.name for p, _ in inv.skipped}
    assert {"cropA_T005A_dem.tif", "ifg_30", "coherence_30", "baseline_30", "headers_13",
            "README.md", "LICENSE", "PROVENANCE.csv"} == skipped
    # sorted by (first, second)
    assert [i.pair for i in inv.items] == sorted(i.pair for i in inv.items)
    frame = inv.to_frame()
    assert len(frame) == 30 and frame["delay"].tolist() == [i.delay for i in inv.items]
    assert "30 interferogram(s) on 13 date(s)" in inv.summary()


def test_pyrate_explicit_file_list():
    files = sorted(PYRATE.glob("cropA_2018*.tif"))[:6]
    inv = discover(files)
    assert len(inv.items) == 3 and not inv.skipped


# ---------------------------------------------------------------------- LiCSAR
def test_licsar(licsar_folder: Path):
    inv = discover(licsar_folder)
    first, second = inv.items
    assert [(i.first, i.second) for i in inv.items] == [(T(a), T(b)) for a, b in LICSAR_PAIRS]
    # wrapped phase preferred; the unwrapped file of that pair is listed as skipped
    assert first.phase_path.name.endswith(".geo.diff_pha.tif") and not first.phase_unwrapped
    assert second.phase_path.name.endswith(".geo.unw.tif") and second.phase_unwrapped
    reasons = {p.name: why for p, why in inv.skipped}
    assert "wrapped phase" in reasons["20180106_20180130.geo.unw.tif"]
    assert "073D_13256_001823.geo.hgt.tif" in reasons and "metadata.txt" in reasons
    assert first.coherence_scale == COHERENCE_SCALE_8BIT
    for i, item in enumerate(inv.items):
        got = read_interferogram(item, validate_values=True)
        coh, pha = rng_fields(20 + i)
        cc = np.round(coh * 255).astype("uint8")
        assert np.isnan(got[0, :2]).all()  # 8-bit nodata 0
        np.testing.assert_allclose(got[0, 2:], cc[2:] / 255.0, rtol=1e-6)
        assert np.nanmin(got[0]) >= 0 and np.nanmax(got[0]) <= 1
        # unwrapped = wrapped + 2 pi k: wrapping gives the wrapped phase back
        np.testing.assert_allclose(got[1], pha, atol=2e-5)


# ----------------------------------------------------- tags, manifests, no coherence
def test_dates_from_tags(tmp_path: Path):
    coh, pha = rng_fields(4)
    tags = {"MASTER_DATE": "20200101", "SLAVE_DATE": "20200125"}
    write_raster(tmp_path / "pairA" / "pairA_unw.tif", pha, tags=tags)
    write_raster(tmp_path / "pairA" / "pairA_coh.tif", coh, tags=tags)
    (item,) = discover(tmp_path).items
    assert (item.first, item.second, item.delay) == (T("2020-01-01"), T("2020-01-25"), 24)
    assert item.phase_unwrapped


def test_unwrapped_tag(tmp_path: Path):
    coh, pha = rng_fields(4)
    write_raster(tmp_path / "phase_20200101_20200113.tif", pha * 5,
                 tags={"PHASE_UNWRAPPED": "1"})
    write_raster(tmp_path / "coh_20200101_20200113.tif", coh)
    (item,) = discover(tmp_path).items
    assert item.phase_unwrapped


def test_name_and_tag_dates_disagree_warns(tmp_path: Path):
    coh, pha = rng_fields(5)
    write_raster(tmp_path / "phase_20200101_20200113.tif", pha,
                 tags={"FIRST_DATE": "2020-01-01", "SECOND_DATE": "2020-01-19"})
    write_raster(tmp_path / "coh_20200101_20200113.tif", coh)
    with pytest.warns(RawDataWarning, match="2020-01-19; the name is used"):
        inv = discover(tmp_path)
    assert inv.items[0].delay == 12
    assert any("the name is used" in w for w in inv.warnings)


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_manifest_as_source(tmp_path: Path, fmt: str):
    coh, pha = rng_fields(6)
    write_raster(tmp_path / "data" / "a.tif", pha)
    write_raster(tmp_path / "data" / "b.tif", coh)
    write_raster(tmp_path / "data" / "c.tif", np.stack([coh, pha]))
    rows = [
        {"path": "data/a.tif", "role": "unwrapped_phase", "first_date": "2018-07-02",
         "second_date": "2018-07-14"},
        {"path": "data/b.tif", "role": "coherence", "first_date": "20180702",
         "second_date": "20180714"},
        {"path": str(tmp_path / "data" / "c.tif"), "role": "interferogram",
         "first_date": "2018-07-14", "second_date": "2018-07-20"},
    ]
    manifest = tmp_path / f"m.{fmt}"
    if fmt == "json":
        manifest.write_text(json.dumps({"files": rows}))
    else:
        pd.DataFrame(rows).to_csv(manifest, index=False)
    inv = discover(manifest)
    a, c = inv.items
    assert (a.first, a.delay, a.phase_unwrapped) == (T("2018-07-02"), 12, True)
    assert a.phase_path.name == "a.tif" and a.coherence_path.name == "b.tif"
    assert (c.first, c.delay, c.coherence_band, c.phase_band) == (T("2018-07-14"), 6, 1, 2)


def test_manifest_beside_a_folder(tmp_path: Path):
    coh, pha = rng_fields(7)
    write_raster(tmp_path / "S1_20180702_20180708.tif", np.stack([coh, pha]),
                 descriptions=("coherence", "phase"))
    write_raster(tmp_path / "odd" / "x.tif", pha)
    write_raster(tmp_path / "odd" / "y.tif", coh)
    manifest = tmp_path / "extra.csv"
    manifest.write_text("path,role,first_date,second_date\n"
                        "odd/x.tif,phase,2018-07-08,2018-07-20\n"
                        "odd/y.tif,coherence,2018-07-08,2018-07-20\n")
    inv = discover(tmp_path, manifest=manifest)
    assert [(i.first, i.delay) for i in inv.items] == [(T("2018-07-02"), 6),
                                                       (T("2018-07-08"), 12)]
    assert {p.name for p, _ in inv.skipped} == {"extra.csv"}


def test_phase_without_coherence_warns_and_reads_nan(tmp_path: Path):
    _, pha = rng_fields(8)
    write_raster(tmp_path / "20180106_20180130.geo.diff_pha.tif", pha)
    with pytest.warns(RawDataWarning, match="no coherence for pair 2018-01-06/2018-01-30"):
        inv = discover(tmp_path)
    (item,) = inv.items
    assert item.coherence_path is None and not item.has_coherence
    assert "no coherence" in inv.warnings[0]
    got = read_interferogram(item)
    assert np.isnan(got[0]).all()
    np.testing.assert_array_equal(got[1], pha)
    assert "without coherence" in inv.summary()


def test_coherence_without_phase_is_skipped(tmp_path: Path):
    coh, pha = rng_fields(9)
    write_raster(tmp_path / "20180106_20180130.geo.diff_pha.tif", pha)
    write_raster(tmp_path / "20180106_20180130.geo.cc.tif", coh)
    write_raster(tmp_path / "20180130_20180211.geo.cc.tif", coh)
    with pytest.warns(RawDataWarning, match="coherence without a phase file"):
        inv = discover(tmp_path)
    assert len(inv.items) == 1
    assert any("has no phase" in why for _, why in inv.skipped)
    assert any("coherence without a phase" in w for w in inv.warnings)


# ------------------------------------------------------------------ read-only
def test_read_only_source_is_not_written(tmp_path: Path, licsar_folder: Path, snap_folder: Path):
    """chmod -w copies of real and SNAP/LiCSAR files; nothing appears or changes under them.

    (Tests may run as root, for whom chmod does not stop writes: the snapshot is the real check.)
    """
    roots = [tmp_path / "cropA", licsar_folder, snap_folder]
    shutil.copytree(PYRATE, roots[0])
    before = {r: _snapshot(r) for r in roots}
    for r in roots:
        for p in [r, *r.rglob("*")]:
            p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        for r in roots:
            inv = discover(r)
            grid = check_grids(inv.items)
            for item in inv.items:
                read_interferogram(item, grid, validate_values=True)
                item.fingerprint()
            inv.fingerprint()
    finally:
        for r in roots:
            for p in [r, *r.rglob("*")]:
                p.chmod(0o755 if p.is_dir() else 0o644)
    for r in roots:
        assert _snapshot(r) == before[r]


def test_fingerprint_changes_when_a_file_changes(raw_layout: Path):
    inv = discover(raw_layout)
    fp = inv.fingerprint()
    assert discover(raw_layout).fingerprint() == fp
    path = inv.items[0].phase_path
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert discover(raw_layout).fingerprint() != fp
    (f, size, mtime) = inv.items[0].fingerprint()[0]
    assert f == str(path.resolve()) and size == path.stat().st_size


def test_items_pickle(raw_layout: Path):
    import pickle

    inv = discover(raw_layout)
    grid = check_grids(inv.items)
    item2, grid2 = pickle.loads(pickle.dumps((inv.items[0], grid)))
    assert item2 == inv.items[0] and grid2 == grid


@pytest.mark.slow
def test_synthetic_tiny_raw_folder(tmp_path: Path):
    """The generator's own output, discovered from its root folder."""
    from isslide_cube.synthetic import generate

    root = generate(tmp_path / "tiny", "tiny", seed=0)
    tifs = sorted((root / "interferograms").glob("S1_*.tif"))
    inv = discover(root)
    assert [i.phase_path for i in inv.items] == tifs
    assert len(inv.delays) >= 3 and all(d > 0 for d in inv.delays)
    skipped = {p.relative_to(root).parts[0] for p, _ in inv.skipped}
    assert {"annotations", "layover.tif", "dem.tif", "zones.gpkg"} <= skipped
    grid = check_grids(inv.items)
    for item in inv.items[:: max(1, len(inv.items) // 4)]:
        got = read_interferogram(item, grid, validate_values=True)
        with rasterio.open(item.phase_path) as src:
            want = src.read()
        finite = np.isfinite(want[1])
        np.testing.assert_array_equal(got[:, finite], want[:, finite])


def test_manifest_blank_dates_fall_back_to_name_and_tags(tmp_path: Path):
    coh, pha = rng_fields(11)
    write_raster(tmp_path / "ifg_20180702_20180714.tif", pha)
    write_raster(tmp_path / "quality.tif", coh,
                 tags={"FIRST_DATE": "2018-07-02", "SECOND_DATE": "2018-07-14"})
    rows = [{"path": "ifg_20180702_20180714.tif", "role": "phase", "first_date": None,
             "second_date": float("nan"), "unwrapped": True},
            {"path": "quality.tif", "role": "coh", "first_date": "", "second_date": None}]
    (tmp_path / "m.json").write_text(json.dumps(rows))  # NaN is written as the JSON NaN token
    (item,) = discover(tmp_path / "m.json").items
    assert (item.first, item.delay, item.phase_unwrapped) == (T("2018-07-02"), 12, True)
    assert item.coherence_path.name == "quality.tif"


def test_hyp3(tmp_path: Path):
    """ASF HyP3 INSAR_GAMMA products: unw_phase, wrapped_phase, corr, amp, dem, lv_theta."""
    coh, pha = rng_fields(12)
    stem = "S1AA_20180106T002033_20180130T002033_VVP024_INT80_G_ueF_5A3C"
    folder = tmp_path / stem
    write_raster(folder / f"{stem}_unw_phase.tif", pha + 4 * np.pi, nodata=0.0)
    write_raster(folder / f"{stem}_wrapped_phase.tif", pha, nodata=0.0)
    write_raster(folder / f"{stem}_corr.tif", coh, nodata=0.0)
    for extra in ("amp", "dem", "lv_theta", "water_mask"):
        write_raster(folder / f"{stem}_{extra}.tif", np.ones((H, W), "float32"))
    (folder / f"{stem}.README.md.txt").write_text("HyP3")
    inv = discover(tmp_path)
    (item,) = inv.items
    assert (item.first, item.delay) == (T("2018-01-06"), 24)
    assert item.phase_path.name.endswith("_wrapped_phase.tif") and not item.phase_unwrapped
    assert item.coherence_path.name.endswith("_corr.tif")
    reasons = {p.name.replace(stem, ""): why for p, why in inv.skipped}
    assert "wrapped phase" in reasons["_unw_phase.tif"]
    assert all("no phase/coherence role" in reasons[f"_{e}.tif"]
               for e in ("amp", "dem", "lv_theta", "water_mask"))


def test_dates_from_the_pair_folder(tmp_path: Path):
    coh, pha = rng_fields(13)
    write_raster(tmp_path / "20180106_20180130" / "filt_unw.tif", pha)
    write_raster(tmp_path / "20180106_20180130" / "coherence.tif", coh)
    (item,) = discover(tmp_path).items
    assert (item.first, item.delay, item.phase_unwrapped) == (T("2018-01-06"), 24, True)


def test_relative_source_gives_absolute_paths_and_the_same_fingerprint(raw_layout: Path,
                                                                       monkeypatch):
    absolute = discover(raw_layout)
    monkeypatch.chdir(raw_layout.parent)
    relative = discover(Path(raw_layout.name))
    assert all(i.phase_path.is_absolute() for i in relative.items)
    assert relative.items == absolute.items
    assert relative.fingerprint() == absolute.fingerprint()


def test_manifest_in_a_list_of_files(tmp_path: Path):
    coh, pha = rng_fields(14)
    write_raster(tmp_path / "S1_20180702_20180708.tif", np.stack([coh, pha]),
                 descriptions=("coherence", "phase"))
    write_raster(tmp_path / "p.tif", pha)
    (tmp_path / "m.csv").write_text("path,role,first_date,second_date\n"
                                    "p.tif,phase,2018-07-08,2018-07-14\n")
    with pytest.warns(RawDataWarning, match="no coherence"):
        inv = discover([tmp_path / "S1_20180702_20180708.tif", tmp_path / "m.csv"])
    assert [i.delay for i in inv.items] == [6, 6] and inv.items[1].coherence_path is None


def test_snap_multiband_geotiff_export(tmp_path: Path):
    """SNAP's GeoTIFF export: every band in one file, dates only in the band names."""
    coh, pha = rng_fields(15)
    d = "VV_06Jul2018_12Jul2018"
    write_raster(tmp_path / "S1A_IW_SLC__1SDV_20180706T054012_20180706T054039_022660_ifg_TC.tif",
                 np.stack([np.cos(pha), np.sin(pha), pha, coh]),
                 descriptions=(f"i_ifg_{d}", f"q_ifg_{d}", f"Phase_ifg_{d}", f"coh_IW1_{d}"))
    (item,) = discover(tmp_path).items
    assert (item.first, item.delay, item.phase_band, item.coherence_band) == (
        T("2018-07-06"), 6, 3, 4)
    got = read_interferogram(item)
    np.testing.assert_array_equal(got[0], coh)
    np.testing.assert_array_equal(got[1], pha)
