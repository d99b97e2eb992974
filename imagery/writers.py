"""Writing image cubes as GeoTIFF (rasterio), ENVI (spectral) and MATLAB v7.3 (h5py), readable back by
``readers.read_image``.

Cubes are H x W x C (rows, columns, bands), written as float32 unless a dtype is given. Wavelengths
and FWHM are in nm. ``GeoTIFFWriter`` and ``Mat73Writer`` write a cube tile by tile (whole scenes,
never whole in memory); ``write_geotiff``, ``write_envi`` and ``write_mat73`` write an array at once.
Each writer writes under a temporary name in the destination folder and renames at the end, so an
interrupted write never leaves a half-written file under the final name.
"""
import os
import sys
import tempfile
import time
import uuid
import warnings

import numpy as np

# The process's umask (read once): files written through a temporary file get the usual permissions.
UMASK = os.umask(0)
os.umask(UMASK)


def atomic_write(path, write):
    """Write ``path`` by calling ``write(f)`` on a binary file in the same folder, then renaming it: an
    interrupted write never leaves a half-written file under the final name. The file gets the usual
    permissions (0666 less the umask)."""
    folder = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path), suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, 0o666 & ~UMASK)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _temporary_base(path):
    """A hidden, unique name next to ``path`` (same folder, so the final rename is atomic)."""
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f".{name}.{uuid.uuid4().hex[:12]}.part")


def _check_lists(bands, band_names, wavelengths, fwhm):
    """The per-band lists as plain lists (None stays None). Raises ValueError when one has a length other
    than ``bands``."""
    lists = []
    for name, values in (("band_names", band_names), ("wavelengths", wavelengths), ("fwhm", fwhm)):
        if values is not None:
            values = [str(v) for v in values] if name == "band_names" else \
                [float(v) for v in np.asarray(values, dtype=np.float64).ravel()]
            if len(values) != bands:
                raise ValueError(f"{name} has {len(values)} entries for a cube of {bands} bands")
        lists.append(values)
    return lists


def _check_cube(cube, band_names, wavelengths, fwhm, dtype="float32"):
    """The cube as ``dtype`` H x W x C and the per-band lists as plain lists (None stays None).
    Raises ValueError when the cube is not 3-D numeric or a list has the wrong length."""
    cube = np.asarray(cube)
    if cube.ndim != 3 or cube.dtype.kind not in "iuf" or cube.size == 0:
        raise ValueError(f"expected a non-empty numeric H x W x C cube, got shape {cube.shape} dtype {cube.dtype}")
    return (cube.astype(dtype, copy=False), *_check_lists(cube.shape[2], band_names, wavelengths, fwhm))


def _check_tile(tile, top, left, shape):
    """``tile`` as an array after checking that it is an h x w x C block of an H x W x C ``shape`` at
    (top, left). Raises ValueError otherwise."""
    tile = np.asarray(tile)
    h, w = tile.shape[:2] if tile.ndim == 3 else (0, 0)
    if (tile.ndim != 3 or tile.shape[2] != shape[2] or min(h, w) < 1 or top < 0 or left < 0
            or top + h > shape[0] or left + w > shape[1]):
        raise ValueError(f"a tile of shape {tile.shape} at row {top}, column {left} does not fit a "
                         f"{shape[0]} x {shape[1]} x {shape[2]} cube")
    return tile


# GeoTIFF creation options of every cube written (GDAL GTiff driver): tiled, deflate-compressed, and
# BigTIFF when the uncompressed size could pass 4 GB (whole scenes).
GEOTIFF_BLOCK = 256
# GDAL's block cache while a GeoTIFF is written window by window (bytes, at least two blocks of all bands):
# GDAL's default (5 % of the RAM) would hold much of a large scene in memory before writing it out.
GEOTIFF_CACHE_BYTES = 64 * 2 ** 20


class GeoTIFFWriter:
    """A GeoTIFF cube written window by window (rasterio), so the cube is never whole in memory.

    path: the file; height, width, bands: the cube's size (H x W x C); crs: anything rasterio's CRS
    accepts (a CRS, 'EPSG:32616', WKT) or None; transform: an affine.Affine (pixel corner to map
    coordinates) or None for a file without georeferencing; nodata: the no-data value declared in the
    file; band_names become the band descriptions; wavelengths / fwhm (C values, nm) become per-band
    tags ``wavelength``, ``fwhm`` and ``wavelength_units=nm`` (GDAL's convention, read back by
    ``readers.read_image``); dtype: the stored type (default float32; an integer type stores the
    values as given); block: the side of the file's square tiles (a multiple of 16; writing windows
    that are whole tiles keeps GDAL from rewriting a tile). Deflate-compressed with the predictor for
    the type, BigTIFF when the cube might pass 4 GB, pixel-interleaved.

    Use as a context manager: ``write(top, left, tile)`` stores an h x w x C tile at row ``top``,
    column ``left``. The file is written under a temporary name in the same folder and renamed to
    ``path`` when the block ends without an error (removed otherwise). Raises ValueError for lists
    whose length is not C, a block that is not a positive multiple of 16, and a tile that does not
    fit the cube.
    """

    def __init__(self, path, height, width, bands, crs, transform, nodata=None, band_names=None, wavelengths=None,
                 fwhm=None, dtype="float32", block=GEOTIFF_BLOCK):
        from rasterio.crs import CRS

        if block < 16 or block % 16:
            raise ValueError(f"the GeoTIFF block side must be a positive multiple of 16; got {block}")
        self.path, self.shape, self.dtype = path, (height, width, bands), np.dtype(dtype)
        self.band_names, self.wavelengths, self.fwhm = _check_lists(bands, band_names, wavelengths, fwhm)
        # Predictors: deflate compresses differences far better (3: floating point, 2: integers).
        self.profile = dict(driver="GTiff", width=width, height=height, count=bands, dtype=self.dtype.name,
                            crs=None if crs is None else CRS.from_user_input(crs), transform=transform,
                            nodata=nodata, tiled=True, blockxsize=block, blockysize=block, compress="deflate",
                            predictor=3 if self.dtype.kind == "f" else 2, interleave="pixel", BIGTIFF="IF_SAFER")
        self.cache = max(GEOTIFF_CACHE_BYTES, 2 * block * block * bands * self.dtype.itemsize)
        self.tmp = self._env = self._dst = None

    def __enter__(self):
        import rasterio
        from rasterio.errors import NotGeoreferencedWarning

        self.tmp = _temporary_base(self.path)
        self._env = rasterio.Env(GDAL_CACHEMAX=self.cache)
        self._env.__enter__()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)  # transform None asks for no georeferencing
                self._dst = rasterio.open(self.tmp, "w", **self.profile)
            for b in range(self.shape[2]):
                if self.band_names is not None:
                    self._dst.set_band_description(b + 1, self.band_names[b])
                tags = {}
                if self.wavelengths is not None:
                    tags.update(wavelength=repr(self.wavelengths[b]), wavelength_units="nm")
                if self.fwhm is not None:
                    tags["fwhm"] = repr(self.fwhm[b])
                if tags:
                    self._dst.update_tags(b + 1, **tags)
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        return self

    def write(self, top, left, tile):
        """Store the h x w x C ``tile`` with its upper-left pixel at (top, left)."""
        from rasterio.windows import Window

        tile = _check_tile(tile, top, left, self.shape)
        self._dst.write(tile.transpose(2, 0, 1).astype(self.dtype, copy=False),
                        window=Window(left, top, tile.shape[1], tile.shape[0]))

    def __exit__(self, exc_type, exc, tb):
        try:
            if self._dst is not None:
                self._dst.close()
            if exc_type is None:
                os.replace(self.tmp, self.path)
        finally:
            self._env.__exit__(exc_type, exc, tb)
            if os.path.exists(self.tmp):
                os.remove(self.tmp)
        return False


def write_geotiff(path, cube, crs, transform, nodata=None, band_names=None, wavelengths=None, fwhm=None,
                  dtype="float32"):
    """Write an H x W x C cube as a tiled, deflate-compressed GeoTIFF of ``dtype`` (default float32; an
    integer type, e.g. 'uint16' for reflectance x 10000 products, stores the values as given).

    crs: anything rasterio's CRS accepts (a CRS, 'EPSG:32616', WKT) or None; transform: an
    affine.Affine (pixel corner to map coordinates) or None for a file without georeferencing.
    nodata: the no-data value declared in the file. band_names become the band descriptions;
    wavelengths / fwhm (C values, nm) become per-band tags ``wavelength``, ``fwhm`` and
    ``wavelength_units=nm`` (GDAL's convention, read back by ``readers.read_image``).
    Written under a temporary name in the same folder, then renamed to ``path`` (``GeoTIFFWriter``
    with one window, the whole cube). Raises ValueError for a cube that is not 3-D numeric or lists
    whose length is not C.
    """
    data, band_names, wavelengths, fwhm = _check_cube(cube, band_names, wavelengths, fwhm, dtype)
    with GeoTIFFWriter(path, *data.shape, crs, transform, nodata=nodata, band_names=band_names,
                       wavelengths=wavelengths, fwhm=fwhm, dtype=dtype) as out:
        out.write(0, 0, data)


# MATLAB v7.3 MAT-files are HDF5 files behind a 512-byte userblock that starts with MATLAB's 128-byte
# MAT-file header: 116 bytes of text, 8 bytes of subsystem offset, version 0x0200 and the endian
# indicator 'IM' (little-endian).
MAT73_USERBLOCK = 512
MAT73_TEXT_BYTES = 116
# Each variable's MATLAB class, from its numpy type.
MATLAB_CLASSES = {"float32": "single", "float64": "double", "int8": "int8", "uint8": "uint8", "int16": "int16",
                  "uint16": "uint16", "int32": "int32", "uint32": "uint32", "int64": "int64", "uint64": "uint64"}
# MATLAB v5/v7 MAT-files hold at most 2 GB per variable (32-bit sizes); larger arrays need v7.3.
MAT_V5_MAX_BYTES = 2 ** 31 - 1
# HDF5 chunks of the stored array hold at most this many bytes (HDF5's guidance: about 1 MB to a few MB).
MAT73_CHUNK_BYTES = 4 * 2 ** 20


def mat73_header(created=None):
    """The 128-byte MATLAB v7.3 MAT-file header (MATLAB's "MAT-File Format", level 5 header with version
    0x0200): the descriptive text, padded with spaces to 116 bytes, 8 zero bytes, 0x0200, 'IM'."""
    created = time.strftime("%a %b %d %H:%M:%S %Y", time.localtime(created))
    text = f"MATLAB 7.3 MAT-file, Platform: {sys.platform}, Created on: {created} HDF5 schema 1.00 ."
    return text.encode("ascii").ljust(MAT73_TEXT_BYTES, b" ") + bytes(8) + b"\x00\x02IM"


class Mat73Writer:
    """A MATLAB v7.3 MAT-file holding one H x W x C array, written tile by tile (h5py), so the array is
    never whole in memory and may exceed MATLAB v5's 2 GB per variable.

    The file is HDF5 behind MATLAB's 512-byte userblock (``mat73_header``); the variable ``name`` is a
    dataset stored C x W x H, as MATLAB stores its column-major arrays, with the attribute
    ``MATLAB_class`` ('single' for float32, see MATLAB_CLASSES), so that MATLAB's ``load`` gives an
    H x W x C array and ``imagery.readers.read_image`` reads it back as H x W x C. Uncompressed, in
    chunks of ``chunk`` x ``chunk`` pixels (pass the tile side, so that each tile fills whole chunks)
    by as many bands as MAT73_CHUNK_BYTES allows.

    Use as a context manager: ``write(top, left, tile)`` stores an h x w x C tile at row ``top``,
    column ``left``. The file is written under a temporary name in the same folder and renamed to
    ``path`` when the block ends without an error (removed otherwise). Raises ValueError for a dtype
    MATLAB has no numeric class for, a name MATLAB would not accept, or a tile that does not fit.
    """

    def __init__(self, path, name, shape, dtype="float32", chunk=GEOTIFF_BLOCK):
        self.dtype = np.dtype(dtype)
        if self.dtype.name not in MATLAB_CLASSES:
            raise ValueError(f"no MATLAB numeric class for dtype {self.dtype}; use one of {', '.join(MATLAB_CLASSES)}")
        if not (name.isidentifier() and name.isascii()):
            raise ValueError(f"{name!r} is not a valid MATLAB variable name (letters, digits, underscores)")
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(f"the array must be a non-empty H x W x C array; got shape {tuple(shape)}")
        self.path, self.name, self.shape = path, name, tuple(int(s) for s in shape)
        height, width, bands = self.shape
        side = max(1, min(chunk, max(height, width)))
        per_band = min(side, height) * min(side, width) * self.dtype.itemsize
        # Bands split evenly into the fewest chunks that fit MAT73_CHUNK_BYTES (no mostly empty last chunk).
        band_chunks = -(-bands // max(1, MAT73_CHUNK_BYTES // per_band))
        self.chunks = (-(-bands // band_chunks), min(side, width), min(side, height))
        self.tmp = self._file = self._dset = None

    def __enter__(self):
        import h5py

        self.tmp = _temporary_base(self.path)
        try:
            self._file = h5py.File(self.tmp, "w", userblock_size=MAT73_USERBLOCK)
            height, width, bands = self.shape
            self._dset = self._file.create_dataset(self.name, shape=(bands, width, height), dtype=self.dtype,
                                                   chunks=self.chunks)
            self._dset.attrs["MATLAB_class"] = np.bytes_(MATLAB_CLASSES[self.dtype.name])
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        return self

    def write(self, top, left, tile):
        """Store the h x w x C ``tile`` with its upper-left pixel at (top, left)."""
        tile = _check_tile(tile, top, left, self.shape)
        h, w = tile.shape[:2]
        self._dset[:, left:left + w, top:top + h] = tile.transpose(2, 1, 0).astype(self.dtype, copy=False)

    def __exit__(self, exc_type, exc, tb):
        try:
            if self._file is not None:
                self._file.close()
            if exc_type is None:
                with open(self.tmp, "r+b") as f:
                    f.write(mat73_header())
                os.replace(self.tmp, self.path)
        finally:
            if os.path.exists(self.tmp):
                os.remove(self.tmp)
        return False


def write_mat73(path, name, cube, chunk=GEOTIFF_BLOCK):
    """Write an H x W x C array as variable ``name`` of a MATLAB v7.3 MAT-file (``Mat73Writer``, one
    tile: the whole array). Raises ValueError as Mat73Writer does and for an array that is not 3-D."""
    cube = np.asarray(cube)
    if cube.ndim != 3:
        raise ValueError(f"expected an H x W x C array, got shape {cube.shape}")
    with Mat73Writer(path, name, cube.shape, cube.dtype, chunk) as out:
        out.write(0, 0, cube)


def envi_map_info(crs, transform):
    """The ENVI header entries ``map info`` (its units Degrees for a geographic CRS, else Meters) and
    ``coordinate system string`` of a north-up grid. Raises ValueError for a rotated one (ENVI's rotation is
    not written here)."""
    from rasterio.crs import CRS

    if transform.b != 0 or transform.d != 0:
        raise ValueError(f"a rotated grid (transform {tuple(transform)[:6]}) cannot be written as ENVI map info")
    crs = CRS.from_user_input(crs)
    name = (crs.to_dict().get("proj") or "Arbitrary") if crs.to_epsg() is None else f"EPSG_{crs.to_epsg()}"
    units = "Degrees" if crs.is_geographic else "Meters"  # an EMIT grid (EPSG:4326) is in degrees
    return {"map info": [name, "1", "1", repr(float(transform.c)), repr(float(transform.f)), repr(float(transform.a)),
                         repr(float(-transform.e)), f"units={units}"],
            "coordinate system string": "{" + crs.to_wkt() + "}"}  # verbatim: a list would mangle its commas


def write_envi(path, cube, wavelengths=None, fwhm=None, nodata=None, band_names=None, crs=None, transform=None):
    """Write an H x W x C cube as an ENVI float32 BSQ image: ``path`` is the header (.hdr), the data
    goes to the same name with extension .img.

    The header carries ``wavelength`` and ``fwhm`` (C values, nm) with ``wavelength units =
    Nanometers``, ``data ignore value`` (nodata) and ``band names``; with ``crs`` (anything rasterio's CRS
    takes) and a north-up ``transform`` (affine.Affine), ``map info`` (the upper-left corner of pixel
    (1, 1) and the pixel sizes, as GDAL's ENVI driver writes it) and ``coordinate system string`` (the
    CRS's WKT). Both files are written under a
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
    if crs is not None and transform is not None:
        metadata.update(envi_map_info(crs, transform))
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
