"""Fixtures of tests/evaluation: a tiny patches store on disk (see :mod:`eval_patches`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from eval_patches import write_patches_store


@pytest.fixture(scope="session")
def patches_store(tmp_path_factory) -> Path:
    return write_patches_store(tmp_path_factory.mktemp("evaluation") / "patches.zarr")
