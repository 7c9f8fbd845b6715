"""Benchmark patch extraction against the read floor and the naive per-patch loop.

On one synthetic preset (``paper`` by default; ``--quick``: ``tiny``), in one run,
on one cube opened with ``open_cube`` and Dask's default threaded scheduler, with
the same move centres, after one untimed warm-up read (so every phase finds the
chunks in the OS page cache alike):

- **floor**: read every touched chunk of ``interferogram`` and ``mask`` once
  (decompress it, drop it): what any extraction must at least pay;
- **ours**: ``extract_patches(cube, size, centres)``, every patch materialised
  block by block and reduced (``nansum``), so results are not held in memory;
- **naive**: ``cube.isel(start_date, delay, y, x)`` then ``.values`` per patch,
  the loop everyone writes first; timed on ``--naive`` evenly spaced windows and
  extrapolated linearly to all of them (stated in the output);
- **write**: ``write_patches`` end to end (centres, extraction, Zarr write, split).

Peak memory: the largest RSS increase over the phase's start, sampled every 20 ms.
Prints a Markdown section; append it to ``benchmarks/RESULTS.md``.

Usage::

    .venv/bin/python -m benchmarks.patches --quick
    .venv/bin/python -m benchmarks.patches --preset paper --data /tmp/isslide_bench_patches
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

GOAL_FLOOR = 1.5
GOAL_NAIVE = 5.0


class PeakRSS:
    """Largest resident-set increase of this process while the block runs (MiB)."""

    def __init__(self, every: float = 0.02) -> None:
        import psutil

        self.proc, self.every, self.peak = psutil.Process(), every, 0
        self._stop = threading.Event()

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(self.every)

    def __enter__(self) -> PeakRSS:
        self.base = self.peak = self.proc.memory_info().rss
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def mib(self) -> float:
        return (self.peak - self.base) / 2**20


def timed(func: Callable[[], Any]) -> tuple[float, float, Any]:
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        out = func()
        seconds = time.perf_counter() - t0
    return seconds, mem.mib, out


def prepare(preset: str, data: Path, seed: int) -> Path:
    """Raw data and cube of ``preset`` under ``data`` (reused when already complete)."""
    from isslide_cube import synthetic
    from isslide_cube.cube import build_cube, open_cube
    from isslide_cube.schema import CubeError

    raw, store = data / f"raw_{preset}", data / f"cube_{preset}.zarr"
    try:
        open_cube(store)
        return store
    except CubeError:
        pass
    if not (raw / "manifest.json").exists():
        t0 = time.perf_counter()
        synthetic.generate(raw, preset=preset, seed=seed, overwrite=True, progress=True)
        print(f"generated {preset} in {time.perf_counter() - t0:.0f} s")
    t0 = time.perf_counter()
    build_cube(raw, store, overwrite=True, progress=True)
    print(f"built the {preset} cube in {time.perf_counter() - t0:.0f} s")
    return store


def touched_blocks(data, windows: list[tuple[int, int, int, int]], size: int) -> list[tuple]:
    """Block indices of ``data`` (start_date, delay, [band,] y, x) touched by the windows."""
    ys = np.cumsum((0, *data.chunks[-2]))
    xs = np.cumsum((0, *data.chunks[-1]))
    extra = (0,) * (data.ndim - 4)
    out = set()
    for si, di, r, c in windows:  # chunks are 1 along start_date and delay in a cube
        for by in range(np.searchsorted(ys, r, "right") - 1, np.searchsorted(ys, r + size)):
            for bx in range(np.searchsorted(xs, c, "right") - 1, np.searchsorted(xs, c + size)):
                out.add((si, di, *extra, int(by), int(bx)))
    return sorted(out)


def read_floor(cube, windows, size) -> int:
    import dask

    tasks = []
    for name in ("interferogram", "mask"):
        data = cube[name].data
        blocks = data.to_delayed()
        tasks += [dask.delayed(np.shape)(blocks[b]) for b in touched_blocks(data, windows, size)]
    dask.compute(*tasks)
    return len(tasks)


def ours(cube, size, centres) -> float:
    import dask
    import dask.array as da

    from isslide_cube.patches import extract_patches

    patches = extract_patches(cube, size, centres)
    total, moving = dask.compute(da.nansum(patches.interferogram.data),
                                 patches.mask.data.sum(dtype="int64"))
    return float(total) + float(moving)


def naive(cube, size, windows) -> float:
    total = 0.0
    for si, di, r, c in windows:
        one = cube.isel(start_date=si, delay=di, y=slice(r, r + size), x=slice(c, c + size))
        total += float(np.nansum(one.interferogram.values)) + float(one["mask"].values.sum())
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--quick", action="store_true", help="tiny preset, few naive windows")
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--naive", type=int, default=400, help="windows timed in the naive loop")
    parser.add_argument("--data", type=Path, default=Path("/tmp/isslide_bench_patches"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    preset = "tiny" if args.quick else args.preset
    n_naive = min(args.naive, 40) if args.quick else args.naive
    args.data.mkdir(parents=True, exist_ok=True)

    import dask

    from isslide_cube.cube import open_cube
    from isslide_cube.patches import move_centres, write_patches

    store = prepare(preset, args.data, args.seed)
    cube = open_cube(store)
    move_centres(cube, args.size)  # warm-up: numba loads its cached kernels once
    t_centres, m_centres, centres = timed(lambda: move_centres(cube, args.size))
    has = np.argwhere(cube.has_interferogram.transpose("start_date", "delay").values)
    windows = [(int(si), int(di), int(r), int(c)) for si, di in has
               for r, c in zip(centres.row, centres.col, strict=True)]
    n = len(windows)
    chunk = cube.interferogram.data.chunksize[-1]
    read_floor(cube, windows, args.size)  # warm-up: page cache alike for every phase
    t_floor, m_floor, n_chunks = timed(lambda: read_floor(cube, windows, args.size))
    t_ours, m_ours, a = timed(lambda: ours(cube, args.size, centres))
    pick = np.linspace(0, n - 1, min(n_naive, n)).astype(int)
    t_sub, m_naive, _ = timed(lambda: naive(cube, args.size, [windows[i] for i in pick]))
    t_naive = t_sub * n / len(pick)
    out = args.data / f"patches_{preset}.zarr"
    t_write, m_write, summary = timed(lambda: write_patches(store, out, size=args.size,
                                                           overwrite=True))
    shutil.rmtree(out, ignore_errors=True)

    chunk_mib = 2 * chunk * chunk * 4 / 2**20
    print(f"""
## patches: extraction vs read floor vs naive loop ({preset} preset)

`.venv/bin/python -m benchmarks.patches {'--quick' if args.quick else f'--preset {preset}'}`
on {platform.node()}: {os.cpu_count()} cores shared with other jobs at the time, Dask threaded
scheduler ({dask.config.get('num_workers', None) or os.cpu_count()} threads), warm page cache.
Cube {dict(cube.sizes)}, chunks {chunk} px ({chunk_mib:.1f} MiB per interferogram chunk);
{len(centres)} locations of {args.size} px, {n} patches, {n_chunks} touched chunks
(interferogram + mask).

| phase | seconds | peak RSS increase (MiB) | ratio |
|---|---|---|---|
| move_centres (global map + EDT + greedy cover) | {t_centres:.2f} | {m_centres:.0f} | |
| floor: read every touched chunk once | {t_floor:.2f} | {m_floor:.0f} | 1.00 |
| ours: extract_patches (computed, reduced) | {t_ours:.2f} | {m_ours:.0f} | {t_ours / t_floor:.2f} x floor (goal <= {GOAL_FLOOR}) |
| naive: cube.isel per patch ({len(pick)} of {n} timed, extrapolated) | {t_naive:.2f} | {m_naive:.0f} | {t_naive / t_ours:.1f} x ours (goal >= {GOAL_NAIVE}) |
| write_patches end to end (Zarr + split) | {t_write:.2f} | {m_write:.0f} | |

{summary}
""")
    del a
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
