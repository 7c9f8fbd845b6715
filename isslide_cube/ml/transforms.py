"""Network input encoding and the augmentations of the single-interferogram study.

A raw patch holds two bands, coherence and wrapped phase, with NaN where there is
no data. The networks see three channels instead (the paper's choice): coherence,
cos(phase) and sin(phase), so the phase wrap at +-pi is no discontinuity for the
convolution. A pixel without data becomes an all-zero input (coherence 0,
cos = sin = 0, a point no real pixel maps to, since cos^2 + sin^2 = 1 elsewhere);
an optional fourth channel flags the valid pixels explicitly.

Augmentations work on the *raw* sample (before the encoding) so the paper's
constant phase offset is applied where it is defined, on the phase, and wrapped.
Every augmentation draws from a ``numpy.random.Generator`` handed to it: the
dataset derives that generator from ``(seed, epoch, sample index)``, so what a
sample looks like depends neither on the worker that loads it nor on the order.
:func:`apply_batch` runs a transform over a whole batch (one generator per
sample) with exactly the values of the per-sample calls: the paper's phase offset
becomes one vectorised add and wrap over the batch, the geometric augmentations
run sample by sample.

Examples
--------
>>> import numpy as np
>>> ifg = np.array([[[0.5, np.nan]], [[0.0, 1.0]]], dtype="float32")  # (2, 1, 2)
>>> to_network_input(ifg)[:, 0, :].round(3).tolist()
[[0.5, 0.0], [1.0, 0.0], [0.0, 0.0]]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch

#: ``transform(sample, rng) -> sample``; a sample holds ``"interferogram"`` (..., 2, H, W)
#: float32 and ``"mask"`` (..., H, W) uint8 numpy arrays.
Transform = Callable[[dict[str, Any], np.random.Generator], dict[str, Any]]


def to_network_input(ifg: np.ndarray, *, validity: bool = False) -> np.ndarray:
    """Encode coherence/phase as the network's channels (coherence, cos, sin[, valid]).

    Parameters
    ----------
    ifg
        Array (..., 2, H, W): band 0 coherence in [0, 1], band 1 wrapped phase in
        radians, NaN where there is no data (in either band).
    validity
        Append a fourth channel, 1 where both bands hold data, else 0.

    Returns
    -------
    numpy.ndarray
        float32 (..., 3, H, W) (or 4 with ``validity``); all channels are 0 at a
        pixel without data.

    Examples
    --------
    >>> x = to_network_input(np.zeros((2, 4, 4), "float32"), validity=True)
    >>> x.shape, float(x[1].min()), float(x[3].min())
    ((4, 4, 4), 1.0, 1.0)
    """
    ifg = np.asarray(ifg, dtype=np.float32)
    if ifg.ndim < 3 or ifg.shape[-3] != 2:
        raise ValueError(f"expected (..., 2, H, W) coherence/phase, got shape {ifg.shape}")
    coh, phase = ifg[..., 0, :, :], ifg[..., 1, :, :]
    out = np.empty(ifg.shape[:-3] + (4 if validity else 3,) + ifg.shape[-2:], np.float32)
    out[..., 0, :, :] = coh
    np.cos(phase, out=out[..., 1, :, :])
    np.sin(phase, out=out[..., 2, :, :])
    valid = np.isfinite(coh) & np.isfinite(phase)
    if validity:
        out[..., 3, :, :] = valid
    # most patches are complete: mask only the images (of a batch) that have a gap
    h, w = ifg.shape[-2:]
    images, flags = out.reshape(-1, out.shape[-3], h, w), valid.reshape(-1, h, w)
    for i in np.flatnonzero(~flags.reshape(len(flags), -1).all(axis=1)):
        images[i, :3, ~flags[i]] = 0
    return out


def wrap_phase(phase: np.ndarray) -> np.ndarray:
    """Wrap radians to [-pi, pi) (NaN stays NaN)."""
    return (phase + np.pi) % (2 * np.pi) - np.pi


def _wrap_inplace(phase: np.ndarray) -> None:
    """Wrap to [-pi, pi) in place, exact for inputs in [-3 pi, 3 pi) (a wrapped phase
    plus an offset in [-pi, pi)); cheaper than the modulo of :func:`wrap_phase`."""
    two_pi, pi = np.float32(2 * np.pi), np.float32(np.pi)
    # arithmetic on the comparison (no boolean gather/scatter); NaN compares False
    phase -= two_pi * (phase >= pi)
    phase += two_pi * (phase < -pi)


@dataclass(frozen=True)
class PhaseOffset:
    """Add one random constant to the phase of each interferogram, then wrap.

    The paper's augmentation: the absolute phase of an interferogram is arbitrary
    (only spatial differences mean motion), so a constant offset uniform in
    [-pi, pi) makes a new, equally valid sample. With a time axis (..., T, 2, H, W)
    each interferogram gets its own offset.
    """

    p: float = 1.0

    def __call__(self, sample: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        offset = self._draw(rng, sample["interferogram"].shape[:-3])
        if offset is None:
            return sample
        ifg = sample["interferogram"].copy()
        phase = ifg[..., 1, :, :]
        phase += offset
        _wrap_inplace(phase)
        return {**sample, "interferogram": ifg}

    def _draw(self, rng: np.random.Generator, lead: tuple[int, ...]) -> np.ndarray | None:
        """This sample's offsets (lead + (1, 1)) float32, or None when it is left alone."""
        if self.p < 1.0 and rng.random() >= self.p:
            return None
        return rng.uniform(-np.pi, np.pi, size=lead + (1, 1)).astype(np.float32)

    def batch(self, batch: dict[str, Any], rngs: Sequence[np.random.Generator]) -> dict[str, Any]:
        """The per-sample call over a batch (B, ..., 2, H, W), in place: same draws, same values."""
        ifg = batch["interferogram"]
        offsets = [self._draw(rng, ifg.shape[1:-3]) for rng in rngs]
        rows = [i for i, o in enumerate(offsets) if o is not None]
        if not rows:
            return batch
        offset = np.stack([offsets[i] for i in rows])
        if len(rows) == len(ifg):  # the paper's case (p = 1): one add and wrap over the batch
            phase = ifg[..., 1, :, :]
            phase += offset
            _wrap_inplace(phase)
        else:
            sub = ifg[rows]
            sub[..., 1, :, :] += offset
            _wrap_inplace(sub[..., 1, :, :])
            ifg[rows] = sub
        return batch


@dataclass(frozen=True)
class FlipRotate:
    """Random horizontal/vertical flips and quarter turns, applied to image and mask alike.

    The SAR geometry is not rotation invariant (layover faces the sensor), so these
    are off in the paper preset and optional elsewhere.
    """

    flips: bool = True
    rot90: bool = True

    def __call__(self, sample: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        ifg, mask = sample["interferogram"], sample["mask"]
        if self.flips:
            if rng.random() < 0.5:
                ifg, mask = ifg[..., ::-1], mask[..., ::-1]
            if rng.random() < 0.5:
                ifg, mask = ifg[..., ::-1, :], mask[..., ::-1, :]
        if self.rot90:
            k = int(rng.integers(4))
            ifg, mask = np.rot90(ifg, k, axes=(-2, -1)), np.rot90(mask, k, axes=(-2, -1))
        return {**sample, "interferogram": np.ascontiguousarray(ifg),
                "mask": np.ascontiguousarray(mask)}


@dataclass(frozen=True)
class CropJitter:
    """Shift the patch by up to ``max_shift`` pixels in y and x, keeping its size.

    Patches are cut centred on a move; jitter stops a network from learning that
    moves sit in the middle. Pixels shifted in from outside the patch are no-data
    (NaN, so an all-zero network input) with a stable (0) mask.
    """

    max_shift: int = 8

    def __call__(self, sample: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        if self.max_shift <= 0:
            return sample
        dy, dx = (int(v) for v in rng.integers(-self.max_shift, self.max_shift + 1, size=2))
        return {**sample, "interferogram": _shift(sample["interferogram"], dy, dx, np.nan),
                "mask": _shift(sample["mask"], dy, dx, 0)}


def _shift(a: np.ndarray, dy: int, dx: int, fill: float) -> np.ndarray:
    out = np.full_like(a, fill)
    h, w = a.shape[-2:]
    src_y, dst_y = slice(max(0, -dy), h - max(0, dy)), slice(max(0, dy), h - max(0, -dy))
    src_x, dst_x = slice(max(0, -dx), w - max(0, dx)), slice(max(0, dx), w - max(0, -dx))
    out[..., dst_y, dst_x] = a[..., src_y, src_x]
    return out


@dataclass(frozen=True)
class Compose:
    """Apply transforms in order, all drawing from the same generator."""

    transforms: Sequence[Transform]

    def __call__(self, sample: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        for t in self.transforms:
            sample = t(sample, rng)
        return sample

    def batch(self, batch: dict[str, Any], rngs: Sequence[np.random.Generator]) -> dict[str, Any]:
        # step by step over the whole batch: each sample's generator sees the draws
        # in the same order as in __call__
        for t in self.transforms:
            batch = apply_batch(t, batch, rngs)
        return batch


def apply_batch(transform: Transform, batch: dict[str, Any],
                rngs: Sequence[np.random.Generator]) -> dict[str, Any]:
    """Apply a per-sample transform to a batch, sample ``i`` drawing from ``rngs[i]``.

    The result equals stacking ``transform(sample_i, rngs[i])`` (bit for bit);
    transforms with a ``batch`` method (:class:`PhaseOffset`, :class:`Compose`)
    vectorise, the others run sample by sample. The arrays of ``batch`` may be
    modified in place: hand over arrays the caller owns.

    Parameters
    ----------
    transform
        A ``transform(sample, rng) -> sample``.
    batch
        Arrays with a leading batch axis (``interferogram`` (B, ..., 2, H, W),
        ``mask`` (B, H, W), ...); None values pass through.
    rngs
        One generator per sample.

    Returns
    -------
    dict
        The transformed batch.

    Examples
    --------
    >>> ifg = np.zeros((2, 2, 3, 3), np.float32)
    >>> rngs = [np.random.default_rng(i) for i in range(2)]
    >>> out = apply_batch(PhaseOffset(), {"interferogram": ifg.copy(), "mask": None}, rngs)
    >>> bool(np.array_equal(out["interferogram"][1],
    ...      PhaseOffset()({"interferogram": ifg[1]}, np.random.default_rng(1))["interferogram"]))
    True
    """
    if hasattr(transform, "batch"):
        return transform.batch(batch, rngs)
    keys = [k for k, v in batch.items() if v is not None]
    samples = [transform({k: (batch[k][i] if k in keys else None) for k in batch}, rng)
               for i, rng in enumerate(rngs)]
    return {k: (np.stack([s[k] for s in samples]) if k in keys else None) for k in batch}


def augmentation(phase_offset: bool = True, flips: bool = False, rot90: bool = False,
                 jitter: int = 0) -> Compose:
    """The training augmentation from simple switches (what ``config.json`` records).

    Examples
    --------
    >>> len(augmentation(phase_offset=True, flips=True, jitter=4).transforms)
    3
    """
    steps: list[Transform] = []
    if jitter:
        steps.append(CropJitter(jitter))
    if flips or rot90:
        steps.append(FlipRotate(flips=flips, rot90=rot90))
    if phase_offset:
        steps.append(PhaseOffset())
    return Compose(tuple(steps))


def to_network_input_torch(ifg: torch.Tensor, *, validity: bool = False) -> torch.Tensor:
    """:func:`to_network_input` on a tensor, on its device (for device-resident batches)."""
    import torch

    coh, phase = ifg[..., 0, :, :], ifg[..., 1, :, :]
    valid = torch.isfinite(coh) & torch.isfinite(phase)
    zero = torch.zeros((), dtype=ifg.dtype, device=ifg.device)
    channels = [torch.where(valid, coh, zero), torch.where(valid, torch.cos(phase), zero),
                torch.where(valid, torch.sin(phase), zero)]
    if validity:
        channels.append(valid.to(ifg.dtype))
    return torch.stack(channels, dim=-3)
