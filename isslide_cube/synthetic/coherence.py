"""True (expected) interferometric coherence: temporal decorrelation per land cover.

Each land cover decorrelates exponentially with the delay towards a long-term floor,
``gamma(dt) = (g0 - ginf) * exp(-dt / tau) + ginf`` (Rocca 2007, "Modeling
interferogram stacks"), times per-acquisition weather factors (a rainy or windy date
lowers the coherence of every pair it is in), a fixed spatial texture, and a loss in
layover (mixed scatterers) and shadow (noise only).
"""

from __future__ import annotations

import numpy as np

from isslide_cube.synthetic.terrain import FOREST, MEADOW, ROCK, SNOW, WATER

#: land cover -> (g0, ginf, tau in days). Summer in the Alps: rock stays coherent,
#: meadows decorrelate in weeks, forests in days, snow/glaciers melt, water never.
COVER_PARAMS: dict[int, tuple[float, float, float]] = {
    WATER: (0.0, 0.0, 1.0),
    FOREST: (0.45, 0.08, 6.0),
    MEADOW: (0.80, 0.30, 20.0),
    ROCK: (0.92, 0.65, 60.0),
    SNOW: (0.35, 0.05, 4.0),
}
LAYOVER_COHERENCE = 0.15
SHADOW_COHERENCE = 0.0


def temporal_coherence(cover: int, delay_days: float) -> float:
    """Expected coherence of one land cover after ``delay_days``.

    Example
    -------
    >>> round(temporal_coherence(ROCK, 6), 3), temporal_coherence(WATER, 6)
    (0.894, 0.0)
    """
    g0, ginf, tau = COVER_PARAMS[int(cover)]
    return float((g0 - ginf) * np.exp(-delay_days / tau) + ginf)


def coherence_lut(delay_days: float) -> np.ndarray:
    """Coherence indexed by land-cover code for one delay (float32)."""
    return np.array([temporal_coherence(c, delay_days) for c in sorted(COVER_PARAMS)],
                    dtype="float32")


def true_coherence(cover: np.ndarray, delay_days: float, weather: tuple[float, float],
                   texture: np.ndarray, layover: np.ndarray | None = None,
                   shadow: np.ndarray | None = None) -> np.ndarray:
    """Expected coherence map of one pair (float32 in [0, 1]).

    Parameters
    ----------
    cover
        Land-cover codes (uint8).
    delay_days
        Temporal baseline.
    weather
        Factors in (0, 1] of the two acquisitions.
    texture
        Fixed spatial factor in (0, 1] (soil moisture, vegetation density...).
    layover, shadow
        Masks where the coherence is replaced by the layover/shadow value.
    """
    gamma = coherence_lut(delay_days)[cover] * np.float32(weather[0] * weather[1]) * texture
    if layover is not None:
        gamma = np.where(layover, np.float32(LAYOVER_COHERENCE), gamma)
    if shadow is not None:
        gamma = np.where(shadow, np.float32(SHADOW_COHERENCE), gamma)
    return np.clip(gamma, 0.0, 1.0).astype("float32")


def gradient_decorrelation(phase_gradient: np.ndarray, look_extent_px: float = 1.0) -> np.ndarray:
    """Coherence factor of a phase ramp across one multilook cell: ``|sinc|`` of the
    phase excursion over the cell (fast moves decorrelate into noise).

    Example
    -------
    >>> float(gradient_decorrelation(np.array([0.0]))[0])
    1.0
    >>> round(float(gradient_decorrelation(np.array([2 * np.pi]))[0]), 6)
    0.0
    """
    return np.abs(np.sinc(phase_gradient * look_extent_px / (2 * np.pi))).astype("float32")
