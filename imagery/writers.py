"""Writing image cubes as GeoTIFF (rasterio) and ENVI (spectral), readable back by ``readers.read_image``.

Cubes are H x W x C (rows, columns, bands), written as float32. Wavelengths and FWHM are in nm.
Each writer writes under a temporary name in the destination folder and renames at the end, so an
interrupted write never leaves a half-written file under the final name.
"""
import os
import uuid
import warnings

import numpy as np


def _temporary_base(path):
    """A hidden, unique name next to ``path`` (same folder, so the final rename is atomic)."""
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f".{name}.{uuid.uuid4().hex[:12]}.part")


def _check_cube(cube, band_names, wavelengths, fwhm, dtype="float32"):
    """The cube as ``dtype`` H x W x C and the per-band lists as plain lists (None stays None).
    Raises ValueError when the cube is not 3-D numeric or a list has the wrong length."""
    cube = np.asarray(cube)
    if cube.ndim != 3 or cube.dtype.kind not in "iuf" or cube.size == 0:
        raise ValueError(f"expected a non-empty numeric H x W x C cube, got shape {cube.shape} dtype {cube.dtype}")
    bands = cube.shape[2]
    lists = []
    for name, values in (("band_names", band_names), ("wavelengths", wavelengths), ("fwhm", fwhm)):
        if values is not None:
            values = [str(v) for v in values] if name == "band_names" else \
                [float(v) for v in np.asarray(values, dtype=np.float64).ravel()]
            if len(values) != bands:
                raise ValueError(f"{name} has {len(values)} entries for a cube of {bands} bands")
        lists.append(values)
    return (cube.astype(dtype, copy=False), *lists)


def write_geotiff(path, cube, crs, transform, nodata=None, band_names=None, wavelengths=None, fwhm=None,
                  dtype="float32"):
    """Write an H x W x C cube as a tiled, deflate-compressed GeoTIFF of ``dtype`` (default float32; an
    integer type, e.g. 'uint16' for reflectance x 10000 products, stores the values as given).

    crs: anything rasterio's CRS accepts (a CRS, 'EPSG:32616', WKT) or None; transform: an
    affine.Affine (pixel corner to map coordinates) or None for a file without georeferencing.
    nodata: the no-data value declared in the file. band_names become the band descriptions;
    wavelengths / fwhm (C values, nm) become per-band tags ``wavelength``, ``fwhm`` and
    ``wavelength_units=nm`` (GDAL's convention, read back by ``readers.read_image``).
    Written under a temporary name in the same folder, then renamed to ``path``.
    Raises ValueError for a cube that is not 3-D numeric or lists whose length is not C.
    """
    import rasterio
    from rasterio.crs import CRS
    from rasterio.errors import NotGeoreferencedWarning

    data, band_names, wavelengths, fwhm = _check_cube(cube, band_names, wavelengths, fwhm, dtype)
    height, width, bands = data.shape
    # Predictors: deflate compresses differences far better (3: floating point, 2: integers).
    predictor = 3 if data.dtype.kind == "f" else 2
    profile = dict(driver="GTiff", width=width, height=height, count=bands, dtype=data.dtype.name,
                   crs=None if crs is None else CRS.from_user_input(crs), transform=transform,
                   nodata=nodata, tiled=True, blockxsize=256, blockysize=256, compress="deflate",
                   predictor=predictor)
    tmp = _temporary_base(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)  # transform None asks for no georeferencing
            with rasterio.open(tmp, "w", **profile) as dst:
                dst.write(data.transpose(2, 0, 1))
                for b in range(bands):
                    if band_names is not None:
                        dst.set_band_description(b + 1, band_names[b])
                    tags = {}
                    if wavelengths is not None:
                        tags.update(wavelength=repr(wavelengths[b]), wavelength_units="nm")
                    if fwhm is not None:
                        tags["fwhm"] = repr(fwhm[b])
                    if tags:
                        dst.update_tags(b + 1, **tags)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_envi(path, cube, wavelengths=None, fwhm=None, nodata=None, band_names=None):
    """Write an H x W x C cube as an ENVI float32 BSQ image: ``path`` is the header (.hdr), the data
    goes to the same name with extension .img.

    The header carries ``wavelength`` and ``fwhm`` (C values, nm) with ``wavelength units =
    Nanometers``, ``data ignore value`` (nodata) and ``band names``. Both files are written under a
    temporary name in the same folder and renamed at the end, the header last, so a header under the
    final name always describes a complete data file. Existing files of that name are replaced.
    Raises ValueError when ``path`` does not end in .hdr, for a cube that is not 3-D numeric, lists
    whose length is not C, and band names containing ',', '{' or '}' (ENVI's list syntax).
    """
    import spectral.io.envi as envi

    root, ext = os.path.splitext(path)
    if ext.lower() != ".hdr":
        raise ValueError(f"{path}: the ENVI path must be the header, ending in .hdr")
    data, band_names, wavelengths, fwhm = _check_cube(cube, band_names, wavelengths, fwhm)
    if band_names is not None and any(set(n) & set(",{}") for n in band_names):
        raise ValueError("ENVI band names cannot contain ',', '{' or '}' (they separate the header's lists)")
    metadata = {}
    if wavelengths is not None:
        metadata.update({"wavelength": [repr(w) for w in wavelengths], "wavelength units": "Nanometers"})
    if fwhm is not None:
        metadata["fwhm"] = [repr(f) for f in fwhm]
    if nodata is not None:
        metadata["data ignore value"] = repr(float(nodata))
    if band_names is not None:
        metadata["band names"] = band_names
    tmp = _temporary_base(path)
    written = (tmp + ".img", root + ".img"), (tmp + ".hdr", path)
    try:
        envi.save_image(tmp + ".hdr", data, dtype=np.float32, interleave="bsq", ext=".img", force=True,
                        metadata=metadata)
        for source, target in written:
            os.replace(source, target)
    except BaseException:
        for source, _ in written:
            if os.path.exists(source):
                os.remove(source)
        raise
