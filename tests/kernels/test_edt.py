"""edt / edt_batch against scipy.ndimage.distance_transform_edt."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage as ndi

from isslide_cube.kernels import KernelInputError, edt, edt_batch
from isslide_cube.schema import IsslideError

from .conftest import DENSITIES, SHAPES, blob_mask, random_mask


def scipy_edt(mask: np.ndarray, sampling=None) -> np.ndarray:
    """scipy's transform, with our documented +inf for masks without a zero."""
    mask = np.asarray(mask) != 0
    if mask.all():
        return np.full(mask.shape, np.inf)
    return ndi.distance_transform_edt(mask, sampling=sampling)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("density", DENSITIES)
@pytest.mark.parametrize("n_threads", [1, 2])
def test_random_masks_match_scipy(rng, shape, density, n_threads):
    m = random_mask(rng, shape, density)
    got = edt(m, dtype=np.float64, n_threads=n_threads)
    np.testing.assert_allclose(got, scipy_edt(m), rtol=1e-12)


@pytest.mark.parametrize("sampling", [(1.0, 1.0), (2.0, 0.5), (0.3, 1.7), 2.5, (10.0, 10.0), (1.0, 7.0)])
@pytest.mark.parametrize("shape", [(1, 23), (23, 1), (40, 33), (97, 64)])
def test_anisotropic_sampling_matches_scipy(rng, sampling, shape):
    for density in (0.05, 0.5, 0.95):
        m = random_mask(rng, shape, density)
        m.flat[0] = False
        got = edt(m, sampling, dtype=np.float64)
        np.testing.assert_allclose(got, scipy_edt(m, sampling), rtol=1e-12)


def test_blobs_large_distances_match_scipy(rng):
    # blob interiors are far from any zero: exercises the exact envelope, not the window
    m = blob_mask(rng, (300, 280))
    for samp in (None, (1.0, 3.0), (3.0, 1.0)):
        got = edt(m, samp, dtype=np.float64)
        np.testing.assert_allclose(got, scipy_edt(m, samp), rtol=1e-12)


@pytest.mark.parametrize("sampling", [None, 0.7, (3.0, 3.0)])
def test_integer_envelope_sparse_zeros_match_scipy(rng, sampling):
    # few zeros: most rows have no background (the whole-row integer envelope)
    # and the rest have long runs (the per-run integer envelope); equal spacing only
    m = np.ones((420, 517), bool)
    m[rng.integers(0, 420, 7), rng.integers(0, 517, 7)] = False
    m[200, :] = rng.random(517) < 0.97  # one row with a few zeros, long runs between
    got = edt(m, sampling, dtype=np.float64)
    want = scipy_edt(m, sampling)
    if sampling is None:  # integer squared distances: the same correctly rounded sqrt
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("gap", [1, 15, 33, 34, 35, 60])
def test_integer_window_around_its_limit_matches_scipy(rng, gap):
    # background rows every `gap` rows: column distances up to about gap / 2,
    # on both sides of the widening window's limit (_W_ROW); sparse extra zeros
    from isslide_cube.kernels.edt import _W_ROW

    assert 15 < _W_ROW * 2 + 1 < 60
    m = rng.random((3 * gap + 7, 301)) > 0.002
    m[::gap] = False
    got = edt(m, dtype=np.float64)
    np.testing.assert_array_equal(got, scipy_edt(m))
    np.testing.assert_allclose(edt(m, 2.0, dtype=np.float64), scipy_edt(m, 2.0), rtol=1e-12)


def test_float32_output_close_to_scipy(rng):
    m = blob_mask(rng, (128, 200))
    got = edt(m)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, scipy_edt(m), rtol=1e-6)


def test_single_zero_pixel_closed_form():
    m = np.ones((11, 8), np.uint8)
    m[4, 6] = 0
    yy, xx = np.mgrid[0:11, 0:8]
    expected = np.hypot((yy - 4) * 2.0, (xx - 6) * 0.5)
    np.testing.assert_allclose(edt(m, (2.0, 0.5), dtype=np.float64), expected, rtol=1e-12)


def test_no_zero_pixel_is_inf():
    for shape in [(1, 1), (5, 7), (1, 30)]:
        assert np.all(np.isinf(edt(np.ones(shape, bool))))


def test_all_zeros_is_zero():
    assert not edt(np.zeros((6, 9), int)).any()


def test_checkerboard_is_one_and_zero():
    m = (np.indices((15, 16)).sum(axis=0) % 2).astype(bool)
    got = edt(m, dtype=np.float64)
    np.testing.assert_array_equal(got, m.astype(float))
    np.testing.assert_allclose(edt(m, (1.0, 3.0), dtype=np.float64), scipy_edt(m, (1.0, 3.0)))


def test_thin_lines():
    m = np.ones((50, 60), bool)
    m[25, :] = False  # a horizontal zero line
    got = edt(m, dtype=np.float64)
    np.testing.assert_array_equal(got[:, 10], np.abs(np.arange(50) - 25))
    m = np.zeros((50, 60), bool)
    m[:, 30] = True  # a one-pixel foreground line
    np.testing.assert_array_equal(edt(m, dtype=np.float64), m.astype(float))
    m = np.ones((40, 40), bool)
    np.fill_diagonal(m, False)  # a diagonal zero line
    np.testing.assert_allclose(edt(m, dtype=np.float64), scipy_edt(m))


@pytest.mark.parametrize("dtype", [bool, np.uint8, np.int8, np.int16, np.int32, np.int64,
                                   np.uint16, np.float32, np.float64])
def test_input_dtypes(rng, dtype):
    base = random_mask(rng, (20, 30), 0.6)
    m = (base * rng.integers(1, 3, base.shape)).astype(dtype)  # non-zero values other than 1
    np.testing.assert_allclose(edt(m, dtype=np.float64), scipy_edt(base))


def test_noncontiguous_and_fortran_input(rng):
    big = random_mask(rng, (60, 80), 0.8)
    view = big[3:50:2, 70:5:-3]
    np.testing.assert_allclose(edt(view, dtype=np.float64), scipy_edt(view))
    fort = np.asfortranarray(big)
    np.testing.assert_allclose(edt(fort, dtype=np.float64), scipy_edt(big))
    np.testing.assert_allclose(edt(big.T, dtype=np.float64), scipy_edt(big.T))


def test_input_not_mutated_and_out(rng):
    m = random_mask(rng, (30, 30), 0.7).astype(np.uint8)
    before = m.copy()
    out = np.empty((30, 30), np.float64)
    res = edt(m, dtype=np.float64, out=out)
    assert res is out
    np.testing.assert_array_equal(m, before)
    np.testing.assert_allclose(out, scipy_edt(m))


def test_empty_shape():
    assert edt(np.ones((0, 5), bool)).shape == (0, 5)


def test_bad_input_errors():
    with pytest.raises(KernelInputError, match="edt_batch"):
        edt(np.ones((2, 3, 4), bool))
    with pytest.raises(IsslideError, match="2-D"):
        edt(np.ones(5, bool))
    with pytest.raises(ValueError, match="sampling"):
        edt(np.ones((3, 3)), sampling=(1.0, -1.0))
    with pytest.raises(KernelInputError, match="sampling"):
        edt(np.ones((3, 3)), sampling=(1.0, 2.0, 3.0))
    with pytest.raises(KernelInputError, match="dtype"):
        edt(np.ones((3, 3)), dtype=np.int32)
    with pytest.raises(KernelInputError, match="out"):
        edt(np.ones((3, 3)), out=np.empty((3, 4), np.float32))
    with pytest.raises(KernelInputError, match="numeric or bool"):
        edt(np.array([["a", "b"]]))


@pytest.mark.parametrize("n_threads", [1, 2])
def test_batch_matches_single(rng, n_threads):
    masks = np.stack([random_mask(rng, (25, 19), d) for d in np.linspace(0.0, 1.0, 21)])
    got = edt_batch(masks, (1.5, 1.0), dtype=np.float64, n_threads=n_threads)
    for k in range(len(masks)):
        np.testing.assert_allclose(got[k], scipy_edt(masks[k], (1.5, 1.0)), rtol=1e-12)
    # few large images take the per-image parallel path
    few = masks[:3]
    np.testing.assert_allclose(edt_batch(few, (1.5, 1.0), dtype=np.float64, n_threads=2),
                               got[:3])
    with pytest.raises(KernelInputError, match="3-D"):
        edt_batch(masks[0])


@settings(max_examples=60, deadline=None)
@given(
    m=arrays(np.bool_, st.tuples(st.integers(1, 40), st.integers(1, 40))),
    sy=st.floats(0.1, 10.0),
    sx=st.floats(0.1, 10.0),
)
def test_property_matches_scipy(m, sy, sx):
    got = edt(m, (sy, sx), dtype=np.float64)
    np.testing.assert_allclose(got, scipy_edt(m, (sy, sx)), rtol=1e-9)


@settings(max_examples=40, deadline=None)
@given(m=arrays(np.bool_, st.tuples(st.integers(1, 30), st.integers(1, 30))))
def test_property_transpose_and_flip_invariance(m):
    d = edt(m, dtype=np.float64)
    np.testing.assert_array_equal(edt(m.T, dtype=np.float64), d.T)
    np.testing.assert_array_equal(edt(m[::-1, ::-1], dtype=np.float64), d[::-1, ::-1])
    # zero exactly on background; >= 1 pixel on foreground
    assert np.all(d[~m] == 0) and np.all(d[m] >= 1)
