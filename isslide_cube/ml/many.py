"""Several training runs at once in one process: one copy of the data, interleaved steps.

At batch 8 on 100 x 100 patches a GPU is launch-bound: the training issue measured
9.2 ms per ResUNet step in eager PyTorch on an H200, far below what the GPU can
compute. Several small runs (models, seeds) therefore fit in the time of one if
their kernels are queued side by side. :func:`train_many` does that in one
process:

* the patches are read once and shared (on the device with ``device_data``): runs
  whose training samples are the same share the arrays, each with its own seed
  and augmentation;
* each run is :func:`isslide_cube.ml.training.fit_steps`, the generator that
  :func:`~isslide_cube.ml.training.train` drives alone; here a round robin
  advances every run by one step in turn, each under its own RNG states
  (:class:`RngSlot`) and, on CUDA, its own ``torch.cuda.Stream``, so the host queues run B's kernels while
  run A's execute, and no run waits on another's synchronisation (a run syncs only
  at the end of its epochs, for its losses and checkpoint);
* ``compile=True`` captures each run's step as CUDA graphs
  (``torch.compile(mode="reduce-overhead")``).

Each run writes ``RUN_DIR/<name>/`` (``name`` defaults to ``<model>-s<seed>``) in
exactly the layout of :func:`~isslide_cube.ml.training.train`, so ``load_run``,
``evaluate_run`` and ``train(..., resume=True)`` work on each, and on the CPU
every run's weights are bit-identical to the same run trained alone (same seed:
same initialisation, order and augmentation; deterministic algorithms). On the
CPU interleaving buys no speed (the cores are the limit); it is there so the
code path is the one a GPU runs.

Examples
--------
>>> results = train_many("patches.zarr", "runs", models=["unet", "resunet"],
...                      seeds=[0, 1], preset="paper")             # doctest: +SKIP
>>> [r.run_dir.name for r in results]                              # doctest: +SKIP
['unet-s0', 'unet-s1', 'resunet-s0', 'resunet-s1']
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import random
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from isslide_cube.ml import datasets, rundir, training
from isslide_cube.ml import models as models_module
from isslide_cube.ml.transforms import augmentation
from isslide_cube.schema import TrainingError

log = logging.getLogger(__name__)

#: settings that may differ between runs (the keywords of ``training.make_config``)
RUN_KEYS = tuple(k for k in inspect.signature(training.make_config).parameters if k != "patches")


class RngSlot:
    """A run's own python, numpy, torch (and CUDA) RNG states, swapped in while it steps.

    The global generators are shared by every run of the process; a run that draws
    from them (model initialisation, dropout) must see exactly the draws it would
    see alone. ``with slot.active():`` installs the run's states and saves them
    back on exit. Torch's states swap in a microsecond (the CUDA one is host-side:
    no sync); python's and numpy's cost tens of microseconds, so
    ``active(host=False)`` leaves them alone, for the training steps, which never
    draw from them (augmentation draws from per-sample generators).

    Examples
    --------
    >>> a, b = RngSlot(torch.device("cpu")), RngSlot(torch.device("cpu"))
    >>> with a.active():
    ...     _ = torch.manual_seed(0)
    >>> with b.active():
    ...     _ = torch.manual_seed(1)
    >>> with a.active(host=False):  # a's draws, whatever b did meanwhile
    ...     x = torch.rand(1)
    >>> bool(x == torch.rand(1, generator=torch.Generator().manual_seed(0)))
    True
    """

    def __init__(self, device: torch.device):
        self.cuda = device.index or 0 if device.type == "cuda" else None
        self.torch: tuple[torch.Tensor, torch.Tensor | None] | None = None
        self.host: tuple[Any, Any] | None = None

    @contextlib.contextmanager
    def active(self, host: bool = True) -> Iterator[None]:
        if self.torch is not None:
            torch.set_rng_state(self.torch[0])
            if self.cuda is not None:
                torch.cuda.set_rng_state(self.torch[1], self.cuda)
        if host and self.host is not None:
            random.setstate(self.host[0])
            np.random.set_state(self.host[1])
        try:
            yield
        finally:
            cuda = torch.cuda.get_rng_state(self.cuda) if self.cuda is not None else None
            self.torch = (torch.get_rng_state(), cuda)
            if host:
                self.host = (random.getstate(), np.random.get_state())


@dataclass
class _Run:
    name: str
    config: dict[str, Any]
    run_dir: Path
    resuming: bool
    train_ds: Any
    eval_ds: Any
    device_batches: dict[str, datasets.DeviceBatches] | None = None
    steps: Generator[None, None, training.TrainingResult] | None = None
    rng: RngSlot | None = None
    stream: Any = None
    host_rng: bool = True  # the next step seeds or reads the python/numpy RNGs
    result: training.TrainingResult | None = field(default=None, repr=False)

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        stream = torch.cuda.stream(self.stream) if self.stream is not None else contextlib.nullcontext()
        with self.rng.active(host=self.host_rng), stream:
            yield


def run_specs(runs: Iterable[dict[str, Any]] | None = None, *,
              models: str | Sequence[str] | None = None, seeds: int | Sequence[int] | None = None,
              **defaults: Any) -> list[dict[str, Any]]:
    """The runs to train, each a dict of :data:`RUN_KEYS` plus its ``name``.

    Either ``runs`` (dicts of per-run settings, e.g. ``{"model": "unet", "seed": 1,
    "lr": 1e-4}``, each may give its ``name``) or every pair of ``models`` x ``seeds``;
    ``defaults`` apply to every run unless the run sets them.

    Raises
    ------
    isslide_cube.schema.TrainingError
        No runs, both ``runs`` and ``models``/``seeds``, an unknown setting or model
        (the valid ones listed), two runs with the same name.

    Examples
    --------
    >>> [s["name"] for s in run_specs(models=["unet", "resunet"], seeds=[0, 1])]
    ['unet-s0', 'unet-s1', 'resunet-s0', 'resunet-s1']
    """
    if runs is not None and (models is not None or seeds is not None):
        raise TrainingError("give either runs=[{...}, ...] or models=/seeds=, not both")
    if runs is None:
        model_list = [models] if isinstance(models, str) else list(models or ["resunet"])
        seed_list = [seeds] if isinstance(seeds, int) else list(seeds if seeds is not None else [0])
        runs = [{"model": m, "seed": s} for m in model_list for s in seed_list]
    allowed = set(RUN_KEYS) | {"name"}
    specs = []
    for run in runs:
        unknown = sorted(set(run) - allowed) + sorted(set(defaults) - set(RUN_KEYS))
        if unknown:
            raise TrainingError(f"unknown run setting(s) {unknown}; each run takes "
                                f"{', '.join(sorted(allowed))}")
        spec = {**defaults, **run}
        spec.setdefault("model", "resunet")
        spec.setdefault("seed", 0)
        spec.setdefault("name", f"{spec['model']}-s{spec['seed']}")
        specs.append(spec)
    if not specs:
        raise TrainingError("no runs to train: give at least one model and one seed")
    bad = sorted({s["model"] for s in specs} - set(models_module.MODELS))
    if bad:
        raise TrainingError(f"unknown model(s) {', '.join(map(repr, bad))}; choose from "
                            f"{', '.join(sorted(models_module.MODELS))}")
    names = [s["name"] for s in specs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise TrainingError(f"duplicate run(s) {twice}: each run needs its own sub-folder; drop the "
                            "repeated model/seed or give each run a distinct 'name'")
    return specs


def _view(obj: Any) -> Any:
    """A shallow copy that shares every attribute, open handles included.

    Not ``copy.copy``: that goes through ``__getstate__``, which drops a dataset's
    store handle and caches (right for a worker process, wrong for a view in the
    same process).
    """
    view = object.__new__(type(obj))
    view.__dict__.update(obj.__dict__)
    return view


class _SharedData:
    """One copy of each distinct train/eval side; every run gets a shallow view of it.

    A view (:func:`_view`) shares the arrays, store handle and chunk cache and sets
    the run's own ``seed`` and ``transform``: what a dataset built for the run
    alone would hold. Runs share a train side held in memory unless their samples
    differ (``temporal``, ``validity``, or a ``max_train_samples`` subset that
    depends on the seed); a streaming side holds no copy to share, so each run
    streams its own (its own chunk order and cache).
    """

    def __init__(self, patches: str | Path, in_memory: bool | str, dev: torch.device):
        self.patches, self.in_memory, self.dev = patches, in_memory, dev
        self._n_train: int | None = None
        self._sides: dict[tuple, Any] = {}
        self._device: dict[tuple, datasets.DeviceBatches] = {}

    def _key(self, config: dict[str, Any], split: str) -> tuple:
        key: tuple = (split, config["temporal"], config["validity"])
        limit = config["max_train_samples"]
        if split == "train" and limit is not None:
            if self._n_train is None:
                store = datasets.open_patches_store(self.patches)
                self._n_train = len(datasets.select_samples(store, "train", source=str(self.patches)))
            if self._n_train > limit:  # a seeded subset: its own samples
                key += (limit, config["seed"])
        return key

    def sides(self, config: dict[str, Any]) -> tuple[Any, Any]:
        out = []
        for split in ("train", "eval"):
            key = self._key(config, split)
            base = self._sides.get(key)
            if base is None:
                base = self._sides[key] = training._dataset(self.patches, config, split,
                                                            self.in_memory)
            elif not base.in_memory:  # streaming: each run its own reader, order and chunk cache
                base = training._dataset(self.patches, config, split, self.in_memory)
            view = _view(base)
            view.seed = config["seed"]
            view.transform = augmentation(**config["augment"]) if split == "train" else None
            out.append(view)
        return out[0], out[1]

    def device_batches(self, config: dict[str, Any]) -> dict[str, datasets.DeviceBatches]:
        out = {}
        for split in ("train", "eval"):
            key = self._key(config, split)
            if key not in self._device:
                self._device[key] = datasets.DeviceBatches(self._sides[key], self.dev,
                                                           shuffle=split == "train")
            view = _view(self._device[key])  # shares the tensors on the device
            view.seed = config["seed"]
            view.phase_offset = split == "train" and bool(config["augment"].get("phase_offset"))
            out[split] = view
        return out


def train_many(
    patches: str | Path,
    run_dir: str | Path,
    runs: Iterable[dict[str, Any]] | None = None,
    *,
    models: str | Sequence[str] | None = None,
    seeds: int | Sequence[int] | None = None,
    parallel: int | None = None,
    num_workers: int = 0,
    device: str = "auto",
    progress: bool = False,
    in_memory: bool | str = "auto",
    amp: bool = False,
    device_data: bool | None = None,
    compile: bool = False,
    resume: bool = False,
    overwrite: bool = False,
    on_finish: Callable[[training.TrainingResult], None] | None = None,
    **defaults: Any,
) -> list[training.TrainingResult]:
    """Train several runs at once on one device, each into ``run_dir/<name>``.

    Parameters
    ----------
    patches
        Patches Zarr store with a ``split`` coordinate (read once for all runs).
    run_dir
        Parent folder; run ``name`` writes ``run_dir/name`` exactly as
        :func:`isslide_cube.ml.training.train` writes its folder.
    runs
        Dicts of per-run settings (keywords of :func:`.training.make_config`:
        ``model``, ``seed``, ``preset``, ``epochs``, ``lr``, ``batch_size``,
        ``model_kwargs``, ``augment``, ``weights``, ``temporal``, ``validity``,
        ``max_train_samples``, ``prior_bias``) and optionally ``name``
        (default ``<model>-s<seed>``).
    models, seeds
        Instead of ``runs``: every model with every seed.
    parallel
        Runs stepping at once (default: all); the next starts when one finishes.
    num_workers, device, progress, in_memory, amp, device_data, compile, resume, overwrite
        As in :func:`.training.train`, for every run (``resume``: each run continues
        its own folder; a run whose folder is new starts).
    on_finish
        Called with each run's :class:`.training.TrainingResult` as it finishes.
    **defaults
        Per-run settings applied to every run that does not set them.

    Returns
    -------
    list of TrainingResult
        In the order of the runs.

    Raises
    ------
    isslide_cube.schema.TrainingError
        Bad runs (see :func:`run_specs`), and everything :func:`.training.train`
        refuses, for any run, before any run starts training. An error while
        training stops every run; each keeps its last finished epoch, so the
        same call with ``resume=True`` continues them all.

    Examples
    --------
    >>> results = train_many("patches.zarr", "runs", models=["resunet", "sepunet"],
    ...                      seeds=[0, 1, 2], preset="paper", compile=True)  # doctest: +SKIP
    >>> from isslide_cube.ml.training import load_run
    >>> model, config = load_run("runs/resunet-s1")                          # doctest: +SKIP
    """
    specs = run_specs(runs, models=models, seeds=seeds, **defaults)
    dev = training.resolve_device(device)
    parallel = len(specs) if parallel is None else int(parallel)
    if parallel < 1:
        raise TrainingError(f"parallel must be >= 1 (got {parallel})")
    shared = _SharedData(patches, in_memory, dev)
    todo: list[_Run] = []
    for spec in specs:  # every check before any training
        config = training.make_config(patches, **{k: v for k, v in spec.items() if k != "name"})
        train_ds, eval_ds = shared.sides(config)
        training._check_sides(patches, train_ds, eval_ds, config)
        training._use_device_data(config, train_ds, dev, device_data)
        todo.append(_Run(spec["name"], config, Path(run_dir) / spec["name"], False,
                         train_ds, eval_ds))
    for run in todo:
        run.run_dir.mkdir(parents=True, exist_ok=True)
        run.resuming = rundir.prepare_run_dir(run.run_dir, run.config, resume, overwrite)
        if run.config["device_data"]:
            run.device_batches = shared.device_batches(run.config)
    log.info("training %d runs, %d at once, on %s: %s", len(todo), min(parallel, len(todo)), dev,
             ", ".join(r.name for r in todo))
    with training.training_context(dev):
        _interleave(todo, parallel, dev, on_finish=on_finish, num_workers=num_workers, amp=amp,
                    progress=progress, compile=compile)
    return [r.result for r in todo]


def _interleave(todo: list[_Run], parallel: int, dev: torch.device, *,
                on_finish: Callable[[training.TrainingResult], None] | None,
                **fit: Any) -> None:
    """Round robin: one step of each active run in turn until every run has finished."""
    pending, active = list(todo), []
    position = 0
    while pending or active:
        while pending and len(active) < parallel:
            run = pending.pop(0)
            run.rng = RngSlot(dev)
            if dev.type == "cuda":
                run.stream = torch.cuda.Stream(dev)
                run.stream.wait_stream(torch.cuda.current_stream(dev))  # shared data uploaded
            run.steps = training.fit_steps(run.config, run.run_dir, run.train_ds, run.eval_ds,
                                           run.resuming, dev, device_batches=run.device_batches,
                                           position=position, **fit)
            position += 1
            active.append(run)
        for run in list(active):
            with run.active():
                try:
                    run.host_rng = next(run.steps) == training.HOST_RNG
                    continue
                except StopIteration as stop:
                    run.result = stop.value
            active.remove(run)
            if dev.type == "cuda":
                run.stream.synchronize()
            log.info("%s", run.result)
            if on_finish is not None:
                on_finish(run.result)
