"""Training throughput: the patch loader against its peers, CPU epochs, GPU steps.

1. Loader (samples/s over one epoch, batch 8, the paper's phase-offset augmentation,
   encoded to coherence/cos/sin), on 2,000 random 100 x 100 patches in a Zarr
   store chunked by 256 samples, all in one run:
   * peer "xbatcher plain": ``xbatcher.BatchGenerator`` with batches of 8 over the
     lazily opened store (what one writes first; each batch decodes a whole chunk),
     the transforms vectorised over each batch;
   * peers "numpy in memory": a minimal Dataset over numpy arrays already in
     memory, same transforms per sample, and the same with batched fetch
     (``__getitems__``, the transforms vectorised over the batch as
     ``PatchDataset`` does); the best of them is the ceiling;
   * ``PatchDataset`` streaming (chunk-aware sampler, buffer of 4 chunks, chunks
     read ahead in background threads, into the next epoch as one ends) and in
     memory, each with ``num_workers`` 0 and 2 (the time to open the store, and to
     load it for "in memory", is printed beside: it is paid once per run, not per
     epoch).
   Rates are the median of ``--rounds`` interleaved rounds (this VM's speed swings
   up to 2x within seconds); in each, every loader is made afresh, runs an untimed
   warm-up epoch, then ``--epochs`` timed consecutive epochs (a training loop's
   steady state).
   Every loader also reports its CPU seconds (all threads of this process and its
   workers), a measure that other jobs on the machine disturb less than rates.
2. CPU seconds per training step and projected seconds per epoch for every model
   at batch 8 on 100 x 100 patches (``--patches STORE`` also counts its train side;
   the paper's train side is 4,821 patches).
3. ``--gpu``: where CUDA is available, ms per step of ResUNet and FCN-ResNet50 at
   batch 8, data resident on the device, eager against
   ``torch.compile(mode="reduce-overhead")`` (CUDA graphs), and the projected time
   of the paper's protocols (ResUNet 300 epochs, FCN 600 epochs, 4,821 patches at
   batch 8). Self-contained: synthetic in-memory data, no store needed::

       .venv/bin/python -m benchmarks.training --gpu --skip-loader --skip-cpu

Run: ``.venv/bin/python -m benchmarks.training [--quick] [--patches STORE] [--gpu]``.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import psutil
import torch
import xarray as xr

from isslide_cube import schema
from isslide_cube.ml.datasets import PatchDataset
from isslide_cube.ml.models import MODELS, build_model, count_parameters
from isslide_cube.ml.transforms import PhaseOffset, apply_batch, to_network_input

PAPER_TRAIN = 4821
BATCH = 8


# ------------------------------------------------------------------------ data
def random_patches(n: int, size: int = 100, seed: int = 0) -> xr.Dataset:
    """``n`` random patches in the patches layout (every sample on the train side)."""
    rng = np.random.default_rng(seed)
    ifg = np.empty((n, 2, size, size), np.float32)
    ifg[:, 0] = rng.random((n, size, size), np.float32)
    ifg[:, 1] = rng.uniform(-np.pi, np.pi, (n, size, size)).astype(np.float32)
    ifg[::10, :, :10, :10] = np.nan
    mask = (rng.random((n, size, size)) > 0.8).astype(np.uint8)
    start = np.datetime64("2018-07-02", "ns") + (rng.integers(0, 20, n) * 6).astype("timedelta64[D]")
    delay = rng.choice([6, 12, 18], n).astype("int64")
    ints = {k: (schema.SAMPLE, rng.integers(0, 1000, n).astype("int64"))
            for k in (schema.LOCATION, schema.ROW, schema.COL)}
    return xr.Dataset(
        {schema.INTERFEROGRAM: (schema.PATCH_DIMS, ifg),
         schema.MASK: ((schema.SAMPLE, schema.Y, schema.X), mask)},
        coords={schema.BAND: list(schema.BANDS), schema.START_DATE: (schema.SAMPLE, start),
                schema.DELAY: (schema.SAMPLE, delay),
                schema.END_DATE: (schema.SAMPLE, start + delay.astype("timedelta64[D]")),
                schema.ZONE: (schema.SAMPLE, np.full(n, "vanoise")),
                schema.LAT: (schema.SAMPLE, rng.uniform(45, 46, n)),
                schema.LON: (schema.SAMPLE, rng.uniform(6, 7, n)),
                schema.HAS_MOVE: (schema.SAMPLE, mask.any(axis=(1, 2))),
                schema.MOVING_FRACTION: (schema.SAMPLE, mask.mean(axis=(1, 2)).astype("float32")),
                schema.SPLIT: (schema.SAMPLE, np.full(n, "train")), **ints},
        attrs={"crs": "EPSG:4326", "transform": [6, 0.001, 0, 46, 0, -0.001], "patch_size": size})


def write_store(ds: xr.Dataset, path: Path, chunk: int = 256) -> Path:
    size = ds.sizes[schema.Y]
    enc = {schema.INTERFEROGRAM: {"chunks": (chunk, 2, size, size)},
           schema.MASK: {"chunks": (chunk, size, size)}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.to_zarr(path, mode="w", encoding=enc, consolidated=False)
    return path


class PeakRSS:
    """Peak resident memory of this process and its children, sampled every 100 ms
    (each sample walks the process table: a tighter poll takes CPU from the loaders)."""

    def __enter__(self):
        self.proc, self.peak, self._stop = psutil.Process(), 0, threading.Event()
        self.base = self._rss()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _rss(self) -> int:
        total = self.proc.memory_info().rss
        for child in self.proc.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:
                pass
        return total

    def _watch(self):
        while not self._stop.wait(0.1):
            self.peak = max(self.peak, self._rss())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    @property
    def mib(self) -> float:
        return self.peak / 2**20


# ---------------------------------------------------------------------- loaders
class NumpyDataset(torch.utils.data.Dataset):
    """The in-memory peer: numpy arrays, the same transform and encoding per sample."""

    def __init__(self, ifg: np.ndarray, mask: np.ndarray, seed: int = 0):
        self.ifg, self.mask, self.seed, self.offset = ifg, mask, seed, PhaseOffset()

    def __len__(self):
        return len(self.ifg)

    def __getitem__(self, i):
        s = self.offset({"interferogram": self.ifg[i], "mask": self.mask[i]},
                        np.random.default_rng((self.seed, 0, i)))
        return {"image": torch.from_numpy(to_network_input(s["interferogram"])),
                "mask": torch.from_numpy((s["mask"] == 1).astype(np.float32)[None])}


class NumpyBatchDataset(NumpyDataset):
    """The in-memory peer with batched fetch: the same transform and encoding vectorised
    over the DataLoader's batch (``__getitems__``), as ``PatchDataset`` does."""

    def __getitems__(self, indices):
        idx = np.asarray(indices)
        batch = apply_batch(self.offset, {"interferogram": self.ifg[idx], "mask": self.mask[idx]},
                            [np.random.default_rng((self.seed, 0, int(i))) for i in idx])
        images = torch.from_numpy(to_network_input(batch["interferogram"]))
        masks = torch.from_numpy((batch["mask"] == 1).astype(np.float32)[:, None])
        return [{"image": images[j], "mask": masks[j]} for j in range(len(idx))]


def cpu_seconds() -> float:
    """CPU time of this process (all threads) and of its finished children (workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def time_loader(loader) -> tuple[float, int, float]:
    """(wall seconds, samples, CPU seconds) of one pass over ``loader``."""
    cpu0, t0, n = cpu_seconds(), time.perf_counter(), 0
    it = iter(loader)
    for batch in it:
        n += len(batch["image"])
    seconds = time.perf_counter() - t0
    del it  # the workers are joined: their CPU time is counted
    return seconds, n, cpu_seconds() - cpu0


def xbatcher_plain(path: Path) -> tuple[float, int, float]:
    """BatchGenerator with batches of 8 over the lazily opened store, same transforms."""
    import xbatcher

    ds = xr.open_zarr(path, chunks=None, consolidated=False)[[schema.INTERFEROGRAM, schema.MASK]]
    gen = xbatcher.BatchGenerator(ds.reset_coords(drop=True),
                                  input_dims={schema.SAMPLE: BATCH, schema.BAND: 2,
                                              schema.Y: ds.sizes[schema.Y],
                                              schema.X: ds.sizes[schema.X]})
    offset = PhaseOffset()
    cpu0, t0, n = cpu_seconds(), time.perf_counter(), 0
    for k, batch in enumerate(gen):  # the transforms vectorised over the batch, as ours
        ifg, mask = batch[schema.INTERFEROGRAM].values, batch[schema.MASK].values
        rngs = [np.random.default_rng((0, 0, k * BATCH + j)) for j in range(len(ifg))]
        out = apply_batch(offset, {"interferogram": np.array(ifg, np.float32), "mask": mask}, rngs)
        torch.from_numpy(to_network_input(out["interferogram"]))
        torch.from_numpy((mask == 1).astype(np.float32)[:, None])
        n += len(ifg)
    return time.perf_counter() - t0, n, cpu_seconds() - cpu0


def bench_loader(n: int, workdir: Path, rounds: int = 3,
                 epochs: int = 3) -> list[tuple[str, float, float, float, float, float]]:
    """Rows (name, samples/s, lowest and highest round's samples/s, peak MiB, CPU
    microseconds per sample), rates the median of ``rounds`` interleaved rounds.

    This VM's speed swings up to 2x between half-second windows (a fixed numpy loop
    shows it), so every loader runs once per round, in turn, and the median round
    counts. In a turn, each loader is made afresh and runs one untimed warm-up epoch,
    then ``epochs`` timed consecutive epochs, the steady state of a training loop:
    what a loader reads ahead for the next epoch is inside the timed span, and
    nothing is read for free between turns. The plain BatchGenerator keeps no state
    and takes about 10 s an epoch: one timed epoch a turn.
    """
    from isslide_cube.ml.transforms import augmentation

    path = write_store(random_patches(n), workdir / "random_patches.zarr")
    mem_ds = xr.open_zarr(path, chunks=None, consolidated=False).load()
    peer = NumpyDataset(mem_ds[schema.INTERFEROGRAM].values, mem_ds[schema.MASK].values)
    del mem_ds
    batched = NumpyBatchDataset(peer.ifg, peer.mask)

    def numpy_epoch(dataset, workers):
        return lambda _, e: time_loader(torch.utils.data.DataLoader(
            dataset, batch_size=BATCH, shuffle=True, num_workers=workers))

    def ours_setup(in_memory):
        def setup():
            ds = PatchDataset(path, split="train", transform=augmentation(), in_memory=in_memory)
            return ds, ds.sampler(0)
        return setup

    def ours_epoch(workers):
        def run(state, e):
            ds, sampler = state
            sampler.set_epoch(e)
            ds.set_epoch(e)
            return time_loader(torch.utils.data.DataLoader(ds, batch_size=BATCH, sampler=sampler,
                                                           num_workers=workers))
        return run

    # (name, setup or None, epoch function, timed epochs a turn, warm-up epochs a turn)
    loaders = [("xbatcher plain BatchGenerator (peer)", None, lambda _, e: xbatcher_plain(path),
                1, 0)]
    for name, dataset in (("numpy in memory", peer), ("numpy in memory batched", batched)):
        for workers in (0, 2):
            loaders.append((f"{name}, workers={workers} (peer)", None,
                            numpy_epoch(dataset, workers), epochs, 1))
    for in_memory in (False, True):
        for workers in (0, 2):
            kind = "in memory" if in_memory else "streaming"
            loaders.append((f"PatchDataset {kind}, workers={workers}", ours_setup(in_memory),
                            ours_epoch(workers), epochs, 1))
    turns: dict[str, list[tuple[float, float, float, float]]] = {name: [] for name, *_ in loaders}
    for r in range(rounds):
        print(f"  round {r + 1} of {rounds}", flush=True)
        for name, setup, run, k, warm in loaders:
            with PeakRSS() as mem:
                t0 = time.perf_counter()
                state = setup() if setup else None
                once = time.perf_counter() - t0
                for e in range(warm):
                    run(state, e)
                runs = [run(state, e) for e in range(warm, warm + k)]
                del state  # a dataset's read-ahead threads and chunks go with it
            seconds, count, cpu = (sum(x[i] for x in runs) for i in range(3))
            turns[name].append((count / seconds, cpu / count * 1e6, mem.mib, once))
    rows = []
    for name, *_ in loaders:
        rates, cpus, peaks, onces = (np.array(v) for v in zip(*turns[name], strict=True))
        rate, cpu = float(np.median(rates)), float(np.median(cpus))
        rows.append((name, rate, float(rates.min()), float(rates.max()), float(peaks.max()), cpu))
        once = f"  ({'open + load' if 'in memory' in name else 'open'} {np.median(onces):.2f} s " \
               "once)" if "PatchDataset" in name else ""
        print(f"  {name:<40} {rate:7.0f} samples/s [{rates.min():5.0f}-{rates.max():5.0f}]  "
              f"{cpu:6.0f} us CPU/sample  peak {peaks.max():5.0f} MiB" + once, flush=True)
    return rows


# ------------------------------------------------------------------------- CPU
def step_seconds(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int,
                 opt: torch.optim.Optimizer | None = None) -> float:
    opt = opt or torch.optim.Adam(model.parameters(), lr=1e-5)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    model.train()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    for _ in range(2):  # warm-up (allocations, compilation)
        step()
    if x.is_cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if x.is_cuda:
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps


def bench_cpu(names: list[str], steps: int, n_train: int | None) -> None:
    x = torch.randn(BATCH, 3, 100, 100)
    y = (torch.rand(BATCH, 1, 100, 100) > 0.8).float()
    steps_paper = math.ceil(PAPER_TRAIN / BATCH)
    head = f"  {'model':<20} {'params':>11} {'s/step':>8} {'s/epoch (4,821)':>16}"
    print(head + (f" {'s/epoch (store)':>16}" if n_train else ""), flush=True)
    for name in names:
        torch.manual_seed(0)
        model = build_model(name)
        s = step_seconds(model, x, y, steps)
        line = f"  {name:<20} {count_parameters(model):>11,} {s:8.3f} {s * steps_paper:16.0f}"
        if n_train:
            line += f" {s * math.ceil(n_train / BATCH):16.0f}"
        print(line, flush=True)


# ------------------------------------------------------------------------- GPU
def _gpu_case(name: str, mode: str, data: torch.Tensor, target: torch.Tensor,
              steps: int) -> float:
    """ms per training step of ``name`` at batch 8, data already on the device."""
    torch.manual_seed(0)
    dev = data.device
    model = build_model(name).to(dev).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-5, fused=dev.type == "cuda")
    net = model if mode == "eager" else torch.compile(model, mode="reduce-overhead")
    loss_fn = torch.nn.BCEWithLogitsLoss()
    n = len(data)

    def step(i: int) -> None:
        lo = (i * BATCH) % (n - BATCH + 1)
        opt.zero_grad(set_to_none=True)
        loss_fn(net(data[lo:lo + BATCH]), target[lo:lo + BATCH]).backward()
        opt.step()

    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    for i in range(10):  # warm-up: compilation and CUDA graph capture
        step(i)
    sync()
    t0 = time.perf_counter()
    for i in range(steps):
        step(i)
    sync()
    return (time.perf_counter() - t0) / steps * 1000


def bench_gpu(steps: int, device: str = "cuda",
              modes: tuple[str, ...] = ("eager", "reduce-overhead")) -> None:
    if device == "cuda" and not torch.cuda.is_available():
        print("  no CUDA device: GPU section skipped")
        return
    dev = torch.device(device)
    if dev.type == "cuda":
        print(f"  device: {torch.cuda.get_device_name(dev)}, torch {torch.__version__}")
        torch.backends.cudnn.benchmark = True
    # a synthetic dataset resident on the device; each step takes the next batch of 8
    n = 512 if dev.type == "cuda" else 32
    data = torch.randn(n, 3, 100, 100, device=dev)
    target = (torch.rand(n, 1, 100, 100, device=dev) > 0.8).float()
    protocol = {"resunet": 300, "fcn_resnet50": 600}
    steps_epoch = math.ceil(PAPER_TRAIN / BATCH)
    print(f"  {'model':<14} {'mode':<16} {'ms/step':>8} {'s/epoch':>8} {'protocol':>10}")
    for name, epochs in protocol.items():
        for mode in modes:
            try:
                ms = _gpu_case(name, mode, data, target, steps)
            except Exception as err:  # report and go on with the next configuration
                print(f"  {name:<14} {mode:<16} failed: {type(err).__name__}: {err}"[:300])
                continue
            finally:
                if dev.type == "cuda":
                    torch.cuda.empty_cache()
            total = ms / 1000 * steps_epoch * epochs
            print(f"  {name:<14} {mode:<16} {ms:8.2f} {ms / 1000 * steps_epoch:8.2f} "
                  f"{total / 60:7.1f} min  ({epochs} epochs x {steps_epoch} steps)", flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer steps")
    parser.add_argument("--patches", type=Path, default=None, help="count this store's train side")
    parser.add_argument("--gpu", action="store_true", help="time steps on CUDA too")
    parser.add_argument("--gpu-device", default="cuda",
                        help="device of the --gpu section (cpu: a smoke test, eager only)")
    parser.add_argument("--skip-loader", action="store_true")
    parser.add_argument("--rounds", type=int, default=3,
                        help="loader: interleaved rounds (the median counts)")
    parser.add_argument("--epochs", type=int, default=3,
                        help="loader: consecutive epochs per loader and round")
    parser.add_argument("--skip-cpu", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load {load:.1f}, torch {torch.__version__} with {torch.get_num_threads()} threads")
    if not args.skip_loader:
        n = 1000 if args.quick else 2000
        print(f"\n1. loader, {n} random 100x100 patches, Zarr chunked by 256, batch {BATCH}; "
              f"median of {args.rounds} interleaved rounds [lowest-highest round], "
              f"a warm-up and {args.epochs} timed consecutive epochs a turn")
        with tempfile.TemporaryDirectory() as tmp:
            rows = {name: (rate, cpu) for name, rate, _, _, _, cpu
                    in bench_loader(n, Path(tmp), args.rounds, args.epochs)}
        plain, plain_cpu = rows["xbatcher plain BatchGenerator (peer)"]
        best_peer = max(v[0] for k, v in rows.items() if k.startswith("numpy"))
        best_cpu = min(v[1] for k, v in rows.items() if k.startswith("numpy"))
        print("  ratios: samples/s, and (in brackets) CPU per sample of the peer / ours")
        for name, (rate, cpu) in rows.items():
            if name.startswith("PatchDataset"):
                print(f"  {name:<40} {rate / plain:6.1f}x ({plain_cpu / cpu:5.1f}x) plain xbatcher, "
                      f"{rate / best_peer:5.2f}x ({best_cpu / cpu:4.2f}x) best in-memory peer")
    if not args.skip_cpu:
        n_train = None
        if args.patches is not None:
            ds = xr.open_zarr(args.patches, chunks=None, consolidated=False)
            n_train = int((np.array(ds[schema.SPLIT].values.tolist(), str) == "train").sum())
            print(f"\n   store {args.patches}: {n_train} train patches")
        names = ["unet", "resunet", "sepunet"] if args.quick else list(MODELS)
        steps = 2 if args.quick else 4
        print(f"\n2. CPU training step, batch {BATCH} of 3x100x100, {steps} steps after 2 warm-up")
        bench_cpu(names, steps, n_train)
    if args.gpu:
        print(f"\n3. GPU training step, batch {BATCH}, data on the device")
        modes = ("eager",) if args.gpu_device == "cpu" else ("eager", "reduce-overhead")
        bench_gpu(steps=(2 if args.gpu_device == "cpu" else 50 if args.quick else 200),
                  device=args.gpu_device, modes=modes)


if __name__ == "__main__":
    main()
