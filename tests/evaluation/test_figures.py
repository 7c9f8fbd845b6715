"""Figure 3 panels and ROC/PR curves are written as real PNGs (Agg backend)."""

from __future__ import annotations

import matplotlib.image as mpimg
import numpy as np
from eval_patches import make_patches

from isslide_cube.evaluation import evaluate
from isslide_cube.figures import curves_figure, figure3, pick_examples


def test_pick_examples_spreads_over_move_sizes():
    mask = np.zeros((6, 8, 8), bool)
    for i, k in enumerate([0, 5, 1, 3, 2, 4]):
        mask[i, :k, :k] = True  # patch 0 has no move
    idx = pick_examples(mask, 3)
    assert list(idx) == [1, 3, 2]  # largest, middle, smallest non-empty move


def test_figure3_and_curves(tmp_path):
    ds = make_patches(n_train=0, n_eval=6, n_unused=0, size=24)
    mask = ds["mask"].values
    rng = np.random.default_rng(0)
    probs = {m: np.clip(mask * 0.7 + rng.random(mask.shape) * 0.4, 0, 1).astype(np.float32)
             for m in ("UNet", "ResUNet")}
    results = {m: evaluate(p, mask) for m, p in probs.items()}
    f3 = figure3(ds, probs, {m: r.threshold for m, r in results.items()}, tmp_path / "f3.png",
                 n_examples=3)
    img = mpimg.imread(f3)
    assert img.shape[0] > 200 and img.shape[1] > img.shape[0]  # 3 rows, 5 columns
    cv = curves_figure(results, tmp_path / "curves.png")
    assert mpimg.imread(cv).std() > 0
