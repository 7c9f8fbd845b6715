"""Exact Hausdorff distance between the foreground pixel sets of two masks.

Definition: with ``A``, ``B`` the foreground (non-zero) pixel centres of two
masks and ``d(p, S)`` the Euclidean distance (``sampling`` units) from ``p`` to
the nearest point of ``S``,

* directed distances ``D_AB = {d(a, B) : a in A}``, ``D_BA = {d(b, A) : b in B}``;
* Hausdorff distance ``HD = max(max D_AB, max D_BA)``;
* with ``percentile=p`` (e.g. 95 for HD95, the convention of MONAI's
  ``compute_hausdorff_distance``): ``max(P_p(D_AB), P_p(D_BA))`` with ``P_p``
  the percentile with linear interpolation of :func:`numpy.percentile`.

Algorithm, on the bounding box of ``A | B`` (every point of both sets lies in
it, so distances are unchanged): pass 1 of the EDT of "not B"
(:mod:`isslide_cube.kernels.edt`) gives each pixel its distance ``g`` to the
nearest pixel of ``B`` in its own column, and ``d(a, B)^2 = min_q (g_q sy)^2 +
((q - x_a) sx)^2`` over the columns ``q`` of ``a``'s row. For the maximum, most
pixels never need that minimum: ``g sy`` already bounds ``d(a, B)``, so pixels
(and whole rows) within the largest distance found so far are skipped; the
rest are checked against the column that served their left neighbour, then
searched outwards from their own column, stopping as soon as they come within
that maximum (the early break of Taha & Hanbury 2015) or once no farther column
can be nearer (then the distance is exact and raises the maximum). The second
direction starts from the first one's maximum. Rows whose searches grow long
are finished by the EDT's exact linear row pass. Percentiles need every
distance: the same searches without the early break. Scratch buffers are
allocated once per thread, not per pair.

Empty sets: if exactly one set is empty the distance is ``empty`` (default
``"diagonal"``: the image diagonal ``hypot(ny * sy, nx * sx)``, the largest
distance the image can express); if both are empty it is ``both_empty``
(default 0: the sets are equal). ``return_empty=True`` also returns which pairs
had an empty set, so reports can count them.

References
----------
D. P. Huttenlocher, G. A. Klanderman, W. J. Rucklidge, "Comparing images using
the Hausdorff distance", IEEE TPAMI 15(9) (1993), doi:10.1109/34.232073.
A. A. Taha, A. Hanbury, "An efficient algorithm for calculating the exact
Hausdorff distance", IEEE TPAMI 37(11) (2015), doi:10.1109/TPAMI.2015.2408351.

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
    _W,
    KernelInputError,
    _bounds,
    _columns,
    _isotropic,
    _solve,
    as_mask,
    parse_sampling,
)
from isslide_cube.kernels.threads import resolve_threads, use_threads

__all__ = ["hausdorff", "hausdorff_batch", "empty_value"]

# Search steps a row may take before the rest of it goes to edt's linear row
# pass: about w steps of x spacing (measured: a search step costs a fraction of
# a row-pass pixel, so rows with a few long searches still gain), fewer when sx
# < sy, where distances take proportionally more steps but the row pass does not.
_BUDGET_SLACK = 16


@njit(nogil=True, cache=True)
def _bbox_union(a, b, colany):
    """Bounding box ``(r0, r1, c0, c1)`` of ``a | b`` and whether each is non-empty.

    Branch-free OR reductions over whole rows (they vectorise); ``colany`` is
    scratch of ``a.shape[1]`` bytes.
    """
    ny, nx = a.shape
    for j in range(nx):
        colany[j] = 0
    r0, r1 = ny, 0
    has_a = np.uint8(0)
    has_b = np.uint8(0)
    for i in range(ny):
        ra = a[i]
        rb = b[i]
        oa = np.uint8(0)
        ob = np.uint8(0)
        for j in range(nx):
            oa |= ra[j]
            ob |= rb[j]
            colany[j] |= ra[j] | rb[j]
        if oa | ob:
            r0 = min(r0, i)
            r1 = i + 1
        has_a |= oa
        has_b |= ob
    c0, c1 = nx, 0
    for j in range(nx):
        if colany[j]:
            c0 = min(c0, j)
            c1 = j + 1
    return r0, r1, c0, c1, has_a != 0, has_b != 0


@njit(nogil=True, cache=True)
def _heights(g, f, sy2):
    """Parabola heights ``f = (g sy)^2`` of one row of column counts (``+inf``: no set pixel in the column)."""
    for j in range(g.shape[0]):
        v = np.float64(g[j])
        f[j] = np.inf if g[j] >= _BIG else v * v * sy2


@njit(nogil=True, cache=True)
def _search(fp, p, w, sx2, stop2):
    """Squared distance of the pixel whose height is ``fp[p]``, searched outwards.

    ``fp`` holds the heights of a row of width ``w``, padded with ``+inf`` by
    at least ``w`` on both sides; the answer is ``min_q fp[q] + ((q - p) sx)^2``.
    Offsets ``k`` are tried in increasing order and the search ends once
    ``(k sx)^2`` reaches the best value (no farther column can beat it), so
    its cost follows the pixel's own distance, not the row length. It also
    ends, early and inexactly, as soon as the best value is ``<= stop2``: a
    pixel that cannot raise the maximum found so far need not be measured (the
    early break of Taha & Hanbury 2015). Returns ``(best, where, offsets
    tried)``, ``where`` the index in ``fp`` of the column that gave ``best``.
    """
    best = fp[p]
    q = p
    k = 1
    while best > stop2 and k < w:
        c = k * k * sx2
        if c >= best:
            break
        left = fp[p - k] + c
        right = fp[p + k] + c
        if left < best:
            best = left
            q = p - k
        if right < best:
            best = right
            q = p + k
        k += 1
    return best, q, k


@njit(nogil=True, cache=True)
def _budget(w, sy2, sx2):
    """Search steps allowed per row (see ``_BUDGET_SLACK``)."""
    return int(w * min(1.0, math.sqrt(sx2 / sy2))) + _BUDGET_SLACK


@njit(nogil=True, cache=True)
def _src_top(g, s, fp, gs, ub, sy2, sx2):
    """Bounds of one row (``edt._bounds``), 0 off ``src``; the largest bound over the ``src`` pixels."""
    w = g.shape[0]
    _bounds(g, fp, gs[:w], ub[:w], sy2, sx2)
    # bounds of the other pixels are zeroed: edt._solve then sizes each run's
    # window by its src pixels only (runs without any take a zero-width window);
    # their distances come out wrong, and are never read
    top = 0.0
    for j in range(w):
        u = ub[j] * (s[j] != 0)
        ub[j] = u
        top = max(top, u)
    return top


@njit(nogil=True, cache=True)
def _solve_row(g, s, p0, sy2, sx, sx2, iso, sc):
    """Distances of one row's ``src`` pixels into ``sc[4]`` by ``edt``'s exact linear row pass.

    Returns ``False`` when every ``src`` pixel of the row is on the set (all
    distances 0, nothing written).
    """
    fp, gs, ub, best, o, pos, val, hv, z, iv, ih = sc
    w = g.shape[0]
    fw = fp[p0 - _W:p0 + w + _W]  # the row padded by _W, as edt expects
    top = _src_top(g, s, fw, gs, ub, sy2, sx2)
    if top == 0.0:
        return False
    _solve(fw, gs[:w], ub[:w], top, o[:w], best, pos, val, hv, z, iv, ih, iso, sx, sx2)
    return True


@njit(nogil=True, cache=True)
def _directed_max(gi, src, r0, c0, c1, sy2, sx, sx2, iso, hd2, sc):
    """Largest squared distance from a ``src`` pixel to the set whose column counts are ``gi``,
    or ``hd2`` if none is larger (``hd2``: the maximum known so far).

    ``gi`` rows hold the counts of the bounding box rows ``r0:``, columns
    ``c0:c1``. A ``src`` pixel is never farther than the nearest set pixel of
    its own column (``g sy``): rows whose ``src`` pixels are all within
    ``hd2`` by that bound are skipped by one vectorised pass, and so are such
    pixels. The others are first checked against the column that brought the
    previous one within ``hd2`` (neighbours share their nearest set pixels),
    then searched outwards (:func:`_search`), dropped as soon as they come
    within ``hd2``. A row whose searches grow long (pixels far from the set,
    large images) goes to the exact linear row pass, so that no row costs
    much more than that pass.
    """
    fp = sc[0]
    w = c1 - c0
    p0 = max(gi.shape[1], _W)  # where rows start in fp (see _scratch)
    f = fp[p0:p0 + w]
    budget = _budget(w, sy2, sx2)
    for i in range(gi.shape[0]):
        g = gi[i, c0:c1]
        s = src[r0 + i, c0:c1]
        gmax = np.int32(0)
        for j in range(w):
            gmax = max(gmax, g[j] * np.int32(s[j] != 0))
        if gmax == 0 or (gmax < _BIG and np.float64(gmax) * np.float64(gmax) * sy2 <= hd2):
            continue
        _heights(g, f, sy2)
        steps = 0
        q = p0 - 1  # last certifying column (index in fp; +inf before the row)
        for j in range(w):
            if s[j] == 0 or f[j] <= hd2:
                continue
            p = p0 + j
            d = np.float64(q - p)
            if fp[q] + d * d * sx2 <= hd2:
                continue
            d2, q, n = _search(fp, p, w, sx2, hd2)
            hd2 = max(hd2, d2)
            steps += n
            if steps > budget:
                if _solve_row(g, s, p0, sy2, sx, sx2, iso, sc):
                    o = sc[4]
                    for jj in range(j + 1, w):
                        if s[jj] != 0:
                            hd2 = max(hd2, o[jj] * o[jj])
                break
    return hd2


@njit(nogil=True, cache=True)
def _directed_all(gi, src, r0, c0, c1, sy2, sx, sx2, iso, buf, sc):
    """Distances from every ``src`` pixel to the set whose column counts are ``gi``, into
    ``buf`` (row-major order); returns how many. The searches of :func:`_directed_max`, exact."""
    fp = sc[0]
    w = c1 - c0
    p0 = max(gi.shape[1], _W)
    f = fp[p0:p0 + w]
    budget = _budget(w, sy2, sx2)
    n = 0
    for i in range(gi.shape[0]):
        g = gi[i, c0:c1]
        s = src[r0 + i, c0:c1]
        _heights(g, f, sy2)
        steps = 0
        j = 0
        while j < w:
            if s[j] != 0:
                d2, _, kk = _search(fp, p0 + j, w, sx2, -1.0)
                buf[n] = math.sqrt(d2)
                n += 1
                steps += kk - 1
                if steps > budget:
                    break
            j += 1
        if j < w:  # search budget spent: the rest of the row from the exact row pass
            solved = _solve_row(g, s, p0, sy2, sx, sx2, iso, sc)
            o = sc[4]
            for jj in range(j + 1, w):
                if s[jj] != 0:
                    buf[n] = o[jj] if solved else 0.0
                    n += 1
    return n


@njit(nogil=True, cache=True)
def _scratch(ny, nx, pct):
    """Per-thread buffers of :func:`_pair`, allocated once per block of pairs.

    ``fp``: a row of heights at ``fp[max(nx, _W):]``, with ``+inf`` padding of
    ``max(nx, _W)`` on both sides (the searches never test an index; edt's row
    pass wants ``_W``).
    """
    pad = max(nx, _W)
    fp = np.full(nx + 2 * pad, np.inf)
    sc = (fp, np.empty(nx, np.int64), np.empty(nx), np.empty(nx), np.empty(nx),
          np.empty(nx + 1), np.empty(nx + 1), np.empty(nx + 1), np.empty(nx + 1),
          np.empty(nx + 1, np.int64), np.empty(nx + 1, np.int64))
    gi = np.empty(ny * nx, np.int32)
    buf = np.empty(ny * nx if pct >= 0 else 0)
    return gi, np.empty(nx, np.uint8), buf, sc


@njit(nogil=True, cache=True)
def _pair(a, b, sy, sx, pct, empty, both_empty, gi_buf, colany, buf, sc):
    """Hausdorff distance of one pair of uint8 masks; second value: an empty set was met."""
    r0, r1, c0, c1, has_a, has_b = _bbox_union(a, b, colany)
    if not has_a and not has_b:
        return both_empty, True
    if not has_a or not has_b:
        return empty, True
    h = r1 - r0
    w = c1 - c0
    nx = a.shape[1]
    sy2 = sy * sy
    sx2 = sx * sx
    iso = _isotropic(a.shape, sy, sx)
    # rows start at fp[max(nx, _W)]; restore the padding right of this pair's
    # rows (where earlier, wider pairs wrote)
    p0 = max(nx, _W)
    sc[0][p0 + w:p0 + nx] = np.inf
    gi = gi_buf[:h * nx].reshape((h, nx))
    ra = a[r0:r1]
    rb = b[r0:r1]
    if pct < 0:
        # d(., B): pass 1 of the EDT of "not B" (background = B's pixels), read on
        # A's pixels; the second direction need only beat the first one's maximum
        _columns(rb, gi, c0, c1, True)
        hd2 = _directed_max(gi, a, r0, c0, c1, sy2, sx, sx2, iso, 0.0, sc)
        _columns(ra, gi, c0, c1, True)
        hd2 = _directed_max(gi, b, r0, c0, c1, sy2, sx, sx2, iso, hd2, sc)
        return math.sqrt(hd2), False
    _columns(rb, gi, c0, c1, True)
    n = _directed_all(gi, a, r0, c0, c1, sy2, sx, sx2, iso, buf, sc)
    hab = np.percentile(buf[:n], pct)
    _columns(ra, gi, c0, c1, True)
    n = _directed_all(gi, b, r0, c0, c1, sy2, sx, sx2, iso, buf, sc)
    return max(hab, np.percentile(buf[:n], pct)), False


@njit(nogil=True, cache=True)
def _block(A, B, lo, hi, sy, sx, pct, empty, both_empty, res, flag):
    gi, colany, buf, sc = _scratch(A.shape[1], A.shape[2], pct)
    for k in range(lo, hi):
        res[k], flag[k] = _pair(A[k], B[k], sy, sx, pct, empty, both_empty, gi, colany, buf, sc)


@njit(nogil=True, cache=True)
def _batch_serial(A, B, sy, sx, pct, empty, both_empty, res, flag):
    _block(A, B, 0, A.shape[0], sy, sx, pct, empty, both_empty, res, flag)


@njit(nogil=True, cache=True, parallel=True)
def _batch_parallel(A, B, sy, sx, pct, empty, both_empty, res, flag, n_blocks):
    n = A.shape[0]
    for c in prange(n_blocks):
        _block(A, B, c * n // n_blocks, (c + 1) * n // n_blocks, sy, sx, pct, empty, both_empty, res, flag)


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
                _batch_parallel(a, b, sy, sx, pct, ev, float(both_empty), res, flag,
                                min(n, 16 * nt))
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
