"""Multi-temporal learning: a stacked-patches dataset and two kinds of temporal model.

:class:`TemporalPatchDataset` yields, for each patch of a split, the patches of
its temporal stack at the same location (``isslide_cube.temporal``: same start
date, same end date, or K consecutive of the same delay) as
``{"image": [T, C, H, W], "mask": [1, H, W], "valid_times": [T]}``. The target
interferogram (whose mask is learnt) is always time 0; the other members follow
in stack order. Missing members are all-zero inputs with ``valid_times`` 0.

The networks that consume these stacks live in :mod:`isslide_cube.ml.temporal_models`.

Example
-------
>>> ds = TemporalPatchDataset("patches.zarr", split="train", spec="start")  # doctest: +SKIP
>>> ds[0]["image"].shape  # doctest: +SKIP
torch.Size([3, 3, 100, 100])
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from isslide_cube import schema
from isslide_cube.ml import datasets
from isslide_cube.ml.transforms import Transform
from isslide_cube.temporal import parse_spec, patch_member_index, target_position

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------- dataset
class TemporalPatchDataset(torch.utils.data.Dataset):
    """Patches of one split, each with its temporal stack at the same location.

    Parameters
    ----------
    patches
        Path of a patches store, or an opened patches dataset.
    split
        ``"train"``, ``"eval"``, ... or None for every sample. Only the targets
        are selected by split; members come from any split (their masks are
        never used).
    spec
        ``"start"``, ``"end"`` or ``"consecutive:K"``.
    transform
        ``transform(sample, rng)`` on the raw sample ``{"interferogram":
        (T, 2, H, W), "mask": (H, W)}`` (``PhaseOffset`` draws one offset per time).
    validity
        A fourth channel flagging valid pixels.
    seed
        Seed of the augmentation draws (with the epoch and the sample index).
    in_memory
        Load every sample once (True), stream chunks (False), or ``"auto"``.

    Attributes
    ----------
    in_channels : int
        Channels per time (3, or 4 with ``validity``).
    n_times : int
        Length T of the stacks.
    members : numpy.ndarray
        (n, T) store positions of each target's members (target first), -1 missing.

    Example
    -------
    >>> ds = TemporalPatchDataset("patches.zarr", "train", spec="start")  # doctest: +SKIP
    >>> ds[0]["image"].shape                                              # doctest: +SKIP
    torch.Size([3, 3, 100, 100])
    """

    def __init__(self, patches: str | Path | xr.Dataset, split: str | None = "train",
                 spec: str = "start", transform: Transform | None = None, *,
                 validity: bool = False, seed: int = 0, in_memory: bool | str = "auto",
                 max_samples: int | None = None):
        self.spec = parse_spec(spec)
        self.transform, self.validity, self.seed, self.epoch = transform, validity, seed, 0
        self.in_channels = 4 if validity else 3
        # every sample of the store is reachable (members cross splits): split=None base
        self._base = datasets.PatchDataset(patches, split=None, transform=None,
                                           validity=validity, in_memory=in_memory)
        ds = self._base._ds
        targets = datasets.select_samples(ds, split, source=self._base.path or "patches")
        if max_samples is not None and len(targets) > max_samples:
            rng = np.random.default_rng(seed)
            targets = np.sort(rng.choice(targets, size=max_samples, replace=False))
        index, valid = patch_member_index(ds, self.spec)
        delays = np.unique(np.asarray(ds[schema.DELAY].values).astype(np.int64))
        # the target's own position in its stack, then move it to time 0
        own = target_position(self.spec, delays)
        delay_pos = np.searchsorted(delays, np.asarray(ds[schema.DELAY].values).astype(np.int64))
        pos = own[delay_pos][targets]
        members = np.where(valid, index, -1)[targets]
        t = members.shape[1]
        order = np.array([[p] + [q for q in range(t) if q != p] for p in range(t)])
        self.members = np.take_along_axis(members, order[pos], axis=1)
        self.indices = targets
        self.n_times = t
        self.patch_shape = self._base.patch_shape
        self.metadata = datasets._sample_metadata(ds, targets)
        self.in_memory = self._base.in_memory

    def __len__(self) -> int:
        return len(self.indices)

    def raw(self, pos: int) -> dict[str, Any]:
        """Sample ``pos`` before any transform: ``interferogram`` (T, 2, H, W), ``mask`` (H, W)."""
        h, w = self.patch_shape
        ifg = np.full((self.n_times, 2, h, w), np.nan, np.float32)
        mask = None
        for t, m in enumerate(self.members[pos]):
            if m < 0:
                continue
            one = self._base.raw(int(m))
            ifg[t] = one["interferogram"]
            if t == 0:
                mask = one["mask"]
        return {"interferogram": ifg, "mask": mask, "valid_times": self.members[pos] >= 0}

    def __getitem__(self, pos: int) -> dict[str, Any]:
        if not 0 <= pos < len(self):
            raise IndexError(f"sample {pos} out of range for a dataset of {len(self)}")
        sample = self.raw(pos)
        if self.transform is not None:
            rng = np.random.default_rng((self.seed, self.epoch, int(self.indices[pos])))
            sample = self.transform(sample, rng)
        out = datasets.encode(sample, self.validity)
        out["valid_times"] = torch.from_numpy(sample["valid_times"].astype(np.float32))
        out.update({k: v[pos] for k, v in self.metadata.items()})
        return out

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draws of ``epoch``."""
        self.epoch = int(epoch)

    def sampler(self, seed: int = 0, shuffle: bool = True) -> datasets.EpochSampler:
        """A seeded epoch sampler (members span chunks, so no chunk-aware order)."""
        return datasets.EpochSampler(len(self), seed=seed, shuffle=shuffle)
