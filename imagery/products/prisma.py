"""PRISMA Level-2D (ASI, "PRISMA Products Specification Document", PRISMA-ASI-PSD): the orthorectified
surface reflectance of the hyperspectral (VNIR + SWIR, 30 m) and panchromatic (5 m) cameras, in one
HDF-EOS5 file ``PRS_L2D_STD_<start>_<stop>_0001.he5``.

Layout (as the product specification gives it, and as the EnMAP-Box's and prismaread's importers read it):
- ``HDFEOS/SWATHS/PRS_L2D_HCO/Data Fields/VNIR_Cube`` and ``SWIR_Cube``: uint16, axes (rows, bands,
  columns), the bands in the detector's order (decreasing wavelength).
- Root attributes ``List_Cw_Vnir``/``List_Cw_Swir`` (band centres, nm; 0 for a channel that is not
  delivered), ``List_Fwhm_Vnir``/``List_Fwhm_Swir`` (nm), ``List_Cw_Vnir_Flags``/``List_Cw_Swir_Flags``
  (1 = a usable band), ``L2ScaleVnirMin/Max``, ``L2ScaleSwirMin/Max``, ``L2ScalePanMin/Max``: reflectance
  = Min + DN (Max - Min) / 65535; DN 0 in every band is the no-data frame.
- ``HDFEOS/SWATHS/PRS_L2D_PCO/Data Fields/Cube``: the panchromatic image, uint16 (rows, columns), six
  times the hyperspectral grid.
- Root attributes ``Epsg_Code`` (UTM) and ``Product_ULcorner_easting/northing``,
  ``Product_LRcorner_easting/northing``: the centres of the hyperspectral grid's upper-left and
  lower-right pixels (the footprint reaches half a pixel beyond them).

The panchromatic image is taken to cover the hyperspectral footprint exactly (its pixel = the footprint /
its size, 5 m); the registration check (``imagery.registration``) measures what is left from the pixels.
The L1, L2B and L2C products are in sensor geometry, without a map grid, and are refused.
"""
import numpy as np
from affine import Affine

from imagery.blocks import row_blocks
from imagery.errors import DataError
from imagery.image import Image
from imagery.products.hdf5 import attribute, dataset, open_product, scalar

WHAT = "a PRISMA L2D product"
HCO = "HDFEOS/SWATHS/PRS_L2D_HCO/Data Fields"
PCO = "HDFEOS/SWATHS/PRS_L2D_PCO/Data Fields"
DN_MAX = 65535.0
# (cube, attribute infix) of the two hyperspectral detectors, in the order their bands are stacked.
DETECTORS = (("VNIR", "Vnir"), ("SWIR", "Swir"))


def read_prisma_l2d(path, dtype=np.float32, pan=False):
    """The PRISMA L2D product ``path`` as surface reflectance: an Image (fmt 'prisma_l2d'), CRS and transform
    from the product's corners.

    ``pan`` False: the hyperspectral image, H x W x C of ``dtype``, the VNIR bands then the SWIR bands,
    each detector's in increasing wavelength (the two overlap near 950 nm; both are kept, as delivered),
    with their centres and FWHM (nm); NaN in the no-data frame and in the bands flagged unusable (which
    the real-pair loader then drops). ``pan`` True: the panchromatic image, 6H x 6W x 1.

    Raises DataError naming the file for another PRISMA level, a missing dataset or attribute, band lists
    that do not match the cubes, or corners that give no grid.
    """
    with open_product(path, WHAT) as f:
        swaths = list(f.get("HDFEOS/SWATHS", {}))
        if "PRS_L2D_HCO" not in swaths:
            raise DataError(f"{path}: not a PRISMA Level-2D product (its swaths: {', '.join(swaths) or 'none'}); "
                            "L1, L2B and L2C are in sensor geometry without a map grid: order the L2D product")
        rows, _, cols = dataset(f, f"{HCO}/VNIR_Cube", WHAT).shape
        transform = _hsi_transform(f, rows, cols)
        crs = f"EPSG:{int(scalar(f, 'Epsg_Code', WHAT))}"
        if pan:
            data, transform = _read_pan(f, rows, cols, transform, dtype)
            return Image(data, path, "prisma_l2d", "uint16", crs=crs, transform=transform, band_names=["pan"])
        data, wavelengths, fwhm, names = _read_hsi(f, rows, cols, dtype)
    return Image(data, path, "prisma_l2d", "uint16", wavelengths=wavelengths, fwhm=fwhm, crs=crs,
                 transform=transform, band_names=names)


def _hsi_transform(f, rows, cols):
    """The 30 m grid's transform: the corner attributes are the centres of the corner pixels."""
    ul = [scalar(f, f"Product_ULcorner_{axis}", WHAT) for axis in ("easting", "northing")]
    lr = [scalar(f, f"Product_LRcorner_{axis}", WHAT) for axis in ("easting", "northing")]
    if rows < 2 or cols < 2 or lr[0] <= ul[0] or ul[1] <= lr[1]:
        raise DataError(f"{f.filename}: the corners (upper left {ul}, lower right {lr}) of a {rows} x {cols} image "
                        "give no north-up grid; the file is not a PRISMA L2D product of the documented layout")
    x_size, y_size = (lr[0] - ul[0]) / (cols - 1), (ul[1] - lr[1]) / (rows - 1)
    return Affine(x_size, 0.0, ul[0] - x_size / 2, 0.0, -y_size, ul[1] + y_size / 2)


def _bands(f, infix, count):
    """(indices into the cube's band axis in increasing wavelength, their centres, FWHM, usable flags) of one
    detector: the channels with a centre above 0."""
    centres = attribute(f, f"List_Cw_{infix}", WHAT)
    fwhm = attribute(f, f"List_Fwhm_{infix}", WHAT)
    flags = (attribute(f, f"List_Cw_{infix}_Flags", WHAT) if f"List_Cw_{infix}_Flags" in f.attrs
             else np.ones_like(centres))
    if not (len(centres) == len(fwhm) == len(flags) == count):
        raise DataError(f"{f.filename}: List_Cw_{infix}, List_Fwhm_{infix} and List_Cw_{infix}_Flags give "
                        f"{len(centres)}, {len(fwhm)} and {len(flags)} values for a cube of {count} bands; the file "
                        "is not a PRISMA L2D product of the documented layout")
    present = np.flatnonzero(centres > 0)
    order = present[np.argsort(centres[present], kind="stable")]
    return order, centres[order], fwhm[order], flags[order] == 1


def _read_hsi(f, rows, cols, dtype):
    cubes, parts = [], []
    for cube_name, infix in DETECTORS:
        cube = dataset(f, f"{HCO}/{cube_name}_Cube", WHAT)
        if cube.ndim != 3 or (cube.shape[0], cube.shape[2]) != (rows, cols):
            raise DataError(f"{f.filename}: {cube_name}_Cube is {cube.shape}, not ({rows}, bands, {cols}) as "
                            "VNIR_Cube; the file is not a PRISMA L2D product of the documented layout")
        low, high = (scalar(f, f"L2Scale{infix}{end}", WHAT) for end in ("Min", "Max"))
        cubes.append((cube, low, (high - low) / DN_MAX))
        parts.append(_bands(f, infix, cube.shape[1]))
    widths = [len(order) for order, *_ in parts]
    data = np.empty((rows, cols, sum(widths)), dtype=dtype)
    for block in row_blocks(data.shape):
        frame = np.ones((block.stop - block.start, cols), dtype=bool)
        start = 0
        for (cube, low, step), (order, *_), width in zip(cubes, parts, widths):
            stored = cube[block]
            frame &= ~stored.any(axis=1)
            values = data[block, :, start:start + width]
            values[...] = np.moveaxis(stored[:, order, :], 1, 2)
            values *= step
            values += low
            start += width
        data[block][frame] = np.nan
    usable = np.concatenate([flags for *_, flags in parts])
    data[:, :, ~usable] = np.nan
    names = [f"{cube_name} {c:.2f} nm" for (cube_name, _), (_, centres, *_) in zip(DETECTORS, parts) for c in centres]
    return (data, np.concatenate([c for _, c, _, _ in parts]), np.concatenate([w for _, _, w, _ in parts]), names)


def _read_pan(f, rows, cols, transform, dtype):
    cube = dataset(f, f"{PCO}/Cube", WHAT)
    if cube.ndim != 2 or cube.shape[0] % rows or cube.shape[0] * cols != cube.shape[1] * rows:
        raise DataError(f"{f.filename}: the panchromatic Cube is {cube.shape}, not a whole multiple of the "
                        f"hyperspectral grid ({rows} x {cols}); the file is not a PRISMA L2D product of the "
                        "documented layout")
    low, high = (scalar(f, f"L2ScalePan{end}", WHAT) for end in ("Min", "Max"))
    data = np.empty((*cube.shape, 1), dtype=dtype)
    for block in row_blocks(data.shape):
        stored = cube[block]
        values = data[block, :, 0]
        values[...] = stored
        values *= (high - low) / DN_MAX
        values += low
        values[stored == 0] = np.nan
    return data, transform @ Affine.scale(rows / cube.shape[0])
