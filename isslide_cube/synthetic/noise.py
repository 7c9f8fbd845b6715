"""Multilook phase noise consistent with the coherence.

An L-look interferogram is ``sum_l z2_l * conj(z1_l)`` over L pairs of circular complex
Gaussian pixels with correlation ``gamma``; its sample covariance matrix follows the
complex Wishart distribution ``CW(L, Sigma)``, ``Sigma = [[1, g], [g, 1]]``. Rather than
drawing 2 L complex numbers per pixel we draw the Wishart matrix directly with the
Bartlett decomposition (4 real numbers per pixel, exactly the same distribution):
``A = [[a11, 0], [a21, a22]]`` with ``a11**2 ~ Gamma(L)``, ``a22**2 ~ Gamma(L - 1)``,
``a21 ~ CN(0, 1)``; with ``C = chol(Sigma)``, ``W = C A A^H C^H``. Then
``W21 = a11 (g a11 + s a21)`` (``s = sqrt(1 - g**2)``) is the multilook interferogram,
``|W21| / sqrt(W11 W22)`` the estimated coherence (biased upwards at low coherence,
like SNAP's), and the signal phase rotates ``W21``.

:func:`simulate_looks` draws the L looks explicitly (the reference the tests compare
against), and :func:`multilook_phase_pdf` is the closed-form phase density
(Lee et al. 1994, "Statistics of phase difference and product magnitude of multi-look
processed Gaussian signals", Waves in Random Media 4(3)).
"""

from __future__ import annotations

import numpy as np
from scipy import special


def sample_multilook(gamma: np.ndarray, phase: np.ndarray, looks: int,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Noisy multilook (coherence, phase) for a true coherence and a true phase.

    Parameters
    ----------
    gamma
        True coherence in [0, 1].
    phase
        True interferometric phase (rad, any range).
    looks
        Number of looks L >= 2 (16 for 8 x 2 multilooking).
    rng
        Random generator.

    Returns
    -------
    (coherence, phase)
        float32 estimated coherence in [0, 1] and wrapped phase in [-pi, pi).

    Example
    -------
    >>> g = np.full(20000, 0.99, dtype="float32")
    >>> coh, ph = sample_multilook(g, np.ones_like(g), 16, np.random.default_rng(0))
    >>> bool(abs(np.angle(np.exp(1j * ph).mean()) - 1.0) < 0.01), bool(coh.mean() > 0.98)
    (True, True)
    """
    if looks < 2:
        raise ValueError(f"looks must be >= 2 for the Wishart sampler, got {looks}")
    shape = np.shape(gamma)
    f32 = np.float32
    g = np.asarray(gamma, dtype=f32)
    s = np.sqrt(np.clip(f32(1.0) - g * g, 0.0, 1.0))
    a11 = np.sqrt(rng.standard_gamma(looks, size=shape, dtype=f32))
    a22sq = rng.standard_gamma(looks - 1, size=shape, dtype=f32)
    # b = g a11 + s a21 (second row of C A, first column), a21 ~ CN(0, 1)
    re = rng.standard_normal(size=shape, dtype=f32)
    re *= f32(np.sqrt(0.5)) * s
    re += g * a11
    im = rng.standard_normal(size=shape, dtype=f32)
    im *= f32(np.sqrt(0.5)) * s
    b2 = re * re + im * im
    w22 = b2 + s * s * a22sq
    coh = np.sqrt(b2 / np.maximum(w22, f32(1e-30)))
    ph = np.arctan2(im, re)
    ph += np.asarray(phase, dtype=f32)
    return np.clip(coh, 0.0, 1.0, out=coh), wrap(ph)


def simulate_looks(gamma: float, phase: float, looks: int, n: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Reference sampler: draw the ``looks`` complex Gaussian pairs and multilook them.

    Returns (estimated coherence, wrapped phase) for ``n`` independent pixels.
    """
    def cn(size: tuple[int, int]) -> np.ndarray:
        return (rng.standard_normal(size) + 1j * rng.standard_normal(size)) / np.sqrt(2.0)

    z1 = cn((n, looks))
    z2 = (gamma * z1 + np.sqrt(1.0 - gamma**2) * cn((n, looks))) * np.exp(1j * phase)
    w12 = (z2 * np.conj(z1)).sum(axis=1)
    p1 = (np.abs(z1) ** 2).sum(axis=1)
    p2 = (np.abs(z2) ** 2).sum(axis=1)
    return np.abs(w12) / np.sqrt(p1 * p2), np.angle(w12)


def wrap(phase: np.ndarray) -> np.ndarray:
    """Wrap to [-pi, pi) keeping a float dtype (float32 stays float32).

    Example
    -------
    >>> wrap(np.array([np.pi, -np.pi, 3 * np.pi / 2])).round(4).tolist()
    [-3.1416, -3.1416, -1.5708]
    """
    p = np.asarray(phase)
    t = p.dtype.type if p.dtype.kind == "f" else np.float64
    two_pi = t(2 * np.pi)
    out = p - two_pi * np.floor((p + t(np.pi)) / two_pi)
    # float rounding can land exactly on +pi
    out[out >= t(np.pi)] -= two_pi
    return out.astype(t, copy=False)


def multilook_phase_pdf(phi: np.ndarray, gamma: float, looks: int, theta: float = 0.0) -> np.ndarray:
    """Probability density of the L-look interferometric phase (Lee et al. 1994, eq. 22).

    ``pdf = G(L+1/2) (1-g^2)^L b / (2 sqrt(pi) G(L) (1-b^2)^(L+1/2))
    + (1-g^2)^L / (2 pi) 2F1(L, 1; 1/2; b^2)`` with ``b = g cos(phi - theta)``.

    Example
    -------
    >>> from scipy import integrate
    >>> round(integrate.quad(multilook_phase_pdf, -np.pi, np.pi, args=(0.7, 16))[0], 6)
    1.0
    """
    beta = gamma * np.cos(np.asarray(phi) - theta)
    one = 1.0 - gamma**2
    lg = special.gammaln(looks + 0.5) - special.gammaln(looks)
    first = np.exp(lg) * one**looks * beta / (2 * np.sqrt(np.pi) * (1 - beta**2) ** (looks + 0.5))
    second = one**looks / (2 * np.pi) * special.hyp2f1(looks, 1.0, 0.5, beta**2)
    return first + second


def multilook_phase_std(gamma: float, looks: int) -> float:
    """Standard deviation (rad) of the L-look phase around the true phase, by quadrature."""
    from scipy import integrate

    var, _ = integrate.quad(lambda p: p * p * multilook_phase_pdf(p, gamma, looks),
                            -np.pi, np.pi, limit=200)
    return float(np.sqrt(var))


def cramer_rao_std(gamma: np.ndarray, looks: int) -> np.ndarray:
    """Cramer-Rao bound of the phase std, ``sqrt((1 - g^2) / (2 L g^2))`` (high-coherence
    approximation used to decide what an annotator can see)."""
    g = np.clip(np.asarray(gamma, dtype="float64"), 1e-3, 1.0)
    return np.sqrt((1 - g**2) / (2 * looks * g**2))
