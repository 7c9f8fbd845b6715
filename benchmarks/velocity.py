"""Per-move LOS velocity from the cube's phase against the synthetic truth (issue 8).

For each preset and each variant of the generator's phase, generate raw data (seed 0),
build the cube, tabulate every annotated move over its interferograms
(``isslide_cube.tracking.move_time_series``) and compare the per-move velocity with
``truth/moves.csv`` (``compare_with_truth``) on the rows *without fringe ambiguity*
(the true peak motion over the delay under 0.8 x half a fringe, i.e. a phase under
0.8 pi, the move active throughout the interferogram, and the estimator's own flag
down). Variants, to separate the causes of the error:

* ``as generated``: the preset as it is (L-look noise, turbulent + stratified
  atmosphere, Goldstein filter alpha 1 on the SLC-equivalent 32 x 8 px blocks);
* ``Goldstein 64 px``: the same with the former 64 x 64 px blocks on the output grid
  (8 x too wide in range, 2 x in azimuth: the before of the window fix);
* ``no Goldstein``: the same with ``goldstein_alpha=0`` (the unfiltered multilooked
  interferogram: same noise, same atmosphere);
* ``no atmosphere``: the preset's filter, no atmosphere (``atmosphere_std_range=(0, 0)``,
  ``stratified_std=0``): noise and filter only;
* ``clean``: ``goldstein_alpha=0`` and no atmosphere (``atmosphere_std_range=(0, 0)``,
  ``stratified_std=0``): the deformation phase with its L-look noise only.

The annotations and the truth do not depend on the variant (the annotator works on
the true deformation and coherence), so every variant has the same moves and rows.
Each variant is scored with the current estimator (ring 3 px beyond the outline,
the 10 % most extreme smoothed phases of the move, stacking) and with the previous
one (ring touching the outline, deepest pixels with core 0.7, median, the table's
own flag only), in the same run.

``--peak`` adds, per move of the first variant's raw data, the share of the peak phase each
Goldstein setting keeps on the move's deformation phase alone (no noise, no atmosphere,
no other move; scaled to a peak of ``PROBE`` rad, unambiguous): the former 64 px blocks,
the current 32 x 8 px, and SNAP's order as a reference (the phase upsampled 2 x 8 to the
single-look grid, 64 px blocks, then 2 x 8 complex multilooking).

    .venv/bin/python -m benchmarks.velocity --quick        # tiny only
    nice -n 19 .venv/bin/python -m benchmarks.velocity     # tiny and small
    nice -n 19 .venv/bin/python -m benchmarks.velocity --peak \
        --variants "as generated" "Goldstein 64 px"           # the window fix, before/after
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd

VARIANTS = {
    "as generated": {},
    "Goldstein 64 px": {"goldstein_window": 64, "goldstein_step": 32},
    "no Goldstein": {"goldstein_alpha": 0.0},
    "no atmosphere": {"atmosphere_std_range": (0.0, 0.0), "stratified_std": 0.0},
    "clean": {"goldstein_alpha": 0.0, "atmosphere_std_range": (0.0, 0.0), "stratified_std": 0.0},
}
#: peak phase (rad) of the probe in ``peak_kept``: a quarter fringe, unambiguous
PROBE = 0.5 * np.pi
#: Goldstein settings compared by ``peak_kept``: (window, step) on the output grid, or
#: "slc" for SNAP's order (64 px on the 2 x 8 upsampled grid, then 2 x 8 looks)
PEAK_SETTINGS = {"64 px (before)": (64, 32), "32 x 8 px (now)": ((32, 8), (16, 4)),
                 "SLC 64 px, then 2 x 8 looks": "slc"}
#: the estimator before this benchmark (for the before/after in the same run)
PREVIOUS = {"series": {"ring": 5, "gap": 0, "peak": "depth", "core": 0.7, "min_core": 1},
            "compare": {"how": "median", "truth_margin": None}}


def _markdown(df: pd.DataFrame) -> str:
    def fmt(v):
        if isinstance(v, (float, np.floating)):
            return "" if np.isnan(v) else f"{v:.3f}"
        return str(v)

    head = "| " + " | ".join(map(str, df.columns)) + " |"
    rule = "|" + "---|" * len(df.columns)
    body = ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def run_variant(preset: str, variant: str, out: Path) -> dict:
    """Generate, build, estimate; returns the per-move tables and timings."""
    from isslide_cube import synthetic
    from isslide_cube.cube import build_cube, open_cube
    from isslide_cube.tracking import compare_with_truth, move_time_series, truth_ambiguous

    root = out / f"{preset}_{variant.replace(' ', '_')}"
    t0 = time.perf_counter()
    raw = synthetic.generate(root / "raw", preset=preset, seed=0, overwrite=True,
                             **VARIANTS[variant])
    build_cube(raw, root / "cube.zarr", overwrite=True)
    t_build = time.perf_counter() - t0
    cube = open_cube(root / "cube.zarr")
    truth = pd.read_csv(raw / "truth" / "moves.csv")
    c0, t0 = time.process_time(), time.perf_counter()
    table = move_time_series(cube, hausdorff=False)
    t_est, c_est = time.perf_counter() - t0, time.process_time() - c0
    table.to_csv(root / "move_time_series.csv", index=False)
    new = compare_with_truth(table, truth)
    old_table = move_time_series(cube, hausdorff=False, **PREVIOUS["series"])
    old = compare_with_truth(old_table, truth, **PREVIOUS["compare"])
    # honesty of the estimator's own (data-only) flag against the truth's
    t_amb = truth_ambiguous(table, truth)
    missed = int((t_amb & ~table["ambiguous"].to_numpy()).sum())
    return {"new": new, "old": old, "truth": truth, "rows": len(table),
            "truth_ambiguous_rows": int(t_amb.sum()), "flag_missed": missed,
            "build_s": t_build, "estimate_s": t_est, "estimate_cpu_s": c_est}


def per_move(res: dict) -> pd.DataFrame:
    truth = res["truth"].set_index("move_id")
    new = res["new"].set_index("move_id")
    old = res["old"].set_index("move_id")
    ids = sorted(set(new.index) | set(old.index))
    df = pd.DataFrame({
        "move_id": ids,
        "class": [truth.loc[k, "class"] for k in ids],
        "v_true m/yr": [truth.loc[k, "los_velocity_m_per_yr"] for k in ids],
        "fringes 6d": [truth.loc[k, "fringes_6d"] for k in ids],
        "rows": [int(new["n_rows"].get(k, 0)) for k in ids],
        "v_est m/yr": [new["velocity_est"].get(k, np.nan) for k in ids],
        "rel err": [new["relative_error"].get(k, np.nan) for k in ids],
        "previous v_est": [old["velocity_est"].get(k, np.nan) for k in ids],
        "previous rel err": [old["relative_error"].get(k, np.nan) for k in ids],
    })
    return df


def _filtered(phase: np.ndarray, setting) -> np.ndarray:
    from scipy import ndimage

    from isslide_cube.synthetic.goldstein import goldstein

    if setting != "slc":
        return goldstein(phase, 1.0, *setting)
    looks = (2, 8)  # azimuth (rows) x range (cols), DESIGN.md's 8 x 2 (range x azimuth)
    slc = ndimage.zoom(phase, looks, order=1, mode="nearest", grid_mode=True)
    z = np.exp(1j * goldstein(slc, 1.0, 64, 32)).astype("complex64")
    ny, nx = phase.shape
    return np.angle(z.reshape(ny, looks[0], nx, looks[1]).mean(axis=(1, 3)))


def peak_kept(raw: Path, margin: int = 64) -> pd.DataFrame:
    """Share of a move's peak phase kept by each of :data:`PEAK_SETTINGS`.

    Each move's displacement (its largest over the pairs, the other moves zeroed) is
    scaled to a peak of :data:`PROBE` rad and cropped with ``margin`` px of stable ground
    around it; the kept share is the filtered phase over the true one, both averaged on
    the pixels above 90 % of the true peak.
    """
    import rasterio

    with rasterio.open(raw / "truth" / "move_footprint.tif") as f:
        footprint = f.read(1)
    disp = []
    for tif in sorted((raw / "truth" / "los_displacement").glob("*.tif")):
        with rasterio.open(tif) as f:
            disp.append(np.nan_to_num(f.read(1)))
    disp = np.stack(disp)
    rows = []
    for k in np.unique(footprint[footprint > 0]):
        inside = footprint == k
        d = np.where(inside, disp, 0.0)
        d = d[np.abs(d).reshape(len(d), -1).max(axis=1).argmax()]
        peak = d[inside][np.abs(d[inside]).argmax()]
        if peak == 0:
            continue
        ys, xs = np.nonzero(inside)
        y0, x0 = max(ys.min() - margin, 0), max(xs.min() - margin, 0)
        y1 = min(ys.max() + margin + 1, d.shape[0])
        x1 = min(xs.max() + margin + 1, d.shape[1])
        phase = (PROBE * d[y0:y1, x0:x1] / peak).astype("float32")
        top = phase >= 0.9 * PROBE
        row = {"move_id": int(k), "pixels": int(inside.sum())}
        for name, setting in PEAK_SETTINGS.items():
            row[name] = float(_filtered(phase, setting)[top].mean() / phase[top].mean())
        rows.append(row)
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny preset only")
    parser.add_argument("--presets", nargs="+", default=["tiny", "small"])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--out", type=Path, default=Path("/tmp/isslide_bench_velocity"))
    parser.add_argument("--peak", action="store_true",
                        help="also tabulate the peak share kept by each Goldstein window")
    args = parser.parse_args(argv)
    presets = ["tiny"] if args.quick else args.presets
    summary = []
    kept = []
    for preset in presets:
        for n_variant, variant in enumerate(args.variants):
            res = run_variant(preset, variant, args.out)
            if args.peak and n_variant == 0:
                pk = peak_kept(args.out / f"{preset}_{variant.replace(' ', '_')}" / "raw")
                print(f"\n### {preset}: share of a move's peak phase ({PROBE:.2f} rad) kept "
                      "by Goldstein (alpha 1), deformation only\n")
                print(_markdown(pk))
                kept.append((preset, len(pk), *(f"{pk[c].min():.2f} - {pk[c].max():.2f} "
                                                 f"(median {pk[c].median():.2f})"
                                                 for c in PEAK_SETTINGS)))
            df = per_move(res)
            ok_new = int((df["rel err"] < 0.2).sum())
            n_new = int(df["rel err"].notna().sum())
            ok_old = int((df["previous rel err"] < 0.2).sum())
            n_old = int(df["previous rel err"].notna().sum())
            print(f"\n### {preset}, {variant}: {ok_new} of {n_new} unambiguous moves within 20 % "
                  f"(previous estimator: {ok_old} of {n_old} moves it kept)\n")
            print(f"{res['rows']} rows, {res['truth_ambiguous_rows']} ambiguous by the truth, "
                  f"{res['flag_missed']} of those not flagged by the data-only `ambiguous`; "
                  f"generate + build {res['build_s']:.1f} s, move_time_series "
                  f"{res['estimate_s']:.1f} s wall / {res['estimate_cpu_s']:.1f} s CPU\n")
            print(_markdown(df))
            summary.append((preset, variant, f"{ok_new} / {n_new}", f"{ok_old} / {n_old}",
                            float(df["rel err"].median()) if n_new else np.nan))
    print("\n### Summary (moves within 20 % / moves compared)\n")
    print(_markdown(pd.DataFrame(summary, columns=["preset", "variant", "current", "previous",
                                                   "median rel err"])))
    if kept:
        print("\n### Peak share kept, min - max over moves\n")
        print(_markdown(pd.DataFrame(kept, columns=["preset", "moves", *PEAK_SETTINGS])))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    main()
