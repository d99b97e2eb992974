"""Sentinel-2 Level-2A as an HR-MSI: the bands of one resolution of a ``.SAFE`` product folder as surface
reflectance.

ESA, "Sentinel-2 Products Specification Document" (S2-PDGS-TAS-DI-PSD), L2A product format; processing
baseline 04.00 and later add BOA_ADD_OFFSET. The folder's MTD_MSIL2A.xml gives BOA_QUANTIFICATION_VALUE
and, per band, BOA_ADD_OFFSET (band_id 0 = B1 ... 12 = B12); GRANULE/<granule>/IMG_DATA/R10m/ holds the
10 m band files <tile>_<date>_B0X_10m.jp2 and R20m/ the 20 m ones <tile>_<date>_BXX_20m.jp2 (uint16, 0 = no
data). Surface reflectance = (stored + BOA_ADD_OFFSET) / BOA_QUANTIFICATION_VALUE.

One resolution is read, since the HR-MSI is one grid: the four 10 m bands (an LR-HSI of 30 m: EnMAP,
PRISMA, r = 3), or the nine bands L2A delivers at 20 m (B2-B7, B8A, B11, B12; an LR-HSI of 60 m: EMIT, r =
3). The 20 m bands never go with a 30 m LR-HSI: 30 m is 1.5 of their pixels, not a whole ratio.
"""
import glob
import os
import xml.etree.ElementTree as ET

import numpy as np

from imagery.errors import DataError
from imagery.image import Image

# The band files of each resolution folder that are spectral bands, in band order.
SENTINEL2_BANDS = {"10m": ("B02", "B03", "B04", "B08"),
                   "20m": ("B02", "B03", "B04", "B05", "B06", "B07", "B8A", "B11", "B12")}
SENTINEL2_BAND_IDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")


def is_sentinel2_safe(path):
    """True for a Sentinel-2 L2A product folder (a ``.SAFE`` folder holding MTD_MSIL2A.xml)."""
    return os.path.isdir(path) and os.path.isfile(os.path.join(path, "MTD_MSIL2A.xml"))


def _local(tag):
    return tag.rsplit("}", 1)[-1]


def resolution_of(key, path):
    """The resolution folder ("10m" or "20m") that ``key`` (--hr_msi_key: None, "10m", "20m", "R20m", "20")
    names; DataError naming ``path`` for another."""
    if key is None:
        return "10m"
    resolution = key.strip().upper().removeprefix("R").removesuffix("M") + "m"
    if resolution not in SENTINEL2_BANDS:
        raise DataError(f"{path}: --hr_msi_key {key} names no resolution of a Sentinel-2 L2A product; give 10m (B2, "
                        "B3, B4, B8) or 20m (B2-B7, B8A, B11, B12)")
    return resolution


def read_sentinel2_safe(path, dtype=np.float32, key=None):
    """The bands of one resolution (``key``: see ``resolution_of``; 10 m by default) of the L2A product folder
    ``path`` as surface reflectance: an Image (fmt 'sentinel2_safe') with data H x W x C of ``dtype``, NaN
    where the product has no data, the band names (B2, B3, ...: Sentinel-2's band names, as --msi_sensor
    sentinel2 --msi_bands_select takes them), CRS and transform. Raises DataError naming the folder for a
    missing metadata value or band file, or band files on different grids."""
    import rasterio

    try:
        root = ET.parse(os.path.join(path, "MTD_MSIL2A.xml")).getroot()
    except (OSError, ET.ParseError) as exc:
        raise DataError(f"{path}: MTD_MSIL2A.xml cannot be read ({exc})") from None
    quantification = [e.text for e in root.iter() if _local(e.tag) == "BOA_QUANTIFICATION_VALUE"]
    if not quantification:
        raise DataError(f"{path}: MTD_MSIL2A.xml has no BOA_QUANTIFICATION_VALUE; it is not a Level-2A product")
    scale = float(quantification[0])
    offsets = {int(e.attrib.get("band_id", -1)): float(e.text) for e in root.iter()
               if _local(e.tag) == "BOA_ADD_OFFSET"}
    resolution = resolution_of(key, path)
    bands, crs, transform = [], None, None
    for name in SENTINEL2_BANDS[resolution]:
        pattern = os.path.join("GRANULE", "*", "IMG_DATA", f"R{resolution}", f"*_{name}_{resolution}.jp2")
        files = glob.glob(os.path.join(glob.escape(path), pattern))
        if len(files) != 1:
            raise DataError(f"{path}: {len(files)} files {pattern}, expected one; give the whole, unzipped .SAFE "
                            "folder")
        with rasterio.open(files[0]) as ds:
            stored = ds.read(1)
            if transform is not None and (ds.transform != transform or ds.crs != crs):
                raise DataError(f"{files[0]}: not on the grid of the other {resolution} bands")
            crs, transform = ds.crs, ds.transform
        number = np.dtype(dtype).type
        reflectance = stored.astype(dtype) + number(offsets.get(SENTINEL2_BAND_IDS.index(name), 0.0))
        reflectance /= number(scale)
        reflectance[stored == 0] = np.nan
        bands.append(reflectance)
    names = [name if name == "B8A" else f"B{int(name[1:])}" for name in SENTINEL2_BANDS[resolution]]
    return Image(np.stack(bands, axis=-1), path, "sentinel2_safe", "uint16", band_names=names, crs=crs,
                 transform=transform)
