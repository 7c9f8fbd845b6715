"""Pixel counts per probability bin, and the F1 curve and ROC AUC that follow from them.

One parallel pass over the pixels gives, for ``n_bins`` equal bins of [0, 1],
the number of positive (``truth != 0``) and negative pixels whose probability
falls in each bin (bin ``k`` holds ``k/n <= p < (k+1)/n``; ``p == 1`` joins the
last bin). From these two histograms, for every threshold ``t_k = k / n``
(predict "moving" when ``p >= t_k``): ``TP_k = sum(pos[k:])``,
``FP_k = sum(neg[k:])``, ``FN_k = P - TP_k``, so the F1 curve and the ROC curve
cost O(n_bins) instead of a sort of all pixels.

Exactness: F1 at the thresholds ``k / n`` is exact. The ROC AUC is the
trapezoidal area of the ROC curve through those thresholds, i.e. the
Mann-Whitney statistic with the pixels of one bin counted as ties; it differs
from the exact AUC by at most ``sum_k pos[k] * neg[k] / (2 P N)`` (about
``1 / (2 n_bins)`` for smooth score densities, far less in practice).

Examples
--------
>>> import numpy as np
>>> from isslide_cube.kernels import threshold_counts, roc_auc_from_counts
>>> pos, neg = threshold_counts(np.array([0.9, 0.8, 0.3, 0.1]), np.array([1, 1, 0, 0]), 10)
>>> roc_auc_from_counts(pos, neg)
1.0
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from isslide_cube.kernels.edt import KernelInputError
from isslide_cube.kernels.threads import resolve_threads, use_threads

__all__ = ["threshold_counts", "roc_auc_from_counts", "f1_curve_from_counts", "f1_optimal"]


@njit(nogil=True, cache=True)
def _count_range(prob, truth, n_bins, edges, hist, lo, hi):
    """Histogram of ``prob[lo:hi]`` into ``hist`` (2 * n_bins: bin * 2 + is_positive).

    The bin is ``floor(p * n_bins)``, corrected by one where rounding put ``p``
    on the wrong side of ``edges[k] = k / n_bins``: so ``bin >= k`` is exactly
    ``p >= edges[k]``, the thresholds :func:`f1_curve_from_counts` reports.

    Returns the number of invalid probabilities (NaN or outside [0, 1]) and of
    truth values other than 0/1, so the caller can raise a clear error.
    """
    bad_p = 0
    bad_t = 0
    nb = float(n_bins)
    last = n_bins - 1
    for i in range(lo, hi):
        p = prob[i]
        t = truth[i]
        if not (p >= 0.0 and p <= 1.0):  # also catches NaN
            bad_p += 1
            continue
        if t > 1:
            bad_t += 1
            continue
        k = int(p * nb)
        if k > last:
            k = last
        if p < edges[k]:
            k -= 1
        elif p >= edges[k + 1] and k < last:
            k += 1
        hist[2 * k + t] += 1
    return bad_p, bad_t


@njit(nogil=True, cache=True, parallel=True)
def _count_parallel(prob, truth, n_bins, edges, n_chunks):
    n = prob.shape[0]
    hists = np.zeros((n_chunks, 2 * n_bins), dtype=np.int64)
    bads = np.zeros((n_chunks, 2), dtype=np.int64)
    step = (n + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        lo = c * step
        hi = min(n, lo + step)
        bp, bt = _count_range(prob, truth, n_bins, edges, hists[c], lo, hi)
        bads[c, 0] = bp
        bads[c, 1] = bt
    return hists.sum(axis=0), bads.sum(axis=0)


@njit(nogil=True, cache=True)
def _count_serial(prob, truth, n_bins, edges):
    hist = np.zeros(2 * n_bins, dtype=np.int64)
    bp, bt = _count_range(prob, truth, n_bins, edges, hist, 0, prob.shape[0])
    bads = np.empty(2, dtype=np.int64)
    bads[0] = bp
    bads[1] = bt
    return hist, bads


def bin_edges(n_bins: int) -> np.ndarray:
    """The ``n_bins + 1`` bin edges ``k / n_bins`` (float64); the first ``n_bins`` are the thresholds."""
    return np.arange(n_bins + 1, dtype=np.float64) / n_bins


def _flat_truth(truth: np.ndarray) -> np.ndarray:
    t = np.asarray(truth)
    if t.dtype == np.bool_:
        return np.ascontiguousarray(t).view(np.uint8).ravel()
    if not np.issubdtype(t.dtype, np.integer):
        raise KernelInputError(
            f"truth must be bool or integer 0/1, got dtype {t.dtype}; use (truth == 1)"
        )
    if t.dtype != np.uint8:
        if t.size and (t.min() < 0 or t.max() > 1):
            raise KernelInputError(
                "truth must hold only 0 and 1; a cube mask's 255 marks 'no interferogram': "
                "select those pixels out (or pass truth == 1) first"
            )
        t = t.astype(np.uint8)
    return np.ascontiguousarray(t).ravel()


def threshold_counts(
    prob: np.ndarray,
    truth: np.ndarray,
    n_bins: int = 10_000,
    *,
    n_threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Positive and negative pixel counts per probability bin.

    Parameters
    ----------
    prob
        Probabilities in [0, 1], any shape, float32 or float64 (others are cast).
    truth
        Same shape; bool, or integers 0 (negative) / 1 (positive).
    n_bins
        Number of equal bins of [0, 1]; thresholds are ``k / n_bins``.
    n_threads
        numba threads; default: see :mod:`isslide_cube.kernels.threads`.

    Returns
    -------
    (pos_hist, neg_hist)
        int64 arrays ``(n_bins,)``.

    Raises
    ------
    KernelInputError
        Shapes differ, NaN or out-of-range probabilities, truth values other than 0/1.

    Example
    -------
    >>> import numpy as np
    >>> pos, neg = threshold_counts(np.array([0.05, 0.55, 1.0]), np.array([0, 1, 1]), 2)
    >>> pos.tolist(), neg.tolist()
    ([0, 2], [1, 0])
    """
    p = np.asarray(prob)
    t0 = np.asarray(truth)
    if p.shape != t0.shape:
        raise KernelInputError(
            f"prob and truth must have the same shape, got {p.shape} and {t0.shape}"
        )
    if int(n_bins) != n_bins or n_bins < 1:
        raise KernelInputError(f"n_bins must be a positive integer, got {n_bins!r}")
    n_bins = int(n_bins)
    if p.dtype not in (np.float32, np.float64):
        if not np.issubdtype(p.dtype, np.number):
            raise KernelInputError(f"prob must be numeric, got dtype {p.dtype}")
        p = p.astype(np.float64)
    p = np.ascontiguousarray(p).ravel()
    t = _flat_truth(t0)
    edges = bin_edges(n_bins)
    nt = resolve_threads(n_threads)
    if nt == 1 or p.size < 1_000_000:
        hist, bads = _count_serial(p, t, n_bins, edges)
    else:
        with use_threads(nt):
            hist, bads = _count_parallel(p, t, n_bins, edges, 8 * nt)
    if bads[0]:
        raise KernelInputError(
            f"prob holds {int(bads[0])} values that are NaN or outside [0, 1]; "
            "pass probabilities (apply a sigmoid to logits) and drop no-data pixels first"
        )
    if bads[1]:
        raise KernelInputError(
            f"truth holds {int(bads[1])} values other than 0 and 1; pass (truth == 1) "
            "and drop pixels without an interferogram (mask 255) first"
        )
    hist = hist.reshape(n_bins, 2)
    return np.ascontiguousarray(hist[:, 1]), np.ascontiguousarray(hist[:, 0])


def _check_hists(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pos = np.asarray(pos, dtype=np.int64)
    neg = np.asarray(neg, dtype=np.int64)
    if pos.ndim != 1 or pos.shape != neg.shape:
        raise KernelInputError(
            f"pos and neg must be 1-D histograms of the same length, got {pos.shape} and {neg.shape}"
        )
    return pos, neg


def roc_auc_from_counts(pos: np.ndarray, neg: np.ndarray) -> float:
    """ROC AUC from :func:`threshold_counts` histograms (pixels within a bin count as ties).

    Returns
    -------
    float
        ``sum_k neg[k] * (pos[k+1:].sum() + pos[k] / 2) / (P * N)``.

    Raises
    ------
    KernelInputError
        Only one class present (AUC undefined, as in scikit-learn).

    Example
    -------
    >>> roc_auc_from_counts([0, 1, 1], [1, 1, 0])
    0.875
    """
    pos, neg = _check_hists(pos, neg)
    P = float(pos.sum())
    N = float(neg.sum())
    if P == 0 or N == 0:
        raise KernelInputError(
            f"ROC AUC is undefined with only one class present ({int(P)} positive, "
            f"{int(N)} negative pixels)"
        )
    above = np.cumsum(pos[::-1])[::-1] - pos  # positives in higher bins
    return float(np.sum(neg * (above + 0.5 * pos)) / (P * N))


def f1_curve_from_counts(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """F1 score at every threshold ``k / n_bins`` (predict positive when ``p >= k / n_bins``).

    Returns
    -------
    (thresholds, f1)
        float64 arrays ``(n_bins,)``; F1 is 0 where it is undefined (no positive at all).

    Example
    -------
    >>> t, f1 = f1_curve_from_counts([0, 1], [1, 0])
    >>> t.tolist(), f1.tolist()
    ([0.0, 0.5], [0.6666666666666666, 1.0])
    """
    pos, neg = _check_hists(pos, neg)
    n = pos.shape[0]
    tp = np.cumsum(pos[::-1])[::-1]
    fp = np.cumsum(neg[::-1])[::-1]
    fn = pos.sum() - tp
    denom = 2 * tp + fp + fn
    f1 = np.divide(2.0 * tp, denom, out=np.zeros(n), where=denom > 0)
    return bin_edges(n)[:n], f1


def f1_optimal(pos: np.ndarray, neg: np.ndarray) -> tuple[float, float]:
    """Threshold that maximises F1 (the lowest on ties) and that F1.

    Example
    -------
    >>> f1_optimal([0, 1], [1, 0])
    (0.5, 1.0)
    """
    t, f1 = f1_curve_from_counts(pos, neg)
    k = int(np.argmax(f1))
    return float(t[k]), float(f1[k])
