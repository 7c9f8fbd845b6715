"""A tiny patches store in the contract format (DESIGN.md section 4), made by code
(helpers: the fixtures in this folder's conftest use them).

Each patch holds a smooth phase bump (a few fringes) over a disk-shaped move on a noisy,
coherent background, so that a network learns something in a couple of epochs.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from isslide_cube import schema as s


def make_patches(n_train: int = 40, n_eval: int = 16, size: int = 32, seed: int = 0,
                 n_unused: int = 4) -> xr.Dataset:
    """A patches dataset with ``split`` (train / eval / unused), every coord of the schema."""
    rng = np.random.default_rng(seed)
    n = n_train + n_eval + n_unused
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    ifg = np.empty((n, 2, size, size), np.float32)
    mask = np.zeros((n, size, size), np.uint8)
    for i in range(n):
        phase = rng.normal(0, 0.6, (size, size))
        coh = np.clip(rng.normal(0.75, 0.1, (size, size)), 0, 1)
        if i < n_train + n_eval:  # unused patches have no move
            cy, cx = rng.uniform(size * 0.3, size * 0.7, 2)
            r = rng.uniform(size * 0.12, size * 0.3)
            d2 = (yy - cy) ** 2 + (xx - cx) ** 2
            mask[i] = d2 <= r**2
            phase += rng.uniform(4, 12) * np.exp(-d2 / (2 * (r / 1.6) ** 2))
        ifg[i, 0] = coh
        ifg[i, 1] = np.angle(np.exp(1j * phase))
    ifg[0, :, 0, 0] = np.nan  # one no-data pixel
    dates = pd.date_range("2018-07-02", periods=8, freq="6D")
    start = dates[rng.integers(0, 5, n)]
    delay = rng.choice([6, 12, 18], n).astype(np.int64)
    split = np.array(["train"] * n_train + ["eval"] * n_eval + ["unused"] * n_unused)
    zone = np.where(split == "eval", "queyras", rng.choice(["vanoise", "ecrins", "other"], n))
    coords = {
        s.BAND: list(s.BANDS),
        s.START_DATE: (s.SAMPLE, start.values),
        s.DELAY: (s.SAMPLE, delay),
        s.END_DATE: (s.SAMPLE, (start + pd.to_timedelta(delay, "D")).values),
        s.LOCATION: (s.SAMPLE, np.arange(n) % 7),
        s.ZONE: (s.SAMPLE, zone),
        s.ROW: (s.SAMPLE, rng.integers(0, 500, n)),
        s.COL: (s.SAMPLE, rng.integers(0, 500, n)),
        s.LAT: (s.SAMPLE, rng.uniform(44.5, 45.5, n)),
        s.LON: (s.SAMPLE, rng.uniform(6.5, 7.0, n)),
        s.HAS_MOVE: (s.SAMPLE, mask.any(axis=(1, 2))),
        s.MOVING_FRACTION: (s.SAMPLE, mask.mean(axis=(1, 2)).astype(np.float32)),
        s.SPLIT: (s.SAMPLE, split),
    }
    return xr.Dataset(
        {s.INTERFEROGRAM: ((s.SAMPLE, s.BAND, s.Y, s.X), ifg),
         s.MASK: ((s.SAMPLE, s.Y, s.X), mask)},
        coords=coords,
        attrs={"crs": "EPSG:4326", "transform": [6.5, 1e-3, 0.0, 45.5, 0.0, -1e-3],
               "patch_size": size},
    )


def write_patches_store(path: Path, **kw) -> Path:
    with warnings.catch_warnings():  # fixed-length strings have no Zarr v3 spec yet
        warnings.filterwarnings("ignore", message=".*does not have a Zarr V3 specification")
        make_patches(**kw).chunk({s.SAMPLE: 256}).to_zarr(path, mode="w", consolidated=False)
    return path
