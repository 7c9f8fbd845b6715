"""Fractal terrain, radar layover/shadow from a descending pass, and land cover.

The DEM is a Gaussian random field with a power-law spectrum (spectral synthesis),
rolled off beyond ~12 km so that elevations stay Alpine (700-4000 m) whatever the
extent, and scaled to a median slope of ~27 deg. Layover and shadow follow the
first-order local-slope rule for a right-looking sensor: layover where the terrain
rises towards the sensor faster than the incidence angle, shadow where it falls away
steeper than its complement (Hanssen 2001, Radar Interferometry, section 2.4).
"""

from __future__ import annotations

import numpy as np

#: land-cover codes (truth/landcover.tif)
WATER, FOREST, MEADOW, ROCK, SNOW = 0, 1, 2, 3, 4
COVER_NAMES = ("water", "forest", "meadow", "rock", "snow")

#: Sentinel-1 descending heading over the Alps (deg clockwise from north); the sensor
#: looks right, so from the ground it sits towards azimuth heading - 90 (east-south-east).
DESCENDING_HEADING_DEG = 193.0
EARTH_RADIUS_M = 6_371_008.8


def pixel_spacing_m(resolution_deg: float, lat_deg: float) -> tuple[float, float]:
    """Ground spacing (dy, dx) in metres of a geographic pixel at latitude ``lat_deg``."""
    dy = np.deg2rad(resolution_deg) * EARTH_RADIUS_M
    return float(dy), float(dy * np.cos(np.deg2rad(lat_deg)))


def powerlaw_field(shape: tuple[int, int], rng: np.random.Generator, spacing: tuple[float, float],
                   beta: float, rolloff_m: float | None = None) -> np.ndarray:
    """Zero-mean, unit-variance Gaussian field with power spectrum ``P(k) ~ k**-beta``.

    Parameters
    ----------
    shape
        (rows, cols).
    rng
        Random generator.
    spacing
        (dy, dx) in metres.
    beta
        Spectral exponent of the 2-D power spectrum (8/3 for Kolmogorov turbulence,
        ~3.5 for mountain terrain).
    rolloff_m
        Wavelength above which the spectrum flattens (``(k**2 + k0**2)**(-beta/2)``).

    Returns
    -------
    numpy.ndarray
        float64 field of ``shape``, mean 0, std 1.

    Example
    -------
    >>> f = powerlaw_field((64, 64), np.random.default_rng(0), (30.0, 30.0), 8 / 3)
    >>> round(float(f.std()), 6), abs(float(f.mean())) < 1e-9
    (1.0, True)
    """
    ny, nx = shape
    ky = np.fft.fftfreq(ny, d=spacing[0])
    kx = np.fft.rfftfreq(nx, d=spacing[1])
    k2 = ky[:, None] ** 2 + kx[None, :] ** 2
    k0 = 0.0 if rolloff_m is None else 1.0 / rolloff_m
    k2 = k2 + k0**2
    k2[0, 0] = np.inf  # no mean
    amp = k2 ** (-beta / 4.0)
    noise = rng.standard_normal((ny, kx.size)) + 1j * rng.standard_normal((ny, kx.size))
    field = np.fft.irfft2(noise * amp, s=shape)
    field -= field.mean()
    field /= field.std()
    return field


def gradient(dem: np.ndarray, spacing: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """(dh/d_east, dh/d_north) of a north-up DEM (row 0 = north), in m/m."""
    dh_drow, dh_dcol = np.gradient(dem, spacing[0], spacing[1])
    return dh_dcol, -dh_drow


def slope_deg(dem: np.ndarray, spacing: tuple[float, float]) -> np.ndarray:
    """Terrain slope in degrees."""
    ge, gn = gradient(dem, spacing)
    return np.rad2deg(np.arctan(np.hypot(ge, gn)))


def sensor_unit(heading_deg: float = DESCENDING_HEADING_DEG) -> tuple[float, float]:
    """Horizontal unit vector (east, north) from the ground towards a right-looking sensor."""
    az = np.deg2rad(heading_deg - 90.0)
    return float(np.sin(az)), float(np.cos(az))


def layover_shadow(dem: np.ndarray, spacing: tuple[float, float], incidence_deg: float,
                   heading_deg: float = DESCENDING_HEADING_DEG) -> tuple[np.ndarray, np.ndarray]:
    """Layover and shadow masks from the local slope along the range direction.

    Parameters
    ----------
    dem
        Elevation (m), north-up.
    spacing
        (dy, dx) in metres.
    incidence_deg
        Radar incidence angle from the vertical (39 deg for the ISSLIDE scenes).
    heading_deg
        Satellite heading (193 deg for a descending pass over the Alps).

    Returns
    -------
    (layover, shadow)
        Boolean masks. Layover where the slope facing the sensor exceeds the incidence
        angle; shadow where the slope facing away exceeds ``90 - incidence``.

    Example
    -------
    >>> y, x = np.mgrid[0:8, 0:8] * 30.0
    >>> e, n = sensor_unit()
    >>> plane = np.tan(np.deg2rad(45)) * (e * x - n * y)  # rises towards the sensor at 45 deg
    >>> lay, sha = layover_shadow(plane, (30.0, 30.0), 39.0)
    >>> bool(lay.all()), bool(sha.any())
    (True, False)
    """
    ge, gn = gradient(dem, spacing)
    ue, un = sensor_unit(heading_deg)
    rise = ge * ue + gn * un  # tan of the slope towards the sensor
    inc = np.deg2rad(incidence_deg)
    return rise > np.tan(inc), -rise > np.tan(np.pi / 2 - inc)


def make_dem(shape: tuple[int, int], rng: np.random.Generator, spacing: tuple[float, float],
             median_slope_deg: float = 27.0, mean_elevation: float = 2100.0) -> np.ndarray:
    """Alpine-like fractal DEM (float32, metres).

    A power-law field (beta = 3.4, rolled off at 12 km) scaled so that the median
    slope is ``median_slope_deg``; valleys are flattened a little (erosion fills them),
    and elevations are clipped to [500, 4300] m.
    """
    field = powerlaw_field(shape, rng, spacing, beta=3.4, rolloff_m=12_000.0)
    slope = np.hypot(*gradient(field, spacing))
    scale = np.tan(np.deg2rad(median_slope_deg)) / np.median(slope)
    dem = field * scale
    # Alpine valleys are flat-bottomed: compress the lowest elevations.
    low = np.quantile(dem, 0.15)
    dem = np.where(dem < low, low - 0.35 * (low - dem), dem)
    dem = dem - dem.mean() + mean_elevation
    return np.clip(dem, 500.0, 4300.0).astype("float32")


def make_landcover(dem: np.ndarray, spacing: tuple[float, float],
                   rng: np.random.Generator) -> np.ndarray:
    """Land cover from elevation, slope and a random texture (uint8 codes).

    Forest below a tree line near 2000 m, meadow up to ~2700 m, bare rock above and on
    slopes over 40 deg, snow/glaciers above ~3300 m, lakes in flat low ground.
    """
    texture = powerlaw_field(dem.shape, rng, spacing, beta=3.0, rolloff_m=3000.0)
    slope = slope_deg(dem, spacing)
    h = dem + 150.0 * texture
    cover = np.full(dem.shape, MEADOW, dtype="uint8")
    cover[h < 2000.0] = FOREST
    cover[(h >= 2700.0) | (slope > 40.0)] = ROCK
    cover[h >= 3300.0] = SNOW
    flat_low = (slope < 4.0) & (dem < np.quantile(dem, 0.2)) & (texture > 0.8)
    cover[flat_low] = WATER
    return cover
