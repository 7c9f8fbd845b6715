"""The five baselines: shapes, gradients, parameter counts, local pre-trained weights."""

import pytest
import torch
from torch import nn

from isslide_cube.ml.blocks import SeparableConv
from isslide_cube.ml.models import (
    MODELS,
    build_model,
    count_parameters,
    describe,
    load_pretrained,
)
from isslide_cube.schema import TrainingError

# (low, high) parameter counts at the default width 16 (a 2 M-parameter ResUNet, as in the issue)
UNET_PARAMS = {"unet": (1.5e6, 2.5e6), "resunet": (1.5e6, 2.6e6), "sepunet": (2e5, 1e6)}


def _check_gradients(model, x):
    model.train()
    x = x.clone().requires_grad_(True)
    out = model(x)
    assert out.shape == (x.shape[0], 1) + x.shape[-2:]
    out.mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(bool(g.abs().sum() > 0) for g in grads) >= 0.9 * len(grads)
    assert x.grad.abs().sum() > 0


@pytest.mark.parametrize("name", sorted(UNET_PARAMS))
def test_unets_forward_backward_and_size(name):
    torch.manual_seed(0)
    model = build_model(name)
    _check_gradients(model, torch.randn(8, 3, 100, 100))
    low, high = UNET_PARAMS[name]
    assert low <= count_parameters(model) <= high


@pytest.mark.parametrize("size", [(32, 32), (37, 45)])
def test_unet_any_input_size(size):
    model = build_model("resunet", width=4, depth=3).eval()
    assert model(torch.zeros(1, 3, *size)).shape == (1, 1, *size)


def test_sepunet_has_two_kernels_per_channel():
    model = build_model("sepunet")
    seps = [m for m in model.modules() if isinstance(m, SeparableConv)]
    assert seps
    for sep in seps:
        depthwise, pointwise = sep
        assert depthwise.groups == depthwise.in_channels
        assert depthwise.out_channels == 2 * depthwise.in_channels
        assert depthwise.kernel_size == (3, 3) and pointwise.kernel_size == (1, 1)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["fcn_resnet50", "deeplabv3_resnet50"])
def test_torchvision_models(name):
    from torchvision.models import segmentation

    torch.manual_seed(0)
    model = build_model(name)
    reference = getattr(segmentation, name)(weights=None, weights_backbone=None, num_classes=1,
                                            aux_loss=False)
    assert count_parameters(model) == count_parameters(reference)
    assert 3e7 <= count_parameters(model) <= 4.5e7
    _check_gradients(model, torch.randn(2, 3, 64, 64))


@pytest.mark.slow
def test_fcn_forward_shape_on_paper_batch():
    model = build_model("fcn_resnet50").eval()
    with torch.no_grad():
        assert model(torch.zeros(8, 3, 100, 100)).shape == (8, 1, 100, 100)


@pytest.mark.slow
def test_pretrained_voc_weights_load_from_a_local_file(tmp_path):
    from torchvision.models import segmentation

    torch.manual_seed(1)
    voc = segmentation.fcn_resnet50(weights=None, weights_backbone=None, num_classes=21,
                                    aux_loss=True)
    path = tmp_path / "fcn_voc.pth"
    torch.save(voc.state_dict(), path)
    model = build_model("fcn_resnet50", weights=path)
    inner = model.net
    assert torch.equal(inner.backbone.conv1.weight, voc.backbone.conv1.weight)
    assert torch.equal(inner.classifier[0].weight, voc.classifier[0].weight)
    assert inner.classifier[4].weight.shape[0] == 1  # the 21-class layer was left out
    # a file for another model is refused with the reason
    with pytest.raises(TrainingError, match="does not match model 'deeplabv3_resnet50'"):
        build_model("deeplabv3_resnet50", weights=path)


def test_weights_that_do_not_match_are_refused(tmp_path):
    path = tmp_path / "unet.pth"
    torch.save(build_model("unet", width=4).state_dict(), path)
    with pytest.raises(TrainingError, match="does not match"):
        build_model("resunet", weights=path)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(TrainingError, match="not a PyTorch state_dict"):
        build_model("unet", weights=tmp_path / "junk.pth")
    with pytest.raises(TrainingError, match="never downloaded"):
        build_model("unet", weights=tmp_path / "missing.pth")


def test_same_architecture_weights_load_exactly(tmp_path):
    source = build_model("sepunet", width=4)
    path = tmp_path / "sep.pth"
    torch.save({"model": source.state_dict()}, path)  # an isslide_cube checkpoint
    target = build_model("sepunet", width=4)
    report = load_pretrained(target, path)
    assert not report["skipped"]
    for a, b in zip(source.state_dict().values(), target.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_unknown_model_lists_the_valid_ones():
    with pytest.raises(TrainingError) as err:
        build_model("transformer9000")
    for name in MODELS:
        assert name in str(err.value)


def test_early_fusion_and_extra_channels():
    model = build_model("unet", in_channels=4, n_times=3, width=4, depth=2)
    assert model(torch.zeros(2, 3, 4, 16, 16)).shape == (2, 1, 16, 16)
    assert model.in_channels == 4 and model.n_times == 3
    first = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    assert first.in_channels == 12


@pytest.mark.slow
def test_describe_lists_every_model():
    table = describe()
    for name in MODELS:
        assert name in table
