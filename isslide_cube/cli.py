"""``isslide-cube``: the command line.

Every sub-command parses its arguments here and calls one library function;
heavy imports (dask, torch) happen inside the handlers so ``--help`` is fast.

Examples
--------
.. code-block:: console

   $ isslide-cube synth raw --preset small --seed 0
   $ isslide-cube build raw cube.zarr --workers 2
   $ isslide-cube patches cube.zarr patches.zarr --split paper
   $ isslide-cube train patches.zarr runs/resunet --model resunet --preset quick
   $ isslide-cube evaluate runs/resunet patches.zarr
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from isslide_cube import __version__
from isslide_cube.schema import IsslideError

log = logging.getLogger("isslide_cube")

Handler = Callable[[argparse.Namespace], int]


# ----------------------------------------------------------------- synth
def _add_synth(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synth", help="write a synthetic raw ISSLIDE dataset",
                       description="Write a physically based synthetic raw dataset "
                       "(interferograms, annotations, layover, DEM, zones, manifest, truth).")
    p.add_argument("out", type=Path, help="output folder (must be empty or absent)")
    p.add_argument("--preset", default="small", help="tiny | small | paper (default: small)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty OUT")
    p.add_argument("--figures", action="store_true", help="also write quick-look PNGs")
    p.set_defaults(handler=_cmd_synth)


def _cmd_synth(args: argparse.Namespace) -> int:
    from isslide_cube import synthetic

    out = synthetic.generate(args.out, preset=args.preset, seed=args.seed,
                             overwrite=args.overwrite, progress=True)
    print(f"raw dataset written to {out}")
    if args.figures:
        for path in synthetic.quicklook(out):
            print(f"figure: {path}")
    return 0


# -------------------------------------------------------------- validate
def _add_validate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="check a raw folder (or a cube store)",
                       description="Report every problem of a raw folder, with file and fix.")
    p.add_argument("path", type=Path)
    p.set_defaults(handler=_cmd_validate)


def _cmd_validate(args: argparse.Namespace) -> int:
    from isslide_cube.schema import validate_raw

    report = validate_raw(args.path)
    print(report)
    return 0 if report else 1


# ----------------------------------------------------------------- build
def _add_build(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("build", help="build (or resume) a Zarr cube from raw interferograms",
                       description="Stack interferograms into a Zarr v3 cube on Dask; "
                       "rerun the same command to resume an interrupted build.")
    p.add_argument("source", type=Path, help="raw folder, or a manifest (.csv/.json)")
    p.add_argument("store", type=Path, help="Zarr store to write")
    p.add_argument("--annotations", type=Path, default=None,
                   help="folder of annotation vectors (default: SOURCE/annotations)")
    p.add_argument("--chunk", type=int, default=None, help="spatial chunk size in pixels")
    p.add_argument("--scheduler", default=None, help="Dask scheduler address (default: local)")
    p.add_argument("--workers", type=int, default=None, help="local Dask workers")
    p.add_argument("--align", action="store_true",
                   help="reproject files on another grid onto the reference grid")
    p.add_argument("--all-touched", action="store_true",
                   help="rasterize every pixel a polygon touches")
    p.add_argument("--overwrite", action="store_true", help="replace a store built from other inputs")
    p.set_defaults(handler=_cmd_build)


def _cmd_build(args: argparse.Namespace) -> int:
    from isslide_cube.cluster import local_client
    from isslide_cube.cube import build_cube

    with local_client(args.scheduler, n_workers=args.workers) as client:
        summary = build_cube(args.source, args.store, annotations=args.annotations,
                             chunks=args.chunk, client=client, overwrite=args.overwrite,
                             align=args.align, all_touched=args.all_touched, progress=True)
    print(summary)
    return 0


# --------------------------------------------------------------- patches
def _add_patches(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("patches", help="extract the ready-to-use patches from a cube",
                       description="Global annotation map -> move centres -> patches around "
                       "every moving area on every interferogram -> split, written to Zarr.")
    p.add_argument("cube", type=Path, help="cube store written by `build`")
    p.add_argument("out", type=Path, help="patches Zarr store to write")
    p.add_argument("--size", type=int, default=100, help="patch side in pixels (default: 100)")
    p.add_argument("--split", default="paper", help="paper | temporal | spatial | none")
    p.add_argument("--seed", type=int, default=0, help="seed of the split (default: 0)")
    p.add_argument("--scheduler", default=None, help="Dask scheduler address (default: local)")
    p.add_argument("--workers", type=int, default=None, help="local Dask workers")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    p.set_defaults(handler=_cmd_patches)


def _cmd_patches(args: argparse.Namespace) -> int:
    from isslide_cube.cluster import local_client
    from isslide_cube.patches import write_patches

    with local_client(args.scheduler, n_workers=args.workers) as client:
        summary = write_patches(args.cube, args.out, size=args.size, split=args.split,
                                seed=args.seed, overwrite=args.overwrite, client=client,
                                progress=True)
    print(summary)
    return 0


# ----------------------------------------------------------------- train
def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a segmentation model on a patches store",
                       description="Train on split == 'train', validate on 'eval' each epoch; "
                       "BCE + Adam; checkpoints last.pt/best.pt and history.csv in RUN_DIR. "
                       "Several --model or --seed values train every model with every seed at "
                       "once in one process (shared data, interleaved steps; one CUDA stream "
                       "each on a GPU), each in RUN_DIR/<model>-s<seed>.")
    p.add_argument("patches", type=Path, help="patches store written by `patches`")
    p.add_argument("run_dir", type=Path, help="folder of this run (of the runs, when several)")
    p.add_argument("--model", nargs="+", default=["resunet"], metavar="NAME",
                   help="name(s) of isslide_cube.ml.models.MODELS (default: resunet)")
    p.add_argument("--preset", default="quick", help="paper | quick (default: quick)")
    p.add_argument("--epochs", type=int, default=None, help="override the preset's epochs")
    p.add_argument("--lr", type=float, default=None, help="override the preset's learning rate")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seed", type=int, nargs="+", default=[0], metavar="S",
                   help="seed(s) (default: 0)")
    p.add_argument("--num-workers", type=int, default=0, help="DataLoader worker processes")
    p.add_argument("--weights", type=Path, default=None,
                   help="local file of pre-trained weights (never downloaded)")
    p.add_argument("--temporal", default=None,
                   help="multi-temporal input: start | end | consecutive:K (default: single)")
    p.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR")
    p.add_argument("--overwrite", action="store_true", help="replace a different run in RUN_DIR")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
    p.add_argument("--amp", action="store_true",
                   help="mixed precision (bfloat16 autocast) on CUDA; ignored on the CPU")
    p.add_argument("--compile", action="store_true",
                   help="capture each training step as CUDA graphs "
                        "(torch.compile mode='reduce-overhead'): for a launch-bound GPU")
    p.set_defaults(handler=_cmd_train)


def _cmd_train(args: argparse.Namespace) -> int:
    common = dict(preset=args.preset, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                  num_workers=args.num_workers, weights=args.weights, temporal=args.temporal,
                  resume=args.resume, overwrite=args.overwrite, device=args.device,
                  amp=args.amp, compile=args.compile, progress=True)
    if len(args.model) == 1 and len(args.seed) == 1:
        from isslide_cube.ml.training import train

        print(train(args.patches, args.run_dir, model=args.model[0], seed=args.seed[0], **common))
        return 0
    from isslide_cube.ml.many import train_many

    for result in train_many(args.patches, args.run_dir, models=args.model, seeds=args.seed,
                             **common):
        print(result)
    return 0


# -------------------------------------------------------------- evaluate
def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="score a trained run (Table I metrics and figures)",
                       description="Predict with RUN_DIR/best.pt, write metrics.json and "
                       "figures, print a Table I-style table.")
    p.add_argument("run_dir", type=Path)
    p.add_argument("patches", type=Path)
    p.add_argument("--split", default="eval", help="which split to score (default: eval)")
    p.add_argument("--compare", type=Path, nargs="*", default=(),
                   help="other run folders to put in the same table")
    p.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
    p.set_defaults(handler=_cmd_evaluate)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from isslide_cube.evaluation import evaluate_run

    report = evaluate_run(args.run_dir, args.patches, split=args.split,
                          compare=tuple(args.compare), figures=not args.no_figures,
                          device=args.device)
    print(report)
    return 0


# --------------------------------------------------------------- predict
def _add_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="full-scene probability maps and move polygons",
                       description="Slide a trained model over whole interferograms of a cube; "
                       "write one COG per interferogram and a GeoPackage of moving areas.")
    p.add_argument("run_dir", type=Path)
    p.add_argument("cube", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--threshold", type=float, default=None,
                   help="probability of a moving pixel (default: the run's F1-optimal one)")
    p.add_argument("--zarr", action="store_true", help="also write the probability beside the cube")
    p.add_argument("--scheduler", default=None, help="Dask scheduler address (default: local)")
    p.add_argument("--workers", type=int, default=None, help="local Dask workers")
    p.set_defaults(handler=_cmd_predict)


def _cmd_predict(args: argparse.Namespace) -> int:
    from isslide_cube.cluster import local_client
    from isslide_cube.ml.scene import predict_scenes

    with local_client(args.scheduler, n_workers=args.workers) as client:
        summary = predict_scenes(args.run_dir, args.cube, args.out, threshold=args.threshold,
                                 write_zarr=args.zarr, client=client, progress=True)
    print(summary)
    return 0


# ----------------------------------------------------------------- paper
def _add_paper(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("paper", help="the paper's whole protocol: seven models, Table I, Figure 3",
                       description="Train and evaluate FCN-S/P, DeepLabV3-S/P, UNet, ResUNet, "
                       "SepUNet on a patches store; --quick for a CPU-sized run.")
    p.add_argument("patches", type=Path)
    p.add_argument("out", type=Path, help="folder holding one run per configuration")
    p.add_argument("--quick", action="store_true", help="few epochs (CPU, under an hour)")
    p.add_argument("--weights", type=Path, default=None,
                   help="folder with fcn_resnet50.pth / deeplabv3_resnet50.pth (PASCAL VOC)")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--parallel", type=int, default=None,
                   help="configurations trained at once (default: all on CUDA, 1 on CPU)")
    p.add_argument("--only", nargs="+", default=None, metavar="LABEL",
                   help="run only these configurations (e.g. UNet ResUNet)")
    p.add_argument("--epochs", type=int, default=None, help="override the preset's epochs")
    p.set_defaults(handler=_cmd_paper)


def _cmd_paper(args: argparse.Namespace) -> int:
    from isslide_cube.protocol import run_paper

    print(run_paper(args.patches, args.out, quick=args.quick, weights=args.weights,
                    device=args.device, seed=args.seed, parallel=args.parallel,
                    only=None if args.only is None else tuple(args.only), epochs=args.epochs))
    return 0


# ------------------------------------------------------------------ demo
def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the main job end to end on the embedded defaults",
                       description="Synthesize `small`, build the cube on a local Dask cluster, "
                       "extract patches, split, train a quick model, evaluate.")
    p.add_argument("out", type=Path, nargs="?", default=Path("demo_output"))
    p.add_argument("--preset", default="small")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=_cmd_demo)


def _cmd_demo(args: argparse.Namespace) -> int:
    from isslide_cube.demo import run_demo

    print(run_demo(args.out, preset=args.preset, n_workers=args.workers, seed=args.seed))
    return 0


# ---------------------------------------------------------------- parser
ADDERS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_synth, _add_validate, _add_build, _add_patches, _add_train, _add_evaluate,
    _add_predict, _add_paper, _add_demo,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="isslide-cube",
        description="Sentinel-1 InSAR interferograms -> Zarr cube -> patches -> "
        "deep learning for slow-moving ground (the ISSLIDE dataset).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in ADDERS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    # distributed logs every worker start and stop at INFO; keep a plain run readable.
    for name in ("distributed", "bokeh", "tornado"):
        logging.getLogger(name).setLevel(logging.ERROR if args.verbose < 2 else logging.INFO)
    try:
        return args.handler(args)
    except IsslideError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
