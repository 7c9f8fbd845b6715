"""Training end to end on a real patches store: learning, exact resume, run folders, errors."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from checkpoint_states import same_state

from isslide_cube import cli
from isslide_cube.ml.inference import predict_patches
from isslide_cube.ml.training import HISTORY_FIELDS, load_run, resolve_config, train
from isslide_cube.schema import TrainingError

SMALL = {"model": "resunet", "model_kwargs": {"width": 4, "depth": 3}, "device": "cpu"}


@pytest.mark.slow
def test_a_few_epochs_lower_the_training_loss(patches_store, tmp_path):
    result = train(patches_store, tmp_path / "run", epochs=6, lr=3e-3, seed=0,
                   model_kwargs={"width": 8, "depth": 3}, device="cpu")
    losses = [row["train_loss"] for row in result.history]
    assert losses[-1] < 0.8 * losses[0]
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert tuple(history.columns) == HISTORY_FIELDS
    assert list(history.epoch) == [1, 2, 3, 4, 5, 6]
    assert np.isfinite(history[["val_loss", "val_f1", "seconds"]].to_numpy()).all()
    assert 1 <= result.best_epoch <= 6
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["model"] == "resunet" and config["in_channels"] == 3 and config["n_times"] == 1
    for name in ("last.pt", "best.pt"):
        ckpt = torch.load(tmp_path / "run" / name, weights_only=True)
        assert {"model", "optimizer", "epoch", "rng", "config"} <= set(ckpt)
        assert {"python", "numpy", "torch", "sampler"} <= set(ckpt["rng"])


@pytest.mark.slow
def test_resume_is_bit_identical_to_an_uninterrupted_run(patches_store, tmp_path):
    kw = dict(SMALL, augment={"phase_offset": True, "flips": True, "jitter": 2}, seed=3)
    train(patches_store, tmp_path / "full", epochs=3, **kw)
    train(patches_store, tmp_path / "parts", epochs=2, **kw)
    torch.manual_seed(123)  # the caller's RNG does not leak into the run
    train(patches_store, tmp_path / "parts", epochs=3, resume=True, **kw)
    full = torch.load(tmp_path / "full" / "last.pt", weights_only=True)
    parts = torch.load(tmp_path / "parts" / "last.pt", weights_only=True)
    assert parts["epoch"] == full["epoch"] == 3
    assert same_state(full["model"], parts["model"])
    assert same_state(full["optimizer"], parts["optimizer"])
    h_full = pd.read_csv(tmp_path / "full" / "history.csv")
    h_parts = pd.read_csv(tmp_path / "parts" / "history.csv")
    pd.testing.assert_frame_equal(h_full.drop(columns="seconds"), h_parts.drop(columns="seconds"))


@pytest.mark.slow
def test_compiled_step_follows_the_eager_loss_curve(patches_store, tmp_path):
    """``compile=True`` (``torch.compile(mode="reduce-overhead")``: CUDA graphs on a GPU,
    inductor's fused C++ kernels here) trains the same model as eager: the loss curve
    agrees up to float reordering. The first compile here takes about a minute."""
    kw = dict(SMALL, epochs=2, lr=3e-3, seed=0)
    eager = train(patches_store, tmp_path / "eager", **kw)
    compiled = train(patches_store, tmp_path / "compiled", compile=True, **kw)
    for a, b in zip(eager.history, compiled.history, strict=True):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=2e-2)
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=2e-2)
    assert eager.history[1]["train_loss"] != eager.history[0]["train_loss"]  # it did train
    ckpt = torch.load(tmp_path / "compiled" / "last.pt", weights_only=True)
    assert not any(k.startswith("_orig_mod") for k in ckpt["model"])  # loads into a plain model


def test_training_leaves_the_callers_rng_alone(patches_store, tmp_path):
    torch.manual_seed(5)
    np.random.seed(5)
    expected_torch, expected_np = torch.rand(3), np.random.rand(3)
    torch.manual_seed(5)
    np.random.seed(5)
    train(patches_store, tmp_path / "run", epochs=1, max_train_samples=8, **SMALL)
    assert torch.equal(torch.rand(3), expected_torch)
    np.testing.assert_array_equal(np.random.rand(3), expected_np)


def test_run_dir_guards(patches_store, tmp_path):
    run = tmp_path / "run"
    train(patches_store, run, epochs=1, max_train_samples=8, **SMALL)
    with pytest.raises(TrainingError, match="this run already.*--resume.*--overwrite"):
        train(patches_store, run, epochs=1, max_train_samples=8, **SMALL)
    with pytest.raises(TrainingError, match="different run.*lr"):
        train(patches_store, run, epochs=1, max_train_samples=8, lr=0.5, **SMALL)
    with pytest.raises(TrainingError, match="cannot resume"):
        train(patches_store, run, epochs=2, max_train_samples=8, lr=0.5, resume=True, **SMALL)
    result = train(patches_store, run, epochs=1, max_train_samples=8, lr=0.5, overwrite=True, **SMALL)
    assert result.epochs == 1
    assert json.loads((run / "config.json").read_text())["lr"] == 0.5
    assert len(pd.read_csv(run / "history.csv")) == 1


def test_bad_inputs(patches_store, patches_store_nosplit, tmp_path):
    with pytest.raises(TrainingError, match="unknown model 'vgg'.*resunet"):
        train(patches_store, tmp_path / "a", model="vgg", device="cpu")
    with pytest.raises(TrainingError, match="--split paper"):
        train(patches_store_nosplit, tmp_path / "b", **SMALL)
    ds = xr.open_zarr(patches_store, chunks=None, consolidated=False).load()
    ds = ds.assign_coords(split=("sample", np.full(ds.sizes["sample"], "eval")))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.to_zarr(tmp_path / "evalonly.zarr", consolidated=False)
    with pytest.raises(TrainingError, match="no 'train' samples"):
        train(tmp_path / "evalonly.zarr", tmp_path / "c", **SMALL)
    torch.save(torch.nn.Linear(3, 3).state_dict(), tmp_path / "linear.pth")
    with pytest.raises(TrainingError, match="does not match model 'resunet'"):
        train(patches_store, tmp_path / "d", weights=tmp_path / "linear.pth", **SMALL)
    with pytest.raises(TrainingError, match="unknown preset"):
        train(patches_store, tmp_path / "e", preset="fast", **SMALL)


def test_presets():
    assert resolve_config("resunet", "paper")["epochs"] == 300
    assert resolve_config("unet", "paper")["lr"] == 1e-5
    deeplab = resolve_config("deeplabv3_resnet50", "paper")
    assert (deeplab["lr"], deeplab["epochs"], deeplab["batch_size"]) == (1e-7, 600, 8)
    assert resolve_config("resunet", "quick", epochs=2, lr=0.1)["epochs"] == 2


@pytest.mark.slow
def test_cli_train_then_load_and_predict(patches_store, tmp_path, capsys):
    run = tmp_path / "cli_run"
    code = cli.main(["train", str(patches_store), str(run), "--model", "sepunet", "--epochs", "1",
                     "--device", "cpu", "--seed", "1"])
    assert code == 0
    assert "sepunet" in capsys.readouterr().out
    assert cli.main(["train", str(patches_store), str(run), "--model", "sepunet"]) == 2
    assert "--resume" in capsys.readouterr().err
    model, config = load_run(run)
    assert config["model"] == "sepunet" and not model.training
    ds = xr.open_zarr(patches_store, chunks=None, consolidated=False)
    subset = ds.isel(sample=np.flatnonzero(ds.split.values == "eval")[::-1][:5])
    prob = predict_patches(model, subset, batch_size=2)
    assert prob.shape == (5, 32, 32) and prob.dtype == np.float32
    assert prob.min() >= 0 and prob.max() <= 1
    from isslide_cube.ml.transforms import to_network_input

    with torch.no_grad():  # order kept: the last sample predicted alone gives the same map
        x = torch.from_numpy(to_network_input(subset.interferogram.values[4:5]))
        np.testing.assert_allclose(prob[4], torch.sigmoid(model(x))[0, 0].numpy(), atol=1e-5)
    with pytest.raises(TrainingError, match="not found"):
        load_run(tmp_path / "nothing")


@pytest.mark.slow
def test_device_resident_batches_learn_and_resume_exactly(patches_store, tmp_path):
    kw = dict(SMALL, device_data=True, lr=3e-3, seed=2)
    full = train(patches_store, tmp_path / "full", epochs=4, **kw)
    assert full.history[-1]["train_loss"] < full.history[0]["train_loss"]
    assert json.loads((tmp_path / "full" / "config.json").read_text())["device_data"] is True
    train(patches_store, tmp_path / "parts", epochs=2, **kw)
    train(patches_store, tmp_path / "parts", epochs=4, resume=True, **kw)
    a = torch.load(tmp_path / "full" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "parts" / "last.pt", weights_only=True)
    assert same_state(a["model"], b["model"])
    # the loader path is another run: its augmentation draws differ
    with pytest.raises(TrainingError, match="different run.*device_data"):
        train(patches_store, tmp_path / "full", epochs=4, resume=True, **dict(kw, device_data=False))
    with pytest.raises(TrainingError, match="phase offset"):
        train(patches_store, tmp_path / "flip", augment={"flips": True}, **kw)


def test_device_batches_match_the_dataset_encoding(patches_store):
    from isslide_cube.ml.datasets import DeviceBatches, PatchDataset

    ds = PatchDataset(patches_store, split="eval", validity=True)
    batches = list(DeviceBatches(ds, "cpu", shuffle=False).epoch(0, batch_size=5))
    assert [len(b["image"]) for b in batches] == [5, 5, 5, 1]
    images = torch.cat([b["image"] for b in batches])
    masks = torch.cat([b["mask"] for b in batches])
    for i in range(len(ds)):
        torch.testing.assert_close(images[i], ds[i]["image"], atol=1e-6, rtol=0)
        assert torch.equal(masks[i], ds[i]["mask"])
    shuffled = DeviceBatches(ds, "cpu", phase_offset=True, seed=1)
    one = torch.cat([b["image"] for b in shuffled.epoch(0, 8)])
    assert torch.equal(one, torch.cat([b["image"] for b in shuffled.epoch(0, 8)]))
    assert not torch.equal(one, torch.cat([b["image"] for b in shuffled.epoch(1, 8)]))


def test_prior_bias_starts_at_the_logit_of_the_moving_fraction(patches_store):
    from isslide_cube.ml.datasets import PatchDataset
    from isslide_cube.ml.models import build_model
    from isslide_cube.ml.training import _set_prior_bias

    ds = PatchDataset(patches_store, split="train")
    frac = float((ds._memory[1] == 1).mean())  # the masks themselves, not the coordinate
    net = build_model("resunet", width=4, depth=2)
    _set_prior_bias(net, ds)
    assert net.head.bias.item() == pytest.approx(np.log(frac / (1 - frac)), rel=1e-5)
    assert resolve_config("resunet", "quick")["prior_bias"] is True
    assert resolve_config("resunet", "paper")["prior_bias"] is False
