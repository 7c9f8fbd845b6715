"""threshold_counts, F1 curve and ROC AUC against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import f1_score, precision_recall_curve, roc_auc_score

from isslide_cube.kernels import (
    KernelInputError,
    f1_curve_from_counts,
    f1_optimal,
    roc_auc_from_counts,
    threshold_counts,
)


def realistic(rng, n, pos_frac=0.15):
    truth = rng.random(n) < pos_frac
    logit = rng.normal(0, 1.3, n) + 2.2 * truth - 1.0
    return (1 / (1 + np.exp(-logit))).astype(np.float32), truth


@pytest.mark.parametrize("n_threads", [1, 2])
def test_counts_match_numpy_histogram(rng, n_threads):
    prob, truth = realistic(rng, 1_500_000)  # above the parallel cut-off
    prob[:3] = [0.0, 1.0, 0.5]
    pos, neg = threshold_counts(prob, truth, 1000, n_threads=n_threads)
    assert pos.dtype == np.int64 and pos.shape == (1000,)
    edges = np.arange(1001) / 1000
    k = np.searchsorted(edges, prob.astype(np.float64), side="right") - 1
    k = np.minimum(k, 999)
    np.testing.assert_array_equal(pos, np.bincount(k[truth], minlength=1000))
    np.testing.assert_array_equal(neg, np.bincount(k[~truth], minlength=1000))


def test_auc_matches_sklearn(rng):
    prob, truth = realistic(rng, 200_000)
    pos, neg = threshold_counts(prob, truth, 10_000)
    assert roc_auc_from_counts(pos, neg) == pytest.approx(roc_auc_score(truth, prob), abs=1e-4)


def test_auc_exact_on_binned_scores(rng):
    # scores already on the bin grid: the only ties are real ties, so AUC is exact
    truth = rng.random(50_000) < 0.3
    prob = (rng.integers(0, 100, 50_000) + truth * rng.integers(0, 20, 50_000)).clip(0, 99) / 100
    pos, neg = threshold_counts(prob, truth, 100)
    assert roc_auc_from_counts(pos, neg) == pytest.approx(roc_auc_score(truth, prob), rel=1e-12)


def test_f1_curve_matches_sklearn_at_thresholds(rng):
    prob, truth = realistic(rng, 50_000)
    pos, neg = threshold_counts(prob, truth, 50)
    t, f1 = f1_curve_from_counts(pos, neg)
    assert t.shape == f1.shape == (50,)
    for k in range(0, 50, 7):
        assert f1[k] == pytest.approx(f1_score(truth, prob >= t[k]), rel=1e-12)


def test_f1_optimal_close_to_brute_force(rng):
    prob, truth = realistic(rng, 100_000)
    thr, best = f1_optimal(*threshold_counts(prob, truth, 10_000))
    precision, recall, _ = precision_recall_curve(truth, prob)  # every distinct threshold
    with np.errstate(invalid="ignore", divide="ignore"):
        brute = np.nanmax(2 * precision * recall / (precision + recall))
    assert best == pytest.approx(brute, abs=1e-3)
    assert f1_score(truth, prob >= thr) == pytest.approx(best, abs=1e-3)


def test_shapes_dtypes_and_truth_kinds(rng):
    prob, truth = realistic(rng, 6000)
    ref = threshold_counts(prob, truth, 64)
    for t in (truth.astype(np.uint8), truth.astype(np.int64)):
        got = threshold_counts(prob.reshape(60, 100), t.reshape(60, 100), 64)
        np.testing.assert_array_equal(got[0], ref[0])
        np.testing.assert_array_equal(got[1], ref[1])
    got = threshold_counts(prob.astype(np.float64)[::-1], truth[::-1], 64)
    np.testing.assert_array_equal(got[0], ref[0])


def test_bad_input_errors():
    p = np.array([0.1, np.nan, 0.3])
    t = np.array([1, 0, 1])
    with pytest.raises(KernelInputError, match="NaN"):
        threshold_counts(p, t, 10)
    with pytest.raises(KernelInputError, match="NaN or outside"):
        threshold_counts(np.array([0.1, 1.5]), np.array([0, 1]), 10)
    with pytest.raises(KernelInputError, match="same shape"):
        threshold_counts(np.zeros(3), np.zeros(4, int), 10)
    with pytest.raises(KernelInputError, match="255"):
        threshold_counts(np.zeros(3), np.array([0, 1, 255], np.uint8), 10)
    with pytest.raises(KernelInputError, match="255"):
        threshold_counts(np.zeros(3), np.array([0, 1, 2]), 10)
    with pytest.raises(KernelInputError, match="n_bins"):
        threshold_counts(np.zeros(3), np.zeros(3, int), 0)
    with pytest.raises(KernelInputError, match="one class"):
        roc_auc_from_counts([0, 0], [3, 4])
    with pytest.raises(KernelInputError, match="same length"):
        f1_curve_from_counts([0, 1], [1, 0, 0])


@settings(max_examples=50, deadline=None)
@given(
    n=st.integers(2, 400),
    n_bins=st.integers(1, 300),
    seed=st.integers(0, 2**32 - 1),
)
def test_property_counts_total_and_auc(n, n_bins, seed):
    rng = np.random.default_rng(seed)
    prob = rng.random(n)
    truth = rng.random(n) < 0.5
    pos, neg = threshold_counts(prob, truth, n_bins)
    assert pos.sum() == truth.sum() and neg.sum() == (~truth).sum()
    if truth.any() and not truth.all():
        auc = roc_auc_from_counts(pos, neg)
        exact = roc_auc_score(truth, prob)
        # bin ties bound the error: sum pos*neg / (2 P N)
        bound = (pos * neg).sum() / (2.0 * truth.sum() * (~truth).sum())
        assert abs(auc - exact) <= bound + 1e-12
