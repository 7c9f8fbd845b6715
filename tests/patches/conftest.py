"""Fixtures of the patches tests: the cube of ``patch_cubes.make_cube``, in memory and in Zarr."""

from __future__ import annotations

import pytest
import xarray as xr
from patch_cubes import make_cube, write_and_open


@pytest.fixture(scope="session")
def cube() -> xr.Dataset:
    return make_cube()


@pytest.fixture(scope="session")
def cube_store(tmp_path_factory) -> xr.Dataset:
    return write_and_open(make_cube(), tmp_path_factory.mktemp("cube") / "cube.zarr")
