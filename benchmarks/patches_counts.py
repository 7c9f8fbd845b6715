"""The ready-to-use dataset's counts beside the ISSLIDE paper's.

Locations, patches, with / without a move, and the ``paper`` split's train / eval
sides (moving patches only), from either

- a built cube (``--cube``): exactly what ``write_patches`` counts, or
- a raw folder (``--raw``): the annotation shapefiles rasterized here with
  ``rasterio.features.rasterize`` (``all_touched=False``, as ``build_cube``
  does) on the grid of ``layover.tif``; the interferograms themselves are not
  read, so the counts of a ``paper`` preset come in a minute; or
- a preset (``--simulate``): the annotation path of
  ``isslide_cube.synthetic.generate`` replayed with the same random streams
  (terrain, land cover, weather, moves, true coherence, the annotator, the
  repetition rule) but without atmosphere, speckle, Goldstein filtering or
  files, which do not change the annotations. Minutes instead of an hour at
  ``paper`` scale; ``--check`` compares it with ``--raw`` on a generated
  ``tiny`` dataset first.

Either way the same library functions count: ``move_centres`` on the global map,
``has_move`` = any ``mask == 1`` in the window, ``split(scheme="paper")``.

Usage::

    .venv/bin/python -m benchmarks.patches_counts --raw /tmp/bench/keep/paper/raw
    .venv/bin/python -m benchmarks.patches_counts --cube cube.zarr
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from isslide_cube import schema as s

PAPER = {"locations": 245, "patches": 13230, "with move": 8701, "without move": 4529,
         "train (with move)": 4821, "eval (with move)": 572}


def cube_from_raw(raw: Path) -> xr.Dataset:
    """A mask-only cube of a raw folder: annotations and zones rasterized on its grid."""
    import geopandas as gpd
    import rasterio
    import rioxarray  # noqa: F401
    from rasterio.features import rasterize

    with rasterio.open(raw / s.RAW_LAYOVER) as src:
        transform, crs, (ny, nx) = src.transform, src.crs, src.shape
    pairs = sorted(tuple(pd.Timestamp(d) for d in s.RAW_NAME_RE.match(p.stem).groups())
                   for p in (raw / s.RAW_INTERFEROGRAMS).glob("*.tif"))
    starts = sorted({a for a, _ in pairs})
    delays = sorted({(b - a).days for a, b in pairs})
    mask = np.full((len(starts), len(delays), ny, nx), s.MASK_FILL, dtype="uint8")
    has = np.zeros((len(starts), len(delays)), dtype=bool)
    for a, b in pairs:
        has[starts.index(a), delays.index((b - a).days)] = True
        layer = mask[starts.index(a), delays.index((b - a).days)]
        layer[:] = 0
        shp = raw / s.RAW_ANNOTATIONS / f"{s.raw_stem(a, b)}.shp"
        if shp.exists():
            polygons = gpd.read_file(shp)
            if len(polygons):
                polygons = polygons.to_crs(crs)
                rasterize(((g, 1) for g in polygons.geometry if g is not None and not g.is_empty),
                          out=layer, transform=transform, all_touched=False)
    zone = np.zeros((ny, nx), dtype="uint8")
    if (raw / s.RAW_ZONES).exists():
        zones = gpd.read_file(raw / s.RAW_ZONES).to_crs(crs)
        shapes = [(g, s.ZONES.index(n)) for g, n in zip(zones.geometry, zones["name"], strict=True)
                  if n in s.ZONES]
        if shapes:
            rasterize(shapes, out=zone, transform=transform)
    x = transform.c + transform.a * (np.arange(nx) + 0.5)
    y = transform.f + transform.e * (np.arange(ny) + 0.5)
    start = np.array(starts, dtype="datetime64[ns]")
    end = start[:, None] + np.array(delays, dtype="timedelta64[D]")[None, :]
    return xr.Dataset(
        {s.MASK: (s.MASK_DIMS, mask), s.ZONE: ((s.Y, s.X), zone, s.zone_attrs())},
        coords={s.START_DATE: start, s.DELAY: (s.DELAY, np.array(delays, "int64")),
                s.Y: y, s.X: x, s.END_DATE: ((s.START_DATE, s.DELAY), end),
                s.HAS_INTERFEROGRAM: ((s.START_DATE, s.DELAY), has)},
    ).rio.write_crs(crs)


def simulate_cube(preset: str = "paper", seed: int = 0) -> xr.Dataset:
    """Mask-only cube of the annotations ``generate(preset, seed)`` would write.

    Shares :func:`~isslide_cube.synthetic.generator.build_scene` and
    :func:`~isslide_cube.synthetic.generator.pair_motion` with the generator and
    skips only what cannot change the annotations (atmosphere, speckle, Goldstein,
    file writing); ``--check`` compares it with a real build.
    """
    import rioxarray  # noqa: F401
    from rasterio.features import rasterize
    from rasterio.windows import Window

    from isslide_cube.io.grid import window_transform
    from isslide_cube.synthetic import annotate
    from isslide_cube.synthetic.generator import build_scene, pair_motion, phase_per_metre
    from isslide_cube.synthetic.presets import get_preset

    p = get_preset(preset)
    sc = build_scene(p, seed)
    shape, transform, dates, pairs, mv_list = sc.shape, sc.transform, sc.dates, sc.pairs, sc.moves
    k = phase_per_metre()
    records = []
    bumps = [mv.bump(sc.spacing, shape) for mv in mv_list]
    for n_pair, (i1, i2, delay) in enumerate(pairs):
        disp, gamma, peaks = pair_motion(p, mv_list, bumps, (i1, i2, delay), sc.cover, sc.texture,
                                         sc.layover, sc.shadow, sc.weather)
        for mv, (win, bump), peak in zip(mv_list, bumps, peaks, strict=True):
            if not peak:
                continue
            wt = window_transform(Window(win[1].start, win[0].start, bump.shape[1],
                                         bump.shape[0]), transform)
            found = annotate.annotate_move(abs(peak) * k, bump, gamma[win], sc.usable[win], wt,
                                           p.looks, p.resolution_deg)
            if found is not None:
                records.append(annotate.Annotation(n_pair, delay, mv.move_id, mv.cls, found[1],
                                                   found[0]))
    reps = annotate.count_repetitions(records)
    kept = [a for a in records if reps[(a.move_id, a.delay)] >= annotate.MIN_REPETITIONS]
    starts = sorted({dates[i1] for i1, _, _ in pairs})
    delays = sorted({d for _, _, d in pairs})
    mask = np.full((len(starts), len(delays), *shape), s.MASK_FILL, dtype="uint8")
    has = np.zeros((len(starts), len(delays)), dtype=bool)
    for n_pair, (i1, _i2, delay) in enumerate(pairs):
        si, di = starts.index(dates[i1]), delays.index(delay)
        has[si, di] = True
        mask[si, di] = 0
        geoms = [a.geometry for a in kept if a.pair == n_pair]
        if geoms:
            rasterize(((g, 1) for g in geoms), out=mask[si, di], transform=transform)
    x = transform.c + transform.a * (np.arange(shape[1]) + 0.5)
    y = transform.f + transform.e * (np.arange(shape[0]) + 0.5)
    start = np.array(starts, dtype="datetime64[ns]")
    end = start[:, None] + np.array(delays, dtype="timedelta64[D]")[None, :]
    return xr.Dataset(
        {s.MASK: (s.MASK_DIMS, mask), s.ZONE: ((s.Y, s.X), sc.zone, s.zone_attrs())},
        coords={s.START_DATE: start, s.DELAY: (s.DELAY, np.array(delays, "int64")),
                s.Y: y, s.X: x, s.END_DATE: ((s.START_DATE, s.DELAY), end),
                s.HAS_INTERFEROGRAM: ((s.START_DATE, s.DELAY), has)},
    ).rio.write_crs(s.RAW_CRS)


def counts(cube: xr.Dataset, size: int = 100, seed: int = 0) -> tuple[dict, pd.DataFrame]:
    """Counts of the ready-to-use dataset of ``cube`` (only ``mask`` and ``zone`` are read)."""
    from isslide_cube.patches import move_centres, split, split_counts

    centres = move_centres(cube, size)
    mask = np.asarray(cube[s.MASK].transpose(*s.MASK_DIMS).values)
    has = np.asarray(cube[s.HAS_INTERFEROGRAM].transpose(s.START_DATE, s.DELAY).values)
    rows = []
    for si, di in np.argwhere(has):
        layer = mask[si, di] == 1
        for loc in centres.itertuples():
            moving = layer[loc.row:loc.row + size, loc.col:loc.col + size].any()
            rows.append((si, di, loc.location, loc.zone, moving))
    table = pd.DataFrame(rows, columns=["si", "di", "location", "zone", "has_move"])
    end = cube[s.END_DATE].transpose(s.START_DATE, s.DELAY).values
    samples = xr.Dataset(coords={
        s.START_DATE: (s.SAMPLE, cube[s.START_DATE].values[table.si]),
        s.DELAY: (s.SAMPLE, cube[s.DELAY].values[table.di]),
        s.END_DATE: (s.SAMPLE, end[table.si, table.di]),
        s.LOCATION: (s.SAMPLE, table.location.to_numpy()),
        s.ZONE: (s.SAMPLE, table.zone.to_numpy(str)),
        s.HAS_MOVE: (s.SAMPLE, table.has_move.to_numpy(bool)),
    })
    sides = split_counts(split(samples, "paper", seed=seed))
    ours = {"locations": len(centres), "patches": len(table),
            "with move": int(table.has_move.sum()), "without move": int((~table.has_move).sum()),
            "train (with move)": int(sides.loc["train", "patches"]),
            "eval (with move)": int(sides.loc["eval", "patches"])}
    extra = {"interferograms": int(has.sum()), "components": centres.attrs["n_components"],
             "locations in queyras": int((centres.zone == "queyras").sum()),
             "locations per zone": centres.zone.value_counts().to_dict()}
    return {**ours, "_extra": extra}, sides


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--raw", type=Path)
    src.add_argument("--cube", type=Path)
    src.add_argument("--simulate", metavar="PRESET")
    parser.add_argument("--check", type=Path, metavar="RAW_TINY",
                        help="first check --simulate tiny against this generated tiny folder")
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    if args.check:
        sim, raw = simulate_cube("tiny", args.seed), cube_from_raw(args.check)
        a, _ = counts(sim, args.size, args.seed)
        b, _ = counts(raw, args.size, args.seed)
        if a != b or not np.array_equal(sim[s.MASK].values, raw[s.MASK].values):
            raise SystemExit(f"--simulate tiny differs from {args.check}:\n{a}\n{b}")
        print(f"check: --simulate tiny == --raw {args.check} (every mask pixel): {a}")
    if args.cube:
        from isslide_cube.cube import open_cube

        cube, source = open_cube(args.cube), f"cube {args.cube}"
    elif args.simulate:
        cube = simulate_cube(args.simulate, args.seed)
        source = f"annotations of `generate(preset={args.simulate!r}, seed={args.seed})` replayed"
    else:
        cube, source = cube_from_raw(args.raw), f"raw annotations of {args.raw}"
    ours, sides = counts(cube, args.size, args.seed)
    extra = ours.pop("_extra")
    lines = ["| count | paper | ours | ours / paper |", "|---|---|---|---|"]
    lines += [f"| {k} | {v:,} | {ours[k]:,} | {ours[k] / v:.2f} |" for k, v in PAPER.items()]
    print(f"""
## patches: counts of the ready-to-use dataset beside the paper's

`.venv/bin/python -m benchmarks.patches_counts {' '.join(argv or sys.argv[1:])}` ({source}; {args.size} px patches, split `paper` seed {args.seed};
{time.perf_counter() - t0:.0f} s)

{chr(10).join(lines)}

{extra}

{sides.to_string()}
""")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
