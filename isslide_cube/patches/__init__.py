"""The ready-to-use dataset: global annotation map, move centres, patches, split.

The ISSLIDE paper (DESIGN.md sections 1 and 4) merges every annotation of
every date and delay into one global map, finds the moving areas with a
distance transform, and crops every interferogram and its mask around them
into ``size x size`` patches. This module does the same on any cube:

1. :func:`global_mask` -- the union of ``mask == 1`` over start_date and delay
   (lazy);
2. :func:`move_centres` -- the window index: greedy cover of the global map,
   most interior pixel first (exact EDT from :mod:`isslide_cube.kernels`);
3. :func:`extract_patches` -- every window on every interferogram that exists,
   read chunk by chunk (each touched cube chunk is read once), lazy;
4. :func:`split` -- ``train`` / ``eval`` / ``unused`` by the paper's scheme,
   by time or by zone, with a leak check;
5. :func:`write_patches` / :func:`open_patches` -- the Zarr store.

Examples
--------
>>> from isslide_cube.cube import open_cube                      # doctest: +SKIP
>>> cube = open_cube("cube.zarr")                                # doctest: +SKIP
>>> centres = move_centres(cube, size=100)                       # doctest: +SKIP
>>> patches = split(extract_patches(cube, 100, centres), "paper")  # doctest: +SKIP
"""


from isslide_cube.patches._centres import global_mask, move_centres
from isslide_cube.patches._common import SAMPLE_CHUNK, SCHEMES
from isslide_cube.patches._extract import extract_patches
from isslide_cube.patches._split import split, split_counts
from isslide_cube.patches._store import PatchesSummary, open_patches, write_patches

__all__ = [
    "SAMPLE_CHUNK",
    "SCHEMES",
    "PatchesSummary",
    "extract_patches",
    "global_mask",
    "move_centres",
    "open_patches",
    "split",
    "split_counts",
    "write_patches",
]
