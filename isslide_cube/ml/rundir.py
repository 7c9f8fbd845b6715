"""A run folder: ``config.json``, ``history.csv``, checkpoints with the RNG states.

Shared by :func:`isslide_cube.ml.training.train` (one run per folder) and
:func:`isslide_cube.ml.many.train_many` (one sub-folder per run): both write
exactly this layout, so ``load_run``, ``evaluate_run`` and ``resume=True`` work on
either.

Examples
--------
>>> read_history(Path("runs/resunet/history.csv"), upto=3)  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import json
import logging
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from isslide_cube.ml import datasets
from isslide_cube.schema import TrainingError

log = logging.getLogger(__name__)

HISTORY_FIELDS = ("epoch", "train_loss", "val_loss", "val_f1", "seconds", "val_f1_best",
                  "best_threshold")
RUN_FILES = ("config.json", "history.csv", "last.pt", "best.pt")
#: what makes two runs the same run (``epochs`` may grow on resume)
IDENTITY_KEYS = ("model", "model_kwargs", "in_channels", "n_times", "temporal", "preset", "lr",
                 "batch_size", "seed", "patches", "augment", "validity", "max_train_samples",
                 "weights", "device_data", "prior_bias")


def prepare_run_dir(run_dir: Path, config: dict[str, Any], resume: bool, overwrite: bool) -> bool:
    """Check the folder; return True when a checkpoint should be resumed."""
    config_path = run_dir / "config.json"
    if not config_path.exists():
        if resume:
            log.warning("%s holds no run to resume; starting a new one", run_dir)
        return False
    old = json.loads(config_path.read_text())
    diff = {k: (old.get(k), config.get(k)) for k in IDENTITY_KEYS if old.get(k) != config.get(k)}
    if overwrite and not resume:
        for name in RUN_FILES + ("metrics.json",):
            (run_dir / name).unlink(missing_ok=True)
        return False
    if not resume:
        what = (f"a different run ({', '.join(f'{k}: {a!r} != {b!r}' for k, (a, b) in diff.items())})"
                if diff else "this run already")
        raise TrainingError(f"{run_dir} holds {what}; pass --resume (resume=True) to continue it "
                            "or --overwrite (overwrite=True) to replace it")
    if diff:
        raise TrainingError(f"cannot resume {run_dir}: it holds a different run "
                            f"({', '.join(f'{k}: {a!r} != {b!r}' for k, (a, b) in diff.items())}); "
                            "use another RUN_DIR or --overwrite")
    return (run_dir / "last.pt").exists()


def save(obj: dict[str, Any], path: Path) -> None:
    """``torch.save`` through a temporary file."""
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)  # atomic: an interrupted save never corrupts the last checkpoint


def rng_state(sampler: datasets.EpochSampler) -> dict[str, Any]:
    """The global python/numpy/torch(/CUDA) RNG states and the sampler's, for a checkpoint."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": random.getstate(),
             "numpy": (name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached),
             "torch": torch.get_rng_state(), "sampler": sampler.state_dict()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved (not the sampler's: it has its own)."""
    random.setstate(_as_tuple(state["python"]))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuple(v: Any) -> Any:
    return tuple(_as_tuple(x) for x in v) if isinstance(v, list | tuple) else v


def read_history(path: Path, upto: int) -> list[dict[str, float]]:
    """The rows of ``history.csv`` up to epoch ``upto`` (none when the file is missing)."""
    if not path.exists():
        return []
    with path.open() as f:
        rows = [{k: int(v) if k == "epoch" else float(v) for k, v in row.items()}
                for row in csv.DictReader(f)]
    return [r for r in rows if r["epoch"] <= upto]


def write_history(path: Path, rows: list[dict[str, float]]) -> None:
    """Write ``history.csv`` (columns :data:`HISTORY_FIELDS`)."""
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=HISTORY_FIELDS)
        writer.writeheader()
        writer.writerows(rows)


