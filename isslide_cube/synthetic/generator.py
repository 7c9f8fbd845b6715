"""``generate``: write a synthetic raw ISSLIDE dataset, one interferogram at a time.

Order of the physics for one pair (first date ``t1``, second ``t2``):

1. true coherence: land cover decorrelating with the delay, weather of both dates,
   layover/shadow (``coherence``), times the fringe-gradient loss of fast moves;
2. true phase: ``4 pi / lambda * (move LOS displacement + delay(t2) - delay(t1))``
   (turbulent + stratified troposphere, ``atmosphere``);
3. L-look noise drawn from the complex Wishart distribution (``noise``);
4. Goldstein filter, last (``goldstein``);
5. the annotator outlines the moves it can see (``annotate``).

Randomness: one ``numpy.random.SeedSequence(seed)`` spawns independent streams for the
terrain, land cover, atmosphere, moves, weather and, per pair, the noise, so each
interferogram's noise does not depend on the others and the same seed gives the same bytes.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import shapely
from affine import Affine
from rasterio.features import rasterize
from rasterio.transform import xy

from isslide_cube import __version__, schema
from isslide_cube.synthetic import annotate, atmosphere, coherence, moves, terrain, writer
from isslide_cube.synthetic.goldstein import goldstein
from isslide_cube.synthetic.noise import sample_multilook, wrap
from isslide_cube.synthetic.presets import Preset, get_preset

log = logging.getLogger(__name__)

#: every top-level entry ``generate`` writes (``overwrite`` removes only these)
OUTPUTS = (schema.RAW_INTERFEROGRAMS, schema.RAW_ANNOTATIONS, schema.RAW_TRUTH, schema.RAW_LAYOVER,
           schema.RAW_DEM, schema.RAW_ZONES, schema.RAW_MANIFEST, "quicklook")
TRUTH_DISPLACEMENT = "truth/los_displacement"
TRUTH_COHERENCE = "truth/coherence"
TRUTH_LANDCOVER = "truth/landcover.tif"
TRUTH_FOOTPRINT = "truth/move_footprint.tif"


class OutputExistsError(schema.IsslideError, FileExistsError):
    """The output folder of ``generate`` is not empty and ``overwrite`` is False."""


def phase_per_metre(wavelength: float = schema.WAVELENGTH_M) -> float:
    """Interferometric phase (rad) per metre of LOS displacement: 4 pi / lambda."""
    return 4.0 * np.pi / wavelength


def acquisition_dates(preset: Preset) -> pd.DatetimeIndex:
    """The acquisition dates of a preset."""
    return pd.date_range(preset.start, periods=preset.n_dates, freq=f"{preset.step_days}D")


def pairs_of(preset: Preset) -> list[tuple[int, int, int]]:
    """(first index, second index, delay in days) for every interferogram, by delay then date."""
    out = []
    for delay in preset.delays:
        if delay % preset.step_days:
            raise ValueError(f"delay {delay} is not a multiple of the {preset.step_days}-day revisit")
        k = delay // preset.step_days
        out += [(i, i + k, delay) for i in range(preset.n_dates - k)]
    return out


def _prepare_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"{out} is a file; give a folder path")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise OutputExistsError(
                f"{out} is not empty; choose an empty folder or pass overwrite=True "
                "(--overwrite on the command line)")
        for name in OUTPUTS:
            p = out / name
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    for sub in (schema.RAW_INTERFEROGRAMS, schema.RAW_ANNOTATIONS, TRUTH_DISPLACEMENT):
        (out / sub).mkdir(parents=True, exist_ok=True)


def _zone_geometries(preset: Preset) -> tuple[list[str], list[object]]:
    west, south, east, north = preset.bounds
    names, geoms = [], []
    parks = []
    for name in schema.ZONES:
        if name in preset.zone_boxes:
            x0, y0, x1, y1 = preset.zone_boxes[name]
            box = shapely.box(west + x0 * (east - west), south + y0 * (north - south),
                              west + x1 * (east - west), south + y1 * (north - south))
            parks.append(box)
            names.append(name)
            geoms.append(box)
    other = shapely.box(west, south, east, north).difference(shapely.union_all(parks))
    return ["other"] + names, [other] + geoms


def _nodata_mask(shape: tuple[int, int], fraction: float) -> np.ndarray:
    # A slanted swath edge cuts the south-west corner, as at the edge of an IW swath.
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    return ((shape[0] - 1 - rows) / shape[0] + cols / shape[1]) < 2 * np.sqrt(fraction / 2)


def generate(out: str | Path, preset: str | Preset = "small", seed: int = 0, overwrite: bool = False,
             progress: bool = False, **overrides) -> Path:
    """Write a synthetic raw ISSLIDE dataset into ``out``.

    Parameters
    ----------
    out
        Output folder; created if absent, must be empty unless ``overwrite``.
    preset
        ``"tiny"`` (seconds, unit tests), ``"small"`` (the demo) or ``"paper"`` (54
        interferograms, 200 moves, 4320 x 3960 px), or a :class:`Preset`.
    seed
        Seed of every random draw.
    overwrite
        Replace what a previous ``generate`` wrote in ``out``.
    progress
        Show a tqdm progress bar over the interferograms.
    **overrides
        Preset fields to change, e.g. ``goldstein_alpha=0.0``.

    Returns
    -------
    pathlib.Path
        ``out``.

    Raises
    ------
    OutputExistsError
        ``out`` is not empty and ``overwrite`` is False.
    PresetError
        Unknown preset (the message lists the valid ones).

    Example
    -------
    >>> from isslide_cube.synthetic import generate
    >>> raw = generate("raw_tiny", preset="tiny", seed=0)  # doctest: +SKIP
    >>> sorted(p.name for p in raw.iterdir())  # doctest: +SKIP
    ['annotations', 'dem.tif', 'interferograms', 'layover.tif', 'manifest.json', 'truth', 'zones.gpkg']
    """
    from tqdm import tqdm

    p = get_preset(preset, **overrides)
    out = Path(out)
    _prepare_out(out, overwrite)
    sc = build_scene(p, seed)
    shape, transform, spacing, dates, pairs = sc.shape, sc.transform, sc.spacing, sc.dates, sc.pairs
    dem, layover, shadow, cover, texture = sc.dem, sc.layover, sc.shadow, sc.cover, sc.texture
    weather, nodata, mv_list = sc.weather, sc.nodata, sc.moves
    zone_names, zone_geoms, usable = sc.zone_names, sc.zone_geoms, sc.usable
    iso = [f"{d:%Y-%m-%d}" for d in dates]
    log.info("synthetic %s: %d x %d px, %d dates, %d interferograms, %d moves",
             p.name, shape[0], shape[1], len(dates), len(pairs), p.n_moves)


    # ---- per-acquisition atmosphere
    acqs = atmosphere.make_acquisitions(p.n_dates, shape, spacing, sc.rng_atmo, p.atmosphere_std_range,
                                        p.stratified_std, p.atmosphere_factor)
    h_ref = float(np.median(dem))
    k = phase_per_metre()

    # ---- interferograms
    if p.truth_coherence:
        (out / TRUTH_COHERENCE).mkdir(parents=True, exist_ok=True)
    records: list[annotate.Annotation] = []
    noise_streams = sc.ss_noise.spawn(len(pairs))
    bumps = [mv.bump(spacing, shape) for mv in mv_list]
    files: list[str] = []
    for n_pair, (i1, i2, delay) in enumerate(tqdm(pairs, disable=not progress, desc="interferograms",
                                                 unit="ifg")):
        stem = schema.raw_stem(dates[i1], dates[i2])
        disp, gamma, peaks = pair_motion(p, mv_list, bumps, (i1, i2, delay), cover, texture,
                                         layover, shadow, weather)
        true_phase = atmosphere.delay_difference(acqs[i1], acqs[i2], dem, h_ref)
        true_phase += disp
        true_phase *= np.float32(k)
        coh, phase = sample_multilook(gamma, true_phase, p.looks,
                                      np.random.default_rng(noise_streams[n_pair]))
        if p.goldstein_alpha > 0:
            phase = goldstein(phase, p.goldstein_alpha, p.goldstein_window, p.goldstein_step)
        coh[nodata] = np.nan
        phase[nodata] = np.nan
        name = f"{schema.RAW_INTERFEROGRAMS}/{stem}.tif"
        writer.write_interferogram(out / name, coh, wrap(phase), transform, iso[i1], iso[i2])
        disp_name = f"{TRUTH_DISPLACEMENT}/{stem}.tif"
        writer.write_raster(out / disp_name, disp, transform, description="los_displacement_m",
                            units="m", sign="positive = range increase (away from the sensor)")
        files += [name, disp_name]
        if p.truth_coherence:
            coh_name = f"{TRUTH_COHERENCE}/{stem}.tif"
            writer.write_raster(out / coh_name, gamma, transform, description="true_coherence")
            files.append(coh_name)
        for mv, (win, bump), peak in zip(mv_list, bumps, peaks, strict=True):
            if not peak:
                continue
            # rasterio.windows.transform's arithmetic, with affine's @ (its * is deprecated)
            x0, y0 = transform @ (win[1].start or 0.0, win[0].start or 0.0)
            wt = Affine.translation(x0 - transform.c, y0 - transform.f) @ transform
            found = annotate.annotate_move(abs(peak) * k, bump, gamma[win], usable[win], wt,
                                           p.looks, p.resolution_deg)
            if found is not None:
                records.append(annotate.Annotation(n_pair, delay, mv.move_id, mv.cls, found[1],
                                                   found[0]))
        del disp, gamma, true_phase, coh, phase

    # ---- annotations: keep the patterns that repeat within their delay
    counts = annotate.count_repetitions(records)
    kept = [a for a in records if counts[(a.move_id, a.delay)] >= annotate.MIN_REPETITIONS]
    for n_pair, (i1, i2, _delay) in enumerate(pairs):
        mine = [a for a in kept if a.pair == n_pair]
        name = f"{schema.RAW_ANNOTATIONS}/{schema.raw_stem(dates[i1], dates[i2])}.shp"
        writer.write_annotations(
            out / name,
            [{"move_id": a.move_id, "class": a.cls, "confidence": a.confidence,
              "repetitions": counts[(a.move_id, a.delay)]} for a in mine],
            [a.geometry for a in mine], iso[-1])
        files += [name[:-4] + ext for ext in (".shp", ".shx", ".dbf", ".prj", ".cpg")]

    # ---- static rasters, zones, truth tables, manifest
    writer.write_raster(out / schema.RAW_DEM, dem, transform, nodata=np.nan, description="elevation_m",
                        units="m")
    writer.write_raster(out / schema.RAW_LAYOVER, (layover | shadow).astype("uint8"), transform,
                        description="layover_shadow")
    writer.write_raster(out / TRUTH_LANDCOVER, cover, transform, description="landcover",
                        codes=",".join(f"{i}={n}" for i, n in enumerate(terrain.COVER_NAMES)))
    footprint = np.zeros(shape, dtype="int32")
    for mv, (win, bump) in zip(mv_list, bumps, strict=True):
        footprint[win] = np.where(bump > 0, np.int32(mv.move_id), footprint[win])
    writer.write_raster(out / TRUTH_FOOTPRINT, footprint, transform, description="move_id")
    writer.write_zones(out / schema.RAW_ZONES, zone_names, zone_geoms, iso[-1])
    table = moves.moves_table(mv_list, dates, p.delays, p.step_days)
    for d in p.delays:
        table[f"annotated_{d}d"] = [int(sum(1 for a in kept if a.move_id == m and a.delay == d))
                                    for m in table["move_id"]]
    table.to_csv(out / schema.RAW_MOVES_CSV, index=False, lineterminator="\n")
    files += [schema.RAW_DEM, schema.RAW_LAYOVER, TRUTH_LANDCOVER, TRUTH_FOOTPRINT, schema.RAW_ZONES,
              schema.RAW_MOVES_CSV]
    manifest = {
        "generator": "isslide_cube.synthetic", "generator_version": __version__,
        "preset": p.name, "seed": int(seed),
        "parameters": {key: (list(v) if isinstance(v, tuple) else v)
                       for key, v in p.__dict__.items()},
        "crs": schema.RAW_CRS, "shape": list(shape), "transform": list(transform)[:6],
        "wavelength_m": schema.WAVELENGTH_M, "incidence_deg": schema.INCIDENCE_DEG,
        "pass": "DESCENDING", "polarisation": "VV", "looks": p.looks,
        "dates": iso,
        "pairs": [{"first": iso[i1], "second": iso[i2], "delay": d,
                   "interferogram": f"{schema.RAW_INTERFEROGRAMS}/{schema.raw_stem(dates[i1], dates[i2])}.tif",
                   "annotation": f"{schema.RAW_ANNOTATIONS}/{schema.raw_stem(dates[i1], dates[i2])}.shp"}
                  for i1, i2, d in pairs],
        "n_moves": len(mv_list), "n_annotations": len(kept),
        "files": sorted(files),
    }
    (out / schema.RAW_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    log.info("synthetic %s written to %s (%d polygons)", p.name, out, len(kept))
    return out


def pair_motion(p, mv_list: list, bumps: list, pair: tuple[int, int, int], cover: np.ndarray,
                texture: np.ndarray, layover: np.ndarray, shadow: np.ndarray,
                weather: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Line-of-sight displacement (m) and true coherence of one pair, and each move's peak.

    Steep motion gradients decorrelate (fast moves lose coherence at long delays).
    Shared by :func:`generate` and the annotation replay of ``benchmarks.patches_counts``,
    so the replay cannot drift from the generator.
    """
    i1, i2, delay = pair
    k = phase_per_metre()
    disp = np.zeros(cover.shape, dtype="float32")
    peaks = [mv.peak_displacement(i1, i2, p.step_days) for mv in mv_list]
    for (win, bump), peak in zip(bumps, peaks, strict=True):
        if peak:
            disp[win] += np.float32(peak) * bump
    gamma = coherence.true_coherence(cover, delay, (weather[i1], weather[i2]), texture,
                                     layover, shadow)
    for (win, _), peak in zip(bumps, peaks, strict=True):
        if peak:
            gy, gx = np.gradient(disp[win] * np.float32(k))
            gamma[win] *= coherence.gradient_decorrelation(np.hypot(gy, gx))
    return disp, gamma, peaks


@dataclass
class Scene:
    """Everything of a synthetic scene that does not change between interferograms."""

    shape: tuple[int, int]
    transform: Affine
    spacing: float
    dates: list
    pairs: list[tuple[int, int, int]]
    dem: np.ndarray
    layover: np.ndarray
    shadow: np.ndarray
    cover: np.ndarray
    texture: np.ndarray
    weather: np.ndarray
    nodata: np.ndarray
    zone_names: list[str]
    zone_geoms: list
    zone: np.ndarray
    moves: list
    usable: np.ndarray
    rng_atmo: np.random.Generator
    ss_noise: np.random.SeedSequence


def build_scene(p: Preset, seed: int) -> Scene:
    """The grid, terrain, land cover, zones and moves of preset ``p`` for ``seed``.

    The random streams are spawned in a fixed order from one ``SeedSequence``;
    :func:`generate` and the annotation replay of ``benchmarks.patches_counts``
    both start here, so they place the same moves.
    """
    ss = np.random.SeedSequence(seed)
    rng_terrain, rng_cover, rng_atmo, rng_moves, rng_weather = (
        [np.random.default_rng(x) for x in ss.spawn(5)])
    ss_noise = ss.spawn(1)[0]
    shape = p.shape
    west, south, east, north = p.bounds
    # rasterio's from_origin, with affine's @ (its * is deprecated)
    transform = Affine.translation(west, north) @ Affine.scale(p.resolution_deg, -p.resolution_deg)
    spacing = terrain.pixel_spacing_m(p.resolution_deg, (south + north) / 2)
    lons = np.asarray(xy(transform, np.zeros(shape[1], int), np.arange(shape[1]))[0])
    lats = np.asarray(xy(transform, np.arange(shape[0]), np.zeros(shape[0], int))[1])
    dates = acquisition_dates(p)
    dem = terrain.make_dem(shape, rng_terrain, spacing, p.relief_slope_deg, p.mean_elevation)
    layover, shadow = terrain.layover_shadow(dem, spacing, schema.INCIDENCE_DEG)
    cover = terrain.make_landcover(dem, spacing, rng_cover)
    texture = (0.88 + 0.12 * np.tanh(terrain.powerlaw_field(shape, rng_weather, spacing, 3.0, 2000.0))
               ).astype("float32")
    weather = rng_weather.uniform(0.88, 1.0, p.n_dates)
    nodata = _nodata_mask(shape, p.nodata_corner)
    zone_names, zone_geoms = _zone_geometries(p)
    zone = rasterize(((g, schema.ZONES.index(n)) for n, g in zip(zone_names, zone_geoms, strict=True)),
                     out_shape=shape, transform=transform, fill=0, dtype="uint8")
    invalid = layover | shadow | nodata
    mv_list = moves.place_moves(p, rng_moves, dem, spacing, zone, cover, invalid, (lons, lats), dates)
    return Scene(shape, transform, spacing, dates, pairs_of(p), dem, layover, shadow, cover,
                 texture, weather, nodata, zone_names, zone_geoms, zone, mv_list,
                 ~(invalid | (cover == terrain.WATER)), rng_atmo, ss_noise)
