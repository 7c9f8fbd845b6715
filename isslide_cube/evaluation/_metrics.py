"""Table I metrics over probability and mask arrays: the exact F1-optimal threshold, AUC,
Dice, IoU and Hausdorff (definitions in the package docstring)."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from isslide_cube.schema import DELAY, SAMPLE, ZONE, IsslideError

log = logging.getLogger(__name__)

DEFAULT_N_BINS = 1 << 14  # the fastest size of the histogram kernel; exactness comes from refinement
F1_TOL = 1e-6
AUC_TOL = 1e-4
BLOCK_PIXELS = 1 << 22  # ~4 M pixels per block: float32 block of 16 MB, flat memory
METRICS = ("f1", "auc", "dice", "iou", "hd")
HIGHER_IS_BETTER = {"f1": True, "auc": True, "dice": True, "iou": True, "hd": False}


class EvaluationError(IsslideError, ValueError):
    """Inputs of an evaluation are wrong (shape, NaN, range); the message says how to fix them."""


# ------------------------------------------------------------------ result
@dataclass(frozen=True, repr=False, eq=False)
class EvaluationResult:
    """Scores of one prediction set; ``to_dict()`` is what ``metrics.json`` holds."""

    f1: float
    auc: float
    dice: float
    iou: float
    hd: float
    threshold: float
    precision: float
    recall: float
    n_pixels: int
    n_patches: int
    n_empty_prediction: int
    n_empty_reference: int
    n_both_empty: int
    hd_empty: float | str
    f1_gap_bound: float
    auc_error_bound: float
    breakdown: dict[str, dict[str, EvaluationResult]] = field(default_factory=dict)
    per_patch: dict[str, np.ndarray] = field(default_factory=dict)
    curves: dict[str, np.ndarray] = field(default_factory=dict)

    def to_dict(self, *, curves: bool = False) -> dict[str, Any]:
        """Plain JSON-able dict: scores, counts, breakdowns (and the ROC/PR curves if asked)."""
        out: dict[str, Any] = {k: _py(getattr(self, k)) for k in (
            *METRICS, "threshold", "precision", "recall", "n_pixels", "n_patches",
            "n_empty_prediction", "n_empty_reference", "n_both_empty", "hd_empty",
            "f1_gap_bound", "auc_error_bound")}
        out["breakdown"] = {dim: {str(k): r.to_dict() for k, r in groups.items()}
                            for dim, groups in self.breakdown.items()}
        if curves:
            out["curves"] = {k: np.asarray(v).tolist() for k, v in self.curves.items()}
        return out

    def __repr__(self) -> str:
        s = (f"EvaluationResult(F1 {self.f1:.3f}, AUC {self.auc:.3f}, Dice {self.dice:.3f}, "
             f"IoU {self.iou:.3f}, HD {self.hd:.2f} px at threshold {self.threshold:.4g}; "
             f"{self.n_patches:,} patches, {self.n_pixels:,} px, "
             f"{self.n_empty_prediction} empty predictions, "
             f"{self.n_empty_reference} empty references")
        if self.breakdown:
            s += "; by " + ", ".join(f"{d} ({len(g)})" for d, g in self.breakdown.items())
        return s + ")"


def _py(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None  # JSON has no NaN
    return v


# ----------------------------------------------------------------- inputs
def _as_array(x: Any, name: str) -> tuple[Any, dict[str, np.ndarray]]:
    """numpy / dask array (n, H, W) and the per-sample coords found on an xarray input."""
    coords: dict[str, np.ndarray] = {}
    if type(x).__module__.startswith("torch"):
        x = x.detach().cpu().numpy()
    elif hasattr(x, "dims") and hasattr(x, "coords"):  # xarray.DataArray
        if x.ndim >= 3:
            spatial = list(x.dims[-2:])
            other = [d for d in x.dims if d not in spatial]
            if len(other) > 1:  # e.g. a cube mask (start_date, delay, y, x)
                x = x.stack({SAMPLE: other})
            x = x.transpose(*[d for d in x.dims if d not in spatial], *spatial)
            sdim = x.dims[0]
            for c in (ZONE, DELAY):
                if c in x.coords and x[c].dims == (sdim,):
                    v = np.asarray(x[c].values)
                    coords[c] = v.astype(object).astype(str) if v.dtype.kind == "T" else v
        x = x.data
    elif not hasattr(x, "shape"):
        x = np.asarray(x)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3:
        raise EvaluationError(f"{name} has shape {tuple(x.shape)}; expected (n_patches, H, W): "
                              "stack the patches along the first axis")
    return x, coords


def _load(x: Any, sl: slice) -> np.ndarray:
    return np.asarray(x[sl])  # computes a dask block, a view for numpy


def _check_block(p: np.ndarray, t: np.ndarray, start: int) -> None:
    if p.dtype.kind not in "fiub":
        raise EvaluationError(f"prob has dtype {p.dtype}; expected floats in [0, 1]")
    lo, hi = (float(p.min()), float(p.max())) if p.size else (0.0, 0.0)
    if math.isnan(lo) or math.isnan(hi):
        bad = start + int(np.flatnonzero(np.isnan(p).any(axis=(1, 2)))[0])
        raise EvaluationError(f"prob holds NaN (first in patch {bad}); predictions must be "
                              "finite: replace no-data pixels (e.g. np.nan_to_num) or drop them")
    if lo < 0 or hi > 1:
        raise EvaluationError(f"prob holds values in [{lo:.4g}, {hi:.4g}], outside [0, 1]; pass "
                              "probabilities, not logits (apply torch.sigmoid first)")
    if t.dtype.kind == "f" and np.isnan(t).any():
        raise EvaluationError("mask holds NaN; expected 0 (stable) / 1 (moving)")
    if t.size and (t.min() < 0 or t.max() > 1):
        extra = (" (255 marks 'no interferogram' in the cube: keep only samples with "
                 "has_interferogram)" if (t == 255).any() else "")
        raise EvaluationError(f"mask holds values other than 0/1{extra}; binarise it")


def _as_bool(t: np.ndarray) -> np.ndarray:
    """A 0/1 mask as bool; a free view for (already checked) one-byte integers."""
    if t.dtype == np.bool_:
        return t
    if t.dtype.kind in "ui" and t.dtype.itemsize == 1 and t.flags.c_contiguous:
        return t.view(np.bool_)
    return t != 0


def _blocks(n: int, hw: int, block_pixels: int) -> list[slice]:
    step = max(1, block_pixels // max(hw, 1))
    return [slice(i, min(i + step, n)) for i in range(0, n, step)]


# -------------------------------------------------------- threshold and AUC
def _bin_index(p: np.ndarray, n_bins: int) -> np.ndarray:
    # Same rule as kernels.threshold_counts: floor(p * n_bins), p == 1 in the last bin.
    return np.minimum((p.astype(np.float64) * n_bins).astype(np.int64), n_bins - 1)


def _f1(tp: np.ndarray, fp: np.ndarray, n_pos: int) -> np.ndarray:
    den = tp + fp + n_pos
    return np.divide(2.0 * tp, den, out=np.zeros(np.shape(tp)), where=den > 0)


def _auc_from_hist(pos: np.ndarray, neg: np.ndarray) -> float:
    n_pos, n_neg = float(pos.sum()), float(neg.sum())
    neg_below = np.cumsum(neg, dtype=np.float64) - neg
    return float((pos * (neg_below + 0.5 * neg)).sum() / (n_pos * n_neg))


def _mann_whitney_pairs(a: np.ndarray, b: np.ndarray) -> float:
    """#(a_i > b_j) + 0.5 #(a_i == b_j), exactly, by sorting."""
    b = np.sort(b)
    lo = np.searchsorted(b, a, side="left")
    hi = np.searchsorted(b, a, side="right")
    return float(lo.sum()) + 0.5 * float((hi - lo).sum())


def _curves(pos: np.ndarray, neg: np.ndarray, n_points: int = 1000) -> dict[str, np.ndarray]:
    tp = np.cumsum(pos[::-1])[::-1].astype(np.float64)
    fp = np.cumsum(neg[::-1])[::-1].astype(np.float64)
    keep = np.flatnonzero((pos > 0) | (neg > 0))
    if keep.size > n_points:
        keep = keep[np.unique(np.linspace(0, keep.size - 1, n_points).round().astype(int))]
    n_pos, n_neg = max(tp[0], 1.0), max(fp[0], 1.0)
    tpk, fpk = tp[keep], fp[keep]
    return {"threshold": keep / pos.size, "tpr": tpk / n_pos, "fpr": fpk / n_neg,
            "precision": np.divide(tpk, tpk + fpk, out=np.ones_like(tpk), where=tpk + fpk > 0),
            "recall": tpk / n_pos}


# ---------------------------------------------------------------- evaluate
def evaluate(prob: Any, mask: Any, *, threshold: float | None = None,
             n_bins: int = DEFAULT_N_BINS, hd_empty: float | str = "diagonal",
             zone: Sequence | None = None, delay: Sequence | None = None,
             breakdown: bool = True, f1_tol: float = F1_TOL, auc_tol: float = AUC_TOL,
             block_pixels: int = BLOCK_PIXELS) -> EvaluationResult:
    """Score probability maps against reference masks with the paper's Table I metrics.

    Parameters
    ----------
    prob
        Probabilities in [0, 1], shape (n, H, W) (or (H, W)): numpy, torch, dask or
        xarray. An xarray input with more than one leading dim is stacked to samples.
    mask
        Reference 0/1 (bool or integer), same shape.
    threshold
        Binarisation threshold (``prob >= threshold`` is moving); ``None`` picks the one
        maximising pooled F1 (see the module docstring).
    n_bins
        Histogram bins of the threshold search and AUC (exactness does not depend on it,
        only the speed: more bins, fewer pixels to refine).
    hd_empty
        Hausdorff distance of a patch with exactly one empty side: ``"diagonal"``
        (``sqrt(H**2 + W**2)`` px), ``"nan"`` (left out of the mean) or a number.
    zone, delay
        Per-sample labels for the breakdowns; default the ``zone``/``delay`` coords of
        an xarray input.
    breakdown
        Compute the per-zone / per-delay results (same global threshold).
    f1_tol, auc_tol
        Guaranteed bounds of the threshold's F1 gap to the brute-force optimum and of
        the AUC error.
    block_pixels
        Pixels per block: inputs are streamed along the samples, memory stays flat.

    Returns
    -------
    EvaluationResult

    Raises
    ------
    EvaluationError
        Shape mismatch, NaN or out-of-range probabilities, a mask that is not 0/1.

    Examples
    --------
    >>> import numpy as np
    >>> m = np.zeros((1, 4, 4), bool); m[0, 1:3, 1:3] = True
    >>> evaluate(m * 0.9 + 0.05, m).dice
    1.0
    """
    p_arr, p_coords = _as_array(prob, "prob")
    t_arr, t_coords = _as_array(mask, "mask")
    if tuple(p_arr.shape) != tuple(t_arr.shape):
        raise EvaluationError(f"prob has shape {tuple(p_arr.shape)} but mask has "
                              f"{tuple(t_arr.shape)}; predict one map per reference patch")
    if threshold is not None and not 0.0 <= float(threshold) <= 1.0:
        raise EvaluationError(f"threshold {threshold} is outside [0, 1]")
    if isinstance(hd_empty, str) and hd_empty not in ("diagonal", "nan"):
        raise EvaluationError(f"hd_empty={hd_empty!r}; use 'diagonal', 'nan' or a number")
    if int(n_bins) < 2:
        raise EvaluationError(f"n_bins={n_bins}; use at least 2 (default {DEFAULT_N_BINS})")
    groups = {**t_coords, **p_coords}
    for name, labels in ((ZONE, zone), (DELAY, delay)):
        if labels is not None:
            groups[name] = np.asarray(labels)
    n = int(p_arr.shape[0])
    for name, labels in groups.items():
        if len(labels) != n:
            raise EvaluationError(f"{name} has {len(labels)} labels for {n} patches")
    res = _evaluate_arrays(p_arr, t_arr, threshold, int(n_bins), hd_empty, f1_tol, auc_tol,
                           block_pixels, check=True)
    if breakdown and groups and n:
        by: dict[str, dict[str, EvaluationResult]] = {}
        for name, labels in groups.items():
            by[name] = {}
            for value in np.unique(labels):
                idx = np.flatnonzero(labels == value)
                by[name][str(value)] = _evaluate_arrays(
                    p_arr[idx], t_arr[idx], res.threshold, int(n_bins), hd_empty, f1_tol,
                    auc_tol, block_pixels, check=False)
        object.__setattr__(res, "breakdown", by)
    return res


def _evaluate_arrays(p_arr: Any, t_arr: Any, threshold: float | None, n_bins: int,
                     hd_empty: float | str, f1_tol: float, auc_tol: float,
                     block_pixels: int, *, check: bool) -> EvaluationResult:
    from isslide_cube.kernels import hausdorff_batch, threshold_counts

    n, h, w = (int(s) for s in p_arr.shape)
    blocks = _blocks(n, h * w, block_pixels)
    # pass 1: histograms of positive and negative pixels per probability bin
    pos = np.zeros(n_bins, np.int64)
    neg = np.zeros(n_bins, np.int64)
    for sl in blocks:
        p, t = _load(p_arr, sl), _load(t_arr, sl)
        if check:
            _check_block(p, t, sl.start)
        ph, nh = threshold_counts(p, _as_bool(t), n_bins)
        pos += ph
        neg += nh
    n_pos, n_neg = int(pos.sum()), int(neg.sum())
    tp_ge = np.concatenate([np.cumsum(pos[::-1])[::-1], [0]])  # tp when predicting bins >= k
    fp_ge = np.concatenate([np.cumsum(neg[::-1])[::-1], [0]])

    # which bins need their exact values: threshold candidates and heavy AUC ties
    f1_edges = _f1(tp_ge, fp_ge, n_pos)
    k_best = int(np.argmax(f1_edges))
    best_f1 = float(f1_edges[k_best])
    # inside bin k a threshold keeps tp <= tp_ge[k] and fp >= fp_ge[k+1]; 2a/(a+b+P) grows in a
    upper = _f1(tp_ge[:-1], fp_ge[1:], n_pos)
    refine_thr = (upper > best_f1 + f1_tol) & ((pos + neg) > 1) if threshold is None else \
        np.zeros(n_bins, bool)
    ties = pos.astype(np.float64) * neg
    pn = float(n_pos) * float(n_neg)
    refine_auc = np.zeros(n_bins, bool)
    if pn > 0 and 0.5 * ties.sum() / pn > auc_tol:
        order = np.argsort(ties)[::-1]
        remaining = 0.5 * (ties.sum() - np.cumsum(ties[order])) / pn
        refine_auc[order[: int(np.searchsorted(-remaining, -auc_tol)) + 1]] = True
    auc = _auc_from_hist(pos, neg) if pn > 0 else float("nan")
    auc_bound = 0.5 * float(ties[~refine_auc].sum()) / pn if pn > 0 else float("nan")
    f1_gap = (max(float(upper[~refine_thr].max(initial=0.0)) - best_f1, 0.0)
              if threshold is None else float("nan"))
    thr = float(threshold) if threshold is not None else k_best / n_bins
    if n_pos == 0 and threshold is None:
        log.warning("the reference holds no moving pixel: F1 and AUC are undefined; "
                    "threshold set to 0.5")
        thr, f1_gap = 0.5, 0.0

    if n_pos and (refine_thr.any() or refine_auc.any()):
        # pass 2: gather the probabilities of the selected bins only
        lut = refine_thr | refine_auc
        vals, labs, bins = [], [], []
        sel_bins = np.flatnonzero(lut)
        # cheap prefilter in the input's dtype (one margin bin each side against rounding)
        lo = max(sel_bins[0] - 1, 0) / n_bins
        hi = min(sel_bins[-1] + 2, n_bins) / n_bins
        for sl in blocks:
            p, t = _load(p_arr, sl), _load(t_arr, sl)
            near = (p >= lo) & (p <= hi)
            p, t = p[near], t[near]
            k = _bin_index(p, n_bins)
            take = lut[k]
            vals.append(p[take].astype(np.float64))
            labs.append(_as_bool(t[take]))
            bins.append(k[take])
        v, lab, k = np.concatenate(vals), np.concatenate(labs), np.concatenate(bins)
        order = np.lexsort((v, k))
        v, lab, k = v[order], lab[order], k[order]
        starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
        ends = np.r_[starts[1:], v.size]
        if refine_thr.any():
            # pos/neg with value >= v_i inside its own bin, at the first of each tied run
            cpos = np.concatenate([[0], np.cumsum(lab)])
            cneg = np.concatenate([[0], np.cumsum(~lab)])
            end_of = np.repeat(ends, ends - starts)
            first = np.r_[True, (v[1:] != v[:-1]) | (k[1:] != k[:-1])] & refine_thr[k]
            i = np.flatnonzero(first)
            tp = tp_ge[k[i] + 1] + cpos[end_of[i]] - cpos[i]
            fp = fp_ge[k[i] + 1] + cneg[end_of[i]] - cneg[i]
            f1s = _f1(tp, fp, n_pos)
            if f1s.size and f1s.max() > best_f1:
                j = int(np.argmax(f1s))
                best_f1, thr = float(f1s[j]), float(v[i[j]])
        for s, e in zip(starts, ends, strict=True):
            if refine_auc[k[s]]:
                a, b = v[s:e][lab[s:e]], v[s:e][~lab[s:e]]
                auc += (_mann_whitney_pairs(a, b) - 0.5 * a.size * b.size) / pn

    # pass 3: binarise, per-patch overlap and Hausdorff distance
    diag = math.hypot(h, w)
    empty_hd = diag if hd_empty == "diagonal" else (float("nan") if hd_empty == "nan"
                                                      else float(hd_empty))
    tp_p, pred_p, ref_p, hd_p = (np.zeros(n, np.int64), np.zeros(n, np.int64),
                                 np.zeros(n, np.int64), np.zeros(n, np.float64))
    for sl in blocks:
        p, t = _load(p_arr, sl), _as_bool(_load(t_arr, sl))
        pred = p >= thr
        tp_p[sl] = np.count_nonzero(pred & t, axis=(1, 2))
        pred_p[sl] = np.count_nonzero(pred, axis=(1, 2))
        ref_p[sl] = np.count_nonzero(t, axis=(1, 2))
        hd_p[sl] = hausdorff_batch(pred, t, empty=empty_hd, both_empty=0.0)
    union = pred_p + ref_p - tp_p
    both_empty = union == 0
    dice = np.where(both_empty, 1.0, 2.0 * tp_p / np.maximum(pred_p + ref_p, 1))
    iou = np.where(both_empty, 1.0, tp_p / np.maximum(union, 1))
    tp_all, pp_all = int(tp_p.sum()), int(pred_p.sum())
    f1 = 2.0 * tp_all / (pp_all + n_pos) if n_pos else float("nan")
    return EvaluationResult(
        f1=f1, auc=float(auc), dice=_mean(dice), iou=_mean(iou), hd=_mean(hd_p, nan_ok=True),
        threshold=thr, precision=tp_all / pp_all if pp_all else float("nan"),
        recall=tp_all / n_pos if n_pos else float("nan"), n_pixels=n * h * w, n_patches=n,
        n_empty_prediction=int((pred_p == 0).sum()), n_empty_reference=int((ref_p == 0).sum()),
        n_both_empty=int(both_empty.sum()), hd_empty=hd_empty, f1_gap_bound=f1_gap,
        auc_error_bound=auc_bound,
        per_patch={"dice": dice, "iou": iou, "hd": hd_p, "tp": tp_p, "pred": pred_p,
                   "ref": ref_p},
        curves=_curves(pos, neg) if n_pos and n_neg else {})


def _mean(x: np.ndarray, nan_ok: bool = False) -> float:
    if x.size == 0 or (nan_ok and np.isnan(x).all()):
        return float("nan")
    return float(np.nanmean(x) if nan_ok else np.mean(x))
