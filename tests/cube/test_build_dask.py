"""The build on a real Dask cluster, with a lost worker, and killed then resumed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from rasterio.features import rasterize

from isslide_cube import schema
from isslide_cube.cube import CRASH_ENV, DONE, build_cube, open_cube

from .conftest import assert_stores_equal

pytestmark = pytest.mark.slow


def _markers(store: Path) -> int:
    folder = store / DONE
    return sum(1 for p in folder.rglob("*") if p.is_file() and p.name != "zarr.json") \
        if folder.exists() else 0


def test_tiny_matches_its_files(tiny_raw, tiny_cube):
    """Synthetic tiny: every interferogram equals its GeoTIFF and every mask equals an
    independent rasterio rasterize of its shapefile."""
    ds = open_cube(tiny_cube)
    schema.validate_cube(ds)
    assert ds.interferogram.data.chunksize == (1, 1, 2, 100, 100)
    tifs = sorted((tiny_raw / "interferograms").glob("*.tif"))
    assert int(ds.has_interferogram.sum()) == len(tifs)
    moving = 0
    for tif in tifs:
        with rasterio.open(tif) as src:
            expected, transform, shape = src.read(), src.transform, src.shape
            first, second = (np.datetime64(src.tags()[t], "ns") for t in ("FIRST_DATE",
                                                                           "SECOND_DATE"))
        delay = int((second - first) / np.timedelta64(1, "D"))
        cell = ds.sel(start_date=first, delay=delay)
        np.testing.assert_array_equal(cell.interferogram.values, expected, err_msg=tif.name)
        frame = gpd.read_file(tiny_raw / "annotations" / f"{tif.stem}.shp")
        oracle = (rasterize([(g, 1) for g in frame.to_crs(ds.rio.crs).geometry],
                            out_shape=shape, transform=transform, dtype="uint8")
                  if len(frame) else np.zeros(shape, "uint8"))
        np.testing.assert_array_equal(cell.mask.values, oracle, err_msg=tif.name)
        moving += int(oracle.sum())
    assert moving > 0
    assert schema.LAYOVER in ds and schema.ZONE in ds
    assert set(np.unique(ds.zone.values)) >= {1, 2, 3}  # the three parks are on the grid


def test_two_worker_cluster_equals_single_threaded(tiny_raw, tiny_cube, tmp_path,
                                                   cluster_client):
    store = tmp_path / "cluster.zarr"
    address = cluster_client.scheduler.address  # a scheduler address works as well as a Client
    summary = build_cube(tiny_raw, store, chunks=100, client=address)
    assert summary.written == summary.interferograms
    assert_stores_equal(open_cube(store), open_cube(tiny_cube))


def test_a_worker_killed_mid_build_changes_nothing(tiny_raw, tiny_cube, tmp_path,
                                                   cluster_client):
    store = tmp_path / "killed.zarr"
    victim = next(iter(cluster_client.run(os.getpid).values()))
    errors: list[BaseException] = []

    def build() -> None:
        try:
            build_cube(tiny_raw, store, chunks=100, client=cluster_client)
        except BaseException as err:  # surfaced below
            errors.append(err)

    thread = threading.Thread(target=build)
    thread.start()
    deadline = time.monotonic() + 120
    while _markers(store) < 1 and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.002)
    mid_build = thread.is_alive()
    os.kill(victim, signal.SIGKILL)
    thread.join(300)
    assert not errors, errors
    assert mid_build, "the build ended before a worker could be killed"
    assert_stores_equal(open_cube(store), open_cube(tiny_cube))
    cluster_client.wait_for_workers(2, timeout=60)  # the nanny restarted it


def test_cli_killed_then_resumed_equals_uninterrupted(tiny_raw, tiny_cube, tmp_path):
    store = tmp_path / "cli.zarr"
    command = [sys.executable, "-m", "isslide_cube.cli", "build", str(tiny_raw), str(store),
               "--chunk", "100", "--workers", "1"]
    # SIGKILL the CLI and its worker (its own process group) after 5 interferograms
    crashed = subprocess.run(command, env={**os.environ, CRASH_ENV: "5"},
                             start_new_session=True, capture_output=True, text=True,
                             timeout=300)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert 5 <= _markers(store) < 18
    with pytest.raises(schema.IncompleteCubeError, match=f"isslide-cube build {tiny_raw}"):
        open_cube(store)
    resumed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "interferograms: 18" in resumed.stdout and "resumed" in resumed.stdout
    assert_stores_equal(open_cube(store), open_cube(tiny_cube))
