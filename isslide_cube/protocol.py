"""The paper's whole protocol: seven configurations trained, scored, Table I and Figure 3.

Configurations (DESIGN.md section 1): FCN-S, FCN-P, DeepLabV3-S, DeepLabV3-P (ResNet-50
backbones from scratch "S" or PASCAL-VOC pre-trained "P"), UNet, ResUNet, SepUNet. The
"-P" configurations need the pre-trained weights as local files (``weights`` folder
holding ``fcn_resnet50.pth`` and ``deeplabv3_resnet50.pth``; nothing is downloaded)
and are skipped without them.

Presets: ``quick=False`` trains each model with :mod:`isslide_cube.ml.training`'s
``paper`` preset (U-Nets lr 1e-5 for 300 epochs, FCN/DeepLabV3 lr 1e-7 for 600,
Adam, BCE, batch 8). ``quick=True`` uses its ``quick`` preset (U-Nets: 8 epochs, width 8,
here on at most ``QUICK_UNET_TRAIN_SAMPLES`` = 512 training patches per epoch;
FCN/DeepLabV3: 2 epochs on at most 256), the evaluation split kept whole. Projected
on an idle 2-core CPU at the paper's 572 evaluation patches (~0.1 s per training
patch for a U-Net, ~0.2 s for a ResNet-50 network, forward passes 2-4x cheaper):
about 10-15 minutes per U-Net and 4-5 minutes per FCN/DeepLabV3, 45 minutes in all
for the five configurations without weights. Not measured end to end on an idle
machine (the development machine was shared, with loads of 10-15 on 2 cores).

Running side by side. At batch 8 on 100 x 100 patches a GPU is launch-bound (the
training issue measured 9.2 ms/step for ResUNet and 26 ms/step for FCN-ResNet50 in
eager PyTorch on an H200, far below the GPU's arithmetic throughput), so on CUDA the
configurations train concurrently in this process with
:func:`isslide_cube.ml.many.train_many` (``parallel`` = all of them by default): one
copy of the patches on the device, the runs' steps interleaved, each on its own CUDA
stream, with the training issue's fast path ``compile=True``; ``parallel=1`` on CPU,
where the cores are the limit (interleaving there gives the same weights, no speed).
Projected time on one H100-class GPU, from those step times (603 steps per epoch at
4,821 patches): run one after another, FCN-S/P ~157 min each, DeepLabV3-S/P ~3 h
each, the three U-Nets ~28 min each: about 12 hours; side by side the wall time is
bounded below by the slowest configuration (DeepLabV3 at 600 epochs, ~3 h eager,
~1 h with the training issue's CUDA-graph fast path) and by the GPU's throughput
once the interleaved runs saturate it. This projection is not a measurement: no
GPU was available while this was written.

Example
-------
>>> print(run_paper("patches.zarr", "paper_runs", quick=True))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from isslide_cube.schema import SAMPLE, TrainingError

log = logging.getLogger(__name__)


#: training patches per epoch of the U-Nets under ``quick`` (the preset's 1,024 halved)
QUICK_UNET_TRAIN_SAMPLES = 512


@dataclass(frozen=True)
class Configuration:
    """One row of Table I."""

    label: str
    model: str
    pretrained: bool = False

    @property
    def slug(self) -> str:
        return self.label.lower().replace("-", "_")


CONFIGURATIONS = (
    Configuration("FCN-S", "fcn_resnet50"),
    Configuration("FCN-P", "fcn_resnet50", pretrained=True),
    Configuration("DeepLabV3-S", "deeplabv3_resnet50"),
    Configuration("DeepLabV3-P", "deeplabv3_resnet50", pretrained=True),
    Configuration("UNet", "unet"),
    Configuration("ResUNet", "resunet"),
    Configuration("SepUNet", "sepunet"),
)


def configurations(weights: str | Path | None = None,
                   only: tuple[str, ...] | None = None) -> list[tuple[Configuration, Path | None]]:
    """The configurations to run and the weights file of each (None: from scratch).

    Raises
    ------
    TrainingError
        ``weights`` is not a folder, or an unknown label in ``only``.
    """
    if weights is not None and not Path(weights).is_dir():
        raise TrainingError(f"weights={weights} is not a folder; give the folder holding "
                            "fcn_resnet50.pth and deeplabv3_resnet50.pth")
    labels = {c.label for c in CONFIGURATIONS}
    if only is not None and set(only) - labels:
        raise TrainingError(f"unknown configuration(s) {sorted(set(only) - labels)}; "
                            f"choose from {sorted(labels)}")
    out = []
    for conf in CONFIGURATIONS:
        if only is not None and conf.label not in only:
            continue
        file = None
        if conf.pretrained:
            file = Path(weights) / f"{conf.model}.pth" if weights is not None else None
            if file is None or not file.exists():
                log.warning("%s skipped: no pre-trained weights file %s", conf.label,
                            file or f"WEIGHTS/{conf.model}.pth")
                continue
        out.append((conf, file))
    return out


def _run_settings(conf: Configuration, weights: Path | None, quick: bool, seed: int,
                  epochs: int | None) -> dict[str, Any]:
    """The settings of one configuration's run (keywords of ``training.make_config``)."""
    kw = {"model": conf.model, "preset": "quick" if quick else "paper", "epochs": epochs,
          "seed": seed, "weights": weights}
    if quick and conf.model not in ("fcn_resnet50", "deeplabv3_resnet50"):
        kw["max_train_samples"] = QUICK_UNET_TRAIN_SAMPLES  # the CPU budget of --quick
    return kw


def _mark_done(result) -> None:
    (result.run_dir / "DONE").write_text(json.dumps({"seconds": result.seconds}))


def _is_done(run_dir: Path) -> bool:
    return (run_dir / "best.pt").exists() and (run_dir / "DONE").exists()


def run_paper(patches: str | Path, out: str | Path, quick: bool = False,
              weights: str | Path | None = None, device: str = "auto", seed: int = 0, *,
              parallel: int | None = None, only: tuple[str, ...] | None = None,
              epochs: int | None = None, fast: bool | None = None,
              progress: bool = True) -> str:
    """Train and evaluate every configuration of the paper; write Table I and Figure 3.

    Each configuration trains in ``OUT/<label>/`` (a finished run, marked by
    ``OUT/<label>/DONE``, is not retrained: rerun the command to resume the protocol),
    is scored on the ``eval`` split with :func:`isslide_cube.evaluation.evaluate` (own
    F1-optimal threshold), and ``OUT/table1.md``, ``OUT/table1.json``,
    ``OUT/figure3.png`` and ``OUT/curves.png`` are written.

    Parameters
    ----------
    patches
        Patches store with a ``split`` (``isslide-cube patches ... --split paper``).
    out
        Output folder.
    quick
        CPU-sized run (see the module docstring) instead of the paper's epochs.
    weights
        Folder with ``fcn_resnet50.pth`` / ``deeplabv3_resnet50.pth`` for the "-P" rows.
    device
        ``auto`` | ``cpu`` | ``cuda[:N]``.
    seed
        Seed of every training run.
    parallel
        Configurations trained at once, interleaved in this process
        (:func:`isslide_cube.ml.many.train_many`; default: all on CUDA, 1 on CPU).
    only
        Labels to run (default all seven).
    epochs
        Override the preset's epochs (all configurations).
    fast
        Train with ``compile=True`` (``torch.compile(mode="reduce-overhead")``: CUDA
        graphs); default on CUDA only.

    Returns
    -------
    str
        The Table I text and the paths written.
    """
    from isslide_cube.evaluation import evaluate, predict_run, report, select_split, write_metrics
    from isslide_cube.figures import curves_figure, figure3
    from isslide_cube.patches import open_patches

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    confs = configurations(weights, only)
    if not confs:
        raise TrainingError("no configuration to run")
    from isslide_cube.ml.training import resolve_device

    device = str(resolve_device(device))
    store = Path(patches)
    if parallel is None:
        parallel = len(confs) if device.startswith("cuda") else 1
    todo = [(c, w) for c, w in confs if not _is_done(out / c.slug)]
    t0 = time.perf_counter()
    if fast is None:
        fast = device.startswith("cuda")
    runs = [{"name": c.slug, **_run_settings(c, w, quick, seed, epochs)} for c, w in todo]
    # the training issue's fast path: CUDA graphs of the step, data on the device
    common = {"device": device, "compile": fast, "overwrite": True, "progress": progress}
    if parallel > 1 and len(todo) > 1:
        from isslide_cube.ml.many import train_many

        log.info("training %s, %d at once", ", ".join(c.label for c, _ in todo), parallel)
        train_many(store, out, runs, parallel=parallel, on_finish=_mark_done, **common)
    else:
        from isslide_cube.ml.training import train

        for (conf, _), run in zip(todo, runs, strict=True):
            log.info("training %s", conf.label)
            name = run.pop("name")
            _mark_done(train(store, out / name, **run, **common))
    log.info("training took %.0f s", time.perf_counter() - t0)

    ds = open_patches(store)
    sel = select_split(ds, "eval")
    mask = sel["mask"].load()
    results, probs = {}, {}
    for conf, _ in confs:
        prob, config = predict_run(out / conf.slug, ds, device=device, split="eval")
        res = evaluate(prob, mask)
        write_metrics(out / conf.slug, res, split="eval", patches=store, config=config)
        results[conf.label], probs[conf.label] = res, prob
    paths = [figure3(sel, probs, {k: r.threshold for k, r in results.items()},
                     out / "figure3.png"),
             curves_figure(results, out / "curves.png")]
    text = report(results, split="eval", n_patches=int(sel.sizes[SAMPLE]), paths=paths)
    (out / "table1.md").write_text(text + "\n")
    (out / "table1.json").write_text(json.dumps(
        {k: r.to_dict() for k, r in results.items()}, indent=1))
    return text + f"\nwrote {out / 'table1.md'}\nwrote {out / 'table1.json'}"
