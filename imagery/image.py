"""The image as every reader returns it: its pixels and what the file says about them."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Image:
    """An image read from a file or a delivered product.

    data: H x W x C (rows, columns, bands), C-contiguous, of read_image's ``dtype`` (float64 unless asked
        otherwise): for a plain file the raw values as stored (no scaling, no masking); for a product
        (``imagery.products``) the physical values its metadata defines (reflectance), NaN where it has no
        data and in its bad bands.
    fmt: 'mat' (MATLAB v5/v7), 'mat73' (MATLAB v7.3), 'hdf5', 'npy', 'envi', 'geotiff', or a product:
        'sentinel2_safe', 'prisma_l2d', 'emit_l2a'.
    dtype: the stored data type, e.g. 'uint16' (``data`` may be of another type).
    wavelengths, fwhm: C band centres and full widths at half maximum in nm, when the file has them.
    nodata: the no-data value the file declares. crs, transform: rasterio CRS and affine.Affine of a
        georeferenced image (the transform maps pixel corners: x = c + a col, y = f + e row).
    band_names: C names (ENVI ``band names``, GeoTIFF band descriptions, a product's band names).
    """
    data: np.ndarray
    path: str
    fmt: str
    dtype: str
    wavelengths: np.ndarray | None = None
    fwhm: np.ndarray | None = None
    nodata: float | None = None
    crs: object | None = None
    transform: object | None = None
    band_names: list[str] | None = None
