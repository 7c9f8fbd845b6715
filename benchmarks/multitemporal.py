"""Single- vs multi-temporal detection, the repetition filter, per-move velocities.

Builds a synthetic dataset (raw -> cube -> patches with the paper split), trains the
single-interferogram ResUNet and the multi-temporal models on the same split with the
same trainer and budget, scores them with the paper's metrics on the evaluation split,
then predicts whole scenes with the best single model and measures what the repetition
criterion does to false positives, and compares per-move velocities with the truth.

    .venv/bin/python -m benchmarks.multitemporal --quick          # tiny preset, 2 epochs
    .venv/bin/python -m benchmarks.multitemporal --preset small --epochs 8
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd


def _markdown(df: pd.DataFrame, index: bool = True) -> str:
    """A markdown table (no tabulate dependency)."""
    df = df.reset_index() if index else df
    fmt = [lambda v: f"{v:.3f}" if isinstance(v, float) else str(v)]
    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(fmt[0](v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="tiny")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--temporal", default="start")
    p.add_argument("--out", type=Path, default=Path("/tmp/isslide_bench_multitemporal"))
    p.add_argument("--quick", action="store_true", help="tiny preset, 2 epochs")
    p.add_argument("--models", nargs="+", default=None,
                   help="subset of: resunet early_fusion_resunet convgru_unet temporal_attention_unet")
    args = p.parse_args(argv)
    if args.quick:
        args.preset, args.epochs = "tiny", args.epochs or 2
    epochs = args.epochs or 8
    size = 64 if args.preset == "tiny" else 100
    # one network size for every model, so the comparison is about the input, not the width
    net_kw = {"width": 8, "depth": 3}

    from isslide_cube import synthetic
    from isslide_cube.cube import build_cube, open_cube
    from isslide_cube.evaluation import evaluate, format_table
    from isslide_cube.ml.inference import predict_patches
    from isslide_cube.ml.scene import predict_scenes
    from isslide_cube.ml.training import load_run, train
    from isslide_cube.patches import open_patches, write_patches
    from isslide_cube.tracking import compare_with_truth, move_time_series, repetition_filter

    out = args.out / args.preset
    t0 = time.perf_counter()
    raw = synthetic.generate(out / "raw", preset=args.preset, seed=0, overwrite=True)
    build_cube(raw, out / "cube.zarr", overwrite=True)
    write_patches(out / "cube.zarr", out / "patches.zarr", size=size, split="paper", seed=0,
                  overwrite=True)
    print(f"data: {time.perf_counter() - t0:.1f} s")
    patches = open_patches(out / "patches.zarr")
    is_eval = patches.split.values == "eval"
    eval_ds = patches.isel(sample=np.flatnonzero(is_eval))

    configs = [("resunet (single)", "resunet", None),
               (f"early_fusion_resunet ({args.temporal})", "early_fusion_resunet", args.temporal),
               (f"convgru_unet ({args.temporal})", "convgru_unet", args.temporal),
               (f"temporal_attention_unet ({args.temporal})", "temporal_attention_unet",
                args.temporal)]
    if args.models:
        configs = [c for c in configs if c[1] in args.models]
    rows, seconds = {}, {}
    for label, model, temporal in configs:
        run = out / "runs" / label.split()[0]
        t = time.perf_counter()
        res = train(out / "patches.zarr", run, model=model, preset="quick", epochs=epochs,
                    temporal=temporal, model_kwargs=net_kw, device="cpu", seed=0, overwrite=True)
        seconds[label] = time.perf_counter() - t
        net, _ = load_run(run)
        if temporal is None:
            prob = predict_patches(net, eval_ds)
        else:
            prob = predict_patches(net, patches, temporal=temporal)[is_eval]
        rows[label] = evaluate(prob, eval_ds.mask.values, breakdown=False).to_dict()
        print(f"{label}: {res.parameters:,} parameters, {seconds[label]:.0f} s")
    print(f"\nTable I metrics on the eval split ({int(is_eval.sum())} patches, {epochs} epochs, "
          f"train {int((patches.split.values == 'train').sum())} patches)\n")
    print(format_table(rows))
    base = rows["resunet (single)"]["f1"]
    for label, r in rows.items():
        print(f"  {label}: F1 ratio to single = {r['f1'] / base:.2f}, train {seconds[label]:.0f} s")

    # full scenes with the single model, then the repetition criterion
    cube = open_cube(out / "cube.zarr")
    rss0 = _rss_mib()
    t = time.perf_counter()
    summary = predict_scenes(out / "runs" / "resunet", out / "cube.zarr", out / "maps",
                             threshold=None, write_zarr=True)
    print(f"\n{summary}\npredict_scenes: {time.perf_counter() - t:.1f} s, peak RSS "
          f"{_rss_mib():.0f} MiB (+{_rss_mib() - rss0:.0f}), scene "
          f"{cube.sizes['y']} x {cube.sizes['x']} px")
    import xarray as xr

    prob = xr.open_zarr(summary.zarr).probability
    has = cube.has_interferogram
    detected = (prob >= summary.threshold) & has
    truth = (cube.mask == 1) & has
    counts = {}
    for name, det in [("raw", detected)] + [
            (f"repeated n>={n}, window 1, radius 2",
             repetition_filter(detected, n_min=n, window=1, radius=2)) for n in (2, 3)]:
        tp, fp = int((det & truth).sum()), int((det & ~truth).sum())
        counts[name] = {"TP px": tp, "FP px": fp, "precision": tp / max(tp + fp, 1),
                        "recall": tp / max(int(truth.sum()), 1)}
    print("\nRepetition criterion on the scene predictions (threshold "
          f"{summary.threshold:.3g})\n")
    print(_markdown(pd.DataFrame(counts).T))

    table = move_time_series(cube)
    table.to_csv(out / "move_time_series.csv", index=False)
    cmp = compare_with_truth(table, raw / "truth" / "moves.csv")
    print(f"\nPer-move time series: {len(table)} rows, {table.move_id.nunique()} moves, "
          f"{int(table.ambiguous.sum())} rows flagged ambiguous; velocity vs truth "
          "(median over unambiguous rows while active):\n")
    print(_markdown(cmp, index=False))
    print(f"\nwithin 20%: {int((cmp.relative_error < 0.2).sum())} of {len(cmp)} moves")
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
