"""Full-scene prediction: probability maps on the cube's grid, COGs and a GeoPackage.

A model trained on 100 x 100 px patches is slid over whole interferograms with
overlapping tiles (stride = tile x (1 - overlap)) whose outputs are blended by a
2-D Hann window, so tile seams vanish. The work is a Dask graph over the cube's
spatial chunks: each task reads its chunk plus a halo of half a tile (NaN
beyond the scene, an all-zero network input like any no-data pixel), runs the
model, and returns the chunk's probabilities. Each worker process loads the
run's model once.

:func:`predict_scenes` streams that graph chunk by chunk into, per interferogram:

* ``<out>/S1_<d1>_<d2>_probability.tif``: a Cloud-Optimized GeoTIFF (float32,
  NaN nodata) on the cube's exact grid (same transform and CRS);
* ``<out>/moving_areas.gpkg`` (layer ``moving_areas``): one polygon per
  connected moving area (``probability >= threshold``, 4-connectivity), with
  ``probability_mean``, ``probability_max``, ``area_px``, ``area_m2``,
  ``start_date``, ``end_date``, ``delay``, ``interferogram``, in the cube's CRS;
* optionally ``<out>/probability.zarr``: variable ``probability`` (start_date,
  delay, y, x) on the cube's coordinates, chunked like the cube.

Only one chunk per running task is in memory (plus the polygons), so memory
does not grow with the scene.

Example
-------
>>> predict_scenes("runs/resunet", "cube.zarr", "maps", client=client)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from isslide_cube import schema

log = logging.getLogger(__name__)

LAYER = "moving_areas"
_MODEL_CACHE: dict[tuple[str, float, str], Any] = {}


# ------------------------------------------------------------------ the model
def _load_model(run_dir: str, device: str = "cpu") -> tuple[Any, dict[str, Any]]:
    """The run's best model, loaded once per process (tasks of a worker share it)."""
    from isslide_cube.ml.training import load_run

    ckpt = Path(run_dir) / "best.pt"
    key = (str(Path(run_dir).resolve()), ckpt.stat().st_mtime if ckpt.exists() else 0.0, device)
    if key not in _MODEL_CACHE:
        _MODEL_CACHE.clear()  # one run at a time per process
        _MODEL_CACHE[key] = load_run(run_dir, device=device)
    return _MODEL_CACHE[key]


def hann_window(size: int, floor: float = 1e-3) -> np.ndarray:
    """2-D Hann blending weights (size, size), floored so tile borders still count."""
    w = np.hanning(size + 2)[1:-1]  # strictly positive inside
    return np.maximum(np.outer(w, w), floor).astype(np.float32)


def _tile_starts(n: int, tile: int, stride: int) -> list[int]:
    if n <= tile:
        return [0]
    starts = list(range(0, n - tile + 1, stride))
    if starts[-1] != n - tile:
        starts.append(n - tile)  # the last tile flush with the edge
    return starts


def predict_array(model: Any, stack: np.ndarray, *, tile: int, overlap: float = 0.5,
                  batch_size: int = 16, validity: bool = False, temporal: bool = False,
                  device: str = "cpu") -> np.ndarray:
    """Blend tiled predictions over one (T, 2, H, W) stack -> (H, W) float32.

    Time 0 is the interferogram predicted; NaN where it has no data.
    """
    import torch

    from isslide_cube.ml.transforms import to_network_input

    t, _, h, w = stack.shape
    ph, pw = max(tile - h, 0), max(tile - w, 0)
    if ph or pw:  # smaller than a tile: pad with no-data
        stack = np.pad(stack, ((0, 0), (0, 0), (0, ph), (0, pw)), constant_values=np.nan)
    hh, ww = stack.shape[-2:]
    x = to_network_input(stack, validity=validity)  # (T, C, hh, ww)
    if not temporal:
        x = x[0]
    stride = max(1, int(round(tile * (1 - overlap))))
    win = hann_window(tile)
    acc = np.zeros((hh, ww), np.float64)
    wsum = np.zeros((hh, ww), np.float64)
    corners = [(r, c) for r in _tile_starts(hh, tile, stride) for c in _tile_starts(ww, tile, stride)]
    with torch.no_grad():
        for k in range(0, len(corners), batch_size):
            part = corners[k:k + batch_size]
            batch = np.stack([x[..., r:r + tile, c:c + tile] for r, c in part])
            logits = model(torch.from_numpy(batch).to(device))
            prob = torch.sigmoid(logits.float())[:, 0].cpu().numpy()
            for (r, c), p in zip(part, prob, strict=True):
                acc[r:r + tile, c:c + tile] += p * win
                wsum[r:r + tile, c:c + tile] += win
    out = (acc / wsum).astype(np.float32)[:h, :w]
    nodata = ~(np.isfinite(stack[0, 0, :h, :w]) & np.isfinite(stack[0, 1, :h, :w]))
    out[nodata] = np.nan
    return out


def _predict_block(block: np.ndarray, run_dir: str, tile: int, overlap: float, batch_size: int,
                   target_pos: np.ndarray | None, device: str, torch_threads: int | None,
                   block_info: dict | None = None) -> np.ndarray:
    """One dask block (1, 1, T, 2, h, w) -> (1, 1, h, w) probabilities."""
    out_shape = (1, 1) + block.shape[-2:]
    if not np.isfinite(block).any():  # no interferogram here
        return np.full(out_shape, np.nan, np.float32)
    if torch_threads:
        import torch

        # Dask runs blocks in parallel: torch's own threads on top oversubscribe the
        # cores (10x slower on a loaded 2-core machine)
        if torch.get_num_threads() != torch_threads:
            torch.set_num_threads(torch_threads)
    model, config = _load_model(run_dir, device)
    stack = block[0, 0]
    if target_pos is not None:  # the interferogram itself goes first, as in training
        j = block_info[0]["chunk-location"][1]
        p = int(target_pos[j])
        stack = stack[[p] + [q for q in range(stack.shape[0]) if q != p]]
    prob = predict_array(model, stack, tile=tile, overlap=overlap, batch_size=batch_size,
                         validity=bool(config.get("validity", False)),
                         temporal=config.get("temporal") is not None, device=device)
    return prob[None, None]


def scene_probability(run_dir: str | Path, cube: Any, *, tile: int | None = None,
                      overlap: float = 0.5, batch_size: int = 16, device: str = "cpu",
                      torch_threads: int | None = 1) -> Any:
    """Lazy moving-area probability of every interferogram of a cube.

    Parameters
    ----------
    run_dir
        A training run (``config.json``, ``best.pt``); a temporal run
        (``config["temporal"]``) gets the same stacks as in training.
    cube
        A cube store path or an opened cube (``open_cube``).
    tile
        Tile size in pixels (default: the run's patch size, else 100).
    overlap
        Fraction of a tile shared by neighbours (0.5: stride of half a tile).
    batch_size
        Tiles per forward pass.
    device
        Torch device of the workers.
    torch_threads
        ``torch.set_num_threads`` in the processes running blocks (1: the
        parallelism comes from Dask); None leaves torch's setting alone.

    Returns
    -------
    xarray.DataArray
        ``probability`` float32 (start_date, delay, y, x) in [0, 1], NaN without
        data, on the cube's coordinates (``spatial_ref`` kept), chunked like
        the cube, dask-backed.
    """
    import dask.array as da
    import xarray as xr

    from isslide_cube.temporal import parse_spec, stack_cube, target_position

    if not 0 <= overlap < 1:
        raise ValueError(f"overlap={overlap} must be in [0, 1)")
    ds = _open(cube)
    model, config = _load_model(str(run_dir), device)
    tile = int(tile or _patch_size(config))
    temporal = config.get("temporal")
    if temporal:
        spec = parse_spec(temporal)
        arr = stack_cube(ds, spec)[schema.INTERFEROGRAM]
        target_pos = target_position(spec, ds[schema.DELAY].values)
    else:
        arr = ds[schema.INTERFEROGRAM].expand_dims("time", axis=2)
        target_pos = None
    ychunk, xchunk = ds[schema.INTERFEROGRAM].chunks[-2:] if ds[schema.INTERFEROGRAM].chunks \
        else ((ds.sizes["y"],), (ds.sizes["x"],))
    data = arr.data if isinstance(arr.data, da.Array) else da.from_array(arr.values)
    data = data.rechunk((1, 1, -1, -1, ychunk, xchunk))
    depth = tile // 2
    halo = da.overlap.overlap(data, depth={4: depth, 5: depth},
                              boundary={4: np.nan, 5: np.nan})
    prob = halo.map_blocks(_predict_block, str(run_dir), tile, overlap, batch_size, target_pos,
                           device, torch_threads, drop_axis=[2, 3], dtype=np.float32,
                           meta=np.empty((0, 0, 0, 0), np.float32))
    # the outer halo (NaN padding) is trimmed too
    prob = da.overlap.trim_internal(prob, {2: depth, 3: depth}, boundary={2: np.nan, 3: np.nan})
    out = xr.DataArray(prob, dims=schema.MASK_DIMS, name="probability",
                       coords={k: v for k, v in ds.coords.items()
                               if set(v.dims) <= set(schema.MASK_DIMS)})
    out.attrs.update(long_name="moving-area probability", units="1",
                     run_dir=str(run_dir), tile=tile, overlap=overlap,
                     temporal=str(temporal or ""))
    return out


def _open(cube: Any) -> Any:
    import xarray as xr

    if isinstance(cube, xr.Dataset):
        return cube
    from isslide_cube.cube import open_cube

    return open_cube(cube)


def _patch_size(config: dict[str, Any]) -> int:
    if config.get("patch_size"):
        return int(config["patch_size"])
    try:
        import zarr

        return int(zarr.open_group(config["patches"], mode="r").attrs["patch_size"])
    except Exception:  # the patches store moved: the paper's size
        log.info("patch size unknown for this run; tiling with 100 px")
        return 100


def default_threshold(run_dir: str | Path) -> float:
    """The run's F1-optimal threshold: ``metrics.json``, else the best epoch's, else 0.5."""
    run_dir = Path(run_dir)
    metrics = run_dir / "metrics.json"
    if metrics.exists():
        value = json.loads(metrics.read_text()).get("threshold")
        if value is not None and np.isfinite(value):
            return float(value)
    history = run_dir / "history.csv"
    if history.exists():
        import pandas as pd

        h = pd.read_csv(history)
        if "best_threshold" in h and "val_loss" in h and h["val_loss"].notna().any():
            value = float(h.loc[h["val_loss"].idxmin(), "best_threshold"])
            if np.isfinite(value):
                return value
    return 0.5


# ---------------------------------------------------------------- the outputs
@dataclass
class SceneSummary:
    """What :func:`predict_scenes` wrote."""

    out: Path
    threshold: float
    cogs: list[Path] = field(default_factory=list)
    gpkg: Path | None = None
    zarr: Path | None = None
    n_polygons: int = 0
    seconds: float = 0.0

    def __str__(self) -> str:
        lines = [f"{len(self.cogs)} probability COG(s) in {self.out} "
                 f"(threshold {self.threshold:.3g}), {self.n_polygons} moving area(s) in "
                 f"{self.gpkg}", f"{self.seconds:.1f} s"]
        if self.zarr:
            lines.insert(1, f"probability Zarr: {self.zarr}")
        return "\n".join(lines)


def _compute(objs: list[Any], client: Any) -> list[Any]:
    import dask

    if client is not None:
        return client.gather(client.compute(objs))
    return list(dask.compute(*objs))


def _pieces(prob: np.ndarray, threshold: float, transform: Any,
            area: np.ndarray) -> list[tuple[Any, float, float, int, float]]:
    """Polygons of one block: (geometry, prob sum, prob max, pixels, m^2) per component."""
    from rasterio import features
    from scipy import ndimage
    from shapely.geometry import shape

    binary = np.nan_to_num(prob, nan=0.0) >= threshold
    if not binary.any():
        return []
    labels, n = ndimage.label(binary)  # 4-connectivity, as features.shapes
    idx = np.arange(1, n + 1)
    p = np.nan_to_num(prob, nan=0.0)
    sums = ndimage.sum_labels(p, labels, idx)
    maxs = ndimage.maximum(p, labels, idx)
    counts = ndimage.sum_labels(np.ones_like(p), labels, idx)
    areas = ndimage.sum_labels(area, labels, idx)
    out = []
    for geom, value in features.shapes(labels.astype(np.int32), mask=binary, transform=transform):
        k = int(value) - 1
        out.append((shape(geom), float(sums[k]), float(maxs[k]), int(counts[k]), float(areas[k])))
    return out


def _merge_pieces(pieces: list[tuple], crs: Any) -> Any:
    """Union the pieces cut by chunk borders into whole areas, aggregating their stats."""
    import geopandas as gpd
    import shapely

    cols = ["geometry", "prob_sum", "probability_max", "area_px", "area_m2"]
    if not pieces:
        return gpd.GeoDataFrame(columns=cols, geometry="geometry", crs=crs)
    gdf = gpd.GeoDataFrame(pieces, columns=cols, geometry="geometry", crs=crs)
    merged = shapely.get_parts(shapely.union_all(gdf.geometry.values))
    areas = gpd.GeoDataFrame(geometry=merged, crs=crs)
    points = gdf.set_geometry(gdf.geometry.representative_point())
    joined = points.sjoin(areas, predicate="within", how="left")
    agg = joined.groupby("index_right").agg(prob_sum=("prob_sum", "sum"),
                                           probability_max=("probability_max", "max"),
                                           area_px=("area_px", "sum"), area_m2=("area_m2", "sum"))
    areas = areas.join(agg)
    areas["probability_mean"] = areas["prob_sum"] / areas["area_px"]
    return areas.drop(columns="prob_sum")


def predict_scenes(run_dir: str | Path, cube: str | Path, out: str | Path,
                   threshold: float | None = None, write_zarr: bool = False, client: Any = None,
                   progress: bool = False, *, tile: int | None = None, overlap: float = 0.5,
                   batch_size: int = 16, min_area_px: int = 1, device: str = "cpu",
                   torch_threads: int | None = 1, overwrite: bool = True) -> SceneSummary:
    """Predict every interferogram of a cube; write COGs, a GeoPackage and optionally Zarr.

    Parameters
    ----------
    run_dir
        Training run folder (``config.json``, ``best.pt``).
    cube
        Cube store (or an opened cube).
    out
        Output folder (created).
    threshold
        Probability of a moving pixel; default :func:`default_threshold`.
    write_zarr
        Also write ``<out>/probability.zarr`` (variable ``probability``).
    client
        ``distributed.Client`` or address computing the chunks; None: Dask's default.
    progress
        A tqdm bar over interferograms.
    tile, overlap, batch_size, device, torch_threads
        See :func:`scene_probability`.
    min_area_px
        Drop moving areas smaller than this many pixels.
    overwrite
        Replace files already in ``out``.

    Returns
    -------
    SceneSummary

    Example
    -------
    >>> print(predict_scenes("runs/r", "cube.zarr", "maps", write_zarr=True))  # doctest: +SKIP
    """
    import torch

    threads_before = torch.get_num_threads()  # blocks run here too without a client
    try:
        return _predict_scenes(run_dir, cube, out, threshold, write_zarr, client, progress,
                               tile=tile, overlap=overlap, batch_size=batch_size,
                               min_area_px=min_area_px, device=device,
                               torch_threads=torch_threads, overwrite=overwrite)
    finally:
        torch.set_num_threads(threads_before)


def _predict_scenes(run_dir, cube, out, threshold, write_zarr, client, progress, *, tile,
                    overlap, batch_size, min_area_px, device, torch_threads,
                    overwrite) -> SceneSummary:
    import geopandas as gpd
    import pandas as pd
    import rasterio
    import rasterio.shutil
    from rasterio.windows import Window
    from tqdm.auto import tqdm

    from isslide_cube.cluster import as_client
    from isslide_cube.tracking import pixel_area_m2

    started = time.perf_counter()
    client = as_client(client)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ds = _open(cube)
    threshold = float(default_threshold(run_dir) if threshold is None else threshold)
    if not 0 <= threshold <= 1:
        raise ValueError(f"threshold {threshold} is outside [0, 1]")
    prob = scene_probability(run_dir, ds, tile=tile, overlap=overlap, batch_size=batch_size,
                             device=device, torch_threads=torch_threads)
    transform, crs = ds.rio.transform(), ds.rio.crs
    area = pixel_area_m2(ds)  # a broadcast view: no per-pixel memory
    summary = SceneSummary(out=out, threshold=threshold)
    zarr_array = None
    if write_zarr:
        summary.zarr = out / "probability.zarr"
        if summary.zarr.exists() and overwrite:
            shutil.rmtree(summary.zarr)
        # metadata and coordinates now; the values chunk by chunk below
        # consolidated, so a plain xr.open_zarr(path) opens it without a fallback warning;
        # zarr's note that consolidation is outside the v3 spec is known and kept quiet
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Consolidated metadata",
                                    category=UserWarning)
            prob.to_dataset().to_zarr(summary.zarr, mode="w", compute=False, consolidated=True)
        import zarr

        zarr_array = zarr.open_array(summary.zarr / "probability", mode="r+")
    has = ds[schema.HAS_INTERFEROGRAM].values
    starts, delays = ds[schema.START_DATE].values, ds[schema.DELAY].values
    ends = ds[schema.END_DATE].values
    pairs = [(i, j) for i in range(len(starts)) for j in range(len(delays)) if has[i, j]]
    ny, nx = ds.sizes["y"], ds.sizes["x"]
    per_batch = max(2, 2 * len(client.scheduler_info()["workers"])) if client is not None else 4
    frames = []
    for i, j in tqdm(pairs, desc="interferograms", disable=not progress):
        stem = schema.raw_stem(starts[i], ends[i, j])
        tmp = out / f".{stem}.tmp.tif"
        cog = out / f"{stem}_probability.tif"
        slice2d = prob.data[i, j]
        yb, xb = np.cumsum((0,) + slice2d.chunks[0]), np.cumsum((0,) + slice2d.chunks[1])
        blocks = [(a, b) for a in range(len(yb) - 1) for b in range(len(xb) - 1)]
        pieces = []
        profile = dict(driver="GTiff", width=nx, height=ny, count=1, dtype="float32",
                       crs=crs, transform=transform, nodata=np.nan, tiled=True,
                       blockxsize=256, blockysize=256, compress="deflate")
        with rasterio.open(tmp, "w", **profile) as dst:
            for k in range(0, len(blocks), per_batch):
                part = blocks[k:k + per_batch]
                values = _compute([slice2d.blocks[a, b] for a, b in part], client)
                for (a, b), v in zip(part, values, strict=True):
                    rows, cols = slice(yb[a], yb[a + 1]), slice(xb[b], xb[b + 1])
                    win = Window(int(xb[b]), int(yb[a]), v.shape[1], v.shape[0])
                    dst.write(v, 1, window=win)
                    if zarr_array is not None:
                        zarr_array[i, j, rows, cols] = v
                    pieces += _pieces(v, threshold, rasterio.windows.transform(win, transform),
                                      area[rows, cols])
            dst.update_tags(FIRST_DATE=str(pd.Timestamp(starts[i]).date()),
                            SECOND_DATE=str(pd.Timestamp(ends[i, j]).date()),
                            RUN_DIR=str(run_dir), THRESHOLD=str(threshold))
            dst.set_band_description(1, "probability")
        rasterio.shutil.copy(tmp, cog, driver="COG", compress="DEFLATE", blocksize=256,
                             overview_resampling="average")
        tmp.unlink()
        summary.cogs.append(cog)
        areas = _merge_pieces(pieces, crs)
        areas = areas[areas["area_px"] >= min_area_px]
        areas["start_date"] = pd.Timestamp(starts[i])
        areas["end_date"] = pd.Timestamp(ends[i, j])
        areas["delay"] = int(delays[j])
        areas["interferogram"] = stem
        frames.append(areas)
    cols = ["probability_mean", "probability_max", "area_px", "area_m2", "start_date",
            "end_date", "delay", "interferogram", "geometry"]
    gdf = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True) if frames else None,
                           columns=cols, geometry="geometry", crs=crs)
    gdf["area_px"] = gdf["area_px"].astype("int64")
    gdf["delay"] = gdf["delay"].astype("int64")
    summary.gpkg = out / "moving_areas.gpkg"
    if summary.gpkg.exists() and overwrite:
        summary.gpkg.unlink()
    gdf[cols].to_file(summary.gpkg, layer=LAYER, driver="GPKG")
    summary.n_polygons = len(gdf)
    summary.seconds = time.perf_counter() - started
    log.info("%s", summary)
    return summary
