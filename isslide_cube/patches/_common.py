"""Shared checks and helpers of :mod:`isslide_cube.patches`."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from isslide_cube import schema as s
from isslide_cube.schema import CubeError, PatchesError

SAMPLE_CHUNK = 256  # samples per Zarr chunk of a patches store
SCHEMES = ("paper", "temporal", "spatial", "none")


def _require_mask(cube: xr.Dataset) -> None:
    if s.MASK not in cube:
        raise CubeError(
            "the cube has no `mask` variable: it was built without annotations. Rebuild it "
            "with annotations (`isslide-cube build RAW CUBE --annotations DIR`, or "
            "build_cube(..., annotations=DIR)) to extract patches around the moving areas.")


def _check_size(size: int, ny: int, nx: int) -> int:
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size <= 0:
        raise PatchesError(f"patch size must be a positive integer number of pixels, got {size!r}")
    if size > ny or size > nx:
        raise PatchesError(
            f"patch size {size} is larger than the cube's grid ({ny} rows x {nx} columns); "
            f"choose size <= {min(ny, nx)}")
    return int(size)


def _transform(cube: xr.Dataset):
    import rioxarray  # noqa: F401  (registers .rio)

    return cube.rio.transform()


def _crs(cube: xr.Dataset):
    import rioxarray  # noqa: F401

    return cube.rio.crs



def _compute(obj: Any, client: Any = None, progress: bool = False) -> Any:
    """Compute a dask collection on ``client`` (or the default scheduler), with a bar."""
    import dask

    from isslide_cube.cluster import as_client

    if not dask.is_dask_collection(obj):
        return obj
    client = as_client(client)
    if client is not None:
        future = client.compute(obj)
        if progress:
            from distributed import progress as bar

            bar(future)
        return future.result()
    if progress:
        from dask.diagnostics import ProgressBar

        with ProgressBar():
            return dask.compute(obj)[0]
    return dask.compute(obj)[0]


class _ChunkTasks:
    """The tasks that make the chunks of a dask array, to nest inside coarser tasks.

    A distributed scheduler spends milliseconds of CPU on every task (scheduling,
    messages, bookkeeping), more than reading one 500 px chunk of a cube costs.
    A task that reads and reduces many chunks therefore carries each chunk's
    task inside it (a nested task-spec ``Task``, run in place) instead of
    depending on one graph key per chunk: the graph shrinks to one task per
    group of chunks, and each chunk is still read once. A chunk wanted by more
    than one group stays a key of its own (read once, shared).
    """

    def __init__(self, data, uses: dict[tuple, int]):
        import dask

        (self.array,) = dask.optimize(data)  # linear chains (read, isel) fused per chunk
        self.graph = self.array.__dask_graph__()
        self.uses = uses

    def node(self, block: tuple[int, ...]):
        """The chunk ``block``: its (fused) task when only one group uses it, else a reference."""
        from dask.task_spec import Alias, Task, TaskRef

        key = (self.array.name, *block)
        if self.uses.get(block, 0) != 1:
            return TaskRef(key)
        node = self.graph[key]
        while isinstance(node, Alias):  # optimisation leaves key -> fused key aliases
            node = self.graph[node.target]
        return node if isinstance(node, Task) else TaskRef(key)
