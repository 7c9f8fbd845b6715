"""TemporalPatchDataset alignment, temporal models' shapes, training and resuming."""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parents[1]))
from temporal_fixtures import make_cube, make_patches, write_patches  # noqa: E402

from isslide_cube import schema  # noqa: E402
from isslide_cube.ml.models import build_model  # noqa: E402
from isslide_cube.ml.temporal import TemporalPatchDataset  # noqa: E402
from isslide_cube.ml.temporal_models import TEMPORAL_MODELS  # noqa: E402
from isslide_cube.ml.transforms import PhaseOffset, to_network_input  # noqa: E402

SMALL = {"width": 8, "depth": 2}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    cube = make_cube()
    p = make_patches(cube, locations=((10, 12), (36, 32), (12, 42)), drop={(0, 3, 1)})
    return write_patches(p, tmp_path_factory.mktemp("tp") / "patches.zarr"), p


@pytest.mark.parametrize("spec,t", [("start", 3), ("end", 3), ("consecutive:3", 3)])
def test_dataset_shapes_and_target_first(store, spec, t):
    path, p = store
    ds = TemporalPatchDataset(path, split="train", spec=spec)
    assert ds.n_times == t and ds.in_channels == 3
    assert len(ds) == int((p.split.values == "train").sum())
    for pos in (0, len(ds) // 2, len(ds) - 1):
        item = ds[pos]
        assert item["image"].shape == (t, 3, 16, 16)
        assert item["mask"].shape == (1, 16, 16) and item["valid_times"].shape == (t,)
        idx = int(ds.indices[pos])
        # time 0 is the target itself, its mask is the target's
        np.testing.assert_allclose(item["image"][0].numpy(),
                                   to_network_input(p.interferogram.values[idx]), atol=1e-6)
        np.testing.assert_array_equal(item["mask"][0].numpy(), p.mask.values[idx])
        for k, m in enumerate(ds.members[pos]):
            if m < 0:
                assert item["valid_times"][k] == 0 and not item["image"][k].any()
            else:
                assert item["valid_times"][k] == 1
                assert int(p.location.values[m]) == int(p.location.values[idx])
                np.testing.assert_allclose(item["image"][k].numpy(),
                                           to_network_input(p.interferogram.values[m]), atol=1e-6)


def test_end_members_share_end_date(store):
    path, p = store
    ds = TemporalPatchDataset(path, split=None, spec="end")
    end = pd.DatetimeIndex(p.end_date.values)
    for pos in range(len(ds)):
        ms = ds.members[pos][ds.members[pos] >= 0]
        assert (end[ms] == end[ds.indices[pos]]).all()
    # the dropped patch leaves a flagged gap in some stacks
    assert (ds.members < 0).any()


def test_transform_draws_per_time_and_epoch(store):
    path, _ = store
    ds = TemporalPatchDataset(path, split="train", spec="start", transform=PhaseOffset())
    a, b = ds[0]["image"], ds[0]["image"]
    torch.testing.assert_close(a, b)  # same (seed, epoch, sample): same draw
    ds.set_epoch(1)
    assert not torch.equal(ds[0]["image"], a)


@pytest.mark.parametrize("name", sorted(TEMPORAL_MODELS))
def test_models_shapes_and_missing_times(name):
    torch.manual_seed(0)
    net = build_model(name, in_channels=3, n_times=3, **SMALL).eval()
    x = torch.randn(2, 3, 3, 20, 22)
    assert net(x).shape == (2, 1, 20, 22)
    assert net(x.flatten(1, 2)).shape == (2, 1, 20, 22)  # fused channels also accepted


@pytest.mark.parametrize("name", ["convgru_unet", "temporal_attention_unet"])
def test_missing_member_is_skipped(name):
    torch.manual_seed(0)
    net = TEMPORAL_MODELS[name](in_channels=3, n_times=3, **SMALL).eval()
    x = torch.randn(1, 3, 3, 16, 16)
    x_missing_last = x.clone()
    x_missing_last[:, 2] = 0
    two = TEMPORAL_MODELS[name](in_channels=3, n_times=2, **SMALL).eval()
    two.load_state_dict(net.state_dict())
    # a missing (all-zero) member changes nothing: same output as the stack without it
    torch.testing.assert_close(net(x_missing_last), two(x[:, :2]))


@pytest.mark.parametrize("name", ["early_fusion_resunet", "convgru_unet", "temporal_attention_unet"])
def test_loss_decreases(store, name):
    path, _ = store
    ds = TemporalPatchDataset(path, split="train", spec="start")
    loader = torch.utils.data.DataLoader(ds, batch_size=8, shuffle=True,
                                         generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    net = build_model(name, in_channels=3, n_times=ds.n_times, **SMALL)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    batch = next(iter(loader))
    losses = []
    for _ in range(15):
        opt.zero_grad()
        loss = loss_fn(net(batch["image"]), batch["mask"])
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses


@pytest.mark.slow
def test_train_and_resume_with_the_trainer(store, tmp_path):
    from isslide_cube.ml.training import load_run, train

    path, _ = store
    run = tmp_path / "run"
    common = dict(model="convgru_unet", preset="quick", batch_size=8, lr=1e-3, seed=0,
                  temporal="start", model_kwargs=SMALL, device="cpu")
    first = train(path, run, epochs=1, **common)
    assert first.epochs == 1
    second = train(path, run, epochs=2, resume=True, **common)
    hist = pd.read_csv(run / "history.csv")
    assert list(hist.epoch) == [1, 2] and second.epochs == 2
    model, config = load_run(run)
    assert config["temporal"] == "start" and config["n_times"] == 3
    from isslide_cube.ml.inference import predict_patches
    from isslide_cube.patches import open_patches

    patches = open_patches(path)
    prob = predict_patches(model, patches, temporal="start")
    assert prob.shape == (patches.sizes[schema.SAMPLE], 16, 16)
    assert np.isfinite(prob).all() and (prob >= 0).all() and (prob <= 1).all()

    # one split's samples, with stack members from the whole store (evaluate_run's path)
    from isslide_cube.evaluation import predict_run

    is_eval = np.asarray(patches[schema.SPLIT].values, dtype=object).astype(str) == "eval"
    on_eval = predict_patches(model, patches, temporal="start", split="eval")
    np.testing.assert_allclose(on_eval, prob[is_eval], atol=1e-6)
    via_run, _ = predict_run(run, patches, device="cpu", split="eval")
    np.testing.assert_allclose(via_run, on_eval, atol=1e-6)
    # members in another split: relabel every other eval sample; a pre-selected split
    # would lose those members, the whole store keeps them
    labels = np.where(is_eval, "eval", "train").astype(object)
    labels[np.flatnonzero(is_eval)[1::2]] = "unused"
    mixed = patches.assign_coords({schema.SPLIT: (schema.SAMPLE, labels)})
    keep = labels == "eval"
    whole = predict_patches(model, mixed, temporal="start", split="eval")
    np.testing.assert_allclose(whole, prob[keep], atol=1e-6)
    cut = predict_patches(model, mixed.isel({schema.SAMPLE: np.flatnonzero(keep)}),
                          temporal="start")
    assert np.abs(cut - whole).max() > 1e-4
