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
