"""evaluate_run and run_paper end to end: real training runs on a tiny patches store."""

from __future__ import annotations

import json

import matplotlib.image as mpimg
import numpy as np
import pytest

from isslide_cube import cli
from isslide_cube.evaluation import EvaluationError, evaluate, evaluate_run
from isslide_cube.patches import open_patches
from isslide_cube.protocol import configurations, run_paper
from isslide_cube.schema import TrainingError


@pytest.fixture(scope="module")
def two_runs(patches_store, tmp_path_factory):
    from isslide_cube.ml.training import train

    root = tmp_path_factory.mktemp("runs")
    for name in ("resunet", "unet"):
        train(patches_store, root / name, model=name, preset="quick", epochs=1, device="cpu",
              max_train_samples=32)
    return root / "resunet", root / "unet"


@pytest.mark.slow
def test_evaluate_run_writes_metrics_table_and_figures(two_runs, patches_store):
    res_dir, unet_dir = two_runs
    text = evaluate_run(res_dir, patches_store, compare=[unet_dir])
    assert "| model | F1 | AUC | Dice | IoU | HD |" in text
    assert "| ResUNet |" in text and "| UNet |" in text
    assert "**" in text  # best marked
    doc = json.loads((res_dir / "metrics.json").read_text())
    assert doc["model"] == "ResUNet" and doc["split"] == "eval"
    assert 0 <= doc["f1"] <= 1 and "queyras" in doc["breakdown"]["zone"]
    assert (unet_dir / "metrics.json").exists()
    for png in ("figure3_eval.png", "curves_eval.png"):
        assert mpimg.imread(res_dir / "figures" / png).std() > 0
    # the numbers are evaluate() on the run's own predictions
    from isslide_cube.evaluation import predict_run

    ds = open_patches(patches_store)
    sel = ds.isel(sample=np.flatnonzero(ds.split.values == "eval"))
    prob, _ = predict_run(res_dir, sel, device="cpu")
    assert evaluate(prob, sel["mask"].values).f1 == pytest.approx(doc["f1"])


@pytest.mark.slow
def test_cli_evaluate(two_runs, patches_store, capsys):
    assert cli.main(["evaluate", str(two_runs[1]), str(patches_store), "--no-figures"]) == 0
    out = capsys.readouterr().out
    assert "| UNet |" in out and "threshold" in out


@pytest.mark.slow  # needs the trained runs
def test_evaluate_run_bad_split(two_runs, patches_store):
    with pytest.raises(EvaluationError, match="split 'test' holds no patch"):
        evaluate_run(two_runs[0], patches_store, split="test", figures=False)


def test_configurations_skip_pretrained_without_weights(tmp_path):
    labels = [c.label for c, _ in configurations()]
    assert labels == ["FCN-S", "DeepLabV3-S", "UNet", "ResUNet", "SepUNet"]
    (tmp_path / "fcn_resnet50.pth").write_bytes(b"")
    labels = [c.label for c, _ in configurations(tmp_path)]
    assert "FCN-P" in labels and "DeepLabV3-P" not in labels
    with pytest.raises(TrainingError, match="unknown configuration"):
        configurations(only=("VGG",))
    with pytest.raises(TrainingError, match="not a folder"):
        configurations(tmp_path / "missing")


@pytest.mark.slow
def test_run_paper_quick_side_by_side(patches_store, tmp_path):
    # two configurations trained at once, interleaved in one process (the GPU path)
    parallel, only = 2, ("UNet", "SepUNet")
    out = tmp_path / "paper"
    text = run_paper(patches_store, out, quick=True, device="cpu", only=only,
                     epochs=1, parallel=parallel, progress=False)
    assert all(f"| {label} |" in text for label in only)
    table = json.loads((out / "table1.json").read_text())
    assert set(table) == set(only)
    assert (out / "figure3.png").exists() and (out / "curves.png").exists()
    assert (out / "sepunet" / "DONE").exists() and (out / "sepunet" / "metrics.json").exists()
    # a finished configuration is not retrained when the protocol is rerun
    stamp = (out / "sepunet" / "best.pt").stat().st_mtime_ns
    run_paper(patches_store, out, quick=True, device="cpu", only=only, epochs=1,
              parallel=parallel, progress=False)
    assert (out / "sepunet" / "best.pt").stat().st_mtime_ns == stamp
