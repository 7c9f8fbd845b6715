"""Per-acquisition tropospheric delay: turbulent power-law screen + stratified term.

Each acquisition date gets (1) a turbulent delay screen with a Kolmogorov-like power
spectrum ``P(k) ~ k**(-8/3)`` (Hanssen 2001, section 4.7) whose standard deviation is
drawn uniformly in 0.5-3 cm, and (2) a height-correlated (stratified) delay
``K * (h - h_ref)`` with ``K ~ N(0, 1e-5)`` m/m (about 1 cm per km of relief). An
interferogram sees the difference of its two dates' delays.

Screens are synthesised on a grid ``factor`` times coarser than the output and
interpolated bilinearly: the turbulent power below ~100 m is negligible, and keeping
one coarse screen per date keeps memory flat at paper scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TURBULENCE_BETA = 8.0 / 3.0
#: outer scale (m) at which the turbulent standard deviation is defined
OUTER_SCALE_M = 30_000.0
#: inner scale (m): the delay integrates over a km-thick column and the interferogram
#: is multilooked and resampled, so power below a few hundred metres is damped
INNER_SCALE_M = 500.0


def turbulent_screen(shape: tuple[int, int], rng: np.random.Generator, spacing: tuple[float, float],
                     std: float, beta: float = TURBULENCE_BETA, outer_m: float = OUTER_SCALE_M,
                     inner_m: float = INNER_SCALE_M) -> np.ndarray:
    """Turbulent delay screen (m) with an absolute power spectrum.

    ``P(f) = A (f**2 + f0**2)**(-beta/2) * exp(-(f / fi)**2)`` with ``f0 = 1/outer_m``,
    ``fi = 1/inner_m`` and ``A`` such that the variance over an unbounded domain is
    ``std**2`` (``A = std**2 (beta - 2) f0**(beta - 2) / (2 pi)``). A domain smaller
    than the outer scale therefore shows less than ``std``, as a real small scene does.

    Example
    -------
    >>> s = turbulent_screen((256, 256), np.random.default_rng(0), (240.0, 240.0), 0.02)
    >>> 0.005 < float(s.std()) < 0.03
    True
    """
    ny, nx = shape
    fy = np.fft.fftfreq(ny, d=spacing[0])
    fx = np.fft.rfftfreq(nx, d=spacing[1])
    f2 = fy[:, None] ** 2 + fx[None, :] ** 2
    f0 = 1.0 / outer_m
    amp_a = std**2 * (beta - 2.0) * f0 ** (beta - 2.0) / (2 * np.pi)
    psd = amp_a * (f2 + f0**2) ** (-beta / 2.0) * np.exp(-f2 * inner_m**2)
    psd[0, 0] = 0.0
    df = 1.0 / (ny * spacing[0]) / (nx * spacing[1])
    z = (rng.standard_normal((ny, fx.size)) + 1j * rng.standard_normal((ny, fx.size))) / np.sqrt(2)
    field = np.fft.irfft2(z * np.sqrt(psd * df) * (ny * nx), s=shape)
    return field - field.mean()


@dataclass
class AcquisitionAtmosphere:
    """Delay model of one acquisition."""

    screen: np.ndarray  # coarse turbulent delay (m), float32
    turbulence_std: float  # m
    stratified_k: float  # m of delay per m of elevation

    def delay(self, dem: np.ndarray, h_ref: float) -> np.ndarray:
        """Total one-way range delay (m) on the DEM's grid, float32."""
        return delay_difference(None, self, dem, h_ref)


def delay_difference(first: AcquisitionAtmosphere | None, second: AcquisitionAtmosphere,
                     dem: np.ndarray, h_ref: float) -> np.ndarray:
    """``delay(second) - delay(first)`` (m, float32): the interferogram's atmosphere.

    The coarse screens are differenced before the (costly) upsampling.
    """
    screen = second.screen if first is None else second.screen - first.screen
    k = second.stratified_k - (0.0 if first is None else first.stratified_k)
    out = upsample(screen, dem.shape)
    out += np.float32(k) * (dem - np.float32(h_ref))
    return out


def upsample(coarse: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear interpolation of ``coarse`` onto ``shape`` (cell centres aligned), float32.

    Separable: two gathers and two weighted sums, much faster than ``ndimage.zoom``.

    Example
    -------
    >>> upsample(np.array([[0.0, 1.0]]), (1, 4)).tolist()
    [[0.0, 0.25, 0.75, 1.0]]
    """
    if coarse.shape == tuple(shape):
        return coarse.astype("float32", copy=False)
    c = coarse.astype("float32", copy=False)

    def axis_weights(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
        pos = np.clip(pos, 0, n_in - 1)
        i0 = np.minimum(np.floor(pos).astype(int), max(n_in - 2, 0))
        w = (pos - i0).astype("float32")
        return i0, np.minimum(i0 + 1, n_in - 1), w

    r0, r1, wr = axis_weights(c.shape[0], shape[0])
    c0, c1, wc = axis_weights(c.shape[1], shape[1])
    cols = c[:, c0] * (1 - wc) + c[:, c1] * wc
    return cols[r0] * (1 - wr)[:, None] + cols[r1] * wr[:, None]


def make_acquisitions(n_dates: int, shape: tuple[int, int], spacing: tuple[float, float],
                      rng: np.random.Generator, std_range: tuple[float, float] = (0.005, 0.03),
                      stratified_std: float = 1.0e-5, factor: int = 1) -> list[AcquisitionAtmosphere]:
    """One :class:`AcquisitionAtmosphere` per date.

    Parameters
    ----------
    n_dates
        Number of acquisitions.
    shape, spacing
        Output grid (rows, cols) and its (dy, dx) in metres.
    rng
        Random generator.
    std_range
        Range (m) of the turbulent standard deviation, drawn uniformly per date.
    stratified_std
        Standard deviation of the stratified coefficient K (m/m).
    factor
        Coarsening of the screens.

    Example
    -------
    >>> acq = make_acquisitions(2, (32, 32), (30.0, 30.0), np.random.default_rng(0))
    >>> [0.005 <= a.turbulence_std <= 0.03 for a in acq]
    [True, True]
    """
    coarse = (max(8, -(-shape[0] // factor)), max(8, -(-shape[1] // factor)))
    cspacing = (spacing[0] * shape[0] / coarse[0], spacing[1] * shape[1] / coarse[1])
    out = []
    for _ in range(n_dates):
        std = float(rng.uniform(*std_range))
        screen = turbulent_screen(coarse, rng, cspacing, std)
        out.append(AcquisitionAtmosphere(screen.astype("float32"), std,
                                         float(rng.normal(0.0, stratified_std))))
    return out


def radial_psd_slope(field: np.ndarray, spacing: float, kmin_frac: float = 0.02,
                     kmax_frac: float = 0.25) -> float:
    """Log-log slope of the radially averaged power spectrum of ``field``.

    Used to check the turbulent screens: the slope should be ``-beta`` (-8/3).
    Fits between ``kmin_frac`` and ``kmax_frac`` of the sampling frequency.
    """
    ny, nx = field.shape
    spec = np.abs(np.fft.fft2(field - field.mean())) ** 2
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(ny, spacing), np.fft.fftfreq(nx, spacing),
                              indexing="ij"))
    fs = 1.0 / spacing
    edges = np.geomspace(kmin_frac * fs, kmax_frac * fs, 16)
    idx = np.digitize(k.ravel(), edges)
    centres, power = [], []
    for i in range(1, edges.size):
        sel = idx == i
        if sel.any():
            centres.append(np.sqrt(edges[i - 1] * edges[i]))
            power.append(spec.ravel()[sel].mean())
    return float(np.polyfit(np.log(centres), np.log(power), 1)[0])
