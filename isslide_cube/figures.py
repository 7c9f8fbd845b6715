"""Figures of an evaluation: the paper's Figure 3 panels and ROC / precision-recall curves.

Matplotlib with the Agg backend (no display): PNG files only. Phase uses the cyclic
``twilight`` colormap, coherence ``gray`` on [0, 1].

Example
-------
>>> from isslide_cube.figures import curves_figure
>>> curves_figure({"UNet": result}, "curves.png")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from isslide_cube.schema import BAND, COHERENCE, INTERFEROGRAM, MASK, PHASE, SAMPLE


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _cyan():
    from matplotlib.colors import ListedColormap

    return ListedColormap(["cyan"])


def pick_examples(mask: np.ndarray, n_examples: int) -> np.ndarray:
    """Indices of ``n_examples`` patches with a move, spread over the range of move sizes."""
    area = mask.reshape(len(mask), -1).sum(axis=1)
    candidates = np.flatnonzero(area > 0)
    if candidates.size == 0:
        candidates = np.arange(len(mask))
    candidates = candidates[np.argsort(area[candidates], kind="stable")[::-1]]
    take = np.unique(np.linspace(0, candidates.size - 1, min(n_examples, candidates.size))
                     .round().astype(int))
    return candidates[take]


def figure3(patches: Any, probs: Mapping[str, np.ndarray], thresholds: Mapping[str, float],
            path: str | Path, *, n_examples: int = 4, index: np.ndarray | None = None) -> Path:
    """Figure 3-style panels: phase, coherence, reference, then one column per model.

    Each row is one patch: the wrapped phase (twilight), the coherence, the reference
    outline over the phase, and for every model its probability map with the outline
    of its binarised prediction (cyan, at the model's threshold) and of the reference
    (white, dashed).

    Parameters
    ----------
    patches
        The patches dataset the probabilities were predicted on (same samples, order).
    probs
        ``{model label: probabilities (n, H, W)}``.
    thresholds
        ``{model label: threshold}``.
    path
        PNG to write.
    n_examples
        Rows (patches), picked by :func:`pick_examples` unless ``index`` is given.

    Returns
    -------
    Path
        ``path``.
    """
    plt = _pyplot()
    mask = np.asarray(patches[MASK].values).astype(bool)
    idx = pick_examples(mask, n_examples) if index is None else np.asarray(index)
    ifg = patches[INTERFEROGRAM].isel({SAMPLE: idx})
    phase = np.asarray(ifg.sel({BAND: PHASE}).values)
    coherence = np.asarray(ifg.sel({BAND: COHERENCE}).values)
    cols = 3 + len(probs)
    fig, axes = plt.subplots(len(idx), cols, figsize=(2.1 * cols, 2.1 * len(idx) + 0.4),
                             squeeze=False, constrained_layout=True)
    titles = ["phase", "coherence", "reference", *probs]
    for r, i in enumerate(idx):
        ref = mask[i]
        panels = [(phase[r], "twilight", -np.pi, np.pi), (coherence[r], "gray", 0, 1),
                  (phase[r], "twilight", -np.pi, np.pi)]
        panels += [(np.asarray(p[i]), "magma", 0, 1) for p in probs.values()]
        for c, (img, cmap, lo, hi) in enumerate(panels):
            ax = axes[r, c]
            ax.imshow(img, cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
            if c >= 2 and ref.any():
                ax.contour(ref, levels=[0.5], colors="white", linewidths=1,
                           linestyles="dashed" if c > 2 else "solid")
            if c >= 3:
                label = titles[c]
                pred = np.asarray(probs[label][i]) >= thresholds[label]
                # translucent fill and outline: a prediction covering the whole patch shows too
                ax.imshow(np.ma.masked_where(~pred, pred), cmap=_cyan(), alpha=0.3,
                          interpolation="nearest")
                if pred.any() and not pred.all():
                    ax.contour(pred, levels=[0.5], colors="cyan", linewidths=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(titles[c], fontsize=9)
        axes[r, 0].set_ylabel(f"patch {int(i)}", fontsize=8)
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def curves_figure(results: Mapping[str, Any], path: str | Path) -> Path:
    """ROC and precision-recall curves of each model, with its F1-optimal operating point."""
    plt = _pyplot()
    fig, (roc, pr) = plt.subplots(1, 2, figsize=(9, 4), constrained_layout=True)
    for label, res in results.items():
        c = res.curves
        if not c:
            continue
        line, = roc.plot(c["fpr"], c["tpr"], label=f"{label} (AUC {res.auc:.3f})")
        pr.plot(c["recall"], c["precision"], color=line.get_color(),
                label=f"{label} (F1 {res.f1:.3f})")
        pr.plot([res.recall], [res.precision], "o", color=line.get_color())
    roc.plot([0, 1], [0, 1], ":", color="grey")
    roc.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC",
            xlim=(0, 1), ylim=(0, 1.01))
    pr.set(xlabel="recall", ylabel="precision", title="precision-recall (dot: threshold)",
           xlim=(0, 1), ylim=(0, 1.01))
    for ax in (roc, pr):
        ax.legend(fontsize=8, loc="lower right" if ax is roc else "lower left")
        ax.grid(alpha=0.3)
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
