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
    truth_ambiguous,
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
    # this cube's moves are flat discs (one phase over the whole disc): average a broad
    # core (the default reads the most extreme pixels, meant for peaked bumps: on a flat
    # disc it would pick the noise's highs)
    table = move_time_series(cube, peak="depth", core=0.7)
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
    table = move_time_series(cube, labels=labels, peak="depth", core=0.7)
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


def _bump_cube(peak_v=0.3, level=0.3, radius=10, gap_px=None):
    """make_cube's grid with one bump ``(1 - r^2)^2`` of peak velocity ``peak_v``, outlined
    where it exceeds ``level`` of its peak (as the synthetic annotator does)."""
    cube = make_cube(n_dates=4, delays=(6, 12), noise=0.0)
    yy, xx = np.mgrid[0:64, 0:64]
    r2 = ((yy - 32) ** 2 + (xx - 32) ** 2) / radius ** 2
    shape = np.where(r2 < 1, (1 - r2) ** 2, 0.0)
    phase = np.stack([shape * phase_of(peak_v, int(d)) for d in cube.delay.values])
    ifg = cube.interferogram.values.copy()
    has = cube.has_interferogram.values
    ifg[:, :, 1] = np.where(has[:, :, None, None], np.angle(np.exp(1j * phase))[None], np.nan)
    labels = np.where(has[:, :, None, None], (shape >= level).astype(np.int32)[None, None], 0)
    return (cube.assign(interferogram=cube.interferogram.copy(data=ifg)),
            cube.move_id.copy(data=labels))


def test_ring_beyond_outline_and_deep_core_read_the_peak():
    # the outline stops at 30 % of the peak: the ground just outside still moves
    cube, labels = _bump_cube()
    new = move_time_series(cube, labels=labels, hausdorff=False)
    old = move_time_series(cube, labels=labels, hausdorff=False, gap=0, peak="depth", core=0.7)
    deep = move_time_series(cube, labels=labels, hausdorff=False, peak="depth")
    assert ((deep.velocity_m_per_yr / 0.3 - 1).abs() < 0.05).all()
    err_new = (new.velocity_m_per_yr / 0.3 - 1).abs()
    err_old = (old.velocity_m_per_yr / 0.3 - 1).abs()
    assert (err_new < 0.05).all(), new.velocity_m_per_yr
    assert (err_old > 0.1).all()  # ring on moving ground + the bump's shoulders in the core
    assert not new.ambiguous.any()  # peak phase 0.41 and 0.82 rad


def test_truth_ambiguity_replaces_the_flag():
    t = pd.Timestamp
    table = pd.DataFrame({
        "move_id": [1, 1, 1, 2],
        "start_date": [t("2018-07-02")] * 4,
        "delay": [6, 12, 18, 6],
        "velocity_m_per_yr": [0.30, 0.33, 0.01, 0.5],
        "ambiguous": [False, True, False, False],
    })
    table["end_date"] = table.start_date + pd.to_timedelta(table.delay, unit="D")
    # move 1: 0.2 / 0.4 / 0.6 fringes -> phase 0.4 pi, 0.8 pi, 1.2 pi; move 2 0.45 at 6 days
    truth = pd.DataFrame({"move_id": [1, 2], "los_velocity_m_per_yr": [0.32, 0.5],
                          "fringes_6d": [0.2, 0.45], "fringes_12d": [0.4, 0.9],
                          "fringes_18d": [0.6, 1.35]})
    amb = truth_ambiguous(table, truth, margin=0.8)
    assert amb.tolist() == [False, True, True, True]
    assert truth_ambiguous(table, truth, margin=1.0).tolist() == [False, False, True, False]
    cmp = compare_with_truth(table, truth, truth_margin=1.0).set_index("move_id")
    # the table flagged the 12-day row, the truth did not: the truth decides; stacking
    # weights by delay: (0.30 * 6 + 0.33 * 12) / 18
    assert cmp.loc[1, "n_rows"] == 2
    assert cmp.loc[1, "velocity_est"] == pytest.approx((0.30 * 6 + 0.33 * 12) / 18)
    assert cmp.loc[2, "n_rows"] == 1
    flag_only = compare_with_truth(table, truth, truth_margin=None, how="median")
    assert flag_only.set_index("move_id").loc[1, "velocity_est"] == pytest.approx(0.155)


# ---- the synthetic generator's own moves (issue 8: "velocity recovered within 20 % on
# synthetic moves without fringe ambiguity")
#: the deformation phase with its L-look noise only: without the Goldstein filter, which
#: even on SNAP's single-look block (32 x 8 output px) keeps only 42-88 % of the peak of
#: the tiny preset's moves (37-811 px; with it, no atmosphere: 2 of 6 within 20 %, errors
#: 0.17-0.51), as SNAP's would, and without the atmosphere, whose residual around a move
#: after the ring's plane is removed still adds a few tenths of a radian (see
#: benchmarks/RESULTS.md)
CLEAN = {"goldstein_alpha": 0.0, "atmosphere_std_range": (0.0, 0.0), "stratified_std": 0.0}


@pytest.fixture(scope="module")
def tiny_clean(tmp_path_factory):
    """``tiny`` (seeds 0 and 1) with :data:`CLEAN`, built into cubes, like tests/cube's
    ``tiny_cube`` (synchronous dask, chunks of 100 px)."""
    import dask

    from isslide_cube import synthetic
    from isslide_cube.cube import build_cube, open_cube

    out = []
    for seed in (0, 1):
        root = tmp_path_factory.mktemp(f"tiny_clean_{seed}")
        raw = synthetic.generate(root / "raw", preset="tiny", seed=seed, **CLEAN)
        with dask.config.set(scheduler="synchronous"):
            build_cube(raw, root / "cube.zarr", chunks=100)
        out.append((open_cube(root / "cube.zarr"), pd.read_csv(raw / "truth" / "moves.csv")))
    return out


@pytest.mark.slow
def test_velocity_of_synthetic_moves_within_20_percent(tiny_clean):
    results = []
    for cube, truth in tiny_clean:
        table = move_time_series(cube, hausdorff=False)
        assert set(table.move_id) <= set(truth.move_id)
        cmp = compare_with_truth(table, truth)
        # every compared move has rows, all unambiguous by the truth and active throughout
        assert (cmp.n_rows > 0).all()
        used = table[~truth_ambiguous(table, truth)]
        fr = used.delay.map(lambda d: f"fringes_{d}d")
        peak_phase = [2 * np.pi * truth.set_index("move_id").loc[k, c]
                      for k, c in zip(used.move_id, fr, strict=True)]
        assert (np.asarray(peak_phase) < 0.8 * np.pi).all()
        results.append(cmp)
    cmp = pd.concat(results, ignore_index=True)
    assert len(cmp) >= 5, cmp  # not vacuous: 3 + 3 moves on seeds 0 and 1
    assert (cmp.relative_error < 0.2).all(), cmp
    # the sign is the truth's (positive = away from the sensor)
    assert (np.sign(cmp.velocity_est) == np.sign(cmp.velocity_true)).all()
