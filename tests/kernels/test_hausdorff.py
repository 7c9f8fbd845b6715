"""hausdorff / hausdorff_batch against scipy.spatial.distance.directed_hausdorff and brute force."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.spatial.distance import cdist, directed_hausdorff

from isslide_cube.kernels import KernelInputError, hausdorff, hausdorff_batch

from .conftest import blob_mask, random_mask


def points(mask: np.ndarray, sampling=(1.0, 1.0)) -> np.ndarray:
    return np.argwhere(np.asarray(mask) != 0) * np.asarray(sampling, dtype=float)


def scipy_hd(a, b, sampling=(1.0, 1.0)) -> float:
    pa, pb = points(a, sampling), points(b, sampling)
    return max(directed_hausdorff(pa, pb)[0], directed_hausdorff(pb, pa)[0])


def brute_percentile_hd(a, b, q, sampling=(1.0, 1.0)) -> float:
    d = cdist(points(a, sampling), points(b, sampling))
    return max(np.percentile(d.min(axis=1), q), np.percentile(d.min(axis=0), q))


@pytest.mark.parametrize("shape", [(1, 12), (12, 1), (9, 9), (40, 27), (100, 100)])
@pytest.mark.parametrize("density", [0.01, 0.2, 0.6, 0.99])
def test_random_pairs_match_directed_hausdorff(rng, shape, density):
    a = random_mask(rng, shape, density)
    b = random_mask(rng, shape, density / 2)
    a.flat[0] = True
    b.flat[-1] = True
    assert hausdorff(a, b) == pytest.approx(scipy_hd(a, b), rel=1e-12)


@pytest.mark.parametrize("sampling", [(2.0, 0.5), (0.3, 1.0), 1.7])
def test_anisotropic_sampling(rng, sampling):
    s = np.broadcast_to(np.asarray(sampling, float), (2,))
    for _ in range(5):
        a = blob_mask(rng, (60, 50))
        b = blob_mask(rng, (60, 50), 0.8)
        got = hausdorff(a, b, sampling=sampling)
        assert got == pytest.approx(scipy_hd(a, b, s), rel=1e-12)


@pytest.mark.parametrize("q", [50, 95, 100, 0])
def test_percentile_matches_brute_force(rng, q):
    for _ in range(5):
        a = blob_mask(rng, (50, 45))
        b = blob_mask(rng, (50, 45), 0.6)
        got = hausdorff(a, b, percentile=q, sampling=(1.0, 2.0))
        assert got == pytest.approx(brute_percentile_hd(a, b, q, (1.0, 2.0)), rel=1e-12)


def test_single_points_closed_form():
    a = np.zeros((20, 30), bool)
    b = np.zeros((20, 30), bool)
    a[2, 3] = True
    b[14, 28] = True
    assert hausdorff(a, b) == pytest.approx(np.hypot(12, 25))
    assert hausdorff(a, b, sampling=(3.0, 0.5)) == pytest.approx(np.hypot(36, 12.5))
    assert hausdorff(a, a) == 0.0


def test_empty_sets():
    a = np.zeros((10, 20), bool)
    b = np.zeros((10, 20), bool)
    b[3, 3] = True
    assert hausdorff(a, b) == pytest.approx(np.hypot(10, 20))
    assert hausdorff(b, a, sampling=(2.0, 1.0)) == pytest.approx(np.hypot(20, 20))
    assert hausdorff(a, b, empty=7.5) == 7.5
    assert np.isinf(hausdorff(a, b, empty="inf"))
    assert np.isnan(hausdorff(a, b, empty="nan"))
    assert hausdorff(a, a) == 0.0
    assert hausdorff(a, a, both_empty=-1.0) == -1.0
    A = np.stack([a, b, a, b])
    B = np.stack([b, b, a, a])
    hd, empty = hausdorff_batch(A, B, return_empty=True, empty=99.0)
    np.testing.assert_array_equal(empty, [True, False, True, True])
    np.testing.assert_array_equal(hd, [99.0, 0.0, 0.0, 99.0])
    assert int(empty.sum()) == 3


@pytest.mark.parametrize("n_threads", [1, 2])
def test_batch_matches_scipy(rng, n_threads):
    n = 40
    A = np.stack([random_mask(rng, (30, 35), d) for d in rng.uniform(0.01, 0.5, n)])
    B = np.stack([blob_mask(rng, (30, 35)) for _ in range(n)])
    A[:, 0, 0] = True
    B[:, -1, -1] = True
    got = hausdorff_batch(A, B, n_threads=n_threads)
    assert got.dtype == np.float64 and got.shape == (n,)
    np.testing.assert_allclose(got, [scipy_hd(a, b) for a, b in zip(A, B, strict=True)], rtol=1e-12)
    got95 = hausdorff_batch(A, B, percentile=95, n_threads=n_threads)
    np.testing.assert_allclose(got95, [brute_percentile_hd(a, b, 95) for a, b in zip(A, B, strict=True)],
                               rtol=1e-12)


def test_input_kinds(rng):
    a = random_mask(rng, (40, 30), 0.3)
    b = random_mask(rng, (40, 30), 0.1)
    ref = scipy_hd(a, b)
    assert hausdorff(a.astype(np.int32) * 3, b.astype(np.uint8)) == pytest.approx(ref)
    assert hausdorff(np.asfortranarray(a), b.astype(float)) == pytest.approx(ref)
    big_a = np.zeros((80, 60), bool)
    big_a[::2, ::2] = a
    assert hausdorff(big_a[::2, ::2], b) == pytest.approx(ref)


def test_bad_input_errors():
    with pytest.raises(KernelInputError, match="same shape"):
        hausdorff(np.ones((3, 4)), np.ones((4, 3)))
    with pytest.raises(KernelInputError, match="same shape"):
        hausdorff_batch(np.ones((2, 3, 4)), np.ones((3, 3, 4)))
    with pytest.raises(KernelInputError, match="2-D"):
        hausdorff(np.ones((2, 3, 4)), np.ones((2, 3, 4)))
    with pytest.raises(KernelInputError, match="percentile"):
        hausdorff(np.ones((3, 3)), np.ones((3, 3)), percentile=120)
    with pytest.raises(KernelInputError, match="empty"):
        hausdorff(np.ones((3, 3)), np.ones((3, 3)), empty="huge")


@settings(max_examples=60, deadline=None)
@given(
    ab=st.integers(1, 25).flatmap(
        lambda h: st.integers(1, 25).flatmap(
            lambda w: st.tuples(arrays(np.bool_, (h, w)), arrays(np.bool_, (h, w)))
        )
    ),
    sy=st.floats(0.2, 5.0),
    sx=st.floats(0.2, 5.0),
)
def test_property_symmetric_and_matches_scipy(ab, sy, sx):
    a, b = ab
    d = hausdorff(a, b, sampling=(sy, sx))
    assert d == hausdorff(b, a, sampling=(sy, sx))
    if a.any() and b.any():
        assert d == pytest.approx(scipy_hd(a, b, (sy, sx)), rel=1e-9)
    elif a.any() or b.any():
        assert d == pytest.approx(np.hypot(a.shape[0] * sy, a.shape[1] * sx))
    else:
        assert d == 0.0


@pytest.mark.parametrize("sampling", [(1.0, 1.0), (2.0, 2.0), (1.0, 2.5)])
def test_blob_pairs_far_apart_match_scipy(rng, sampling):
    # sparse blobs: long column gaps, so rows take the bounded windows, the
    # integer envelope and the row skipping, not just the narrow window
    for _ in range(6):
        a = blob_mask(rng, (90, 110)) & (rng.random((90, 110)) < 0.5)
        b = blob_mask(rng, (90, 110))
        b[:, : rng.integers(20, 80)] = False
        if not a.any() or not b.any():
            continue
        assert hausdorff(a, b, sampling=sampling) == pytest.approx(scipy_hd(a, b, sampling), rel=1e-12)
        assert hausdorff(a, b, percentile=95, sampling=sampling) == pytest.approx(
            brute_percentile_hd(a, b, 95, sampling), rel=1e-12)
