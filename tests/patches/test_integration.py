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


def test_cli_on_a_two_process_cluster_equals_the_threaded_build(tiny_cube, tmp_path):
    """`isslide-cube patches --workers 2` (LocalCluster, worker processes) == client=None."""
    import xarray as xr

    from isslide_cube.cli import main
    from isslide_cube.patches import write_patches

    threaded = write_patches(tiny_cube, tmp_path / "threaded.zarr", size=64)
    assert main(["patches", str(tiny_cube), str(tmp_path / "cluster.zarr"), "--size", "64",
                 "--workers", "2"]) == 0
    ours, ref = open_patches(tmp_path / "cluster.zarr"), open_patches(tmp_path / "threaded.zarr")
    assert ours.sizes[s.SAMPLE] == threaded.patches > 0
    xr.testing.assert_identical(ours.compute(), ref.compute())


def _reads_of(data) -> list:
    """Keys of the optimised graph of ``data`` that are chunk reads of a cube variable."""
    import dask

    (opt,) = dask.optimize(data)
    return [k for k in dict(opt.__dask_graph__())
            if isinstance(k, tuple) and str(k[0]).startswith(("open_dataset-", "getitem-"))]


def test_graph_has_a_task_per_interferogram_not_per_chunk(cube_store):
    """Chunk reads run inside coarse tasks: a distributed scheduler pays per task.

    The cube of ``patch_cubes`` has 2 x 3 chunks per interferogram; the
    extraction must make one task per interferogram and variable, and the
    global map one per (y, x) tile, with no task of their own for chunk reads.
    """
    import dask

    from isslide_cube.patches import extract_patches, global_mask, move_centres

    n_ifg = int(cube_store[s.HAS_INTERFEROGRAM].sum())
    tiles = len(cube_store.chunks[s.Y]) * len(cube_store.chunks[s.X])
    assert tiles == 6
    gm = global_mask(cube_store)
    assert _reads_of(gm.data) == []
    (opt,) = dask.optimize(gm.data)
    assert len(dict(opt.__dask_graph__())) == tiles + 1  # + the store's array object
    np.testing.assert_array_equal(gm.values, (cube_store[s.MASK].values == 1).any(axis=(0, 1)))

    patches = extract_patches(cube_store, 40, move_centres(cube_store, 40))
    for name in (s.INTERFEROGRAM, s.MASK):
        data = patches[name].data
        assert _reads_of(data) == []
        windows = [k for k in dict(data.__dask_graph__()) if str(k[0]).startswith("patch-windows")]
        assert len(windows) == n_ifg
