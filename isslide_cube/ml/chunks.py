"""Whole-chunk reads of a patches store: the reader, the epoch's chunk plan, the read-ahead cache.

A patches store is chunked along ``sample``; decompression is per chunk, so
:class:`~isslide_cube.ml.datasets.PatchDataset` reads aligned whole chunks only
(:class:`ChunkReader`, through xbatcher), knows from its sampler when each chunk
is first and last needed in an epoch (:class:`ChunkPlan`), and decodes the next
ones in background threads while the current ones are served (:class:`ChunkCache`).
"""

from __future__ import annotations

import os
import threading
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import xarray as xr

from isslide_cube import schema

DEFAULT_CHUNK = 256  # samples per chunk when the store does not say


def _chunk_size(ds: xr.Dataset) -> int:
    enc = ds[schema.INTERFEROGRAM].encoding
    chunks = enc.get("chunks") or enc.get("preferred_chunks", {}).get(schema.SAMPLE)
    if isinstance(chunks, (tuple, list)):
        return int(chunks[0])
    if isinstance(chunks, int):
        return chunks
    data = ds[schema.INTERFEROGRAM].chunks  # a dask-backed dataset handed in
    return int(data[0][0]) if data else DEFAULT_CHUNK


class ChunkReader:
    """Reads whole sample chunks of a patches dataset through xbatcher, one aligned read each.

    The ``xbatcher.BatchGenerator`` window spans one chunk along ``sample`` and the
    full band/y/x extent, so ``generator[k]`` is exactly chunk ``k``: one decode per
    variable, no partial chunk. xbatcher drops a trailing partial window, so the
    last, shorter chunk is a plain ``isel``. A store given by its path is read
    through a dask-free view (``xr.open_zarr(chunks=None)``, the same CF decoding
    as ``open_patches``): a dask graph per chunk costs more than its decode. Reads
    are thread safe (the prefetch threads of :class:`ChunkCache` call them).

    Parameters
    ----------
    ds
        The patches dataset (ignored, may be None, when ``path`` is given).
    chunk
        Samples per chunk along ``sample``.
    path
        The store on disk, opened here.
    """

    def __init__(self, ds: xr.Dataset | None, chunk: int, path: str | None = None):
        if path is not None:  # a plain lazily indexed view: no dask in the hot path
            ds = _raw_view(path)
        import xbatcher

        data = ds[[schema.INTERFEROGRAM, schema.MASK]].reset_coords(drop=True)
        self.data, self.chunk, self.n = data, chunk, data.sizes[schema.SAMPLE]
        dims = {d: data.sizes[d] for d in schema.PATCH_DIMS}
        dims[schema.SAMPLE] = min(chunk, self.n)
        self.generator = xbatcher.BatchGenerator(data, input_dims=dims, preload_batch=False)
        self.reads = 0  # chunks decoded by this reader (tests and benchmarks count them)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return -(-self.n // self.chunk)

    def read(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Chunk ``k`` as (interferogram (m, 2, H, W) float32, mask (m, H, W) uint8)."""
        with self._lock:
            self.reads += 1
        if k < len(self.generator):
            part = self.generator[k]
        else:
            part = self.data.isel({schema.SAMPLE: slice(k * self.chunk, self.n)})
        # a dask-backed dataset handed in: never a cluster behind the caller's back
        part = part.compute(scheduler="synchronous")
        ifg = part[schema.INTERFEROGRAM].transpose(*schema.PATCH_DIMS).values
        mask = part[schema.MASK].transpose(schema.SAMPLE, schema.Y, schema.X).values
        return np.asarray(ifg, dtype=np.float32), np.asarray(mask)


def _raw_view(path: str) -> xr.Dataset:
    """The store's interferogram and mask, lazily indexed (no dask), decoded as
    ``open_patches`` decodes them. A NaN ``_FillValue`` on floats is the only CF
    encoding patches carry, and decoding it changes nothing but costs two passes
    over every chunk: skip it then, decode as usual otherwise."""
    names = [schema.INTERFEROGRAM, schema.MASK]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*consolidated", category=RuntimeWarning)
        raw = xr.open_zarr(path, chunks=None, consolidated=False, mask_and_scale=False)[names]
        for var in raw.data_vars.values():
            fill = var.attrs.get("_FillValue")
            nan_fill = fill is None or (var.dtype.kind == "f" and np.isnan(fill))
            if not nan_fill or {"scale_factor", "add_offset", "missing_value"} & set(var.attrs):
                return xr.open_zarr(path, chunks=None, consolidated=False)[names]
    return raw


class ChunkPlan:
    """When each chunk is first and last needed in one epoch of an :class:`EpochSampler`.

    ``step[pos]`` is the place of dataset position ``pos`` in the epoch's order;
    ``first`` lists the chunks in the order of their first use (at ``first_step``);
    ``last_step[k]`` is the last step that needs chunk ``k``; ``after`` lists the
    chunks the next epoch will likely need first (read ahead as this one ends, so
    an epoch does not start by waiting for a whole buffer of chunks).
    """

    def __init__(self, order: np.ndarray, chunk_of: np.ndarray,
                 after: np.ndarray | None = None):
        self.step = np.empty(len(order), np.int64)
        self.step[order] = np.arange(len(order))
        seq = chunk_of[order]
        chunks, first = np.unique(seq, return_index=True)
        by_first = np.argsort(first)
        self.first, self.first_step = chunks[by_first], first[by_first]
        _, last_rev = np.unique(seq[::-1], return_index=True)
        self.last_step = dict(zip(chunks.tolist(), (len(seq) - 1 - last_rev).tolist(),
                                  strict=True))
        self.after = np.zeros(0, np.int64) if after is None else np.asarray(after, np.int64)
        self.keep = set(self.after.tolist())  # not dropped after their last step here


class ChunkCache:
    """Decoded chunks of one process, read ahead in a background thread pool.

    With a :class:`ChunkPlan` whose steps the requests follow (what the
    DataLoader does with the dataset's own sampler), the cache decodes the next
    ``ahead`` chunks of the plan while the current ones are served (zstd and
    zarr release the GIL) and drops each chunk after its last step: every chunk
    is decoded once per epoch and at most about ``2 * ahead`` stay decoded. Any
    other access pattern (no plan, random access, another sampler) turns the plan
    off until the next one and falls back to a least-recently-used cache of
    ``capacity`` chunks without read-ahead. As the plan runs out, the read-ahead
    goes on with the plan's ``after`` chunks (the next epoch's first ones), which
    are then kept for it. Only when reads happen depends on the plan, never what
    a chunk holds.
    """

    def __init__(self, read: Any, capacity: int, ahead: int, threads: int = 2):
        self.read, self.capacity, self.ahead, self.threads = read, capacity, ahead, threads
        self.chunks: OrderedDict[int, Future] = OrderedDict()
        self.plan: ChunkPlan | None = None
        self.following, self.last = False, -1
        self._pool: ThreadPoolExecutor | None = None
        _LIVE_CACHES.add(self)

    def __len__(self) -> int:
        return len(self.chunks)

    def set_plan(self, plan: ChunkPlan | None) -> None:
        if plan is not self.plan:
            self.plan, self.following, self.last = plan, plan is not None, -1

    def _submit(self, k: int) -> Future:
        if k not in self.chunks:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="isslide-chunks")
            self.chunks[k] = self._pool.submit(self.read, k)
        return self.chunks[k]

    def get(self, chunks: Iterator[int] | np.ndarray, steps: np.ndarray | None = None,
            ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Decoded ``chunks`` for the requests at ``steps`` of the plan (None: unplanned)."""
        chunks = [int(k) for k in chunks]
        if self.following and (steps is None or steps.min() <= self.last):
            self.following = False  # not the plan's order: plain LRU from here on
        futures = {k: self._submit(k) for k in chunks}
        if self.following:
            self.last = int(steps.max())
            i = int(np.searchsorted(self.plan.first_step, self.last, side="right"))
            upcoming = self.plan.first[i:i + self.ahead].tolist()
            upcoming += self.plan.after[:self.ahead - len(upcoming)].tolist()
            for k in upcoming:
                self._submit(k)
        out = {k: f.result() for k, f in futures.items()}
        for k in chunks:
            self.chunks.move_to_end(k)
        if self.following:  # done with a chunk after its last step
            done = [k for k in self.chunks
                    if self.plan.last_step.get(k, -1) <= self.last and k not in self.plan.keep]
            for k in done:
                del self.chunks[k]
        else:
            while len(self.chunks) > self.capacity:
                k = next(iter(self.chunks))
                self.chunks.pop(k).result()  # never drop a read in flight unfinished
        return out

    def drain(self) -> None:
        """Wait for the reads in flight (before a fork: no thread mid-read)."""
        for f in list(self.chunks.values()):
            f.exception()


_LIVE_CACHES: weakref.WeakSet[ChunkCache] = weakref.WeakSet()


def _drain_before_fork() -> None:
    for cache in list(_LIVE_CACHES):
        cache.drain()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_drain_before_fork)
