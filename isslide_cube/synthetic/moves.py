"""Slow moving areas: placement on steep or high ground, shape, velocity, activity.

A move is a smooth bump of line-of-sight (LOS) displacement,
``d(r) = D * (1 - r**2)**2`` for ``r < 1`` with ``r`` the elliptical radius (semi-axes
``a`` along the downslope direction and ``b`` across), so the phase pattern is a
*bubble* fading towards its border while ``D`` stays under one fringe (lambda / 2 =
27.7 mm) and *fringes* beyond. ``D = |v| * active_days / 365.25`` with ``v`` the LOS
velocity (m/yr; positive = away from the sensor, i.e. range increase).

Velocities are log-uniform (stratified sampling) over the preset's range; activity is a
two-state Markov chain over the acquisition intervals. See ``presets`` for why the
distributions are what they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import ndimage

from isslide_cube.schema import CLASSES, ZONES, fringe_metres
from isslide_cube.synthetic.presets import Preset
from isslide_cube.synthetic.terrain import FOREST, WATER, gradient, sensor_unit

#: the velocity towards which each zone's guaranteed (always active) move is picked
GUARANTEED_VELOCITY = 0.6


@dataclass
class Move:
    """One moving area (all lengths in metres, velocity in m/yr)."""

    move_id: int
    cls: str
    zone: str
    row: int
    col: int
    lon: float
    lat: float
    semi_major: float
    semi_minor: float
    orientation_deg: float  # azimuth of the major axis, clockwise from north
    velocity: float  # LOS, m/yr, + = away from the sensor
    active: np.ndarray  # bool per acquisition interval

    def active_days(self, i1: int, i2: int, step_days: int) -> float:
        """Days of activity between acquisitions ``i1`` and ``i2``."""
        return float(self.active[i1:i2].sum() * step_days)

    def peak_displacement(self, i1: int, i2: int, step_days: int) -> float:
        """Signed peak LOS displacement (m) between acquisitions ``i1`` and ``i2``."""
        return self.velocity * self.active_days(i1, i2, step_days) / 365.25

    def window(self, spacing: tuple[float, float], shape: tuple[int, int]) -> tuple[slice, slice]:
        """Row/col slices of the bump's bounding box, clipped to the grid."""
        hr = int(np.ceil(self.semi_major / spacing[0])) + 1
        hc = int(np.ceil(self.semi_major / spacing[1])) + 1
        return (slice(max(0, self.row - hr), min(shape[0], self.row + hr + 1)),
                slice(max(0, self.col - hc), min(shape[1], self.col + hc + 1)))

    def bump(self, spacing: tuple[float, float], shape: tuple[int, int]) -> tuple[tuple[slice, slice], np.ndarray]:
        """(window, unit-peak displacement shape on it) as float32."""
        win = self.window(spacing, shape)
        rows = np.arange(win[0].start, win[0].stop) - self.row
        cols = np.arange(win[1].start, win[1].stop) - self.col
        north = -rows[:, None] * spacing[0]
        east = cols[None, :] * spacing[1]
        az = np.deg2rad(self.orientation_deg)
        along = east * np.sin(az) + north * np.cos(az)
        across = east * np.cos(az) - north * np.sin(az)
        r2 = (along / self.semi_major) ** 2 + (across / self.semi_minor) ** 2
        return win, np.where(r2 < 1.0, (1.0 - r2) ** 2, 0.0).astype("float32")

    def active_periods(self, dates: pd.DatetimeIndex) -> str:
        """Active periods as ``start/end`` ISO pairs joined by ``;`` (empty if never)."""
        periods, start = [], None
        for i, on in enumerate(self.active):
            if on and start is None:
                start = i
            if start is not None and (not on or i == len(self.active) - 1):
                end = i + 1 if on else i
                periods.append(f"{dates[start]:%Y-%m-%d}/{dates[end]:%Y-%m-%d}")
                start = None
        return ";".join(periods)


def stratified_loguniform(n: int, lo: float, hi: float, rng: np.random.Generator) -> np.ndarray:
    """``n`` log-uniform values over [lo, hi], one per equal-log stratum (shuffled).

    Example
    -------
    >>> v = stratified_loguniform(10, 0.01, 100.0, np.random.default_rng(0))
    >>> sorted(np.floor(np.log10(v)).astype(int).tolist())
    [-2, -2, -1, -1, 0, 0, 1, 1, 2, 2]
    """
    u = (rng.permutation(n) + rng.uniform(size=n)) / n
    return np.exp(np.log(lo) + u * (np.log(hi) - np.log(lo)))


def markov_activity(n: int, p_on: float, p_off: float, rng: np.random.Generator) -> np.ndarray:
    """Two-state activity chain over ``n`` intervals; stationary share ``p_on/(p_on+p_off)``."""
    state = rng.uniform() < p_on / (p_on + p_off)
    out = np.empty(n, dtype=bool)
    for i in range(n):
        out[i] = state
        state = (rng.uniform() >= p_off) if state else (rng.uniform() < p_on)
    return out


def _placement_weight(cls: str, dem: np.ndarray, slope: np.ndarray) -> np.ndarray:
    """Where each class lives: landslides on steep slopes, rock glaciers high and gentle."""
    def ramp(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
        return np.clip((x - lo) / (hi - lo), 0.0, 1.0)

    if cls == "Landslide":
        return ramp(slope, 15.0, 30.0) * (1.0 - ramp(slope, 45.0, 55.0)) * ramp(dem, 900.0, 1400.0)
    if cls == "Rock Glacier":
        return ramp(dem, 2300.0, 2600.0) * (1.0 - ramp(slope, 28.0, 38.0)) * ramp(slope, 5.0, 10.0)
    return np.maximum(ramp(slope, 15.0, 30.0), ramp(dem, 2000.0, 2500.0))


def place_moves(preset: Preset, rng: np.random.Generator, dem: np.ndarray,
                spacing: tuple[float, float], zone: np.ndarray, cover: np.ndarray,
                invalid: np.ndarray, lonlat: tuple[np.ndarray, np.ndarray],
                dates: pd.DatetimeIndex) -> list[Move]:
    """Draw ``preset.n_moves`` moves.

    The len(ZONES) velocities closest (in log) to 0.6 m/yr go one per zone to moves that
    stay active the whole time, so every zone has an annotated move even in ``tiny``.
    Centres are drawn with a class-specific weight over the zone, away from water,
    layover/shadow/no-data and the grid edge, and not overlapping earlier moves.

    Parameters
    ----------
    invalid
        Pixels where a move cannot be centred (layover, shadow, no data).
    lonlat
        Pixel-centre longitudes (cols) and latitudes (rows).
    """
    n = preset.n_moves
    shape = dem.shape
    smooth = ndimage.uniform_filter(dem.astype("float64"), 9)
    ge, gn = gradient(smooth, spacing)
    slope = np.rad2deg(np.arctan(np.hypot(*gradient(dem.astype("float64"), spacing))))

    velocity = stratified_loguniform(n, *preset.velocity_range, rng)
    classes = rng.choice(len(CLASSES), size=n, p=np.asarray(preset.class_weights) / sum(preset.class_weights))
    names = [z for z in ZONES if z in preset.zone_weights]
    weights = np.array([preset.zone_weights[z] for z in names])
    zones = rng.choice(len(names), size=n, p=weights / weights.sum())
    guaranteed = np.argsort(np.abs(np.log(velocity / GUARANTEED_VELOCITY)))[: len(names)]
    zones[guaranteed] = rng.permutation(len(names))

    # sizes
    lo, hi = preset.radius_range
    a = np.exp(rng.uniform(np.log(lo), np.log(hi), n))
    ratio = rng.uniform(0.6, 1.0, n)
    elong = (classes == 0) & (rng.uniform(size=n) < preset.elongated_fraction)
    a[elong] = np.exp(rng.uniform(*np.log(preset.elongated_length), elong.sum())) / 2
    ratio[elong] = rng.uniform(0.15, 0.35, elong.sum())
    a[classes == 1] = np.minimum(a[classes == 1], 800.0)  # rock glacier lobes stay small

    moves: list[Move] = []
    taken: list[tuple[int, int, float]] = []
    ue, un = sensor_unit()
    inc = np.deg2rad(39.0)
    for zi, ci in sorted({(int(z), int(c)) for z, c in zip(zones, classes, strict=True)}):
        members = np.flatnonzero((zones == zi) & (classes == ci))
        zone_code = ZONES.index(names[zi])
        ok = (zone == zone_code) & ~invalid & (cover != WATER)
        w = _placement_weight(CLASSES[ci], dem, slope) * ok
        if preset.forest_weight != 1.0:
            w = w * np.where(cover == FOREST, preset.forest_weight, 1.0)
        if w.sum() == 0:
            w = ok.astype("float64")
        if w.sum() == 0:
            raise ValueError(f"zone {names[zi]!r} has no valid pixel; enlarge it in the preset")
        cdf = np.cumsum(w.ravel(), dtype="float64")
        for m in members:
            margin = (int(a[m] / spacing[0]) + 2, int(a[m] / spacing[1]) + 2)
            for _attempt in range(200):
                flat = int(np.searchsorted(cdf, rng.uniform(0, cdf[-1]), side="right"))
                r, c = divmod(min(flat, cdf.size - 1), shape[1])
                inside = margin[0] <= r < shape[0] - margin[0] and margin[1] <= c < shape[1] - margin[1]
                if not inside and _attempt < 150:
                    continue
                free = all(np.hypot((r - r2) * spacing[0], (c - c2) * spacing[1]) > 0.8 * (a[m] + a2)
                           for r2, c2, a2 in taken)
                if free or _attempt == 199:
                    break
            taken.append((r, c, float(a[m])))
            de, dn = -ge[r, c], -gn[r, c]
            norm = np.hypot(de, dn)
            de, dn = (de / norm, dn / norm) if norm > 0 else (0.0, -1.0)
            alpha = np.arctan(norm)
            # downslope motion: range increases with the downward part, decreases if it
            # heads towards the sensor
            los = np.sin(alpha) * np.cos(inc) - np.cos(alpha) * np.sin(inc) * (de * ue + dn * un)
            sign = 1.0 if los >= 0 else -1.0
            active = (np.ones(len(dates) - 1, dtype=bool) if m in guaranteed
                      else markov_activity(len(dates) - 1, preset.p_on, preset.p_off, rng))
            moves.append(Move(
                move_id=0, cls=CLASSES[ci], zone=names[zi], row=r, col=c,
                lon=float(lonlat[0][c]), lat=float(lonlat[1][r]),
                semi_major=float(a[m]), semi_minor=float(a[m] * ratio[m]),
                orientation_deg=float(np.rad2deg(np.arctan2(de, dn)) % 360.0),
                velocity=float(sign * velocity[m]), active=active,
            ))
    moves.sort(key=lambda mv: (mv.row, mv.col))
    for i, mv in enumerate(moves, start=1):
        mv.move_id = i
    return moves


def moves_table(moves: list[Move], dates: pd.DatetimeIndex, delays: tuple[int, ...],
                step_days: int) -> pd.DataFrame:
    """The ``truth/moves.csv`` table: one row per move.

    Columns: move_id, class, zone, lon, lat, row, col, semi_major_m, semi_minor_m,
    radius_m (sqrt(a b)), orientation_deg, los_velocity_m_per_yr, active_fraction,
    active_periods, and per delay ``fringes_<d>d``: peak fringes when active throughout.
    """
    fringe = fringe_metres()
    rows = []
    for mv in moves:
        row = {
            "move_id": mv.move_id, "class": mv.cls, "zone": mv.zone,
            "lon": round(mv.lon, 7), "lat": round(mv.lat, 7), "row": mv.row, "col": mv.col,
            "semi_major_m": round(mv.semi_major, 2), "semi_minor_m": round(mv.semi_minor, 2),
            "radius_m": round(float(np.sqrt(mv.semi_major * mv.semi_minor)), 2),
            "orientation_deg": round(mv.orientation_deg, 2),
            "los_velocity_m_per_yr": round(mv.velocity, 6),
            "active_fraction": round(float(mv.active.mean()), 4),
            "active_periods": mv.active_periods(dates),
        }
        for d in delays:
            row[f"fringes_{d}d"] = round(abs(mv.velocity) * d / 365.25 / fringe, 6)
        rows.append(row)
    return pd.DataFrame(rows)
