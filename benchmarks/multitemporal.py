"""Single- vs multi-temporal detection, the repetition filter, per-move velocities.

Trains the single-interferogram ResUNet and the multi-temporal models on the same
split with the same trainer and an equal budget (same epochs, lr, batch, seed,
width, training samples), scores them with the paper's metrics on the evaluation
split, and gives the uncertainty of each difference to the single model by a paired
bootstrap over evaluation *locations* (a location's ~7 interferograms share one
place, so they are not independent samples; pixels even less so).

Two ways in:

* ``--preset NAME`` (default, and ``--quick``): generate raw data, a cube and
  patches, then after the table also predict whole scenes with the single model,
  apply the repetition criterion to them and compare per-move velocities with the truth;
* ``--patches PATH``: an existing patches store (e.g. the ``paper`` preset's);
  only the model comparison, the training-side scores and the repetition
  criterion on the predictions of every interferogram at the evaluation locations.

Training runs in lockstep rounds: every model is trained (``resume=True``) to epoch
1, then 2, ...; with ``--deadline HH:MM`` (UTC) a round is started only while the
previous round's duration still fits before it, so whatever happens every model has
the same number of epochs. ``--jobs`` processes train at once, each with
``--threads`` torch threads.

    .venv/bin/python -m benchmarks.multitemporal --quick          # tiny preset, 2 epochs
    .venv/bin/python -m benchmarks.multitemporal --preset small --epochs 8
    nice -n 19 .venv/bin/python -m benchmarks.multitemporal \\
        --patches /tmp/bench/paper_patches.zarr --epochs 8 --deadline 00:15 --jobs 2 \\
        --scope split --train-locations 10 --out /tmp/mt_paper     # RESULTS.md, 3 epochs
    # then the repetition criterion on every interferogram at the evaluation locations:
    ... --skip-train --scope locations --models resunet convgru_unet --out /tmp/mt_paper
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

ALL_MODELS = ("resunet", "early_fusion_resunet", "convgru_unet", "temporal_attention_unet")
#: relative CPU cost of one training step (measured: width 8, depth 3, batch 8, 100 px):
#: the most expensive runs are started first in a round
COST = {"resunet": 1.0, "early_fusion_resunet": 1.0, "convgru_unet": 3.0,
        "temporal_attention_unet": 2.7}


def _markdown(df: pd.DataFrame, index: bool = True) -> str:
    """A markdown table (no tabulate dependency)."""
    df = df.reset_index() if index else df

    def fmt(v):
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _children_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def _label(model: str, temporal: str) -> str:
    return "resunet (single)" if model == "resunet" else f"{model} ({temporal})"


class Config(NamedTuple):
    """One compared run: table label, run folder name, model, temporal spec, network size."""

    label: str
    name: str
    model: str
    temporal: str | None
    model_kwargs: dict


# ------------------------------------------------------------------ worker tasks
def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _train_task(kw: dict) -> dict:
    """Train one run to ``kw["epochs"]``; CPU and wall seconds of this call."""
    from isslide_cube.ml.training import train

    c, w = time.process_time(), time.perf_counter()
    res = train(**kw)
    last = res.history[-1] if res.history else {}
    return {"run": str(kw["run_dir"]), "cpu": time.process_time() - c,
            "wall": time.perf_counter() - w, "parameters": res.parameters,
            "n_train": res.n_train, "n_eval": res.n_eval, "best_epoch": res.best_epoch,
            "train_loss": last.get("train_loss", np.nan), "val_loss": last.get("val_loss", np.nan)}


def _predict_task(run: str, patches: str, index: np.ndarray, target: str | None,
                  out: str) -> dict:
    """Probabilities of ``run``'s best checkpoint, saved to ``out`` (.npz: prob, sample).

    ``index`` selects whole locations of the store (a temporal stack never leaves its
    location, so every member is there); of those, the samples of split ``target``
    (all when None) are predicted. ``isslide_cube.ml.inference.predict_patches``
    predicts every sample of what it is given, members included, hence the loop here.
    """
    import torch

    from isslide_cube.ml.datasets import PatchDataset
    from isslide_cube.ml.temporal import TemporalPatchDataset
    from isslide_cube.ml.training import load_run
    from isslide_cube.patches import open_patches

    c, w = time.process_time(), time.perf_counter()
    net, config = load_run(run)
    subset = open_patches(patches).isel(sample=np.asarray(index))
    temporal = config.get("temporal")
    if temporal:
        data = TemporalPatchDataset(subset, split=target, spec=temporal, in_memory=True)
    else:
        data = PatchDataset(subset, split=target, in_memory=True)
    loader = torch.utils.data.DataLoader(data, batch_size=32, shuffle=False)
    with torch.no_grad():
        prob = np.concatenate([torch.sigmoid(net(b["image"]))[:, 0].numpy() for b in loader])
    np.savez(out, prob=prob.astype(np.float32), sample=np.asarray(index)[data.indices])
    return {"run": run, "out": out, "cpu": time.process_time() - c, "wall": time.perf_counter() - w}


def _run_all(fn, tasks: list[tuple], jobs: int, threads: int) -> list[dict]:
    if jobs <= 1:
        _init_worker(threads)
        return [fn(*t) for t in tasks]
    with ProcessPoolExecutor(jobs, mp_context=get_context("spawn"), initializer=_init_worker,
                             initargs=(threads,)) as pool:
        return list(pool.map(fn, *zip(*tasks, strict=True)))


# --------------------------------------------------------------------- training
def train_lockstep(configs: list[Config], patches: Path, runs: Path, *,
                   epochs: int, deadline: dt.datetime | None, jobs: int, threads: int,
                   common: dict, fresh: bool) -> tuple[int, pd.DataFrame]:
    """Train every model one epoch at a time (equal epochs whatever stops the loop).

    With ``fresh=False`` (``--continue``) a run that already has an epoch is not
    trained again for it, so a model can be added to a finished comparison.
    """
    order = sorted(configs, key=lambda c: -COST.get(c.model, 1.0) * c.model_kwargs["width"] ** 2)
    totals = {c.label: {"cpu": 0.0, "wall": 0.0} for c in configs}
    info: dict[str, dict] = {}
    done, last_round = 0, None
    if not fresh:  # continue: skip the epochs every run already has, keep their cost
        done = min(_completed_epochs(runs / c.name) for c in configs)
        previous = runs.parent / "training.csv"
        if previous.exists():
            old = pd.read_csv(previous, index_col=0)
            for label in totals:
                if label in old.index:
                    totals[label] = {"cpu": float(old.loc[label, "train CPU s"]),
                                     "wall": float(old.loc[label, "train wall s"])}
        print(f"continuing from epoch {done}")
    for epoch in range(done + 1, epochs + 1):
        now = dt.datetime.now(dt.UTC)
        if deadline is not None and last_round is not None and now + last_round > deadline:
            print(f"{now:%H:%M:%S} UTC: round {epoch} would end after the deadline "
                  f"({last_round.total_seconds():.0f} s per round); stopping at {done} epochs")
            break
        t = time.perf_counter()
        todo = [c for c in order if fresh or _completed_epochs(runs / c.name) < epoch]
        tasks = [({**common, "patches": patches, "run_dir": runs / c.name, "model": c.model,
                   "temporal": c.temporal, "model_kwargs": c.model_kwargs, "epochs": epoch,
                   "overwrite": fresh and epoch == 1, "resume": not (fresh and epoch == 1)},)
                 for c in todo]
        for c, r in zip(todo, _run_all(_train_task, tasks, jobs, threads), strict=True):
            totals[c.label]["cpu"] += r["cpu"]
            totals[c.label]["wall"] += r["wall"]
            info[c.label] = r
        done = epoch
        last_round = dt.timedelta(seconds=time.perf_counter() - t)
        print(f"{dt.datetime.now(dt.UTC):%H:%M:%S} UTC: epoch {epoch} done in "
              f"{last_round.total_seconds():.0f} s: " + ", ".join(
                  f"{lb} loss {info[lb]['train_loss']:.4f}/{info[lb]['val_loss']:.4f}"
                  for lb in (c.label for c in todo)), flush=True)
    previous = runs.parent / "training.csv"
    old = pd.read_csv(previous, index_col=0) if not fresh and previous.exists() else None
    rows = {}
    for c in configs:
        if c.label in info:
            r = info[c.label]
            rows[c.label] = {"params": r["parameters"], "n_train": r["n_train"],
                             "best epoch": r["best_epoch"],
                             "train CPU s": round(totals[c.label]["cpu"]),
                             "train wall s": round(totals[c.label]["wall"])}
        elif old is not None and c.label in old.index:  # not trained again: its earlier row
            rows[c.label] = old.loc[c.label].to_dict()
    return done, pd.DataFrame(rows).T


def _completed_epochs(run: Path) -> int:
    history = run / "history.csv"
    return len(pd.read_csv(history)) if history.exists() else 0


# ------------------------------------------------------------------- bootstrap
def location_histograms(prob: np.ndarray, mask: np.ndarray, location: np.ndarray,
                        n_bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positive/negative pixel histograms per location: (L, n_bins) each, and the locations."""
    from isslide_cube.kernels import threshold_counts

    locs = np.unique(location)
    pos = np.zeros((locs.size, n_bins), np.int64)
    neg = np.zeros_like(pos)
    for i, loc in enumerate(locs):
        sel = location == loc
        pos[i], neg[i] = threshold_counts(prob[sel], mask[sel].astype(bool), n_bins)
    return pos, neg, locs


def bootstrap_differences(hists: dict[str, tuple[np.ndarray, np.ndarray]],
                          dice: dict[str, np.ndarray], n_patches: np.ndarray, base: str,
                          n_boot: int, seed: int) -> pd.DataFrame:
    """Paired bootstrap over locations of F1 (re-optimised threshold), AUC and mean Dice.

    Every resample draws the same locations for every model; the difference of each
    model to ``base`` is taken within a resample. Returns, per model and metric, the
    bootstrap mean difference, its 2.5/97.5 percentiles and the share of resamples
    where the model is not better than the base.
    """
    from isslide_cube.kernels import f1_optimal, roc_auc_from_counts

    n_loc = n_patches.size
    rng = np.random.default_rng(seed)
    weights = np.stack([np.bincount(rng.integers(0, n_loc, n_loc), minlength=n_loc)
                        for _ in range(n_boot)])  # (B, L)
    stats = {}
    for label, (pos, neg) in hists.items():
        bpos, bneg = weights @ pos, weights @ neg  # (B, bins): resampled pooled histograms
        f1 = np.array([f1_optimal(p, n)[1] for p, n in zip(bpos, bneg, strict=True)])
        auc = np.array([roc_auc_from_counts(p, n) for p, n in zip(bpos, bneg, strict=True)])
        mdice = (weights @ dice[label]) / (weights @ n_patches)  # per-patch mean over resample
        stats[label] = {"F1": f1, "AUC": auc, "Dice": mdice}
    rows = {}
    for label in hists:
        if label == base:
            continue
        row = {}
        for m in ("F1", "AUC", "Dice"):
            d = stats[label][m] - stats[base][m]
            lo, hi = np.percentile(d, [2.5, 97.5])
            row[f"d{m}"] = float(d.mean())
            row[f"d{m} 95% CI"] = f"[{lo:+.3f}, {hi:+.3f}]"
            row[f"P(d{m}<=0)"] = float((d <= 0).mean())
        rows[label] = row
    return pd.DataFrame(rows).T


# ------------------------------------------------------------------ repetition
def repetition_counts(prob: np.ndarray, mask: np.ndarray, coords: pd.DataFrame, threshold: float,
                      *, n_mins=(2, 3), window: int = 1, radius: int = 2) -> pd.DataFrame:
    """Pixel TP/FP of the detections before and after the repetition filter.

    ``prob``/``mask`` hold every interferogram at a set of locations; they are put on
    a (location, delay, start_date, y, x) grid (absent interferograms: no detection)
    and filtered along ``start_date`` per location and delay. Counts are split into
    the ``eval`` patches (moves annotated) and the others (no annotated move).
    """
    import xarray as xr

    from isslide_cube.tracking import repetition_filter

    loc_u, loc_i = np.unique(coords["location"].to_numpy(), return_inverse=True)
    sd_u, sd_i = np.unique(coords["start_date"].to_numpy(), return_inverse=True)
    dl_u, dl_i = np.unique(coords["delay"].to_numpy(), return_inverse=True)
    h, w = prob.shape[1:]
    grid = np.zeros((loc_u.size, dl_u.size, sd_u.size, h, w), bool)
    grid[loc_i, dl_i, sd_i] = prob >= threshold
    det = xr.DataArray(grid, dims=("location", "delay", "start_date", "y", "x"))
    truth = mask.astype(bool)
    is_eval = coords["split"].to_numpy() == "eval"
    out = {}
    for name, n_min in [("raw", 1)] + [(f"repeated on >= {n} of {2 * window + 1} "
                                        f"(+-{window} start date, radius {radius} px)", n)
                                       for n in n_mins]:
        kept = grid if n_min == 1 else repetition_filter(det, n_min=n_min, window=window,
                                                         radius=radius).values
        d = kept[loc_i, dl_i, sd_i]
        tp = int((d & truth)[is_eval].sum())
        fp_e = int((d & ~truth)[is_eval].sum())
        fp_o = int((d & ~truth)[~is_eval].sum())
        n_pos = int(truth[is_eval].sum())
        out[name] = {"TP px (eval)": tp, "FP px (eval)": fp_e, "FP px (no-move patches)": fp_o,
                     "precision (eval)": tp / max(tp + fp_e, 1), "recall": tp / max(n_pos, 1),
                     "F1 (eval)": 2 * tp / max(2 * tp + fp_e + (n_pos - tp), 1)}
    df = pd.DataFrame(out).T
    return df.astype({c: np.int64 for c in df.columns if c.endswith("px (eval)")
                      or c.endswith("patches)")})


# ------------------------------------------------------------------------ main
def _parse_deadline(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    now = dt.datetime.now(dt.UTC)
    hh, mm = (int(v) for v in text.split(":"))
    when = now.replace(hour=hh, minute=mm, second=0, microsecond=0)
    return when if when > now else when + dt.timedelta(days=1)


def _make_data(preset: str, out: Path, size: int) -> Path:
    from isslide_cube import synthetic
    from isslide_cube.cube import build_cube
    from isslide_cube.patches import write_patches

    t0 = time.perf_counter()
    raw = synthetic.generate(out / "raw", preset=preset, seed=0, overwrite=True)
    build_cube(raw, out / "cube.zarr", overwrite=True)
    write_patches(out / "cube.zarr", out / "patches.zarr", size=size, split="paper", seed=0,
                  overwrite=True)
    print(f"data: {time.perf_counter() - t0:.1f} s")
    return out / "patches.zarr"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="tiny")
    p.add_argument("--patches", type=Path, default=None,
                   help="an existing patches store with a paper split (skips data generation "
                        "and the scene/velocity part)")
    p.add_argument("--epochs", type=int, default=None, help="epochs (the most, with --deadline)")
    p.add_argument("--deadline", default=None,
                   help="HH:MM UTC: start another lockstep epoch only if it should end before")
    p.add_argument("--temporal", default="start")
    p.add_argument("--out", type=Path, default=Path("/tmp/isslide_bench_multitemporal"))
    p.add_argument("--quick", action="store_true", help="tiny preset, 2 epochs")
    p.add_argument("--models", nargs="+", default=None, choices=ALL_MODELS)
    p.add_argument("--width", type=int, default=8)
    p.add_argument("--wide-single", type=int, default=0, metavar="WIDTH",
                   help="also train the single ResUNet at this width (e.g. 15: about the "
                        "ConvGRU's parameter count), to tell temporal input from capacity")
    p.add_argument("--depth", type=int, default=3)
    p.add_argument("--lr", type=float, default=None, help="default: the quick preset's (1e-3)")
    p.add_argument("--max-train", type=int, default=None,
                   help="training patches per epoch (a fixed seeded subset); 0 = all; "
                        "default: the quick preset's 1,024")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=1, help="training/prediction processes at once")
    p.add_argument("--threads", type=int, default=1, help="torch threads per process")
    p.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples")
    p.add_argument("--train-locations", type=int, default=20,
                   help="training locations to score (training-side subset)")
    p.add_argument("--scope", choices=("split", "locations"), default="locations",
                   help="predict only the eval/train patches (split) or every interferogram at "
                        "their locations (locations; needed by the repetition criterion)")
    p.add_argument("--continue", dest="cont", action="store_true",
                   help="resume the runs already in OUT instead of starting them afresh")
    p.add_argument("--skip-train", action="store_true", help="only evaluate the runs in OUT")
    args = p.parse_args(argv)
    if args.quick:
        args.preset, args.epochs = "tiny", args.epochs or 2
    epochs = args.epochs or 8
    deadline = _parse_deadline(args.deadline)
    t0 = time.perf_counter()
    load0 = os.getloadavg()

    from isslide_cube.evaluation import evaluate, format_table
    from isslide_cube.patches import open_patches

    if args.patches is not None:
        out, patches_path = args.out, args.patches.resolve()
    else:
        out = args.out / args.preset
        patches_path = _make_data(args.preset, out, 64 if args.preset == "tiny" else 100)
    out.mkdir(parents=True, exist_ok=True)
    patches = open_patches(patches_path)
    split = np.asarray(patches.split.values, dtype=object).astype(str)
    location = np.asarray(patches.location.values).astype(np.int64)

    models = args.models or (list(ALL_MODELS) if args.patches is None else list(ALL_MODELS[:3]))
    # one network size for every model, so the comparison is about the input, not the width
    size = {"width": args.width, "depth": args.depth}
    configs = [Config(_label(m, args.temporal), m, m, None if m == "resunet" else args.temporal,
                      size) for m in ALL_MODELS if m in models]
    if args.wide_single:  # the single model at the temporal models' parameter count
        configs.insert(1, Config(f"resunet (single, width {args.wide_single})",
                                 f"resunet_w{args.wide_single}", "resunet", None,
                                 {**size, "width": args.wide_single}))
    common = {"preset": "quick", "lr": args.lr, "batch_size": 8, "seed": args.seed,
              "model_kwargs": {"width": args.width, "depth": args.depth}, "device": "cpu",
              "max_train_samples": (10**9 if args.max_train == 0 else args.max_train)}
    runs = out / "runs"
    print(f"{patches_path}: {patches.sizes['sample']:,} patches, {int((split == 'train').sum())} "
          f"train / {int((split == 'eval').sum())} eval; models {[c[0] for c in configs]}; "
          f"up to {epochs} epochs; load {load0[0]:.1f}", flush=True)
    if not args.skip_train:
        done, train_table = train_lockstep(configs, patches_path, runs, epochs=epochs,
                                           deadline=deadline, jobs=args.jobs,
                                           threads=args.threads, common=common,
                                           fresh=not args.cont)
        train_table.to_csv(out / "training.csv")
    else:
        train_table = pd.read_csv(out / "training.csv", index_col=0)
        done = int(json.loads((runs / "resunet" / "config.json").read_text())["epochs"])
    t_train = time.perf_counter() - t0

    # predictions on every interferogram at the evaluation locations (and a few training ones)
    eval_locs = np.unique(location[split == "eval"])
    rng = np.random.default_rng(args.seed)
    train_locs = np.unique(location[split == "train"])
    train_locs = np.sort(rng.choice(train_locs, min(args.train_locations, train_locs.size),
                                    replace=False))
    sides = {"eval": np.flatnonzero(np.isin(location, eval_locs)),
             "train": np.flatnonzero(np.isin(location, train_locs))}
    pred_dir = out / "predictions"
    pred_dir.mkdir(exist_ok=True)
    tasks = [(str(runs / c.name), str(patches_path), idx,
              side if args.scope == "split" or side == "train" else None,
              str(pred_dir / f"{c.name}_{side}.npz"))
             for side, idx in sides.items()
             for c in sorted(configs, key=lambda c: -COST.get(c.model, 1.0))]
    t = time.perf_counter()
    pred_info = _run_all(_predict_task, tasks, args.jobs, args.threads)
    print(f"predictions ({args.scope}): {time.perf_counter() - t:.0f} s wall, CPU "
          f"{sum(r['cpu'] for r in pred_info):.0f} s", flush=True)

    results, preds, rows = {}, {}, {}
    for side in sides:
        for label, name in ((c.label, c.name) for c in configs):
            with np.load(pred_dir / f"{name}_{side}.npz") as f:
                prob, sample = f["prob"], f["sample"]
            preds[(side, label)] = (prob, sample)
            keep = split[sample] == side
            mask = patches.mask.isel(sample=sample[keep]).values
            res = evaluate(prob[keep], mask, breakdown=False)
            results[(side, label)] = res
            rows.setdefault(side, {})[label] = res.to_dict()
    n_eval = int((split == "eval").sum())
    header = (f"{done} epochs, {n_eval} eval patches at {eval_locs.size} locations, "
              f"{int(train_table['n_train'].iloc[0])} training patches per epoch")
    print(f"\nTable I metrics on the eval split ({header})\n")
    table = format_table(rows["eval"])
    print(table)
    print(f"\nSame metrics on the training side ({int((split[sides['train']] == 'train').sum())} "
          f"train patches at {train_locs.size} training locations)\n")
    print(format_table(rows["train"]))
    print("\nTraining cost (lockstep epochs)\n")
    print(_markdown(train_table))

    # paired bootstrap over evaluation locations
    base = "resunet (single)"
    hists, dice = {}, {}
    for label in (c.label for c in configs):
        prob, sample = preds[("eval", label)]
        keep = split[sample] == "eval"
        loc_eval = location[sample[keep]]
        loc_u = np.unique(loc_eval)
        n_per_loc = np.array([(loc_eval == v).sum() for v in loc_u], np.float64)
        mask = patches.mask.isel(sample=sample[keep]).values
        pos, neg, _ = location_histograms(prob[keep], mask, loc_eval, n_bins=2048)
        hists[label] = (pos, neg)
        per_patch = results[("eval", label)].per_patch["dice"]
        dice[label] = np.array([per_patch[loc_eval == v].sum() for v in loc_u])
    if base in hists and len(hists) > 1:
        boot = bootstrap_differences(hists, dice, n_per_loc, base, args.bootstrap, args.seed)
        boot.to_csv(out / "bootstrap.csv")
        print(f"\nDifference to {base}: paired bootstrap over the {loc_u.size} evaluation "
              f"locations ({args.bootstrap} resamples; F1 re-optimised per resample on 2,048 bins; "
              "Dice at each model's own threshold)\n")
        print(_markdown(boot))

    # the repetition criterion on every interferogram of the evaluation locations
    if args.scope == "locations":
        for label, name in ((c.label, c.name) for c in configs):
            prob, sample = preds[("eval", label)]
            coords = pd.DataFrame({"location": location[sample],
                                   "start_date": np.asarray(patches.start_date.values)[sample],
                                   "delay": np.asarray(patches.delay.values)[sample],
                                   "split": split[sample]})
            thr = results[("eval", label)].threshold
            rep = repetition_counts(prob, patches.mask.isel(sample=sample).values, coords, thr)
            rep.to_csv(out / f"repetition_{name}.csv")
            print(f"\nRepetition criterion, {label}, threshold {thr:.3g} (its F1-optimal on "
                  f"eval); {len(sample):,} interferogram patches at the {eval_locs.size} "
                  "evaluation locations\n")
            print(_markdown(rep))
    (out / "table.md").write_text(table + "\n")
    print(f"\npeak RSS {_rss_mib():.0f} MiB (main), {_children_rss_mib():.0f} MiB (largest worker); "
          f"load average {load0[0]:.1f} at start, {os.getloadavg()[0]:.1f} at end; training "
          f"{t_train:.0f} s, total {time.perf_counter() - t0:.0f} s")
    if args.patches is None:
        _scenes_and_velocities(out, runs / "resunet")


def _scenes_and_velocities(out: Path, run: Path) -> None:
    """Full scenes with the single model, the repetition criterion, per-move velocities."""
    import xarray as xr

    from isslide_cube.cube import open_cube
    from isslide_cube.ml.scene import predict_scenes
    from isslide_cube.tracking import compare_with_truth, move_time_series, repetition_filter

    cube = open_cube(out / "cube.zarr")
    rss0 = _rss_mib()
    t = time.perf_counter()
    summary = predict_scenes(run, out / "cube.zarr", out / "maps", threshold=None,
                             write_zarr=True)
    print(f"\n{summary}\npredict_scenes: {time.perf_counter() - t:.1f} s, peak RSS "
          f"{_rss_mib():.0f} MiB (+{_rss_mib() - rss0:.0f}), scene "
          f"{cube.sizes['y']} x {cube.sizes['x']} px")
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
    cmp = compare_with_truth(table, out / "raw" / "truth" / "moves.csv")
    print(f"\nPer-move time series: {len(table)} rows, {table.move_id.nunique()} moves, "
          f"{int(table.ambiguous.sum())} rows flagged ambiguous; velocity vs truth "
          "(median over unambiguous rows while active):\n")
    print(_markdown(cmp, index=False))
    print(f"\nwithin 20%: {int((cmp.relative_error < 0.2).sum())} of {len(cmp)} moves")


if __name__ == "__main__":
    main()
