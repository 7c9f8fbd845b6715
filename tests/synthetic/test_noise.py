"""Multilook phase noise: the Wishart sampler against the closed-form phase density."""

import numpy as np
import pytest
from scipy import integrate, special, stats

from isslide_cube.synthetic.noise import (
    multilook_phase_pdf,
    multilook_phase_std,
    sample_multilook,
    simulate_looks,
    wrap,
)

LOOKS = 16


@pytest.mark.parametrize("gamma", [0.3, 0.6, 0.9])
def test_pdf_is_a_density(gamma):
    total, _ = integrate.quad(multilook_phase_pdf, -np.pi, np.pi, args=(gamma, LOOKS))
    assert total == pytest.approx(1.0, abs=1e-8)


@pytest.mark.parametrize("gamma", [0.2, 0.4, 0.6, 0.8, 0.95])
def test_phase_std_matches_multilook_pdf(gamma):
    rng = np.random.default_rng(1)
    g = np.full(200_000, gamma, dtype="float32")
    _, phase = sample_multilook(g, np.zeros_like(g), LOOKS, rng)
    measured = float(np.sqrt(np.mean(phase.astype("float64") ** 2)))
    theory = multilook_phase_std(gamma, LOOKS)
    print(f"gamma={gamma}: measured phase std {measured:.4f} rad, theory {theory:.4f} rad, "
          f"ratio {measured / theory:.4f}")
    assert measured == pytest.approx(theory, rel=0.10)
    assert measured == pytest.approx(theory, rel=0.02)  # the sampler is exact, not just close


def test_phase_histogram_matches_pdf():
    rng = np.random.default_rng(2)
    g = np.full(400_000, 0.5, dtype="float32")
    _, phase = sample_multilook(g, np.zeros_like(g), LOOKS, rng)
    edges = np.linspace(-np.pi, np.pi, 41)
    hist, _ = np.histogram(phase, edges, density=True)
    expected = [integrate.quad(multilook_phase_pdf, a, b, args=(0.5, LOOKS))[0] / (b - a)
                for a, b in zip(edges[:-1], edges[1:], strict=True)]
    np.testing.assert_allclose(hist, expected, rtol=0.06, atol=0.005)


def test_wishart_sampler_matches_explicit_looks():
    rng = np.random.default_rng(3)
    n = 20_000
    coh_ref, ph_ref = simulate_looks(0.7, 1.0, LOOKS, n, rng)
    g = np.full(n, 0.7, dtype="float32")
    coh, ph = sample_multilook(g, np.full(n, 1.0, dtype="float32"), LOOKS, rng)
    assert stats.ks_2samp(coh, coh_ref).pvalue > 0.001
    assert stats.ks_2samp(wrap(ph - 1.0), wrap(ph_ref - 1.0)).pvalue > 0.001


def test_coherence_estimate_bias_at_zero_coherence():
    # E|gamma_hat| for gamma = 0 and L looks: Gamma(L) Gamma(3/2) / Gamma(L + 1/2)
    rng = np.random.default_rng(4)
    g = np.zeros(200_000, dtype="float32")
    coh, phase = sample_multilook(g, g, LOOKS, rng)
    expected = np.exp(special.gammaln(LOOKS) + special.gammaln(1.5) - special.gammaln(LOOKS + 0.5))
    assert float(coh.mean()) == pytest.approx(expected, rel=0.01)
    assert np.std(phase) == pytest.approx(np.pi / np.sqrt(3), rel=0.01)  # uniform phase


def test_signal_phase_is_kept():
    rng = np.random.default_rng(5)
    truth = np.linspace(-3, 3, 50_000).astype("float32")
    _, phase = sample_multilook(np.full_like(truth, 0.9), truth, LOOKS, rng)
    assert abs(np.angle(np.exp(1j * (phase - truth)).mean())) < 0.01
    assert phase.dtype == np.float32 and phase.min() >= -np.pi and phase.max() < np.pi


def test_looks_must_be_at_least_two():
    with pytest.raises(ValueError, match="looks"):
        sample_multilook(np.ones(3), np.zeros(3), 1, np.random.default_rng(0))


def test_wrap():
    p = np.array([np.pi, -np.pi, 7.0, -7.0], dtype="float32")
    w = wrap(p)
    assert w.dtype == np.float32
    assert np.all((w >= -np.pi) & (w < np.pi))
    np.testing.assert_allclose(np.exp(1j * w), np.exp(1j * p.astype("float64")), atol=1e-5)
