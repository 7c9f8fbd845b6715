"""distance_transform / hausdorff_distance: numpy == dask, coords and attrs kept, lazy."""

from __future__ import annotations

import dask.array as dsa
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import ndimage as ndi

from isslide_cube.kernels import (
    KernelInputError,
    distance_transform,
    edt,
    hausdorff,
    hausdorff_distance,
)

from .conftest import blob_mask


@pytest.fixture
def masks(rng) -> xr.DataArray:
    """A small mask cube (start_date, delay, y, x) with real-looking coords."""
    data = np.stack([[blob_mask(rng, (40, 50), t) for t in (0.2, 0.8, 1.5)] for _ in range(4)])
    data[1, 2] = False  # an all-zero image
    data[2, 0] = True  # an all-one image
    return xr.DataArray(
        data.astype(np.uint8),
        dims=("start_date", "delay", "y", "x"),
        coords={
            "start_date": pd.date_range("2018-07-02", periods=4, freq="6D"),
            "delay": [6, 12, 18],
            "y": 45.0 - 0.001 * np.arange(40),
            "x": 6.0 + 0.002 * np.arange(50),
        },
        attrs={"long_name": "moving area"},
        name="mask",
    )


def test_distance_transform_numpy(masks):
    out = distance_transform(masks)
    assert out.dims == masks.dims and out.dtype == np.float32 and out.name == "distance"
    assert out.attrs == masks.attrs
    xr.testing.assert_identical(out.coords.to_dataset(), masks.coords.to_dataset())
    for s in range(4):
        for d in range(3):
            np.testing.assert_array_equal(out[s, d].values, edt(masks[s, d].values))
    m = masks[0, 0].values
    np.testing.assert_allclose(out[0, 0].values, ndi.distance_transform_edt(m), rtol=1e-6)


def test_distance_transform_dask_equals_numpy(masks):
    lazy = masks.chunk({"start_date": 1, "delay": 2, "y": 17, "x": 50})  # y split: rechunked
    out = distance_transform(lazy, sampling=(2.0, 1.0), dtype=np.float64)
    assert isinstance(out.data, dsa.Array)
    assert out.chunksizes["y"] == (40,) and out.chunksizes["start_date"] == (1, 1, 1, 1)
    ref = distance_transform(masks, sampling=(2.0, 1.0), dtype=np.float64)
    xr.testing.assert_identical(out.compute(), ref)


def test_distance_transform_other_dim_order_and_coords_sampling(masks):
    t = masks.transpose("y", "delay", "x", "start_date")
    out = distance_transform(t, sampling="coords")
    assert out.dims == t.dims
    ref = edt(masks[3, 1].values, sampling=(0.001, 0.002))
    np.testing.assert_allclose(out.isel(start_date=3, delay=1).values, ref, rtol=1e-5)


def test_distance_transform_under_distributed(masks):
    distributed = pytest.importorskip("distributed")
    with distributed.Client(n_workers=1, threads_per_worker=2, processes=False,
                            dashboard_address=":0") as client:
        assert client is not None
        out = distance_transform(masks.chunk({"start_date": 1})).compute()
    xr.testing.assert_identical(out, distance_transform(masks))


def test_hausdorff_distance_numpy_and_dask(masks):
    a = masks.isel(start_date=slice(1, None))
    b = masks.isel(start_date=slice(None, -1)).assign_coords(start_date=a.start_date)
    hd, empty = hausdorff_distance(a, b, return_empty=True)
    assert hd.dims == ("start_date", "delay") and hd.dtype == np.float64
    for i in range(3):
        for j in range(3):
            assert hd[i, j] == hausdorff(a[i, j].values, b[i, j].values)
    assert int(empty.sum()) == 2  # the all-zero image (start 1, delay 18) is in two pairs
    lazy_hd, lazy_empty = hausdorff_distance(a.chunk({"start_date": 1, "delay": 1}),
                                             b.chunk({"start_date": 2}), return_empty=True)
    assert isinstance(lazy_hd.data, dsa.Array)
    xr.testing.assert_identical(lazy_hd.compute(), hd)
    xr.testing.assert_identical(lazy_empty.compute(), empty)
    hd95 = hausdorff_distance(a, b, percentile=95, sampling=(2.0, 1.0))
    assert hd95[0, 0] == hausdorff(a[0, 0].values, b[0, 0].values, percentile=95,
                                   sampling=(2.0, 1.0))


def test_hausdorff_distance_broadcasts_a_reference(masks):
    ref = masks.isel(start_date=0, delay=0)
    hd = hausdorff_distance(masks, ref)
    assert hd.dims == ("start_date", "delay")
    assert hd[0, 0] == 0.0
    assert hd[3, 2] == hausdorff(masks[3, 2].values, ref.values)


def test_xarray_bad_input(masks):
    with pytest.raises(KernelInputError, match="missing"):
        distance_transform(masks, dims=("lat", "lon"))
    with pytest.raises(KernelInputError, match="size along"):
        hausdorff_distance(masks, masks.isel(x=slice(0, 10)))
    with pytest.raises(KernelInputError, match="coords"):
        distance_transform(masks, sampling="pixels")
    with pytest.raises(KernelInputError, match="xarray or dask"):
        edt(masks[0, 0])
