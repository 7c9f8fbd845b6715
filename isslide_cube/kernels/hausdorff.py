"""Exact Hausdorff distance between the foreground pixel sets of two masks.

Definition: with ``A``, ``B`` the foreground (non-zero) pixel centres of two
masks and ``d(p, S)`` the Euclidean distance (``sampling`` units) from ``p`` to
the nearest point of ``S``,

* directed distances ``D_AB = {d(a, B) : a in A}``, ``D_BA = {d(b, A) : b in B}``;
* Hausdorff distance ``HD = max(max D_AB, max D_BA)``;
* with ``percentile=p`` (e.g. 95 for HD95, the convention of MONAI's
  ``compute_hausdorff_distance``): ``max(P_p(D_AB), P_p(D_BA))`` with ``P_p``
  the percentile with linear interpolation of :func:`numpy.percentile`.

``d(., B)`` is the exact distance transform of the complement of ``B``
(:mod:`isslide_cube.kernels.edt`), evaluated on the bounding box of ``A | B``
only: every point of both sets lies in it, so distances there are unchanged.

Empty sets: if exactly one set is empty the distance is ``empty`` (default
``"diagonal"``: the image diagonal ``hypot(ny * sy, nx * sx)``, the largest
distance the image can express); if both are empty it is ``both_empty``
(default 0: the sets are equal). ``return_empty=True`` also returns which pairs
had an empty set, so reports can count them.

References
----------
D. P. Huttenlocher, G. A. Klanderman, W. J. Rucklidge, "Comparing images using
the Hausdorff distance", IEEE TPAMI 15(9) (1993), doi:10.1109/34.232073.

Examples
--------
>>> import numpy as np
>>> from isslide_cube.kernels import hausdorff
>>> a = np.zeros((5, 5), bool); a[0, 0] = True
>>> b = np.zeros((5, 5), bool); b[3, 4] = True
>>> hausdorff(a, b)
5.0
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numba import njit, prange

from isslide_cube.kernels.edt import (
    _BIG,
    _PAD,
    _W,
    _W_ROW,
    KernelInputError,
    _bounds,
    _columns,
    _isotropic,
    _solve,
    _window_int,
    as_mask,
    parse_sampling,
)
from isslide_cube.kernels.threads import resolve_threads, use_threads

__all__ = ["hausdorff", "hausdorff_batch", "empty_value"]


@njit(nogil=True, cache=True)
def _bbox_union(a, b):
    """Bounding box ``(r0, r1, c0, c1)`` of ``a | b`` and whether each is non-empty."""
    ny, nx = a.shape
    r0, r1, c0, c1 = ny, -1, nx, -1
    has_a = False
    has_b = False
    for i in range(ny):
        ra = a[i]
        rb = b[i]
        row_any = False
        for j in range(nx):
            va = ra[j] != 0
            vb = rb[j] != 0
            if va or vb:
                row_any = True
                has_a |= va
                has_b |= vb
                if j < c0:
                    c0 = j
                if j > c1:
                    c1 = j
        if row_any:
            if i < r0:
                r0 = i
            r1 = i
    return r0, r1 + 1, c0, c1 + 1, has_a, has_b


@njit(nogil=True, cache=True)
def _directed(gi, src, sy, sx, pct, buf):
    """Max (``pct < 0``) or ``pct``-th percentile, over the pixels of ``src``, of the
    distance to the background of the column counts ``gi`` (pass 1 of the EDT).

    Pass 2 runs only where needed. ``edt._bounds`` gives every pixel an upper
    bound of its squared distance; a row whose ``src`` pixels are all bounded
    by the current maximum cannot raise it and is skipped (for the max), and
    the exact window of a row only needs to be as wide as its ``src`` pixels'
    largest bound.
    """
    h, w = gi.shape
    sy2 = sy * sy
    sx2 = sx * sx
    fp = np.empty(w + 2 * _W)
    fi = np.empty(w + 2 * _W, np.int32)
    bi = np.empty(w, np.int32)
    for k in range(_W):
        fp[k] = np.inf
        fp[w + _W + k] = np.inf
        fi[k] = _PAD
        fi[w + _W + k] = _PAD
    gs = np.empty(w, np.int64)
    ub = np.empty(w)
    best = np.empty(w)
    o = np.empty(w)
    pos = np.empty(w + 1)
    val = np.empty(w + 1)
    hv = np.empty(w + 1)
    z = np.empty(w + 1)
    iv = np.empty(w + 1, np.int64)
    ih = np.empty(w + 1, np.int64)
    iso = _isotropic(gi.shape, sy, sx)
    if pct < 0:
        return _directed_max(gi, src, sy2, sx, sx2, fp, gs, ub, best, o, pos, val, hv, z, iv, ih, fi, bi, iso)
    n = 0
    for i in range(h):
        s = src[i]
        has = False
        for j in range(w):
            has |= s[j] != 0
        if not has:
            continue
        top = _src_top(gi[i], s, fp, gs, ub, sy2, sx2)
        if top == 0.0:  # every src pixel of this row lies on the other set
            for j in range(w):
                if s[j] != 0:
                    buf[n] = 0.0
                    n += 1
            continue
        _solve(fp, gs, ub, top, o, best, pos, val, hv, z, iv, ih, iso, sx, sx2)
        for j in range(w):
            if s[j] != 0:
                buf[n] = o[j]
                n += 1
    return np.percentile(buf[:n], pct)


@njit(nogil=True, cache=True)
def _src_top(g, s, fp, gs, ub, sy2, sx2):
    """Bounds of one row (``edt._bounds``), 0 off ``src``; the largest bound over the ``src`` pixels."""
    _bounds(g, fp, gs, ub, sy2, sx2)
    # bounds of the other pixels are zeroed: edt._solve then sizes each run's
    # window by its src pixels only (runs without any take a zero-width window);
    # their distances come out wrong, and are never read
    top = 0.0
    for j in range(s.shape[0]):
        u = ub[j] * (s[j] != 0)
        ub[j] = u
        top = max(top, u)
    return top


@njit(nogil=True, cache=True)
def _directed_max(gi, src, sy2, sx, sx2, fp, gs, ub, best, o, pos, val, hv, z, iv, ih, fi, bi, iso):
    """Max over ``src`` pixels; a row whose bound is below the maximum found so far
    is skipped (visiting rows by decreasing bound instead measured slower)."""
    h, w = gi.shape
    hd = 0.0
    for i in range(h):
        s = src[i]
        has = False
        for j in range(w):
            has |= s[j] != 0
        if not has:
            continue
        # cheap test first: a src pixel is never farther than the zero of its
        # own column (g sy), so a row whose src columns are all that close is skipped
        g = gi[i]
        gmax = 0
        high = 0
        for j in range(w):
            gmax = max(gmax, g[j] * np.int32(s[j] != 0))
            high = max(high, g[j])
        if gmax < _BIG and math.sqrt(np.int64(gmax) * np.int64(gmax) * sy2) <= hd:
            continue
        if iso and high <= _W_ROW:
            # short column counts: edt's widening integer window, no bounds pass
            f = fi[_W:_W + w]
            for j in range(w):
                f[j] = g[j] * g[j]
            _window_int(fi, w, high, o, bi, sx)
            for j in range(w):
                if s[j] != 0:
                    hd = max(hd, o[j])
            continue
        top = _src_top(g, s, fp, gs, ub, sy2, sx2)
        if top == 0.0 or math.sqrt(top) <= hd:
            continue
        _solve(fp, gs, ub, top, o, best, pos, val, hv, z, iv, ih, iso, sx, sx2)
        for j in range(w):
            if s[j] != 0:
                hd = max(hd, o[j])
    return hd


@njit(nogil=True, cache=True)
def _pair(a, b, sy, sx, pct, empty, both_empty):
    """Hausdorff distance of one pair of uint8 masks; second value: an empty set was met."""
    r0, r1, c0, c1, has_a, has_b = _bbox_union(a, b)
    if not has_a and not has_b:
        return both_empty, True
    if not has_a or not has_b:
        return empty, True
    h = r1 - r0
    w = c1 - c0
    sa = np.ascontiguousarray(a[r0:r1, c0:c1])
    sb = np.ascontiguousarray(b[r0:r1, c0:c1])
    gi = np.empty((h, w), dtype=np.int32)
    buf = np.empty(h * w) if pct >= 0 else np.empty(0)
    # d(., B): pass 1 of the EDT of "not B" (background = B's pixels), read on A's pixels
    _columns(sb, gi, 0, w, True)
    hab = _directed(gi, sa, sy, sx, pct, buf)
    _columns(sa, gi, 0, w, True)
    hba = _directed(gi, sb, sy, sx, pct, buf)
    return max(hab, hba), False


@njit(nogil=True, cache=True)
def _batch_serial(A, B, sy, sx, pct, empty, both_empty, res, flag):
    for k in range(A.shape[0]):
        res[k], flag[k] = _pair(A[k], B[k], sy, sx, pct, empty, both_empty)


@njit(nogil=True, cache=True, parallel=True)
def _batch_parallel(A, B, sy, sx, pct, empty, both_empty, res, flag):
    for k in prange(A.shape[0]):
        res[k], flag[k] = _pair(A[k], B[k], sy, sx, pct, empty, both_empty)


# ------------------------------------------------------------- python side


def empty_value(empty: float | str, shape: tuple[int, int], sampling: tuple[float, float]) -> float:
    """The number that stands for "one set is empty": a float, ``"diagonal"``, ``"inf"`` or ``"nan"``."""
    if isinstance(empty, str):
        if empty == "diagonal":
            return float(math.hypot(shape[0] * sampling[0], shape[1] * sampling[1]))
        if empty in ("inf", "nan"):
            return float(empty)
        raise KernelInputError(
            f"empty must be a number, 'diagonal', 'inf' or 'nan', got {empty!r}"
        )
    return float(empty)


def _check_percentile(percentile: float | None) -> float:
    if percentile is None:
        return -1.0
    p = float(percentile)
    if not 0.0 <= p <= 100.0:
        raise KernelInputError(f"percentile must be in [0, 100] (e.g. 95 for HD95), got {percentile!r}")
    return p


def hausdorff_batch(
    A: np.ndarray,
    B: np.ndarray,
    *,
    percentile: float | None = None,
    sampling: float | Sequence[float] | None = None,
    empty: float | str = "diagonal",
    both_empty: float = 0.0,
    return_empty: bool = False,
    n_threads: int | None = None,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Hausdorff distance of every pair ``(A[k], B[k])`` of two stacks ``(n, y, x)``, in parallel.

    Parameters
    ----------
    A, B
        Stacks of masks of the same shape; non-zero is foreground; any dtype or layout.
    percentile
        ``None``: the Hausdorff distance (max); a number in [0, 100]: that
        percentile of each directed distance set, the larger of the two (HD95: 95).
    sampling
        Pixel spacing ``(y, x)`` or one number; default 1 (distances in pixels).
    empty
        Value when exactly one set is empty: ``"diagonal"`` (default,
        ``hypot(ny * sy, nx * sx)``), ``"inf"``, ``"nan"`` or a number.
    both_empty
        Value when both sets are empty (default 0).
    return_empty
        Also return a bool array, True where a set was empty.
    n_threads
        numba threads; default: see :mod:`isslide_cube.kernels.threads`.

    Returns
    -------
    numpy.ndarray or (numpy.ndarray, numpy.ndarray)
        float64 ``(n,)`` distances in ``sampling`` units (and the empty flags).

    Example
    -------
    >>> import numpy as np
    >>> A = np.zeros((2, 4, 4), bool); A[:, 0, 0] = True
    >>> B = np.zeros((2, 4, 4), bool); B[0, 0, 3] = True
    >>> hausdorff_batch(A, B, return_empty=True)
    (array([3.        , 5.65685425]), array([False,  True]))
    """
    a = as_mask(A, 3, "A")
    b = as_mask(B, 3, "B")
    if a.shape != b.shape:
        raise KernelInputError(
            f"A and B must have the same shape, got {a.shape} and {b.shape}; "
            "crop or pad the masks to a common grid first"
        )
    sy, sx = parse_sampling(sampling, 2)
    pct = _check_percentile(percentile)
    ev = empty_value(empty, a.shape[1:], (sy, sx))
    n = a.shape[0]
    res = np.empty(n, dtype=np.float64)
    flag = np.empty(n, dtype=np.bool_)
    if n:
        nt = resolve_threads(n_threads)
        if nt == 1 or n == 1:
            _batch_serial(a, b, sy, sx, pct, ev, float(both_empty), res, flag)
        else:
            with use_threads(nt):
                _batch_parallel(a, b, sy, sx, pct, ev, float(both_empty), res, flag)
    return (res, flag) if return_empty else res


def hausdorff(
    a: np.ndarray,
    b: np.ndarray,
    *,
    percentile: float | None = None,
    sampling: float | Sequence[float] | None = None,
    empty: float | str = "diagonal",
    both_empty: float = 0.0,
) -> float:
    """Symmetric Hausdorff distance between the foreground pixels of two 2-D masks.

    Parameters as in :func:`hausdorff_batch`, for single masks ``(y, x)``.

    Returns
    -------
    float
        The distance in ``sampling`` units; ``empty`` / ``both_empty`` for empty sets.

    Example
    -------
    >>> import numpy as np
    >>> a = np.zeros((3, 3), bool); a[0, 0] = True
    >>> b = a.copy(); b[2, 2] = True
    >>> round(hausdorff(a, b, sampling=(2.0, 1.0)), 4)  # hypot(4, 2)
    4.4721
    """
    am = as_mask(a, 2, "a")
    bm = as_mask(b, 2, "b")
    if am.shape != bm.shape:
        raise KernelInputError(
            f"a and b must have the same shape, got {am.shape} and {bm.shape}; "
            "crop or pad the masks to a common grid first"
        )
    return float(
        hausdorff_batch(am[None], bm[None], percentile=percentile, sampling=sampling,
                        empty=empty, both_empty=both_empty, n_threads=1)[0]
    )
