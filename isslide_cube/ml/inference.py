"""Probabilities of a trained model on the samples of a patches dataset.

Examples
--------
>>> from isslide_cube.ml.training import load_run
>>> model, config = load_run("runs/resunet")                    # doctest: +SKIP
>>> ds = open_patches("patches.zarr")                            # doctest: +SKIP
>>> prob = predict_patches(model, ds, split="eval")              # doctest: +SKIP
>>> prob.shape == (int((ds.split == "eval").sum()), 100, 100)   # doctest: +SKIP
True
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import xarray as xr
from torch import nn

from isslide_cube.ml.datasets import PatchDataset


@torch.no_grad()
def predict_patches(
    model: nn.Module,
    patches_ds: xr.Dataset | str | Path,
    *,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    temporal: str | None = None,
    validity: bool | None = None,
    split: str | None = None,
) -> np.ndarray:
    """Moving-area probability of every sample, in the dataset's order.

    Parameters
    ----------
    model
        A model returning logits [N, 1, H, W] (e.g. from :func:`.training.load_run`).
    patches_ds
        Patches dataset or the path of a store: every sample is predicted, or those
        of ``split``.
    batch_size
        Samples per forward pass.
    device
        Where to run the model.
    temporal
        The run's temporal spec (``config["temporal"]``): inputs come from
        ``isslide_cube.ml.temporal.TemporalPatchDataset``.
    validity
        Add the validity channel; by default when the model takes 4 channels.
    split
        Predict only the samples whose ``split`` is this, in store order. For a
        temporal run, pass the whole store with ``split`` rather than a selection:
        a stack's members are the other interferograms at the same location, whatever
        their split, and a pre-selected dataset would leave them missing.

    Returns
    -------
    numpy.ndarray
        float32 (n_samples, H, W) in [0, 1].
    """
    if validity is None:
        validity = getattr(model, "in_channels", 3) == 4
    if temporal is not None:
        from isslide_cube.ml.temporal import TemporalPatchDataset

        dataset = TemporalPatchDataset(patches_ds, split=split, spec=temporal, transform=None,
                                       validity=validity)
    else:
        dataset = PatchDataset(patches_ds, split=split, transform=None, validity=validity)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
    model = model.to(device).eval()
    out = []
    for batch in loader:
        logits = model(batch["image"].to(device))
        out.append(torch.sigmoid(logits.float())[:, 0].cpu().numpy())
    if not out:
        h, w = dataset.patch_shape if hasattr(dataset, "patch_shape") else (0, 0)
        return np.zeros((0, h, w), np.float32)
    return np.concatenate(out).astype(np.float32, copy=False)
