"""Several runs at once: ms per step for 1 run against N runs interleaved on one device.

At batch 8 on 100 x 100 patches a GPU is launch-bound (training issue: 9.2 ms per
eager ResUNet step on an H200), so N small runs interleaved in one process
(:func:`isslide_cube.ml.many.train_many`: one copy of the data on the device, one
CUDA stream per run) should cost well under N times one run. This measures, on
random 100 x 100 patches in a Zarr store (every run ``preset="paper"``, batch 8,
data on the device on CUDA):

* ``train_many`` with 1 run and with N runs at once: wall milliseconds per step of
  each run and per step of the device (wall / all runs' steps), over the last epoch
  (the first ones warm up: allocations, cuDNN autotuning, CUDA-graph capture);
* peers in the same run: N runs one after another (N x the 1-run time) and N
  processes side by side, each training one run with ``train`` (what
  ``protocol.run_paper`` did before ``train_many``).

Prints the speed-up of N at once over N one after another, process CPU ms per
step (all epochs and the setup included: the figure to trust on a loaded machine),
the load, and peak memory (CUDA allocator, or this process's peak RSS so far).

Run::

    .venv/bin/python -m benchmarks.training_many [--quick] [--runs 1 4] [--compile]
    .venv/bin/python -m benchmarks.training_many --device cpu --quick   # CPU: same code path
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.training import random_patches, write_store
from isslide_cube import schema
from isslide_cube.ml.many import train_many
from isslide_cube.ml.training import resolve_device, train

BATCH = 8


def make_store(path: Path, n_train: int, n_eval: int) -> Path:
    ds = random_patches(n_train + n_eval)
    split = np.array(["train"] * n_train + ["eval"] * n_eval)
    return write_store(ds.assign_coords({schema.SPLIT: (schema.SAMPLE, split)}), path)


def _last_epoch_ms(run_dirs: list[Path], steps: int) -> float:
    """Mean wall ms per step of the runs' last epoch (history.csv ``seconds``)."""
    last = []
    for run in run_dirs:
        rows = (run / "history.csv").read_text().strip().splitlines()
        header, values = rows[0].split(","), rows[-1].split(",")
        last.append(float(values[header.index("seconds")]))
    return float(np.mean(last)) / steps * 1000


def bench_many(store: Path, out: Path, n: int, settings: dict, steps: int) -> dict:
    dev = resolve_device(settings["device"])
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(dev)
    c0, t0 = time.process_time(), time.perf_counter()
    results = train_many(store, out / f"many{n}", models=[settings["model"]], seeds=list(range(n)),
                         overwrite=True, **{k: v for k, v in settings.items() if k != "model"})
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = (torch.cuda.max_memory_allocated(dev) if dev.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    ms = _last_epoch_ms([r.run_dir for r in results], steps)
    # process CPU per step, every epoch and the setup included: the load-proof figure
    cpu_ms = cpu / (n * settings["epochs"] * steps) * 1000
    return {"n": n, "ms_run_step": ms, "ms_device_step": ms / n, "wall": wall, "cpu_ms": cpu_ms,
            "peak_mib": peak / 2**20}


def _one_process(store: str, run_dir: str, seed: int, settings: dict, threads: int) -> None:
    torch.set_num_threads(threads)
    train(store, run_dir, seed=seed, overwrite=True, **settings)


def bench_processes(store: Path, out: Path, n: int, settings: dict, steps: int) -> dict:
    """Peer: n spawned processes side by side, each training one run alone."""
    ctx = mp.get_context("spawn")  # never fork a process that may hold CUDA state
    threads = max(1, torch.get_num_threads() // n)
    dirs = [out / f"proc{n}" / f"s{i}" for i in range(n)]
    t0 = time.perf_counter()
    procs = [ctx.Process(target=_one_process, args=(str(store), str(d), i, settings, threads))
             for i, d in enumerate(dirs)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    if any(p.exitcode for p in procs):
        raise RuntimeError(f"a side-by-side process failed: exit codes {[p.exitcode for p in procs]}")
    ms = _last_epoch_ms(dirs, steps)
    return {"n": n, "ms_run_step": ms, "ms_device_step": ms / n,
            "wall": time.perf_counter() - t0}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer patches and epochs")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
    parser.add_argument("--runs", type=int, nargs="+", default=None,
                        help="runs at once to time (default: 1 4)")
    parser.add_argument("--model", default="resunet")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile(mode='reduce-overhead') each run's step (CUDA graphs)")
    parser.add_argument("--no-processes", action="store_true", help="skip the processes peer")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (CPU)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = resolve_device(args.device)
    cuda = dev.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
    runs = args.runs or [1, 4]
    if 1 not in runs:
        runs = [1, *runs]
    # CPU: the quick preset's narrow U-Net, so the comparison takes a minute, not an hour
    n_train = (256 if args.quick else 512) if cuda else (32 if args.quick else 64)
    epochs = 3 if cuda else 2
    steps = math.ceil(n_train / BATCH)
    settings = {"model": args.model, "device": str(dev), "preset": "paper", "epochs": epochs,
                "compile": args.compile}
    if not cuda:
        settings["model_kwargs"] = {"width": 8}
    load = os.getloadavg()[0]
    where = torch.cuda.get_device_name(dev) if cuda else (platform.processor() or platform.machine())
    print(f"device {dev} ({where}); {os.cpu_count()} cores, load {load:.1f}; torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{args.model} {json.dumps(settings.get('model_kwargs', {}))}, batch {BATCH}, "
          f"{n_train} train patches ({steps} steps/epoch), {epochs} epochs, last one timed, "
          f"compile={args.compile}\n")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        store = make_store(tmp / "patches.zarr", n_train, BATCH)
        rows = [bench_many(store, tmp, n, settings, steps) for n in runs]
        one = rows[0]["ms_run_step"]
        print(f"  {'runs at once':<24} {'ms/step (each run)':>19} {'ms/step (device)':>17} "
              f"{'vs one after another':>21} {'CPU ms/step':>12} {'peak MiB':>9}")
        for r in rows:
            print(f"  {'train_many x' + str(r['n']):<24} {r['ms_run_step']:19.1f} "
                  f"{r['ms_device_step']:17.1f} {one / r['ms_device_step']:20.2f}x "
                  f"{r['cpu_ms']:12.1f} {r['peak_mib']:9.0f}", flush=True)
        if not args.no_processes:
            for n in [n for n in runs if n > 1]:
                p = bench_processes(store, tmp, n, settings, steps)
                print(f"  {'peer: ' + str(n) + ' processes':<24} {p['ms_run_step']:19.1f} "
                      f"{p['ms_device_step']:17.1f} {one / p['ms_device_step']:20.2f}x", flush=True)
    print(f"\n  'vs one after another' = N x (1-run ms/step) / (N-run wall per N steps): "
          f"> 1 means N at once beat N one after another. load now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
