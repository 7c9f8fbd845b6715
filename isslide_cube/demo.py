"""The main job, end to end, on the embedded defaults (``make demo``).

raw (synthetic ``small``) -> cube (Zarr, built on a local Dask cluster) ->
patches (global map, centres, paper split) -> a quick ResUNet -> Table I-style
metrics and figures. Every stage writes into one folder, so the outputs can be
opened afterwards in Jupyter or QGIS.

Examples
--------
>>> from isslide_cube.demo import run_demo
>>> print(run_demo("demo_output"))  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class DemoReport:
    """What the demo wrote and how long each stage took."""

    out: Path
    stages: list[tuple[str, float, str]] = field(default_factory=list)
    table: str = ""
    figures: list[Path] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"isslide_cube demo: everything is in {self.out}", ""]
        lines += [f"  {name:<10} {seconds:7.1f} s  {detail}" for name, seconds, detail in self.stages]
        total = sum(s for _, s, _ in self.stages)
        lines += [f"  {'total':<10} {total:7.1f} s", ""]
        if self.table:
            lines += [self.table, ""]
        lines += [f"figure: {p}" for p in self.figures]
        return "\n".join(lines)


def _stage(report: DemoReport, name: str, fn: Callable[[], Any], detail: Callable[[Any], str]) -> Any:
    print(f"==> {name}", flush=True)
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    report.stages.append((name, seconds, detail(result)))
    print(f"    {name} done in {seconds:.1f} s", flush=True)
    return result


def run_demo(
    out: str | Path = "demo_output",
    *,
    preset: str = "small",
    n_workers: int = 2,
    seed: int = 0,
    model: str = "resunet",
) -> DemoReport:
    """Run the whole pipeline into ``out`` (replacing what an earlier demo left there).

    Parameters
    ----------
    out
        Folder for the raw dataset, the cube, the patches, the run and figures.
    preset
        Synthetic preset (``tiny`` for a smoke test, ``small`` by default).
    n_workers
        Workers of the local Dask cluster used to build the cube and patches.
    seed
        Seed of the synthetic data, the split and the training.
    model
        A name of :data:`isslide_cube.ml.models.MODELS`.
    """
    import torch

    from isslide_cube import synthetic
    from isslide_cube.cluster import local_client
    from isslide_cube.cube import build_cube
    from isslide_cube.evaluation import evaluate_run
    from isslide_cube.ml.training import train
    from isslide_cube.patches import write_patches

    # OpenMP threads spin at every barrier: with one thread per core, any other process on
    # the machine stalls training 10-30x (measured on 2 cores); leave one core free.
    torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    raw, store, patches, run_dir = (out / "raw", out / "cube.zarr", out / "patches.zarr",
                                    out / "runs" / model)
    report = DemoReport(out)

    _stage(report, "synth", lambda: synthetic.generate(raw, preset=preset, seed=seed,
                                                       overwrite=True, progress=True),
           lambda p: f"{preset} raw dataset -> {p}")
    report.figures += synthetic.quicklook(raw, out / "figures")
    with local_client(n_workers=n_workers, threads_per_worker=1) as client:
        _stage(report, "build", lambda: build_cube(raw, store, client=client, overwrite=True,
                                                   progress=True),
               lambda s: f"cube -> {store}")
        _stage(report, "patches", lambda: write_patches(store, patches, split="paper", seed=seed,
                                                        overwrite=True, client=client,
                                                        progress=True),
               lambda s: f"patches -> {patches}")
    _stage(report, "train", lambda: train(patches, run_dir, model=model, preset="quick", seed=seed,
                                          overwrite=True, progress=True),
           lambda r: f"{model} (quick) -> {run_dir}")
    table = _stage(report, "evaluate", lambda: evaluate_run(run_dir, patches, split="eval"),
                   lambda r: f"metrics -> {run_dir / 'metrics.json'}")
    report.table = str(table)
    report.figures += sorted(run_dir.rglob("*.png"))
    return report
