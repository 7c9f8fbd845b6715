"""``ds.isslide``: the library's functions as methods of a cube or patches dataset.

Registered when ``isslide_cube`` is imported. Every method forwards to a plain
function (:mod:`isslide_cube.patches`, :mod:`isslide_cube.schema`, or the
plotting functions below): the accessor keeps no state, never mutates its
dataset, and stays lazy where the function is.

Examples
--------
>>> import isslide_cube                                   # doctest: +SKIP
>>> cube = isslide_cube.cube.open_cube("cube.zarr")      # doctest: +SKIP
>>> centres = cube.isslide.move_centres(size=100)        # doctest: +SKIP
>>> patches = cube.isslide.extract_patches(100, centres).isslide.split("paper")  # doctest: +SKIP
>>> patches.isslide.plot(sample=0, path="patch.png")     # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from isslide_cube import patches as _patches
from isslide_cube import schema as s

PHASE_CMAP = "twilight"  # cyclic: -pi and pi get the same colour


def validate(ds: xr.Dataset, *, raise_on_error: bool = True) -> s.ValidationReport:
    """Validate ``ds`` as a patches dataset (it has ``sample``) or else as a cube."""
    if s.SAMPLE in ds.dims:
        return s.validate_patches(ds, raise_on_error=raise_on_error)
    return s.validate_cube(ds, raise_on_error=raise_on_error)


def _select(ds: xr.Dataset, sample: int | None, start_date: Any, delay: Any,
            window: tuple[int, int, int] | None) -> tuple[xr.Dataset, str]:
    """One interferogram (with its mask) of a patches dataset or a cube, and a title."""
    if s.SAMPLE in ds.dims:
        one = ds.isel({s.SAMPLE: sample or 0})
        title = (f"sample {sample or 0}: location {int(one[s.LOCATION])}, "
                 f"{str(one[s.ZONE].values)}")
    else:
        if start_date is None or delay is None:
            has = np.asarray(ds[s.HAS_INTERFEROGRAM].transpose(s.START_DATE, s.DELAY).values)
            if not has.any():
                raise s.CubeError("the cube holds no interferogram to plot")
            si, di = np.argwhere(has)[0]
            start_date = ds[s.START_DATE].values[si] if start_date is None else start_date
            delay = ds[s.DELAY].values[di] if delay is None else delay
        one = ds.sel({s.START_DATE: start_date, s.DELAY: delay})
        if window is not None:
            row, col, size = window
            one = one.isel({s.Y: slice(row, row + size), s.X: slice(col, col + size)})
        title = ""
    date = np.datetime_as_string(np.asarray(one[s.START_DATE].values), unit="D")
    title = f"{title}{', ' if title else ''}{date} + {int(one[s.DELAY])} days"
    return one, title


def plot(ds: xr.Dataset, sample: int | None = None, *, start_date: Any = None,
         delay: Any = None, window: tuple[int, int, int] | None = None,
         path: str | Path | None = None, figsize: tuple[float, float] = (9.0, 4.2)):
    """Phase (cyclic ``twilight`` colormap), coherence, and the mask's outline.

    Parameters
    ----------
    ds
        A patches dataset (pick ``sample``) or a cube (pick ``start_date`` and
        ``delay``; default: the first interferogram; ``window=(row, col, size)``
        crops it).
    path
        Save the figure there as PNG (Agg backend, no display needed).

    Returns
    -------
    matplotlib.figure.Figure

    Example
    -------
    >>> fig = plot(patches, sample=3, path="patch.png")    # doctest: +SKIP
    """
    from matplotlib.figure import Figure

    one, title = _select(ds, sample, start_date, delay, window)
    one = one.compute()
    fig = Figure(figsize=figsize, layout="constrained")
    ax_phase, ax_coh = fig.subplots(1, 2, sharex=True, sharey=True)
    ifg = one[s.INTERFEROGRAM]
    im = ax_phase.imshow(ifg.sel({s.BAND: s.PHASE}).values, cmap=PHASE_CMAP, vmin=-np.pi,
                         vmax=np.pi, interpolation="nearest")
    fig.colorbar(im, ax=ax_phase, label="wrapped phase (rad)", shrink=0.8)
    im = ax_coh.imshow(ifg.sel({s.BAND: s.COHERENCE}).values, cmap="gray", vmin=0, vmax=1,
                       interpolation="nearest")
    fig.colorbar(im, ax=ax_coh, label="coherence", shrink=0.8)
    if s.MASK in one:
        moving = np.asarray(one[s.MASK].values) == 1
        for ax in (ax_phase, ax_coh):
            if moving.any():
                ax.contour(moving.astype("uint8"), levels=[0.5], colors="red", linewidths=1.2)
    ax_phase.set_title("phase")
    ax_coh.set_title("coherence")
    fig.suptitle(title)
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig


def plot_centres(ds: xr.Dataset, size: int = 100, centres: Any = None, *,
                 path: str | Path | None = None, figsize: tuple[float, float] = (7.0, 6.0)):
    """The global annotation map with the patch windows of :func:`move_centres`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    gm = _patches.global_mask(ds).values
    if centres is None:
        centres = _patches.move_centres(ds, size)
    size = int(centres.attrs.get("patch_size", size))
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.subplots()
    ax.imshow(gm, cmap="Greys", interpolation="nearest")
    for loc in centres.itertuples():
        ax.add_patch(Rectangle((loc.col - 0.5, loc.row - 0.5), size, size, fill=False,
                               edgecolor="tab:orange", linewidth=1))
        ax.plot(loc.centre_col, loc.centre_row, "+", color="tab:red", markersize=5)
    ax.set_title(f"global annotation map: {len(centres)} locations of {size} px, "
                 f"{centres.attrs.get('n_components', 0)} connected components")
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig


@xr.register_dataset_accessor("isslide")
class IsslideAccessor:
    """``ds.isslide``: thin forwards to :mod:`isslide_cube.patches` and friends."""

    def __init__(self, ds: xr.Dataset) -> None:
        self._obj = ds

    def global_mask(self) -> xr.DataArray:
        """:func:`isslide_cube.patches.global_mask` of this cube."""
        return _patches.global_mask(self._obj)

    def move_centres(self, size: int = 100, **kwargs: Any):
        """:func:`isslide_cube.patches.move_centres` of this cube."""
        return _patches.move_centres(self._obj, size, **kwargs)

    def extract_patches(self, size: int = 100, centres: Any = None, **kwargs: Any) -> xr.Dataset:
        """:func:`isslide_cube.patches.extract_patches` of this cube."""
        return _patches.extract_patches(self._obj, size, centres, **kwargs)

    def split(self, scheme: str = "paper", **kwargs: Any) -> xr.Dataset:
        """:func:`isslide_cube.patches.split` of this patches dataset."""
        return _patches.split(self._obj, scheme, **kwargs)

    def split_counts(self):
        """:func:`isslide_cube.patches.split_counts` of this split patches dataset."""
        return _patches.split_counts(self._obj)

    def plot(self, sample: int | None = None, **kwargs: Any):
        """:func:`isslide_cube.accessor.plot`: phase, coherence, mask outline."""
        return plot(self._obj, sample, **kwargs)

    def plot_centres(self, size: int = 100, centres: Any = None, **kwargs: Any):
        """:func:`isslide_cube.accessor.plot_centres`: global map and windows."""
        return plot_centres(self._obj, size, centres, **kwargs)

    def validate(self, **kwargs: Any) -> s.ValidationReport:
        """:func:`isslide_cube.accessor.validate`: cube or patches schema."""
        return validate(self._obj, **kwargs)

    def stack(self, spec: str = "start", variable: str = s.INTERFEROGRAM) -> xr.Dataset:
        """Multi-temporal stacks (:mod:`isslide_cube.temporal`) of this cube or patches dataset."""
        from isslide_cube.temporal import stack_cube, stack_patches

        fn = stack_patches if s.SAMPLE in self._obj.dims else stack_cube
        return fn(self._obj, spec, variable)

    def move_time_series(self, labels: Any = None, **kwargs: Any):
        """:func:`isslide_cube.tracking.move_time_series` of this cube."""
        from isslide_cube.tracking import move_time_series

        return move_time_series(self._obj, labels, **kwargs)
