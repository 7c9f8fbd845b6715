"""The numba kernels against the libraries people use today, in one run.

| work | peers |
|---|---|
| EDT of one 4096 x 4096 mask | ``edt`` package (parallel=1, 2), ``scipy.ndimage.distance_transform_edt`` |
| EDT of one 16384 x 16384 mask | ``edt`` parallel=2 |
| EDT of 10,000 masks of 100 x 100 | scipy in a loop, ``edt`` in a loop |
| Hausdorff of 10,000 pairs of 100 x 100 | scipy-EDT-based, ``directed_hausdorff``, MONAI |
| F1-optimal threshold + AUC of 1e8 probabilities | ``roc_auc_score`` + ``precision_recall_curve`` |

Masks: "blobs" (smoothed noise thresholded: moving-area-like shapes, what the
library transforms) and, for the large EDTs, also "random" (50 % salt and pepper)
and "sparse" (100 zero pixels: long distances). Every result is checked against
the peer's. Times are the best of ``--repeat`` runs; a slow peer on the batch
work runs on a subset and is extrapolated linearly (said in the output). Peak
memory: the rise of the process's peak RSS during the call
(``/proc/self/clear_refs`` resets the peak), so it includes the output array.

Run: ``.venv/bin/python -m benchmarks.kernels [--quick]``.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time
from collections.abc import Callable

import numpy as np
from scipy import ndimage as ndi

from isslide_cube.kernels import (
    edt,
    edt_batch,
    f1_optimal,
    hausdorff_batch,
    roc_auc_from_counts,
    threshold_counts,
)

ROWS: list[str] = []


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def measure(fn: Callable[[], object], repeat: int = 3) -> tuple[float, float, object]:
    """Best wall time (s), peak RSS rise (MiB) over the calls, and the last result.

    The process CPU time of the fastest call goes to ``LAST_CPU`` (all threads):
    on a machine shared with other jobs it shows the work done, wall time the wait.
    """
    global LAST_CPU
    best = math.inf
    cpu = math.inf
    peak = 0.0
    res = None
    for _ in range(repeat):
        res = None
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # reset VmHWM (peak RSS)
        except OSError:
            pass
        base = _rss_kib("VmRSS:")
        c0 = time.process_time()
        t0 = time.perf_counter()
        res = fn()
        t = time.perf_counter() - t0
        if t < best:
            best, cpu = t, time.process_time() - c0
        peak = max(peak, (_rss_kib("VmHWM:") - base) / 1024)
    LAST_CPU = cpu
    return best, peak, res


LAST_CPU = math.nan


def report(work: str, rows: list[tuple[str, float, float, float]], ours: str, note: str = "") -> None:
    """Print and keep a markdown table: wall and CPU time, ratio peer/ours, peak memory."""
    t_ours = dict((r[0], r[1]) for r in rows)[ours]
    print(f"\n### {work}" + (f"  ({note})" if note else ""))
    lines = ["| method | wall s | ours is x faster (wall) | process CPU s | peak RSS rise (MiB) |",
             "|---|---|---|---|---|"]
    for name, t, mem, cpu in rows:
        ratio = "" if name == ours else f"{t / t_ours:.1f}"
        lines.append(f"| {name} | {t:.4f} | {ratio} | {cpu:.4f} | {mem:.0f} |")
    print("\n".join(lines))
    ROWS.append(f"\n**{work}**" + (f" ({note})" if note else "") + "\n\n" + "\n".join(lines))


def blobs(shape: tuple[int, ...], seed: int, sigma: float = 3.0) -> np.ndarray:
    """Bool mask of smooth blobs (about 40 % foreground), float32 noise smoothed in place."""
    rng = np.random.default_rng(seed)
    if len(shape) == 3:
        out = np.empty(shape, bool)
        for s in range(0, shape[0], 500):
            noise = rng.standard_normal((min(500, shape[0] - s),) + shape[1:], dtype=np.float32)
            out[s:s + 500] = ndi.gaussian_filter(noise, (0, sigma, sigma)) > 0.05
        return out
    small = rng.standard_normal((shape[0] // 4, shape[1] // 4), dtype=np.float32)
    field = ndi.zoom(ndi.gaussian_filter(small, sigma), 4, order=1)
    return field > 0.05 * field.std()


def masks_for(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    sparse = np.ones((n, n), bool)
    sparse[rng.integers(0, n, 100), rng.integers(0, n, 100)] = False
    return {"blobs": blobs((n, n), seed), "random": rng.random((n, n)) < 0.5, "sparse": sparse}


def bench_edt_large(n: int, peers: list[str], repeat: int) -> None:
    import edt as edt_pkg

    for kind, m in masks_for(n).items():
        funcs: dict[str, Callable[[], np.ndarray]] = {"isslide edt (numba, 2 threads)": lambda m=m: edt(m)}
        if "edt1" in peers:
            funcs["edt package parallel=1"] = lambda m=m: edt_pkg.edt(m, parallel=1)
        if "edt2" in peers:
            funcs["edt package parallel=2"] = lambda m=m: edt_pkg.edt(m, parallel=2)
        if "scipy" in peers:
            funcs["scipy distance_transform_edt"] = lambda m=m: ndi.distance_transform_edt(m)
        rows = []
        ref = None
        for name, fn in funcs.items():
            t, mem, res = measure(fn, 1 if "scipy" in name or n > 8192 else repeat)
            rows.append((name, t, mem, LAST_CPU))
            if ref is None:
                ref = res
            else:
                fin = np.isfinite(ref)
                err = float(np.max(np.abs(ref[fin] - res[fin]))) if fin.any() else 0.0
                if err > 1e-3 * max(1.0, float(np.max(ref[fin], initial=1.0))):
                    raise SystemExit(f"{name} disagrees with ours on {kind}: max |diff| {err}")
            del res
        ref = None
        report(f"EDT {n} x {n}, {kind} mask", rows, "isslide edt (numba, 2 threads)",
               f"{100 * m.mean():.0f} % foreground")


def bench_edt_batch(n: int, repeat: int) -> None:
    import edt as edt_pkg

    masks = blobs((n, 100, 100), 1)
    k_slow = min(n, 2000)

    def scipy_loop():
        return [ndi.distance_transform_edt(m) for m in masks[:k_slow]]

    def edt_loop():
        return [edt_pkg.edt(m, parallel=1) for m in masks[:k_slow]]

    t0, m0, ours = measure(lambda: edt_batch(masks), repeat)
    c0 = LAST_CPU
    t1, m1, ref1 = measure(scipy_loop, 1)
    c1 = LAST_CPU
    t2, m2, ref2 = measure(edt_loop, 1)
    c2 = LAST_CPU
    for ref in (ref1, ref2):
        np.testing.assert_allclose(ours[:k_slow], np.stack(ref), rtol=1e-5)
    scale = n / k_slow
    report(f"EDT of {n} masks of 100 x 100 (blobs)",
           [("isslide edt_batch (numba, 2 threads)", t0, m0, c0),
            ("scipy distance_transform_edt loop", t1 * scale, m1, c1 * scale),
            ("edt package loop (parallel=1)", t2 * scale, m2, c2 * scale)],
           "isslide edt_batch (numba, 2 threads)",
           f"peers timed on {k_slow} masks, x{scale:g}" if scale != 1 else "")


def _scipy_edt_hd(a: np.ndarray, b: np.ndarray) -> float:
    if not a.any() or not b.any():
        return math.hypot(*a.shape)
    da = ndi.distance_transform_edt(~b)
    db = ndi.distance_transform_edt(~a)
    return float(max(da[a].max(), db[b].max()))


def bench_hausdorff(n: int, repeat: int, quick: bool) -> None:
    from scipy.spatial.distance import directed_hausdorff

    A = blobs((n, 100, 100), 2)
    B = blobs((n, 100, 100), 3, sigma=4.0)
    t0, m0, ours = measure(lambda: hausdorff_batch(A, B), repeat)
    rows = [("isslide hausdorff_batch (numba, 2 threads)", t0, m0, LAST_CPU)]
    notes = []

    k = min(n, 1000 if quick else 2000)
    t, mem, ref = measure(lambda: [_scipy_edt_hd(a, b) for a, b in zip(A[:k], B[:k], strict=True)], 1)
    np.testing.assert_allclose(ours[:k], ref, rtol=1e-9)
    rows.append(("scipy distance_transform_edt based loop", t * n / k, mem, LAST_CPU * n / k))
    notes.append(f"scipy-EDT on {k}")

    def dh(a, b):
        pa, pb = np.argwhere(a), np.argwhere(b)
        return max(directed_hausdorff(pa, pb)[0], directed_hausdorff(pb, pa)[0])

    k = min(n, 100 if quick else 300)
    t, mem, ref = measure(lambda: [dh(a, b) for a, b in zip(A[:k], B[:k], strict=True)], 1)
    np.testing.assert_allclose(ours[:k], ref, rtol=1e-9)
    rows.append(("scipy directed_hausdorff loop", t * n / k, mem, LAST_CPU * n / k))
    notes.append(f"directed_hausdorff on {k}")
    try:
        import torch
        from monai.metrics import compute_hausdorff_distance
    except ImportError:
        notes.append("MONAI not installed")
    else:
        k = min(n, 200 if quick else 1000)
        yp = torch.from_numpy(A[:k, None])
        yt = torch.from_numpy(B[:k, None])
        t, mem, ref = measure(
            lambda: compute_hausdorff_distance(yp, yt, include_background=True), 1)
        # MONAI measures between surfaces (edge pixels), not between pixel sets:
        # the farthest pixel of a set can be interior, so values may differ
        same = np.isclose(ours[:k], ref.numpy()[:, 0], rtol=1e-5).mean()
        rows.append(("MONAI compute_hausdorff_distance (CPU)", t * n / k, mem, LAST_CPU * n / k))
        notes.append(f"MONAI on {k} (surface-based definition: equal on {100 * same:.0f} % of pairs)")
    report(f"Hausdorff distance of {n} pairs of 100 x 100 (blobs)", rows,
           "isslide hausdorff_batch (numba, 2 threads)",
           "peers extrapolated linearly: " + ", ".join(notes))


def bench_counts(n: int, repeat: int) -> None:
    from sklearn.metrics import precision_recall_curve, roc_auc_score

    rng = np.random.default_rng(4)
    truth = rng.random(n, dtype=np.float32) < 0.15
    prob = rng.standard_normal(n, dtype=np.float32)
    prob *= 1.3
    prob += 2.2 * truth - 1.0
    np.negative(prob, out=prob)
    np.exp(prob, out=prob)
    prob += 1
    np.reciprocal(prob, out=prob)

    def ours():
        pos, neg = threshold_counts(prob, truth, 100_000)
        thr, f1 = f1_optimal(pos, neg)
        return thr, f1, roc_auc_from_counts(pos, neg)

    def sk():
        auc = roc_auc_score(truth, prob)
        p, r, t = precision_recall_curve(truth, prob)
        with np.errstate(invalid="ignore", divide="ignore"):
            f = 2 * p * r / (p + r)
        k = int(np.nanargmax(f[:-1]))
        return float(t[k]), float(f[k]), float(auc)

    t0, m0, (thr, f1, auc) = measure(ours, repeat)
    c0 = LAST_CPU
    t1, m1, (sthr, sf1, sauc) = measure(sk, 1)
    report(f"F1-optimal threshold + ROC AUC of {n:.0e} probabilities", [
        ("isslide threshold_counts (1e5 bins) + f1_optimal + roc_auc_from_counts", t0, m0, c0),
        ("sklearn roc_auc_score + precision_recall_curve", t1, m1, LAST_CPU),
    ], "isslide threshold_counts (1e5 bins) + f1_optimal + roc_auc_from_counts",
        f"|AUC diff| {abs(auc - sauc):.2e}, |F1 diff| {abs(f1 - sf1):.2e}, "
        f"thresholds {thr:.5f} vs {sthr:.5f}")
    if abs(auc - sauc) > 1e-3 or abs(f1 - sf1) > 1e-3:
        raise SystemExit("AUC or F1 off by more than 1e-3")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", default="edt,big,batch,hausdorff,counts",
                    help="comma-separated parts to run")
    args = ap.parse_args()
    parts = set(args.only.split(","))
    repeat = 1 if args.quick else args.repeat
    # compile outside the timings (numba caches to disk, but load it once)
    edt(np.ones((3, 3), bool))
    edt(np.ones((3, 3), bool), n_threads=1)
    edt_batch(np.ones((20, 3, 3), bool))
    hausdorff_batch(np.ones((20, 3, 3), bool), np.ones((20, 3, 3), bool))
    threshold_counts(np.zeros(2_000_000, np.float32), np.zeros(2_000_000, bool), 10)

    print(f"# benchmarks.kernels on {platform.node()}: {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f} at start, numba threads "
          f"{__import__('numba').get_num_threads()}")
    if "edt" in parts:
        bench_edt_large(2048 if args.quick else 4096, ["edt1", "edt2", "scipy"], repeat)
    if "big" in parts and not args.quick:
        bench_edt_large(16384, ["edt2"], 1)
    if "batch" in parts:
        bench_edt_batch(2000 if args.quick else 10_000, repeat)
    if "hausdorff" in parts:
        bench_hausdorff(2000 if args.quick else 10_000, repeat, args.quick)
    if "counts" in parts:
        bench_counts(10**7 if args.quick else 10**8, repeat)
    print(f"\nload average at end {os.getloadavg()[0]:.1f}")
    print("\n# markdown\n" + "\n".join(ROWS))


if __name__ == "__main__":
    main()
