"""Goldstein filter: identity at alpha 0, noise reduction, NaN handling."""

import numpy as np
import pytest

from isslide_cube.synthetic.goldstein import goldstein


def _fringes(shape=(200, 260), noise=0.9, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0: shape[0], 0: shape[1]]
    truth = 0.12 * x + 0.05 * y + 2.0 * np.exp(-((x - 130) ** 2 + (y - 100) ** 2) / 800.0)
    noisy = np.angle(np.exp(1j * (truth + rng.normal(0, noise, shape)))).astype("float32")
    return truth, noisy


def _residual(phase, truth):
    return np.abs(np.angle(np.exp(1j * (phase - truth))))


def test_alpha_zero_is_identity():
    _, noisy = _fringes()
    np.testing.assert_allclose(np.exp(1j * goldstein(noisy, alpha=0.0)), np.exp(1j * noisy),
                               atol=1e-5)


def test_filter_reduces_noise_and_keeps_fringes():
    truth, noisy = _fringes()
    filtered = goldstein(noisy, alpha=1.0)
    before, after = _residual(noisy, truth).mean(), _residual(filtered, truth).mean()
    print(f"mean |phase error| before {before:.3f} rad, after Goldstein {after:.3f} rad")
    assert after < before / 3
    assert filtered.dtype == np.float32
    assert filtered.min() >= -np.pi and filtered.max() < np.pi


def test_stronger_alpha_filters_more():
    truth, noisy = _fringes(noise=1.2)
    errs = [_residual(goldstein(noisy, alpha=a), truth).mean() for a in (0.0, 0.4, 1.0)]
    assert errs[0] > errs[1] > errs[2]


def test_nan_stays_nan_and_does_not_spread():
    truth, noisy = _fringes()
    noisy[:40, :50] = np.nan
    filtered = goldstein(noisy)
    assert np.isnan(filtered[:40, :50]).all()
    assert np.isfinite(filtered[40:, :]).all() and np.isfinite(filtered[:, 50:]).all()


def test_window_must_be_a_multiple_of_step():
    with pytest.raises(ValueError, match="multiple"):
        goldstein(np.zeros((64, 64)), window=64, step=24)


# ---- anisotropic blocks: SNAP's 64 px single-look block is 32 rows x 8 cols after 8 x 2 looks
SLC_EQUIVALENT = {"window": (32, 8), "step": (16, 4)}


def test_int_window_is_the_square_pair():
    _, noisy = _fringes()
    assert np.array_equal(goldstein(noisy, window=32, step=16),
                          goldstein(noisy, window=(32, 32), step=(16, 16)), equal_nan=True)


def test_anisotropic_alpha_zero_is_identity():
    _, noisy = _fringes()
    np.testing.assert_allclose(np.exp(1j * goldstein(noisy, alpha=0.0, **SLC_EQUIVALENT)),
                               np.exp(1j * noisy), atol=1e-5)


@pytest.mark.parametrize(("px", "py", "tol"), [(8, 16, 1e-3), (14, 40, 0.15)])
def test_anisotropic_keeps_a_pure_fringe_pattern(px, py, tol):
    # noise-free fringes along both axes; periods that are whole bins of the 32 x 8 block
    # are one spectral line, kept exactly; others leak over a few bins, kept closely.
    # 32 px from the border: the reflect padding turns a ramp there into a ridge.
    y, x = np.mgrid[0:150, 0:170]
    truth = np.angle(np.exp(1j * (2 * np.pi * x / px + 2 * np.pi * y / py))).astype("float32")
    filtered = goldstein(truth, **SLC_EQUIVALENT)
    assert _residual(filtered, truth)[32:-32, 32:-32].max() < tol


def test_anisotropic_reduces_noise():
    truth, noisy = _fringes()
    filtered = goldstein(noisy, **SLC_EQUIVALENT)
    before, after = _residual(noisy, truth).mean(), _residual(filtered, truth).mean()
    assert after < before / 2
    assert filtered.dtype == np.float32
    assert filtered.min() >= -np.pi and filtered.max() < np.pi


def test_window_is_rows_by_cols():
    # transposing the image and the window transposes the result
    _, noisy = _fringes(shape=(120, 200))
    a = goldstein(noisy, window=(32, 8), step=(16, 4))
    b = goldstein(noisy.T.copy(), window=(8, 32), step=(4, 16))
    np.testing.assert_allclose(np.exp(1j * a), np.exp(1j * b.T), atol=1e-4)
    assert not np.allclose(np.exp(1j * a), np.exp(1j * goldstein(noisy, window=(8, 32),
                                                                 step=(4, 16))), atol=1e-2)


@pytest.mark.parametrize(("window", "step"), [((32, 8), (16, 4)), ((16, 64), (8, 32)), (64, 32)])
def test_rectangular_taper_sums_to_one(window, step):
    from isslide_cube.synthetic.goldstein import _weights

    wy, wx = window if isinstance(window, tuple) else (window, window)
    sy, sx = step if isinstance(step, tuple) else (step, step)
    w = _weights((wy, wx), (sy, sx))
    assert w.shape == (wy, wx)
    acc = np.zeros((wy * 4, wx * 4))
    for i in range(0, acc.shape[0] - wy + 1, sy):
        for j in range(0, acc.shape[1] - wx + 1, sx):
            acc[i: i + wy, j: j + wx] += w
    # every pixel covered by a full set of overlapping blocks sums to one
    np.testing.assert_allclose(acc[wy - sy: acc.shape[0] - wy + sy, wx - sx: acc.shape[1] - wx + sx],
                               1.0, atol=1e-6)


def test_anisotropic_nan_stays_nan_and_does_not_spread():
    _, noisy = _fringes()
    noisy[:40, :50] = np.nan
    filtered = goldstein(noisy, **SLC_EQUIVALENT)
    assert np.isnan(filtered[:40, :50]).all()
    assert np.isfinite(filtered[40:, :]).all() and np.isfinite(filtered[:, 50:]).all()


def test_anisotropic_matches_snap_order_on_a_small_move():
    # SNAP filters the single-look grid (64 px) and multilooks 8 x 2 (range x azimuth)
    # afterwards; on the multilooked grid the equivalent is 32 rows x 8 cols. A 10 px
    # bump (a small move) keeps the same share of its peak both ways, and far more than
    # with 64 px blocks on the multilooked grid.
    from scipy import ndimage

    y, x = np.mgrid[0:128, 0:128]
    bump = (0.5 * np.pi * np.exp(-((x - 64) ** 2 + (y - 64) ** 2) / (2 * 5.0 ** 2))).astype("float32")
    slc = ndimage.zoom(bump, (2, 8), order=1, mode="nearest", grid_mode=True)
    z = np.exp(1j * goldstein(slc, window=64, step=32))
    snap = np.angle(z.reshape(128, 2, 128, 8).mean(axis=(1, 3)))
    kept_snap = snap[64, 64] / bump[64, 64]
    kept_equiv = goldstein(bump, **SLC_EQUIVALENT)[64, 64] / bump[64, 64]
    kept_square = goldstein(bump, window=64, step=32)[64, 64] / bump[64, 64]
    assert abs(kept_equiv - kept_snap) < 0.05, (kept_equiv, kept_snap)
    assert kept_square < kept_snap / 2, (kept_square, kept_snap)


@pytest.mark.parametrize(("window", "step"), [((32, 8), (16, 3)), ((32, 8, 2), 4), ((0, 8), (0, 4))])
def test_bad_anisotropic_window_or_step(window, step):
    with pytest.raises(ValueError, match="window|step"):
        goldstein(np.zeros((64, 64)), window=window, step=step)
