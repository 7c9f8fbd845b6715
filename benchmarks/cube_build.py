"""Benchmark ``build_cube`` against the I/O floor, and its peak memory.

For each synthetic preset (``small``, and ``paper`` unless ``--quick``), in the
same run and each in a fresh process (so peak RSS is its own):

- **floor**: read every GeoTIFF with rasterio and write the arrays the cube
  holds per interferogram to Zarr v3 arrays with the same shapes, dtypes,
  chunks, fill values and codec (zstd level 3), one after the other, no Dask:
  ``interferogram`` (float32, the GeoTIFF's two bands as read) and equally
  sized ``mask`` (uint8) and ``move_id`` (int32) arrays. The floor writes
  those two as zeros (the value of almost every pixel of a real mask: moving
  pixels are ~1 % of the small preset), so it does not rasterize, validate,
  wrap or discover anything: what any build must at least pay;
- **build**: ``build_cube(raw, store)`` on Dask's default (threaded)
  scheduler, annotations, layover and zones included;
- **memory**: ``build_cube`` of the first third, then of all, interferograms
  (given as file lists): the peak RSS should not grow with their number.

Prints a Markdown section (append it to ``benchmarks/RESULTS.md``).

Usage::

    .venv/bin/python -m benchmarks.cube_build --quick
    .venv/bin/python -m benchmarks.cube_build --presets small paper --data /tmp/isslide_bench
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL_RATIO = 1.3


# ------------------------------------------------------------------ phases (child process)
def _cpu() -> float:
    """CPU seconds (user + system) of this process, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _floor(raw: Path, store: Path, chunk: int) -> dict:
    import numpy as np
    import pandas as pd
    import rasterio
    import zarr
    from zarr.codecs import ZstdCodec

    from isslide_cube import schema

    tifs = sorted((raw / schema.RAW_INTERFEROGRAMS).glob("*.tif"))
    pairs = [tuple(pd.Timestamp(d) for d in schema.RAW_NAME_RE.match(t.stem).groups())
             for t in tifs]
    starts = sorted({a for a, _ in pairs})
    delays = sorted({(b - a).days for a, b in pairs})
    with rasterio.open(tifs[0]) as src:
        height, width = src.shape
    t0, cpu0 = time.perf_counter(), _cpu()
    group = zarr.open_group(store, mode="w", zarr_format=3)
    n_s, n_d, zstd = len(starts), len(delays), [ZstdCodec(level=3)]
    ifg = group.create_array(schema.INTERFEROGRAM, shape=(n_s, n_d, 2, height, width),
                             chunks=(1, 1, 2, chunk, chunk), dtype="float32",
                             fill_value=np.nan, compressors=zstd)
    mask = group.create_array(schema.MASK, shape=(n_s, n_d, height, width),
                              chunks=(1, 1, chunk, chunk), dtype="uint8",
                              fill_value=schema.MASK_FILL, compressors=zstd)
    move_id = group.create_array(schema.MOVE_ID, shape=(n_s, n_d, height, width),
                                 chunks=(1, 1, chunk, chunk), dtype="int32",
                                 fill_value=schema.MOVE_ID_FILL, compressors=zstd)
    zeros8 = np.zeros((height, width), "uint8")
    zeros32 = np.zeros((height, width), "int32")
    for tif, (a, b) in zip(tifs, pairs, strict=True):
        i, j = starts.index(a), delays.index((b - a).days)
        with rasterio.open(tif) as src:
            ifg[i, j] = src.read()
        mask[i, j] = zeros8
        move_id[i, j] = zeros32
    return {"seconds": time.perf_counter() - t0, "cpu": _cpu() - cpu0, "interferograms": len(tifs),
            "shape": [height, width]}


def _build(raw: Path, store: Path, chunk: int, fraction: float | None) -> dict:
    # imported before the clock starts, as the floor's rasterio and zarr are
    import dask  # noqa: F401
    import geopandas  # noqa: F401
    import rioxarray  # noqa: F401
    import xarray  # noqa: F401
    import zarr  # noqa: F401  (the floor imports it before its clock too)

    import isslide_cube.annotations  # noqa: F401
    import isslide_cube.io  # noqa: F401
    from isslide_cube import schema
    from isslide_cube.cube import build_cube

    source, annotations = raw, None
    if fraction is not None:  # file lists: the first `fraction` of the interferograms
        tifs = sorted((raw / schema.RAW_INTERFEROGRAMS).glob("*.tif"))
        tifs = tifs[:max(1, round(len(tifs) * fraction))]
        source = tifs
        annotations = [raw / schema.RAW_ANNOTATIONS / f"{t.stem}.shp" for t in tifs]
    t0, cpu0 = time.perf_counter(), _cpu()
    summary = build_cube(source, store, annotations=annotations, chunks=chunk, overwrite=True)
    return {"seconds": time.perf_counter() - t0, "cpu": _cpu() - cpu0,
            "interferograms": summary.interferograms,
            "size_mib": summary.size_bytes / 2**20}


def _child(args: argparse.Namespace) -> None:
    import warnings

    warnings.simplefilter("ignore")
    raw, store = Path(args.raw), Path(args.store)
    if args.phase == "floor":
        out = _floor(raw, store, args.chunk)
    else:
        out = _build(raw, store, args.chunk, args.fraction)
    # ru_maxrss is in KiB on Linux: the peak resident memory of this process
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


# ------------------------------------------------------------------ driver
def _run_phase(phase: str, raw: Path, store: Path, chunk: int,
               fraction: float | None = None) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.cube_build", "--phase", phase, "--raw", str(raw),
           "--store", str(store), "--chunk", str(chunk)]
    if fraction is not None:
        cmd += ["--fraction", str(fraction)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise SystemExit(f"{phase} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    shutil.rmtree(store, ignore_errors=True)
    return result


def _median(pairs: list[tuple[float, float]], k: int) -> float:
    import statistics

    return statistics.median(p[k] for p in pairs)


def _raw(data: Path, preset: str) -> Path:
    from isslide_cube import synthetic

    raw = data / f"{preset}-seed0"
    if not (raw / "manifest.json").exists():
        t0 = time.perf_counter()
        print(f"generating {preset} into {raw} ...", file=sys.stderr, flush=True)
        synthetic.generate(raw, preset=preset, seed=0, overwrite=True)
        print(f"  {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return raw


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small only")
    parser.add_argument("--presets", nargs="+", default=None)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "isslide_bench",
                        help="where the raw presets are generated once and kept")
    parser.add_argument("--chunk", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=1,
                        help="alternating runs of floor and build (best of each kept, and the "
                             "median ratio of the pairs)")
    parser.add_argument("--phase", choices=("floor", "build"), help=argparse.SUPPRESS)
    parser.add_argument("--raw", help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    parser.add_argument("--fraction", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase:
        _child(args)
        return 0

    presets = args.presets or (["small"] if args.quick else ["small", "paper"])
    args.data.mkdir(parents=True, exist_ok=True)
    rows = []
    for preset in presets:
        raw = _raw(args.data, preset)
        store = args.data / f"{preset}.bench.zarr"
        # floor and build alternate, so that each pair sees the same load on a shared machine
        pairs = [(_run_phase("floor", raw, store, args.chunk),
                  _run_phase("build", raw, store, args.chunk)) for _ in range(args.repeat)]
        floor = min((f for f, _ in pairs), key=lambda r: r["seconds"])
        build = min((b for _, b in pairs), key=lambda r: r["seconds"])
        build["pair_ratios"] = [(b["seconds"] / f["seconds"], b["cpu"] / f["cpu"])
                                for f, b in pairs]
        third = _run_phase("build", raw, store, args.chunk, fraction=1 / 3)
        full = _run_phase("build", raw, store, args.chunk, fraction=1.0)
        rows.append((preset, floor, build, third, full))

    load = os.getloadavg()
    lines = [
        f"\n## cube_build ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n",
        f"Command: `.venv/bin/python -m benchmarks.cube_build {' '.join(argv or sys.argv[1:])}`"
        f"  ",
        f"Machine: {os.cpu_count()} cores ({platform.processor() or platform.machine()}), "
        f"load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} "
        "(shared with other jobs), chunk "
        f"{args.chunk} px, zstd level 3, Dask default threaded scheduler.\n",
        "| preset | interferograms | grid | floor s (CPU s) | build s (CPU s) | build / floor "
        "wall (CPU) | median of paired runs: wall (CPU) | peak RSS floor MiB | peak RSS build MiB "
        "| build 1/3 -> all ifgs: peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for preset, floor, build, third, full in rows:
        ratio = build["seconds"] / floor["seconds"]
        lines.append(
            f"| {preset} | {build['interferograms']} | {floor['shape'][0]} x {floor['shape'][1]} "
            f"| {floor['seconds']:.2f} ({floor['cpu']:.2f}) | {build['seconds']:.2f} "
            f"({build['cpu']:.2f}) | {ratio:.2f} ({build['cpu'] / floor['cpu']:.2f}) "
            f"{'(goal met)' if ratio <= GOAL_RATIO else f'(goal {GOAL_RATIO})'} "
            f"| {_median(build['pair_ratios'], 0):.2f} ({_median(build['pair_ratios'], 1):.2f}) "
            f"| {floor['peak_rss_mib']:.0f} | {build['peak_rss_mib']:.0f} "
            f"| {third['interferograms']} ifgs: {third['peak_rss_mib']:.0f} -> "
            f"{full['interferograms']} ifgs: {full['peak_rss_mib']:.0f} |")
    lines.append("\nFloor: rasterio read of every GeoTIFF + Zarr writes of `interferogram` and "
                 "equally sized `mask`/`move_id` (zeros), same chunks, fill values and codec, "
                 "serial, no Dask. The build also discovers and checks every file, reads the "
                 "annotations, wraps and range-checks the phase, rasterizes the masks and writes "
                 "`layover`, `zone`, the coordinates and the GeoParquet table.")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
