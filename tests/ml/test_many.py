"""Several runs at once (train_many): each bit-identical to the run alone, resumable, one data copy."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from checkpoint_states import same_state

from isslide_cube import cli
from isslide_cube.ml.many import RngSlot, _SharedData, run_specs, train_many
from isslide_cube.ml.training import load_run, make_config, train
from isslide_cube.schema import TrainingError

TINY = {"model_kwargs": {"width": 4, "depth": 2}, "device": "cpu", "epochs": 2}


def _assert_same_run(many_dir, solo_dir):
    for name in ("last.pt", "best.pt"):
        a = torch.load(many_dir / name, weights_only=True)
        b = torch.load(solo_dir / name, weights_only=True)
        assert a["epoch"] == b["epoch"]
        assert same_state(a["model"], b["model"]), f"{many_dir.name}/{name}: weights differ"
        assert same_state(a["optimizer"], b["optimizer"])
        assert same_state(a["rng"], b["rng"])  # so a resumed run continues exactly
    assert (many_dir / "config.json").read_text() == (solo_dir / "config.json").read_text()
    pd.testing.assert_frame_equal(pd.read_csv(many_dir / "history.csv").drop(columns="seconds"),
                                  pd.read_csv(solo_dir / "history.csv").drop(columns="seconds"))


@pytest.mark.slow
@pytest.mark.parametrize("setting", [
    # loader path, shared train side, augmentation drawn per (seed, epoch, sample)
    {"augment": {"phase_offset": True, "flips": True, "jitter": 2}},
    # device-resident batches (CPU here), each seed its own 24-sample subset
    {"device_data": True, "max_train_samples": 24},
], ids=["loader", "device-data-subsets"])
def test_each_run_is_bit_identical_to_training_it_alone(patches_store, tmp_path, setting):
    runs = [{"model": "resunet", "seed": 0}, {"model": "resunet", "seed": 1},
            {"model": "unet", "seed": 0, "lr": 3e-3}]
    finished = []
    results = train_many(patches_store, tmp_path / "many", runs, on_finish=finished.append,
                         **TINY, **setting)
    assert [r.run_dir.name for r in results] == ["resunet-s0", "resunet-s1", "unet-s0"]
    assert sorted(r.run_dir.name for r in finished) == sorted(r.run_dir.name for r in results)
    for run in runs:
        name = f"{run['model']}-s{run['seed']}"
        train(patches_store, tmp_path / "solo" / name, **run, **TINY, **setting)
        _assert_same_run(tmp_path / "many" / name, tmp_path / "solo" / name)
    # different seeds really are different runs
    a = torch.load(tmp_path / "many" / "resunet-s0" / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "many" / "resunet-s1" / "last.pt", weights_only=True)["model"]
    assert not same_state(a, b)


def test_runs_share_one_copy_of_the_data(patches_store):
    shared = _SharedData(patches_store, "auto", torch.device("cpu"))
    c0 = make_config(patches_store, model="resunet", seed=0, augment={"phase_offset": True},
                     max_train_samples=None)
    c1 = make_config(patches_store, model="unet", seed=1, augment={"flips": True},
                     max_train_samples=None)
    (t0, e0), (t1, e1) = shared.sides(c0), shared.sides(c1)
    assert np.shares_memory(t0._memory[0], t1._memory[0])
    assert np.shares_memory(e0._memory[0], e1._memory[0])
    assert (t0.seed, t1.seed) == (0, 1) and t0.transform is not t1.transform
    assert e0.transform is None and t0._ds is not None  # a view keeps its store handle
    d0, d1 = shared.device_batches(c0), shared.device_batches(c1)
    assert d0["train"].ifg.data_ptr() == d1["train"].ifg.data_ptr()
    assert d0["train"].phase_offset and not d1["train"].phase_offset
    assert not d0["eval"].phase_offset
    # a seeded subset smaller than the train side is the seed's own data
    sub = [make_config(patches_store, seed=s, max_train_samples=20) for s in (0, 1)]
    s0, s1 = (shared.sides(c)[0] for c in sub)
    assert len(s0) == len(s1) == 20 and not np.array_equal(s0.indices, s1.indices)


@pytest.mark.slow
def test_a_run_of_train_many_resumes_exactly(patches_store, tmp_path):
    kw = dict(TINY, models=["resunet", "sepunet"], seeds=[4])
    train_many(patches_store, tmp_path / "full", **dict(kw, epochs=3))
    train_many(patches_store, tmp_path / "parts", parallel=1, **kw)  # 2 epochs, one at a time
    torch.manual_seed(99)  # the caller's RNG does not leak into the runs
    # one run continued alone with train(), the other with train_many(resume=True)
    train(patches_store, tmp_path / "parts" / "sepunet-s4", model="sepunet", seed=4,
          resume=True, **dict(TINY, epochs=3))
    train_many(patches_store, tmp_path / "parts", runs=[{"model": "resunet", "seed": 4}],
               resume=True, **dict(TINY, epochs=3))
    for name in ("resunet-s4", "sepunet-s4"):
        _assert_same_run(tmp_path / "parts" / name, tmp_path / "full" / name)
    model, config = load_run(tmp_path / "full" / "resunet-s4")
    assert config["model"] == "resunet" and config["epochs"] == 3 and not model.training
    with pytest.raises(TrainingError, match="this run already.*--resume"):
        train_many(patches_store, tmp_path / "full", **dict(kw, epochs=3))


def test_bad_runs(patches_store, tmp_path):
    with pytest.raises(TrainingError, match=r"duplicate run.*resunet-s0.*'name'"):
        run_specs(models=["resunet", "resunet"], seeds=[0])
    with pytest.raises(TrainingError, match=r"duplicate run.*unet-s1"):
        run_specs([{"model": "unet", "seed": 1}, {"model": "unet", "seed": 1, "lr": 0.1}])
    with pytest.raises(TrainingError, match=r"unknown model\(s\) 'vgg'.*resunet.*sepunet"):
        train_many(patches_store, tmp_path / "a", models=["resunet", "vgg"], device="cpu")
    with pytest.raises(TrainingError, match=r"unknown run setting.*'colour'.*seed"):
        run_specs([{"model": "unet", "colour": "red"}])
    with pytest.raises(TrainingError, match="not both"):
        run_specs([{"model": "unet"}], models=["unet"])
    with pytest.raises(TrainingError, match="no runs"):
        run_specs([])
    with pytest.raises(TrainingError, match="parallel"):
        train_many(patches_store, tmp_path / "b", models=["unet"], parallel=0, **TINY)
    # a folder holding another run stops everything before any run trains
    train(patches_store, tmp_path / "c" / "unet-s0", model="unet", max_train_samples=8,
          **dict(TINY, epochs=1))
    with pytest.raises(TrainingError, match="different run.*lr"):
        train_many(patches_store, tmp_path / "c", models=["resunet", "unet"], lr=0.5,
                   max_train_samples=8, **dict(TINY, epochs=1))
    assert not (tmp_path / "c" / "resunet-s0" / "last.pt").exists()


def test_names_and_defaults():
    specs = run_specs(models="unet", seeds=[2, 3], lr=1e-4)
    assert [(s["name"], s["lr"]) for s in specs] == [("unet-s2", 1e-4), ("unet-s3", 1e-4)]
    specs = run_specs([{"model": "unet", "lr": 0.1, "name": "fast"}, {"seed": 5}], lr=1e-4)
    assert [(s["name"], s["lr"]) for s in specs] == [("fast", 0.1), ("resunet-s5", 1e-4)]


def test_rng_slots_keep_runs_apart():
    a, b = RngSlot(torch.device("cpu")), RngSlot(torch.device("cpu"))
    with a.active():
        torch.manual_seed(0)
    with b.active():
        torch.manual_seed(1)
    draws = []
    for _ in range(3):  # interleaved draws equal each generator's own sequence
        with a.active():
            draws.append(torch.rand(2))
        with b.active():
            torch.rand(5)
    expected = torch.rand(6, generator=torch.Generator().manual_seed(0))
    assert torch.equal(torch.cat(draws), expected)


@pytest.mark.slow
def test_cli_trains_every_model_with_every_seed(patches_store, tmp_path, capsys):
    run = tmp_path / "runs"
    code = cli.main(["train", str(patches_store), str(run), "--model", "unet", "sepunet",
                     "--seed", "0", "1", "--epochs", "1", "--device", "cpu"])
    assert code == 0
    out = capsys.readouterr().out
    names = ["unet-s0", "unet-s1", "sepunet-s0", "sepunet-s1"]
    assert all(str(run / n) in out for n in names)
    for n in names:
        config = json.loads((run / n / "config.json").read_text())
        model, seed = n.rsplit("-s", 1)
        assert (config["model"], config["seed"]) == (model, int(seed))
        assert len(pd.read_csv(run / n / "history.csv")) == 1
    assert cli.main(["train", str(patches_store), str(run), "--model", "unet", "sepunet",
                     "--seed", "0", "1", "--epochs", "1", "--device", "cpu"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert cli.main(["train", str(patches_store), str(run), "--model", "unet", "unet"]) == 2
    assert "duplicate" in capsys.readouterr().err
    # one model and one seed: today's single folder, no sub-folder (--amp: ignored on the CPU)
    assert cli.main(["train", str(patches_store), str(tmp_path / "one"), "--model", "unet",
                     "--epochs", "1", "--device", "cpu", "--seed", "3", "--amp"]) == 0
    assert json.loads((tmp_path / "one" / "config.json").read_text())["seed"] == 3
