"""Goldstein adaptive phase filter (Goldstein & Werner 1998, GRL 25(21)).

The complex interferogram ``exp(i phase)`` is cut into ``window`` x ``window`` blocks
overlapping by ``window - step``; each block's spectrum ``Z`` is weighted by
``|S(Z)|**alpha`` (``S`` a 3 x 3 smoothing of the amplitude spectrum, normalised to a
maximum of 1), transformed back, and the blocks are blended with a separable triangular
taper that sums to one where they overlap. ``alpha = 0`` returns the input phase.
NaN pixels are filtered as zeros and stay NaN. Blocks are processed in strips of
block rows so memory stays a few times the image size at paper scale.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy import fft as sfft
from scipy import ndimage


def _taper(window: int, step: int) -> np.ndarray:
    # Triangular taper: shifted copies every `step` pixels sum to a constant.
    if step == window:
        return np.ones(window, dtype="float32")
    t = 1.0 - np.abs((np.arange(window) + 0.5) - window / 2) / (window / 2)
    return t.astype("float32")


def goldstein(phase: np.ndarray, alpha: float = 1.0, window: int = 64, step: int = 32,
              smooth: int = 3, strip: int = 16, threads: int = 2) -> np.ndarray:
    """Goldstein-filtered wrapped phase.

    Parameters
    ----------
    phase
        Wrapped phase (rad), 2-D, NaN where no data.
    alpha
        Filter exponent (1 in SNAP's default, 0 = no filtering).
    window
        FFT block size in pixels (64).
    step
        Distance between blocks (``window // 2``: 50 % overlap).
    smooth
        Size of the uniform smoothing of the amplitude spectrum.
    strip
        Block rows processed at once (memory/speed trade-off only).
    threads
        Threads filtering strips concurrently (the result does not depend on it).

    Returns
    -------
    numpy.ndarray
        float32 phase in [-pi, pi), NaN where the input is NaN.

    Example
    -------
    >>> p = np.angle(np.exp(1j * np.linspace(0, 20, 128)))[None, :].repeat(128, 0)
    >>> bool(np.allclose(goldstein(p, alpha=0.0), p, atol=1e-5))
    True
    """
    if window % step:
        raise ValueError(f"window ({window}) must be a multiple of step ({step})")
    phase = np.asarray(phase)
    nodata = ~np.isfinite(phase)
    z = np.exp(1j * np.where(nodata, 0.0, phase)).astype("complex64")
    z[nodata] = 0
    ny, nx = z.shape
    pad = window - step
    # Pad so every pixel is covered by window/step blocks and the grid of blocks fits.
    py = pad + (-(ny + 2 * pad - window) % step)
    px = pad + (-(nx + 2 * pad - window) % step)
    zp = np.pad(z, ((pad, py), (pad, px)), mode="reflect")
    nby = (zp.shape[0] - window) // step + 1
    nbx = (zp.shape[1] - window) // step + 1
    taper = _taper(window, step)
    w2 = np.outer(taper, taper)
    acc = np.zeros(zp.shape, dtype="complex64")
    view = np.lib.stride_tricks.sliding_window_view(zp, (window, window))[::step, ::step]
    m = window // step
    acc_t = acc.reshape(acc.shape[0] // step, step, acc.shape[1] // step, step)

    def filtered(by0: int) -> np.ndarray:
        blocks = np.ascontiguousarray(view[by0: by0 + strip])  # (sy, nbx, w, w)
        if alpha != 0.0:
            spec = sfft.fft2(blocks, axes=(-2, -1), workers=1)
            amp = np.abs(spec)
            if smooth > 1:
                amp = ndimage.uniform_filter(amp, size=(1, 1, smooth, smooth), mode="wrap")
            amp /= np.maximum(amp.max(axis=(-2, -1), keepdims=True), 1e-12)
            if alpha != 1.0:
                amp **= alpha
            spec *= amp
            blocks = sfft.ifft2(spec, axes=(-2, -1), workers=1).astype("complex64")
        blocks *= w2
        return blocks

    # Strips are filtered on `threads` threads (numpy and pocketfft release the GIL) but
    # added in order, so the result does not depend on the number of threads.
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        for by0, blocks in zip(range(0, nby, strip), pool.map(filtered, range(0, nby, strip)), strict=True):
            # Overlap-add without a Python loop over blocks: split each block into
            # (window/step)^2 tiles of step x step and add each tile family at once.
            sy = blocks.shape[0]
            tiles = blocks.reshape(sy, nbx, m, step, m, step)
            for a in range(m):
                for b in range(m):
                    acc_t[by0 + a: by0 + a + sy, :, b: b + nbx, :] += \
                        tiles[:, :, a, :, b, :].transpose(0, 2, 1, 3)
    out = np.angle(acc[pad: pad + ny, pad: pad + nx]).astype("float32")
    out = np.where(out >= np.pi, out - np.float32(2 * np.pi), out).astype("float32")
    out[nodata] = np.nan
    return out
