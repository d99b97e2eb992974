"""Reading image files: MATLAB (v5/v7 and v7.3), HDF5, NumPy, ENVI and GeoTIFF, delivered products
(``imagery.products``), plus band-centre lists.

Every image comes back as a C-contiguous H x W x C array (axis order rows, columns, bands) of the
floating-point type the caller asks for (``read_image``'s ``dtype``), holding the values as stored: no
radiometric scaling (an ENVI ``reflectance scale factor`` is not applied) and no masking;
``invalid_values`` finds NaN/Inf, fill values and the declared no-data value. Wavelengths and FWHM
(ENVI and GeoTIFF metadata, a MAT/HDF5 file's 'wavelengths' and 'fwhm' vectors) are in nanometres
(declared micrometres are converted).

Precision: float64 (the default) holds every stored type exactly but 64-bit integers beyond 2^53;
reference cubes for Wald's protocol are read so. The real-pair path (``data_loader.load_real_pair``)
asks for float32, which halves its memory: integers of up to 16 bits and float32 values are stored
exactly, so such files (delivered products: reflectance x 10000 as int16/uint16, float32) load to
the same values as in float64. Float64 files (and 32/64-bit integers beyond 2^24) are rounded to
float32 (relative error below 6e-8, far under any sensor's radiometric precision, and the networks
compute in float32 anyway); values beyond float32's range become +-Inf, which ``invalid_values``
flags like the fill values they are. The scaling rule (``imagery.radiometry``) then gives the same
power of ten as on the float64 values, unless the image's peak lies within that rounding above a
power of ten. Memory: a GeoTIFF is read window by window (whole blocks of the file) straight into
the output array, with GDAL's block cache bounded (GEOTIFF_CACHE_MB); an ENVI file is converted from
its memory map; MATLAB, HDF5 and .npy files go through one transient array of their stored type.

Bad input raises ``data_loader.DataError`` (a ValueError) whose message names the file, says what
is wrong and how to fix it; errors of the underlying libraries (scipy, h5py, spectral, rasterio) are
turned into DataError, never passed through.
"""
from __future__ import annotations

import locale
import logging
import math
import os
import re
import struct
import warnings
import zlib
from dataclasses import dataclass

import numpy as np

from imagery import blocks
from imagery.errors import DataError
from imagery.image import Image
from imagery.products import read_product
from imagery.products.enmap import apply_enmap_metadata, enmap_metadata_for
from imagery.tables import read_cells

log = logging.getLogger(__name__)

# GDAL's block cache (MB) while a GeoTIFF's pixels are read, at least twice a window's blocks: each
# block is decoded once, so a larger cache only adds memory (GDAL's default, 5 % of the RAM, kept
# about 1 GB of a 1600 x 1600 x 166 int16 scene's decoded blocks).
GEOTIFF_CACHE_MB = 64
# Magnitudes beyond this are fill values, not data: the float32 fill -3.4028235e38 (FLT_MAX, GDAL's
# and ENVI's usual no-data for float images), -1e38 and similar sentinels. No physical radiance or
# reflectance comes near 1e30, in any unit or scaling.
FILL_MAGNITUDE = 1e30
UPSTREAM_CUBE_KEY = "REF"
# Variables of a MAT/HDF5 file that hold the band centres (the first found) and the FWHM, in nm, of the
# image beside them.
MAT_WAVELENGTH_KEYS = ("wavelengths", "wavelength")
MAT_FWHM_KEY = "fwhm"
MATLAB_V73_HEADER = b"MATLAB 7.3 MAT-file"
ENVI_DATA_EXTENSIONS = (".img", ".dat", ".raw", ".bsq", ".bil", ".bip")
SUPPORTED_FORMATS = ("MATLAB .mat (v5/v7 or v7.3), HDF5 .h5/.hdf5, NumPy .npy, ENVI (.hdr, or a data file "
                     f"{'/'.join(ENVI_DATA_EXTENSIONS)} or without extension next to its .hdr), GeoTIFF .tif/.tiff; "
                     "products: PRISMA L2D .he5, EMIT L2A .nc, a Sentinel-2 L2A .SAFE folder")
# Bands below this many "nm" are almost surely micrometres: the shortest band any sensor of this
# domain records is above 300 nm, and the longest thermal band is below 15 um.
MICROMETRE_LIMIT = 30.0
_MATLAB_NUMERIC = {"double", "single", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"}
_UNIT_TO_NM = {"nanometers": 1.0, "nanometer": 1.0, "nanometres": 1.0, "nanometre": 1.0, "nm": 1.0,
               "micrometers": 1000.0, "micrometer": 1000.0, "micrometres": 1000.0, "micrometre": 1000.0,
               "microns": 1000.0, "micron": 1000.0, "um": 1000.0, "\u00b5m": 1000.0}
# ENVI's placeholders for "no physical wavelength": the values are band numbers or undeclared.
_UNITS_WITHOUT_WAVELENGTH = {"index"}
_UNITS_UNDECLARED = {"", "unknown"}
# MAT v5 element type codes (MathWorks, "MAT-File Format", Table 1-1): the data types, and the two
# that hold a variable. scipy indexes a table with each data element's code unchecked, so a damaged
# file with another code crashes the process (segmentation fault) instead of raising: checked first.
_MAT5_DATA_TYPES = frozenset({1, 2, 3, 4, 5, 6, 7, 9, 12, 13, 16, 17, 18})
_MAT5_MATRIX, _MAT5_COMPRESSED = 14, 15
_MAT5_CONTAINER_CLASSES = frozenset({1, 2, 3, 16, 17})  # cell, struct, object, function handle, opaque


@dataclass(frozen=True)
class _Variable:
    """A variable of a MAT/HDF5 file, known without reading its values."""
    name: str
    shape: tuple
    kind: str      # MATLAB class or numpy dtype name, for messages
    numeric: bool  # real integer or floating point

    def describe(self):
        size = "empty" if 0 in self.shape else " x ".join(map(str, self.shape)) or "scalar"
        return f"{self.name!r} ({size} {self.kind})"


def _describe_all(variables):
    return ", ".join(v.describe() for v in sorted(variables, key=lambda v: v.name)) or "none"


# ----------------------------------------------------------------------------- format detection

def _format_of(path):
    """('mat' | 'hdf5' | 'npy' | 'envi' | 'geotiff', ENVI header or None) from the file name."""
    root, ext = os.path.splitext(path)
    ext = ext.lower()
    if ext == ".mat":
        return "mat", None
    if ext in (".h5", ".hdf5"):
        return "hdf5", None
    if ext == ".npy":
        return "npy", None
    if ext in (".tif", ".tiff"):
        return "geotiff", None
    if ext == ".hdr":
        return "envi", path
    if ext in ENVI_DATA_EXTENSIONS or ext == "":
        for header in (root + ".hdr", root + ".HDR", path + ".hdr"):
            if os.path.isfile(header):
                return "envi", header
        if ext:
            raise DataError(f"{path}: an ENVI data file without its header: put the .hdr file next to it "
                              f"({os.path.basename(root)}.hdr)")
    raise DataError(f"{path}: unknown image format {ext or '(no extension)'!r}; supported formats: "
                      f"{SUPPORTED_FORMATS}")


def _check_mat5_elements(path):
    """Raise ValueError when an element of a MAT v5 file has a type code that is not a MAT data type
    (see _MAT5_DATA_TYPES). Other damage (truncation, a bad header) is left to scipy, which refuses it."""
    with open(path, "rb") as f:
        header = f.read(128)
        order = {b"IM": "<", b"MI": ">"}.get(header[126:128])
        if order is None or struct.unpack(order + "H", header[124:126])[0] != 0x0100:
            return  # MAT v4 or not a MAT-file
        while len(tag := f.read(8)) == 8:
            kind, size = struct.unpack(order + "II", tag)
            payload = f.read(size)
            if kind == _MAT5_COMPRESSED:
                try:
                    variable = zlib.decompress(payload)
                except zlib.error:
                    return
            elif kind == _MAT5_MATRIX:
                variable = tag + payload
            else:
                continue
            bad = _bad_mat5_type(variable, order)
            if bad is not None:
                raise ValueError(f"a data element of unknown type {bad}: the file is damaged")


def _bad_mat5_type(buf, order):
    """The first type code in the MAT v5 elements of ``buf`` (nested variables included) that is
    neither a data type nor, where one may be (at the top and inside cells, structs and objects), a
    variable; None when there is none."""
    ranges = [(0, len(buf), True)]  # (start, end, whether variables may be nested there)
    while ranges:
        pos, end, containers = ranges.pop()
        while pos + 8 <= end:
            kind, size = struct.unpack_from(order + "II", buf, pos)
            if kind >> 16:  # a small element: its size in the high 16 bits, its data in the tag's 8 bytes
                kind, step = kind & 0xFFFF, 8
            else:
                step = 8 + size + (0 if kind == _MAT5_MATRIX else -size % 8)
            if kind == _MAT5_MATRIX and containers:
                start = pos + 8
                # The array flags come first; the low byte of their first word is the MATLAB class.
                cls = struct.unpack_from(order + "I", buf, start + 8)[0] & 0xFF if start + 12 <= end else 0
                ranges.append((start, min(start + size, end), cls in _MAT5_CONTAINER_CLASSES))
            elif kind not in _MAT5_DATA_TYPES:
                return kind
            pos += step
    return None


def _is_matlab_hdf5(path):
    """True if MATLAB wrote this HDF5 file: MATLAB puts its MAT-file header text in the 512-byte
    userblock in front of the HDF5 data (h5py and other HDF5 writers do not)."""
    with open(path, "rb") as f:
        return f.read(len(MATLAB_V73_HEADER)) == MATLAB_V73_HEADER


# ----------------------------------------------------------------------------- MAT / HDF5 containers

class _Container:
    """The variables of a MAT (v5) or HDF5 file, listed without reading them, and read one by one.

    HDF5 datasets are transposed only when MATLAB wrote the file (``matlab``): MATLAB stores arrays
    column-major, so HDF5 sees the axes reversed; h5py/numpy files are already in C order.
    """

    def __init__(self, path, what):
        import h5py
        self.path, self.what = path, what
        self.hdf5 = h5py.is_hdf5(path)
        self.matlab = self.hdf5 and _is_matlab_hdf5(path)
        self.fmt = ("mat73" if self.matlab else "hdf5") if self.hdf5 else "mat"
        self.variables = self._guard(self._list)

    def _guard(self, action, *args):
        try:
            return action(*args)
        except Exception as exc:
            if self.fmt == "mat" and self.what == "mat":
                kind, fix = "MATLAB file", "save it with MATLAB's save (v5/v7 or -v7.3) or as .npy"
            else:
                kind = "MATLAB v7.3 (HDF5) file" if self.matlab else "HDF5 file"
                fix = "the file may be truncated or damaged: copy or save it again"
            raise DataError(f"{self.path}: not a readable {kind} ({type(exc).__name__}: {exc}); {fix}") from exc

    def _list(self):
        if not self.hdf5:
            if self.what == "hdf5":
                raise ValueError("no HDF5 signature")
            import scipy.io
            _check_mat5_elements(self.path)
            return {name: _Variable(name, tuple(shape), cls, cls in _MATLAB_NUMERIC)
                    for name, shape, cls in scipy.io.whosmat(self.path)}
        import h5py
        found = {}

        def visit(name, obj):
            # MATLAB keeps cell contents and class data under '#refs#' / '#subsystem#': not variables.
            if isinstance(obj, h5py.Dataset) and not name.startswith("#"):
                cls = _matlab_class(obj)
                empty = bool(obj.attrs.get("MATLAB_empty", 0))
                shape = (0,) if empty else (obj.shape[::-1] if self.matlab else obj.shape)
                numeric = (obj.dtype.kind in "iuf" and not empty
                           and (cls is None or cls in _MATLAB_NUMERIC))
                found[name] = _Variable(name, tuple(shape), cls or obj.dtype.name, numeric)

        with h5py.File(self.path, "r") as f:
            f.visititems(visit)
        return found

    def read(self, name):
        return self._guard(self._read, name)

    def read_all(self):
        if not self.hdf5:
            import scipy.io
            return self._guard(lambda: {k: v for k, v in scipy.io.loadmat(self.path).items()
                                        if not k.startswith("__")})
        return self._guard(lambda: {name: self._read(name) for name in self.variables})

    def _read(self, name):
        if not self.hdf5:
            import scipy.io
            return scipy.io.loadmat(self.path, variable_names=[name])[name]
        import h5py
        with h5py.File(self.path, "r") as f:
            dset = f[name]
            if dset.attrs.get("MATLAB_empty", 0):
                return np.empty((0,))
            values = np.asarray(dset[()])
            if self.matlab:
                values = values.T
                if _matlab_class(dset) == "char":
                    # MATLAB chars are UTF-16 code units, one string per row.
                    values = np.array(["".join(map(chr, row)) for row in np.atleast_2d(values)])
            return values


def _matlab_class(dset):
    cls = dset.attrs.get("MATLAB_class")
    return cls.decode() if isinstance(cls, bytes) else cls


def _choose_variable(container, key, role, key_option, allow_2d):
    """The name of the variable holding the image (rules in ``read_image``)."""
    path, variables = container.path, container.variables
    if key is not None:
        if key not in variables:
            raise DataError(f"{path}: no variable {key!r} (given with {key_option}); the file has: "
                              f"{_describe_all(variables.values())}")
        return key
    ref = variables.get(UPSTREAM_CUBE_KEY)
    if ref is not None and len(ref.shape) == 3:
        return UPSTREAM_CUBE_KEY
    candidates = sorted(v.name for v in variables.values() if v.numeric and 0 not in v.shape and (
        len(v.shape) == 3 or (allow_2d and len(v.shape) == 2 and min(v.shape) > 1)))
    dims = "2-D or 3-D" if allow_2d else "3-D"
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise DataError(f"{path}: no {dims} numeric array (the {role}) found; variables: "
                          f"{_describe_all(variables.values())}; save the {role} as an H x W x C array")
    raise DataError(f"{path}: several {dims} arrays ({', '.join(map(repr, candidates))}), cannot tell which "
                      f"is the {role}; pass {key_option} NAME to choose one (variables: "
                      f"{_describe_all(variables.values())})")


def read_mat_arrays(path):
    """Every variable of a MATLAB file (v5/v7 or v7.3) or every dataset of an HDF5 file.

    Returns {name: ndarray}; nested HDF5 datasets are named by their path ('group/data'). Arrays of
    a v7.3 file that MATLAB wrote (recognised by the "MATLAB 7.3 MAT-file" text at the start of its
    512-byte userblock) are transposed back to MATLAB's axis order; datasets of an HDF5 file written
    by h5py/numpy are returned in stored (C) order. MATLAB char arrays become numpy strings.
    Raises DataError for a missing or unreadable file.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError(f"{path}: file not found")
    return _Container(path, "hdf5" if path.lower().endswith((".h5", ".hdf5")) else "mat").read_all()


# ----------------------------------------------------------------------------- the image readers

def read_image(path, key=None, role="image", key_option="--key", allow_2d=False, dtype=np.float64):
    """Read an image file into an ``Image`` whose data is a C-contiguous H x W x C array (rows, columns,
    bands) of ``dtype`` (np.float64 or np.float32; see the module docstring for what float32 rounds),
    writable and owned by the caller (never a view of the file).

    Delivered products (``imagery.products``) come first, with their metadata applied (physical values,
    NaN where there is no data): a Sentinel-2 L2A ``.SAFE`` folder (its 10 m bands, or its 20 m ones with
    ``key`` "20m"), a PRISMA L2D ``.he5`` file (its
    panchromatic image for the ``role`` "HR-MSI", else its hyperspectral one), an EMIT L2A ``.nc`` file;
    an EnMAP L2A ``-SPECTRAL_IMAGE.TIF`` is read as a GeoTIFF and its ``-METADATA.XML`` applied.

    Formats, by extension:
      - ``.mat``: MATLAB v5/v7 (scipy.io) or v7.3 (HDF5, h5py); ``.h5``/``.hdf5``: HDF5.
        HDF5 axes are transposed back only for files MATLAB wrote (the userblock starts with the text
        "MATLAB 7.3 MAT-file"; fmt 'mat73'): MATLAB stores column-major, so HDF5 sees its H x W x C
        as C x W x H. HDF5 files written by h5py/numpy, whatever their extension, are read in stored
        (C) order (fmt 'hdf5').
        The variable is ``key`` if given; else 'REF' (the upstream name) if it is 3-D; else the only
        numeric 3-D array (with ``allow_2d`` also 2-D arrays with both sides > 1; 1 x N and N x 1
        vectors never count). A numeric vector 'wavelengths' (or 'wavelength') beside it (in the
        same HDF5 group), one value per band, gives the band centres in nm, and 'fwhm' the FWHM in nm
        (``_mat_wavelengths``).
      - ``.npy``: an H x W x C array.
      - ENVI: a ``.hdr``, or a data file (.img/.dat/.raw/.bsq/.bil/.bip or no extension) next to its
        .hdr; read with ``spectral``. ``wavelength``/``fwhm`` (converted to nm from the declared
        ``wavelength units``), ``data ignore value`` (nodata) and ``band names`` are kept.
      - GeoTIFF (``.tif``/``.tiff``), read with rasterio: all bands, CRS, transform, nodata, band
        descriptions (band_names) and, when present, wavelengths from per-band tags ``wavelength``,
        ``fwhm``, ``wavelength_units`` (as ``writers.write_geotiff`` writes them), or GDAL's ENVI
        metadata domain (``wavelength = {...}``), or the IMAGERY domain (``CENTRAL_WAVELENGTH_UM``).

    A 2-D (H x W) array is accepted only with ``allow_2d`` (a single-band pan image) and becomes
    H x W x 1. ``role`` names the image in messages ("LR-HSI", "HR-MSI", "reference cube");
    ``key_option`` is the command-line option that selects a variable, suggested when the choice
    is ambiguous.

    Raises DataError (naming the file) when the file is missing (or a folder), of an unknown format,
    unreadable (truncated, damaged, not what its extension says; an ENVI header with a field spectral
    would misread), when the variable cannot be chosen (or ``key`` is given for a format without
    variables), when the array is empty, not numeric or not 3-D (2-D with allow_2d), and when the
    band centres or FWHM the file declares are not one valid value per band.
    """
    path = os.fspath(path)
    product = read_product(path, role, dtype, key)
    if product is not None:
        product.data = _as_cube(product.data, path, role, allow_2d, dtype)
        return product
    if os.path.isdir(path):
        raise DataError(f"{path}: the {role} path is a folder, not a file; give the image file (for ENVI, its .hdr)")
    if not os.path.isfile(path):
        raise DataError(f"{path}: {role} file not found")
    fmt, header = _format_of(path)
    if fmt in ("mat", "hdf5"):
        container = _Container(path, fmt)
        name = _choose_variable(container, key, role, key_option, allow_2d)
        image = Image(container.read(name), path, container.fmt, "")
    elif key is not None:
        raise DataError(f"{path}: {key_option} {key} names a variable of a .mat/.h5 file, but this {fmt} file "
                          f"holds one image; drop {key_option}")
    elif fmt == "npy":
        image = _read_npy(path)
    elif fmt == "envi":
        image = _read_envi(path, header)
    else:
        image = _read_geotiff(path, dtype)
    image.dtype = image.dtype or np.asarray(image.data).dtype.name
    image.data = _as_cube(image.data, path, role, allow_2d, dtype)
    if fmt in ("mat", "hdf5"):
        image.wavelengths, image.fwhm = _mat_wavelengths(container, name, image.data.shape, role)
    return image


def _mat_wavelengths(container, name, shape, role):
    """The band centres and FWHM (float64 vectors of C values, nm) that a MAT/HDF5 file keeps beside
    its image variable ``name`` (in the same HDF5 group), the image being H x W x C (``shape``): the
    variable of MAT_WAVELENGTH_KEYS found first, and MAT_FWHM_KEY; (None, None) when the file has no
    such variable. Values are taken as nm, as ``check_wavelength_units`` checks them (micrometres
    refused with a message). Raises DataError naming the file when one is not a numeric vector of C
    values, and as ``check_wavelength_units`` and ``_check_fwhm``."""
    group = name.rpartition("/")[0]
    prefix = group + "/" if group else ""
    found = [prefix + key for key in MAT_WAVELENGTH_KEYS if prefix + key in container.variables]
    if not found:
        return None, None
    centres = _mat_vector(container, found[0], name, shape, role, "band centre")
    fwhm = prefix + MAT_FWHM_KEY
    fwhm = _mat_vector(container, fwhm, name, shape, role, "FWHM") if fwhm in container.variables else None
    return _declared_wavelengths(container.path, centres, fwhm, "", shape[2])


def _mat_vector(container, vector, name, shape, role, what):
    """The variable ``vector`` of ``container`` as a float64 vector of C values, one ``what`` (nm) per
    band of the H x W x C (``shape``) image variable ``name``; DataError when it is something else."""
    variable, bands = container.variables[vector], shape[2]
    count = int(np.prod(variable.shape, dtype=np.int64))
    if not variable.numeric or count == 0 or sum(side > 1 for side in variable.shape) > 1:
        raise DataError(f"{container.path}: {variable.describe()} is not a numeric vector; store one {what} "
                        f"(nm) per band of the {role} {name!r} as a 1 x {bands} vector, or rename the variable")
    if count != bands:
        hint = ""
        if count == shape[0]:
            hint = (f". Note: {name!r} was read as {' x '.join(map(str, shape))} (H x W x C) and its first axis has "
                    f"{count}: the image looks channels-first (saved bands-first by numpy or h5py); store it "
                    "bands-last, H x W x C (numpy: np.moveaxis(a, 0, -1))")
        raise DataError(f"{container.path}: {vector!r} holds {count} values but the {role} {name!r} has {bands} "
                        f"bands; store one {what} (nm) per band, in band order, or rename the variable{hint}")
    return np.asarray(container.read(vector), dtype=np.float64).ravel()


def _as_cube(data, path, role, allow_2d, dtype):
    """Check the array and return it as a C-contiguous H x W x C array of ``dtype`` that the caller
    owns: a read-only array (a file's memory map) is copied, anything else converted at most once."""
    data = np.asarray(data)
    if data.dtype.kind not in "iuf":
        raise DataError(f"{path}: the {role} is not a real numeric array (dtype {data.dtype}); store "
                          "integer or floating-point values")
    if data.size == 0:
        raise DataError(f"{path}: the {role} is empty (shape {data.shape})")
    if data.ndim == 2 and allow_2d and min(data.shape) > 1:
        data = data[:, :, None]
    if data.ndim != 3:
        accepted = "an H x W x C or H x W array" if allow_2d else "an H x W x C array"
        hint = "" if allow_2d or data.ndim != 2 else " (save a single-band image as H x W x 1)"
        raise DataError(f"{path}: expected {accepted} (rows x columns x bands) for the {role}, got shape "
                          f"{data.shape}{hint}")
    # A float32 signalling NaN stays NaN and a float64 beyond float32's range becomes Inf:
    # invalid_values finds both.
    with np.errstate(invalid="ignore", over="ignore"):
        if not data.flags.writeable:
            return np.array(data, dtype=dtype, order="C")
        return np.ascontiguousarray(data, dtype=dtype)


def _read_npy(path):
    try:
        data = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise DataError(f"{path}: not a readable .npy file ({type(exc).__name__}: {exc}); save the array "
                          "with numpy.save (numeric, no Python objects)") from exc
    return Image(data, path, "npy", "")


def _read_envi(path, header):
    import spectral.io.envi as envi
    data_file = None if path == header else path
    _check_envi_header(header)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # spectral warns about upper-case header keys it lower-cases
            img = envi.open(header, data_file)
    except Exception as exc:
        raise DataError(f"{header}: not a readable ENVI header or its data file is missing "
                          f"({type(exc).__name__}: {exc}); keep the .hdr next to its data file "
                          "(same name, extension .img/.dat/.raw or none)") from exc
    expected = img.offset + img.nrows * img.ncols * img.nbands * np.dtype(img.dtype).itemsize
    actual = os.path.getsize(img.filename)
    if actual < expected:
        raise DataError(f"{img.filename}: the ENVI data file has {actual} bytes but its header "
                          f"({header}) describes {expected}: the file is truncated, copy it again")
    try:
        # Read-only map of the file: _as_cube converts it in one pass, with no copy in the stored type.
        data = img.open_memmap(interleave="bip")
    except Exception as exc:
        raise DataError(f"{img.filename}: could not read the ENVI data ({type(exc).__name__}: {exc})") from exc
    meta = img.metadata
    image = Image(data, path, "envi", "")
    units = str(meta.get("wavelength units", "")).strip()
    if "wavelength" in meta:
        image.wavelengths, image.fwhm = _declared_wavelengths(
            header, _floats(meta["wavelength"], header, "wavelength"),
            _floats(meta["fwhm"], header, "fwhm") if "fwhm" in meta else None, units, data.shape[2])
    if "data ignore value" in meta:
        image.nodata = _floats([meta["data ignore value"]], header, "data ignore value")[0]
    if "band names" in meta:
        image.band_names = [str(n) for n in meta["band names"]]
    if "map info" in meta:
        image.crs, image.transform = _envi_georeference(header, meta)
    return image


def _envi_georeference(header, meta):
    """(CRS or None, affine.Affine) of an ENVI header's ``map info`` (tie point: 1-based pixel x, y and its
    easting, northing; pixel sizes) and ``coordinate system string`` (WKT), else of a UTM map info's zone
    and hemisphere (WGS-84). Raises DataError for a map info that cannot be read."""
    from affine import Affine
    from rasterio.crs import CRS

    info = meta["map info"]
    info = [v.strip() for v in (info if isinstance(info, list) else str(info).strip("{}").split(","))]
    try:
        ref_x, ref_y, east, north, px, py = (float(v) for v in info[1:7])
    except (ValueError, IndexError):
        raise DataError(f"{header}: the map info {{{', '.join(info)}}} cannot be read: it needs the projection, "
                        "the reference pixel, its easting and northing and the pixel sizes") from None
    transform = Affine(px, 0.0, east - (ref_x - 1) * px, 0.0, -py, north + (ref_y - 1) * py)
    crs = None
    wkt = meta.get("coordinate system string")
    if wkt:
        crs = CRS.from_wkt(wkt if isinstance(wkt, str) else ",".join(wkt))  # spectral splits it at commas
    elif info[0].upper() == "UTM" and len(info) >= 9:
        crs = CRS.from_epsg((32600 if info[8].lower().startswith("n") else 32700) + int(float(info[7])))
    return crs, transform


def _check_envi_header(header):
    """DataError unless ``header`` is an ENVI header that spectral reads as it declares: text in the
    locale's encoding (on other bytes spectral fails with the file left open); positive whole samples,
    lines and bands, a known data type, a header offset >= 0; byte order 0 or 1 (spectral takes any
    other value for the machine's opposite); interleave bsq, bil or bip (spectral reads any other
    spelling but 'BIL' and 'BIP' as bsq, which scrambles the bands)."""
    import spectral.io.envi as envi
    encoding = locale.getpreferredencoding(False)
    try:
        with open(header, "rb") as f:
            f.read().decode(encoding)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # spectral warns about upper-case header keys it lower-cases
            meta = envi.read_envi_header(header)
    except UnicodeDecodeError as exc:
        raise DataError(f"{header}: not an ENVI header in {encoding} text (byte {exc.object[exc.start]:#04x} at "
                          f"position {exc.start}); save the header as plain ASCII or {encoding} text") from None
    except Exception as exc:
        raise DataError(f"{header}: not a readable ENVI header ({type(exc).__name__}: {exc}); an ENVI header is "
                          "a text file whose first line is ENVI, then one 'field = value' per line") from exc
    value = {k: str(meta[k]).strip() if k in meta else "(missing)" for k in
             ("samples", "lines", "bands", "data type", "byte order", "interleave", "header offset")}
    problems = [f"{k} = {value[k]} (a positive whole number)" for k in ("samples", "lines", "bands")
                if not (value[k].isdigit() and int(value[k]) > 0)]
    if value["data type"] not in envi.envi_to_dtype:
        problems.append(f"data type = {value['data type']} (one of {', '.join(sorted(envi.envi_to_dtype, key=int))})")
    if "header offset" in meta and not value["header offset"].isdigit():
        problems.append(f"header offset = {value['header offset']} (a whole number of bytes, 0 or more)")
    if value["byte order"] not in ("0", "1"):
        problems.append(f"byte order = {value['byte order']} (0: little-endian, 1: big-endian)")
    interleave = value["interleave"]
    if interleave.lower() not in ("bsq", "bil", "bip"):
        problems.append(f"interleave = {interleave} (bsq, bil or bip)")
    elif interleave.lower() != "bsq" and interleave not in ("bil", "BIL", "bip", "BIP"):
        problems.append(f"interleave = {interleave} (write it in lower case, {interleave.lower()}: spectral "
                        "reads this spelling as bsq)")
    if problems:
        raise DataError(f"{header}: invalid ENVI header field(s): {'; '.join(problems)}")


def _floats(values, source, field):
    try:
        return np.array([float(v) for v in values], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{source}: the {field} field is not a list of numbers ({exc})") from exc


def _declared_wavelengths(source, centres, fwhm, units, bands):
    """Band centres and FWHM in nm from values in the declared ``units`` (None, None when the units
    say the values are band numbers)."""
    unit = units.lower()
    if unit in _UNITS_WITHOUT_WAVELENGTH:
        return None, None
    if unit not in _UNITS_UNDECLARED and unit not in _UNIT_TO_NM:
        raise DataError(f"{source}: wavelength units {units!r} are not supported; give the band centres "
                          "in nanometres or micrometres")
    if centres.size != bands or (fwhm is not None and fwhm.size != bands):
        raise DataError(f"{source}: {centres.size} wavelengths"
                          f"{'' if fwhm is None else f' and {fwhm.size} FWHM values'} for {bands} bands; "
                          "give one per band")
    scale = _UNIT_TO_NM.get(unit, 1.0)
    centres = check_wavelength_units(centres * scale, source)
    return centres, None if fwhm is None else _check_fwhm(fwhm * scale, source)


def _check_fwhm(fwhm, source):
    if not np.all(np.isfinite(fwhm) & (fwhm > 0)):
        i = int(np.flatnonzero(~(np.isfinite(fwhm) & (fwhm > 0)))[0])
        raise DataError(f"{source}: FWHM of band {i} is {fwhm[i]:g}; every FWHM must be a positive number (nm)")
    return fwhm


def _read_geotiff(path, dtype):
    import rasterio
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # rasterio warns when a TIFF carries no georeferencing
            with rasterio.open(path) as ds:
                image = Image(_geotiff_pixels(ds, dtype), path, "geotiff", ds.dtypes[0], nodata=ds.nodata,
                              crs=ds.crs, transform=ds.transform)
                if any(ds.descriptions):
                    image.band_names = [d or "" for d in ds.descriptions]
                band_tags = [{k.lower(): v for k, v in ds.tags(b).items()} for b in ds.indexes]
                envi_tags = {k.lower(): v for k, v in ds.tags(ns="ENVI").items()}
                imagery_tags = [ds.tags(b, ns="IMAGERY") for b in ds.indexes]
                dataset_units = {k.lower(): v for k, v in ds.tags().items()}.get("wavelength_units", "")
    except Exception as exc:
        raise DataError(f"{path}: not a readable GeoTIFF ({type(exc).__name__}: {exc}); the file may be "
                          "truncated or not a TIFF: copy or export it again") from exc
    image.wavelengths, image.fwhm = _geotiff_wavelengths(path, band_tags, envi_tags, imagery_tags, dataset_units)
    if image.wavelengths is None and image.band_names:
        image.wavelengths = _wavelengths_in_names(path, image.band_names)
    metadata = enmap_metadata_for(path)
    if metadata is not None:
        bad = apply_enmap_metadata(image, metadata)
        image.wavelengths = check_wavelength_units(image.wavelengths, metadata)
        log.info("%s: an EnMAP spectral image: band centres, FWHM and gains/offsets from %s; bad bands %s set to "
                 "no data", path, metadata, ", ".join(map(str, bad)) or "none")
    return image


def _geotiff_pixels(ds, dtype):
    """The pixels of the open rasterio dataset ``ds`` as H x W x C: real numbers are read straight
    into an array of ``dtype``, window by window (whole blocks of the file, about BLOCK_VALUES values
    each, so each compressed block is decoded once and the stored type is only held for one window);
    other types (complex) come back as stored, for ``_as_cube`` to refuse."""
    import rasterio
    from rasterio.windows import Window
    if np.dtype(ds.dtypes[0]).kind not in "iuf":
        return ds.read().transpose(1, 2, 0)
    block_rows, block_cols = ds.block_shapes[0]
    width = min(ds.width, block_cols * max(1, blocks.BLOCK_VALUES // (block_rows * block_cols * ds.count)))
    height = block_rows * max(1, blocks.BLOCK_VALUES // (block_rows * width * ds.count))
    window_mb = height * width * ds.count * np.dtype(ds.dtypes[0]).itemsize / 2 ** 20
    data = np.empty((ds.height, ds.width, ds.count), dtype=dtype)
    # as in _as_cube, out-of-range values become Inf
    with rasterio.Env(GDAL_CACHEMAX=max(GEOTIFF_CACHE_MB, math.ceil(2 * window_mb))), \
            np.errstate(invalid="ignore", over="ignore"):
        for top in range(0, ds.height, height):
            for left in range(0, ds.width, width):
                window = Window(left, top, min(width, ds.width - left), min(height, ds.height - top))
                data[top:top + window.height, left:left + window.width] = ds.read(window=window).transpose(1, 2, 0)
    return data


def _geotiff_wavelengths(path, band_tags, envi_tags, imagery_tags, dataset_units):
    bands = len(band_tags)
    tagged = [t for t in band_tags if "wavelength" in t]
    if tagged:
        if len(tagged) != bands:
            missing = [b + 1 for b, t in enumerate(band_tags) if "wavelength" not in t]
            raise DataError(f"{path}: bands {missing} (1-based) have no wavelength tag while the others do; "
                              "tag every band or none")
        units = {t.get("wavelength_units", dataset_units) for t in band_tags}
        if len(units) > 1:
            raise DataError(f"{path}: the bands declare different wavelength units {sorted(units)}; use one unit")
        centres = _floats([t["wavelength"] for t in band_tags], path, "wavelength tag")
        has_fwhm = all("fwhm" in t for t in band_tags)
        fwhm = _floats([t["fwhm"] for t in band_tags], path, "fwhm tag") if has_fwhm else None
        return _declared_wavelengths(path, centres, fwhm, units.pop(), bands)
    if "wavelength" in envi_tags:
        centres = _floats(_envi_list(envi_tags["wavelength"]), path, "ENVI wavelength")
        fwhm = _floats(_envi_list(envi_tags["fwhm"]), path, "ENVI fwhm") if "fwhm" in envi_tags else None
        return _declared_wavelengths(path, centres, fwhm, envi_tags.get("wavelength_units", ""), bands)
    if all("CENTRAL_WAVELENGTH_UM" in t for t in imagery_tags):
        centres = _floats([t["CENTRAL_WAVELENGTH_UM"] for t in imagery_tags], path, "CENTRAL_WAVELENGTH_UM")
        has_fwhm = all("FWHM_UM" in t for t in imagery_tags)
        fwhm = _floats([t["FWHM_UM"] for t in imagery_tags], path, "FWHM_UM") if has_fwhm else None
        return _declared_wavelengths(path, centres, fwhm, "um", bands)
    return None, None


# A band centre written in a band's name or description: "420.0 nm", "Band 12 (0.865 um)", "B8A 865nm".
_LENGTH_UNITS = "|".join(sorted(_UNIT_TO_NM, key=len, reverse=True))
_CENTRE_IN_NAME = re.compile(r"(\d+(?:\.\d+)?)\s*(" + _LENGTH_UNITS + r")(?![a-z])", re.IGNORECASE)


def _wavelengths_in_names(path, names):
    """Band centres in nm read from the band names (GDAL band descriptions) when every band's name holds
    one number with a length unit, as ``_CENTRE_IN_NAME`` matches; else None."""
    matches = [_CENTRE_IN_NAME.findall(name or "") for name in names]
    if not all(len(found) == 1 for found in matches):
        return None
    centres = np.array([float(value) * _UNIT_TO_NM[unit.lower()] for ((value, unit),) in matches])
    return check_wavelength_units(centres, f"{path} (band descriptions)")


def _envi_list(text):
    return [v for v in text.strip().strip("{}").split(",") if v.strip()]


# ----------------------------------------------------------------------------- values and wavelengths

def invalid_values(data, nodata=None):
    """Boolean mask, same shape as ``data`` (H x W x C), True where a value is NaN or Inf, has
    magnitude above FILL_MAGNITUDE (fill values such as the float32 -3.4e38), or equals ``nodata``.

    A float32 file stores ``nodata`` rounded to float32, so values equal to that rounding count too.
    """
    data = np.asarray(data)
    bad = ~np.isfinite(data)
    bad |= np.abs(data) > FILL_MAGNITUDE
    if nodata is not None and not np.isnan(nodata):
        with np.errstate(over="ignore"):  # a nodata beyond float32's range rounds to Inf, flagged above
            bad |= (data == nodata) | (data == np.float32(nodata))
    return bad


def check_wavelength_units(wavelengths, source):
    """Check band centres in nm and return them as a float64 vector (C).

    They must be finite and strictly increasing. A maximum below 30 means micrometres (no sensor
    band centre lies below 300 nm or above 15 um), refused with a message asking for nm; readers of
    files that declare micrometres convert before calling this.
    ``source`` (a file name, usually) starts every message. Raises DataError.
    """
    wl = np.asarray(wavelengths, dtype=np.float64).ravel()
    if wl.size == 0:
        raise DataError(f"{source}: no wavelengths given")
    finite = np.isfinite(wl)
    if not finite.all():
        i = int(np.flatnonzero(~finite)[0])
        raise DataError(f"{source}: wavelength of band {i} is {wl[i]}; every band centre must be a finite "
                          "number in nm")
    steps = np.diff(wl)
    if np.any(steps <= 0):
        i = int(np.flatnonzero(steps <= 0)[0]) + 1
        raise DataError(f"{source}: band centres must increase strictly, but band {i} ({wl[i]:g}) is not above "
                          f"band {i - 1} ({wl[i - 1]:g}); list one centre per band in the image's band order")
    if wl.max() < MICROMETRE_LIMIT:
        raise DataError(f"{source}: band centres up to {wl.max():g} only: that looks like micrometres; give "
                          "nanometres (multiply by 1000)")
    return wl


def read_wavelengths(path, bands):
    """Read the band centres (and optional FWHM) of a ``bands``-band image: the ``--hsi_wavelengths``
    file. Returns (centres, fwhm or None), float64 vectors of length ``bands`` in nm.

    Formats: a text (.csv, .txt) or Excel (.xls, .xlsx: first sheet) table read by
    ``imagery.tables.read_cells`` (``,`` ``;`` tab or blank separated, decimal commas with ``;`` or
    tab, '#' lines skipped) with one band per line, the centre (nm) and an optional second column
    FWHM (nm); one line of ``bands`` values is also accepted; a first line of text (a header) is
    skipped and empty cells are ignored. ``.npy``: a vector or a ``bands`` x 2 table. ``.mat``: the
    only such numeric array, or the only one of ``bands`` rows.
    Raises DataError naming the file when it cannot be read, when the count differs from ``bands``
    (both counts given), when FWHM are not positive, and as ``check_wavelength_units``.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError(f"{path}: wavelength file not found")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npy":
        table = _read_npy(path).data
    elif ext in (".mat", ".h5", ".hdf5"):
        table = _wavelength_array(path, read_mat_arrays(path), bands)
    else:
        table = _read_wavelength_cells(path)
    array = np.asarray(table)
    if array.dtype.kind not in "iuf":
        raise DataError(f"{path}: the wavelengths are not numbers (dtype {array.dtype})")
    table = _as_wavelength_table(array)
    if table is None:
        raise DataError(f"{path}: expected one band centre per band (a vector, or a column of centres and a "
                          f"column of FWHM), got an array of shape {array.shape}")
    if table.shape[0] != bands:
        raise DataError(f"{path}: {table.shape[0]} wavelengths for an image of {bands} bands; give one "
                          "centre (nm) per band")
    centres = check_wavelength_units(table[:, 0], path)
    fwhm = _check_fwhm(table[:, 1].astype(np.float64), path) if table.shape[1] == 2 else None
    return centres, fwhm


def _as_wavelength_table(array):
    """N x 1 (centres) or N x 2 (centres, FWHM) from a vector, a row/column or a 2-column table
    (a 2-row MATLAB table is transposed); None for anything else."""
    array = np.asarray(array, dtype=np.float64)
    if array.ndim == 2 and 1 in array.shape:
        array = array.ravel()
    if array.ndim == 1:
        return array[:, None]
    if array.ndim == 2 and array.shape[1] == 2:
        return array
    if array.ndim == 2 and array.shape[0] == 2:
        return array.T
    return None


def _wavelength_array(path, arrays, bands):
    tables = {k: v for k, v in arrays.items()
              if np.asarray(v).dtype.kind in "iuf" and np.size(v) and _as_wavelength_table(v) is not None}
    if len(tables) > 1:
        tables = {k: v for k, v in tables.items() if _as_wavelength_table(v).shape[0] == bands} or tables
    if len(tables) == 1:
        return next(iter(tables.values()))
    shapes = ", ".join(f"{k!r} {np.shape(v)}" for k, v in sorted(arrays.items()))
    if not tables:
        raise DataError(f"{path}: no vector of band centres (or centres and FWHM table) found; variables: "
                          f"{shapes}")
    raise DataError(f"{path}: several arrays could be the wavelengths ({', '.join(map(repr, sorted(tables)))}); "
                      "keep only the band centres (and FWHM) in the file")


def _read_wavelength_cells(path):
    """The numbers of a text or spreadsheet list of band centres (``read_wavelengths``' rules): a vector
    when it holds one row, else one row per band. Empty cells are dropped; the widths are checked here,
    so that a ragged file says what a band line holds."""
    cells = read_cells(path, "list of band centres", same_width=False)
    first = 0 if cells.header() is None else 1
    text = cells.find(lambda v: isinstance(v, str), first)
    if text is not None:
        i, j = text
        raise DataError(f"{path}: {cells.where_row(i)} is not numeric ({cells.where(i, j)} holds "
                        f"{cells.rows[i][j]!r}); give one band per line: centre in nm, optionally FWHM in nm")
    rows = [[v for v in row if v is not None] for row in cells.rows[first:]]
    if not rows:
        raise DataError(f"{path}: no numbers found; give one band per line: centre in nm, optionally FWHM in nm")
    if len(rows) == 1:
        return np.array(rows[0])
    widths = sorted({len(r) for r in rows})
    if len(widths) > 1 or widths[0] > 2:
        raise DataError(f"{path}: expected one or two columns on every line (centre nm, optional FWHM nm), "
                        f"got {widths} columns")
    return np.array(rows)
