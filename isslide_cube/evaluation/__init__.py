"""The paper's Table I metrics: F1, ROC AUC, Dice, IoU and Hausdorff distance.

Definitions (DESIGN.md section 1, our reading of the paper; every choice is a
parameter with this default):

* **threshold**: one global probability ``t``; a pixel is predicted moving when
  ``prob >= t``. By default ``t`` maximises the F1 pooled over every pixel.
  It is found from the numba histograms of :func:`isslide_cube.kernels.threshold_counts`
  (``n_bins`` uniform bins on [0, 1]) and then refined exactly: for every bin whose
  F1 *upper bound* could beat the best bin edge, the probabilities in that bin are
  gathered and every unique value is scanned. The returned F1 is therefore within
  ``f1_tol`` (1e-6) of the brute-force optimum over all unique probabilities, and the
  bound actually achieved is reported as ``f1_gap_bound``.
* **f1**, **precision**, **recall**, **auc**: pooled over all pixels. AUC is the
  Mann-Whitney statistic (ties count one half, as ``sklearn.metrics.roc_auc_score``);
  from the histograms the only error is pairs tied within one bin, bounded by
  ``0.5 * sum_k pos_k neg_k / (P N)``; bins are corrected exactly (sorted) until that
  bound is below ``auc_tol`` (1e-4), and it is reported as ``auc_error_bound``.
* **dice**, **iou**: per patch at the threshold, then averaged; a patch whose
  prediction and reference are both empty scores 1.
* **hd**: symmetric Hausdorff distance in pixels between the predicted and reference
  foreground of each patch (:func:`isslide_cube.kernels.hausdorff_batch`), averaged.
  A patch with exactly one empty side gets ``hd_empty`` (default the patch diagonal
  ``sqrt(H**2 + W**2)``; ``"nan"`` leaves it out of the mean; or a number); both
  empty gives 0. The counts of such patches are reported.

Per-zone and per-delay breakdowns use the same global threshold.

References
----------
Bralet et al., "ISSLIDE: a new InSAR dataset for slow sliding area detection with
machine learning", IEEE GRSL 2024 (Table I).

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> mask = np.zeros((4, 20, 20), np.uint8); mask[:, 5:12, 6:14] = 1
>>> prob = np.clip(mask * 0.6 + rng.random(mask.shape) * 0.5, 0, 1)
>>> res = evaluate(prob, mask)
>>> round(res.dice, 3) > 0.5, res.n_patches
(True, 4)
"""

from isslide_cube.evaluation._metrics import (
    AUC_TOL,
    BLOCK_PIXELS,
    DEFAULT_N_BINS,
    HIGHER_IS_BETTER,
    METRICS,
    EvaluationError,
    EvaluationResult,
    evaluate,
)
from isslide_cube.evaluation._runs import evaluate_run, predict_run, select_split, write_metrics
from isslide_cube.evaluation._tables import DISPLAY_NAMES, format_table, model_label, report

__all__ = ["AUC_TOL", "BLOCK_PIXELS", "DEFAULT_N_BINS", "DISPLAY_NAMES", "HIGHER_IS_BETTER",
           "METRICS", "EvaluationError", "EvaluationResult", "evaluate", "evaluate_run",
           "format_table", "model_label", "predict_run", "report", "select_split",
           "write_metrics"]
