"""evaluate() against sklearn.metrics, scipy's directed_hausdorff and hand-computed overlaps."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from scipy.spatial.distance import directed_hausdorff
from sklearn.metrics import f1_score, precision_recall_curve, roc_auc_score

from isslide_cube.evaluation import DEFAULT_N_BINS, EvaluationError, evaluate, format_table
from isslide_cube.schema import IsslideError


def _maps(n=12, h=40, w=36, seed=0, quantise=None):
    """Blobby references and noisy, smooth probabilities that roughly agree with them."""
    rng = np.random.default_rng(seed)
    field = gaussian_filter(rng.normal(size=(n, h, w)), (0, 3, 3))
    mask = (field > 0.12).astype(np.uint8)
    mask[0] = 0  # one patch without a move
    logit = 3.0 * (mask - 0.5) + gaussian_filter(rng.normal(size=(n, h, w)), (0, 1, 1)) * 4
    prob = 1.0 / (1.0 + np.exp(-logit))
    if quantise:
        prob = np.round(prob * quantise) / quantise  # many ties
    return prob.astype(np.float32), mask


def _brute_force_f1(prob, mask):
    precision, recall, _ = precision_recall_curve(mask.ravel(), prob.ravel())
    f1 = np.divide(2 * precision * recall, precision + recall,
                   out=np.zeros_like(precision), where=(precision + recall) > 0)
    return float(f1.max())


def _hd(a, b):
    pa, pb = np.argwhere(a), np.argwhere(b)
    return max(directed_hausdorff(pa, pb)[0], directed_hausdorff(pb, pa)[0])


@pytest.mark.parametrize("n_bins", [4, 64, DEFAULT_N_BINS, 1 << 16])
@pytest.mark.parametrize("quantise", [None, 50])
def test_threshold_f1_and_auc_match_sklearn(n_bins, quantise):
    prob, mask = _maps(quantise=quantise)
    res = evaluate(prob, mask, n_bins=n_bins)
    pred = prob >= res.threshold
    assert res.f1 == pytest.approx(f1_score(mask.ravel(), pred.ravel()), abs=1e-12)
    assert res.f1 >= _brute_force_f1(prob, mask) - 1e-6  # F1-optimal threshold
    assert res.f1_gap_bound <= 1e-6
    assert res.auc == pytest.approx(roc_auc_score(mask.ravel(), prob.ravel()), abs=1e-4)
    assert res.auc_error_bound <= 1e-4
    assert res.n_pixels == prob.size and res.n_patches == len(prob)


def test_dice_iou_hd_per_patch_by_hand():
    prob, mask = _maps(seed=3)
    res = evaluate(prob, mask)
    pred = prob >= res.threshold
    dice, iou, hd = [], [], []
    for p, m in zip(pred, mask.astype(bool), strict=True):
        inter, total, union = (p & m).sum(), p.sum() + m.sum(), (p | m).sum()
        dice.append(1.0 if union == 0 else 2 * inter / total)
        iou.append(1.0 if union == 0 else inter / union)
        if p.any() and m.any():
            hd.append(_hd(p, m))
        elif p.any() or m.any():
            hd.append(math.hypot(*p.shape))
        else:
            hd.append(0.0)
    assert res.dice == pytest.approx(np.mean(dice), abs=1e-12)
    assert res.iou == pytest.approx(np.mean(iou), abs=1e-12)
    assert res.hd == pytest.approx(np.mean(hd), abs=1e-9)
    np.testing.assert_allclose(res.per_patch["hd"], hd, atol=1e-9)


def test_given_threshold_is_used():
    prob, mask = _maps(seed=1)
    res = evaluate(prob, mask, threshold=0.8)
    assert res.threshold == 0.8
    assert res.f1 == pytest.approx(f1_score(mask.ravel(), (prob >= 0.8).ravel()), abs=1e-12)


def test_empty_conventions():
    h, w = 10, 14
    mask = np.zeros((4, h, w), np.uint8)
    prob = np.zeros((4, h, w), np.float32)
    mask[0, 2:5, 3:6] = 1                 # reference only: empty prediction
    prob[1, 6:8, 1:4] = 0.9               # prediction only: empty reference
    #                                       patch 2: both empty
    mask[3, 1:4, 1:4] = 1
    prob[3, 1:4, 2:5] = 0.9               # both present
    res = evaluate(prob, mask, threshold=0.5)
    diag = math.hypot(h, w)
    np.testing.assert_allclose(res.per_patch["dice"][:3], [0, 0, 1])
    np.testing.assert_allclose(res.per_patch["iou"][:3], [0, 0, 1])
    np.testing.assert_allclose(res.per_patch["hd"][:3], [diag, diag, 0])
    assert res.per_patch["hd"][3] == pytest.approx(_hd(prob[3] >= 0.5, mask[3]))
    assert (res.n_empty_prediction, res.n_empty_reference, res.n_both_empty) == (2, 2, 1)
    nan = evaluate(prob, mask, threshold=0.5, hd_empty="nan")
    assert nan.hd == pytest.approx(np.mean([0.0, res.per_patch["hd"][3]]))
    fixed = evaluate(prob, mask, threshold=0.5, hd_empty=100.0)
    assert fixed.per_patch["hd"][0] == 100.0


def test_no_moving_pixel_at_all_gives_undefined_f1_auc():
    prob = np.full((2, 5, 5), 0.2, np.float32)
    res = evaluate(prob, np.zeros((2, 5, 5), bool))
    assert math.isnan(res.f1) and math.isnan(res.auc)
    assert res.dice == 1.0 and res.hd == 0.0  # nothing predicted at 0.5 either


@pytest.mark.slow  # imports torch
def test_torch_xarray_dask_inputs_agree_and_breakdowns():
    torch = pytest.importorskip("torch")
    xr = pytest.importorskip("xarray")
    prob, mask = _maps(n=12)
    ref = evaluate(prob, mask)
    assert evaluate(torch.from_numpy(prob), torch.from_numpy(mask)).to_dict() == ref.to_dict()
    zone = np.array(["vanoise", "queyras", "ecrins"] * 4)
    delay = np.array([6, 12, 18, 6] * 3)
    coords = {"zone": ("sample", zone), "delay": ("sample", delay)}
    pda = xr.DataArray(prob, dims=("sample", "y", "x"), coords=coords).chunk({"sample": 5})
    mda = xr.DataArray(mask, dims=("sample", "y", "x"), coords=coords)
    res = evaluate(pda, mda, block_pixels=3 * 40 * 36)
    assert {k: v for k, v in res.to_dict().items() if k != "breakdown"} == \
        {k: v for k, v in ref.to_dict().items() if k != "breakdown"}
    assert set(res.breakdown) == {"zone", "delay"}
    assert set(res.breakdown["delay"]) == {"6", "12", "18"}
    sel = zone == "queyras"
    sub = evaluate(prob[sel], mask[sel], threshold=res.threshold)
    q = res.breakdown["zone"]["queyras"]
    assert q.threshold == res.threshold
    for key in ("f1", "dice", "iou", "hd"):
        assert getattr(q, key) == pytest.approx(getattr(sub, key))
    assert q.auc == pytest.approx(roc_auc_score(mask[sel].ravel(), prob[sel].ravel()), abs=1e-4)
    # the same breakdown from plain arrays
    arr = evaluate(prob, mask, zone=zone, delay=delay)
    assert arr.breakdown["zone"]["queyras"].f1 == pytest.approx(q.f1)


def test_result_to_dict_json_and_repr():
    prob, mask = _maps(n=4)
    res = evaluate(prob, mask, zone=["a", "b", "a", "b"])
    text = json.dumps(res.to_dict(curves=True))
    assert '"breakdown"' in text and '"curves"' in text
    r = repr(res)
    assert r.startswith("EvaluationResult(F1 ") and "4 patches" in r and "by zone (2)" in r


@pytest.mark.parametrize(
    ("prob", "mask", "match"),
    [
        (np.full((2, 4, 4), np.nan), np.zeros((2, 4, 4)), "NaN"),
        (np.full((2, 4, 4), 1.5), np.zeros((2, 4, 4)), "outside"),
        (np.full((2, 4, 4), -0.1), np.zeros((2, 4, 4)), "outside"),
        (np.zeros((2, 4, 4)), np.zeros((2, 4, 5)), "shape"),
        (np.zeros((2, 2, 4, 4)), np.zeros((2, 2, 4, 4)), "expected"),
        (np.zeros((2, 4, 4)), np.full((2, 4, 4), 255, np.uint8), "has_interferogram"),
        (np.zeros((2, 4, 4)), np.full((2, 4, 4), 2), "0/1"),
    ],
)
def test_bad_inputs_get_clear_errors(prob, mask, match):
    with pytest.raises(EvaluationError, match=match) as info:
        evaluate(prob, mask)
    assert isinstance(info.value, ValueError) and isinstance(info.value, IsslideError)


def test_bad_parameters():
    prob, mask = _maps(n=2)
    for kw in ({"threshold": 1.5}, {"hd_empty": "zero"}, {"n_bins": 1}, {"zone": ["a"]}):
        with pytest.raises(EvaluationError):
            evaluate(prob, mask, **kw)


def test_table_marks_best_and_second_best():
    rows = {
        "A": {"f1": 0.69, "auc": 0.98, "dice": 0.645, "iou": 0.503, "hd": 21.695},
        "B": {"f1": 0.677, "auc": 0.976, "dice": 0.628, "iou": 0.486, "hd": 22.951},
        "C": {"f1": 0.651, "auc": 0.972, "dice": 0.606, "iou": 0.466, "hd": 28.026},
    }
    text = format_table(rows)
    lines = text.splitlines()
    assert lines[0].split("|")[1].strip() == "model"
    a = next(line for line in lines if line.startswith("| A"))
    b = next(line for line in lines if line.startswith("| B"))
    c = next(line for line in lines if line.startswith("| C"))
    assert "**0.690**" in a and "**21.695**" in a          # best: bold
    assert "_0.677_" in b and "_22.951_" in b              # second: underscores
    assert "*" not in c and "_" not in c


def test_model_labels_follow_table_i():
    from isslide_cube.evaluation import model_label

    assert model_label({"model": "fcn_resnet50", "weights": None}) == "FCN-S"
    assert model_label({"model": "deeplabv3_resnet50", "weights": "/w.pth"}) == "DeepLabV3-P"
    assert model_label({"model": "sepunet"}) == "SepUNet"
    assert model_label({"model": "resunet", "temporal": "start"}) == "ResUNet [start]"
