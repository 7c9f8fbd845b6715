"""The ready-to-use dataset's counts beside the ISSLIDE paper's.

Locations, patches, with / without a move, and the ``paper`` split's train / eval
sides (moving patches only), from either

- a built cube (``--cube``): exactly what ``write_patches`` counts, or
- a raw folder (``--raw``): the annotation shapefiles rasterized here with
  ``rasterio.features.rasterize`` (``all_touched=False``, as ``build_cube``
  does) on the grid of ``layover.tif``; the interferograms themselves are not
  read, so the counts of a ``paper`` preset come in a minute.

Either way the same library functions count: ``move_centres`` on the global map,
``has_move`` = any ``mask == 1`` in the window, ``split(scheme="paper")``.

Usage::

    .venv/bin/python -m benchmarks.patches_counts --raw /tmp/bench/keep/paper/raw
    .venv/bin/python -m benchmarks.patches_counts --cube cube.zarr
"""

from __future__ import annotations

import argparse
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
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    if args.cube:
        from isslide_cube.cube import open_cube

        cube, source = open_cube(args.cube), f"cube {args.cube}"
    else:
        cube, source = cube_from_raw(args.raw), f"raw annotations of {args.raw}"
    ours, sides = counts(cube, args.size, args.seed)
    extra = ours.pop("_extra")
    lines = ["| count | paper | ours | ours / paper |", "|---|---|---|---|"]
    lines += [f"| {k} | {v:,} | {ours[k]:,} | {ours[k] / v:.2f} |" for k, v in PAPER.items()]
    print(f"""
## patches: counts of the ready-to-use dataset beside the paper's

`.venv/bin/python -m benchmarks.patches_counts {'--cube' if args.cube else '--raw'} \
{args.cube or args.raw}` ({source}; {args.size} px patches, split `paper` seed {args.seed};
{time.perf_counter() - t0:.0f} s)

{chr(10).join(lines)}

{extra}

{sides.to_string()}
""")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
