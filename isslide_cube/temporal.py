"""Temporal stacks: the interferograms that surround each interferogram in time.

The annotators of ISSLIDE read an interferogram together with its neighbours:
those that share its first acquisition (every delay), those that share its
second acquisition, and the previous/next ones of the same delay. This module
builds those stacks on the cube (``start_date x delay``) and on a patches
dataset (samples grouped by ``location``) as a new ``time`` axis. No torch.

Three kinds of stack (``spec`` strings, as on the CLI's ``--temporal``):

``"start"``
    The interferograms with the same ``start_date``, one per delay (ascending).
``"end"``
    The interferograms with the same ``end_date``, one per delay (ascending):
    member ``d`` starts at ``end_date - d``.
``"consecutive:K"``
    ``K`` interferograms of the same delay at consecutive start dates, centred
    on the target: offsets ``-(K // 2) .. K - 1 - K // 2`` along ``start_date``.

A member that does not exist (outside the cube, no interferogram, no patch at
that location) is filled (NaN interferogram, mask 0) and flagged by
``valid`` = False; the stacks keep a fixed length ``T``.

Examples
--------
>>> spec = parse_spec("consecutive:3")
>>> spec.kind, spec.k, spec.offsets
('consecutive', 3, (-1, 0, 1))
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from isslide_cube import schema

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

log = logging.getLogger(__name__)

TIME = "time"  # the stack axis
VALID = "valid"  # member exists
KINDS = ("start", "end", "consecutive")


@dataclass(frozen=True)
class TemporalSpec:
    """A parsed stack specification (see the module docstring)."""

    kind: str
    k: int = 0

    @property
    def offsets(self) -> tuple[int, ...]:
        """Start-date offsets of a ``consecutive`` stack, centred on the target."""
        if self.kind != "consecutive":
            return ()
        return tuple(range(-(self.k // 2), self.k - self.k // 2))

    def __str__(self) -> str:
        return f"consecutive:{self.k}" if self.kind == "consecutive" else self.kind


def parse_spec(spec: str | TemporalSpec) -> TemporalSpec:
    """Parse ``"start"``, ``"end"`` or ``"consecutive:K"`` (K >= 1).

    Raises
    ------
    ValueError
        For any other string, quoting it and the accepted forms.
    """
    if isinstance(spec, TemporalSpec):
        return spec
    text = str(spec).strip().lower()
    if text in ("start", "end"):
        return TemporalSpec(text)
    if text.startswith("consecutive"):
        _, _, k = text.partition(":")
        if k.isdigit() and int(k) >= 1:
            return TemporalSpec("consecutive", int(k))
    raise ValueError(f"temporal spec {spec!r} is not one of 'start', 'end', 'consecutive:K' "
                     "(K an integer >= 1, e.g. 'consecutive:3')")


# ------------------------------------------------------------------ member index
def member_index(start_dates: np.ndarray, delays: np.ndarray, has: np.ndarray,
                 spec: str | TemporalSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index of the members of every interferogram's stack, on a start_date x delay grid.

    Parameters
    ----------
    start_dates
        ``(S,)`` datetime64 start dates of the grid (sorted ascending).
    delays
        ``(D,)`` integer delays in days.
    has
        ``(S, D)`` bool: the interferogram exists.
    spec
        Stack kind (see :func:`parse_spec`).

    Returns
    -------
    (i_start, i_delay, valid)
        Three ``(S, D, T)`` arrays: grid indices of each member (clipped to the
        grid where invalid, so they can always be used to index) and whether the
        member exists.

    Examples
    --------
    >>> s = np.array(["2018-07-02", "2018-07-08", "2018-07-14"], dtype="datetime64[ns]")
    >>> i, j, ok = member_index(s, np.array([6, 12]), np.ones((3, 2), bool), "end")
    >>> i[1, 1].tolist(), j[1, 1].tolist(), ok[1, 1].tolist()  # ends 07-20: 07-14+6, 07-08+12
    ([2, 1], [0, 1], [True, True])
    """
    spec = parse_spec(spec)
    start_dates = np.asarray(start_dates, dtype="datetime64[ns]")
    delays = np.asarray(delays).astype(np.int64)
    has = np.asarray(has, dtype=bool)
    n_s, n_d = has.shape
    s_idx = np.arange(n_s)[:, None, None]
    d_idx = np.arange(n_d)[None, :, None]
    if spec.kind == "start":
        i_start = np.broadcast_to(s_idx, (n_s, n_d, n_d))
        i_delay = np.broadcast_to(np.arange(n_d)[None, None, :], (n_s, n_d, n_d))
        in_grid = np.ones((n_s, n_d, n_d), bool)
    elif spec.kind == "end":
        end = start_dates[:, None] + delays[None, :].astype("timedelta64[D]")  # (S, D)
        member_start = end[:, :, None] - delays[None, None, :].astype("timedelta64[D]")
        pos = np.searchsorted(start_dates, member_start)
        pos_c = np.clip(pos, 0, n_s - 1)
        in_grid = start_dates[pos_c] == member_start
        i_start = pos_c
        i_delay = np.broadcast_to(np.arange(n_d)[None, None, :], (n_s, n_d, n_d))
    else:
        offsets = np.asarray(spec.offsets)
        pos = s_idx + offsets[None, None, :]
        in_grid = np.broadcast_to((pos >= 0) & (pos < n_s), (n_s, n_d, spec.k))
        i_start = np.broadcast_to(np.clip(pos, 0, n_s - 1), (n_s, n_d, spec.k))
        i_delay = np.broadcast_to(d_idx, (n_s, n_d, spec.k))
    i_start = np.ascontiguousarray(i_start, dtype=np.int64)
    i_delay = np.ascontiguousarray(i_delay, dtype=np.int64)
    valid = in_grid & has[i_start, i_delay] & has[:, :, None]
    return i_start, i_delay, valid


def member_labels(spec: str | TemporalSpec, delays: np.ndarray) -> np.ndarray:
    """Labels of the ``time`` axis: the delay of each member (start/end) or its offset."""
    spec = parse_spec(spec)
    if spec.kind == "consecutive":
        return np.asarray(spec.offsets, dtype=np.int64)
    return np.asarray(delays, dtype=np.int64)


def target_position(spec: str | TemporalSpec, delays: np.ndarray) -> np.ndarray:
    """Position of the interferogram itself in its own stack, per delay ``(D,)``."""
    spec = parse_spec(spec)
    n_d = len(delays)
    if spec.kind == "consecutive":
        return np.full(n_d, spec.offsets.index(0), dtype=np.int64)
    return np.arange(n_d, dtype=np.int64)


# ------------------------------------------------------------------------- cube
def stack_cube(cube: xr.Dataset, spec: str | TemporalSpec,
               variable: str = schema.INTERFEROGRAM) -> xr.Dataset:
    """Stack a cube variable along a new ``time`` axis, lazily.

    Parameters
    ----------
    cube
        A cube (``open_cube``); ``variable`` has dims ``(start_date, delay, ...)``.
    spec
        ``"start"``, ``"end"`` or ``"consecutive:K"``.
    variable
        The variable to stack (``interferogram`` by default; ``mask`` works too).

    Returns
    -------
    xr.Dataset
        ``variable`` with dims ``(start_date, delay, time, ...)`` (NaN for
        missing members of float variables, 0 otherwise), ``valid``
        ``(start_date, delay, time)`` bool, and coords ``member_start_date``,
        ``member_delay`` (start_date, delay, time) and ``time`` (delays or
        offsets). Dask-backed when the cube is.

    Example
    -------
    >>> st = stack_cube(open_cube("cube.zarr"), "start")  # doctest: +SKIP
    >>> st.interferogram.dims
    ('start_date', 'delay', 'time', 'band', 'y', 'x')
    """
    import xarray as xr

    spec = parse_spec(spec)
    if variable not in cube:
        raise schema.CubeError(f"cube has no variable {variable!r}; stack one of {list(cube.data_vars)}")
    has = cube[schema.HAS_INTERFEROGRAM].transpose(schema.START_DATE, schema.DELAY).values
    starts = cube[schema.START_DATE].values
    delays = cube[schema.DELAY].values
    i_s, i_d, valid = member_index(starts, delays, has, spec)
    dims = (schema.START_DATE, schema.DELAY, TIME)
    da = cube[variable]
    # Vectorised (pointwise) indexing: one member per (start_date, delay, time).
    stacked = da.drop_vars([c for c in da.coords if c not in da.dims and c != schema.SPATIAL_REF],
                           errors="ignore").isel(
        {schema.START_DATE: xr.DataArray(i_s, dims=dims),
         schema.DELAY: xr.DataArray(i_d, dims=dims)})
    stacked = stacked.drop_vars([schema.START_DATE, schema.DELAY], errors="ignore")
    valid_da = xr.DataArray(valid, dims=dims)
    if np.issubdtype(da.dtype, np.floating):
        stacked = stacked.where(valid_da)
    else:
        stacked = stacked.where(valid_da, 0).astype(da.dtype)
    order = dims + tuple(d for d in da.dims if d not in (schema.START_DATE, schema.DELAY))
    stacked = stacked.transpose(*order)
    coords = {
        schema.START_DATE: starts, schema.DELAY: delays,
        TIME: member_labels(spec, delays),
        "member_start_date": (dims, starts[i_s]),
        "member_delay": (dims, delays[i_d]),
    }
    if schema.END_DATE in cube.coords:
        coords[schema.END_DATE] = cube[schema.END_DATE]
    out = xr.Dataset({variable: stacked, VALID: valid_da}, coords=coords)
    out.attrs.update(temporal=str(spec))
    out[TIME].attrs["long_name"] = "member offset" if spec.kind == "consecutive" else "member delay"
    return out


# --------------------------------------------------------------------- patches
def patch_member_index(patches: xr.Dataset, spec: str | TemporalSpec) -> tuple[np.ndarray, np.ndarray]:
    """Sample index of the members of every patch's stack (samples grouped by ``location``).

    Parameters
    ----------
    patches
        A patches dataset with per-sample coords ``location``, ``start_date``, ``delay``.
    spec
        Stack kind.

    Returns
    -------
    (index, valid)
        ``(n_samples, T)`` int64 sample indices (0 where invalid) and bool.
        For ``consecutive`` the start dates are those of the whole dataset for
        that delay, so a patch missing at one location leaves a gap, not a shift.

    Example
    -------
    >>> idx, ok = patch_member_index(open_patches("p.zarr"), "start")  # doctest: +SKIP
    """
    import pandas as pd

    spec = parse_spec(spec)
    for c in (schema.LOCATION, schema.START_DATE, schema.DELAY):
        if c not in patches.coords:
            raise schema.PatchesError(f"patches have no per-sample coordinate {c!r}; "
                                      "extract them with isslide_cube.patches.extract_patches")
    loc = np.asarray(patches[schema.LOCATION].values).astype(np.int64)
    start = np.asarray(patches[schema.START_DATE].values).astype("datetime64[ns]")
    delay = np.asarray(patches[schema.DELAY].values).astype(np.int64)
    n = loc.size
    table = pd.DataFrame({"loc": loc, "start": start, "delay": delay, "i": np.arange(n)})
    dup = table.duplicated(["loc", "start", "delay"])
    if dup.any():
        raise schema.PatchesError(f"{int(dup.sum())} patches repeat a (location, start_date, delay); "
                                  "temporal stacks need one patch per location and interferogram")
    lookup = table.set_index(["loc", "start", "delay"])["i"]
    delays = np.unique(delay)
    if spec.kind == "start":
        keys_start = np.repeat(start[:, None], delays.size, 1)
        keys_delay = np.broadcast_to(delays[None, :], (n, delays.size))
    elif spec.kind == "end":
        end = start + delay.astype("timedelta64[D]")
        keys_start = end[:, None] - delays[None, :].astype("timedelta64[D]")
        keys_delay = np.broadcast_to(delays[None, :], (n, delays.size))
    else:
        keys_start = np.empty((n, spec.k), dtype="datetime64[ns]")
        keys_delay = np.repeat(delay[:, None], spec.k, 1)
        outside = np.zeros((n, spec.k), bool)
        for d in delays:
            rows = delay == d
            dates = np.unique(start[rows])
            pos = np.searchsorted(dates, start[rows])[:, None] + np.asarray(spec.offsets)[None, :]
            outside[rows] = (pos < 0) | (pos >= dates.size)
            keys_start[rows] = dates[np.clip(pos, 0, dates.size - 1)]
    keys_loc = np.repeat(loc[:, None], keys_delay.shape[1], 1)
    wanted = pd.MultiIndex.from_arrays([keys_loc.ravel(), keys_start.ravel(),
                                        np.asarray(keys_delay).ravel()])
    found = lookup.reindex(wanted).to_numpy(dtype="float64").reshape(keys_loc.shape)
    valid = ~np.isnan(found)
    if spec.kind == "consecutive":
        valid &= ~outside
    index = np.where(valid, np.nan_to_num(found), 0).astype(np.int64)
    return index, valid


def stack_patches(patches: xr.Dataset, spec: str | TemporalSpec,
                  variable: str = schema.INTERFEROGRAM) -> xr.Dataset:
    """Stack each patch with the patches of its stack at the same ``location``, lazily.

    Returns
    -------
    xr.Dataset
        ``variable`` with dims ``(sample, time, ...)`` (NaN / 0 for missing
        members), ``valid`` (sample, time), ``member`` (sample, time) the sample
        index of each member (-1 where missing), the per-sample coords of the
        input, and ``time`` labels (delays, or offsets for consecutive).

    Example
    -------
    >>> st = stack_patches(open_patches("p.zarr"), "consecutive:3")  # doctest: +SKIP
    >>> st.interferogram.dims
    ('sample', 'time', 'band', 'y', 'x')
    """
    import xarray as xr

    spec = parse_spec(spec)
    index, valid = patch_member_index(patches, spec)
    dims = (schema.SAMPLE, TIME)
    da = patches[variable]
    base = da.reset_coords(drop=True) if hasattr(da, "reset_coords") else da
    stacked = base.isel({schema.SAMPLE: xr.DataArray(index, dims=dims)})
    valid_da = xr.DataArray(valid, dims=dims)
    if np.issubdtype(da.dtype, np.floating):
        stacked = stacked.where(valid_da)
    else:
        stacked = stacked.where(valid_da, 0).astype(da.dtype)
    per_sample = {c: patches[c] for c in patches.coords
                  if patches[c].dims == (schema.SAMPLE,)}
    delays = np.unique(np.asarray(patches[schema.DELAY].values).astype(np.int64))
    out = xr.Dataset({variable: stacked, VALID: valid_da,
                      "member": (dims, np.where(valid, index, -1))},
                     coords={**per_sample, TIME: member_labels(spec, delays)})
    out.attrs.update(patches.attrs)
    out.attrs["temporal"] = str(spec)
    return out
