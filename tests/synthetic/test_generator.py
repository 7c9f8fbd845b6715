"""The raw layout written by ``generate``: names, bands, tags, fields, CRS, truth, bytes."""

import hashlib
import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from rasterio.features import rasterize

from isslide_cube import schema
from isslide_cube.synthetic import (
    PRESETS,
    OutputExistsError,
    PresetError,
    annotate,
    generate,
    quicklook,
)
from isslide_cube.synthetic.generator import TRUTH_COHERENCE, TRUTH_DISPLACEMENT, TRUTH_FOOTPRINT

K = 4 * np.pi / schema.WAVELENGTH_M


def _hashes(root):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_validate_raw_passes(tiny_raw):
    report = schema.validate_raw(tiny_raw)
    assert report, str(report)


def test_interferogram_layout(tiny_raw):
    tifs = sorted((tiny_raw / schema.RAW_INTERFEROGRAMS).glob("*.tif"))
    assert len(tifs) == 18
    delays = []
    for tif in tifs:
        m = schema.RAW_NAME_RE.match(tif.stem)
        assert m, tif.name
        with rasterio.open(tif) as src:
            assert src.count == 2 and src.descriptions == schema.BANDS
            assert src.dtypes == ("float32", "float32")
            assert src.crs.to_string() == schema.RAW_CRS
            assert np.isnan(src.nodata)
            assert 200 <= src.width <= 300 and 200 <= src.height <= 300
            assert src.res[0] == pytest.approx(1 / 3600)
            tags = src.tags()
            assert set(schema.RAW_TAGS) <= set(tags)
            assert tags[schema.TAG_FIRST_DATE] == f"{m.group(1)[:4]}-{m.group(1)[4:6]}-{m.group(1)[6:]}"
            assert float(tags[schema.TAG_WAVELENGTH]) == schema.WAVELENGTH_M
            assert float(tags[schema.TAG_INCIDENCE]) == schema.INCIDENCE_DEG
            assert (tags[schema.TAG_PASS], tags[schema.TAG_POLARISATION]) == ("DESCENDING", "VV")
            coh, pha = src.read(1), src.read(2)
        delays.append((np.datetime64(tags[schema.TAG_SECOND_DATE])
                       - np.datetime64(tags[schema.TAG_FIRST_DATE])).astype(int))
        assert np.isnan(coh).any() and (np.isnan(coh) == np.isnan(pha)).all()
        assert np.nanmin(coh) >= 0 and np.nanmax(coh) <= 1
        assert np.nanmin(pha) >= -np.pi and np.nanmax(pha) < np.pi
    assert pd.Series(delays).value_counts().to_dict() == {6: 7, 12: 6, 18: 5}


def test_static_files_and_zones(tiny_raw):
    with rasterio.open(tiny_raw / schema.RAW_DEM) as src:
        assert src.dtypes[0] == "float32" and src.crs.to_string() == schema.RAW_CRS
        dem = src.read(1)
    assert 500 <= dem.min() and dem.max() <= 4300
    zones = gpd.read_file(tiny_raw / schema.RAW_ZONES)
    assert sorted(zones["name"]) == sorted(schema.ZONES)
    assert zones.crs.to_string() == schema.RAW_CRS
    assert zones.geometry.is_valid.all()
    metric = zones.to_crs(zones.estimate_utm_crs())  # areas in m², not square degrees
    assert (metric.geometry.area > 0).all()
    # zones tile the scene without overlap
    assert metric.geometry.area.sum() == pytest.approx(metric.union_all().area, rel=1e-9)


def test_manifest(tiny_raw):
    manifest = json.loads((tiny_raw / schema.RAW_MANIFEST).read_text())
    assert manifest["preset"] == "tiny" and manifest["seed"] == 0
    assert manifest["generator_version"]
    assert len(manifest["dates"]) == 8 and manifest["dates"][0] == "2018-07-02"
    assert len(manifest["pairs"]) == 18
    written = {str(p.relative_to(tiny_raw)) for p in tiny_raw.rglob("*") if p.is_file()}
    written -= {schema.RAW_MANIFEST}
    written = {w for w in written if not w.startswith("quicklook/")}
    assert set(manifest["files"]) == written
    for pair in manifest["pairs"]:
        assert (tiny_raw / pair["interferogram"]).exists() and (tiny_raw / pair["annotation"]).exists()


def test_moves_csv(tiny_raw):
    table = pd.read_csv(tiny_raw / schema.RAW_MOVES_CSV)
    assert len(table) == PRESETS["tiny"].n_moves
    for col in ("move_id", "class", "zone", "lon", "lat", "row", "col", "radius_m",
                "semi_major_m", "semi_minor_m", "los_velocity_m_per_yr", "active_periods",
                "fringes_6d", "fringes_18d"):
        assert col in table
    assert table["move_id"].is_unique and table["move_id"].min() == 1
    assert set(table["zone"]) <= set(schema.ZONES)


def _all_annotations(raw):
    frames = []
    for shp in sorted((raw / schema.RAW_ANNOTATIONS).glob("*.shp")):
        gdf = gpd.read_file(shp)
        m = schema.RAW_NAME_RE.match(shp.stem)
        gdf["stem"] = shp.stem
        gdf["delay"] = (pd.Timestamp(m.group(2)) - pd.Timestamp(m.group(1))).days
        frames.append(gdf)
    return pd.concat(frames, ignore_index=True)


def test_annotation_fields_and_repetitions(tiny_raw):
    shps = sorted((tiny_raw / schema.RAW_ANNOTATIONS).glob("*.shp"))
    assert len(shps) == 18
    for shp in shps:
        for ext in (".dbf", ".shx", ".prj"):
            assert shp.with_suffix(ext).exists()
    ann = _all_annotations(tiny_raw)
    assert tuple(c for c in ann.columns if c in schema.ANNOTATION_FIELDS) == schema.ANNOTATION_FIELDS
    assert ann.crs.to_string() == schema.RAW_CRS
    assert set(ann["class"]) <= set(schema.CLASSES)
    assert ann["confidence"].between(0, 1).all()
    assert ann.geometry.is_valid.all()
    # repetitions = number of interferograms of the same delay showing the move
    counted = ann.groupby(["move_id", "delay"])["stem"].transform("count")
    assert (ann["repetitions"] == counted).all()
    assert ann["repetitions"].min() >= annotate.MIN_REPETITIONS


def test_annotated_moves_in_every_zone(tiny_raw):
    ann = _all_annotations(tiny_raw)
    zones = gpd.read_file(tiny_raw / schema.RAW_ZONES)
    joined = gpd.sjoin(ann.set_geometry(ann.representative_point()), zones, predicate="within")
    print(joined.groupby("name")["move_id"].nunique().to_dict())
    assert set(joined["name"]) == set(schema.ZONES)
    for delay in (6, 12, 18):
        assert (ann["delay"] == delay).any()


def test_annotations_only_where_visible_and_coherent(tiny_raw):
    """Every polygon covers its move where the truth says motion and coherence are there;
    some active moves go unannotated on some interferograms."""
    ann = _all_annotations(tiny_raw)
    with rasterio.open(tiny_raw / TRUTH_FOOTPRINT) as src:
        foot, transform, shape = src.read(1), src.transform, src.shape
    unannotated_active = 0
    for stem, group in ann.groupby("stem"):
        with rasterio.open(tiny_raw / TRUTH_DISPLACEMENT / f"{stem}.tif") as src:
            phase = np.abs(src.read(1)) * K
        with rasterio.open(tiny_raw / TRUTH_COHERENCE / f"{stem}.tif") as src:
            gamma = src.read(1)
        for _, row in group.iterrows():
            inside = rasterize([(row.geometry, 1)], out_shape=shape, transform=transform,
                               dtype="uint8").astype(bool)
            assert inside.any()
            assert np.mean(foot[inside] == row["move_id"]) > 0.9
            assert phase[inside].max() >= annotate.PHASE_FLOOR
            assert np.median(gamma[inside]) >= annotate.OUTLINE_COHERENCE
    table = pd.read_csv(tiny_raw / schema.RAW_MOVES_CSV)
    n_pairs = {6: 7, 12: 6, 18: 5}
    for d, n in n_pairs.items():
        unannotated_active += int(((table[f"annotated_{d}d"] < n) & (table["active_fraction"] > 0)).sum())
    assert unannotated_active > 0


@pytest.mark.slow
def test_same_seed_same_bytes_and_overwrite(tiny_raw, tmp_path):
    again = generate(tmp_path / "again", preset="tiny", seed=0)
    assert _hashes(again) == _hashes(tiny_raw)
    with pytest.raises(OutputExistsError, match="not empty"):
        generate(again, preset="tiny", seed=1)
    generate(again, preset="tiny", seed=1, overwrite=True)
    assert _hashes(again) != _hashes(tiny_raw)
    assert json.loads((again / schema.RAW_MANIFEST).read_text())["seed"] == 1


def test_unknown_preset_lists_valid_ones(tmp_path):
    with pytest.raises(PresetError, match="tiny, small, paper"):
        generate(tmp_path / "x", preset="huge")
    with pytest.raises(PresetError, match="unknown preset field"):
        generate(tmp_path / "y", preset="tiny", colour="blue")


@pytest.mark.slow
def test_unfiltered_phase_noise_matches_coherence(tmp_path):
    """With the Goldstein filter off, the written phase noise on a flat patch of the
    interferogram follows the multilook theory at the written (true) coherence."""
    from isslide_cube.synthetic.noise import multilook_phase_std

    raw = generate(tmp_path / "raw", preset="tiny", seed=3, goldstein_alpha=0.0)
    diffs = []
    for tif in sorted((raw / schema.RAW_INTERFEROGRAMS).glob("*.tif")):
        with rasterio.open(tif) as src:
            pha = src.read(2).astype("float64")
        with rasterio.open(raw / TRUTH_COHERENCE / tif.name) as src:
            gamma = src.read(1)
        # the signal (atmosphere) is smooth: the second difference along a row cancels its
        # gradient, leaving sqrt(6) x the (independent) noise of three pixels alike
        d = np.angle(np.exp(1j * (pha[:, 2:] - 2 * pha[:, 1:-1] + pha[:, :-2])))
        near = np.abs(gamma - 0.8) < 0.03
        same = near[:, 2:] & near[:, 1:-1] & near[:, :-2]
        diffs.append(d[same & np.isfinite(d)])
    d = np.concatenate(diffs)
    measured = np.sqrt(np.mean(d**2) / 6)
    theory = multilook_phase_std(0.8, 16)
    print(f"unfiltered phase noise at coherence 0.8 ({d.size} px): {measured:.3f} rad, "
          f"theory {theory:.3f} rad")
    assert d.size > 1000
    assert measured == pytest.approx(theory, rel=0.10)


@pytest.mark.slow
def test_quicklook_writes_pngs(tiny_raw, tmp_path):
    paths = quicklook(tiny_raw, tmp_path / "figs")
    names = {p.name for p in paths}
    assert {"overview.png", "interferogram.png", "move_6_vs_18.png"} <= names
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
