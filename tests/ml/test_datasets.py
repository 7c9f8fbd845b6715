"""PatchDataset over a real Zarr patches store: values, metadata, chunk reads, workers."""

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from isslide_cube.ml.chunks import ChunkPlan
from isslide_cube.ml.datasets import EpochSampler, PatchDataset
from isslide_cube.ml.transforms import augmentation, to_network_input
from isslide_cube.schema import TrainingError


@pytest.fixture(scope="module")
def store(patches_store):
    return xr.open_zarr(patches_store, chunks=None, consolidated=False).load()


@pytest.mark.parametrize("in_memory", [True, False])
def test_samples_are_the_store_encoded(patches_store, store, in_memory):
    ds = PatchDataset(patches_store, split="eval", in_memory=in_memory)
    expected = np.flatnonzero(store.split.values == "eval")
    np.testing.assert_array_equal(ds.indices, expected)
    assert len(ds) == 16 and ds.in_channels == 3 and ds.n_times == 1
    for pos in (0, 7, 15):
        s = ds[pos]
        i = int(expected[pos])
        assert s["image"].dtype == torch.float32 and s["image"].shape == (3, 32, 32)
        assert s["mask"].dtype == torch.float32 and s["mask"].shape == (1, 32, 32)
        np.testing.assert_array_equal(s["image"].numpy(),
                                      to_network_input(store.interferogram.values[i]))
        np.testing.assert_array_equal(s["mask"][0].numpy(), store["mask"].values[i])
        assert s["index"] == i
        assert s["start_date"] == pd.Timestamp(store.start_date.values[i]).strftime("%Y-%m-%d")
        for name in ("delay", "location", "row", "col"):
            assert s[name] == int(store[name].values[i])
        assert s["zone"] == str(store.zone.values[i])
    with pytest.raises(IndexError):
        ds[16]


def test_nodata_is_all_zero_input_and_flagged(patches_store, store):
    ds = PatchDataset(patches_store, split=None, validity=True)
    nan_samples = np.flatnonzero(np.isnan(store.interferogram.values).any(axis=(1, 2, 3)))
    assert len(nan_samples), "fixture should hold no-data corners"
    s = ds[int(nan_samples[0])]
    nodata = np.isnan(store.interferogram.values[nan_samples[0]]).any(axis=0)
    assert ds.in_channels == 4 and s["image"].shape[0] == 4
    assert torch.all(s["image"][:, torch.from_numpy(nodata)] == 0)
    np.testing.assert_array_equal(s["image"][3].numpy(), (~nodata).astype(np.float32))
    assert not torch.isnan(s["image"]).any()


def test_streaming_reads_each_chunk_once_per_epoch(patches_store):
    ds = PatchDataset(patches_store, split=None, in_memory=False, buffer_chunks=2)
    sampler = ds.sampler(seed=1)
    for epoch in range(2):
        sampler.set_epoch(epoch)
        reads_before = ds._chunk_reader().reads
        order = list(sampler)
        assert sorted(order) == list(range(len(ds)))
        for pos in order:
            ds[pos]
        reads = ds._chunk_reader().reads - reads_before
        # 64 samples / 16 per chunk; later epochs may find a chunk still in the cache
        assert reads == 4 if epoch == 0 else 1 <= reads <= 4


def test_in_memory_reads_each_chunk_once(patches_store):
    ds = PatchDataset(patches_store, split="train", in_memory=True)
    assert ds._reader.reads == 3  # 48 train samples lie in chunks 0-2
    assert ds.chunk_of() is None


def test_sampler_is_seeded_per_epoch_and_chunk_aware():
    chunk_of = np.repeat(np.arange(6), 10)
    s = EpochSampler(60, chunk_of=chunk_of, seed=3, buffer_chunks=2)
    first = list(s)
    assert list(s) == first and sorted(first) == list(range(60))
    s.set_epoch(1)
    assert list(s) != first
    # each run of 20 samples comes from exactly 2 chunks
    for start in range(0, 60, 20):
        assert len(set(chunk_of[first[start:start + 20]])) == 2
    other = EpochSampler(60, chunk_of=chunk_of, seed=3, buffer_chunks=2)
    other.load_state_dict({"seed": 3, "epoch": 1})
    assert list(other) == list(s)
    assert list(EpochSampler(5, shuffle=False)) == [0, 1, 2, 3, 4]


def _epoch(ds, num_workers, epoch=1):
    sampler = ds.sampler(seed=7)
    sampler.set_epoch(epoch)
    ds.set_epoch(epoch)
    loader = torch.utils.data.DataLoader(ds, batch_size=8, sampler=sampler, num_workers=num_workers)
    return [(b["index"], b["image"], b["mask"]) for b in loader]


@pytest.mark.slow
@pytest.mark.parametrize("in_memory", [False, True])
def test_two_workers_yield_the_same_samples_as_none(patches_store, in_memory):
    ds = PatchDataset(patches_store, split="train", in_memory=in_memory,
                      transform=augmentation(phase_offset=True, flips=True, jitter=3), seed=5)
    serial, parallel = _epoch(ds, 0), _epoch(ds, 2)
    assert len(serial) == len(parallel) == 6
    for (i0, x0, m0), (i2, x2, m2) in zip(serial, parallel, strict=True):
        assert torch.equal(i0, i2) and torch.equal(x0, x2) and torch.equal(m0, m2)
    assert not torch.equal(_epoch(ds, 0, epoch=2)[0][1], serial[0][1])  # a new epoch, new draws


def test_augmentation_depends_on_seed_epoch_and_sample(patches_store):
    ds = PatchDataset(patches_store, split="train", transform=augmentation(), seed=0)
    a = ds[3]["image"]
    assert torch.equal(a, ds[3]["image"])
    ds.set_epoch(1)
    assert not torch.equal(a, ds[3]["image"])
    # coherence is not augmented by the phase offset
    assert torch.equal(a[0], ds[3]["image"][0])


def test_pickles_without_open_handles(patches_store):
    ds = PatchDataset(patches_store, split="eval", in_memory=False)
    ds[0]
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._ds is None and not clone._cache
    assert torch.equal(clone[5]["image"], ds[5]["image"])


def test_in_memory_dataset_object_is_accepted(store):
    ds = PatchDataset(store.isel(sample=slice(0, 10)), split=None)
    assert len(ds) == 10 and ds.path is None
    np.testing.assert_array_equal(ds[9]["mask"][0].numpy(), store["mask"].values[9])


def test_missing_split_says_how_to_make_one(patches_store_nosplit):
    with pytest.raises(TrainingError, match="--split paper"):
        PatchDataset(patches_store_nosplit, split="train")
    assert len(PatchDataset(patches_store_nosplit, split=None)) == 16


def test_missing_store_and_subset(tmp_path, patches_store):
    with pytest.raises(TrainingError, match="does not exist"):
        PatchDataset(tmp_path / "nope.zarr")
    ds = PatchDataset(patches_store, split="train", max_samples=10, seed=1)
    assert len(ds) == 10 and np.all(np.diff(ds.indices) > 0)


def _per_sample(ds, pos):
    """The per-sample definition: transform(raw, rng of (seed, epoch, index)), then encode."""
    from isslide_cube.ml.datasets import encode

    sample = {k: np.array(v) for k, v in ds.raw(pos).items()}
    if ds.transform is not None:
        rng = np.random.default_rng((ds.seed, ds.epoch, int(ds.indices[pos])))
        sample = ds.transform(sample, rng)
    return encode(sample, ds.validity)


@pytest.mark.parametrize("in_memory", [True, False])
def test_batched_fetch_equals_per_sample_fetch(patches_store, in_memory):
    from isslide_cube.ml.transforms import Compose, PhaseOffset

    for transform in (augmentation(), augmentation(phase_offset=True, flips=True, jitter=3),
                      Compose((PhaseOffset(p=0.5),))):
        ds = PatchDataset(patches_store, split=None, in_memory=in_memory, validity=True,
                          transform=transform, seed=4)
        ds.set_epoch(2)
        positions = [5, 60, 17, 16, 33, 2, 47, 63]  # several chunks, some samples with gaps
        batch = ds.__getitems__(positions)
        for pos, got in zip(positions, batch, strict=True):
            want = _per_sample(ds, pos)
            assert torch.equal(got["image"], want["image"]) and torch.equal(got["mask"], want["mask"])
            single = ds[pos]
            assert torch.equal(single["image"], got["image"]) and single["index"] == got["index"]
    with pytest.raises(IndexError):
        ds.__getitems__([3, 64])


def test_streaming_reads_ahead_along_the_sampler(patches_store, store):
    aug = augmentation(phase_offset=True, flips=True, jitter=2)
    ds = PatchDataset(patches_store, split=None, in_memory=False, buffer_chunks=1,
                      transform=aug, seed=3)
    reference = PatchDataset(patches_store, split=None, in_memory=True, transform=aug, seed=3)
    sampler = ds.sampler(seed=2)
    sampler.set_epoch(1)
    ds.set_epoch(1)
    reference.set_epoch(1)
    loader = torch.utils.data.DataLoader(ds, batch_size=8, sampler=sampler)
    seen, held = [], []
    for batch in loader:  # chunks decoded ahead, in threads
        held.append(len(ds._cache))
        for i, image, mask in zip(batch["index"].tolist(), batch["image"], batch["mask"],
                                  strict=True):
            want = _per_sample(reference, i)
            assert torch.equal(image, want["image"]) and torch.equal(mask, want["mask"])
            seen.append(i)
    assert seen == [int(ds.indices[p]) for p in sampler]
    # each of the 4 chunks decoded once, plus the next epoch's first one as this one ended
    assert 4 <= ds._reader.reads <= 5
    assert max(held) <= 3  # current chunk(s) + one read ahead
    assert ds._cache.following  # the requests followed the plan
    next_first = ChunkPlan(sampler.order(2), ds.chunk_of()).first[:1]
    assert list(ds._cache.chunks) == next_first.tolist()  # kept for epoch 2, nothing else
    ds._cache.drain()
    reads = ds._reader.reads
    sampler.set_epoch(2)
    ds.set_epoch(2)
    reference.set_epoch(2)
    batches = iter(torch.utils.data.DataLoader(ds, batch_size=8, sampler=sampler))
    first = next(batches)
    assert ds._reader.reads - reads <= 1  # at most a read ahead: epoch 2 began on a cached chunk
    for i, image in zip(first["index"].tolist(), first["image"], strict=True):
        assert torch.equal(image, _per_sample(reference, i)["image"])
    assert sum(len(b["index"]) for b in batches) + len(first["index"]) == len(ds)
    assert ds._reader.reads - reads <= 4  # epoch 2's other 3 chunks and epoch 3's first


def test_random_access_leaves_the_plan_and_stays_correct(patches_store, store):
    ds = PatchDataset(patches_store, split=None, in_memory=False, buffer_chunks=1)
    ds.sampler(seed=0)
    rng = np.random.default_rng(0)
    for pos in rng.integers(0, len(ds), 40).tolist():
        np.testing.assert_array_equal(ds[pos]["image"].numpy(),
                                      to_network_input(store.interferogram.values[pos]))
        assert len(ds._cache) <= 2  # the LRU bound, buffer_chunks + 1
    assert not ds._cache.following


def test_reader_decodes_like_open_patches(tmp_path, store):
    """A store whose variables carry CF encodings (an integer fill, a scale) reads the
    same through the chunk reader as through xarray's decoding."""
    import warnings

    from isslide_cube.ml.datasets import ChunkReader

    ds = store.isel(sample=slice(0, 20)).copy()
    ds["mask"].encoding = {"_FillValue": 7}  # decodes to float with NaN at 7 in xarray
    ds["interferogram"].encoding = {"scale_factor": 0.5, "dtype": "int16", "_FillValue": -99}
    path = tmp_path / "encoded.zarr"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.to_zarr(path, consolidated=False)
        want = xr.open_zarr(path, chunks=None, consolidated=False).load()
    ifg, mask = ChunkReader(None, 16, str(path)).read(0)
    np.testing.assert_array_equal(ifg, want.interferogram.values[:16].astype(np.float32))
    np.testing.assert_array_equal(mask, want["mask"].values[:16])


def test_reader_is_an_xbatcher_window_per_chunk(patches_store, store):
    """Chunk k is xbatcher's window k (one whole chunk along sample); the trailing
    partial chunk, which xbatcher drops, is still read."""
    import xbatcher

    from isslide_cube.ml.datasets import ChunkReader

    c = 24  # 64 samples: two whole windows and a partial one
    reader = ChunkReader(None, c, str(patches_store))
    assert isinstance(reader.generator, xbatcher.BatchGenerator)
    n = store.sizes["sample"]
    assert len(reader) == -(-n // c) == 3 and len(reader.generator) == n // c
    for k in range(len(reader)):
        ifg, mask = reader.read(k)
        sl = slice(k * c, min((k + 1) * c, n))
        np.testing.assert_array_equal(ifg, store.interferogram.values[sl].astype(np.float32))
        np.testing.assert_array_equal(mask, store["mask"].values[sl])
