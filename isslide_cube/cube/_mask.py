"""Annotations into the cube: each interferogram's polygons burnt into ``mask``/``move_id``.

The polygon table (read and reprojected onto the grid's CRS by
:mod:`isslide_cube.annotations` while planning) is grouped by pair once; each
interferogram's task then rasterizes its own polygons with
:func:`isslide_cube.annotations.rasterize_pair` (``rasterio.features.rasterize``,
``all_touched`` as built) and writes both arrays at its (start_date, delay).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from isslide_cube import schema

if TYPE_CHECKING:
    from isslide_cube.cube._plan import _Plan
    from isslide_cube.cube._store import _Job


def _shapes_by_pair(plan: _Plan) -> dict[tuple, list]:
    from isslide_cube.annotations import FIRST_DATE, SECOND_DATE

    out: dict[tuple, list] = {}
    if plan.table is None:
        return out
    for (first, second), rows in plan.table.groupby([FIRST_DATE, SECOND_DATE], sort=False):
        out[(pd.Timestamp(first), pd.Timestamp(second))] = list(
            zip(rows.geometry.values, rows["move_id"].astype(int), strict=True))
    return out


def _write_mask(group: Any, job: _Job) -> int:
    """Rasterize ``job.shapes`` into ``mask`` and ``move_id`` of ``group`` at (``i``, ``j``).

    Returns
    -------
    int
        Moving pixels written.
    """
    from isslide_cube.annotations import rasterize_pair

    # one rasterization gives both (rasterize_pair burns move_id, mask is move_id > 0)
    mask, move_id = rasterize_pair(job.shapes, job.grid.transform, job.grid.shape,
                                   all_touched=job.all_touched)
    group[schema.MASK][job.i, job.j] = mask
    group[schema.MOVE_ID][job.i, job.j] = move_id
    return int(np.count_nonzero(mask))
