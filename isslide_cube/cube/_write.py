"""One interferogram's task: its chunks, its mask, then its done-marker.

Chunks are 1 along ``start_date`` and ``delay``, so the task of an
interferogram is the only writer of its chunks; it rewrites them whole, so a
task retried after a crash or a lost worker is harmless.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from isslide_cube import schema
from isslide_cube.cube._mask import _write_mask
from isslide_cube.cube._store import ANNOTATED, DONE, _Job


def _write_interferogram(job: _Job) -> int:
    """Write interferogram ``item`` at (``i``, ``j``): every chunk of it, then its done-marker.

    Runs on a Dask worker. Writes one row of chunks at a time so a worker holds
    at most ``2 x 2 chunk x width`` floats, whatever the grid. Idempotent.

    Returns
    -------
    int
        Moving pixels written to ``mask`` (0 without annotations).
    """
    import zarr

    store, i, j = job.store, job.i, job.j
    # one metadata read per array and task (each zarr.open_array re-reads zarr.json)
    group = zarr.open_group(store, mode="r+", zarr_format=3)
    ifg = group[schema.INTERFEROGRAM]
    for r0, rows in _chunk_rows(job):
        ifg[i, j, :, r0:r0 + rows.shape[1], :] = rows
    moving = 0 if job.shapes is None else _write_mask(group, job)
    group[ANNOTATED][i, j] = moving
    # last: the interferogram counts as written once its marker is on disk
    group[DONE][i, j] = 1
    return moving


def _chunk_rows(job: _Job) -> Any:
    """Yield ``(row, rows)``: each row of chunks of the interferogram as float32 ``(2, n, width)``.

    Reads follow the file's tiling: a chunk row that ends inside a row of
    GeoTIFF tiles (500 px chunks on 256 px tiles) reads up to the end of that
    tile row and keeps the surplus for the next chunk row, so no tile is
    decompressed twice. The values are those of a whole read, window by window.
    """
    from isslide_cube.io import read_interferogram

    height, chunk = job.grid.height, job.chunk
    tile = 1 if job.align else _tile_height(job.item.phase_path, job.item.phase_band)
    if tile > chunk:  # holding a tile row taller than a chunk row would cost its memory
        tile = 1
    held = np.empty((2, 0, job.grid.width), np.float32)  # rows [r0, read_to) already read
    read_to = 0
    for r0 in range(0, height, chunk):
        r1 = min(r0 + chunk, height)
        if read_to < r1:
            end = min(height, -(-r1 // tile) * tile)
            new = _read_rows(read_interferogram, job.item, job.grid, read_to, end, job.align)
            held = new if not held.shape[1] else np.concatenate([held, new], axis=1)
            read_to = end
        yield r0, held[:, :r1 - r0]
        held = held[:, r1 - r0:]


def _tile_height(path: Path, band: int) -> int:
    """Rows per block of ``path`` (GeoTIFF tile or strip height); 1 when unknown."""
    import rasterio

    from isslide_cube.io.discover import GDAL_READ_ENV

    try:
        with rasterio.Env(**GDAL_READ_ENV), rasterio.open(path) as src:
            rows = int(src.block_shapes[band - 1][0])
    except (rasterio.errors.RasterioError, IndexError):
        return 1  # read_interferogram names the file and the fix
    return max(rows, 1)


def _read_rows(read: Any, item: Any, grid: Any, r0: int, r1: int, align: bool) -> np.ndarray:
    from rasterio.windows import Window

    window = Window(0, r0, grid.width, r1 - r0)
    # validate_values: coherence outside [0, 1] or a "wrapped" phase beyond pi is an error
    return np.asarray(read(item, grid, window=window, align=align, validate_values=True),
                      dtype="float32")

