"""Moves: shape, velocity distribution, activity, placement, bubbles becoming fringes."""

import numpy as np
import pandas as pd
import pytest
import rasterio
from scipy import stats

from isslide_cube import schema
from isslide_cube.synthetic import moves
from isslide_cube.synthetic.generator import TRUTH_DISPLACEMENT, acquisition_dates, pairs_of
from isslide_cube.synthetic.presets import get_preset


def _move(**kw):
    base = dict(move_id=1, cls="Landslide", zone="other", row=50, col=50, lon=6.0, lat=45.0,
                semi_major=600.0, semi_minor=300.0, orientation_deg=30.0, velocity=0.5,
                active=np.ones(7, bool))
    base.update(kw)
    return moves.Move(**base)


def test_bump_is_a_smooth_ellipse_with_unit_peak():
    spacing = (20.0, 20.0)
    win, bump = _move().bump(spacing, (101, 101))
    assert bump.max() == pytest.approx(1.0)
    assert bump[50 - win[0].start, 50 - win[1].start] == pytest.approx(1.0)
    area = (bump > 0).sum() * 400.0
    assert area == pytest.approx(np.pi * 600 * 300, rel=0.05)
    assert bump[0].max() == 0 and bump[:, 0].max() == 0  # compact support inside the window
    assert np.abs(np.diff(bump, axis=0)).max() < 0.2  # smooth: no jumps


def test_peak_displacement_counts_active_days_only():
    active = np.array([1, 1, 0, 0, 1, 1, 1], bool)
    mv = _move(velocity=-3.6525, active=active)
    assert mv.peak_displacement(0, 3, 6) == pytest.approx(-3.6525 * 12 / 365.25)
    assert mv.peak_displacement(2, 4, 6) == 0.0
    dates = pd.date_range("2018-07-02", periods=8, freq="6D")
    assert mv.active_periods(dates) == "2018-07-02/2018-07-14;2018-07-26/2018-08-13"


def test_velocities_are_log_uniform():
    v = moves.stratified_loguniform(2000, 0.02, 5.0, np.random.default_rng(0))
    assert v.min() >= 0.02 and v.max() <= 5.0
    u = (np.log(v) - np.log(0.02)) / (np.log(5.0) - np.log(0.02))
    assert stats.kstest(u, "uniform").pvalue > 0.5  # stratified: very close to uniform


def test_markov_activity_share():
    a = moves.markov_activity(30_000, 0.6, 0.15, np.random.default_rng(0))
    assert a.mean() == pytest.approx(0.8, abs=0.02)
    switches = np.count_nonzero(np.diff(a.astype(int)))
    assert 0 < switches < 0.4 * a.size  # persistent periods, not coin flips


def test_moves_table_bubble_becomes_fringes(tiny_raw):
    table = pd.read_csv(tiny_raw / schema.RAW_MOVES_CSV)
    fringe = schema.fringe_metres()
    np.testing.assert_allclose(table["fringes_18d"], 3 * table["fringes_6d"], atol=5e-6)
    np.testing.assert_allclose(table["fringes_6d"],
                               table["los_velocity_m_per_yr"].abs() * 6 / 365.25 / fringe,
                               rtol=1e-4)
    bubbles = table[(table["fringes_6d"] < 1) & (table["fringes_18d"] >= 1)]
    assert len(bubbles) >= 1
    # ... and in the truth displacement rasters of a 6- and an 18-day pair starting together
    mv = bubbles.iloc[0]
    preset = get_preset("tiny")
    dates = acquisition_dates(preset)
    for i1 in range(preset.n_dates - 3):
        stems = {d: schema.raw_stem(dates[i1], dates[i1 + d // 6]) for d in (6, 18)}
        peaks = {}
        for d, stem in stems.items():
            with rasterio.open(tiny_raw / TRUTH_DISPLACEMENT / f"{stem}.tif") as src:
                disp = src.read(1)
            peaks[d] = float(np.abs(disp[int(mv["row"]), int(mv["col"])])) / fringe
        if peaks[18] == pytest.approx(3 * peaks[6], rel=1e-3) and peaks[6] > 0:
            print(f"move {mv['move_id']}: {peaks[6]:.2f} fringe at 6 d, {peaks[18]:.2f} at 18 d")
            assert peaks[6] < 1 <= peaks[18]
            break
    else:
        pytest.fail("no pair of 6/18-day interferograms with the move active throughout")


def test_moves_sit_on_steep_or_high_ground(tiny_raw):
    table = pd.read_csv(tiny_raw / schema.RAW_MOVES_CSV)
    with rasterio.open(tiny_raw / schema.RAW_DEM) as src:
        dem = src.read(1).astype("float64")
        res = src.res[0]
    from isslide_cube.synthetic.terrain import pixel_spacing_m, slope_deg

    slope = slope_deg(dem, pixel_spacing_m(res, 44.95))
    h = dem[table["row"], table["col"]]
    s = slope[table["row"], table["col"]]
    print(f"move centres: elevation {np.median(h):.0f} m (scene {np.median(dem):.0f} m), "
          f"slope {np.median(s):.0f} deg (scene {np.median(slope):.0f} deg)")
    assert np.mean((s > 15) | (h > 2000)) >= 0.8
    assert set(table["class"]) <= set(schema.CLASSES)
    v = table["los_velocity_m_per_yr"].abs()
    assert v.min() >= 0.02 and v.max() <= 5.0
    assert table["semi_major_m"].min() >= 100


def test_pairs_of_presets():
    for name, n in (("tiny", 18), ("small", 24), ("paper", 54)):
        pairs = pairs_of(get_preset(name))
        assert len(pairs) == n
        delays = pd.Series([d for _, _, d in pairs]).value_counts()
        assert set(delays.index) == {6, 12, 18} and delays.min() >= 5
    paper = pd.Series([d for _, _, d in pairs_of(get_preset("paper"))]).value_counts()
    assert paper.to_dict() == {6: 19, 12: 18, 18: 17}
