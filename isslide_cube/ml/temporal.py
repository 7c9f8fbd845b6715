"""Multi-temporal learning: a stacked-patches dataset and two kinds of temporal model.

:class:`TemporalPatchDataset` yields, for each patch of a split, the patches of
its temporal stack at the same location (``isslide_cube.temporal``: same start
date, same end date, or K consecutive of the same delay) as
``{"image": [T, C, H, W], "mask": [1, H, W], "valid_times": [T]}``. The target
interferogram (whose mask is learnt) is always time 0; the other members follow
in stack order. Missing members are all-zero inputs with ``valid_times`` 0.

:data:`TEMPORAL_MODELS` (merged into ``isslide_cube.ml.models`` by its
``registry()``), each ``factory(in_channels=3, n_times=T, **kw)`` taking
[N, T, C, H, W] and returning logits [N, 1, H, W]:

``early_fusion_resunet``
    The T*C channels stacked into the ResUNet of ``isslide_cube.ml.models``.
``convgru_unet``
    A shared U-Net encoder applied to every time; at each scale a ConvGRU runs
    over the other members (skipping missing ones) and its state is fused with
    the target's features before the U-Net decoder.
``temporal_attention_unet``
    The same, with per-pixel softmax attention pooling over time instead.

Example
-------
>>> import torch
>>> net = TEMPORAL_MODELS["convgru_unet"](in_channels=3, n_times=3, width=8, depth=2)
>>> net(torch.zeros(2, 3, 3, 32, 32)).shape
torch.Size([2, 1, 32, 32])
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import xarray as xr
from torch import nn

from isslide_cube import schema
from isslide_cube.ml import datasets
from isslide_cube.ml.models import BLOCKS, MODELS, EarlyFusion
from isslide_cube.ml.transforms import Transform, to_network_input
from isslide_cube.temporal import parse_spec, patch_member_index, target_position

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------- dataset
class TemporalPatchDataset(torch.utils.data.Dataset):
    """Patches of one split, each with its temporal stack at the same location.

    Parameters
    ----------
    patches
        Path of a patches store, or an opened patches dataset.
    split
        ``"train"``, ``"eval"``, ... or None for every sample. Only the targets
        are selected by split; members come from any split (their masks are
        never used).
    spec
        ``"start"``, ``"end"`` or ``"consecutive:K"``.
    transform
        ``transform(sample, rng)`` on the raw sample ``{"interferogram":
        (T, 2, H, W), "mask": (H, W)}`` (``PhaseOffset`` draws one offset per time).
    validity
        A fourth channel flagging valid pixels.
    seed
        Seed of the augmentation draws (with the epoch and the sample index).
    in_memory
        Load every sample once (True), stream chunks (False), or ``"auto"``.

    Attributes
    ----------
    in_channels : int
        Channels per time (3, or 4 with ``validity``).
    n_times : int
        Length T of the stacks.
    members : numpy.ndarray
        (n, T) store positions of each target's members (target first), -1 missing.

    Example
    -------
    >>> ds = TemporalPatchDataset("patches.zarr", "train", spec="start")  # doctest: +SKIP
    >>> ds[0]["image"].shape                                              # doctest: +SKIP
    torch.Size([3, 3, 100, 100])
    """

    def __init__(self, patches: str | Path | xr.Dataset, split: str | None = "train",
                 spec: str = "start", transform: Transform | None = None, *,
                 validity: bool = False, seed: int = 0, in_memory: bool | str = "auto",
                 max_samples: int | None = None):
        self.spec = parse_spec(spec)
        self.transform, self.validity, self.seed, self.epoch = transform, validity, seed, 0
        self.in_channels = 4 if validity else 3
        # every sample of the store is reachable (members cross splits): split=None base
        self._base = datasets.PatchDataset(patches, split=None, transform=None,
                                           validity=validity, in_memory=in_memory)
        ds = self._base._ds
        targets = datasets.select_samples(ds, split, source=self._base.path or "patches")
        if max_samples is not None and len(targets) > max_samples:
            rng = np.random.default_rng(seed)
            targets = np.sort(rng.choice(targets, size=max_samples, replace=False))
        index, valid = patch_member_index(ds, self.spec)
        delays = np.unique(np.asarray(ds[schema.DELAY].values).astype(np.int64))
        # the target's own position in its stack, then move it to time 0
        own = target_position(self.spec, delays)
        delay_pos = np.searchsorted(delays, np.asarray(ds[schema.DELAY].values).astype(np.int64))
        pos = own[delay_pos][targets]
        members = np.where(valid, index, -1)[targets]
        t = members.shape[1]
        order = np.array([[p] + [q for q in range(t) if q != p] for p in range(t)])
        self.members = np.take_along_axis(members, order[pos], axis=1)
        self.indices = targets
        self.n_times = t
        self.patch_shape = self._base.patch_shape
        self.metadata = datasets._sample_metadata(ds, targets)
        self.in_memory = self._base.in_memory

    def __len__(self) -> int:
        return len(self.indices)

    def raw(self, pos: int) -> dict[str, Any]:
        """Sample ``pos`` before any transform: ``interferogram`` (T, 2, H, W), ``mask`` (H, W)."""
        h, w = self.patch_shape
        ifg = np.full((self.n_times, 2, h, w), np.nan, np.float32)
        mask = None
        for t, m in enumerate(self.members[pos]):
            if m < 0:
                continue
            one = self._base.raw(int(m))
            ifg[t] = one["interferogram"]
            if t == 0:
                mask = one["mask"]
        return {"interferogram": ifg, "mask": mask, "valid_times": self.members[pos] >= 0}

    def __getitem__(self, pos: int) -> dict[str, Any]:
        if not 0 <= pos < len(self):
            raise IndexError(f"sample {pos} out of range for a dataset of {len(self)}")
        sample = self.raw(pos)
        if self.transform is not None:
            rng = np.random.default_rng((self.seed, self.epoch, int(self.indices[pos])))
            sample = self.transform(sample, rng)
        image = to_network_input(sample["interferogram"], validity=self.validity)
        mask = (np.asarray(sample["mask"]) == 1).astype(np.float32)[None]
        out = {"image": torch.from_numpy(np.ascontiguousarray(image)),
               "mask": torch.from_numpy(np.ascontiguousarray(mask)),
               "valid_times": torch.from_numpy(sample["valid_times"].astype(np.float32))}
        out.update({k: v[pos] for k, v in self.metadata.items()})
        return out

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draws of ``epoch``."""
        self.epoch = int(epoch)

    def sampler(self, seed: int = 0, shuffle: bool = True) -> datasets.EpochSampler:
        """A seeded epoch sampler (members span chunks, so no chunk-aware order)."""
        return datasets.EpochSampler(len(self), seed=seed, shuffle=shuffle)


# ----------------------------------------------------------------------- models
def _valid_times(x: torch.Tensor) -> torch.Tensor:
    """[N, T, C, H, W] -> [N, T] bool: a missing member is an all-zero input."""
    return x.flatten(2).abs().amax(-1) > 0


class ConvGRUCell(nn.Module):
    """Convolutional GRU cell (Ballas et al., 2016): gates by 3x3 convolutions."""

    def __init__(self, channels: int):
        super().__init__()
        self.gates = nn.Conv2d(2 * channels, 2 * channels, 3, padding=1)
        self.cand = nn.Conv2d(2 * channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        z, r = torch.sigmoid(self.gates(torch.cat([x, h], 1))).chunk(2, 1)
        n = torch.tanh(self.cand(torch.cat([x, r * h], 1)))
        return (1 - z) * h + z * n


class GRUPool(nn.Module):
    """Run a ConvGRU over the members (times 1..T-1), skipping missing ones."""

    def __init__(self, channels: int):
        super().__init__()
        self.cell = ConvGRUCell(channels)

    def forward(self, f: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        h = torch.zeros_like(f[:, 0])
        for t in range(1, f.shape[1]):
            keep = valid[:, t].view(-1, 1, 1, 1).to(f.dtype)
            h = keep * self.cell(f[:, t], h) + (1 - keep) * h
        return h


class AttentionPool(nn.Module):
    """Per-pixel softmax attention over the members, scored against the target."""

    def __init__(self, channels: int):
        super().__init__()
        self.score = nn.Conv2d(2 * channels, 1, 1)

    def forward(self, f: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        n, t = f.shape[:2]
        if t < 2:
            return torch.zeros_like(f[:, 0])
        target = f[:, :1].expand(-1, t - 1, -1, -1, -1)
        others = f[:, 1:]
        s = self.score(torch.cat([target, others], 2).flatten(0, 1)).view(n, t - 1, 1, *f.shape[-2:])
        mask = valid[:, 1:].view(n, t - 1, 1, 1, 1)
        s = s.masked_fill(~mask, float("-inf"))
        w = torch.softmax(s, 1).nan_to_num(0.0)  # no valid member: zero context
        return (w * others).sum(1)


class TemporalUNet(nn.Module):
    """Shared U-Net encoder per time, temporal pooling per scale, U-Net decoder.

    At each scale the skip is ``fuse([target features, pooled member features])``
    (a 1x1 conv), so the network segments the target with its members as context.
    """

    def __init__(self, in_channels: int = 3, n_times: int = 3, pool: str = "gru",
                 block: str = "residual", width: int = 16, depth: int = 4):
        super().__init__()
        make = BLOCKS[block]
        chans = [width * 2**i for i in range(depth + 1)]
        self.n_times = n_times
        self.stem = make(in_channels, chans[0])
        self.down = nn.ModuleList(make(chans[i], chans[i + 1]) for i in range(depth))
        pool_cls = {"gru": GRUPool, "attention": AttentionPool}[pool]
        self.pools = nn.ModuleList(pool_cls(c) for c in chans)
        self.fuse = nn.ModuleList(nn.Conv2d(2 * c, c, 1) for c in chans)
        self.up = nn.ModuleList(nn.ConvTranspose2d(chans[i + 1], chans[i], 2, stride=2)
                                for i in reversed(range(depth)))
        self.dec = nn.ModuleList(make(2 * chans[i], chans[i]) for i in reversed(range(depth)))
        self.head = nn.Conv2d(chans[0], 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:  # [N, T*C, H, W]
            x = x.unflatten(1, (self.n_times, -1))
        n, t = x.shape[:2]
        valid = _valid_times(x)
        valid[:, 0] = True
        feats = [self.stem(x.flatten(0, 1))]
        for down in self.down:
            feats.append(down(F.max_pool2d(feats[-1], 2)))
        skips = []
        for f, pool, fuse in zip(feats, self.pools, self.fuse, strict=True):
            f = f.unflatten(0, (n, t))
            skips.append(fuse(torch.cat([f[:, 0], pool(f, valid)], 1)))
        y = skips.pop()
        for up, dec in zip(self.up, self.dec, strict=True):
            skip = skips.pop()
            y = up(y)
            dy, dx = skip.shape[-2] - y.shape[-2], skip.shape[-1] - y.shape[-1]
            if dy or dx:
                y = F.pad(y, (dx // 2, dx - dx // 2, dy // 2, dy - dy // 2))
            y = dec(torch.cat([skip, y], 1))
        return self.head(y)


def early_fusion_resunet(in_channels: int = 3, n_times: int = 3, **kw: Any) -> nn.Module:
    """The T*C channels of a stack into the ResUNet of ``ml.models`` (early fusion)."""
    net = MODELS["resunet"](in_channels=in_channels, n_times=n_times, **kw)
    return net if isinstance(net, EarlyFusion) else EarlyFusion(net, n_times)


def _temporal(pool: str) -> Callable[..., nn.Module]:
    def factory(in_channels: int = 3, n_times: int = 3, width: int = 16, depth: int = 4,
                block: str = "residual") -> nn.Module:
        return TemporalUNet(in_channels, n_times, pool=pool, block=block, width=width, depth=depth)

    factory.__doc__ = f"Shared ResUNet encoder per time, {pool} pooling over time per scale."
    return factory


#: name -> ``factory(in_channels=3, n_times=T, **kw)``: [N, T, C, H, W] -> logits [N, 1, H, W].
TEMPORAL_MODELS: dict[str, Callable[..., nn.Module]] = {
    "early_fusion_resunet": early_fusion_resunet,
    "convgru_unet": _temporal("gru"),
    "temporal_attention_unet": _temporal("attention"),
}
