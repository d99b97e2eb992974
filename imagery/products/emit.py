"""EMIT Level-2A surface reflectance (NASA JPL, "EMIT Level 2A Algorithm Theoretical Basis Document" and the
LP DAAC's "EMIT L2A RFL" user guide): one NetCDF-4 file ``EMIT_L2A_RFL_001_<time>_<orbit>_<scene>.nc``, in
the instrument's geometry with a geometry lookup table (GLT) onto a map grid.

Layout:
- ``reflectance``: float32, axes (downtrack, crosstrack, bands), ``_FillValue`` -9999.
- ``sensor_band_parameters/wavelengths`` and ``fwhm`` (nm), ``good_wavelengths`` (1 = outside the
  water-vapour absorption bands).
- ``location/glt_x`` and ``glt_y``: int32, axes (ortho_y, ortho_x) of the map grid; the 1-based crosstrack
  and downtrack index of the instrument pixel that fills each map pixel, 0 where none does.
- Root attributes ``geotransform`` (GDAL's six numbers, of the map grid's pixel corners) and
  ``spatial_ref`` (its CRS as WKT: geographic, EPSG:4326).

The map grid is filled as the GLT says (nearest instrument pixel: no spectrum is interpolated), which is how
the EMIT team's own tools orthorectify.
"""
import numpy as np
from affine import Affine

from imagery.blocks import row_blocks
from imagery.errors import DataError
from imagery.image import Image
from imagery.products.hdf5 import attribute, dataset, open_product

WHAT = "an EMIT L2A reflectance file"
DEFAULT_FILL = -9999.0


def read_emit_l2a(path, dtype=np.float32):
    """The EMIT L2A reflectance file ``path`` on its map grid: an Image (fmt 'emit_l2a') with data H x W x C of
    ``dtype`` (H x W the GLT's grid), NaN where no instrument pixel falls, at the fill value and in the bands
    that are not good wavelengths (which the real-pair loader then drops); band centres and FWHM in nm; CRS
    and transform from ``spatial_ref`` and ``geotransform``.

    Memory: the instrument-geometry cube is read once as float32 (about 1.8 GB for a whole scene) beside the
    output (the map grid is larger: the swath lies diagonally in it).

    Raises DataError naming the file for a missing dataset or attribute, band parameters that do not match
    the cube, or a GLT that points outside it.
    """
    from rasterio.crs import CRS

    with open_product(path, WHAT) as f:
        cube = dataset(f, "reflectance", WHAT)
        if cube.ndim != 3:
            raise DataError(f"{path}: 'reflectance' is {cube.shape}, not (downtrack, crosstrack, bands); the file is "
                            f"not {WHAT} of the documented layout")
        bands = cube.shape[2]
        wavelengths, fwhm = (np.asarray(dataset(f, f"sensor_band_parameters/{name}", WHAT)[()], np.float64).ravel()
                             for name in ("wavelengths", "fwhm"))
        good = (np.asarray(f["sensor_band_parameters/good_wavelengths"][()]).ravel() == 1
                if "sensor_band_parameters/good_wavelengths" in f else np.ones(bands, bool))
        if not (len(wavelengths) == len(fwhm) == len(good) == bands):
            raise DataError(f"{path}: sensor_band_parameters give {len(wavelengths)} wavelengths, {len(fwhm)} FWHM "
                            f"and {len(good)} good_wavelengths for a cube of {bands} bands")
        glt_x, glt_y = (np.asarray(dataset(f, f"location/{name}", WHAT)[()], np.int64) for name in ("glt_x", "glt_y"))
        geotransform = attribute(f, "geotransform", WHAT)
        crs = CRS.from_wkt(attribute(f, "spatial_ref", WHAT))
        fill = cube.attrs.get("_FillValue", DEFAULT_FILL)
        source = cube[()].astype(np.float32, copy=False)
    if glt_x.shape != glt_y.shape or glt_x.ndim != 2:
        raise DataError(f"{path}: location/glt_x {glt_x.shape} and glt_y {glt_y.shape} are not one 2-D grid")
    if glt_x.max() > source.shape[1] or glt_y.max() > source.shape[0] or min(glt_x.min(), glt_y.min()) < 0:
        raise DataError(f"{path}: the GLT points outside the {source.shape[0]} x {source.shape[1]} instrument "
                        "image; the file is damaged: download it again")
    if len(geotransform) != 6:
        raise DataError(f"{path}: the geotransform attribute holds {len(geotransform)} numbers, not GDAL's six")
    source[source == np.float32(np.asarray(fill).ravel()[0])] = np.nan
    data = np.full((*glt_x.shape, bands), np.nan, dtype=dtype)
    for block in row_blocks(data.shape):
        x, y = glt_x[block], glt_y[block]
        filled = (x > 0) & (y > 0)
        data[block][filled] = source[y[filled] - 1, x[filled] - 1]
    data[:, :, ~good] = np.nan
    return Image(data, path, "emit_l2a", "float32", wavelengths=wavelengths, fwhm=fwhm, crs=crs,
                 transform=Affine.from_gdal(*geotransform))
