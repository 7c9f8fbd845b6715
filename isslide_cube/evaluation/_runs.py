"""Scoring trained runs on a split of a patches store: predictions, metrics.json, figures."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from isslide_cube.evaluation._metrics import EvaluationError, EvaluationResult, evaluate
from isslide_cube.evaluation._tables import model_label, report
from isslide_cube.schema import MASK, SAMPLE, SPLIT

log = logging.getLogger(__name__)


# ------------------------------------------------------------- evaluate_run
def select_split(ds: Any, split: str) -> Any:
    """The samples of ``ds`` whose ``split`` coordinate equals ``split`` (clear error if none)."""
    if SPLIT not in ds.coords:
        raise EvaluationError("the patches store has no 'split' coordinate; make one with "
                              "`isslide-cube patches CUBE OUT --split paper` or "
                              "isslide_cube.patches.split()")
    # via object: numpy's StringDType (variable-length strings from Zarr v3) has no cast to "U"
    labels = np.asarray(ds[SPLIT].values, dtype=object).astype(str)
    idx = np.flatnonzero(labels == split)
    if idx.size == 0:
        raise EvaluationError(f"split {split!r} holds no patch (values present: "
                              f"{sorted(set(labels))}); pass --split with one of them")
    return ds.isel({SAMPLE: idx})


def _device(device: str) -> str:
    from isslide_cube.ml.training import resolve_device

    return str(resolve_device(device))


def predict_run(run_dir: str | Path, patches: Any, *, device: str = "auto",
                batch_size: int = 32, split: str | None = None,
                ) -> tuple[np.ndarray, dict[str, Any]]:
    """Probabilities (n, H, W) of ``RUN_DIR/best.pt`` on a patches dataset, and the run config.

    With ``split``, only that split's samples are predicted (store order), their
    temporal stacks drawn from the whole store; without it, every sample of ``patches``.
    """
    from isslide_cube.ml.inference import predict_patches
    from isslide_cube.ml.training import load_run

    device = _device(device)
    model, config = load_run(run_dir, checkpoint="best", device=device)
    temporal = config.get("temporal")
    prob = predict_patches(model, patches, batch_size=batch_size, device=device,
                           temporal=temporal, split=split,
                           validity=None if temporal else bool(config.get("validity")))
    return np.asarray(prob, dtype=np.float32), dict(config)


def write_metrics(run_dir: str | Path, result: EvaluationResult, *, split: str,
                  patches: Any, config: Mapping[str, Any]) -> Path:
    """Write ``RUN_DIR/metrics.json`` (``metrics_<split>.json`` for a split other than eval)."""
    path = Path(run_dir) / ("metrics.json" if split == "eval" else f"metrics_{split}.json")
    doc = {"model": model_label(config), "run_dir": str(run_dir), "checkpoint": "best.pt",
           "patches": str(patches), "split": split, "config": dict(config),
           **result.to_dict(curves=True)}
    path.write_text(json.dumps(doc, indent=1, default=str))
    return path


def evaluate_run(run_dir: str | Path, patches: str | Path | Any, split: str = "eval",
                 compare: Sequence[str | Path] = (), figures: bool = True, *,
                 device: str = "auto", batch_size: int = 32, n_examples: int = 4) -> str:
    """Score trained runs on a split: Table I row(s), ``metrics.json``, Figure 3 and curves.

    Predicts with each run's ``best.pt`` (``RUN_DIR`` first, then ``compare``), scores with
    :func:`evaluate` (own F1-optimal threshold per run), writes each run's
    ``metrics.json`` and, with ``figures``, ``RUN_DIR/figures/figure3_<split>.png``
    (phase, coherence, reference, prediction outline per model) and
    ``RUN_DIR/figures/curves_<split>.png`` (ROC and precision-recall).

    Parameters
    ----------
    run_dir
        Folder of a run written by :func:`isslide_cube.ml.training.train`.
    patches
        Patches store (path) or the dataset from :func:`isslide_cube.patches.open_patches`.
    split
        Which ``split`` value to score.
    compare
        Other run folders: one table row each, best and second best marked.
    figures
        Write the PNG figures.

    Returns
    -------
    str
        The Markdown table, the threshold of each run and the paths written.

    Example
    -------
    >>> print(evaluate_run("runs/resunet", "patches.zarr"))  # doctest: +SKIP
    """
    from isslide_cube.patches import open_patches

    ds = open_patches(patches) if isinstance(patches, str | Path) else patches
    sel = select_split(ds, split)
    mask = sel[MASK].load()
    results: dict[str, EvaluationResult] = {}
    probs: dict[str, np.ndarray] = {}
    written: list[Path] = []
    for run in (run_dir, *compare):
        # the whole store: a temporal run's stack members may lie in other splits
        prob, config = predict_run(run, ds, device=device, batch_size=batch_size, split=split)
        label = model_label(config)
        if label in results:  # two runs of the same model: tell them apart
            label = f"{label} ({Path(run).name})"
        res = evaluate(prob, mask)
        log.info("%s: %r", label, res)
        results[label], probs[label] = res, prob
        written.append(write_metrics(run, res, split=split, patches=patches, config=config))
    if figures:
        from isslide_cube.figures import curves_figure, figure3

        fig_dir = Path(run_dir) / "figures"
        fig_dir.mkdir(exist_ok=True)
        written.append(figure3(sel, probs, {k: r.threshold for k, r in results.items()},
                               fig_dir / f"figure3_{split}.png", n_examples=n_examples))
        written.append(curves_figure(results, fig_dir / f"curves_{split}.png"))
    return report(results, split=split, n_patches=int(sel.sizes[SAMPLE]), paths=written)
