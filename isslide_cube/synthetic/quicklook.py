"""Quick-look PNGs of a raw dataset: phase, coherence, annotations, a move at 6 and 18 days.

Matplotlib is imported inside the functions (Agg backend, no display), so importing the
package stays light.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio

from isslide_cube import schema

log = logging.getLogger(__name__)


def _read(tif: Path) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float, float]]:
    with rasterio.open(tif) as src:
        coh, pha = src.read(1), src.read(2)
        b = src.bounds
    return coh, pha, (b.left, b.right, b.bottom, b.top)


def _annotations(raw: Path, stem: str):
    import geopandas as gpd

    return gpd.read_file(raw / schema.RAW_ANNOTATIONS / f"{stem}.shp", engine="pyogrio")


def _outline(ax, gdf, color: str = "black") -> None:
    if len(gdf):
        gdf.boundary.plot(ax=ax, color=color, linewidth=0.8)


def quicklook(raw_dir: str | Path, out_dir: str | Path | None = None) -> list[Path]:
    """Write quick-look figures of a raw dataset and return their paths.

    Figures: ``overview.png`` (DEM, layover/shadow, zones), ``interferogram.png``
    (phase with the cyclic "twilight" colormap and coherence, annotation outlines over
    both, for the interferogram with the most polygons), and ``move_6_vs_18.png`` (the
    same move on the 6-day and the 18-day interferogram starting the same day: a
    bubble becoming fringes).

    Parameters
    ----------
    raw_dir
        Folder written by :func:`isslide_cube.synthetic.generate`.
    out_dir
        Where to write the PNGs (default ``raw_dir/quicklook``).

    Returns
    -------
    list of pathlib.Path

    Example
    -------
    >>> paths = quicklook("raw_tiny")  # doctest: +SKIP
    """
    import matplotlib

    matplotlib.use("Agg")
    import geopandas as gpd
    import matplotlib.pyplot as plt

    raw = Path(raw_dir)
    manifest_path = raw / schema.RAW_MANIFEST
    if not manifest_path.exists():
        raise schema.RawFileNotFoundError(
            f"{manifest_path} not found; give a folder written by isslide_cube.synthetic.generate")
    manifest = json.loads(manifest_path.read_text())
    out = Path(out_dir) if out_dir is not None else raw / "quicklook"
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    pairs = pd.DataFrame(manifest["pairs"])
    pairs["stem"] = [Path(f).stem for f in pairs["interferogram"]]

    # -- overview
    with rasterio.open(raw / schema.RAW_DEM) as src:
        dem, b = src.read(1), src.bounds
    with rasterio.open(raw / schema.RAW_LAYOVER) as src:
        lay = src.read(1)
    extent = (b.left, b.right, b.bottom, b.top)
    zones = gpd.read_file(raw / schema.RAW_ZONES, engine="pyogrio")
    fig, axes = plt.subplots(1, 2, figsize=(11, 5), constrained_layout=True)
    im = axes[0].imshow(dem, cmap="terrain", extent=extent)
    fig.colorbar(im, ax=axes[0], label="elevation (m)")
    zones[zones["name"] != "other"].boundary.plot(ax=axes[0], color="red", linewidth=1)
    for _, z in zones[zones["name"] != "other"].iterrows():
        c = z.geometry.centroid
        axes[0].annotate(z["name"], (c.x, c.y), color="red", ha="center")
    axes[0].set_title("DEM and annotated zones")
    axes[1].imshow(lay, cmap="gray_r", extent=extent, vmin=0, vmax=1)
    axes[1].set_title(f"layover / shadow ({100 * lay.mean():.1f} % of pixels)")
    paths.append(out / "overview.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    # -- the interferogram with the most polygons
    counts = [len(_annotations(raw, s)) for s in pairs["stem"]]
    best = pairs.iloc[int(np.argmax(counts))]
    coh, pha, extent = _read(raw / best["interferogram"])
    ann = _annotations(raw, best["stem"])
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.2), constrained_layout=True)
    im = axes[0].imshow(pha, cmap="twilight", vmin=-np.pi, vmax=np.pi, extent=extent,
                        interpolation="nearest")
    fig.colorbar(im, ax=axes[0], label="phase (rad)")
    _outline(axes[0], ann, "lime")
    axes[0].set_title(f"phase {best['first']} -> {best['second']} ({best['delay']} d)")
    im = axes[1].imshow(coh, cmap="gray", vmin=0, vmax=1, extent=extent, interpolation="nearest")
    fig.colorbar(im, ax=axes[1], label="coherence")
    _outline(axes[1], ann, "red")
    axes[1].set_title(f"coherence, {len(ann)} annotated move(s)")
    paths.append(out / "interferogram.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    # -- one move at the shortest and the longest delay, same first date
    fig_path = _move_two_delays(raw, pairs, out, plt)
    if fig_path is not None:
        paths.append(fig_path)
    log.info("quick-look figures in %s", out)
    return paths


def _move_two_delays(raw: Path, pairs: pd.DataFrame, out: Path, plt) -> Path | None:
    moves = pd.read_csv(raw / schema.RAW_MOVES_CSV)
    short, long_ = int(pairs["delay"].min()), int(pairs["delay"].max())
    if short == long_:
        return None
    # Prefer a bubble (< 1 fringe) at the short delay that is fringes at the long one.
    fs, fl = moves[f"fringes_{short}d"], moves[f"fringes_{long_}d"]
    score = np.where((fs < 1) & (fl >= 1), 2.0, 0.0) + np.minimum(fl, 3) / 3
    for idx in np.argsort(-score, kind="stable"):
        mv = moves.iloc[idx]
        for first in pairs.loc[pairs["delay"] == short, "first"]:
            both = pairs[(pairs["first"] == first) & pairs["delay"].isin([short, long_])]
            if len(both) < 2:
                continue
            stems = {int(r["delay"]): r for _, r in both.iterrows()}
            anns = {d: _annotations(raw, stems[d]["stem"]) for d in (short, long_)}
            if all((a["move_id"] == mv["move_id"]).any() for a in anns.values()):
                return _plot_pair(raw, mv, stems, anns, (short, long_), out, plt)
    return None


def _plot_pair(raw: Path, mv: pd.Series, stems: dict, anns: dict, delays: tuple[int, int],
               out: Path, plt) -> Path:
    half = max(40, int(2.2 * mv["semi_major_m"] / 22.0))
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.8), constrained_layout=True)
    for ax, d in zip(axes, delays, strict=True):
        coh, pha, extent = _read(raw / stems[d]["interferogram"])
        r0, c0 = max(0, int(mv["row"]) - half), max(0, int(mv["col"]) - half)
        r1, c1 = min(pha.shape[0], int(mv["row"]) + half), min(pha.shape[1], int(mv["col"]) + half)
        dx = (extent[1] - extent[0]) / pha.shape[1]
        dy = (extent[3] - extent[2]) / pha.shape[0]
        sub = (extent[0] + c0 * dx, extent[0] + c1 * dx, extent[3] - r1 * dy, extent[3] - r0 * dy)
        im = ax.imshow(pha[r0:r1, c0:c1], cmap="twilight", vmin=-np.pi, vmax=np.pi, extent=sub,
                       interpolation="nearest")
        a = anns[d]
        _outline(ax, a[a["move_id"] == mv["move_id"]], "lime")
        ax.set_xlim(sub[0], sub[1])
        ax.set_ylim(sub[2], sub[3])
        ax.set_title(f"move {int(mv['move_id'])} ({mv['class']}), {d} days: "
                     f"{mv[f'fringes_{d}d']:.2f} fringe(s)")
    fig.colorbar(im, ax=axes, label="phase (rad)")
    path = out / f"move_{delays[0]}_vs_{delays[1]}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
