"""evaluate() against the same Table I metrics from sklearn + scipy, in one run.

Peer (what people write today): ``sklearn.metrics.precision_recall_curve`` for the
F1-optimal threshold, ``roc_auc_score`` for AUC, numpy for per-patch Dice/IoU and
``scipy.spatial.distance.directed_hausdorff`` (both directions) per patch for HD.

Sizes: the paper's 572 evaluation patches and 100,000 patches, 100 x 100 px. For
100,000 patches (1e9 pixels) the peer would sort 1e9 floats (and hold ~16 GB), so its
time is *estimated* from a random subset of patches, scaled linearly by the patch
count (a lower bound for the sorting part, which grows as n log n); the output says
so. Numbers are compared on every size the peer actually ran: F1, AUC, Dice, IoU, HD
of the whole set (572) and the per-patch Dice/IoU/HD of the subset at the same
threshold (100,000).

Run: ``.venv/bin/python -m benchmarks.evaluation [--quick]``.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time
import tracemalloc

import numpy as np
from scipy.spatial.distance import directed_hausdorff
from sklearn.metrics import precision_recall_curve, roc_auc_score

from isslide_cube.evaluation import evaluate


def make_maps(n: int, size: int = 100, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Disk-shaped moves (some patches without) and noisy sigmoid probabilities, float32."""
    rng = np.random.default_rng(seed)
    prob = np.empty((n, size, size), np.float32)
    mask = np.empty((n, size, size), np.uint8)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    step = 2000
    for s in range(0, n, step):
        m = min(step, n - s)
        cy, cx = rng.uniform(20, 80, (2, m, 1, 1)).astype(np.float32)
        r = rng.uniform(3, 30, (m, 1, 1)).astype(np.float32)
        r[rng.random(m) < 0.05] = 0  # a few patches without a move
        # the prediction is a shifted, resized disk plus noise: realistic errors
        d = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
        mask[s:s + m] = d <= r
        dp = np.sqrt((yy - cy - rng.normal(0, 3, (m, 1, 1)).astype(np.float32)) ** 2
                     + (xx - cx) ** 2)
        logit = (r * 1.1 - dp) / 3.0 + rng.standard_normal((m, size, size), np.float32) * 1.5
        prob[s:s + m] = 1.0 / (1.0 + np.exp(-logit))
    return prob, mask


def peer_threshold_f1_auc(prob: np.ndarray, mask: np.ndarray) -> tuple[float, float, float]:
    y, p = mask.ravel(), prob.ravel()
    precision, recall, thresholds = precision_recall_curve(y, p)
    f1 = np.divide(2 * precision * recall, precision + recall,
                   out=np.zeros_like(precision), where=(precision + recall) > 0)[:-1]
    k = int(np.argmax(f1))
    return float(thresholds[k]), float(f1[k]), float(roc_auc_score(y, p))


def peer_per_patch(prob: np.ndarray, mask: np.ndarray, thr: float):
    pred = prob >= thr
    ref = mask.astype(bool)
    h, w = prob.shape[1:]
    dice, iou, hd = [], [], []
    for a, b in zip(pred, ref, strict=True):
        inter, union, tot = (a & b).sum(), (a | b).sum(), a.sum() + b.sum()
        dice.append(1.0 if union == 0 else 2 * inter / tot)
        iou.append(1.0 if union == 0 else inter / union)
        pa, pb = np.argwhere(a), np.argwhere(b)
        if len(pa) and len(pb):
            hd.append(max(directed_hausdorff(pa, pb)[0], directed_hausdorff(pb, pa)[0]))
        else:
            hd.append(0.0 if not len(pa) and not len(pb) else math.hypot(h, w))
    return np.array(dice), np.array(iou), np.array(hd)


def timed(fn, *args, **kw):
    tracemalloc.start()
    t = time.perf_counter()
    out = fn(*args, **kw)
    dt = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, dt, peak / 2**20


def run(n: int, peer_subset: int | None, seed: int = 0) -> dict:
    prob, mask = make_maps(n, seed=seed)
    evaluate(prob[:8], mask[:8])  # compile the kernels outside the timing
    ours, t_ours, mem_ours = timed(evaluate, prob, mask, breakdown=False)
    row = {"n": n, "t_ours": t_ours, "mem_ours": mem_ours, "ours": ours}
    if peer_subset is None or peer_subset >= n:
        (thr, f1, auc), t1, m1 = timed(peer_threshold_f1_auc, prob, mask)
        (dice, iou, hd), t2, m2 = timed(peer_per_patch, prob, mask, ours.threshold)
        row.update(t_peer=t1 + t2, mem_peer=max(m1, m2), estimated=False,
                   diff={"f1": abs(ours.f1 - f1), "auc": abs(ours.auc - auc),
                         "dice": abs(ours.dice - dice.mean()), "iou": abs(ours.iou - iou.mean()),
                         "hd": abs(ours.hd - hd.mean())}, peer_thr=thr)
    else:
        idx = np.sort(np.random.default_rng(seed).choice(n, peer_subset, replace=False))
        sp, sm = prob[idx], mask[idx]
        _, t1, m1 = timed(peer_threshold_f1_auc, sp, sm)
        (dice, iou, hd), t2, m2 = timed(peer_per_patch, sp, sm, ours.threshold)
        scale = n / peer_subset
        pp = ours.per_patch
        row.update(t_peer=(t1 + t2) * scale, mem_peer=max(m1, m2) * scale, estimated=True,
                   subset=peer_subset,
                   diff={"dice": float(np.abs(pp["dice"][idx] - dice).max()),
                         "iou": float(np.abs(pp["iou"][idx] - iou).max()),
                         "hd": float(np.abs(pp["hd"][idx] - hd).max())})
    return row


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="572 and 5,000 patches")
    args = ap.parse_args(argv)
    sizes = [(572, None), (5_000, 500)] if args.quick else [(572, None), (100_000, 2_000)]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS', 'default')}")
    print("| patches (100x100) | evaluate s | sklearn+scipy s | speed-up | peak MiB ours / peer "
          "| max abs diff |")
    print("|---|---|---|---|---|---|")
    for n, subset in sizes:
        r = run(n, subset)
        est = f" (estimated from {r['subset']:,} patches x{n / r['subset']:.0f})" \
            if r["estimated"] else ""
        diff = ", ".join(f"{k} {v:.1e}" for k, v in r["diff"].items())
        print(f"| {n:,} | {r['t_ours']:.2f} | {r['t_peer']:.1f}{est} | "
              f"{r['t_peer'] / r['t_ours']:.0f}x | {r['mem_ours']:.0f} / {r['mem_peer']:.0f} "
              f"| {diff} |")
        print(f"  ours: {r['ours']!r}")


if __name__ == "__main__":
    main()
