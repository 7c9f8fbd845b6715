"""xarray front-ends of the kernels: numpy- or dask-backed, lazy on dask.

Both functions go through :func:`xarray.apply_ufunc` with
``dask="parallelized"`` and the two spatial dims as core dims, so each dask
task receives whole images ``(..., y, x)`` and transforms them with the batched
kernels. **The spatial dims must each be one chunk**: an exact distance
transform (or Hausdorff distance) of an image depends on every pixel of it. A
dask array chunked along ``y`` or ``x`` is rechunked to one chunk there
(logged); chunk the other dims (``start_date``, ``delay``, ``sample``) to bound
memory, e.g. ``mask.chunk({"start_date": 1, "delay": 1, "y": -1, "x": -1})``.

Threads: each dask task runs single-threaded numba (see
:mod:`isslide_cube.kernels.threads`); pass ``n_threads`` to override.

Examples
--------
>>> import numpy as np, xarray as xr
>>> from isslide_cube.kernels import distance_transform
>>> da = xr.DataArray(np.ones((2, 3, 3), "uint8"), dims=("t", "y", "x"))
>>> da[:, 1, 1] = 0
>>> float(distance_transform(da)[0, 0, 0])
1.4142135381698608
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import xarray as xr

from isslide_cube.kernels.edt import KernelInputError, edt_batch, parse_sampling
from isslide_cube.kernels.hausdorff import empty_value, hausdorff_batch
from isslide_cube.kernels.threads import resolve_threads

log = logging.getLogger(__name__)

__all__ = ["distance_transform", "hausdorff_distance"]

SamplingLike = float | Sequence[float] | str | None


def _check_dims(da: xr.DataArray, dims: Sequence[str], name: str) -> list[str]:
    dims = list(dims)
    if len(dims) != 2:
        raise KernelInputError(f"dims must name 2 dims (y, x), got {dims!r}")
    missing = [d for d in dims if d not in da.dims]
    if missing:
        raise KernelInputError(
            f"{name} has dims {da.dims}, missing {missing}; pass dims=(<y dim>, <x dim>)"
        )
    return dims


def _spacing(da: xr.DataArray, dims: list[str], sampling: SamplingLike) -> tuple[float, float]:
    """``sampling="coords"``: the absolute spacing of each dim's (regular) coordinate."""
    if isinstance(sampling, str):
        if sampling != "coords":
            raise KernelInputError(f"sampling must be numbers, None or 'coords', got {sampling!r}")
        out = []
        for d in dims:
            if d not in da.coords or da.sizes[d] < 2:
                raise KernelInputError(
                    f"sampling='coords' needs a coordinate of length >= 2 along {d!r}"
                )
            c = np.asarray(da[d].values, dtype=np.float64)
            step = np.diff(c)
            if not np.allclose(step, step[0], rtol=1e-6, atol=0):
                raise KernelInputError(f"coordinate {d!r} is not regular; pass sampling explicitly")
            out.append(abs(float(step[0])))
        return parse_sampling(out, 2)
    return parse_sampling(sampling, 2)


def _one_chunk(da: xr.DataArray, dims: list[str], name: str) -> xr.DataArray:
    if da.chunks is None:
        return da
    split = [d for d in dims if len(da.chunksizes[d]) > 1]
    if split:
        log.info("%s: rechunking %s to one chunk (the transform needs whole images)", name, split)
        da = da.chunk(dict.fromkeys(split, -1))
    return da


def _edt_blocks(arr: np.ndarray, sampling, dtype, n_threads) -> np.ndarray:
    flat = arr.reshape((-1,) + arr.shape[-2:])
    out = edt_batch(flat, sampling, dtype=dtype, n_threads=resolve_threads(n_threads))
    return out.reshape(arr.shape)


def distance_transform(
    da: xr.DataArray,
    dims: Sequence[str] = ("y", "x"),
    sampling: SamplingLike = None,
    *,
    dtype: object = np.float32,
    n_threads: int | None = None,
    name: str | None = None,
) -> xr.DataArray:
    """Exact Euclidean distance transform of every ``(y, x)`` image of a DataArray.

    Same definition as :func:`isslide_cube.kernels.edt`: distance from each
    non-zero pixel to the nearest zero pixel (``+inf`` in an image without
    zeros). Lazy on dask (one task per chunk of the other dims).

    Parameters
    ----------
    da
        Mask, any dims containing ``dims``; non-zero is foreground. A cube's
        ``mask`` uses 255 for "no interferogram": pass ``mask == 1`` instead.
    dims
        The two image dims, ``(row, column)`` order.
    sampling
        Pixel spacing ``(dy, dx)`` or a number; ``"coords"`` reads it from the
        (regular) coordinates; default 1 (pixels).
    dtype
        float32 (default) or float64.
    n_threads
        numba threads per call (default: all in the main thread, 1 in dask workers).
    name
        Name of the result (default ``"distance"``).

    Returns
    -------
    xarray.DataArray
        Same dims, coords and attrs as ``da``; dask-backed if ``da`` is.

    Example
    -------
    >>> import numpy as np, xarray as xr
    >>> m = xr.DataArray(np.array([[0, 1, 1, 1]]), dims=("y", "x"))
    >>> distance_transform(m, sampling=(1.0, 2.0)).values.tolist()
    [[0.0, 2.0, 4.0, 6.0]]
    """
    dims = _check_dims(da, dims, "da")
    samp = _spacing(da, dims, sampling)
    da = _one_chunk(da, dims, "distance_transform")
    out = xr.apply_ufunc(
        _edt_blocks,
        da,
        input_core_dims=[dims],
        output_core_dims=[dims],
        dask="parallelized",
        output_dtypes=[np.dtype(dtype)],
        kwargs={"sampling": samp, "dtype": np.dtype(dtype), "n_threads": n_threads},
        keep_attrs=True,
    )
    return out.transpose(*da.dims).rename(name or "distance")


def _hd_blocks(a, b, percentile, sampling, empty, both_empty, n_threads):
    a, b = np.broadcast_arrays(a, b)
    lead = a.shape[:-2]
    A = a.reshape((-1,) + a.shape[-2:])
    B = b.reshape((-1,) + b.shape[-2:])
    hd, flag = hausdorff_batch(
        A, B, percentile=percentile, sampling=sampling, empty=empty, both_empty=both_empty,
        return_empty=True, n_threads=resolve_threads(n_threads),
    )
    return hd.reshape(lead), flag.reshape(lead)


def hausdorff_distance(
    a: xr.DataArray,
    b: xr.DataArray,
    dims: Sequence[str] = ("y", "x"),
    *,
    percentile: float | None = None,
    sampling: SamplingLike = None,
    empty: float | str = "diagonal",
    both_empty: float = 0.0,
    return_empty: bool = False,
    n_threads: int | None = None,
) -> xr.DataArray | tuple[xr.DataArray, xr.DataArray]:
    """Hausdorff distance between the foreground of ``a`` and ``b``, reducing ``dims``.

    Every other dim is kept (and broadcast between ``a`` and ``b``), so e.g.
    ``hausdorff_distance(m.isel(start_date=slice(1, None)), m.isel(start_date=slice(None, -1))
    .assign_coords(start_date=...))`` compares each date's mask with the previous
    one. Definition, percentile and empty-set rules: :mod:`isslide_cube.kernels.hausdorff`
    (``"diagonal"`` uses the image size along ``dims`` and ``sampling``).

    Parameters
    ----------
    a, b
        Masks (non-zero is foreground) on the same ``dims`` grid; aligned
        exactly on their shared coordinates.
    return_empty
        Also return a bool DataArray, True where a set was empty (count them
        with ``.sum()``).

    Returns
    -------
    xarray.DataArray (or a pair)
        float64 ``hausdorff`` with the non-spatial dims; lazy if an input is dask-backed.

    Example
    -------
    >>> import numpy as np, xarray as xr
    >>> a = xr.DataArray(np.eye(3, dtype=bool)[None], dims=("t", "y", "x"))
    >>> b = xr.DataArray(np.eye(3, dtype=bool)[::-1][None], dims=("t", "y", "x"))
    >>> hausdorff_distance(a, b).values.tolist()
    [1.4142135623730951]
    """
    dims = _check_dims(a, dims, "a")
    _check_dims(b, dims, "b")
    for d in dims:
        if a.sizes[d] != b.sizes[d]:
            raise KernelInputError(
                f"a and b differ in size along {d!r} ({a.sizes[d]} vs {b.sizes[d]}); "
                "put them on the same grid first"
            )
    samp = _spacing(a, dims, sampling)
    ev = empty_value(empty, (a.sizes[dims[0]], a.sizes[dims[1]]), samp)
    a = _one_chunk(a, dims, "hausdorff_distance")
    b = _one_chunk(b, dims, "hausdorff_distance")
    hd, flag = xr.apply_ufunc(
        _hd_blocks,
        a,
        b,
        input_core_dims=[dims, dims],
        output_core_dims=[[], []],
        dask="parallelized",
        output_dtypes=[np.float64, np.bool_],
        kwargs={"percentile": percentile, "sampling": samp, "empty": ev,
                "both_empty": both_empty, "n_threads": n_threads},
        join="exact",
        keep_attrs=False,
    )
    hd = hd.rename("hausdorff")
    hd.attrs.update({"long_name": "Hausdorff distance" if percentile is None
                     else f"{percentile:g}th-percentile Hausdorff distance",
                     "units": "pixels" if sampling is None else "sampling units"})
    if return_empty:
        return hd, flag.rename("empty_set")
    return hd
