"""The paper's Table I metrics: F1, ROC AUC, Dice, IoU and Hausdorff distance.

Definitions (DESIGN.md section 1, our reading of the paper; every choice is a
parameter with this default):

* **threshold**: one global probability ``t``; a pixel is predicted moving when
  ``prob >= t``. By default ``t`` maximises the F1 pooled over every pixel.
  It is found from the numba histograms of :func:`isslide_cube.kernels.threshold_counts`
  (``n_bins`` uniform bins on [0, 1]) and then refined exactly: for every bin whose
  F1 *upper bound* could beat the best bin edge, the probabilities in that bin are
  gathered and every unique value is scanned. The returned F1 is therefore within
  ``f1_tol`` (1e-6) of the brute-force optimum over all unique probabilities, and the
  bound actually achieved is reported as ``f1_gap_bound``.
* **f1**, **precision**, **recall**, **auc**: pooled over all pixels. AUC is the
  Mann-Whitney statistic (ties count one half, as ``sklearn.metrics.roc_auc_score``);
  from the histograms the only error is pairs tied within one bin, bounded by
  ``0.5 * sum_k pos_k neg_k / (P N)``; bins are corrected exactly (sorted) until that
  bound is below ``auc_tol`` (1e-4), and it is reported as ``auc_error_bound``.
* **dice**, **iou**: per patch at the threshold, then averaged; a patch whose
  prediction and reference are both empty scores 1.
* **hd**: symmetric Hausdorff distance in pixels between the predicted and reference
  foreground of each patch (:func:`isslide_cube.kernels.hausdorff_batch`), averaged.
  A patch with exactly one empty side gets ``hd_empty`` (default the patch diagonal
  ``sqrt(H**2 + W**2)``; ``"nan"`` leaves it out of the mean; or a number); both
  empty gives 0. The counts of such patches are reported.

Per-zone and per-delay breakdowns use the same global threshold.

References
----------
Bralet et al., "ISSLIDE: a new InSAR dataset for slow sliding area detection with
machine learning", IEEE GRSL 2024 (Table I).

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> mask = np.zeros((4, 20, 20), np.uint8); mask[:, 5:12, 6:14] = 1
>>> prob = np.clip(mask * 0.6 + rng.random(mask.shape) * 0.5, 0, 1)
>>> res = evaluate(prob, mask)
>>> round(res.dice, 3) > 0.5, res.n_patches
(True, 4)
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from isslide_cube.schema import DELAY, MASK, SAMPLE, SPLIT, ZONE, IsslideError

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


# ------------------------------------------------------------------ tables
# Display names of Table I: torchvision backbones from scratch are "-S", pre-trained "-P".
DISPLAY_NAMES = {"fcn_resnet50": "FCN", "deeplabv3_resnet50": "DeepLabV3", "unet": "UNet",
                 "resunet": "ResUNet", "sepunet": "SepUNet"}


def model_label(config: Mapping[str, Any]) -> str:
    """Table I name of a run from its ``config.json``: ``FCN-S``, ``DeepLabV3-P``, ``ResUNet``..."""
    name = str(config.get("model", "?"))
    label = DISPLAY_NAMES.get(name, name)
    if name in ("fcn_resnet50", "deeplabv3_resnet50"):
        label += "-P" if config.get("weights") else "-S"
    if config.get("temporal"):
        label += f" [{config['temporal']}]"
    return label


def format_table(rows: Mapping[str, Mapping[str, Any]], *, digits: int = 3) -> str:
    """A Markdown table in the paper's Table I layout, best and second best marked.

    Per column (higher is better for F1, AUC, Dice, IoU; lower for HD) the best value
    is written ``**bold**`` and the second best ``_underlined_`` (Markdown emphasis, the
    plain-text stand-ins for the paper's bold and underline). Marks appear only with
    two rows or more; ties share the mark.

    Parameters
    ----------
    rows
        ``{model label: {"f1": ..., "auc": ..., "dice": ..., "iou": ..., "hd": ...}}``
        (an :class:`EvaluationResult`'s ``to_dict()`` works).

    Examples
    --------
    >>> print(format_table({"UNet": {"f1": .675, "auc": .977, "dice": .636, "iou": .497,
    ...                              "hd": 25.912}}))
    | model | F1 | AUC | Dice | IoU | HD |
    |---|---|---|---|---|---|
    | UNet | 0.675 | 0.977 | 0.636 | 0.497 | 25.912 |
    """
    heads = {"f1": "F1", "auc": "AUC", "dice": "Dice", "iou": "IoU", "hd": "HD"}
    ranks: dict[str, dict[float, int]] = {}
    for m in METRICS:
        vals = sorted({round(float(r[m]), digits) for r in rows.values()
                       if r.get(m) is not None and math.isfinite(float(r[m]))},
                      reverse=HIGHER_IS_BETTER[m])
        ranks[m] = {v: i for i, v in enumerate(vals[:2])} if len(rows) > 1 else {}
    lines = ["| model | " + " | ".join(heads.values()) + " |", "|---" * 6 + "|"]
    for label, r in rows.items():
        cells = []
        for m in METRICS:
            v = r.get(m)
            if v is None or not math.isfinite(float(v)):
                cells.append("n/a")
                continue
            text = f"{float(v):.{digits}f}"
            rank = ranks[m].get(round(float(v), digits))
            cells.append(f"**{text}**" if rank == 0 else f"_{text}_" if rank == 1 else text)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ------------------------------------------------------------- evaluate_run
def select_split(ds: Any, split: str) -> Any:
    """The samples of ``ds`` whose ``split`` coordinate equals ``split`` (clear error if none)."""
    if SPLIT not in ds.coords:
        raise EvaluationError("the patches store has no 'split' coordinate; make one with "
                              "`isslide-cube patches CUBE OUT --split paper` or "
                              "isslide_cube.patches.split()")
    # via object: numpy's StringDType (variable-length strings from Zarr v3) has no cast to "U"
    labels = np.asarray(ds[SPLIT].values, dtype=object).astype(str)
    idx = np.flatnonzero(labels == split)
    if idx.size == 0:
        raise EvaluationError(f"split {split!r} holds no patch (values present: "
                              f"{sorted(set(labels))}); pass --split with one of them")
    return ds.isel({SAMPLE: idx})


def _device(device: str) -> str:
    from isslide_cube.ml.training import resolve_device

    return str(resolve_device(device))


def predict_run(run_dir: str | Path, patches: Any, *, device: str = "auto",
                batch_size: int = 32, split: str | None = None,
                ) -> tuple[np.ndarray, dict[str, Any]]:
    """Probabilities (n, H, W) of ``RUN_DIR/best.pt`` on a patches dataset, and the run config.

    With ``split``, only that split's samples are predicted (store order), their
    temporal stacks drawn from the whole store; without it, every sample of ``patches``.
    """
    from isslide_cube.ml.inference import predict_patches
    from isslide_cube.ml.training import load_run

    device = _device(device)
    model, config = load_run(run_dir, checkpoint="best", device=device)
    temporal = config.get("temporal")
    prob = predict_patches(model, patches, batch_size=batch_size, device=device,
                           temporal=temporal, split=split,
                           validity=None if temporal else bool(config.get("validity")))
    return np.asarray(prob, dtype=np.float32), dict(config)


def write_metrics(run_dir: str | Path, result: EvaluationResult, *, split: str,
                  patches: Any, config: Mapping[str, Any]) -> Path:
    """Write ``RUN_DIR/metrics.json`` (``metrics_<split>.json`` for a split other than eval)."""
    path = Path(run_dir) / ("metrics.json" if split == "eval" else f"metrics_{split}.json")
    doc = {"model": model_label(config), "run_dir": str(run_dir), "checkpoint": "best.pt",
           "patches": str(patches), "split": split, "config": dict(config),
           **result.to_dict(curves=True)}
    path.write_text(json.dumps(doc, indent=1, default=str))
    return path


def evaluate_run(run_dir: str | Path, patches: str | Path | Any, split: str = "eval",
                 compare: Sequence[str | Path] = (), figures: bool = True, *,
                 device: str = "auto", batch_size: int = 32, n_examples: int = 4) -> str:
    """Score trained runs on a split: Table I row(s), ``metrics.json``, Figure 3 and curves.

    Predicts with each run's ``best.pt`` (``RUN_DIR`` first, then ``compare``), scores with
    :func:`evaluate` (own F1-optimal threshold per run), writes each run's
    ``metrics.json`` and, with ``figures``, ``RUN_DIR/figures/figure3_<split>.png``
    (phase, coherence, reference, prediction outline per model) and
    ``RUN_DIR/figures/curves_<split>.png`` (ROC and precision-recall).

    Parameters
    ----------
    run_dir
        Folder of a run written by :func:`isslide_cube.ml.training.train`.
    patches
        Patches store (path) or the dataset from :func:`isslide_cube.patches.open_patches`.
    split
        Which ``split`` value to score.
    compare
        Other run folders: one table row each, best and second best marked.
    figures
        Write the PNG figures.

    Returns
    -------
    str
        The Markdown table, the threshold of each run and the paths written.

    Example
    -------
    >>> print(evaluate_run("runs/resunet", "patches.zarr"))  # doctest: +SKIP
    """
    from isslide_cube.patches import open_patches

    ds = open_patches(patches) if isinstance(patches, str | Path) else patches
    sel = select_split(ds, split)
    mask = sel[MASK].load()
    results: dict[str, EvaluationResult] = {}
    probs: dict[str, np.ndarray] = {}
    written: list[Path] = []
    for run in (run_dir, *compare):
        # the whole store: a temporal run's stack members may lie in other splits
        prob, config = predict_run(run, ds, device=device, batch_size=batch_size, split=split)
        label = model_label(config)
        if label in results:  # two runs of the same model: tell them apart
            label = f"{label} ({Path(run).name})"
        res = evaluate(prob, mask)
        log.info("%s: %r", label, res)
        results[label], probs[label] = res, prob
        written.append(write_metrics(run, res, split=split, patches=patches, config=config))
    if figures:
        from isslide_cube.figures import curves_figure, figure3

        fig_dir = Path(run_dir) / "figures"
        fig_dir.mkdir(exist_ok=True)
        written.append(figure3(sel, probs, {k: r.threshold for k, r in results.items()},
                               fig_dir / f"figure3_{split}.png", n_examples=n_examples))
        written.append(curves_figure(results, fig_dir / f"curves_{split}.png"))
    return report(results, split=split, n_patches=int(sel.sizes[SAMPLE]), paths=written)


def report(results: Mapping[str, EvaluationResult], *, split: str, n_patches: int,
           paths: Sequence[Path] = ()) -> str:
    """Table I text with thresholds, empty-patch counts and the files written."""
    lines = [f"Table I on split {split!r} ({n_patches} patches; F1/AUC pooled over pixels, "
             "Dice/IoU/HD per patch averaged; HD in pixels)", "",
             format_table({k: r.to_dict() for k, r in results.items()}), ""]
    if len(results) > 1:
        lines += ["**bold** = best, _underlined_ = second best per column", ""]
    for label, r in results.items():
        lines.append(f"{label}: threshold {r.threshold:.4g}, {r.n_empty_prediction} empty "
                     f"predictions, {r.n_empty_reference} empty references "
                     f"(HD of one-sided empties = {r.hd_empty})")
    lines += [f"wrote {p}" for p in paths]
    return "\n".join(lines)
