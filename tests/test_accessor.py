"""``ds.isslide`` forwards to the plain functions, never mutates, plots with Agg."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import xarray as xr

import isslide_cube.accessor  # noqa: F401  (registers ds.isslide until __init__ imports it)
from isslide_cube import patches as P
from isslide_cube import schema as s
from isslide_cube.schema import CubeError, PatchesError

sys.path.insert(0, str(Path(__file__).parent / "patches"))
from patch_cubes import make_cube  # noqa: E402

SIZE = 40


@pytest.fixture(scope="module")
def cube():
    return make_cube()


@pytest.fixture(scope="module")
def patches(cube):
    return P.extract_patches(cube, SIZE).compute()


def test_methods_equal_the_functions(cube, patches):
    xr.testing.assert_identical(cube.isslide.global_mask(), P.global_mask(cube))
    centres = cube.isslide.move_centres(size=SIZE)
    assert centres.equals(P.move_centres(cube, SIZE))
    lazy = cube.isslide.extract_patches(SIZE, centres)
    assert lazy[s.INTERFEROGRAM].chunks is not None  # stays lazy
    xr.testing.assert_identical(lazy.compute(), patches)
    xr.testing.assert_identical(patches.isslide.split("spatial"), P.split(patches, "spatial"))
    labelled = patches.isslide.split("paper", seed=3)
    assert labelled.isslide.split_counts().equals(P.split_counts(labelled))


def test_accessor_never_mutates_and_keeps_no_state(cube, patches):
    before = patches.copy(deep=True)
    patches.isslide.split("paper")
    xr.testing.assert_identical(patches, before)
    assert s.SPLIT not in patches.coords
    acc = cube.isslide
    assert set(vars(acc)) == {"_obj"}


def test_validate_picks_the_schema(cube, patches):
    assert cube.isslide.validate()
    assert patches.isslide.validate()
    with pytest.raises(PatchesError, match="mask"):
        patches.drop_vars(s.MASK).isslide.validate()
    with pytest.raises(CubeError, match="interferogram"):
        cube.drop_vars(s.INTERFEROGRAM).isslide.validate()
    report = cube.drop_vars(s.INTERFEROGRAM).isslide.validate(raise_on_error=False)
    assert not report


def test_plot_patch_and_cube(tmp_path, cube, patches):
    moving = int(np.argmax(patches.has_move.values))
    fig = patches.isslide.plot(sample=moving, path=tmp_path / "patch.png")
    ax_phase, ax_coh = fig.axes[:2]
    assert ax_phase.images[0].get_cmap().name == "twilight"
    assert ax_phase.images[0].get_clim() == (-np.pi, np.pi)
    assert ax_coh.images[0].get_clim() == (0, 1)
    assert ax_phase.collections  # the mask outline is drawn
    assert (tmp_path / "patch.png").stat().st_size > 1000
    fig = cube.isslide.plot(window=(0, 60, 60), path=tmp_path / "cube.png")
    assert fig.axes[0].images[0].get_array().shape == (60, 60)
    fig = cube.isslide.plot_centres(size=SIZE, path=tmp_path / "centres.png")
    assert len(fig.axes[0].patches) == len(P.move_centres(cube, SIZE))
    assert matplotlib.get_backend().lower() != "tkagg"


def test_import_stays_light():
    code = ("import sys, isslide_cube, isslide_cube.accessor, xarray as xr; "
            "assert hasattr(xr.Dataset, 'isslide'); "
            "print(sorted(m for m in ('torch', 'matplotlib', 'distributed') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
