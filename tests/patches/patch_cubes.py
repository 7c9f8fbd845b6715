"""Cubes built in memory in exactly the cube contract's format (DESIGN.md section 3).

``make_cube`` draws random coherence/phase, paints rectangular and round
"moves" into ``mask``/``move_id`` on chosen interferograms, and lays the grid
out in four zones (quadrants). ``cube_store`` writes it to a real Zarr store
and reopens it the way ``open_cube`` does (dask-backed, ``mask`` undecoded).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import rioxarray  # noqa: F401
import xarray as xr

from isslide_cube import schema as s


@dataclass
class Move:
    """A move painted on the mask: a disc (``radius``) or a box (``height``, ``width``)."""

    row: int
    col: int
    radius: int = 0
    height: int = 0
    width: int = 0
    active: list[int] | None = None  # indices into the list of existing interferograms
    pixels: np.ndarray = field(default=None, repr=False)

    def paint(self, ny: int, nx: int) -> np.ndarray:
        yy, xx = np.mgrid[:ny, :nx]
        if self.radius:
            return (yy - self.row) ** 2 + (xx - self.col) ** 2 <= self.radius ** 2
        return ((yy >= self.row) & (yy < self.row + self.height)
                & (xx >= self.col) & (xx < self.col + self.width))


# 15 interferograms exist with the defaults (6 + 5 + 4); `active` picks some of them
DEFAULT_MOVES = (
    Move(20, 25, radius=6, active=list(range(8))),  # other (top-left quadrant)
    Move(15, 100, height=30, width=45),          # vanoise (top-right): larger than a patch
    Move(85, 30, radius=9, active=list(range(0, 15, 2))),  # ecrins (bottom-left)
    Move(90, 110, radius=7, active=[i for i in range(15) if i % 5 != 2]),  # queyras
    Move(0, 148, height=4, width=2),             # queyras/vanoise corner strip at the border
)


def make_cube(ny: int = 120, nx: int = 150, n_dates: int = 7, delays=(6, 12, 18),
              chunk: int = 60, moves=DEFAULT_MOVES, seed: int = 0,
              with_mask: bool = True, with_zone: bool = True) -> xr.Dataset:
    """A dask-backed cube following the contract (numbers chosen to exercise chunk borders)."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2018-07-02", periods=n_dates, freq="6D")
    delays = np.asarray(delays, dtype="int64")
    end = dates.values[:, None] + delays[None, :].astype("timedelta64[D]")
    has = end <= dates.values[-1]
    n_s, n_d = len(dates), len(delays)
    ifg = np.full((n_s, n_d, 2, ny, nx), np.nan, dtype="float32")
    mask = np.full((n_s, n_d, ny, nx), s.MASK_FILL, dtype="uint8")
    move_id = np.full((n_s, n_d, ny, nx), 0, dtype="int32")
    existing = np.argwhere(has)
    for si, di in existing:
        ifg[si, di, 0] = rng.uniform(0, 1, (ny, nx))
        ifg[si, di, 1] = rng.uniform(-np.pi, np.pi, (ny, nx))
        ifg[si, di, 0, :3, :5] = np.nan  # a no-data corner
        mask[si, di] = 0
    for k, move in enumerate(moves, start=1):
        footprint = move.paint(ny, nx)
        active = move.active if move.active is not None else range(len(existing))
        for a in active:
            si, di = existing[a % len(existing)]
            mask[si, di][footprint] = 1
            move_id[si, di][footprint] = k
    y = 45.0 - (np.arange(ny) + 0.5) * 0.001
    x = 6.5 + (np.arange(nx) + 0.5) * 0.001
    zone = np.zeros((ny, nx), dtype="uint8")
    zone[:, nx // 2:] = 1
    zone[ny // 2:, : nx // 2] = 2
    zone[ny // 2:, nx // 2:] = 3
    data = {
        s.INTERFEROGRAM: (s.CUBE_DIMS, ifg),
        s.LAYOVER: ((s.Y, s.X), np.zeros((ny, nx), dtype=bool)),
    }
    if with_mask:
        data[s.MASK] = (s.MASK_DIMS, mask)
        data[s.MOVE_ID] = (s.MASK_DIMS, move_id)
    if with_zone:
        data[s.ZONE] = ((s.Y, s.X), zone, s.zone_attrs())
    ds = xr.Dataset(
        data,
        coords={
            s.START_DATE: dates.values.astype("datetime64[ns]"),
            s.DELAY: (s.DELAY, delays, {"units": "days"}),
            s.BAND: np.array(s.BANDS, dtype=object),
            s.Y: y, s.X: x,
            s.END_DATE: ((s.START_DATE, s.DELAY), end.astype("datetime64[ns]")),
            s.HAS_INTERFEROGRAM: ((s.START_DATE, s.DELAY), has),
        },
    ).rio.write_crs("EPSG:4326")
    return ds.chunk({s.START_DATE: 1, s.DELAY: 1, s.BAND: 2, s.Y: chunk, s.X: chunk})


def write_and_open(ds: xr.Dataset, store) -> xr.Dataset:
    """Write ``ds`` to a Zarr v3 store and reopen it the way ``open_cube`` does."""
    encoding = {s.MASK: {"_FillValue": s.MASK_FILL}} if s.MASK in ds else {}
    ds.to_zarr(store, mode="w", consolidated=False, encoding=encoding)
    # undecoded like open_cube: mask stays uint8 with 255; NaN is the data's own value
    opened = xr.open_zarr(store, consolidated=False, mask_and_scale=False)
    return opened.set_coords([s.SPATIAL_REF])
