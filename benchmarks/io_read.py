"""Reading interferograms: ``isslide_cube.io.read_interferogram`` against plain rasterio, same windows.

Peers, in the same run, on the same file (a 2-band float32 GeoTIFF, zstd, tiled,
written here) read as row bands of ``--rows`` rows (what a cube chunk row needs):

- ``rasterio, one open``: one dataset open for every window (GDAL's block cache
  shares the tiles that straddle two windows): the floor.
- ``rasterio, open per window``: what a task that reads one window must do.
- ``read_interferogram``: open per window + grid check + nodata/NaN + wrap +
  float32 assembly (and ``validate_values=True``).
- ``read_interferogram (unwrapped)``: the same file marked unwrapped (float64 wrap).

Run: ``.venv/bin/python -m benchmarks.io_read [--quick]``
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin
from rasterio.windows import Window

from isslide_cube.io import check_grids, discover, read_interferogram


def _write(path: Path, size: int) -> None:
    rng = np.random.default_rng(0)
    data = np.stack([rng.uniform(0, 1, (size, size)), rng.uniform(-3, 3, (size, size))])
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=2,
                       dtype="float32", crs="EPSG:4326", transform=from_origin(6, 45, 1e-4, 1e-4),
                       nodata=np.nan, tiled=True, blockxsize=256, blockysize=256,
                       compress="zstd", predictor=3, interleave="band") as dst:
        dst.write(data.astype("float32"))
        dst.descriptions = ("coherence", "phase")


def _best(fn: Callable[[], None], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small file, one repeat")
    parser.add_argument("--size", type=int, default=None, help="pixels a side (default 4000)")
    parser.add_argument("--rows", type=int, default=500, help="rows per window (cube chunk)")
    args = parser.parse_args(argv)
    size = args.size or (1000 if args.quick else 4000)
    repeat = 1 if args.quick else 3
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "interferograms" / "S1_20180702_20180708.tif"
        path.parent.mkdir()
        _write(path, size)
        inv = discover(path.parent)
        grid = check_grids(inv.items)
        item = inv.items[0]
        unwrapped = dataclasses.replace(item, phase_unwrapped=True)
        windows = [Window(0, r, size, min(args.rows, size - r)) for r in range(0, size, args.rows)]

        def one_open() -> None:
            with rasterio.open(path) as src:
                for w in windows:
                    src.read(window=w)

        def open_per_window() -> None:
            for w in windows:
                with rasterio.open(path) as src:
                    src.read(window=w)

        def ours(it=item, validate=True) -> None:
            for w in windows:
                read_interferogram(it, grid, window=w, validate_values=validate)

        peers = {
            "rasterio, one open": one_open,
            "rasterio, open per window": open_per_window,
            "read_interferogram": lambda: ours(validate=False),
            "read_interferogram, validate_values": ours,
            "read_interferogram, unwrapped": lambda: ours(unwrapped, False),
        }
        results = {name: _best(fn, repeat) for name, fn in peers.items()}
    floor = results["rasterio, one open"]
    per_window = results["rasterio, open per window"]
    mb = 2 * 4 * size * size / 1e6
    print(f"file {size} x {size} x 2 float32 ({mb:.0f} MB), zstd, 256 px tiles; "
          f"windows of {args.rows} rows; best of {repeat}")
    for name, seconds in results.items():
        print(f"  {name:38s} {seconds:7.3f} s  {mb / seconds:7.0f} MB/s  "
              f"x{seconds / floor:4.2f} one-open  x{seconds / per_window:4.2f} open-per-window")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the process: {peak:.0f} MiB")


if __name__ == "__main__":
    main()
