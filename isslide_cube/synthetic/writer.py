"""Writers of the raw layout (rasterio GeoTIFFs, pyogrio vectors), byte-for-byte reproducible.

GDAL stamps the current date into a DBF header and a GeoPackage's ``gpkg_contents``;
both are pinned (``DBF_DATE_LAST_UPDATE``, ``OGR_CURRENT_DATE``) to the last
acquisition date so that the same seed gives the same bytes.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

from isslide_cube import schema

GTIFF_PROFILE = {
    "driver": "GTiff", "tiled": True, "blockxsize": 256, "blockysize": 256,
    "compress": "zstd", "zstd_level": 1, "predictor": 3, "interleave": "band",
}


def write_interferogram(path: Path, coherence: np.ndarray, phase: np.ndarray, transform: Affine,
                        first: str, second: str) -> None:
    """Write one raw interferogram: 2 float32 bands (coherence, phase), NaN nodata, tags."""
    ny, nx = coherence.shape
    profile = dict(GTIFF_PROFILE, width=nx, height=ny, count=2, dtype="float32",
                   crs=schema.RAW_CRS, transform=transform, nodata=np.nan)
    if nx < 256 or ny < 256:
        profile["tiled"] = False
        profile.pop("blockxsize"), profile.pop("blockysize")
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(coherence.astype("float32"), 1)
        dst.write(phase.astype("float32"), 2)
        for i, name in enumerate(schema.BANDS, start=1):
            dst.set_band_description(i, name)
        dst.update_tags(**{
            schema.TAG_FIRST_DATE: first, schema.TAG_SECOND_DATE: second,
            schema.TAG_WAVELENGTH: repr(schema.WAVELENGTH_M),
            schema.TAG_INCIDENCE: repr(schema.INCIDENCE_DEG),
            schema.TAG_PASS: "DESCENDING", schema.TAG_POLARISATION: "VV",
        })


def write_raster(path: Path, data: np.ndarray, transform: Affine, nodata: float | int | None = None,
                 description: str | None = None, **tags: str) -> None:
    """Write a single-band GeoTIFF in EPSG:4326 (dtype of ``data``)."""
    ny, nx = data.shape
    profile = dict(GTIFF_PROFILE, width=nx, height=ny, count=1, dtype=data.dtype.name,
                   crs=schema.RAW_CRS, transform=transform, nodata=nodata)
    if data.dtype.kind != "f":
        profile["predictor"] = 2
    if nx < 256 or ny < 256:
        profile["tiled"] = False
        profile.pop("blockxsize"), profile.pop("blockysize")
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
        if description:
            dst.set_band_description(1, description)
        if tags:
            dst.update_tags(**tags)


@contextlib.contextmanager
def pinned_ogr_date(iso_date: str) -> Iterator[None]:
    """Make GDAL write ``iso_date`` wherever it would write 'now' (GeoPackage metadata)."""
    import pyogrio

    key = "OGR_CURRENT_DATE"
    old = pyogrio.get_gdal_config_option(key)
    pyogrio.set_gdal_config_options({key: f"{iso_date}T00:00:00.000Z"})
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options({key: old})


def write_annotations(path: Path, records: Sequence[dict], geometries: Sequence[object],
                      last_date: str) -> None:
    """Write one annotation shapefile (possibly empty) with the schema's fields."""
    import geopandas as gpd
    import pandas as pd

    table = pd.DataFrame.from_records(list(records), columns=list(schema.ANNOTATION_FIELDS))
    table = table.astype({"move_id": "int32", "class": "object", "confidence": "float64",
                          "repetitions": "int32"})
    gdf = gpd.GeoDataFrame(table, geometry=gpd.GeoSeries(list(geometries), crs=schema.RAW_CRS),
                           crs=schema.RAW_CRS)
    with warnings.catch_warnings():
        # GDAL truncates DBF field names to 10 characters; restored just below.
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        gdf.to_file(path, driver="ESRI Shapefile", engine="pyogrio", geometry_type="Polygon",
                    layer_options={"DBF_DATE_LAST_UPDATE": last_date, "ENCODING": "UTF-8"})
    restore_dbf_field_names(path.with_suffix(".dbf"), schema.ANNOTATION_FIELDS)


def restore_dbf_field_names(dbf: Path, names: Sequence[str]) -> None:
    """Give back the 11-character field names GDAL truncated to 10 on write.

    A DBF field descriptor holds the name in 11 bytes (zero-filled); GDAL writes at
    most 10 characters but reads all 11, so ``repetitions`` (11 characters, the
    schema's name) fits once written in full. Longer names are left alone.
    """
    full = {n[:10].encode("ascii"): n.encode("ascii") for n in names if len(n) == 11}
    if not full:
        return
    data = bytearray(dbf.read_bytes())
    header_len = int.from_bytes(data[8:10], "little")
    for pos in range(32, header_len - 1, 32):
        if data[pos] == 0x0D:  # end of the field descriptors
            break
        name = bytes(data[pos: pos + 11]).split(b"\x00", 1)[0]
        if name in full:
            data[pos: pos + 11] = full[name]
    dbf.write_bytes(bytes(data))


def write_zones(path: Path, names: Sequence[str], geometries: Sequence[object], last_date: str) -> None:
    """Write ``zones.gpkg``: one polygon per zone with a ``name`` column."""
    import geopandas as gpd

    gdf = gpd.GeoDataFrame({"name": list(names)}, geometry=list(geometries), crs=schema.RAW_CRS)
    with pinned_ogr_date(last_date):
        gdf.to_file(path, driver="GPKG", engine="pyogrio", layer="zones")
