"""numba kernels: exact distance transform, Hausdorff distance, metric counts.

numpy functions (``edt``, ``edt_batch``, ``hausdorff``, ``hausdorff_batch``,
``threshold_counts``) run compiled, parallel kernels (``@njit(nogil=True,
cache=True)``, ``prange``); ``distance_transform`` and ``hausdorff_distance``
apply them to xarray objects, lazily on dask. Thread rules:
:mod:`isslide_cube.kernels.threads`.

Examples
--------
>>> import numpy as np
>>> from isslide_cube.kernels import edt, hausdorff, threshold_counts, f1_optimal
>>> m = np.ones((1, 3), bool); m[0, 0] = False
>>> edt(m).tolist()
[[0.0, 1.0, 2.0]]
"""

from isslide_cube.kernels.counts import (
    f1_curve_from_counts,
    f1_optimal,
    roc_auc_from_counts,
    threshold_counts,
)
from isslide_cube.kernels.edt import KernelInputError, edt, edt_batch
from isslide_cube.kernels.hausdorff import hausdorff, hausdorff_batch
from isslide_cube.kernels.xarray import distance_transform, hausdorff_distance

__all__ = [
    "KernelInputError",
    "distance_transform",
    "edt",
    "edt_batch",
    "f1_curve_from_counts",
    "f1_optimal",
    "hausdorff",
    "hausdorff_batch",
    "hausdorff_distance",
    "roc_auc_from_counts",
    "threshold_counts",
]
