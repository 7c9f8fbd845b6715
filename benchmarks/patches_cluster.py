"""``write_patches`` on the threaded scheduler against a distributed LocalCluster.

What ``isslide-cube patches CUBE OUT --workers N`` pays for Dask distributed:
one cube, one process, in this order: ``write_patches`` with ``client=None``
(Dask's threaded scheduler, one thread per core), with a
``LocalCluster(n_workers=N, threads_per_worker=1)`` (what the CLI starts; the
cluster is started before the clock starts), then threaded again (the two
threaded runs bracket the load of a shared machine). For each run: wall
seconds, CPU seconds of this process (client, and for the cluster run the
scheduler too) and of the worker processes, the tasks the cluster ran, and the
1-minute load average before and after, peak memory (this process's RSS
increase; each worker's peak RSS). The stores are compared array by array
(they must be identical). Prints a Markdown section for ``benchmarks/RESULTS.md``.

On a machine shared with other jobs, compare the ratios of one run and the CPU
seconds, not wall seconds across runs.

Usage::

    .venv/bin/python -m benchmarks.patches_cluster --quick
    .venv/bin/python -m benchmarks.patches_cluster --preset small --data /tmp/h7
    .venv/bin/python -m benchmarks.patches_cluster --cube /tmp/bench/paper_cube.zarr --start-dates 5
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.patches import PeakRSS, prepare

GOAL_RATIO = 1.3


def _worker_cpu(client) -> float:
    """CPU seconds (user + system) the worker processes have used so far."""

    def cpu() -> float:
        import psutil

        times = psutil.Process().cpu_times()
        return times.user + times.system

    return float(sum(client.run(cpu).values()))


def run_once(cube, out: Path, size: int, client: Any = None) -> dict[str, float]:
    """One ``write_patches`` into ``out``: wall and CPU seconds, tasks, load."""
    from isslide_cube.patches import write_patches

    load = os.getloadavg()[0]
    worker0 = _worker_cpu(client) if client is not None else 0.0
    tasks, worker_peak = None, 0.0
    cpu0, t0 = time.process_time(), time.perf_counter()
    with PeakRSS() as mem:
        if client is not None:
            from distributed import get_task_stream

            with get_task_stream(client) as stream:
                summary = write_patches(cube, out, size=size, client=client, overwrite=True)
            tasks = len(stream.data)
        else:
            summary = write_patches(cube, out, size=size, overwrite=True)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    if client is not None:
        worker_peak = max(client.run(_peak_rss_mib).values())
    workers = _worker_cpu(client) - worker0 if client is not None else 0.0
    return {"wall": wall, "cpu": cpu, "workers": workers, "tasks": tasks,
            "patches": summary.patches, "load": load, "load_after": os.getloadavg()[0],
            "rss": mem.mib, "worker_rss": worker_peak}


def _peak_rss_mib() -> float:
    """Peak resident set of the calling process since it started (MiB, Linux)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def same_stores(a: Path, b: Path) -> bool:
    """Every variable and coordinate of two patches stores equal (NaN == NaN)."""
    from isslide_cube.patches import open_patches

    x, y = open_patches(a), open_patches(b)
    if set(x.variables) != set(y.variables) or x.attrs != y.attrs:
        return False
    return all(np.array_equal(x[v].values, y[v].values, equal_nan=x[v].dtype.kind in "fc")
               for v in x.variables)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small", help="synthetic preset to build "
                        "(ignored with --cube)")
    parser.add_argument("--quick", action="store_true", help="tiny preset, size 64")
    parser.add_argument("--cube", type=Path, default=None, help="an existing cube store")
    parser.add_argument("--start-dates", type=int, default=None,
                        help="use only the first N start dates of the cube")
    parser.add_argument("--size", type=int, default=None, help="patch size (default 100)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--data", type=Path, default=Path("/tmp/isslide_bench_patches"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    preset = "tiny" if args.quick else args.preset
    size = args.size or (64 if args.quick else 100)

    from isslide_cube.cluster import local_client
    from isslide_cube.cube import open_cube

    args.data.mkdir(parents=True, exist_ok=True)
    store = args.cube or prepare(preset, args.data, args.seed)
    cube = open_cube(store)
    if args.start_dates:
        cube = cube.isel(start_date=slice(0, args.start_dates))
    outs = {k: args.data / f"patches_cluster_{k}.zarr" for k in ("threaded", "cluster")}
    started = time.strftime("%H:%M:%S", time.gmtime())
    rows = [("threaded (client=None)", run_once(cube, outs["threaded"], size))]
    print(rows[-1], flush=True)
    with local_client(None, n_workers=args.workers, threads_per_worker=1) as client:
        label = f"LocalCluster({args.workers} processes x 1 thread)"
        rows.append((label, run_once(cube, outs["cluster"], size, client)))
        print(rows[-1], flush=True)
    rows.append(("threaded, again", run_once(cube, outs["threaded"], size)))
    print(rows[-1], flush=True)
    identical = same_stores(outs["threaded"], outs["cluster"])
    ended = time.strftime("%H:%M:%S", time.gmtime())
    for out in outs.values():
        shutil.rmtree(out, ignore_errors=True)

    base = min(rows[0][1]["wall"], rows[2][1]["wall"])
    base_cpu = min(rows[0][1]["cpu"], rows[2][1]["cpu"])
    print(f"\n## patches on a distributed cluster ({time.strftime('%Y-%m-%d')} "
          f"{started}-{ended} UTC)\n")
    print(f"Command: `.venv/bin/python -m benchmarks.patches_cluster "
          f"{' '.join(argv if argv is not None else os.sys.argv[1:])}`. Machine: "
          f"{os.cpu_count()} CPUs ({platform.machine()}), Python {platform.python_version()}. "
          f"Cube `{store}` {dict(cube.sizes)}, patch size {size}, "
          f"{rows[0][1]['patches']:,} patches.\n")
    print("| scheduler | wall s | CPU s (this process) | CPU s (workers) | CPU s total | "
          "tasks run | load 1 min | peak RSS MiB | wall / best threaded | CPU / best threaded |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for label, r in rows:
        total = r["cpu"] + r["workers"]
        tasks = "" if r["tasks"] is None else f"{r['tasks']:,}"
        rss = f"+{r['rss']:.0f}" + (f" (each worker <= {r['worker_rss']:.0f})"
                                     if r["worker_rss"] else "")
        print(f"| {label} | {r['wall']:.1f} | {r['cpu']:.1f} | {r['workers']:.1f} | "
              f"{total:.1f} | {tasks} | {r['load']:.1f} -> {r['load_after']:.1f} | {rss} | "
              f"{r['wall'] / base:.2f} | {total / base_cpu:.2f} |")
    ratio = rows[1][1]["wall"] / base
    print(f"\nStores identical: {identical}. Cluster / threaded wall: {ratio:.2f} "
          f"(goal <= {GOAL_RATIO}: {'met' if ratio <= GOAL_RATIO else 'not met'}).")
    return 0 if identical else 1


if __name__ == "__main__":
    raise SystemExit(main())
