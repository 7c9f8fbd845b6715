"""Shared fixtures of the kernel tests: random masks of many shapes and densities."""

from __future__ import annotations

import numpy as np
import pytest

SHAPES = [(1, 1), (1, 9), (9, 1), (2, 2), (7, 13), (31, 17), (64, 64), (100, 100), (37, 129)]
DENSITIES = [0.0, 0.02, 0.3, 0.7, 0.97, 1.0]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


def random_mask(rng: np.random.Generator, shape: tuple[int, ...], density: float) -> np.ndarray:
    """Bool mask with about ``density`` foreground."""
    return rng.random(shape) < density


def blob_mask(rng: np.random.Generator, shape: tuple[int, int], threshold: float = 0.3) -> np.ndarray:
    """Smooth random blobs (like moving areas), foreground where smoothed noise > threshold."""
    from scipy import ndimage as ndi

    noise = ndi.gaussian_filter(rng.standard_normal(shape), 3.0)
    return noise > threshold * noise.std()
