"""The pixel grid of a raster (CRS, transform, shape) and the check that all inputs share one.

Examples
--------
>>> from rasterio.transform import from_origin
>>> g = Grid("EPSG:4326", from_origin(6.0, 45.5, 0.001, 0.001), width=3, height=2)
>>> g.shape, g.x.round(4).tolist(), g.y.round(4).tolist()
((2, 3), [6.0005, 6.0015, 6.0025], [45.4995, 45.4985])
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window

from isslide_cube.schema import RawDataError, RawFileNotFoundError

if TYPE_CHECKING:  # pragma: no cover
    from isslide_cube.io.sources import InterferogramSource

# Two transforms are the same grid when they differ by less than this fraction of a pixel.
PIXEL_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Grid:
    """A raster grid: CRS, affine transform (pixel corners, GDAL convention) and shape.

    Parameters
    ----------
    crs
        Anything ``rasterio.crs.CRS.from_user_input`` takes (stored as a ``CRS``).
    transform
        ``affine.Affine`` (or its 6 GDAL-order numbers via :meth:`from_gdal`).
    width, height
        Pixels.

    Examples
    --------
    >>> from rasterio.transform import from_origin
    >>> g = Grid("EPSG:32632", from_origin(300000, 5000000, 20, 20), 10, 5)
    >>> g.res, g.bounds
    ((20.0, 20.0), (300000.0, 4999900.0, 300200.0, 5000000.0))
    """

    crs: CRS
    transform: Affine
    width: int
    height: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "crs", CRS.from_user_input(self.crs))
        object.__setattr__(self, "transform", Affine(*tuple(self.transform)[:6]))
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))

    def __repr__(self) -> str:
        return (f"Grid({_crs_name(self.crs)}, {self.height} x {self.width} px, "
                f"res={_fmt(self.res)}, origin=({self.transform.c:.10g}, {self.transform.f:.10g}))")

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width)."""
        return self.height, self.width

    @property
    def res(self) -> tuple[float, float]:
        """Pixel size (x, y), positive."""
        return abs(self.transform.a), abs(self.transform.e)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in CRS units."""
        west, south, east, north = rasterio.transform.array_bounds(
            self.height, self.width, self.transform)
        return float(west), float(south), float(east), float(north)

    @property
    def x(self) -> np.ndarray:
        """Pixel-centre x coordinates (float64, length ``width``); the grid is not rotated."""
        return self.transform.c + self.transform.a * (np.arange(self.width) + 0.5)

    @property
    def y(self) -> np.ndarray:
        """Pixel-centre y coordinates (float64, length ``height``)."""
        return self.transform.f + self.transform.e * (np.arange(self.height) + 0.5)

    def window_grid(self, window: Window) -> Grid:
        """The sub-grid covered by ``window`` (which must lie inside this grid)."""
        check_window(window, self)
        return Grid(self.crs, window_transform(window, self.transform),
                    int(window.width), int(window.height))

    def to_gdal(self) -> tuple[float, ...]:
        """The transform as GDAL's 6 numbers (c, a, b, f, d, e)."""
        return tuple(float(v) for v in self.transform.to_gdal())

    @classmethod
    def from_gdal(cls, crs: Any, gdal: Sequence[float], width: int, height: int) -> Grid:
        """Inverse of :meth:`to_gdal`."""
        return cls(crs, Affine.from_gdal(*gdal), width, height)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (WKT CRS, GDAL transform, shape)."""
        return {"crs": self.crs.to_wkt(), "transform": list(self.to_gdal()),
                "width": self.width, "height": self.height}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Grid:
        """Inverse of :meth:`to_dict`."""
        return cls.from_gdal(d["crs"], d["transform"], d["width"], d["height"])

    def differences(self, other: Grid) -> list[str]:
        """How ``other`` differs from this grid, in words (empty when they are the same grid)."""
        out = []
        if not same_crs(self.crs, other.crs):
            out.append(f"CRS {_crs_name(other.crs)} instead of {_crs_name(self.crs)}")
        tol = PIXEL_TOLERANCE * min(self.res)
        if not np.allclose(self.res, other.res, rtol=0, atol=tol):
            out.append(f"resolution {_fmt(other.res)} instead of {_fmt(self.res)}")
        if abs(self.transform.b) > 0 or abs(self.transform.d) > 0 or \
                abs(other.transform.b) > 0 or abs(other.transform.d) > 0:
            if not self.transform.almost_equals(other.transform, precision=tol):
                out.append("rotated transform differs")
        if self.shape != other.shape or not np.allclose(
                (self.transform.c, self.transform.f), (other.transform.c, other.transform.f),
                rtol=0, atol=tol):
            out.append(f"extent {_fmt(other.bounds)} ({other.height} x {other.width} px) "
                       f"instead of {_fmt(self.bounds)} ({self.height} x {self.width} px)")
        return out

    def same_as(self, other: Grid) -> bool:
        """True when ``other`` is this grid (within :data:`PIXEL_TOLERANCE` of a pixel)."""
        return not self.differences(other)


def same_crs(a: CRS, b: CRS) -> bool:
    """True for equal CRSs, or two spellings of one EPSG code (SNAP's ESRI WKT and EPSG:4326).

    Examples
    --------
    >>> esri = CRS.from_wkt('GEOGCS["GCS_WGS_1984",DATUM["D_WGS_1984",SPHEROID["WGS_1984",'
    ...                     '6378137.0,298.257223563]],PRIMEM["Greenwich",0.0],'
    ...                     'UNIT["Degree",0.0174532925199433]]')
    >>> esri == CRS.from_epsg(4326), same_crs(esri, CRS.from_epsg(4326))
    (False, True)
    """
    if a == b:
        return True
    epsg = a.to_epsg()
    return epsg is not None and epsg == b.to_epsg()


def _crs_name(crs: CRS) -> str:
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_string()[:80]


def _fmt(values: Iterable[float]) -> str:
    return "(" + ", ".join(f"{v:.10g}" for v in values) + ")"


def check_window(window: Window, grid: Grid) -> None:
    """Raise ``ValueError`` unless ``window`` lies inside ``grid`` with integer offsets."""
    col, row, w, h = window.col_off, window.row_off, window.width, window.height
    if any(float(v) != int(v) for v in (col, row, w, h)) or w <= 0 or h <= 0 or col < 0 \
            or row < 0 or col + w > grid.width or row + h > grid.height:
        raise ValueError(f"window {window} is not an integer window inside the "
                         f"{grid.height} x {grid.width} grid")


def window_transform(window: Window, transform: Affine) -> Affine:
    """The transform of ``window`` of a raster with ``transform`` (its top-left corner moved).

    The arithmetic of ``rasterio.windows.transform`` (and so of
    ``DatasetReader.window_transform``), bit for bit, written with affine's
    ``@``: rasterio 1.4 multiplies with ``*``, which affine 3 deprecates with a
    warning on every call, and the cube build computes one per chunk row read.

    Examples
    --------
    >>> from rasterio.transform import from_origin
    >>> window_transform(Window(2, 1, 5, 5), from_origin(6.0, 45.5, 0.5, 0.5)).c
    7.0
    """
    window = rasterio.windows.evaluate(window, height=0, width=0)
    x, y = transform @ (window.col_off or 0.0, window.row_off or 0.0)
    return Affine.translation(x - transform.c, y - transform.f) @ transform


def grid_of(path: str | Path) -> Grid:
    """The grid of one raster file.

    Raises
    ------
    RawFileNotFoundError
        The file does not exist.
    RawDataError
        It cannot be opened, or it has no CRS.

    Examples
    --------
    >>> grid_of("shared/fixtures/pyrate_cropA/cropA_T005A_dem.tif").shape  # doctest: +SKIP
    (60, 100)
    """
    path = Path(path)
    if not path.exists():
        raise RawFileNotFoundError(f"{path}: no such raster file; check the path or the manifest")
    try:
        with rasterio.Env(GDAL_PAM_ENABLED="NO"), rasterio.open(path) as src:
            crs, transform, width, height = src.crs, src.transform, src.width, src.height
    except rasterio.errors.RasterioError as err:
        raise RawDataError(f"{path}: cannot be opened as a raster ({err}); "
                           "rewrite or re-export the file") from err
    if crs is None:
        raise RawDataError(f"{path}: has no CRS; write one (e.g. gdal_edit.py -a_srs EPSG:4326 "
                           f"{path.name}) or re-export it georeferenced")
    return Grid(crs, transform, width, height)


def check_grids(items: Sequence[InterferogramSource], align: bool = False) -> Grid:
    """The one grid every interferogram is on (the first, by date, is the reference).

    Each item's phase and coherence files are checked. With ``align=True``,
    files on another grid in the same or another CRS are accepted: pass the
    returned grid to :func:`isslide_cube.io.read_interferogram` with
    ``align=True`` and they are reprojected onto it with rioxarray.

    Parameters
    ----------
    items
        Interferograms (``Inventory.items``).
    align
        Accept files on other grids (they will be reprojected when read).

    Returns
    -------
    Grid
        The reference grid: that of the first item's phase file.

    Raises
    ------
    RawDataError
        No items; a file without CRS (even with ``align``: it cannot be
        reprojected); or, unless ``align``, files on another grid, all listed
        with how they differ (CRS, resolution, extent), suggesting ``--align``.

    Examples
    --------
    >>> from isslide_cube.io import discover, check_grids
    >>> grid = check_grids(discover("raw").items)  # doctest: +SKIP
    """
    if not items:
        raise RawDataError("no interferogram to check the grids of; discover() found none")
    off: list[str] = []
    reference, ref_path = grid_of(items[0].paths[0]), items[0].paths[0]
    if reference.transform.b != 0 or reference.transform.d != 0:
        # x/y coordinates and the cube's spatial_ref assume a north-up grid
        raise RawDataError(f"{ref_path}: its grid is rotated (GDAL transform "
                           f"{_fmt(reference.to_gdal())}); warp it "
                           "north-up first (gdalwarp without -to, or rioxarray .rio.reproject)")
    for item in items:
        for path in item.paths:
            grid = reference if path == ref_path else grid_of(path)
            diff = reference.differences(grid)
            if diff:
                off.append(f"  - {path}: {'; '.join(diff)}")
    if off and not align:
        raise RawDataError(
            f"{len(off)} file(s) are not on the grid of {ref_path} "
            f"({_crs_name(reference.crs)}, {reference.height} x {reference.width} px, "
            f"resolution {_fmt(reference.res)}):\n" + "\n".join(off)
            + "\nfix: reproject them onto the reference grid with `isslide-cube build --align` "
            "(align=True), or give only files on one grid")
    return reference
