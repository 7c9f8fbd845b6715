"""Synthetic ``tiny`` raw data -> build_cube -> `isslide-cube patches` -> open_patches."""

from __future__ import annotations

import numpy as np
import pytest

from isslide_cube import schema as s
from isslide_cube.patches import open_patches, split_counts

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_cube(tmp_path_factory):
    from isslide_cube import synthetic
    from isslide_cube.cube import build_cube

    root = tmp_path_factory.mktemp("tiny")
    raw = synthetic.generate(root / "raw", preset="tiny", seed=0)
    build_cube(raw, root / "cube.zarr")
    return root / "cube.zarr"


def test_cli_writes_split_patches_of_a_built_cube(tiny_cube, tmp_path, capsys):
    from isslide_cube.cli import main
    from isslide_cube.cube import open_cube

    out = tmp_path / "patches.zarr"
    size = 64
    assert main(["patches", str(tiny_cube), str(out), "--size", str(size), "--workers", "1"]) == 0
    printed = capsys.readouterr().out
    assert "locations" in printed and "train" in printed and "eval" in printed

    cube = open_cube(tiny_cube)
    patches = open_patches(out)
    s.validate_patches(patches)
    n_ifg = int(cube[s.HAS_INTERFEROGRAM].sum())
    n_loc = len(np.unique(patches.location))
    assert patches.sizes[s.SAMPLE] == n_loc * n_ifg

    # every annotated pixel of the global map lies in some window
    gm = (cube[s.MASK].values == 1).any(axis=(0, 1))
    covered = np.zeros_like(gm)
    for r, c in set(zip(patches.row.values.tolist(), patches.col.values.tolist(), strict=True)):
        covered[r:r + size, c:c + size] = True
    assert gm.any() and not (gm & ~covered).any()

    # a few patches equal a plain isel of the cube (the naive oracle)
    for i in np.linspace(0, patches.sizes[s.SAMPLE] - 1, 7).astype(int):
        one = patches.isel(sample=i)
        window = {s.START_DATE: one.start_date.values, s.DELAY: int(one.delay)}
        region = {s.Y: slice(int(one.row), int(one.row) + size),
                  s.X: slice(int(one.col), int(one.col) + size)}
        ref = cube.sel(window).isel(region)
        np.testing.assert_array_equal(one.interferogram.values, ref.interferogram.values)
        np.testing.assert_array_equal(one.mask.values, (ref.mask.values == 1).astype("uint8"))

    counts = split_counts(patches)
    assert counts.loc["eval", "patches"] > 0 and counts.loc["train", "patches"] > 0
    assert set(patches.zone.values[patches.split.values == "eval"]) == {"queyras"}
    assert str(counts.loc["train", "patches"]) in printed


def test_counts_replay_matches_the_generator(tiny_cube):
    """benchmarks.patches_counts --simulate replays the generator's annotations exactly."""
    import sys
    from pathlib import Path

    from isslide_cube.cube import open_cube

    sys.path.insert(0, str(Path(__file__).parents[2]))
    from benchmarks.patches_counts import counts, simulate_cube

    replay = simulate_cube("tiny", seed=0)
    cube = open_cube(tiny_cube)
    np.testing.assert_array_equal(replay.mask.values, cube.mask.values)
    np.testing.assert_array_equal(replay.zone.values, cube.zone.values)
    ours, _ = counts(replay, 64)
    assert ours["patches"] == ours["locations"] * int(cube.has_interferogram.sum())
