"""Atmosphere: power-law turbulence calibrated on Emardson et al. (2003), a height-correlated term."""

import numpy as np
import pytest

from isslide_cube.synthetic import atmosphere


def test_turbulence_has_the_power_law_spectrum():
    rng = np.random.default_rng(0)
    slopes = [atmosphere.radial_psd_slope(
        atmosphere.turbulent_screen((512, 512), rng, (100.0, 100.0), 0.02), 100.0, 0.02, 0.05)
        for _ in range(4)]
    # fit band: wavelengths 2-5 km, between the inner (0.25 km) and outer (300 km) scales
    print(f"turbulence PSD slope {np.mean(slopes):.2f} (square-root structure function: -3)")
    assert np.mean(slopes) == pytest.approx(-atmosphere.TURBULENCE_BETA, abs=0.35)


def test_interferogram_delay_follows_emardsons_structure_function():
    """Emardson et al. (2003): an interferogram's delay between points L km apart has a
    standard deviation of 2.5 mm * sqrt(L) (zenith). The median over interferograms of the
    generator's default atmosphere stays within 30 % of it from 150 m to 3 km."""
    rng = np.random.default_rng(3)
    lags_m = np.array([150, 300, 600, 1200, 3000])
    stds = []
    for _ in range(12):
        first, second = atmosphere.make_acquisitions(2, (256, 256), (30.0, 30.0), rng,
                                                     stratified_std=0.0)
        field = atmosphere.delay_difference(first, second, np.zeros((256, 256), np.float32), 0.0)
        stds.append(atmosphere.structure_std(field, (lags_m // 30).tolist()))
    ratio = np.median(stds, axis=0) / atmosphere.emardson_std(lags_m)
    print("ours / Emardson at", lags_m.tolist(), "m:", ratio.round(2).tolist())
    assert np.all((ratio > 0.7) & (ratio < 1.3))
    assert np.all(np.diff(np.median(stds, axis=0)) > 0)  # grows with distance


@pytest.mark.parametrize("std", [0.005, 0.02])
def test_turbulence_std_is_the_requested_one(std):
    rng = np.random.default_rng(1)
    # a scene much larger than the outer scale (2,048 km against 300 km) shows the full variance
    stds = [atmosphere.turbulent_screen((512, 512), rng, (4000.0, 4000.0), std).std()
            for _ in range(4)]
    print(f"requested {std * 100:.1f} cm, measured {np.mean(stds) * 100:.2f} cm")
    assert np.mean(stds) == pytest.approx(std, rel=0.25)


def test_acquisitions_draw_std_in_range_and_stratified_term():
    rng = np.random.default_rng(2)
    acq = atmosphere.make_acquisitions(12, (64, 64), (30.0, 30.0), rng)
    assert all(0.005 <= a.turbulence_std <= 0.02 for a in acq)
    ks = np.array([a.stratified_k for a in acq])
    assert np.abs(ks).max() < 6e-5 and ks.std() > 2e-6
    dem = np.linspace(1000, 3000, 64 * 64, dtype="float32").reshape(64, 64)
    diff = atmosphere.delay_difference(acq[0], acq[1], dem, 2000.0)
    turb = atmosphere.upsample(acq[1].screen - acq[0].screen, dem.shape)
    # what is left after the turbulence is exactly K (h - h_ref)
    k_fit = np.polyfit((dem - 2000.0).ravel(), (diff - turb).ravel(), 1)[0]
    assert k_fit == pytest.approx(acq[1].stratified_k - acq[0].stratified_k, rel=1e-3)


def test_upsample_is_bilinear_and_keeps_constants():
    c = np.arange(12, dtype="float32").reshape(3, 4)
    up = atmosphere.upsample(c, (12, 16))
    assert up.shape == (12, 16) and up.dtype == np.float32
    assert up.min() >= c.min() and up.max() <= c.max()
    np.testing.assert_allclose(atmosphere.upsample(np.full((3, 4), 2.5), (9, 8)), 2.5)
    # linear ramps are reproduced exactly away from the border
    np.testing.assert_allclose(np.diff(up[5, 2:-2]), 0.25, atol=1e-6)
