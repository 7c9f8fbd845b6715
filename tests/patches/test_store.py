"""write_patches / open_patches on real Zarr stores, with and without a Dask cluster."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from patch_cubes import make_cube, write_and_open

from isslide_cube import schema as s
from isslide_cube.patches import (
    SAMPLE_CHUNK,
    extract_patches,
    open_patches,
    split,
    split_counts,
    write_patches,
)
from isslide_cube.schema import CubeError, PatchesError

SIZE = 40


@pytest.fixture(scope="module")
def written(cube_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("patches") / "patches.zarr"
    summary = write_patches(cube_store, out, size=SIZE, split="paper", seed=0)
    return out, summary


def test_store_round_trips_extraction_and_split(cube_store, written):
    out, _ = written
    stored = open_patches(out)
    expected = split(extract_patches(cube_store, SIZE).compute(), "paper", seed=0)
    xr.testing.assert_equal(stored.compute(), expected)
    assert stored.attrs["patch_size"] == SIZE and stored.attrs["crs"] == expected.attrs["crs"]
    assert stored[s.SPLIT].attrs["scheme"] == "paper"
    assert stored.zone.dtype.kind == "U" and stored[s.SPLIT].dtype.kind == "U"


def test_store_is_chunked_along_sample(written):
    stored = open_patches(written[0])
    assert stored[s.INTERFEROGRAM].encoding["chunks"] == (SAMPLE_CHUNK, 2, SIZE, SIZE)
    assert stored[s.MASK].encoding["chunks"] == (SAMPLE_CHUNK, SIZE, SIZE)
    import zarr

    codecs = zarr.open_array(written[0] / s.INTERFEROGRAM, mode="r").metadata.codecs
    assert any(type(c).__name__ == "BloscCodec" and c.cname.value == "lz4" for c in codecs)
    train = stored.sel(sample=stored[s.SPLIT] == "train")  # coords are loaded: selection works
    assert train.sizes[s.SAMPLE] > 0


def test_summary_counts(written):
    out, summary = written
    stored = open_patches(out)
    counts = split_counts(stored)
    assert summary.patches == stored.sizes[s.SAMPLE]
    assert summary.with_move == int(stored.has_move.sum())
    assert summary.without_move == summary.patches - summary.with_move
    assert summary.locations == len(np.unique(stored.location))
    assert summary.interferograms == 15
    assert summary.sides["train"]["patches"] == counts.loc["train", "patches"]
    text = str(summary)
    for word in ("locations", "with move", "without move", "train", "eval", "unused"):
        assert word in text
    assert f"{summary.patches:>8,}" in text


def test_existing_store_needs_overwrite(cube_store, written):
    out, _ = written
    with pytest.raises(PatchesError, match="already exists.*overwrite"):
        write_patches(cube_store, out, size=SIZE)


def test_no_split_and_other_schemes(cube_store, tmp_path):
    summary = write_patches(cube_store, tmp_path / "p.zarr", size=SIZE, split="none")
    assert s.SPLIT not in open_patches(tmp_path / "p.zarr").coords and not summary.sides
    summary = write_patches(cube_store, tmp_path / "p.zarr", size=SIZE, split="spatial",
                            overwrite=True, eval_zones=("ecrins",))
    stored = open_patches(tmp_path / "p.zarr")
    assert set(stored.zone.values[stored[s.SPLIT].values == "eval"]) == {"ecrins"}
    with pytest.raises(PatchesError, match="unknown split scheme"):
        write_patches(cube_store, tmp_path / "q.zarr", size=SIZE, split="kfold")


def test_empty_global_mask_writes_zero_patches(tmp_path):
    cube = write_and_open(make_cube(moves=()), tmp_path / "cube.zarr")
    summary = write_patches(cube, tmp_path / "p.zarr", size=SIZE)
    assert summary.patches == 0 and summary.locations == 0
    assert "global annotation map is empty" in str(summary)
    stored = open_patches(tmp_path / "p.zarr")
    assert stored.sizes[s.SAMPLE] == 0


def test_cube_without_mask(tmp_path):
    cube = make_cube(with_mask=False)
    with pytest.raises(CubeError, match="without annotations"):
        write_patches(cube, tmp_path / "p.zarr", size=SIZE)
    assert not (tmp_path / "p.zarr").exists()


def test_open_missing_store(tmp_path):
    with pytest.raises(PatchesError, match="no patches store.*isslide-cube patches"):
        open_patches(tmp_path / "nope.zarr")


@pytest.mark.slow
def test_write_on_a_local_cluster_equals_default_scheduler(cube_store, written, tmp_path):
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        summary = write_patches(cube_store, tmp_path / "p.zarr", size=SIZE, client=client,
                                progress=True)
    xr.testing.assert_equal(open_patches(tmp_path / "p.zarr").compute(),
                            open_patches(written[0]).compute())
    assert str(summary).splitlines()[1:] == str(written[1]).splitlines()[1:]
