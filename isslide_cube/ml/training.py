"""Train a segmentation model on a patches store: the paper's protocol, resumable exactly.

``train`` fits on ``split == "train"`` and validates on ``split == "eval"`` after
every epoch, with binary cross-entropy on logits, Adam at a constant learning
rate and batches of 8 (DESIGN.md section 1). Presets:

* ``paper``: U-Nets at lr 1e-5 for 300 epochs, FCN/DeepLabV3 at lr 1e-7 for 600
  epochs, the paper's random phase offset as the only augmentation;
* ``quick``: for demos and tests on a CPU: a few epochs at lr 1e-3 on at most
  1,024 training patches, a narrow U-Net (``width=8``), the output bias started
  at the logit of the training set's moving fraction (``prior_bias``; Lin et al.
  2017, "Focal loss for dense object detection", section 3.3): with ~5% moving
  pixels, Adam would otherwise spend thousands of steps of size ~lr just moving
  that bias from 0 to about -3.

A run lives in one folder: ``config.json``, ``history.csv`` (epoch, train_loss,
val_loss, val_f1 at 0.5, seconds, then val_f1_best and best_threshold),
``last.pt`` after each epoch and ``best.pt`` at the lowest validation loss.
A checkpoint holds the model and optimizer states, the number of completed
epochs, the python/numpy/torch(/CUDA) RNG states and the sampler state, so
``resume=True`` continues bit-identically on the CPU: training N epochs, stopping
and resuming to M gives the weights of an uninterrupted M-epoch run (deterministic
algorithms; augmentation seeded by ``(seed, epoch, sample)``). The caller's global
RNG states are left as they were.

Several runs at once: :func:`isslide_cube.ml.many.train_many` (``isslide-cube train
PATCHES RUN_DIR --model A B --seed 0 1``) trains every run in one process on one
copy of the data, their steps interleaved (one CUDA stream each on a GPU, where a
batch of 8 leaves the device launch-bound), each into ``RUN_DIR/<model>-s<seed>``
in this very layout and bit-identical on the CPU to the run trained alone: a run is
the step generator :func:`fit_steps`, which :func:`train` simply drives to its end.

Examples
--------
>>> result = train("patches.zarr", "runs/resunet", model="resunet", preset="quick")  # doctest: +SKIP
>>> model, config = load_run("runs/resunet")                                        # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from isslide_cube.ml import datasets, models, rundir
from isslide_cube.ml.rundir import HISTORY_FIELDS, IDENTITY_KEYS, RUN_FILES  # noqa: F401
from isslide_cube.ml.transforms import augmentation
from isslide_cube.schema import TrainingError

log = logging.getLogger(__name__)

UNET_FAMILY = ("unet", "resunet", "sepunet",  # factories that take `width`
               "early_fusion_resunet", "convgru_unet", "temporal_attention_unet")

PRESETS: dict[str, dict[str, Any]] = {
    "paper": {"epochs": 300, "lr": 1e-5, "batch_size": 8, "max_train_samples": None,
              "augment": {"phase_offset": True}, "model_kwargs": {}, "prior_bias": False},
    "quick": {"epochs": 8, "lr": 1e-3, "batch_size": 8, "max_train_samples": 1024,
              "augment": {"phase_offset": True}, "model_kwargs": {"width": 8}, "prior_bias": True},
}
#: torchvision models: the paper's lr 1e-7 for 600 epochs; quick runs stay short
TORCHVISION_PRESETS: dict[str, dict[str, Any]] = {
    "paper": {"epochs": 600, "lr": 1e-7, "model_kwargs": {}},
    "quick": {"epochs": 2, "lr": 1e-4, "max_train_samples": 256, "model_kwargs": {}},
}


@dataclass
class TrainingResult:
    """What a run did: where, how long, its best epoch."""

    run_dir: Path
    model: str
    epochs: int
    best_epoch: int
    best_val_loss: float
    best_val_f1: float
    n_train: int
    n_eval: int
    parameters: int
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)

    def __str__(self) -> str:
        return (f"{self.model} ({self.parameters:,} parameters): {self.epochs} epochs on "
                f"{self.n_train} train / {self.n_eval} eval patches in {self.seconds:.1f} s; "
                f"best epoch {self.best_epoch}: val_loss {self.best_val_loss:.4f}, "
                f"val_f1 {self.best_val_f1:.3f}; run in {self.run_dir}")


def resolve_config(model: str, preset: str, *, epochs: int | None = None, lr: float | None = None,
                   batch_size: int | None = None, **extra: Any) -> dict[str, Any]:
    """The preset's settings for ``model`` with the explicit overrides applied.

    Examples
    --------
    >>> c = resolve_config("fcn_resnet50", "paper")
    >>> c["epochs"], c["lr"], c["batch_size"]
    (600, 1e-07, 8)
    """
    if preset not in PRESETS:
        raise TrainingError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    config = {**PRESETS[preset]}
    if model in models.TORCHVISION_MODELS:
        config.update(TORCHVISION_PRESETS[preset])
    elif model not in UNET_FAMILY:
        config["model_kwargs"] = {}  # other factories may not take `width`
    config["model_kwargs"] = dict(config["model_kwargs"])
    for key, value in (("epochs", epochs), ("lr", lr), ("batch_size", batch_size)):
        if value is not None:
            config[key] = value
    config.update({k: v for k, v in extra.items() if v is not None})
    config.update(model=model, preset=preset)
    if config["epochs"] < 0 or config["batch_size"] < 1 or not config["lr"] > 0:
        raise TrainingError(f"epochs must be >= 0, batch_size >= 1 and lr > 0 "
                            f"(got {config['epochs']}, {config['batch_size']}, {config['lr']})")
    return config


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise TrainingError(f"device {device!r} asked for but CUDA is not available; use --device cpu")
    return dev


# ------------------------------------------------------------------- datasets
def _dataset(patches: str | Path, config: dict[str, Any], split: str,
             in_memory: bool | str) -> torch.utils.data.Dataset:
    """The ``train`` (augmented, possibly subsampled) or ``eval`` side of a run."""
    kw: dict[str, Any] = {"validity": config["validity"], "seed": config["seed"],
                          "in_memory": in_memory}
    if split == "train":
        kw.update(transform=augmentation(**config["augment"]),
                  max_samples=config["max_train_samples"])
    if config["temporal"] is None:
        return datasets.PatchDataset(patches, split=split, **kw)
    from isslide_cube.ml.temporal import TemporalPatchDataset  # one stack per sample

    return TemporalPatchDataset(patches, split=split, spec=config["temporal"], **kw)


def _check_sides(patches: str | Path, train_ds, eval_ds, config: dict[str, Any]) -> None:
    if len(train_ds) == 0:
        raise TrainingError(f"{patches} has no 'train' samples; write the patches with a split that "
                            "keeps some for training (`isslide-cube patches ... --split paper`)")
    if len(eval_ds) == 0:
        log.warning("%s has no 'eval' samples: validation columns will be NaN", patches)
    config.update(in_channels=int(train_ds.in_channels), n_times=int(train_ds.n_times))


def _use_device_data(config: dict[str, Any], train_ds, dev: torch.device,
                     device_data: bool | None) -> bool:
    """Resolve ``device_data`` (None: on CUDA when the run allows it) into ``config``."""
    ok = (config["temporal"] is None and isinstance(train_ds, datasets.PatchDataset)
          and {k for k, v in config["augment"].items() if v} <= {"phase_offset"})
    if device_data is None:
        device_data = dev.type == "cuda" and ok and bool(train_ds.in_memory)
    elif device_data and not ok:
        raise TrainingError("device_data=True supports single-interferogram runs whose only "
                            f"augmentation is the phase offset (got temporal={config['temporal']!r}, "
                            f"augment={config['augment']})")
    config["device_data"] = bool(device_data)
    return config["device_data"]


def _sampler(ds: torch.utils.data.Dataset, seed: int, shuffle: bool) -> datasets.EpochSampler:
    if hasattr(ds, "sampler"):
        return ds.sampler(seed=seed, shuffle=shuffle)
    return datasets.EpochSampler(len(ds), seed=seed, shuffle=shuffle)


def _loader(ds: torch.utils.data.Dataset, sampler: datasets.EpochSampler, batch_size: int,
            num_workers: int, epoch: int, seed: int, pin: bool) -> torch.utils.data.DataLoader:
    sampler.set_epoch(epoch)
    if hasattr(ds, "set_epoch"):
        ds.set_epoch(epoch)
    # A private generator seeds the workers, so loaders never draw from the global RNG.
    gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
    # BatchNorm cannot train on a final batch of one sample (DeepLabV3's pooling branch).
    drop_last = sampler.shuffle and len(ds) % batch_size == 1 and len(ds) > 1
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, sampler=sampler,
                                       num_workers=num_workers, generator=gen, pin_memory=pin,
                                       drop_last=drop_last)


def _set_prior_bias(net: nn.Module, train_ds) -> None:
    """Start the output bias at logit(moving fraction of the train side)."""
    from isslide_cube.schema import MOVING_FRACTION

    ds = getattr(train_ds, "_ds", None)
    if ds is None:
        ds = getattr(getattr(train_ds, "_base", None), "_ds", None)
    heads = [m for m in net.modules()
             if isinstance(m, nn.Conv2d) and m.out_channels == 1 and m.bias is not None]
    if ds is None or MOVING_FRACTION not in ds.coords or not heads:
        log.warning("prior_bias: no moving fraction or no output bias found; left as initialised")
        return
    frac = float(np.asarray(ds[MOVING_FRACTION].values)[train_ds.indices].mean())
    frac = min(max(frac, 1e-4), 1 - 1e-4)
    with torch.no_grad():
        heads[-1].bias.fill_(math.log(frac / (1 - frac)))
    log.info("output bias started at logit(%.4f) = %.3f", frac, math.log(frac / (1 - frac)))


# ------------------------------------------------------------------- one epoch
THRESHOLDS = torch.linspace(0.01, 0.99, 99)  # index 49 is 0.5
#: what :func:`fit_steps` yields before work that uses the python/numpy global RNGs
#: (its first step seeds them too); training steps draw only from torch's
HOST_RNG = "host-rng"


def _train_steps(model: nn.Module, batches, optimizer, loss_fn, device, amp: bool, bar,
                 graphs: bool = False) -> Generator[None, None, float]:
    """One epoch, yielding after each step (its value, the mean loss, is the only sync)."""
    model.train()
    total = torch.zeros((), dtype=torch.float64, device=device)
    count = 0
    for batch in batches:
        x = batch["image"].to(device, non_blocking=True)
        y = batch["mask"].to(device, non_blocking=True)
        if graphs:  # a new iteration for CUDA-graph trees (several models may interleave)
            torch.compiler.cudagraph_mark_step_begin()
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = loss_fn(model(x).float(), y)
        loss.backward()
        optimizer.step()
        total += loss.detach().double() * len(x)  # no host sync per step
        count += len(x)
        if bar is not None:
            bar.update(len(x))
        yield
    return float(total) / max(count, 1)


@torch.no_grad()
def _validate_steps(model: nn.Module, batches, loss_fn, device, amp: bool,
                    graphs: bool = False) -> Generator[None, None, dict[str, float]]:
    """Validation loss and F1 over 99 thresholds, yielding after each batch."""
    model.eval()
    thr = THRESHOLDS.to(device)
    total = torch.zeros((), dtype=torch.float64, device=device)
    tp = torch.zeros(len(thr), dtype=torch.float64, device=device)
    pp = torch.zeros_like(tp)
    positives = torch.zeros((), dtype=torch.float64, device=device)
    count = 0
    for batch in batches:
        x = batch["image"].to(device, non_blocking=True)
        y = batch["mask"].to(device, non_blocking=True)
        if graphs:
            torch.compiler.cudagraph_mark_step_begin()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            logits = model(x).float()
        total += loss_fn(logits, y).double() * len(x)
        count += len(x)
        prob, pos = torch.sigmoid(logits).flatten(), y.flatten() > 0.5
        above = prob[None, :] >= thr[:, None]  # (thresholds, pixels), comparisons only: deterministic
        tp += (above & pos[None, :]).sum(1).double()
        pp += above.sum(1).double()
        positives += pos.sum().double()
        yield
    if count == 0:
        return {"val_loss": math.nan, "val_f1": math.nan, "val_f1_best": math.nan,
                "best_threshold": math.nan}
    f1 = (2 * tp / (pp + positives).clamp_min(1)).cpu()
    best = int(torch.argmax(f1))
    return {"val_loss": float(total) / count, "val_f1": float(f1[49]),
            "val_f1_best": float(f1[best]), "best_threshold": float(THRESHOLDS[best])}


def run_to_end(steps: Generator[Any, None, Any]) -> Any:
    """Drive a step generator to its end and return its value (one run alone)."""
    while True:
        try:
            next(steps)
        except StopIteration as stop:
            return stop.value


@contextlib.contextmanager
def training_context(dev: torch.device) -> Iterator[None]:
    """Deterministic algorithms and a private RNG for the block; the caller's come back after."""
    previous_det = torch.are_deterministic_algorithms_enabled()
    previous_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        # CUDA kernels like upsample backward have no deterministic version: warn there.
        torch.use_deterministic_algorithms(True, warn_only=dev.type != "cpu")
        cuda_ids = [dev.index or 0] if dev.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda_ids):
            yield
    finally:
        torch.use_deterministic_algorithms(previous_det, warn_only=previous_warn)
        random.setstate(py_state)
        np.random.set_state(np_state)


# ------------------------------------------------------------------------ train
def train(
    patches: str | Path,
    run_dir: str | Path,
    *,
    model: str = "resunet",
    preset: str = "quick",
    epochs: int | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    num_workers: int = 0,
    weights: str | Path | None = None,
    temporal: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    device: str = "auto",
    progress: bool = False,
    model_kwargs: dict[str, Any] | None = None,
    augment: dict[str, Any] | None = None,
    validity: bool = False,
    max_train_samples: int | None = None,
    prior_bias: bool | None = None,
    in_memory: bool | str = "auto",
    amp: bool = False,
    device_data: bool | None = None,
    compile: bool = False,
) -> TrainingResult:
    """Train ``model`` on a patches store into ``run_dir`` (mirrors ``isslide-cube train``).

    Parameters
    ----------
    patches
        Patches Zarr store with a ``split`` coordinate.
    run_dir
        Folder of the run (created).
    model
        A name of :data:`isslide_cube.ml.models.MODELS`.
    preset
        ``"paper"`` or ``"quick"``; ``epochs``, ``lr``, ``batch_size``,
        ``model_kwargs``, ``augment`` (keywords of :func:`.transforms.augmentation`)
        and ``max_train_samples`` override it.
    seed
        Seeds model initialisation, sample order and augmentation.
    num_workers
        DataLoader worker processes (the samples are the same for any number).
    weights
        Local pre-trained weights for FCN/DeepLabV3 (:func:`.models.load_pretrained`).
    temporal
        Multi-temporal spec for ``isslide_cube.ml.temporal.TemporalPatchDataset``
        (e.g. ``"start"``, ``"consecutive:3"``); None for single interferograms.
    resume, overwrite
        Continue the run in ``run_dir`` / replace the run there. Without either, a
        folder that already holds a run is refused.
    device
        ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda:0"``...
    progress
        tqdm bars over epochs and samples.
    validity
        Add the validity channel (4 inputs).
    prior_bias
        Start the output bias at the logit of the train side's moving fraction
        (default: the preset's; on in ``quick``, off in ``paper``).
    in_memory
        Hold the patches in memory (``"auto"``: when they fit in 4 GiB) or stream chunks.
    amp
        bfloat16 autocast on CUDA (ignored on the CPU).
    device_data
        Hold both splits on the device and augment/encode there
        (:class:`.datasets.DeviceBatches`): no loader work per step, what a GPU
        needs at batch 8. Default: on CUDA when the augmentation is the phase
        offset alone and the run is single-interferogram. Part of the run's
        identity (its random draws differ from the loader's).
    compile
        ``torch.compile(mode="reduce-overhead")``: CUDA graphs for the step.

    Returns
    -------
    TrainingResult

    Raises
    ------
    isslide_cube.schema.TrainingError
        Unknown model or preset, a store without ``split`` or with an empty train
        side, weights that do not match the model, a ``run_dir`` holding another run.
    """
    start_time = time.perf_counter()
    run_dir = Path(run_dir)
    dev = resolve_device(device)
    config = make_config(patches, model=model, preset=preset, epochs=epochs, lr=lr,
                         batch_size=batch_size, seed=seed, weights=weights, temporal=temporal,
                         model_kwargs=model_kwargs, augment=augment, validity=validity,
                         max_train_samples=max_train_samples, prior_bias=prior_bias)
    train_ds = _dataset(patches, config, "train", in_memory)
    eval_ds = _dataset(patches, config, "eval", in_memory)
    _check_sides(patches, train_ds, eval_ds, config)
    _use_device_data(config, train_ds, dev, device_data)
    run_dir.mkdir(parents=True, exist_ok=True)
    resuming = rundir.prepare_run_dir(run_dir, config, resume, overwrite)
    with training_context(dev):
        return run_to_end(fit_steps(config, run_dir, train_ds, eval_ds, resuming, dev,
                                    num_workers=num_workers, amp=amp, progress=progress,
                                    start_time=start_time, compile=compile))


def make_config(patches: str | Path, *, model: str = "resunet", preset: str = "quick",
                epochs: int | None = None, lr: float | None = None,
                batch_size: int | None = None, seed: int = 0,
                weights: str | Path | None = None, temporal: str | None = None,
                model_kwargs: dict[str, Any] | None = None, augment: dict[str, Any] | None = None,
                validity: bool = False, max_train_samples: int | None = None,
                prior_bias: bool | None = None) -> dict[str, Any]:
    """The ``config.json`` of a run (before the data adds ``in_channels``, ``n_times``).

    Its keywords are the settings that make one run differ from another (see
    :func:`train`); :func:`isslide_cube.ml.many.train_many` takes them per run.

    Raises
    ------
    isslide_cube.schema.TrainingError
        Unknown model (the message lists the valid names) or preset, bad numbers.

    Examples
    --------
    >>> make_config("p.zarr", model="unet", seed=3)["seed"]
    3
    """
    if model not in models.MODELS:
        models.build_model(model)  # raises with the list of valid names
    config = resolve_config(model, preset, epochs=epochs, lr=lr, batch_size=batch_size)
    if model_kwargs is not None:
        config["model_kwargs"] = dict(model_kwargs)
    if augment is not None:
        config["augment"] = dict(augment)
    if max_train_samples is not None:
        config["max_train_samples"] = max_train_samples
    if prior_bias is not None:
        config["prior_bias"] = bool(prior_bias)
    config.update(seed=seed, temporal=temporal, validity=validity,
                  patches=str(Path(patches).resolve()),
                  weights=None if weights is None else str(Path(weights).resolve()))
    return config


def fit_steps(config: dict[str, Any], run_dir: Path, train_ds, eval_ds, resuming: bool,
              dev: torch.device, *, num_workers: int = 0, amp: bool = False,
              progress: bool = False, start_time: float | None = None, compile: bool = False,
              device_batches: dict[str, datasets.DeviceBatches] | None = None,
              position: int | None = None) -> Generator[None, None, TrainingResult]:
    """One run as a generator: it yields after every training and validation step.

    :func:`train` drives one to its end (:func:`run_to_end`);
    :func:`isslide_cube.ml.many.train_many` interleaves several, each under its own
    RNG states (and CUDA stream). The first ``next`` seeds the global RNGs and builds
    the model, so whatever drives it must keep each run's RNG states apart: torch's
    around every ``next``, python's and numpy's around the first one and those that
    follow a yielded :data:`HOST_RNG` (the epoch's checkpoint).
    ``device_batches`` (``{"train", "eval"}``) hands in batches on the device shared
    with other runs; ``position`` places this run's progress bar among several.
    """
    start_time = time.perf_counter() if start_time is None else start_time
    amp = bool(amp and dev.type == "cuda")
    seed = config["seed"]
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    net = models.build_model(config["model"], config["in_channels"], config["n_times"],
                             weights=config["weights"], **config["model_kwargs"])
    if config.get("prior_bias"):
        _set_prior_bias(net, train_ds)
    net = net.to(dev)
    # fused: one kernel for the whole update on CUDA (no per-parameter launches)
    optimizer = torch.optim.Adam(net.parameters(), lr=config["lr"], fused=dev.type == "cuda")
    loss_fn = nn.BCEWithLogitsLoss()
    train_sampler = _sampler(train_ds, seed, shuffle=True)
    eval_sampler = _sampler(eval_ds, seed, shuffle=False)
    start_epoch, best_loss, best_epoch = 0, math.inf, 0
    history: list[dict[str, float]] = []
    if resuming:
        ckpt = torch.load(run_dir / "last.pt", map_location=dev, weights_only=True)
        net.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        rundir.set_rng_state(ckpt["rng"])
        train_sampler.load_state_dict(ckpt["rng"]["sampler"])
        start_epoch, best_loss, best_epoch = ckpt["epoch"], ckpt["best_loss"], ckpt["best_epoch"]
        history = rundir.read_history(run_dir / "history.csv", upto=start_epoch)
        log.info("resuming %s at epoch %d", run_dir, start_epoch)
    (run_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    pin = dev.type == "cuda"
    bs = config["batch_size"]
    if config["device_data"]:
        on_dev = device_batches or {
            "train": datasets.DeviceBatches(train_ds, dev, seed=seed, shuffle=True,
                                            phase_offset=config["augment"].get("phase_offset", False)),
            "eval": datasets.DeviceBatches(eval_ds, dev, seed=seed, shuffle=False)}

        def batches(side: str, epoch: int):
            return on_dev[side].epoch(epoch, bs)
    else:
        def batches(side: str, epoch: int):
            if side == "train":
                return _loader(train_ds, train_sampler, bs, num_workers, epoch, seed, pin)
            return _loader(eval_ds, eval_sampler, bs, num_workers, epoch, seed, pin)
    forward = torch.compile(net, mode="reduce-overhead") if compile else net
    graphs = bool(compile and dev.type == "cuda")
    n_params = models.count_parameters(net)
    log.info("training %s (%d parameters) on %d samples, validating on %d, device %s",
             config["model"], n_params, len(train_ds), len(eval_ds), dev)

    from tqdm.auto import tqdm

    label = config["model"] if position is None else f"{run_dir.name}"
    epochs_bar = tqdm(range(start_epoch, config["epochs"]), desc=label, unit="epoch",
                      initial=start_epoch, total=config["epochs"], disable=not progress,
                      position=position, leave=position is None)
    for epoch in epochs_bar:
        t0 = time.perf_counter()
        with tqdm(total=len(train_ds), desc=f"epoch {epoch + 1}", unit="patch", leave=False,
                  disable=not progress or position is not None) as bar:
            train_loss = yield from _train_steps(forward, batches("train", epoch), optimizer,
                                                 loss_fn, dev, amp, bar, graphs)
        val = yield from _validate_steps(forward, batches("eval", epoch), loss_fn, dev, amp, graphs)
        yield HOST_RNG  # the checkpoint next reads the python/numpy RNGs too
        row = {"epoch": epoch + 1, "train_loss": train_loss, **val,
               "seconds": time.perf_counter() - t0}
        history.append({k: row[k] for k in HISTORY_FIELDS})
        monitor = val["val_loss"] if len(eval_ds) else train_loss
        improved = monitor < best_loss
        if improved:
            best_loss, best_epoch = monitor, epoch + 1
        ckpt = {"model": net.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch + 1,
                "rng": rundir.rng_state(train_sampler), "config": config, "best_loss": best_loss,
                "best_epoch": best_epoch, "history": history[-1]}
        rundir.save(ckpt, run_dir / "last.pt")
        if improved:
            rundir.save(ckpt, run_dir / "best.pt")
        rundir.write_history(run_dir / "history.csv", history)
        epochs_bar.set_postfix(loss=f"{train_loss:.4f}", val=f"{val['val_loss']:.4f}",
                               f1=f"{val['val_f1_best']:.3f}")
        log.info("%s epoch %d: train %.4f val %.4f f1 %.3f (%.1f s)", label, epoch + 1,
                 train_loss, val["val_loss"], val["val_f1"], row["seconds"])
    epochs_bar.close()
    best_row = next((r for r in history if r["epoch"] == best_epoch), {})
    return TrainingResult(run_dir=run_dir, model=config["model"], epochs=config["epochs"],
                          best_epoch=best_epoch, best_val_loss=best_row.get("val_loss", math.nan),
                          best_val_f1=best_row.get("val_f1_best", math.nan), n_train=len(train_ds),
                          n_eval=len(eval_ds), parameters=n_params,
                          seconds=time.perf_counter() - start_time, history=history)


def load_run(run_dir: str | Path, checkpoint: str = "best",
             device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """The trained model of a run (in eval mode) and its ``config.json``.

    Parameters
    ----------
    run_dir
        Folder written by :func:`train`.
    checkpoint
        ``"best"`` or ``"last"`` (or a file name in ``run_dir``).
    device
        Where to put the model.

    Raises
    ------
    isslide_cube.schema.TrainingError
        When the run or checkpoint is missing.

    Examples
    --------
    >>> model, config = load_run("runs/resunet")  # doctest: +SKIP
    >>> config["model"], config["in_channels"]    # doctest: +SKIP
    ('resunet', 3)
    """
    run_dir = Path(run_dir)
    path = run_dir / (checkpoint if checkpoint.endswith(".pt") else f"{checkpoint}.pt")
    if not (run_dir / "config.json").exists() or not path.exists():
        raise TrainingError(f"{path} not found: train a model into {run_dir} first "
                            "(`isslide-cube train PATCHES RUN_DIR`)")
    config = json.loads((run_dir / "config.json").read_text())
    net = models.build_model(config["model"], config["in_channels"], config["n_times"],
                             **config.get("model_kwargs", {}))
    ckpt = torch.load(path, map_location=device, weights_only=True)
    net.load_state_dict(ckpt["model"])
    return net.to(device).eval(), config
