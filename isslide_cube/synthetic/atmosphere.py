"""Per-acquisition tropospheric delay: turbulent power-law screen + stratified term.

Each acquisition date gets (1) a turbulent delay screen with a power-law spectrum
``P(k) ~ k**(-3)`` whose standard deviation, at the 300 km outer scale, is drawn
uniformly in 0.5-2 cm, and (2) a height-correlated (stratified) delay
``K * (h - h_ref)`` with ``K ~ N(0, 5e-6)`` m/m (5 mm per km of relief). An
interferogram sees the difference of its two dates' delays.

Calibration: Emardson et al. (2003, JGR 108(B5), from GPS zenith delays) give the
standard deviation of an interferogram's delay between two points ``L`` km apart
and ``H`` km apart in height as ``c L**0.5 + k H`` with ``c ~ 2.5 mm`` and ``k ~ 4.8
mm``. A square-root structure function is a 2-D spectrum ``k**-3``, between
Hanssen's (2001, section 4.7) -8/3 and -11/3 regimes. With ``P ~ k**-3`` the
structure function of one screen is ``D(r) = 4 pi std**2 r / L0``, so the stds drawn
here give interferograms with ``c`` between 1.4 and 5.8 mm per square-root km along
the line of sight (RMS 3.7; Emardson's 2.5 mm zenith is 3.2 mm slant at 39 deg),
a C-band phase of 0.3-1.3 rad between points 1 km apart, and 1.5-6 cm across 100 km.
``benchmarks.atmosphere`` measures it. The stratified ``k`` is 7 mm per km for an
interferogram (Emardson's 4.8 mm zenith, 6.2 slant).

Screens are synthesised on a grid ``factor`` times coarser than the output and
interpolated bilinearly: the turbulent power below ~100 m is negligible, and keeping
one coarse screen per date keeps memory flat at paper scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: 2-D spectral exponent: Emardson et al.'s square-root structure function
TURBULENCE_BETA = 3.0
#: outer scale (m) at which the turbulent standard deviation is defined (synoptic: wider
#: than any preset's scene, so the structure function grows as sqrt(L) across it)
OUTER_SCALE_M = 300_000.0
#: inner scale (m): the delay integrates over a km-thick column and the interferogram
#: is multilooked, so power below a couple of hundred metres is damped
INNER_SCALE_M = 250.0
#: default range (m) of the per-acquisition turbulent standard deviation
STD_RANGE = (0.005, 0.02)
#: default standard deviation (m/m) of the per-acquisition stratified coefficient
STRATIFIED_STD = 5.0e-6


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
    >>> 0.001 < float(s.std()) < 0.02  # a 61 km scene holds part of a 300 km outer scale
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
                      rng: np.random.Generator, std_range: tuple[float, float] = STD_RANGE,
                      stratified_std: float = STRATIFIED_STD,
                      factor: int = 1) -> list[AcquisitionAtmosphere]:
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
    >>> [0.005 <= a.turbulence_std <= 0.02 for a in acq]
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

    Used to check the turbulent screens: the slope should be ``-beta`` (-3).
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


#: Emardson et al. (2003): std (m) of an interferogram's zenith delay between two points
#: ``L`` km apart is ``EMARDSON_C * L**EMARDSON_ALPHA``
EMARDSON_C, EMARDSON_ALPHA = 2.5e-3, 0.5


def emardson_std(lag_m: np.ndarray | float, incidence_deg: float = 39.0) -> np.ndarray:
    """Emardson et al.'s std (m) of an interferogram's slant delay between points ``lag_m`` apart.

    Example
    -------
    >>> round(float(emardson_std(1000.0, incidence_deg=0.0)) * 1000, 2)  # 2.5 mm at 1 km, zenith
    2.5
    """
    lag_km = np.asarray(lag_m, dtype=float) / 1000.0
    return EMARDSON_C * lag_km**EMARDSON_ALPHA / np.cos(np.radians(incidence_deg))


def structure_std(field: np.ndarray, lags_px: list[int]) -> np.ndarray:
    """sqrt of the structure function: RMS of ``field[p + lag] - field[p]`` along rows and
    columns, for each lag (pixels); NaN is ignored.

    Example
    -------
    >>> ramp = np.add.outer(np.arange(8.0), np.arange(8.0))  # slope 1 along both axes
    >>> structure_std(ramp, [1, 3]).tolist()
    [1.0, 3.0]
    """
    out = []
    for lag in lags_px:
        d = np.concatenate([(field[:, lag:] - field[:, :-lag]).ravel(),
                            (field[lag:] - field[:-lag]).ravel()])
        out.append(np.sqrt(np.nanmean(d.astype("float64") ** 2)))
    return np.array(out)

