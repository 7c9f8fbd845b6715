"""Per-move time series: area, coherence, phase against a stable ring, LOS velocity, outlines."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from isslide_cube import schema
from isslide_cube.tracking._repetition import _disk

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import xarray as xr

DAYS_PER_YEAR = 365.25
EARTH_RADIUS_M = 6_371_008.8


# --------------------------------------------------------------- time series
def pixel_area_m2(cube: xr.Dataset) -> np.ndarray:
    """Area of each pixel (y, x) in m^2: spherical for a geographic CRS (read-only view)."""
    t = cube.rio.transform()
    crs = cube.rio.crs
    ny, nx = cube.sizes["y"], cube.sizes["x"]
    if crs is not None and crs.is_geographic:
        lat = np.deg2rad(np.asarray(cube["y"].values, dtype=np.float64))
        dlon, dlat = np.deg2rad(abs(t.a)), abs(t.e)
        # band of latitude [lat - dlat/2, lat + dlat/2] times dlon on the sphere
        top = np.sin(lat + np.deg2rad(dlat) / 2)
        bottom = np.sin(lat - np.deg2rad(dlat) / 2)
        row = EARTH_RADIUS_M ** 2 * dlon * np.abs(top - bottom)
        # a read-only broadcast view: one value per row in memory, not per pixel
        return np.broadcast_to(row[:, None], (ny, nx))
    return np.broadcast_to(np.float64(abs(t.a * t.e)), (ny, nx))


def _rank_within(lab: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Rank (0 = largest ``key``) of each pixel among the pixels of its label."""
    order = np.lexsort((-key, lab))
    first = np.searchsorted(lab[order], lab[order])
    rank = np.empty(lab.size, np.int64)
    rank[order] = np.arange(lab.size) - first
    return rank


def _slice_stats(labels: np.ndarray, coh: np.ndarray, phase: np.ndarray, area: np.ndarray,
                 n_lab: int, ring: int, core: float, deramp: bool = True,
                 gap: int = 0, min_core: int = 1, peak: str = "depth",
                 peak_share: float = 0.1) -> np.ndarray:
    """Per-label stats of one interferogram: (n_lab + 1, 7) float64.

    Columns: pixel count, area m^2, mean coherence, circular mean phase relative
    to the ring (rad), circular mean relative phase over the core (rad), ring
    pixel count, share of the pixels whose relative phase is near the wrap
    (|phase| > 3 pi / 4: fringes).
    """
    from scipy import ndimage

    from isslide_cube.kernels import edt

    out = np.full((n_lab + 1, 7), np.nan)
    lab = labels.ravel()
    n = n_lab + 1
    ok = (np.isfinite(coh) & np.isfinite(phase)).ravel()
    w = ok.astype(np.float64)
    z = np.exp(1j * np.where(ok, phase.ravel(), 0.0)) * w

    def csum(values: np.ndarray, which: np.ndarray) -> np.ndarray:
        return (np.bincount(which, weights=values.real, minlength=n)
                + 1j * np.bincount(which, weights=values.imag, minlength=n))

    # stable reference: pixels more than `gap` and at most `gap + ring` px from a move, in
    # none (grey dilation of ids). The gap matters: an outline stops where the motion fades
    # into the noise, not where it ends, so the pixels just outside it still move.
    grown = ndimage.grey_dilation(labels, footprint=_disk(gap + ring)) if ring > 0 else labels
    near = (ndimage.binary_dilation(labels > 0, structure=_disk(gap)) if gap > 0
            else labels > 0)
    ring2d = np.where(~near & (grown > 0), grown, 0)
    ring_lab = ring2d.ravel()
    ring_n = np.bincount(ring_lab, weights=w, minlength=n)
    if deramp:
        # the atmosphere tilts the background: remove the ring's mean phase gradient
        # (circular mean of wrapped neighbour differences), centred on each move
        zimg = z.reshape(labels.shape)
        gx = np.angle(csum((zimg[:, 1:] * np.conj(zimg[:, :-1])).ravel(),
                           np.where(ring2d[:, 1:] == ring2d[:, :-1], ring2d[:, 1:], 0).ravel()))
        gy = np.angle(csum((zimg[1:] * np.conj(zimg[:-1])).ravel(),
                           np.where(ring2d[1:] == ring2d[:-1], ring2d[1:], 0).ravel()))
        yy, xx = np.indices(labels.shape)
        cnt = np.maximum(np.bincount(lab, minlength=n), 1)
        cy = np.bincount(lab, weights=yy.ravel(), minlength=n) / cnt
        cx = np.bincount(lab, weights=xx.ravel(), minlength=n) / cnt
        owner = lab + ring_lab  # disjoint: a pixel is in a move or in a ring
        ramp = gx[owner] * (xx.ravel() - cx[owner]) + gy[owner] * (yy.ravel() - cy[owner])
        z = z * np.exp(-1j * np.where(owner > 0, ramp, 0.0))
    ref = np.where(ring_n > 0, np.angle(csum(z, ring_lab)), 0.0)
    rel = z * np.exp(-1j * ref[lab])
    npx = np.bincount(lab, minlength=n)
    if peak == "phase":
        # the bump's peak: the pixels whose relative phase (3 x 3 complex mean, to tame the
        # noise) is the most extreme on the side of the move's mean phase. Unlike the
        # deepest pixels this finds the peak of an outline cut by incoherent pixels or of
        # an elongated tongue.
        inside = (labels > 0).ravel()
        rel_in = np.where(inside, rel, 0).reshape(labels.shape)
        smooth = (ndimage.uniform_filter(rel_in.real, 3)
                  + 1j * ndimage.uniform_filter(rel_in.imag, 3)).ravel()
        side = np.sign(np.angle(csum(rel, lab)))
        rank = _rank_within(lab, np.angle(smooth) * side[lab])
        keep = np.maximum(np.ceil(peak_share * npx), min_core)
        core_lab = np.where((lab > 0) & (rank < keep[lab]), lab, 0)
    else:
        # the pixels deepest inside the outline (exact EDT), and at least the `min_core`
        # deepest, so a flat-topped move does not rest on one noisy pixel
        depth = edt(labels > 0).ravel()
        deepest = ndimage.maximum(depth, lab, np.arange(n))
        rank = _rank_within(lab, depth)
        core_lab = np.where((lab > 0) & ((depth >= core * deepest[lab]) | (rank < min_core)),
                            lab, 0)
    count = np.bincount(lab, weights=w, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[:, 0] = np.bincount(lab, minlength=n)
        out[:, 1] = np.bincount(lab, weights=area.ravel(), minlength=n)
        out[:, 2] = np.bincount(lab, weights=np.where(ok, coh.ravel(), 0), minlength=n) / count
        out[:, 3] = np.where(count > 0, np.angle(csum(rel, lab)), np.nan)
        out[:, 4] = np.where(count > 0, np.angle(csum(rel, core_lab)), np.nan)
        out[:, 5] = ring_n
        near_wrap = (np.abs(np.angle(rel)) > 0.75 * np.pi) & ok
        out[:, 6] = np.bincount(lab, weights=near_wrap.astype(np.float64), minlength=n) / count
    return out


def velocity_from_phase(phase: np.ndarray, delay_days: np.ndarray,
                        wavelength: float = schema.WAVELENGTH_M) -> np.ndarray:
    """LOS velocity (m/yr) of a phase (rad) over a delay: ``phase * lambda / (4 pi) * 365.25 / d``."""
    return np.asarray(phase) * wavelength / (4 * np.pi) * DAYS_PER_YEAR / np.asarray(delay_days)


def move_time_series(cube: xr.Dataset, labels: xr.DataArray | None = None, *,
                     ring: int = 5, gap: int = 3, peak: str = "phase", peak_share: float = 0.1,
                     core: float = 0.9, min_core: int = 3,
                     deramp: bool = True,
                     wavelength: float | None = None,
                     ambiguity_margin: float = 0.8, wrap_fraction: float = 0.1,
                     hausdorff: bool = True,
                     client=None, progress: bool = False) -> pd.DataFrame:
    """Per move, per interferogram: area, coherence, phase, velocity, outline change.

    Parameters
    ----------
    cube
        A cube (``open_cube``) with ``interferogram`` and, when ``labels`` is
        None, ``move_id``.
    labels
        int (start_date, delay, y, x) move ids, 0 none: the cube's ``move_id``
        by default, or :func:`label_moves` of predictions.
    ring
        Width (px) of the ring around each move whose circular mean phase is the
        stable reference (removes the atmosphere's offset).
    gap
        Pixels left between the outline and the ring: an outline is drawn where the
        motion fades into the noise, so the ground just outside it still moves (on
        the synthetic ``tiny`` preset, a ring touching the outline takes 10-45 % off
        the noise-free estimate).
    deramp
        Also remove the ring's mean phase gradient (the atmosphere's local tilt),
        as a plane through each move's centroid.
    peak
        Where a move's velocity is read. ``"phase"`` (default): its ``peak_share``
        pixels (at least ``min_core``) whose 3 x 3-smoothed phase relative to the
        ring is the most extreme, on the side of the move's mean (the synthetic
        truth is the bump's peak velocity). ``"depth"``: its deepest pixels
        (``core``), right for flat-topped moves and compact outlines.
    peak_share
        Share of a move's pixels read with ``peak="phase"``.
    core
        With ``peak="depth"``, the core of a move: its pixels at least ``core``
        x its largest distance to the border (exact EDT,
        ``isslide_cube.kernels.edt``); 0.9 keeps the few deepest pixels, 0.7
        averages a bump's shoulders in (13-19 % low without noise on ``tiny``).
    min_core
        The peak pixels or core hold at least this many pixels (so a move does
        not rest on one or two noisy pixels).
    wavelength
        Radar wavelength in metres (default: the cube attr, else Sentinel-1's).
    ambiguity_margin
        Flag a row when its motion may exceed ``margin`` x half a fringe.
        The motion bound is the larger of this row's estimate and the move's
        median velocity on its shortest delay, times the delay: a wrapped phase
        cannot tell on its own that it wrapped.
    wrap_fraction
        Also flag a row when more than this share of the move's pixels have a
        relative phase near +-pi (a fringe crosses the move), and then every
        longer delay of the same move and start date.
    hausdorff
        Add ``hausdorff_px``: Hausdorff distance (pixels) between the outline
        and the one of the previous start date of the same delay (NaN when
        either is empty).
    client
        Optional ``distributed.Client`` (or address) computing the slices.

    Returns
    -------
    pandas.DataFrame
        One row per (move_id, start_date, delay) where the move covers pixels:
        ``end_date, area_px, area_m2, mean_coherence, mean_phase`` and
        ``core_phase`` (rad, circular means relative to the ring, over the move
        and over its peak pixels, see ``peak``), ``velocity_m_per_yr`` (from the core phase: the
        peak LOS velocity), ``mean_velocity_m_per_yr`` (from the mean phase),
        ``motion_m`` (peak LOS motion over the delay), ``ambiguous``,
        ``hausdorff_px``.

    Example
    -------
    >>> table = move_time_series(open_cube("cube.zarr"), client=client)  # doctest: +SKIP
    """
    import dask
    import pandas as pd

    from isslide_cube.cluster import as_client

    if peak not in ("phase", "depth"):
        raise ValueError(f"peak={peak!r}: use 'phase' or 'depth'")
    if labels is None:
        if schema.MOVE_ID not in cube:
            raise schema.CubeError("cube has no move_id: pass labels=label_moves(detections)")
        labels = cube[schema.MOVE_ID]
    labels = labels.where(labels > 0, 0).astype(np.int32)  # the -1 fill of missing interferograms
    wavelength = float(wavelength or cube.attrs.get("wavelength_m", schema.WAVELENGTH_M))
    area = pixel_area_m2(cube)
    n_lab = int(labels.max().compute()) if labels.chunks else int(labels.max())
    ifg = cube[schema.INTERFEROGRAM]
    has = cube[schema.HAS_INTERFEROGRAM].values
    starts, delays = cube[schema.START_DATE].values, cube[schema.DELAY].values

    area_d = dask.delayed(area, pure=True)  # one graph key shared by every task, not a copy each
    tasks, keys = [], []
    for i in range(len(starts)):
        for j in range(len(delays)):
            if not has[i, j]:
                continue
            sel = {schema.START_DATE: i, schema.DELAY: j}
            lab = labels.isel(sel).data
            coh = ifg.isel(sel).sel(band=schema.COHERENCE).data
            pha = ifg.isel(sel).sel(band=schema.PHASE).data
            tasks.append(dask.delayed(_slice_stats)(lab, coh, pha, area_d, n_lab, ring, core,
                                                    deramp, gap, min_core, peak,
                                                    peak_share))
            keys.append((i, j))
    client = as_client(client)
    results = client.gather(client.compute(tasks)) if client is not None else dask.compute(*tasks)
    rows = []
    for (i, j), stats in zip(keys, results, strict=True):
        present = np.flatnonzero(stats[:, 0] > 0)
        for k in present[present > 0]:
            rows.append((int(k), starts[i], int(delays[j]), *stats[k, :5], stats[k, 6]))
    table = pd.DataFrame(rows, columns=["move_id", "start_date", "delay", "area_px", "area_m2",
                                        "mean_coherence", "mean_phase", "core_phase",
                                        "wrap_fraction"])
    if table.empty:
        return table
    table["end_date"] = table["start_date"] + pd.to_timedelta(table["delay"], unit="D")
    table["area_px"] = table["area_px"].astype(np.int64)
    delay = table["delay"].to_numpy()
    table["velocity_m_per_yr"] = velocity_from_phase(table["core_phase"].to_numpy(), delay,
                                                     wavelength)
    table["mean_velocity_m_per_yr"] = velocity_from_phase(table["mean_phase"].to_numpy(), delay,
                                                          wavelength)
    table["motion_m"] = table["velocity_m_per_yr"] * table["delay"] / DAYS_PER_YEAR
    table["ambiguous"] = _ambiguity(table, wavelength, ambiguity_margin, wrap_fraction)
    if hausdorff:
        table = table.merge(outline_changes(labels, client=client), how="left",
                            on=["move_id", "start_date", "delay"])
    return table.sort_values(["move_id", "delay", "start_date"]).reset_index(drop=True)


def _ambiguity(table: pd.DataFrame, wavelength: float, margin: float,
               wrap_fraction: float) -> np.ndarray:
    half_fringe = wavelength / 4  # phase pi
    fringes = table["wrap_fraction"] > wrap_fraction
    # a fringe at one delay means at least as much motion over the longer ones
    first = (table["delay"].where(fringes).groupby([table["move_id"], table["start_date"]])
             .transform("min"))
    fringes |= table["delay"] >= first.fillna(np.inf)
    shortest = table.groupby("move_id")["delay"].transform("min")
    short_v = (table["velocity_m_per_yr"].where((table["delay"] == shortest) & ~fringes)
               .abs().groupby(table["move_id"]).transform("median"))
    v_bound = np.fmax(table["velocity_m_per_yr"].abs(), short_v.fillna(0))
    bound = v_bound * table["delay"] / DAYS_PER_YEAR >= margin * half_fringe
    return (bound | fringes).to_numpy()


def outline_changes(labels: xr.DataArray, *, client=None) -> pd.DataFrame:
    """Hausdorff distance (px) between each move's outline and its previous one.

    For move ``k``, delay ``d`` and start date ``s_i`` (i >= 1): the symmetric
    Hausdorff distance between ``labels[s_{i-1}, d] == k`` and
    ``labels[s_i, d] == k``, computed by ``isslide_cube.kernels.hausdorff_distance``
    over the move's bounding box, for every (start_date, delay) at once (lazy,
    parallel over the dask chunks). NaN when either outline is empty.

    Returns
    -------
    pandas.DataFrame
        Columns ``move_id, start_date, delay, hausdorff_px``.
    """
    import dask
    import pandas as pd
    from scipy import ndimage

    from isslide_cube.cluster import as_client
    from isslide_cube.kernels import hausdorff_distance

    lab_np = np.asarray(labels.transpose(schema.START_DATE, schema.DELAY, "y", "x").values)
    n_s = lab_np.shape[0]
    if n_s < 2:
        return pd.DataFrame(columns=["move_id", "start_date", "delay", "hausdorff_px"])
    boxes = ndimage.find_objects(lab_np.max(axis=(0, 1)))
    lazy, meta = [], []
    for k0, box in enumerate(boxes):
        if box is None:
            continue
        k = k0 + 1
        ys, xs = box
        fp = (labels.isel(y=ys, x=xs) == k).transpose(schema.START_DATE, schema.DELAY, "y", "x")
        fp = fp.chunk({schema.START_DATE: 1, schema.DELAY: 1, "y": -1, "x": -1})
        prev = fp.isel({schema.START_DATE: slice(None, -1)})
        cur = fp.isel({schema.START_DATE: slice(1, None)})
        prev = prev.assign_coords({schema.START_DATE: cur[schema.START_DATE].values})
        lazy.append(hausdorff_distance(prev, cur, dims=("y", "x"), empty="nan",
                                       both_empty=np.nan))
        meta.append(k)
    client = as_client(client)
    done = client.gather(client.compute(lazy)) if client is not None else dask.compute(*lazy)
    frames = []
    for k, hd in zip(meta, done, strict=True):
        df = hd.rename("hausdorff_px").to_dataframe().reset_index()
        df["move_id"] = k
        frames.append(df[["move_id", schema.START_DATE, schema.DELAY, "hausdorff_px"]])
    return pd.concat(frames, ignore_index=True)
