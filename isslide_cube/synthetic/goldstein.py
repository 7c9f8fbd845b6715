"""Goldstein adaptive phase filter (Goldstein & Werner 1998, GRL 25(21)).

The complex interferogram ``exp(i phase)`` is cut into ``window`` blocks (rows x cols;
an int means square) overlapping by ``window - step``; each block's spectrum ``Z`` is
weighted by ``|S(Z)|**alpha`` (``S`` a 3 x 3 smoothing of the amplitude spectrum,
normalised to a maximum of 1), transformed back, and the blocks are blended with a
separable triangular taper that sums to one where they overlap (50 % overlap; a
constant otherwise, which the phase ignores). ``alpha = 0`` returns the input phase.

The window is anisotropic because SNAP filters the single-look grid, before 8 x 2
(range x azimuth) multilooking: its 64 x 64 px block is about 8 x 32 px (cols x rows)
of the multilooked grid (see ``presets.Preset.goldstein_window``).
NaN pixels are filtered as zeros and stay NaN. Blocks are processed in strips of
block rows so memory stays a few times the image size at paper scale.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy import fft as sfft
from scipy import ndimage


def _pair(value: int | tuple[int, int], name: str) -> tuple[int, int]:
    # An int means the same size along rows and columns.
    if np.ndim(value) == 0:
        return int(value), int(value)
    if len(value) != 2:
        raise ValueError(f"{name} must be an int or a (rows, cols) pair, got {value!r}")
    return int(value[0]), int(value[1])


def _taper(window: int, step: int) -> np.ndarray:
    # Triangular taper: shifted copies every `step` pixels sum to a constant.
    if step == window:
        return np.ones(window, dtype="float32")
    t = 1.0 - np.abs((np.arange(window) + 0.5) - window / 2) / (window / 2)
    return t.astype("float32")


def _weights(window: tuple[int, int], step: tuple[int, int]) -> np.ndarray:
    """2-D blending taper of a (rows, cols) block (outer product of 1-D tapers)."""
    return np.outer(_taper(window[0], step[0]), _taper(window[1], step[1]))


def goldstein(phase: np.ndarray, alpha: float = 1.0, window: int | tuple[int, int] = 64,
              step: int | tuple[int, int] = 32, smooth: int | tuple[int, int] = 3,
              strip: int = 16, threads: int = 2) -> np.ndarray:
    """Goldstein-filtered wrapped phase.

    Parameters
    ----------
    phase
        Wrapped phase (rad), 2-D, NaN where no data.
    alpha
        Filter exponent (1 in SNAP's default, 0 = no filtering).
    window
        FFT block size in pixels, ``(rows, cols)`` or an int for a square block (64).
    step
        Distance between blocks, ``(rows, cols)`` or an int (``window // 2``: 50 %
        overlap); each must divide the window's size along its axis.
    smooth
        Size in frequency bins of the uniform smoothing of the amplitude spectrum,
        ``(rows, cols)`` or an int (3).
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
    >>> goldstein(p, window=(32, 8), step=(16, 4)).shape
    (128, 128)
    """
    (wy, wx), (sy, sx) = _pair(window, "window"), _pair(step, "step")
    smooth_y, smooth_x = _pair(smooth, "smooth")
    if min(wy, wx, sy, sx) < 1 or wy % sy or wx % sx:
        raise ValueError(f"window ({window}) must be a positive multiple of step ({step}) "
                         "along rows and columns")
    phase = np.asarray(phase)
    nodata = ~np.isfinite(phase)
    z = np.exp(1j * np.where(nodata, 0.0, phase)).astype("complex64")
    z[nodata] = 0
    ny, nx = z.shape
    pad_y, pad_x = wy - sy, wx - sx
    # Pad so every pixel is covered by window/step blocks and the grid of blocks fits.
    py = pad_y + (-(ny + 2 * pad_y - wy) % sy)
    px = pad_x + (-(nx + 2 * pad_x - wx) % sx)
    zp = np.pad(z, ((pad_y, py), (pad_x, px)), mode="reflect")
    nby = (zp.shape[0] - wy) // sy + 1
    nbx = (zp.shape[1] - wx) // sx + 1
    w2 = _weights((wy, wx), (sy, sx))
    acc = np.zeros(zp.shape, dtype="complex64")
    view = np.lib.stride_tricks.sliding_window_view(zp, (wy, wx))[::sy, ::sx]
    my, mx = wy // sy, wx // sx
    acc_t = acc.reshape(acc.shape[0] // sy, sy, acc.shape[1] // sx, sx)

    def filtered(by0: int) -> np.ndarray:
        blocks = np.ascontiguousarray(view[by0: by0 + strip])  # (strip, nbx, wy, wx)
        if alpha != 0.0:
            spec = sfft.fft2(blocks, axes=(-2, -1), workers=1)
            amp = np.abs(spec)
            if smooth_y > 1 or smooth_x > 1:
                amp = ndimage.uniform_filter(amp, size=(1, 1, smooth_y, smooth_x), mode="wrap")
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
            # (wy/sy) x (wx/sx) tiles of sy x sx and add each tile family at once.
            n = blocks.shape[0]
            tiles = blocks.reshape(n, nbx, my, sy, mx, sx)
            for a in range(my):
                for b in range(mx):
                    acc_t[by0 + a: by0 + a + n, :, b: b + nbx, :] += \
                        tiles[:, :, a, :, b, :].transpose(0, 2, 1, 3)
    out = np.angle(acc[pad_y: pad_y + ny, pad_x: pad_x + nx]).astype("float32")
    out = np.where(out >= np.pi, out - np.float32(2 * np.pi), out).astype("float32")
    out[nodata] = np.nan
    return out
