"""Building blocks shared by the single- and multi-temporal networks.

Plain, residual and depthwise-separable convolution blocks, the U-Net that
assembles them, and :class:`EarlyFusion`, which flattens a time axis into channels.

Examples
--------
>>> import torch
>>> from isslide_cube.ml.blocks import UNet
>>> UNet(3, block="separable", width=8, depth=2)(torch.zeros(1, 3, 32, 32)).shape
torch.Size([1, 1, 32, 32])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


# ----------------------------------------------------------------------- blocks
class PlainBlock(nn.Sequential):
    """Two 3x3 conv-BN-ReLU."""

    def __init__(self, cin: int, cout: int):
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        )


class ResidualBlock(nn.Module):
    """conv-BN-ReLU-conv-BN plus a shortcut (1x1 conv-BN when the width changes), then ReLU."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
        )
        self.shortcut = (nn.Identity() if cin == cout else
                         nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


class SeparableConv(nn.Sequential):
    """Depthwise 3x3 with ``multiplier`` kernels per channel, then a pointwise 1x1."""

    def __init__(self, cin: int, cout: int, multiplier: int = 2):
        super().__init__(
            nn.Conv2d(cin, cin * multiplier, 3, padding=1, groups=cin, bias=False),
            nn.Conv2d(cin * multiplier, cout, 1, bias=False),
        )


class SeparableBlock(nn.Sequential):
    """Two separable conv-BN-ReLU (the SepUNet block)."""

    def __init__(self, cin: int, cout: int):
        super().__init__(
            SeparableConv(cin, cout), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            SeparableConv(cout, cout), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        )


BLOCKS: dict[str, type[nn.Module]] = {
    "plain": PlainBlock, "residual": ResidualBlock, "separable": SeparableBlock,
}


# ------------------------------------------------------------------------ U-Net
class UNet(nn.Module):
    """U-Net with a choice of block; logits [N, 1, H, W] for any H, W.

    Parameters
    ----------
    in_channels
        Input channels (3: coherence, cos, sin).
    block
        ``"plain"``, ``"residual"`` or ``"separable"``.
    width
        Channels of the first level; level ``i`` has ``width * 2**i``.
    depth
        Number of 2x down-samplings (4 in the original U-Net).
    """

    def __init__(self, in_channels: int = 3, block: str = "plain", width: int = 16, depth: int = 4):
        super().__init__()
        make = BLOCKS[block]
        chans = [width * 2**i for i in range(depth + 1)]
        self.stem = make(in_channels, chans[0])
        self.down = nn.ModuleList(make(chans[i], chans[i + 1]) for i in range(depth))
        self.up = nn.ModuleList(nn.ConvTranspose2d(chans[i + 1], chans[i], 2, stride=2)
                                for i in reversed(range(depth)))
        self.dec = nn.ModuleList(make(2 * chans[i], chans[i]) for i in reversed(range(depth)))
        self.head = nn.Conv2d(chans[0], 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.stem(x)]
        for down in self.down:
            skips.append(down(F.max_pool2d(skips[-1], 2)))
        return self.head(decode(skips, self.up, self.dec))


def decode(skips: list[torch.Tensor], ups: nn.ModuleList, decs: nn.ModuleList) -> torch.Tensor:
    """U-Net decoder: upsample the deepest map and merge each skip, deepest first (pops ``skips``)."""
    y = skips.pop()
    for up, dec in zip(ups, decs, strict=True):
        skip = skips.pop()
        y = up(y)
        # odd sizes (100 -> 50 -> 25 -> 12): pad the upsampled map to the skip's size
        dy, dx = skip.shape[-2] - y.shape[-2], skip.shape[-1] - y.shape[-1]
        if dy or dx:
            y = F.pad(y, (dx // 2, dx - dx // 2, dy // 2, dy - dy // 2))
        y = dec(torch.cat([skip, y], dim=1))
    return y


# ------------------------------------------------------------------ torchvision


class EarlyFusion(nn.Module):
    """Stack [N, T, C, H, W] into [N, T*C, H, W] before a single-time network."""

    def __init__(self, net: nn.Module, n_times: int):
        super().__init__()
        self.net, self.n_times = net, n_times

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1, 2) if x.dim() == 5 else x)
