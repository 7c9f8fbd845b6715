"""The paper's five segmentation baselines behind one registry.

Every factory has the signature ``factory(in_channels=3, n_times=1, **kw)`` and
returns an ``nn.Module`` mapping [N, C, H, W] (or [N, T, C, H, W] when
``n_times > 1``: the times are stacked as channels, early fusion) to logits
[N, 1, H, W] at the input's resolution, for any H, W (odd sizes included).

* ``fcn_resnet50``, ``deeplabv3_resnet50``: torchvision, ``num_classes=1``, built
  from scratch (``weights=None, weights_backbone=None``: nothing is downloaded);
  pre-trained PASCAL VOC weights only from a local file, see :func:`load_pretrained`.
* ``unet``, ``resunet``, ``sepunet``: one U-Net (four 2x down-samplings, skip
  connections) with plain (two conv-BN-ReLU), residual (the same plus an identity
  or 1x1 shortcut) or depthwise-separable blocks. The paper's SepUNet uses two
  kernels per channel in the depthwise convolution (``groups=in_ch``, ``2*in_ch``
  outputs), followed by a pointwise 1x1 convolution. ``width`` (16) sets the
  first level's channels, doubling at each level (~2 M parameters for ResUNet).

Examples
--------
>>> import torch
>>> net = build_model("resunet", width=8)
>>> net(torch.zeros(2, 3, 100, 100)).shape
torch.Size([2, 1, 100, 100])
>>> print(describe())  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from isslide_cube.ml.blocks import EarlyFusion, UNet
from isslide_cube.ml.temporal_models import TEMPORAL_MODELS
from isslide_cube.schema import TrainingError

log = logging.getLogger(__name__)


class TorchvisionSegmenter(nn.Module):
    """A torchvision segmentation model whose forward returns ``out`` [N, 1, H, W]."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)["out"]


def _torchvision(builder_name: str) -> Callable[..., nn.Module]:
    def factory(in_channels: int = 3, n_times: int = 1, **kw: Any) -> nn.Module:
        from torchvision.models import segmentation

        builder = getattr(segmentation, builder_name)
        net = builder(weights=None, weights_backbone=None, num_classes=1, aux_loss=False, **kw)
        if in_channels != 3:
            old = net.backbone.conv1
            net.backbone.conv1 = nn.Conv2d(in_channels, old.out_channels, old.kernel_size,
                                           old.stride, old.padding, bias=False)
        return _with_times(TorchvisionSegmenter(net), in_channels, n_times)

    factory.__name__ = builder_name
    factory.__doc__ = f"torchvision ``{builder_name}`` (ResNet-50), one output channel, from scratch."
    return factory


def _unet(block: str) -> Callable[..., nn.Module]:
    def factory(in_channels: int = 3, n_times: int = 1, width: int = 16, depth: int = 4) -> nn.Module:
        return _with_times(UNet(in_channels * n_times, block=block, width=width, depth=depth),
                           in_channels, n_times)

    factory.__doc__ = f"U-Net with {block} blocks (width 16, depth 4 by default)."
    return factory


def _with_times(net: nn.Module, in_channels: int, n_times: int) -> nn.Module:
    if n_times > 1:
        if isinstance(net, TorchvisionSegmenter):  # widen the stem to T*C channels
            old = net.net.backbone.conv1
            net.net.backbone.conv1 = nn.Conv2d(in_channels * n_times, old.out_channels,
                                               old.kernel_size, old.stride, old.padding, bias=False)
        net = EarlyFusion(net, n_times)
    return net


#: name -> ``factory(in_channels=3, n_times=1, **kw)``; logits [N, 1, H, W].
MODELS: dict[str, Callable[..., nn.Module]] = {
    "fcn_resnet50": _torchvision("fcn_resnet50"),
    "deeplabv3_resnet50": _torchvision("deeplabv3_resnet50"),
    "unet": _unet("plain"),
    "resunet": _unet("residual"),
    "sepunet": _unet("separable"),
    **TEMPORAL_MODELS,  # input [N, T, C, H, W]
}
TORCHVISION_MODELS = ("fcn_resnet50", "deeplabv3_resnet50")


def build_model(name: str, in_channels: int = 3, n_times: int = 1,
                weights: str | Path | None = None, **kw: Any) -> nn.Module:
    """Instantiate a registered model, optionally with local pre-trained weights.

    Parameters
    ----------
    name
        A key of :data:`MODELS` (or of the temporal models).
    in_channels, n_times
        Input channels per time and number of times.
    weights
        Local file of pre-trained weights (see :func:`load_pretrained`); never downloaded.
    **kw
        Passed to the factory (e.g. ``width`` for the U-Nets).

    Raises
    ------
    isslide_cube.schema.TrainingError
        For an unknown name (the message lists the valid ones) or weights that do
        not match the model.
    """
    if name not in MODELS:
        raise TrainingError(f"unknown model {name!r}; choose one of {', '.join(sorted(MODELS))}")
    try:
        model = MODELS[name](in_channels=in_channels, n_times=n_times, **kw)
    except TypeError as err:
        raise TrainingError(f"model {name!r} does not accept these options {kw}: {err}") from err
    model.in_channels, model.n_times = in_channels, n_times  # read back by inference
    if weights is not None:
        load_pretrained(model, weights, name=name)
    return model


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def describe(in_channels: int = 3, **kw: Any) -> str:
    """A table of every model and its parameter count (defaults of each factory)."""
    rows = [f"{'model':<22} {'parameters':>12}"]
    for name in MODELS:
        rows.append(f"{name:<22} {count_parameters(build_model(name, in_channels, **kw)):>12,}")
    return "\n".join(rows)


def load_pretrained(model: nn.Module, path: str | Path, *, name: str = "model") -> dict[str, list[str]]:
    """Load a local torchvision state_dict into ``model``, dropping mismatched heads.

    Meant for PASCAL-VOC weights of ``fcn_resnet50``/``deeplabv3_resnet50``
    (21 classes, e.g. torchvision's ``COCO_WITH_VOC_LABELS_V1`` file): every tensor
    whose name and shape match is loaded; the 21-class classifier layer, the
    auxiliary head and (for other input channels) the stem are left as
    initialised. A file that is not such a state_dict is refused.

    Returns
    -------
    dict
        ``{"loaded": [...], "skipped": [...]}`` parameter names.

    Raises
    ------
    isslide_cube.schema.TrainingError
        When the file is missing, unreadable, or matches less than 90% of the
        model's backbone tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise TrainingError(f"weights file {path} does not exist (weights are never downloaded: "
                            "give the path of a local torchvision .pth file)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise TrainingError(f"weights file {path} is not a PyTorch state_dict ({err})") from err
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]  # an isslide_cube checkpoint
    if not isinstance(state, dict):
        raise TrainingError(f"weights file {path} holds a {type(state).__name__}, not a state_dict")
    target = model
    while isinstance(target, EarlyFusion | TorchvisionSegmenter):
        target = target.net
    own = target.state_dict()
    state = {k.removeprefix("module."): v for k, v in state.items() if torch.is_tensor(v)}
    matched = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    core = [k for k in own if not k.startswith(("classifier.4", "aux_classifier"))
            and "num_batches_tracked" not in k]
    hits = sum(k in matched for k in core)
    if not core or hits < 0.9 * len(core):
        raise TrainingError(
            f"weights file {path} does not match model {name!r}: {hits} of {len(core)} tensors "
            f"have a matching name and shape (expected a torchvision state_dict of {name}, "
            "e.g. the PASCAL VOC file of torchvision.models.segmentation)")
    target.load_state_dict(matched, strict=False)
    skipped = sorted(set(own) - set(matched))
    log.info("loaded %d tensors from %s; left initialised: %s", len(matched), path, skipped)
    return {"loaded": sorted(matched), "skipped": skipped}
