"""Table I as text: model labels, the markdown table, the report of an evaluation."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from isslide_cube.evaluation._metrics import HIGHER_IS_BETTER, METRICS, EvaluationResult

# ------------------------------------------------------------------ tables
# Display names of Table I: torchvision backbones from scratch are "-S", pre-trained "-P".
DISPLAY_NAMES = {"fcn_resnet50": "FCN", "deeplabv3_resnet50": "DeepLabV3", "unet": "UNet",
                 "resunet": "ResUNet", "sepunet": "SepUNet"}


def model_label(config: Mapping[str, Any]) -> str:
    """Table I name of a run from its ``config.json``: ``FCN-S``, ``DeepLabV3-P``, ``ResUNet``..."""
    name = str(config.get("model", "?"))
    label = DISPLAY_NAMES.get(name, name)
    if name in ("fcn_resnet50", "deeplabv3_resnet50"):
        label += "-P" if config.get("weights") else "-S"
    if config.get("temporal"):
        label += f" [{config['temporal']}]"
    return label


def format_table(rows: Mapping[str, Mapping[str, Any]], *, digits: int = 3) -> str:
    """A Markdown table in the paper's Table I layout, best and second best marked.

    Per column (higher is better for F1, AUC, Dice, IoU; lower for HD) the best value
    is written ``**bold**`` and the second best ``_underlined_`` (Markdown emphasis, the
    plain-text stand-ins for the paper's bold and underline). Marks appear only with
    two rows or more; ties share the mark.

    Parameters
    ----------
    rows
        ``{model label: {"f1": ..., "auc": ..., "dice": ..., "iou": ..., "hd": ...}}``
        (an :class:`EvaluationResult`'s ``to_dict()`` works).

    Examples
    --------
    >>> print(format_table({"UNet": {"f1": .675, "auc": .977, "dice": .636, "iou": .497,
    ...                              "hd": 25.912}}))
    | model | F1 | AUC | Dice | IoU | HD |
    |---|---|---|---|---|---|
    | UNet | 0.675 | 0.977 | 0.636 | 0.497 | 25.912 |
    """
    heads = {"f1": "F1", "auc": "AUC", "dice": "Dice", "iou": "IoU", "hd": "HD"}
    ranks: dict[str, dict[float, int]] = {}
    for m in METRICS:
        vals = sorted({round(float(r[m]), digits) for r in rows.values()
                       if r.get(m) is not None and math.isfinite(float(r[m]))},
                      reverse=HIGHER_IS_BETTER[m])
        ranks[m] = {v: i for i, v in enumerate(vals[:2])} if len(rows) > 1 else {}
    lines = ["| model | " + " | ".join(heads.values()) + " |", "|---" * 6 + "|"]
    for label, r in rows.items():
        cells = []
        for m in METRICS:
            v = r.get(m)
            if v is None or not math.isfinite(float(v)):
                cells.append("n/a")
                continue
            text = f"{float(v):.{digits}f}"
            rank = ranks[m].get(round(float(v), digits))
            cells.append(f"**{text}**" if rank == 0 else f"_{text}_" if rank == 1 else text)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(results: Mapping[str, EvaluationResult], *, split: str, n_patches: int,
           paths: Sequence[Path] = ()) -> str:
    """Table I text with thresholds, empty-patch counts and the files written."""
    lines = [f"Table I on split {split!r} ({n_patches} patches; F1/AUC pooled over pixels, "
             "Dice/IoU/HD per patch averaged; HD in pixels)", "",
             format_table({k: r.to_dict() for k, r in results.items()}), ""]
    if len(results) > 1:
        lines += ["**bold** = best, _underlined_ = second best per column", ""]
    for label, r in results.items():
        lines.append(f"{label}: threshold {r.threshold:.4g}, {r.n_empty_prediction} empty "
                     f"predictions, {r.n_empty_reference} empty references "
                     f"(HD of one-sided empties = {r.hd_empty})")
    lines += [f"wrote {p}" for p in paths]
    return "\n".join(lines)
