"""Repetition filter on hand-made cases; per-move time series against known velocities."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from temporal_fixtures import MOVES, make_cube, open_store, phase_of, truth_table, write_cube

from isslide_cube import schema
from isslide_cube.tracking import (
    compare_with_truth,
    label_moves,
    move_time_series,
    repetition_filter,
    velocity_from_phase,
)


def _det(stack):
    """(S, Y, X) list of 0/1 arrays for one delay -> DataArray (start_date, delay, y, x)."""
    a = np.asarray(stack, dtype=bool)[:, None]
    starts = pd.date_range("2018-07-02", periods=a.shape[0], freq="6D")
    return xr.DataArray(a, dims=schema.MASK_DIMS, coords={schema.START_DATE: starts,
                                                          schema.DELAY: [6]})


def _blob(r, c, size=8):
    m = np.zeros((size, size), bool)
    m[r:r + 2, c:c + 2] = True
    return m


E = np.zeros((8, 8), bool)


def test_component_kept_only_when_repeated():
    a, b = _blob(1, 1), _blob(5, 5)
    # blob a on dates 0,1,2; blob b only on date 3 (an isolated false positive)
    det = _det([a, a, a, b, E])
    kept = repetition_filter(det, n_min=2, window=1).values[:, 0]
    np.testing.assert_array_equal(kept[0], a)      # dates 0,1 show it
    np.testing.assert_array_equal(kept[2], a)      # dates 1,2 (3 does not)
    assert not kept[3].any()                       # b: only itself in 2..4
    kept3 = repetition_filter(det, n_min=3, window=1).values[:, 0]
    assert kept3[1].any() and not kept3[0].any() and not kept3[2].any()
    assert repetition_filter(det, n_min=1).values.sum() == det.values.sum()


def test_component_vs_pixel_and_radius():
    a = np.zeros((8, 8), bool)
    a[2:5, 2:5] = True
    shifted = np.zeros((8, 8), bool)
    shifted[4:7, 4:7] = True  # overlaps a at one pixel (4, 4)
    far = np.zeros((8, 8), bool)
    far[2:5, 6:8] = True      # 1 px gap (col 5) from a
    det = _det([a, shifted])
    comp = repetition_filter(det, n_min=2, window=1).values[:, 0]
    np.testing.assert_array_equal(comp[0], a)          # the whole component survives
    pix = repetition_filter(det, n_min=2, window=1, mode="pixel").values[:, 0]
    np.testing.assert_array_equal(pix[0], a & shifted)  # only the shared pixel
    det2 = _det([a, far])
    assert not repetition_filter(det2, n_min=2).values.any()
    assert repetition_filter(det2, n_min=2, radius=2).values[0, 0].sum() == a.sum()


def test_window_bounds_and_other_delays():
    a = _blob(3, 3)
    det = _det([a, E, E, a])  # repeats 3 steps later only
    assert not repetition_filter(det, n_min=2, window=2).values.any()
    assert repetition_filter(det, n_min=2, window=3).values[[0, 3]].any()
    # delays are filtered independently
    two = xr.concat([det, _det([a, a, E, E]).assign_coords(delay=[12])], schema.DELAY)
    out = repetition_filter(two, n_min=2, window=1)
    assert out.dims == two.dims
    assert not out.sel(delay=6).values.any()
    np.testing.assert_array_equal(out.sel(delay=12).values, two.sel(delay=12).values)


def test_lazy_and_mask_input_match_numpy():
    rng = np.random.default_rng(0)
    raw = rng.random((6, 2, 20, 20)) > 0.8
    det = xr.DataArray(raw, dims=schema.MASK_DIMS)
    mask = xr.DataArray(np.where(raw, 1, 0).astype(np.uint8), dims=schema.MASK_DIMS)
    mask[0, 1] = schema.MASK_FILL  # no interferogram: counts as nothing
    eager = repetition_filter(det, n_min=2, window=1)
    lazy = repetition_filter(det.chunk({"start_date": 1, "delay": 1, "y": 10, "x": 10}),
                             n_min=2, window=1)
    assert lazy.chunks is not None
    np.testing.assert_array_equal(lazy.values, eager.values)
    det_m = det.copy()
    det_m[0, 1] = False
    np.testing.assert_array_equal(repetition_filter(mask, n_min=2).values,
                                  repetition_filter(det_m, n_min=2).values)
    with pytest.raises(ValueError, match="threshold"):
        repetition_filter(det.astype("float32"))


def test_filter_removes_false_positives_on_cube():
    cube = make_cube()
    truth = cube.mask == 1
    rng = np.random.default_rng(1)
    noise = xr.zeros_like(truth)
    for i in range(cube.sizes["start_date"]):  # one isolated 3x3 false alarm per date
        r, c = rng.integers(56, 61), rng.integers(0, 60)
        noise[i, :, r:r + 3, c:c + 3] = True
    det = (truth | noise) & cube.has_interferogram
    kept = repetition_filter(det, n_min=2, window=1)
    fp_before = int((det & ~truth).sum())
    fp_after = int((kept & ~truth).sum())
    assert fp_before > 0 and fp_after == 0
    # true moves repeat, except the stopping move 3 at its last active date? it has 3 neighbours
    assert int((kept & truth).sum()) == int(truth.sum())


def test_velocity_formula_round_trips():
    v = velocity_from_phase(phase_of(0.1, 12), 12)
    assert v == pytest.approx(0.1)


@pytest.fixture(scope="module")
def cube(tmp_path_factory):
    return open_store(write_cube(make_cube(noise=0.1), tmp_path_factory.mktemp("t") / "c.zarr"))


@pytest.mark.slow
def test_move_time_series_recovers_velocity(cube):
    table = move_time_series(cube)
    assert set(table.move_id) == {m[0] for m in MOVES}
    radius = {m[0]: m[3] for m in MOVES}
    first = table.groupby("move_id").first()
    for k, rad in radius.items():
        disk = np.sum((np.mgrid[-rad:rad + 1, -rad:rad + 1] ** 2).sum(0) <= rad ** 2)
        assert first.loc[k, "area_px"] == disk
    assert (table.area_m2 / table.area_px).between(1000, 2500).all()  # ~35 x 39 m pixels
    assert table.mean_coherence.between(0.6, 0.8).all()
    # only the fast move at 18 days may wrap
    fast = table[(table.move_id == 1)]
    assert fast[fast.delay == 18].ambiguous.all() and not fast[fast.delay == 6].ambiguous.any()
    cmp = compare_with_truth(table, truth_table())
    assert len(cmp) == len(MOVES)
    assert (cmp.relative_error < 0.2).all(), cmp
    ok = table[~table.ambiguous]
    expect = ok.move_id.map({m[0]: m[4] for m in MOVES})
    assert ((ok.velocity_m_per_yr - expect).abs() / expect.abs() < 0.2).all()
    # the deactivated move has no rows after its 4th start date
    last3 = table[table.move_id == 3].start_date.max()
    assert last3 == cube.start_date.values[3]


def test_hausdorff_between_outlines(cube):
    labels = cube.move_id.where(cube.move_id > 0, 0).load()
    # move 1 jumps 3 px to the right from the 3rd start date on
    shifted = labels.values.copy()
    one = shifted[2:] == 1
    shifted[2:][one] = 0
    moved = np.roll(one, 3, axis=-1)
    shifted[2:][moved] = 1
    labels = labels.copy(data=shifted)
    table = move_time_series(cube, labels=labels)
    hd = table[(table.move_id == 1) & (table.delay == 6)].set_index("start_date").hausdorff_px
    starts = cube.start_date.values
    assert np.isnan(hd.loc[starts[0]])          # no previous outline
    assert hd.loc[starts[1]] == 0               # same outline
    assert hd.loc[starts[2]] == pytest.approx(3.0)
    assert hd.loc[starts[3]] == 0


def test_label_moves_joins_a_move_through_time():
    a = np.zeros((3, 1, 10, 10), bool)
    a[0, 0, 1:3, 1:3] = True
    a[1, 0, 2:4, 2:4] = True   # overlaps date 0: same move
    a[2, 0, 7:9, 7:9] = True   # elsewhere: a second move
    ids = label_moves(xr.DataArray(a, dims=schema.MASK_DIMS)).values
    assert ids[0, 0, 1, 1] == ids[1, 0, 3, 3] != ids[2, 0, 8, 8]
    assert (ids[~a] == 0).all() and set(np.unique(ids)) == {0, 1, 2}


def test_compare_uses_only_active_unambiguous_rows():
    t = pd.Timestamp
    table = pd.DataFrame({
        "move_id": [1, 1, 1, 1],
        "start_date": [t("2018-07-02"), t("2018-07-08"), t("2018-07-20"), t("2018-07-02")],
        "end_date": [t("2018-07-08"), t("2018-07-14"), t("2018-07-26"), t("2018-07-14")],
        "velocity_m_per_yr": [0.10, 0.12, 0.01, 0.5],
        "ambiguous": [False, False, False, True],
    })
    truth = pd.DataFrame({"move_id": [1], "los_velocity_m_per_yr": [0.11],
                          "active_periods": ["2018-07-02/2018-07-14;2018-07-26/2018-08-01"]})
    cmp = compare_with_truth(table, truth)
    assert cmp.n_rows.tolist() == [2]  # the inactive 07-20 row and the ambiguous one left out
    assert cmp.velocity_est.iloc[0] == pytest.approx(0.11)
