"""Memory of full-scene prediction against scene size (``isslide_cube.ml.scene``).

Writes cubes of one interferogram at growing sizes (same 256 px chunks), a run folder
holding an untrained ResUNet in the training contract's format, and runs
``predict_scenes`` (COG + GeoPackage + Zarr) with Dask's threaded scheduler. Reports the
peak of Python/numpy allocations (tracemalloc: the blocks, windows, polygons) and the
process's peak RSS, against the naive approach of one whole-scene probability array.

    .venv/bin/python -m benchmarks.scene_memory --quick
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import tracemalloc
from pathlib import Path


def _cube(path: Path, size: int, chunk: int = 256) -> None:
    sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
    from temporal_fixtures import make_cube, write_cube

    ds = make_cube(n_dates=2, delays=(6,), size=size, seed=0)
    write_cube(ds, path, chunk=chunk)


def _run(path: Path) -> Path:
    import torch

    from isslide_cube.ml.models import build_model

    path.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    net = build_model("resunet", width=8)
    (path / "config.json").write_text(json.dumps({
        "model": "resunet", "in_channels": 3, "n_times": 1, "temporal": None,
        "model_kwargs": {"width": 8}, "patch_size": 100, "validity": False}))
    torch.save({"model": net.state_dict()}, path / "best.pt")
    return path


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048])
    p.add_argument("--quick", action="store_true", help="sizes 256 512 1024")
    p.add_argument("--out", type=Path, default=Path("/tmp/isslide_bench_scene"))
    args = p.parse_args(argv)
    sizes = [256, 512, 1024] if args.quick else args.sizes
    import dask

    from isslide_cube.ml.scene import predict_scenes

    run = _run(args.out / "run")
    print("| scene (px) | seconds | tracemalloc peak (MiB) | whole-scene float32 array (MiB) "
          "| peak RSS (MiB) |")
    print("|---|---|---|---|---|")
    for size in sizes:
        cube = args.out / f"cube_{size}.zarr"
        _cube(cube, size)
        with dask.config.set(scheduler="threads", num_workers=2):
            tracemalloc.start()
            t = time.perf_counter()
            predict_scenes(run, cube, args.out / f"maps_{size}", threshold=0.5, write_zarr=True)
            seconds = time.perf_counter() - t
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        naive = size * size * 4 / 2**20
        print(f"| {size} x {size} | {seconds:.1f} | {peak / 2**20:.1f} | {naive:.1f} | {rss:.0f} |")


if __name__ == "__main__":
    main()
