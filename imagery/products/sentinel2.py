"""Sentinel-2 Level-2A as an HR-MSI: the four 10 m bands of a ``.SAFE`` product folder as surface reflectance.

ESA, "Sentinel-2 Products Specification Document" (S2-PDGS-TAS-DI-PSD), L2A product format; processing
baseline 04.00 and later add BOA_ADD_OFFSET. The folder's MTD_MSIL2A.xml gives BOA_QUANTIFICATION_VALUE
and, per band, BOA_ADD_OFFSET (band_id 0 = B1 ... 12 = B12); GRANULE/<granule>/IMG_DATA/R10m/ holds the
10 m band files <tile>_<date>_B0X_10m.jp2 (uint16, 0 = no data). Surface reflectance = (stored +
BOA_ADD_OFFSET) / BOA_QUANTIFICATION_VALUE.

The 20 m bands (B5, B6, B7, B8A, B11, B12) are not read: their pixels are twice the HR grid's, so they
are not HR bands of a 10 m HR-MSI, and an LR-HSI of 30 m (EnMAP, PRISMA) is 1.5 of them, not a whole ratio.
"""
import glob
import os
import xml.etree.ElementTree as ET

import numpy as np

from imagery.errors import DataError
from imagery.image import Image

SENTINEL2_10M_BANDS = ("B02", "B03", "B04", "B08")
SENTINEL2_BAND_IDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")


def is_sentinel2_safe(path):
    """True for a Sentinel-2 L2A product folder (a ``.SAFE`` folder holding MTD_MSIL2A.xml)."""
    return os.path.isdir(path) and os.path.isfile(os.path.join(path, "MTD_MSIL2A.xml"))


def _local(tag):
    return tag.rsplit("}", 1)[-1]


def read_sentinel2_safe(path, dtype=np.float32):
    """The 10 m bands (SENTINEL2_10M_BANDS: blue, green, red, NIR; Sentinel-2's B2, B3, B4, B8) of the L2A
    product folder ``path`` as surface reflectance: an Image (fmt 'sentinel2_safe') with data H x W x 4 of
    ``dtype``, NaN where the product has no data, the band names, CRS and transform. Raises DataError
    naming the folder for a missing metadata value or band file, or band files on different grids."""
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
    bands, crs, transform = [], None, None
    for name in SENTINEL2_10M_BANDS:
        files = glob.glob(os.path.join(glob.escape(path), "GRANULE", "*", "IMG_DATA", "R10m", f"*_{name}_10m.jp2"))
        if len(files) != 1:
            raise DataError(f"{path}: {len(files)} files GRANULE/*/IMG_DATA/R10m/*_{name}_10m.jp2, expected one; "
                            "give the whole, unzipped .SAFE folder")
        with rasterio.open(files[0]) as ds:
            stored = ds.read(1)
            if transform is not None and (ds.transform != transform or ds.crs != crs):
                raise DataError(f"{files[0]}: not on the grid of the other 10 m bands")
            crs, transform = ds.crs, ds.transform
        number = np.dtype(dtype).type
        reflectance = stored.astype(dtype) + number(offsets.get(SENTINEL2_BAND_IDS.index(name), 0.0))
        reflectance /= number(scale)
        reflectance[stored == 0] = np.nan
        bands.append(reflectance)
    names = [f"B{int(n[1:])}" for n in SENTINEL2_10M_BANDS]
    return Image(np.stack(bands, axis=-1), path, "sentinel2_safe", "uint16", band_names=names, crs=crs,
                 transform=transform)
