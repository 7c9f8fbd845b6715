"""The paper, temporal and spatial splits: sides, leaks, determinism, empty sides."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from isslide_cube import schema as s
from isslide_cube.patches import extract_patches, split, split_counts
from isslide_cube.patches._split import _leak_check
from isslide_cube.schema import PatchesError


@pytest.fixture(scope="module")
def patches(cube):
    return extract_patches(cube, 40).compute()


def _ifg(ds):
    return list(zip(pd.to_datetime(ds.start_date.values), ds.delay.values.tolist(), strict=True))


def _side(ds, name):
    return ds.sel(sample=ds[s.SPLIT] == name)


def test_paper_split_by_interferogram_with_queyras_held_out(patches):
    out = split(patches, "paper", seed=0)
    train, evaluate = _side(out, "train"), _side(out, "eval")
    assert train.sizes[s.SAMPLE] and evaluate.sizes[s.SAMPLE]
    assert set(evaluate.zone.values) == {"queyras"}
    assert "queyras" not in set(train.zone.values)
    assert train.has_move.values.all() and evaluate.has_move.values.all()
    assert not set(_ifg(train)) & set(_ifg(evaluate))
    assert not set(train.location.values) & set(evaluate.location.values)
    # 80% of the 15 interferograms train; the held-out 3 are the only eval interferograms
    all_ifg = sorted(set(_ifg(patches)))
    assert len(all_ifg) == 15
    assert len(set(_ifg(train))) <= 12 and len(set(_ifg(evaluate))) <= 3
    # every moving patch outside queyras on a training interferogram is used
    train_ifg = set(_ifg(train))
    expected = [(i in train_ifg) and z != "queyras" and m
                for i, z, m in zip(_ifg(patches), patches.zone.values, patches.has_move.values,
                                   strict=True)]
    np.testing.assert_array_equal(out[s.SPLIT].values == "train", expected)


def test_paper_split_is_seeded(patches):
    a = split(patches, "paper", seed=0)[s.SPLIT].values
    b = split(patches, "paper", seed=0)[s.SPLIT].values
    np.testing.assert_array_equal(a, b)
    others = [split(patches, "paper", seed=k)[s.SPLIT].values for k in range(1, 6)]
    assert any((o != a).any() for o in others)


def test_paper_split_matches_default_rng_draw(patches):
    ifgs = sorted(set(_ifg(patches)))
    perm = np.random.default_rng(7).permutation(len(ifgs))
    train_ifgs = {ifgs[i] for i in perm[:12]}
    out = split(patches, "paper", seed=7)
    assert set(_ifg(_side(out, "train"))) <= train_ifgs
    assert not set(_ifg(_side(out, "eval"))) & train_ifgs


def test_split_never_mutates_and_keeps_every_patch(patches):
    out = split(patches)
    assert s.SPLIT not in patches.coords
    assert out.sizes == patches.sizes
    assert set(out[s.SPLIT].values) <= set(s.SPLIT_VALUES)
    assert out[s.SPLIT].attrs["scheme"] == "paper" and out[s.SPLIT].attrs["seed"] == 0
    s.validate_patches(out)


def test_no_move_patches_are_unused_unless_asked(patches):
    out = split(patches, "paper", seed=0)
    assert (out[s.SPLIT].values[~patches.has_move.values] == "unused").all()
    every = split(patches, "paper", seed=0, moving_only=False)
    assert (every[s.SPLIT].values[~patches.has_move.values] != "unused").any()


def test_temporal_split_never_overlaps_in_time(patches):
    out = split(patches, "temporal")
    train, evaluate = _side(out, "train"), _side(out, "eval")
    assert train.end_date.values.max() <= evaluate.start_date.values.min()
    assert not set(_ifg(train)) & set(_ifg(evaluate))
    dates = np.unique(patches.start_date.values)
    assert evaluate.start_date.values.min() == dates[round(0.8 * len(dates))]


def test_spatial_split_by_zone(patches):
    out = split(patches, "spatial", eval_zones=("queyras", "ecrins"))
    train, evaluate = _side(out, "train"), _side(out, "eval")
    assert set(evaluate.zone.values) == {"queyras", "ecrins"}
    assert not set(train.zone.values) & {"queyras", "ecrins"}
    assert not set(train.location.values) & set(evaluate.location.values)


def test_counts_per_side(patches):
    out = split(patches, "paper")
    counts = split_counts(out)
    assert list(counts.index) == list(s.SPLIT_VALUES)
    assert counts.patches.sum() == patches.sizes[s.SAMPLE]
    assert counts.loc["train", "patches"] == int((out[s.SPLIT] == "train").sum())
    assert counts.loc["train", "without_move"] == 0


def test_empty_eval_side_names_the_zone_and_counts(patches):
    still = patches.assign_coords(has_move=patches.has_move & (patches.zone != "queyras"))
    with pytest.raises(PatchesError, match=r"eval side would be empty.*queyras.*queyras: \d+ "
                                           r"patches \(0 with a move\)"):
        split(still, "paper")


@pytest.mark.parametrize("kwargs, match", [
    ({"scheme": "random"}, "unknown split scheme"),
    ({"train_fraction": 1.0}, "train_fraction"),
    ({"eval_zones": ("Queyras",)}, "unknown eval zone"),
])
def test_bad_split_arguments(patches, kwargs, match):
    with pytest.raises(PatchesError, match=match):
        split(patches, **kwargs)


def test_leak_check_catches_a_shared_interferogram():
    labels = np.array(["train", "eval", "unused"])
    with pytest.raises(PatchesError, match="leaks: 1 interferogram"):
        _leak_check("paper", labels, np.array([3, 3, 1]), np.array([0, 1, 2]))
    with pytest.raises(PatchesError, match="leaks: 1 location"):
        _leak_check("spatial", labels, np.array([3, 4, 1]), np.array([5, 5, 2]))
    _leak_check("temporal", labels, np.array([3, 4, 1]), np.array([5, 5, 2]))  # allowed


def test_split_works_lazily(cube):
    lazy = extract_patches(cube, 40)
    out = split(lazy, "spatial")
    assert isinstance(out, xr.Dataset) and s.SPLIT in out.coords
