"""Multi-temporal segmentation networks: input [N, T, C, H, W], logits [N, 1, H, W].

* ``early_fusion_resunet``: the T*C channels of a stack into one ResUNet;
* ``convgru_unet``: a shared ResUNet encoder per time, a ConvGRU over time per scale;
* ``temporal_attention_unet``: the same encoder, attention pooling over time.

A missing member of a stack is an all-zero input and is skipped by the pooling.
They are registered in :data:`isslide_cube.ml.models.MODELS`.

Examples
--------
>>> import torch
>>> net = TEMPORAL_MODELS["convgru_unet"](in_channels=3, n_times=3, width=8, depth=2)
>>> net(torch.zeros(2, 3, 3, 32, 32)).shape
torch.Size([2, 1, 32, 32])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from isslide_cube.ml.blocks import BLOCKS, EarlyFusion, UNet, decode


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
        return self.head(decode(skips, self.up, self.dec))


def early_fusion_resunet(in_channels: int = 3, n_times: int = 3, **kw: Any) -> nn.Module:
    """The T*C channels of a stack into the ResUNet of ``ml.models`` (early fusion)."""
    return EarlyFusion(UNet(in_channels * n_times, block="residual", **kw), n_times)


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
