"""Delivered products read as they are downloaded, with the scaling, band centres, bad bands and map grid
their metadata define (one module per product):

- ``enmap``: EnMAP L2A, the ``-SPECTRAL_IMAGE.TIF`` with its ``-METADATA.XML`` (applied while the GeoTIFF is
  read, ``imagery.readers``);
- ``sentinel2``: Sentinel-2 L2A, a ``.SAFE`` folder's 10 m or 20 m bands (an HR-MSI);
- ``prisma``: PRISMA L2D, a ``.he5`` file: the hyperspectral image, or its panchromatic one as an HR-MSI;
- ``emit``: EMIT L2A reflectance, a ``.nc`` file, put on its map grid.
"""
import os

import numpy as np

from imagery.errors import DataError
from imagery.products.emit import read_emit_l2a
from imagery.products.prisma import read_prisma_l2d
from imagery.products.sentinel2 import is_sentinel2_safe, read_sentinel2_safe


def read_product(path, role, dtype=np.float32, key=None):
    """The product at ``path`` as an imagery.image.Image (data H x W x C of ``dtype``, physical values, NaN
    where there is no data), or None when ``path`` is no product this package reads (then it is read as a
    plain image file). A PRISMA L2D file gives its panchromatic image for the ``role`` "HR-MSI" and its
    hyperspectral image otherwise; ``key`` (--hr_msi_key) picks a Sentinel-2 product's resolution and is
    refused for the others. Raises DataError (naming the file) as the product's reader does."""
    extension = os.path.splitext(path)[1].lower()
    if is_sentinel2_safe(path):
        return read_sentinel2_safe(path, dtype, key)
    if extension not in (".he5", ".nc") or not os.path.isfile(path):
        return None
    if key is not None:
        raise DataError(f"{path}: a {'PRISMA' if extension == '.he5' else 'EMIT'} product holds one image for "
                        f"each role; drop the key option ({key})")
    if extension == ".he5":
        return read_prisma_l2d(path, dtype, pan=role == "HR-MSI")
    return read_emit_l2a(path, dtype)
