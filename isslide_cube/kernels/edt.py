"""Exact Euclidean distance transform of 2-D masks (numba, separable, parallel).

Definition (that of :func:`scipy.ndimage.distance_transform_edt`): for every
non-zero pixel, the Euclidean distance, in ``sampling`` units, to the nearest
zero pixel; zero pixels get 0. A mask without any zero pixel gets ``+inf``
everywhere (scipy returns an arbitrary number there).

Algorithm: the separable exact transform of Felzenszwalb & Huttenlocher (2012)
in the two-pass form of Meijster et al. (2000):

1. *columns*: for every pixel, the distance (in pixels) to the nearest zero in
   its column, by one forward and one backward sweep. The sweeps walk rows, so
   the inner loop runs along contiguous memory over a block of columns that
   fits in cache, and vectorises.
2. *rows*: the lower envelope of the parabolas ``f_q + ((x - q) sx)^2``,
   ``f_q = (column distance * sy)^2``, of each row. Every pixel's answer is
   bounded by its own parabola and by the nearest zero of its row; when a
   row's largest bound is below ``((w + 1) sx)^2``, no parabola farther than
   ``w`` pixels can be a minimum, and the envelope reduces, exactly, to a
   vectorised minimum over a window of half-width ``w`` (a few SIMD ``min`` per
   pixel, no branches). Other rows split at their zeros (a zero parabola
   dominates everything beyond it) into independent runs, each solved by that
   window, by brute force when short, or by the Felzenszwalb-Huttenlocher envelope.

Pass 1 writes integer counts into the output array's own memory and pass 2
overwrites it row by row, so the transform needs, beyond its output, only a few
scratch vectors of one row per thread. Distances are computed in float64 and
rounded once to the output dtype.

References
----------
P. F. Felzenszwalb, D. P. Huttenlocher, "Distance Transforms of Sampled
Functions", Theory of Computing 8 (2012), doi:10.4086/toc.2012.v008a019.
A. Meijster, J. B. T. M. Roerdink, W. H. Hesselink, "A general algorithm for
computing distance transforms in linear time", Mathematical Morphology and its
Applications to Image and Signal Processing (2000), doi:10.1007/0-306-47025-X_36.

Examples
--------
>>> import numpy as np
>>> from isslide_cube.kernels import edt
>>> m = np.ones((3, 5), bool); m[1, 0] = False
>>> edt(m, dtype=np.float64)[1]
array([0., 1., 2., 3., 4.])
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numba import njit, prange

from isslide_cube.kernels.threads import resolve_threads, use_threads
from isslide_cube.schema import IsslideError

__all__ = ["KernelInputError", "edt", "edt_batch", "as_mask", "parse_sampling"]

# Columns handled together by one task of the column pass: 64 float32 columns of
# a 4096-row image are 1 MiB, so the backward sweep finds the forward sweep's rows in L2.
_COL_BLOCK = 64
# Rows handled by one task of the row pass (amortises scratch allocation).
_ROW_BLOCK = 16


class KernelInputError(IsslideError, ValueError):
    """Bad input to a kernel (shape, dtype, sampling, NaN); the message says how to fix it."""


# ----------------------------------------------------------------- numba core
# "No zero in this column" marker of the integer column pass; any real count is < 2**30.
_BIG = 1 << 30
# Half-widths of the exact vectorised window of pass 2 (cost ~ (2w + 1) / lanes
# per pixel): up to _W_ROW a whole row at once (cheap, no per-run overhead; with
# equal spacing, rows whose column counts are all <= _W_ROW take the widening
# integer window without computing bounds); beyond, each run between zeros with
# its own, tighter bound, up to _W_RUN (measured: wider windows lose to the envelope).
_W = 64
_W_ROW = 16
_W_RUN = 48
# Padding of the integer window (> any g**2 + k**2 it is compared with, < 2**31 - _W**2).
_PAD = 1 << 30
# Foreground runs up to this length are solved by brute force instead of an envelope.
_SHORT = 8


@njit(nogil=True, cache=True)
def _columns(mask, gi, c0, c1, invert):
    """Pass 1 on columns ``c0:c1``: distance in pixels to the nearest zero of the column.

    ``mask`` uint8, C order; background is ``mask == 0`` (``mask != 0`` when
    ``invert``). ``gi`` is an integer array of the same shape; ``_BIG`` or more
    where a column has no background pixel. Rows are walked so the inner loops
    run over contiguous memory and vectorise (branch-free: ``(prev + 1) * fg``).
    """
    ny = mask.shape[0]
    nx = c1 - c0
    m = mask[0, c0:c1]
    cur = gi[0, c0:c1]
    for j in range(nx):
        cur[j] = _BIG * ((m[j] != 0) ^ invert)
    for i in range(1, ny):
        m = mask[i, c0:c1]
        prev = gi[i - 1, c0:c1]
        cur = gi[i, c0:c1]
        for j in range(nx):
            cur[j] = (prev[j] + 1) * ((m[j] != 0) ^ invert)
    for i in range(ny - 2, -1, -1):
        nxt = gi[i + 1, c0:c1]
        cur = gi[i, c0:c1]
        for j in range(nx):
            cur[j] = min(cur[j], nxt[j] + 1)


@njit(nogil=True, cache=True)
def _envelope(f, lo, hi, a, b, sx, o, pos, val, hv, z):
    """Exact lower envelope of the parabolas ``f[q] + ((x - q) sx)^2``, ``q`` in ``lo..hi``,
    evaluated (square root) at ``x`` in ``a+1..b-1`` into ``o`` (Felzenszwalb-Huttenlocher).

    Scratch: ``pos`` apex x, ``val`` apex height, ``hv = val + pos**2``, ``z`` left boundaries.
    """
    k = -1
    for q in range(lo, hi + 1):
        fq = f[q]
        if fq == np.inf:
            continue
        pq = q * sx
        hq = fq + pq * pq
        if k < 0:
            k = 0
            pos[0] = pq
            val[0] = fq
            hv[0] = hq
            z[0] = -np.inf
            continue
        s = (hq - hv[k]) / (2.0 * (pq - pos[k]))
        while s <= z[k]:
            k -= 1
            s = (hq - hv[k]) / (2.0 * (pq - pos[k]))
        k += 1
        pos[k] = pq
        val[k] = fq
        hv[k] = hq
        z[k] = s
    if k < 0:  # no background anywhere in these columns
        for x in range(a + 1, b):
            o[x] = np.inf
        return
    top = k
    k = 0
    for x in range(a + 1, b):
        px = x * sx
        while k < top and z[k + 1] < px:
            k += 1
        d = px - pos[k]
        o[x] = math.sqrt(val[k] + d * d)


@njit(nogil=True, cache=True)
def _envelope_int(gs, lo, hi, a, b, s, o, v, hh, d2):
    """:func:`_envelope` for isotropic spacing ``s``, in exact integer arithmetic.

    Parabolas ``g[q]**2 + (x - q)**2`` (``gs`` the column counts as int64,
    ``>= _BIG`` for none), ``q`` in ``lo..hi``, evaluated at ``x`` in ``a+1..b-1``.
    No division: a parabola leaves the stack when the new one's intersection
    with it is not right of its own left intersection, compared by cross
    multiplication (``|values| < 2**62`` for images under ``2**20`` a side);
    the evaluation compares parabola values directly. Only the final
    ``s * sqrt(d2)`` is floating point. Scratch ``v``, ``hh`` (int64), ``d2``.
    """
    k = -1
    for q in range(lo, hi + 1):
        gq = gs[q]
        if gq >= _BIG:
            continue
        hq = gq * gq + q * q
        while k >= 1 and (hh[k] - hh[k - 1]) * (q - v[k]) >= (hq - hh[k]) * (v[k] - v[k - 1]):
            k -= 1
        k += 1
        v[k] = q
        hh[k] = hq
    if k < 0:  # no background anywhere in these columns
        for x in range(a + 1, b):
            o[x] = np.inf
        return
    kk = 0
    for x in range(a + 1, b):
        while kk < k and hh[kk + 1] - 2 * x * v[kk + 1] <= hh[kk] - 2 * x * v[kk]:
            kk += 1
        d2[x] = hh[kk] - 2 * x * v[kk] + x * x
    for x in range(a + 1, b):  # separate loop: vectorised square roots
        o[x] = s * math.sqrt(np.float64(d2[x]))


@njit(nogil=True, cache=True)
def _window(fp, lo, hi, w, sx2, o, best):
    """``o[x] = sqrt(min_{|k|<=w} f[x+k] + (k sx)^2)`` for ``x`` in ``lo:hi`` (vectorised).

    ``fp`` is ``f`` padded with +inf by ``_W`` on both sides (``w <= _W``);
    ``best`` is scratch of at least ``hi - lo``.
    """
    n = hi - lo
    mid = fp[_W + lo:_W + hi]
    for j in range(n):
        best[j] = mid[j]
    for k in range(1, w + 1):
        c = k * k * sx2
        left = fp[_W + lo - k:_W + hi - k]
        right = fp[_W + lo + k:_W + hi + k]
        for j in range(n):
            best[j] = min(best[j], min(left[j], right[j]) + c)
    for j in range(n):
        o[lo + j] = math.sqrt(best[j])


@njit(nogil=True, cache=True)
def _half_width(top, sx2):
    """Smallest ``w`` with ``(w + 1)**2 * sx2 > top``.

    Computed with the very expression the window uses for its offsets
    (``k * k * sx2``), so rounding cannot drop the parabola that holds the minimum.
    """
    w = int(math.sqrt(top / sx2))
    while (w + 1) * (w + 1) * sx2 <= top:
        w += 1
    while w > 0 and w * w * sx2 > top:
        w -= 1
    return w


@njit(nogil=True, cache=True)
def _bounds(g, fp, gs, ub, sy2, sx2):
    """Parabola heights ``f = (g sy)^2`` into ``fp`` (padded), ``g`` into ``gs``
    (int64) and per-pixel bounds into ``ub``.

    Each pixel's squared distance is at most ``ub[x] = min(f[x], (r sx)^2)``,
    ``r`` the distance along the row to its nearest zero. Returns ``max(ub)``.
    """
    nx = g.shape[0]
    f = fp[_W:_W + nx]
    for j in range(nx):
        v = g[j]
        gs[j] = v
        f[j] = np.inf if v >= _BIG else v * v * sy2
    # run distances along the row in integers, branch-free (random masks would
    # mispredict): r = (r + 1) & -(g != 0) is a 2-cycle dependency chain where
    # the float (r + 1) * (g != 0) took 8; _BIG stands for "no zero yet"
    r = np.int64(_BIG)
    for j in range(nx):
        r = (r + 1) & -np.int64(gs[j] != 0)
        ub[j] = r
    r = np.int64(_BIG)
    top = 0.0
    for j in range(nx - 1, -1, -1):
        r = (r + 1) & -np.int64(gs[j] != 0)
        rr = np.float64(min(r, np.int64(ub[j])))
        u = min(f[j], rr * rr * sx2)
        ub[j] = u
        top = max(top, u)
    return top


@njit(nogil=True, cache=True)
def _solve(fp, gs, ub, top, o, best, pos, val, hv, z, iv, ih, iso, sx, sx2):
    """Distances of one row into ``o`` from :func:`_bounds`' ``fp``, ``ub``.

    Exact at every pixel whose bound is ``<= top`` (all of them when ``top`` is
    ``max(ub)``). With ``w`` the smallest half-width such that ``((w+1) sx)^2 >
    top``, no parabola farther than ``w`` pixels can hold such a pixel's
    minimum, so a window of half-width ``w`` is exact: a few vectorised ``min``
    per pixel, far cheaper than the branchy envelope. Rows with a larger bound
    split at their zeros (a zero parabola dominates everything beyond it) into
    runs: each takes the window if its own bound is small, brute force if it is
    short, else the exact envelope (in integers when ``iso``: equal spacing).
    """
    nx = o.shape[0]
    f = fp[_W:_W + nx]
    if top < (_W_ROW + 1) * (_W_ROW + 1) * sx2:
        _window(fp, 0, nx, _half_width(top, sx2), sx2, o, best)
        return
    a = -1
    for j in range(nx + 1):
        if j < nx and f[j] != 0.0:
            continue
        if j < nx:
            o[j] = 0.0
        if j - a > 1:
            lo = a if a >= 0 else 0
            hi = j if j < nx else nx - 1
            seg_top = 0.0
            for x in range(a + 1, j):
                seg_top = max(seg_top, ub[x])
            if seg_top < (_W_RUN + 1) * (_W_RUN + 1) * sx2:
                _window(fp, a + 1, j, _half_width(seg_top, sx2), sx2, o, best)
            elif j - a - 1 <= _SHORT:
                for x in range(a + 1, j):
                    b2 = np.inf
                    for q in range(lo, hi + 1):
                        d = x - q
                        b2 = min(b2, f[q] + d * d * sx2)
                    o[x] = math.sqrt(b2)
            elif iso:
                _envelope_int(gs, lo, hi, a, j, sx, o, iv, ih, best)
            else:
                _envelope(f, lo, hi, a, j, sx, o, pos, val, hv, z)
        a = j


@njit(nogil=True, cache=True)
def _window_int(fi, nx, wmax, o, bi, s):
    """Row distances by an integer window that widens until it is exact (equal spacing).

    ``fi`` holds ``g**2`` (int32) padded by ``_W`` on both sides with ``_PAD``.
    After half-width ``k``, ``bi[x] = min_{|d|<=k} g[x+d]**2 + d**2``; every
    parabola farther than ``k`` is ``>= (k + 1)**2``, so once ``max(bi) < (k +
    1)**2`` the row is exact and the loop stops: the width follows the row's
    true largest distance, with no bound to compute first. Needs
    ``max(g)**2 < (wmax + 1)**2`` (then ``k = wmax`` is always exact).
    """
    f = fi[_W:_W + nx]
    m = 0
    for j in range(nx):
        bi[j] = f[j]
        m = max(m, f[j])
    k = 0
    while m >= (k + 1) * (k + 1) and k < wmax:
        k += 1
        c = k * k
        left = fi[_W - k:_W + nx - k]
        right = fi[_W + k:_W + nx + k]
        m = 0
        for j in range(nx):
            b = min(bi[j], min(left[j], right[j]) + c)
            bi[j] = b
            m = max(m, b)
    for j in range(nx):
        o[j] = s * math.sqrt(np.float64(bi[j]))


@njit(nogil=True, cache=True)
def _row(g, o, fp, gs, ub, best, pos, val, hv, z, iv, ih, fi, bi, iso, sy2, sx):
    """Pass 2 on one row: column counts ``g`` (may alias ``o``) to distances ``o``."""
    sx2 = sx * sx
    nx = g.shape[0]
    if iso:
        low = g[0]
        high = g[0]
        for j in range(nx):
            low = min(low, g[j])
            high = max(high, g[j])
        if high <= _W_ROW:
            # short columns distances: every answer is <= high**2, a narrow window
            f = fi[_W:_W + nx]
            for j in range(nx):
                f[j] = g[j] * g[j]
            _window_int(fi, nx, high, o, bi, sx)
            return
        if low > 0:
            # a row without background (inside large objects, sparse masks) is
            # one run with a large bound: the integer envelope, no bounds needed
            for j in range(nx):
                gs[j] = g[j]
            _envelope_int(gs, 0, nx - 1, -1, nx, sx, o, iv, ih, best)
            return
    top = _bounds(g, fp, gs, ub, sy2, sx2)
    _solve(fp, gs, ub, top, o, best, pos, val, hv, z, iv, ih, iso, sx, sx2)


@njit(nogil=True, cache=True)
def _rows(gi, out, r0, r1, sy2, sx, iso):
    """Pass 2 on rows ``r0:r1`` with one set of scratch vectors."""
    nx = out.shape[1]
    fp = np.empty(nx + 2 * _W)
    fi = np.empty(nx + 2 * _W, np.int32)
    for k in range(_W):
        fp[k] = np.inf
        fp[nx + _W + k] = np.inf
        fi[k] = _PAD
        fi[nx + _W + k] = _PAD
    gs = np.empty(nx, np.int64)
    ub = np.empty(nx)
    best = np.empty(nx)
    bi = np.empty(nx, np.int32)
    pos = np.empty(nx + 1)
    val = np.empty(nx + 1)
    hv = np.empty(nx + 1)
    z = np.empty(nx + 1)
    iv = np.empty(nx + 1, np.int64)
    ih = np.empty(nx + 1, np.int64)
    for i in range(r0, r1):
        _row(gi[i], out[i], fp, gs, ub, best, pos, val, hv, z, iv, ih, fi, bi, iso, sy2, sx)


@njit(nogil=True, cache=True)
def _isotropic(shape, sy, sx):
    """Equal spacing, and small enough (< 2**20 a side) for :func:`_envelope_int`'s int64 products."""
    return sy == sx and max(shape[0], shape[1]) < (1 << 20)


@njit(nogil=True, cache=True)
def _edt_serial(mask, gi, out, sy, sx, invert):
    _columns(mask, gi, 0, mask.shape[1], invert)
    _rows(gi, out, 0, out.shape[0], sy * sy, sx, _isotropic(mask.shape, sy, sx))


@njit(nogil=True, cache=True, parallel=True)
def _edt_parallel(mask, gi, out, sy, sx, invert):
    ny, nx = mask.shape
    nb = (nx + _COL_BLOCK - 1) // _COL_BLOCK
    for b in prange(nb):
        _columns(mask, gi, b * _COL_BLOCK, min(nx, (b + 1) * _COL_BLOCK), invert)
    nr = (ny + _ROW_BLOCK - 1) // _ROW_BLOCK
    sy2 = sy * sy
    iso = _isotropic(mask.shape, sy, sx)
    for b in prange(nr):
        _rows(gi, out, b * _ROW_BLOCK, min(ny, (b + 1) * _ROW_BLOCK), sy2, sx, iso)


@njit(nogil=True, cache=True)
def _edt_batch_serial(masks, gi, out, sy, sx):
    for k in range(masks.shape[0]):
        _edt_serial(masks[k], gi[k], out[k], sy, sx, False)


@njit(nogil=True, cache=True, parallel=True)
def _edt_batch_parallel(masks, gi, out, sy, sx):
    for k in prange(masks.shape[0]):
        _edt_serial(masks[k], gi[k], out[k], sy, sx, False)


# ------------------------------------------------------------- python side


def parse_sampling(sampling: float | Sequence[float] | None, ndim: int = 2) -> tuple[float, ...]:
    """Pixel spacing per axis as a tuple of positive floats (``None`` -> all 1).

    Raises
    ------
    KernelInputError
        Wrong length, or a non-finite or non-positive spacing.
    """
    if sampling is None:
        return (1.0,) * ndim
    vals = np.atleast_1d(np.asarray(sampling, dtype=np.float64))
    if vals.ndim != 1 or vals.size not in (1, ndim):
        raise KernelInputError(
            f"sampling must be a number or {ndim} numbers (one per axis, (y, x) order), got {sampling!r}"
        )
    if vals.size == 1:
        vals = np.repeat(vals, ndim)
    if not np.all(np.isfinite(vals)) or np.any(vals <= 0):
        raise KernelInputError(f"sampling must be finite and > 0, got {sampling!r}")
    return tuple(float(v) for v in vals)


def as_mask(mask: object, ndim: int, name: str = "mask") -> np.ndarray:
    """A C-contiguous uint8 view or copy of ``mask`` where non-zero means foreground.

    bool and uint8 inputs are viewed without a copy when already C-contiguous;
    any other dtype becomes ``mask != 0`` (NaN counts as foreground, as in scipy).
    """
    if hasattr(mask, "dask") or type(mask).__module__.startswith(("xarray", "dask")):
        raise KernelInputError(
            f"{name} is a {type(mask).__name__}; this function takes numpy arrays. "
            "Use isslide_cube.kernels.distance_transform / hausdorff_distance for xarray or dask."
        )
    arr = np.asarray(mask)
    if arr.ndim != ndim:
        what = "(y, x)" if ndim == 2 else "(n, y, x)"
        raise KernelInputError(
            f"{name} must be {ndim}-D {what}, got shape {arr.shape}; "
            + ("use edt_batch for a stack of masks" if ndim == 2 and arr.ndim == 3 else
               "reshape it (e.g. mask[np.newaxis] for one image)")
        )
    if arr.dtype == np.bool_:
        arr = arr.view(np.uint8)
    elif arr.dtype != np.uint8:
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
            raise KernelInputError(f"{name} must be numeric or bool, got dtype {arr.dtype}")
        arr = (arr != 0).view(np.uint8)
    return np.ascontiguousarray(arr)


def _check_dtype(dtype: object) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise KernelInputError(f"dtype must be float32 or float64, got {dt}")
    return dt


def _prepare_out(out: np.ndarray | None, shape: tuple[int, ...], dt: np.dtype) -> np.ndarray:
    if out is None:
        return np.empty(shape, dtype=dt)
    if out.shape != shape or out.dtype != dt or not out.flags.c_contiguous or not out.flags.writeable:
        raise KernelInputError(
            f"out must be a writeable C-contiguous {dt} array of shape {shape}, "
            f"got {out.dtype} {out.shape}"
        )
    return out


def _int_view(out: np.ndarray) -> np.ndarray:
    # Pass 1 writes integer counts into the output's own memory (no extra buffer);
    # pass 2 reads each row into scratch before overwriting it with distances.
    return out.view(np.int32 if out.dtype == np.float32 else np.int64)


def edt(
    mask: np.ndarray,
    sampling: float | Sequence[float] | None = None,
    *,
    dtype: object = np.float32,
    out: np.ndarray | None = None,
    n_threads: int | None = None,
) -> np.ndarray:
    """Exact Euclidean distance transform of a 2-D mask.

    Parameters
    ----------
    mask
        2-D array ``(y, x)``, any numeric or bool dtype, any memory layout;
        non-zero pixels are foreground. Never modified.
    sampling
        Pixel spacing along ``(y, x)`` (a number for both); default 1.
    dtype
        ``float32`` (default) or ``float64`` output.
    out
        Optional C-contiguous output array of that dtype and the mask's shape.
    n_threads
        numba threads; default: see :mod:`isslide_cube.kernels.threads`.

    Returns
    -------
    numpy.ndarray
        Distance of every foreground pixel to the nearest background pixel, in
        ``sampling`` units; 0 on background; ``+inf`` everywhere if the mask has
        no background pixel.

    Raises
    ------
    KernelInputError
        Not 2-D, bad ``sampling``, ``dtype`` or ``out``.

    Example
    -------
    >>> import numpy as np
    >>> m = np.ones((1, 4), dtype=np.uint8); m[0, 0] = 0
    >>> edt(m, sampling=(1.0, 0.5)).tolist()
    [[0.0, 0.5, 1.0, 1.5]]
    """
    m = as_mask(mask, 2)
    sy, sx = parse_sampling(sampling, 2)
    res = _prepare_out(out, m.shape, _check_dtype(dtype))
    if m.size == 0:
        return res
    gi = _int_view(res)
    n = resolve_threads(n_threads)
    if n == 1:
        _edt_serial(m, gi, res, sy, sx, False)
    else:
        with use_threads(n):
            _edt_parallel(m, gi, res, sy, sx, False)
    return res


def edt_batch(
    masks: np.ndarray,
    sampling: float | Sequence[float] | None = None,
    *,
    dtype: object = np.float32,
    out: np.ndarray | None = None,
    n_threads: int | None = None,
) -> np.ndarray:
    """:func:`edt` of every image of a stack ``(n, y, x)``, in parallel over images.

    Parameters and result as in :func:`edt`, with a leading image axis. Few
    large images (fewer than four per thread) are transformed one after the
    other, each in parallel; many small ones are spread over the threads.

    Example
    -------
    >>> import numpy as np
    >>> edt_batch(np.ones((2, 1, 3), bool), dtype=np.float64)[0].tolist()
    [[inf, inf, inf]]
    """
    m = as_mask(masks, 3, "masks")
    sy, sx = parse_sampling(sampling, 2)
    res = _prepare_out(out, m.shape, _check_dtype(dtype))
    if m.size == 0:
        return res
    gi = _int_view(res)
    n = resolve_threads(n_threads)
    if n == 1:
        _edt_batch_serial(m, gi, res, sy, sx)
    elif m.shape[0] >= 4 * n:
        with use_threads(n):
            _edt_batch_parallel(m, gi, res, sy, sx)
    else:
        with use_threads(n):
            for k in range(m.shape[0]):
                _edt_parallel(m[k], gi[k], res[k], sy, sx, False)
    return res
