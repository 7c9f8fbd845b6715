"""Fixtures for tests/ml: small patches stores in the exact layout of the patches contract.

The patches are learnable on purpose: a move is a smooth phase bubble (a Gaussian
bump of 1.5-3 rad on a noisy, randomly offset background) and its mask is where
the bump exceeds half its height; a quarter of the samples show no move, a fifth
have a no-data (NaN) corner. Written with xarray to a real Zarr v3 store chunked
along ``sample``, like ``isslide_cube.patches.write_patches``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from isslide_cube import schema

WGS84_WKT = ('GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563]],'
             'PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433],AUTHORITY["EPSG","4326"]]')


def blob_patches(n: int = 64, size: int = 32, seed: int = 0, *, split: bool = True,
                 train_fraction: float = 0.75) -> xr.Dataset:
    """An in-memory patches dataset of ``n`` phase-bubble samples."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    ifg = np.empty((n, 2, size, size), np.float32)
    mask = np.zeros((n, size, size), np.uint8)
    has_move = rng.random(n) >= 0.25
    for i in range(n):
        phase = rng.uniform(-np.pi, np.pi) + rng.normal(0, 0.35, (size, size))
        coherence = np.clip(rng.uniform(0.4, 0.8) + rng.normal(0, 0.1, (size, size)), 0, 1)
        if has_move[i]:
            cy, cx = rng.uniform(size * 0.25, size * 0.75, 2)
            sigma = rng.uniform(size * 0.08, size * 0.18)
            bump = rng.uniform(1.5, 3.0) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))
            phase = phase + bump
            mask[i] = bump > bump.max() / 2
        ifg[i, 0] = coherence
        ifg[i, 1] = (phase + np.pi) % (2 * np.pi) - np.pi
        if rng.random() < 0.2:  # no-data corner (layover, swath edge)
            ifg[i, :, : size // 4, : size // 4] = np.nan
            mask[i, : size // 4, : size // 4] = 0
    dates = pd.date_range("2018-07-02", periods=8, freq="6D")
    start = dates[rng.integers(0, len(dates), n)]
    delay = rng.choice([6, 12, 18], n)
    coords = {
        schema.BAND: list(schema.BANDS),
        schema.START_DATE: (schema.SAMPLE, start.values.astype("datetime64[ns]")),
        schema.DELAY: (schema.SAMPLE, delay.astype("int64")),
        schema.END_DATE: (schema.SAMPLE, (start + pd.to_timedelta(delay, "D")).values.astype("datetime64[ns]")),
        schema.LOCATION: (schema.SAMPLE, rng.integers(0, 10, n).astype("int64")),
        schema.ZONE: (schema.SAMPLE, np.array(schema.ZONES)[rng.integers(0, 4, n)].astype(str)),
        schema.ROW: (schema.SAMPLE, rng.integers(0, 500, n).astype("int64")),
        schema.COL: (schema.SAMPLE, rng.integers(0, 500, n).astype("int64")),
        schema.LAT: (schema.SAMPLE, rng.uniform(45, 46, n)),
        schema.LON: (schema.SAMPLE, rng.uniform(6, 7, n)),
        schema.HAS_MOVE: (schema.SAMPLE, has_move),
        schema.MOVING_FRACTION: (schema.SAMPLE, mask.mean(axis=(1, 2)).astype(np.float32)),
    }
    if split:
        n_train = int(round(n * train_fraction))
        coords[schema.SPLIT] = (schema.SAMPLE, np.array(["train"] * n_train + ["eval"] * (n - n_train)))
    return xr.Dataset(
        {schema.INTERFEROGRAM: (schema.PATCH_DIMS, ifg),
         schema.MASK: ((schema.SAMPLE, schema.Y, schema.X), mask)},
        coords=coords,
        attrs={"crs": WGS84_WKT, "transform": [6.0, 0.001, 0.0, 46.0, 0.0, -0.001],
               "patch_size": size},
    )


def write_blob_patches(path: Path, n: int = 64, size: int = 32, seed: int = 0, *,
                       chunk: int = 16, split: bool = True) -> Path:
    """Write :func:`blob_patches` as a Zarr store chunked by ``chunk`` samples."""
    ds = blob_patches(n, size, seed, split=split)
    encoding = {schema.INTERFEROGRAM: {"chunks": (chunk, 2, size, size)},
                schema.MASK: {"chunks": (chunk, size, size)}}
    with warnings.catch_warnings():  # fixed-width strings (zone, split) lack a v3 spec yet
        warnings.simplefilter("ignore")
        ds.to_zarr(path, mode="w", encoding=encoding, consolidated=False)
    return path


@pytest.fixture(autouse=True)
def _modest_torch_threads():
    # One thread: on the shared 2-core machine, OpenMP's two threads spin against other
    # jobs and a training step gets 10-30x slower than with one.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def patches_store(tmp_path_factory) -> Path:
    """64 samples of 32 x 32, chunked by 16, split 48 train / 16 eval."""
    return write_blob_patches(tmp_path_factory.mktemp("ml") / "patches.zarr")


@pytest.fixture(scope="session")
def patches_store_nosplit(tmp_path_factory) -> Path:
    return write_blob_patches(tmp_path_factory.mktemp("ml") / "nosplit.zarr", n=16, split=False)
