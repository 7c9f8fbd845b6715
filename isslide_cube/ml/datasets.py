"""PyTorch datasets over a patches store, read whole chunk by whole chunk.

A patches store (``isslide_cube.patches.write_patches``) is a Zarr store chunked
along ``sample`` (256 by default). Reading one random sample costs a whole chunk
(decompression is per chunk), so a naive loader that draws 8 random samples per
step (a plain ``xbatcher.BatchGenerator`` of 8 over the store, say) decodes up to
8 chunks per step. :class:`PatchDataset` therefore reads aligned whole chunks
only (:class:`~isslide_cube.ml.chunks.ChunkReader`) and either

* keeps the selected samples in memory (``in_memory="auto"`` when they fit: the
  paper's 13,230 patches are about 1.6 GB), every chunk read once per process; or
* streams: :class:`EpochSampler` visits chunks in a random order and shuffles the
  samples inside a buffer of ``buffer_chunks`` chunks; the dataset knows that
  order (:class:`~isslide_cube.ml.chunks.ChunkPlan`), decodes the next chunks in
  background threads while the current ones are served and drops each chunk after
  its last use (:class:`~isslide_cube.ml.chunks.ChunkCache`): each chunk is read
  once per epoch (per worker process). As an epoch ends it reads the next epoch's
  first chunks, so the next one does not start by waiting for a whole buffer.

A DataLoader fetches a whole batch through :meth:`PatchDataset.__getitems__`: one
gather, the augmentation and the encoding vectorised over the batch, with the
values of the per-sample ``__getitem__``.

Samples are torchgeo-style dicts: ``image`` float32 [C, H, W] (coherence, cos
phase, sin phase[, valid]), ``mask`` float32 [1, H, W], plus provenance
(``start_date`` ISO string, ``delay``, ``location``, ``zone``, ``row``, ``col``,
``index`` = position of the sample in the store).

Process safety: nothing open crosses a process boundary. The store is opened
lazily by the process that reads (a forked worker notices the new pid and
reopens), ``__getstate__`` drops handles, caches and threads, and reads in flight
finish before a fork. Randomness never depends on the worker: the augmentation
of a sample draws from ``numpy.random.default_rng((seed, epoch, index))``, so
``num_workers=2`` yields exactly what ``num_workers=0`` yields.

Examples
--------
>>> ds = PatchDataset("patches.zarr", split="train", transform=augmentation())  # doctest: +SKIP
>>> sampler = ds.sampler(seed=0)                                               # doctest: +SKIP
>>> loader = torch.utils.data.DataLoader(ds, batch_size=8, sampler=sampler)    # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import xarray as xr

from isslide_cube import schema
from isslide_cube.ml.chunks import (  # noqa: F401  (re-exported: the readers' old home)
    DEFAULT_CHUNK,
    ChunkCache,
    ChunkPlan,
    ChunkReader,
    _chunk_size,
    _raw_view,
)
from isslide_cube.ml.transforms import Transform, apply_batch, to_network_input

log = logging.getLogger(__name__)

#: ``in_memory="auto"`` holds the selected samples in memory up to this many bytes.
MEMORY_LIMIT = 4 * 2**30
_SPLIT_HINT = ("run `isslide-cube patches CUBE OUT --split paper` (or "
               "`isslide_cube.patches.split(ds)` and write it again) to add one")


class TrainingDataError(schema.TrainingError):
    """A patches store cannot feed training as asked (no split, empty side...)."""


def open_patches_store(patches: str | Path | xr.Dataset) -> xr.Dataset:
    """Open a patches store lazily with ``isslide_cube.patches.open_patches``.

    Parameters
    ----------
    patches
        Path of a store written by ``isslide_cube.patches.write_patches``, or an
        already opened dataset (returned as is).

    Raises
    ------
    isslide_cube.schema.TrainingError
        When the path does not exist or is not a valid patches store.
    """
    if isinstance(patches, xr.Dataset):
        return patches
    from isslide_cube.patches import open_patches

    path = Path(patches)
    if not path.exists():
        raise TrainingDataError(f"patches store {path} does not exist; write one with "
                                "`isslide-cube patches CUBE OUT`")
    import dask

    try:
        # Synchronous: this runs in DataLoader workers too, where a thread pool inherited
        # through fork from the parent (dask's default scheduler) has no threads: a hang.
        with warnings.catch_warnings(), dask.config.set(scheduler="synchronous"):
            warnings.filterwarnings("ignore", message=".*consolidated", category=RuntimeWarning)
            return open_patches(path)
    except schema.PatchesError as err:
        raise TrainingDataError(f"{path} is not a valid patches store: {err}") from err
    except (OSError, ValueError, KeyError) as err:  # zarr's errors for a non-store folder
        raise TrainingDataError(f"{path} is not a readable Zarr patches store ({err})") from err


def select_samples(ds: xr.Dataset, split: str | None, *, source: str = "patches") -> np.ndarray:
    """Store positions of the samples of one split (all samples when ``split`` is None).

    Raises
    ------
    isslide_cube.schema.TrainingError
        When ``split`` is asked for but the store has no ``split`` coordinate.
    """
    n = ds.sizes[schema.SAMPLE]
    if split is None:
        return np.arange(n)
    if schema.SPLIT not in ds.coords:
        raise TrainingDataError(f"{source} has no '{schema.SPLIT}' coordinate, so there is no "
                                f"'{split}' side; {_SPLIT_HINT}")
    values = np.array(ds[schema.SPLIT].values.tolist(), dtype=str)  # StringDType-safe
    return np.flatnonzero(values == split)


class PatchDataset(torch.utils.data.Dataset):
    """Map-style dataset of one split of a patches store.

    Parameters
    ----------
    patches
        Path of a patches Zarr store (preferred: every process opens it itself), or
        an opened ``xarray.Dataset`` in the same layout.
    split
        ``"train"``, ``"eval"``, ``"unused"``, or None for every sample.
    transform
        ``transform(sample, rng) -> sample`` on the raw dict (``interferogram``
        (2, H, W) with NaN, ``mask`` (H, W)), e.g. :func:`.transforms.augmentation`.
    validity
        Add a fourth input channel flagging pixels with data.
    seed
        Seed of the augmentation (with the epoch and the sample index).
    in_memory
        True: load the selected samples once; False: stream chunks; ``"auto"``:
        in memory when they take at most ``memory_limit`` bytes.
    max_samples
        Keep a seeded random subset of this many samples (quick runs).
    buffer_chunks
        Chunks the sampler shuffles together when streaming; each process keeps
        those decoded plus as many read ahead (about ``2 * buffer_chunks * 23`` MB
        for 100 x 100 patches in chunks of 256).

    Attributes
    ----------
    in_channels : int
        3, or 4 with ``validity``.
    n_times : int
        1: one interferogram per sample.
    indices : numpy.ndarray
        Store positions of the samples, in dataset order.
    """

    n_times = 1

    def __init__(
        self,
        patches: str | Path | xr.Dataset,
        split: str | None = "train",
        transform: Transform | None = None,
        *,
        validity: bool = False,
        seed: int = 0,
        in_memory: bool | str = "auto",
        memory_limit: int = MEMORY_LIMIT,
        max_samples: int | None = None,
        buffer_chunks: int = 4,
    ):
        self.path = None if isinstance(patches, xr.Dataset) else str(patches)
        self._source = patches if isinstance(patches, xr.Dataset) else None
        ds = open_patches_store(patches)
        self.split, self.transform, self.validity, self.seed = split, transform, validity, seed
        self.in_channels = 4 if validity else 3
        self.epoch = 0
        self.buffer_chunks = max(1, int(buffer_chunks))
        indices = select_samples(ds, split, source=self.path or "the patches dataset")
        if max_samples is not None and len(indices) > max_samples:
            rng = np.random.default_rng(seed)
            indices = np.sort(rng.choice(indices, size=max_samples, replace=False))
        self.indices = indices
        self.chunk = _chunk_size(ds)
        self.patch_shape = (ds.sizes[schema.Y], ds.sizes[schema.X])
        self.metadata = _sample_metadata(ds, indices)
        nbytes = len(indices) * ds.sizes[schema.Y] * ds.sizes[schema.X] * 9  # 2 float32 + uint8
        self.in_memory = bool(nbytes <= memory_limit) if in_memory == "auto" else bool(in_memory)
        self._ds, self._reader, self._pid = ds, None, os.getpid()
        self._cache: ChunkCache | None = None
        self._planner: EpochSampler | None = None  # the sampler whose order the reads follow
        self._plan: tuple[tuple[int, int, bool], ChunkPlan] | None = None
        self._memory: tuple[np.ndarray, np.ndarray] | None = None
        if self.in_memory and len(indices):
            self._memory = self._load_all()

    # ------------------------------------------------------------------ process safety
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(_ds=None, _reader=None, _cache=None, _plan=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._pid = -1  # reopen on first read

    def _chunk_reader(self) -> ChunkReader:
        if self._reader is None or self._pid != os.getpid():
            if self._pid != os.getpid():  # a forked or unpickled copy: nothing of the parent's
                self._ds, self._cache = None, None
            if self.path is None and self._ds is None:
                self._ds = self._source
            # a store on disk: the reader opens its own light view (a worker reopens only that)
            self._reader = ChunkReader(self._ds if self.path is None else None, self.chunk,
                                       self.path)
            self._pid = os.getpid()
            self._cache = ChunkCache(self._reader.read, capacity=self.buffer_chunks + 1,
                                     ahead=self.buffer_chunks)
        return self._reader

    # ------------------------------------------------------------------------ reading
    def _load_all(self) -> tuple[np.ndarray, np.ndarray]:
        reader = self._chunk_reader()
        h, w = self.patch_shape
        ifg = np.empty((len(self.indices), 2, h, w), np.float32)
        mask = np.empty((len(self.indices), h, w), np.uint8)
        chunk_of = self.indices // self.chunk
        for k in np.unique(chunk_of):  # each chunk read once, in store order
            rows = np.flatnonzero(chunk_of == k)
            c_ifg, c_mask = reader.read(int(k))
            local = self.indices[rows] - k * self.chunk
            ifg[rows], mask[rows] = c_ifg[local], c_mask[local]
        return ifg, mask

    def _current_plan(self) -> ChunkPlan | None:
        """The chunk plan of the registered sampler's current epoch (None: no sampler)."""
        sampler = self._planner
        if sampler is None or sampler.chunk_of is None:
            self._cache.set_plan(None)
            return None
        key = (sampler.seed, sampler.epoch, sampler.shuffle)
        if self._plan is None or self._plan[0] != key:
            # the next epoch's first chunks, read ahead as this one ends (an epoch loop
            # steps the sampler's epoch by one; another order only wastes those reads)
            then = ChunkPlan(sampler.order(sampler.epoch + 1), sampler.chunk_of).first
            self._plan = (key, ChunkPlan(sampler.order(), sampler.chunk_of,
                                         after=then[:self.buffer_chunks]))
        self._cache.set_plan(self._plan[1])
        return self._plan[1]

    def _gather(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fresh arrays of the raw samples at ``positions``: (B, 2, H, W), (B, H, W)."""
        if self._memory is not None:
            return self._memory[0][positions], self._memory[1][positions]
        self._chunk_reader()
        plan = self._current_plan()
        idx = self.indices[positions]
        chunk_of = idx // self.chunk
        chunks = self._cache.get(np.unique(chunk_of), None if plan is None else plan.step[positions])
        h, w = self.patch_shape
        ifg = np.empty((len(idx), 2, h, w), np.float32)
        mask = np.empty((len(idx), h, w), np.uint8)
        # sample by sample: one copy each (a fancy-indexed gather per chunk copies twice)
        for j, (k, i) in enumerate(zip(chunk_of.tolist(), (idx % self.chunk).tolist(), strict=True)):
            c_ifg, c_mask = chunks[k]
            ifg[j], mask[j] = c_ifg[i], c_mask[i]
        return ifg, mask

    def _encode_batch(self, batch: dict[str, Any], pos: np.ndarray, epoch: int,
                      ) -> tuple[np.ndarray, np.ndarray]:
        """Transform (draws of ``(seed, epoch, index)``) and encode a batch it may modify."""
        if self.transform is not None:
            rngs = [np.random.default_rng((self.seed, epoch, int(i))) for i in self.indices[pos]]
            batch = apply_batch(self.transform, batch, rngs)
        return (to_network_input(batch["interferogram"], validity=self.validity),
                (batch["mask"] == 1).astype(np.float32)[:, None])

    def raw(self, pos: int) -> dict[str, Any]:
        """Sample ``pos`` before any transform: ``interferogram`` (2, H, W), ``mask`` (H, W)."""
        if self._memory is not None:
            return {"interferogram": self._memory[0][pos], "mask": self._memory[1][pos]}
        self._chunk_reader()
        idx = int(self.indices[pos])
        ifg, mask = self._cache.get([idx // self.chunk])[idx // self.chunk]
        local = idx % self.chunk  # copies: the cached chunk stays intact
        return {"interferogram": ifg[local].copy(), "mask": mask[local].copy()}

    # ------------------------------------------------------------------- Dataset API
    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, pos: int) -> dict[str, Any]:
        return self.__getitems__([pos])[0]

    def __getitems__(self, positions: Sequence[int]) -> list[dict[str, Any]]:
        """Samples at ``positions`` (what a DataLoader asks for one batch), equal to
        ``[self[p] for p in positions]``: one gather, the transform and the encoding
        vectorised over the batch."""
        pos = np.asarray(positions, dtype=np.int64).reshape(-1)
        bad = pos[(pos < 0) | (pos >= len(self))]
        if len(bad):
            raise IndexError(f"sample {int(bad[0])} out of range for a dataset of {len(self)}")
        ifg, mask = self._gather(pos)
        encoded = self._encode_batch({"interferogram": ifg, "mask": mask}, pos, self.epoch)
        images, masks = (torch.from_numpy(a) for a in encoded)
        meta = self.metadata
        return [{"image": images[i], "mask": masks[i], **{k: v[p] for k, v in meta.items()}}
                for i, p in enumerate(pos.tolist())]

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draws of ``epoch`` (call before creating the loader)."""
        self.epoch = int(epoch)

    def chunk_of(self) -> np.ndarray | None:
        """Chunk of each sample when streaming (None in memory: any order is cheap)."""
        return None if self.in_memory else self.indices // self.chunk

    def sampler(self, seed: int = 0, shuffle: bool = True) -> EpochSampler:
        """The sampler that reads this dataset efficiently (chunk-aware when streaming).

        When streaming, the dataset follows this (latest) sampler's order: it reads
        the next chunks ahead in background threads, into epoch ``e + 1`` as epoch
        ``e`` ends, and drops each chunk after its last use in the epoch
        (:class:`~isslide_cube.ml.chunks.ChunkCache`).
        """
        sampler = EpochSampler(len(self), chunk_of=self.chunk_of(), seed=seed, shuffle=shuffle,
                               buffer_chunks=self.buffer_chunks)
        if not self.in_memory:
            self._planner = sampler
        return sampler


def _sample_metadata(ds: xr.Dataset, indices: np.ndarray) -> dict[str, list[Any]]:
    """Per-sample provenance as plain Python values (collate into lists/tensors)."""
    coords = ds.coords
    out: dict[str, list[Any]] = {}
    if schema.START_DATE in coords:
        dates = pd.DatetimeIndex(np.asarray(coords[schema.START_DATE].values)[indices])
        out["start_date"] = [d.strftime("%Y-%m-%d") for d in dates]
    for name in (schema.DELAY, schema.LOCATION, schema.ROW, schema.COL):
        if name in coords:
            out[name] = [int(v) for v in np.asarray(coords[name].values)[indices]]
    if schema.ZONE in coords:
        zones = coords[schema.ZONE].values.tolist()
        out["zone"] = [str(zones[i]) for i in indices]
    out["index"] = [int(i) for i in indices]
    return out


class EpochSampler(torch.utils.data.Sampler[int]):
    """Seeded per-epoch order; chunk-aware when the dataset streams.

    With ``chunk_of`` (the chunk of each dataset position) the order visits chunks
    in a random order, ``buffer_chunks`` at a time, and shuffles the samples of
    those chunks together: every chunk is decoded once per epoch while batches
    still mix ``buffer_chunks`` chunks. Without it the order is a full permutation.
    The order depends only on ``(seed, epoch)``, which is all the state a resumed
    run needs (:meth:`state_dict`).
    """

    def __init__(self, n: int, *, chunk_of: np.ndarray | None = None, seed: int = 0,
                 shuffle: bool = True, buffer_chunks: int = 4):
        self.n, self.chunk_of, self.seed, self.shuffle = n, chunk_of, seed, shuffle
        self.buffer_chunks, self.epoch = max(1, buffer_chunks), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def state_dict(self) -> dict[str, int]:
        return {"seed": self.seed, "epoch": self.epoch}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.seed, self.epoch = int(state["seed"]), int(state["epoch"])

    def __len__(self) -> int:
        return self.n

    def order(self, epoch: int | None = None) -> np.ndarray:
        """Dataset positions in the order of ``epoch`` (default: the current one)."""
        if not self.shuffle:
            return np.arange(self.n)
        rng = np.random.default_rng((self.seed, self.epoch if epoch is None else int(epoch)))
        if self.chunk_of is None:
            return rng.permutation(self.n)
        chunks = rng.permutation(np.unique(self.chunk_of))
        parts = []
        for start in range(0, len(chunks), self.buffer_chunks):
            members = np.flatnonzero(np.isin(self.chunk_of, chunks[start:start + self.buffer_chunks]))
            parts.append(rng.permutation(members))
        return np.concatenate(parts) if parts else np.arange(0)

    def __iter__(self) -> Iterator[int]:
        return iter(self.order().tolist())


class DeviceBatches:
    """One split held on the compute device; batches are index gathers there.

    A GPU eats a batch of eight 100 x 100 patches in a few milliseconds, less than
    a Python loader takes to make one. This keeps the raw samples (coherence and
    phase, NaN included: 80 KB a patch) on the device and does the per-epoch work
    there: the order of :class:`EpochSampler`, the paper's phase offset (one
    uniform draw per sample from a device generator seeded by ``(seed, epoch)``)
    and the encoding. No host work or synchronisation per step.

    Parameters
    ----------
    dataset
        A :class:`PatchDataset` (its samples are read once, in memory).
    device
        Where to hold them.
    phase_offset
        Apply the paper's augmentation.
    seed
        Seed of the order and the offsets.
    shuffle
        Shuffle each epoch (training) or keep the dataset order (validation).

    Examples
    --------
    >>> batches = DeviceBatches(PatchDataset("p.zarr"), "cuda", phase_offset=True)  # doctest: +SKIP
    >>> for batch in batches.epoch(0, batch_size=8): ...                            # doctest: +SKIP
    """

    def __init__(self, dataset: PatchDataset, device: str | torch.device, *,
                 phase_offset: bool = False, seed: int = 0, shuffle: bool = True):
        ifg, mask = dataset._memory if dataset._memory is not None else dataset._load_all()
        self.device = torch.device(device)
        self.ifg = torch.from_numpy(ifg).to(self.device)
        self.mask = torch.from_numpy((mask == 1).astype(np.float32)[:, None]).to(self.device)
        self.validity, self.phase_offset = dataset.validity, phase_offset
        self.seed, self.shuffle, self.n = seed, shuffle, len(dataset)

    def __len__(self) -> int:
        return self.n

    def epoch(self, epoch: int, batch_size: int) -> Iterator[dict[str, torch.Tensor]]:
        """Batches ``{"image", "mask"}`` of one epoch, already on the device."""
        from isslide_cube.ml.transforms import to_network_input_torch

        sampler = EpochSampler(self.n, seed=self.seed, shuffle=self.shuffle)
        sampler.set_epoch(epoch)
        order = torch.from_numpy(sampler.order()).to(self.device)
        gen = torch.Generator(device=self.device).manual_seed(self.seed * 100_003 + epoch)
        offsets = (torch.rand(self.n, 1, 1, generator=gen, device=self.device) * 2 - 1) * np.pi
        # BatchNorm cannot train on a final batch of one sample (DeepLabV3's pooling branch)
        stop = self.n - 1 if self.shuffle and self.n > 1 and self.n % batch_size == 1 else self.n
        for start in range(0, stop, batch_size):
            idx = order[start:start + batch_size]
            raw = self.ifg[idx]
            if self.phase_offset:  # cos/sin need no wrapping
                raw = torch.stack([raw[:, 0], raw[:, 1] + offsets[idx]], dim=1)
            yield {"image": to_network_input_torch(raw, validity=self.validity),
                   "mask": self.mask[idx]}


def encode(sample: dict[str, Any], validity: bool = False) -> dict[str, torch.Tensor]:
    """Network tensors of a raw sample: ``image`` (coherence, cos, sin[, valid]) and ``mask``."""
    image = to_network_input(sample["interferogram"], validity=validity)
    mask = (np.asarray(sample["mask"]) == 1).astype(np.float32)[None]
    return {"image": torch.from_numpy(np.ascontiguousarray(image)),
            "mask": torch.from_numpy(np.ascontiguousarray(mask))}
