"""A tiny synthetic raw dataset, generated once per test session."""

from __future__ import annotations

import pytest

from isslide_cube.synthetic import generate


@pytest.fixture(scope="session")
def tiny_raw(tmp_path_factory):
    """The ``tiny`` preset, seed 0 (a few seconds)."""
    return generate(tmp_path_factory.mktemp("synthetic") / "raw", preset="tiny", seed=0)
