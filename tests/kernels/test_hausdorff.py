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


# ---------------------------------------------------------------- structured sets
# The kernel searches each pixel's nearest columns outwards, stops early once a
# pixel cannot raise the maximum, reuses the previous pixel's nearest column and
# hands rows with long searches to the exact row pass: the shapes below reach
# each of those paths (nested sets, holes, far pixels, thin and wide images).


def edt_directed(a, b, sampling=(1.0, 1.0)) -> np.ndarray:
    """d(p, B) for every pixel p of a, from scipy's EDT of "not B" (an oracle for large sets)."""
    from scipy import ndimage as ndi

    return ndi.distance_transform_edt(~np.asarray(b, bool), sampling=sampling)[np.asarray(a, bool)]


def edt_hd(a, b, q=None, sampling=(1.0, 1.0)) -> float:
    dab, dba = edt_directed(a, b, sampling), edt_directed(b, a, sampling)
    if q is None:
        return max(dab.max(), dba.max())
    return max(np.percentile(dab, q), np.percentile(dba, q))


def disc(shape, cy, cx, r):
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def structured_pairs():
    shape = (70, 90)
    big, small = disc(shape, 35, 45, 30), disc(shape, 35, 45, 8)
    ring = big & ~disc(shape, 35, 45, 20)
    full = np.ones(shape, bool)
    corner = np.zeros(shape, bool)
    corner[0, 0] = True
    two = corner.copy()
    two[-1, -1] = True
    stripes = np.zeros(shape, bool)
    stripes[:, ::17] = True
    line_row = np.zeros((1, 300), bool)
    line_row[0, 5:40] = True
    dot_row = np.zeros((1, 300), bool)
    dot_row[0, 290] = True
    return {
        "B inside A": (big, small),
        "A inside B": (small, big),
        "ring around a disc in its hole": (ring, small),
        "ring and its filled disc": (ring, big),
        "full vs one corner pixel": (full, corner),
        "full vs two opposite corners": (full, two),
        "disc vs vertical stripes": (big, stripes),
        "1 x 300 line vs far dot": (line_row, dot_row),
        "300 x 1 line vs far dot": (line_row.T, dot_row.T),
        "sets equal": (ring, ring),
    }


@pytest.mark.parametrize("name", list(structured_pairs()))
@pytest.mark.parametrize("sampling", [(1.0, 1.0), (3.0, 0.25), (0.25, 3.0)])
def test_structured_sets_match_scipy_edt(name, sampling):
    a, b = structured_pairs()[name]
    assert hausdorff(a, b, sampling=sampling) == pytest.approx(edt_hd(a, b, None, sampling), rel=1e-12)
    for q in (95, 50):
        got = hausdorff(a, b, percentile=q, sampling=sampling)
        assert got == pytest.approx(edt_hd(a, b, q, sampling), rel=1e-12, abs=1e-12)


def test_mixed_pairs_share_scratch_in_one_batch(rng):
    # one thread reuses its row buffers across pairs whose bounding boxes grow,
    # shrink and vanish: every pair must still match its own oracle
    shape = (48, 150)
    A, B = [], []
    for k in range(30):
        a = np.zeros(shape, bool)
        b = np.zeros(shape, bool)
        h, w = rng.integers(1, shape[0]), rng.integers(1, shape[1])
        r, c = rng.integers(0, shape[0] - h + 1), rng.integers(0, shape[1] - w + 1)
        a[r:r + h, c:c + w] = rng.random((h, w)) < rng.uniform(0.05, 1.0)
        b[r:r + h, c:c + w] = rng.random((h, w)) < rng.uniform(0.0, 0.3)
        if k % 7 == 3:
            b[:] = False
        A.append(a)
        B.append(b)
    A, B = np.stack(A), np.stack(B)
    diag = float(np.hypot(*shape))
    want = [edt_hd(a, b) if a.any() and b.any() else (0.0 if not (a.any() or b.any()) else diag)
            for a, b in zip(A, B, strict=True)]
    want95 = [edt_hd(a, b, 95) if a.any() and b.any() else (0.0 if not (a.any() or b.any()) else diag)
              for a, b in zip(A, B, strict=True)]
    for n_threads in (1, 2):
        np.testing.assert_allclose(hausdorff_batch(A, B, n_threads=n_threads), want, rtol=1e-12)
        np.testing.assert_allclose(hausdorff_batch(A, B, percentile=95, n_threads=n_threads), want95,
                                   rtol=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    h=st.integers(1, 12),
    w=st.integers(1, 160),
    pa=st.floats(0.0, 1.0),
    pb=st.floats(0.0, 0.2),
    seed=st.integers(0, 2**32 - 1),
    sy=st.sampled_from([0.2, 1.0, 4.0]),
    sx=st.sampled_from([0.2, 1.0, 4.0]),
    q=st.sampled_from([None, 0, 95, 100]),
)
def test_property_wide_sparse_rows_match_scipy_edt(h, w, pa, pb, seed, sy, sx, q):
    # wide, flat images with sparse sets: long outward searches and the row pass
    r = np.random.default_rng(seed)
    a = r.random((h, w)) < pa
    b = r.random((h, w)) < pb
    a.flat[r.integers(a.size)] = True
    b.flat[r.integers(b.size)] = True
    got = hausdorff(a, b, percentile=q, sampling=(sy, sx))
    assert got == pytest.approx(edt_hd(a, b, q, (sy, sx)), rel=1e-12, abs=1e-12)
