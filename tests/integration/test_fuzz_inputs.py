"""Fuzz-style tests of the input layer: malformed files of every kind a user may bring.

Every entry point that reads a user's file (``imagery.readers.read_image``, ``data_loader.load_cube``,
``imagery.spectral_response.load_srf`` + ``srf_for_hsi`` + ``validate_srf``,
``imagery.readers.read_wavelengths``, ``imagery.sensors.read_band_ranges``, and end to end
``data_loader.Dataset`` / ``data_loader.load_real_pair``) must answer each case with a DataError
whose message contains the file's path, or read it with the right shape (and values): never another
exception, a warning that escapes (``-W error`` would turn it into a crash), or a hang.

Cases are generated from seeded numpy RNGs (deterministic) at collection time and parametrised with
ids that name them (format, dtype, shape, mutation), so a failure names its case.
"""
import contextlib
import os
import re
import signal
import struct
import threading
import warnings
import zlib

import h5py
import numpy as np
import pytest
import rasterio
import scipy.io
import spectral.io.envi as envi
from affine import Affine

import data_loader as dl
from config import get_args
from imagery.errors import DataError
from imagery.readers import read_image, read_wavelengths
from imagery.sensors import read_band_ranges
from imagery.spectral_response import load_srf, srf_for_hsi, validate_srf

SEED = 20240611
CASE_SECONDS = 10  # far above any case's run time (milliseconds): only a hang reaches it
OK, ERROR, EITHER = "ok", "error", "either"
CRS = "EPSG:32616"
TRANSFORM = Affine(30.0, 0.0, 500000.0, 0.0, -30.0, 4200000.0)


# ----------------------------------------------------------------------------- the check every case makes

class Hang(BaseException):
    """A case ran past CASE_SECONDS. A BaseException, so the readers' ``except Exception`` guards
    cannot turn it into a DataError."""


@contextlib.contextmanager
def deadline(seconds=CASE_SECONDS):
    """Raise Hang in the block after ``seconds`` (POSIX main thread only; elsewhere no limit)."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise Hang(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def outcome(call, path, expected, shape=None, phrase=None):
    """Run ``call`` and check its answer; returns what it read (None after a DataError).

    A DataError must contain ``path`` and match ``phrase`` (a regex, when given), and is a failure
    when ``expected`` is OK. A result must have ``shape`` (np.shape; None: any) and is a failure when
    ``expected`` is ERROR. Any other exception propagates (the test fails with its type and
    traceback); any warning that escapes ``call`` fails the test.
    """
    error = result = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with deadline():
            try:
                result = call()
            except DataError as exc:
                error = str(exc)
    escaped = [f"{w.category.__name__}: {w.message}" for w in caught]
    assert not escaped, f"warnings escaped for {path}: {escaped}"
    if error is not None:
        assert expected != OK, f"valid input refused: {error}"
        assert str(path) in error, f"the message does not name {path}: {error}"
        if phrase is not None:
            assert re.search(phrase, error, re.DOTALL), f"expected {phrase!r} in: {error}"
        return None
    assert expected != ERROR, f"malformed input {path} accepted, read as shape {np.shape(result)}"
    assert shape is None or np.shape(result) == tuple(shape), \
        f"{path} read as shape {np.shape(result)}, expected {shape}"
    return result


def case_rng(*parts):
    """A generator seeded by SEED and the case's parameters, so each case draws its own values."""
    return np.random.default_rng([SEED, *(sum(map(ord, str(p))) for p in parts)])


def shape_id(shape):
    return "x".join(map(str, shape)) if shape else "scalar"


# ----------------------------------------------------------------------------- writers

def make_array(rng, shape, dtype):
    """Random values of ``shape`` and ``dtype`` ('str', 'object' and numpy dtype names)."""
    values = np.asarray(rng.random(shape) * 100)
    if dtype == "str":
        return values.astype(int).astype(str)
    if dtype == "object":
        mixed = np.empty(np.size(values), dtype=object)
        mixed[:] = [int(v) if i % 2 else f"v{i}" for i, v in enumerate(np.ravel(values))]
        return mixed.reshape(shape)
    if dtype == "bool":
        return values > 50
    if dtype.startswith("complex"):
        return (values + 1j * (100 - values)).astype(dtype)
    return values.astype(dtype)


def save_npy(path, array, name="REF"):
    np.save(path, array, allow_pickle=True)  # object arrays get pickled: the reader must refuse them


def save_mat5(path, array, name="REF"):
    scipy.io.savemat(path, {name: array})


def _h5_storable(array):
    """h5py stores no numpy unicode or Python objects: bytes and variable-length strings instead."""
    if array.dtype.kind == "U":
        return np.char.encode(array, "ascii"), None
    if array.dtype.kind == "O":
        return array.astype(str).astype(object), h5py.string_dtype()
    return array, None


def save_h5(path, array, name="REF"):
    data, dtype = _h5_storable(array)
    with h5py.File(path, "w") as f:
        f.create_dataset(name, data=data, dtype=dtype)


_MATLAB_CLASS = {"bool": "logical", "float64": "double", "float32": "single", "float16": "single",
                 "complex64": "single", "complex128": "double"}


def save_mat73(path, array, name="REF"):
    """As MATLAB -v7.3 writes: the MAT-file text in a 512-byte userblock, arrays stored column-major
    (HDF5 holds the transpose) with a MATLAB_class attribute; chars as UTF-16 code units."""
    data, dtype = _h5_storable(array)
    if array.dtype.kind == "U":
        data = np.vectorize(lambda s: ord(s[0]), otypes=[np.uint16])(array) if array.size else \
            np.zeros(array.shape, np.uint16)
    with h5py.File(path, "w", userblock_size=512) as f:
        dset = f.create_dataset(name, data=np.asarray(data).T, dtype=dtype)
        cls = {"U": "char", "O": "cell"}.get(array.dtype.kind, _MATLAB_CLASS.get(array.dtype.name, array.dtype.name))
        dset.attrs["MATLAB_class"] = np.bytes_(cls)
    with open(path, "r+b") as f:
        f.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, HDF5 schema 1.00 .".ljust(116) + b"\0" * 8 + b"\0\x02IM")


def save_tif(path, array, name=None, nodata=None, compress=None, tags=None):
    """An H x W x C array as a GeoTIFF (bands = C), optionally with per-band tags {band: {key: value}}."""
    options = {"compress": compress, "tiled": True, "blockxsize": 16, "blockysize": 16} if compress else {}
    with rasterio.open(path, "w", driver="GTiff", height=array.shape[0], width=array.shape[1],
                       count=array.shape[2], dtype=array.dtype.name, crs=CRS, transform=TRANSFORM,
                       nodata=nodata, **options) as ds:
        ds.write(np.moveaxis(array, 2, 0))
        for band, band_tags in (tags or {}).items():
            ds.update_tags(band, **band_tags)


def save_envi(path, array, name=None, metadata=None):
    """An array as ENVI: ``path`` is the .hdr, the data goes to the .img next to it."""
    envi.save_image(str(path), array, dtype=array.dtype, ext=".img", force=True, metadata=metadata or {})


ARRAY_WRITERS = {"npy": (".npy", save_npy), "mat5": (".mat", save_mat5), "mat73": (".mat", save_mat73),
                 "h5": (".h5", save_h5)}


# ----------------------------------------------------------------------------- arrays of every shape and dtype

ARRAY_DTYPES = ("bool", "int8", "uint16", "float16", "float64", "complex64", "object", "str")
EDGE_SHAPES = ((), (6,), (4, 5), (1, 5), (4, 5, 3), (1, 1, 1), (2, 3, 4, 5), (0, 5, 3), (4, 0, 3), (4, 5, 0))


def _draw(rng, shapes, keep, count):
    """``keep`` and ``count`` shapes drawn without replacement from the others: each (format, dtype)
    meets the readable shapes and a different sample of the edge cases."""
    others = [shape for shape in shapes if shape not in keep]
    return [*keep, *(others[i] for i in rng.choice(len(others), count, replace=False))]


def _random_shapes(rng, count):
    """Shapes of 0 to 4 axes, each 0 to 6 long (0 with probability 1/5)."""
    shapes = []
    for _ in range(count):
        sizes = rng.integers(1, 7, rng.integers(0, 5))
        sizes[rng.random(sizes.size) < 0.2] = 0
        shapes.append(tuple(int(s) for s in sizes))
    return shapes


def _array_cases():
    rng = np.random.default_rng(SEED)
    cases = []
    for fmt in ARRAY_WRITERS:
        for dtype in ARRAY_DTYPES:
            for shape in _draw(rng, (*EDGE_SHAPES, *_random_shapes(rng, 2)), [(4, 5, 3), (4, 5)], 4):
                name = "REF" if rng.random() < 0.5 else "data"
                cases.append(pytest.param(fmt, dtype, shape, name,
                                          id=f"{fmt}-{dtype}-{shape_id(shape)}-{name}"))
    return cases


def stored_shape(fmt, shape):
    """The shape a format keeps: MATLAB v5 has no arrays of fewer than 2 axes (scalar -> 1 x 1, vector -> 1 x N)."""
    if fmt == "mat5" and len(shape) < 2:
        return (1, 1) if not shape else (1, *shape)
    return tuple(shape)


def cube_shape(shape, allow_2d):
    """The H x W x C shape an image of stored ``shape`` is read as, or None when it must be refused."""
    if 0 in shape:
        return None
    if len(shape) == 3:
        return tuple(shape)
    if allow_2d and len(shape) == 2 and min(shape) > 1:
        return (*shape, 1)
    return None


def expected_image(array, fmt, allow_2d):
    """(OK / ERROR / EITHER, shape) for reading ``array`` stored as ``fmt``. A logical cube may be
    read as 0/1 or refused; other non-real dtypes (complex, text, objects) must be refused."""
    shape = cube_shape(stored_shape(fmt, array.shape), allow_2d)
    if shape is None or array.dtype.kind not in "iufb":
        return ERROR, None
    return (EITHER if array.dtype.kind == "b" else OK), shape


@pytest.mark.parametrize("fmt, dtype, shape, name", _array_cases())
def test_array_of_any_shape_and_dtype(tmp_path, fmt, dtype, shape, name):
    array = make_array(case_rng(fmt, dtype, shape, name), shape, dtype)
    ext, save = ARRAY_WRITERS[fmt]
    path = tmp_path / f"cube{ext}"
    save(path, array, name)
    for allow_2d in (False, True):
        expected, out = expected_image(array, fmt, allow_2d)
        data = outcome(lambda: read_image(str(path), role="LR-HSI", allow_2d=allow_2d).data, path, expected, out)
        if data is not None and array.dtype.kind != "b":
            np.testing.assert_array_equal(data, np.asarray(array, dtype=np.float64).reshape(out))
    expected, out = expected_image(array, fmt, False)
    outcome(lambda: dl.load_cube(str(path)), path, expected, out)


def _raster_cases():
    rng = np.random.default_rng(SEED + 1)
    cases = []
    dtypes = {"tif": ("uint8", "int8", "uint16", "int16", "float32", "float64", "complex64"),
              "envi": ("uint8", "int16", "uint16", "int32", "float32", "float64", "int64", "complex64")}
    for fmt, names in dtypes.items():
        for dtype in names:
            shapes = [(4, 5, 1), tuple(int(s) for s in rng.integers(1, 7, 3))]
            if fmt == "envi":
                shapes.append((4, 5))  # ENVI has no 2-D images: a single band
            for shape in shapes:
                cases.append(pytest.param(fmt, dtype, shape, id=f"{fmt}-{dtype}-{shape_id(shape)}"))
    return cases


@pytest.mark.parametrize("fmt, dtype, shape", _raster_cases())
def test_geotiff_and_envi_of_any_dtype(tmp_path, fmt, dtype, shape):
    array = make_array(case_rng(fmt, dtype, shape), shape, dtype)
    if fmt == "tif":
        path = tmp_path / "cube.tif"
        save_tif(path, array)
        paths = [path]
    else:
        path = tmp_path / "cube.hdr"
        save_envi(path, array)
        paths = [path, tmp_path / "cube.img"]  # the header or the data file
    out = array.shape if array.ndim == 3 else (*array.shape, 1)
    expected = ERROR if array.dtype.kind == "c" else OK
    for entry in paths:
        data = outcome(lambda: read_image(str(entry), role="HR-MSI").data, entry, expected, out,
                       phrase="not a real numeric array" if expected == ERROR else None)
        if data is not None:
            np.testing.assert_array_equal(data, array.astype(np.float64).reshape(out))


# ----------------------------------------------------------------------------- empty, truncated and foreign files

def _write_valid(kind, tmp_path):
    """A valid 6 x 5 x 4 float32 cube in ``kind``; returns (the file to cut, the file to read)."""
    cube = np.random.default_rng(SEED).random((6, 5, 4)).astype(np.float32)
    if kind.startswith("envi"):
        save_envi(tmp_path / "cube.hdr", cube, metadata={"wavelength": [450, 550, 650, 850]})
        cut = tmp_path / ("cube.img" if kind == "envi_img" else "cube.hdr")
        return cut, tmp_path / "cube.hdr"
    if kind.startswith("tif"):
        path = tmp_path / "cube.tif"
        save_tif(path, cube, compress="deflate" if kind == "tif_deflate" else None)
        return path, path
    ext, save = ARRAY_WRITERS[kind]
    path = tmp_path / f"cube{ext}"
    save(path, cube)
    return path, path


# Uncompressed TIFF strips and ENVI headers can lose their last bytes and still read correctly.
TRUNCATION_KINDS = {"npy": ERROR, "mat5": ERROR, "mat73": ERROR, "h5": ERROR, "tif": EITHER,
                    "tif_deflate": EITHER, "envi_img": ERROR, "envi_hdr": EITHER}
CUTS = ("empty", "1B", "10%", "50%", "90%", "last-1B",
        *(f"{f:.0%}" for f in np.random.default_rng(SEED + 2).random(2)))


def _cut_length(cut, size):
    if cut == "empty":
        return 0
    if cut == "1B":
        return 1
    if cut == "last-1B":
        return size - 1
    return int(size * float(cut.rstrip("%")) / 100)


@pytest.mark.parametrize("cut", CUTS)
@pytest.mark.parametrize("kind", TRUNCATION_KINDS)
def test_empty_and_truncated_files(tmp_path, kind, cut):
    cut_path, read_path = _write_valid(kind, tmp_path)
    raw = cut_path.read_bytes()
    cut_path.write_bytes(raw[:_cut_length(cut, len(raw))])
    # The data file is named when it is the damaged one; an ENVI header in the message of either.
    named = cut_path if kind != "envi_hdr" else read_path
    outcome(lambda: read_image(str(read_path)).data, named, TRUNCATION_KINDS[kind], (6, 5, 4))
    outcome(lambda: dl.load_cube(str(read_path)), named, TRUNCATION_KINDS[kind], (6, 5, 4))


FOREIGN_CONTENT = {
    "text": b"band,wavelength,value\n1,450,0.25\n2,550,0.5\n",
    "random": np.random.default_rng(SEED + 3).integers(0, 256, 700, dtype=np.uint8).tobytes(),
    "html": b"<!DOCTYPE html><html><body>404 Not Found</body></html>\n",
    "envi_like": b"ENVI\nsamples = 5\nlines = four\nbands = 2\ndata type = 99\n",
}
FOREIGN_NAMES = ("cube.mat", "cube.npy", "cube.tif", "cube.TIFF", "cube.hdr", "cube.h5", "cube.hdf5")


@pytest.mark.parametrize("name", FOREIGN_NAMES)
@pytest.mark.parametrize("content", FOREIGN_CONTENT)
def test_foreign_content_under_an_image_extension(tmp_path, content, name):
    path = tmp_path / name
    path.write_bytes(FOREIGN_CONTENT[content])
    for allow_2d in (False, True):
        outcome(lambda: read_image(str(path), role="LR-HSI", allow_2d=allow_2d).data, path, ERROR)
    outcome(lambda: dl.load_cube(str(path)), path, ERROR)


@pytest.mark.parametrize("case, phrase", [
    ("data_file_without_header", "without its header"),
    ("header_without_data_file", "data file is missing"),
    ("unknown_extension", "unknown image format"),
    ("folder", "the image path is a folder, not a file"),
    ("missing", "not found"),
])
def test_missing_pieces(tmp_path, case, phrase):
    cube = np.ones((4, 5, 3), np.float32)
    if case == "data_file_without_header":
        path = tmp_path / "cube.img"
        path.write_bytes(cube.tobytes())
    elif case == "header_without_data_file":
        save_envi(tmp_path / "cube.hdr", cube)
        os.remove(tmp_path / "cube.img")
        path = tmp_path / "cube.hdr"
    elif case == "unknown_extension":
        path = tmp_path / "cube.jp2"
        path.write_bytes(b"\0" * 16)
    elif case == "folder":  # e.g. an unpacked archive named like the cube
        path = tmp_path / "cube.npy"
        path.mkdir()
    else:
        path = tmp_path / "absent.mat"
    outcome(lambda: read_image(str(path)).data, path, ERROR, phrase=phrase)
    # data_loader.load_cube says the same, with "the reference cube path is a folder" for a folder
    outcome(lambda: dl.load_cube(str(path)), path, ERROR,
            phrase="reference cube path is a folder" if case == "folder" else phrase)


def mat5_variable(tmp_path, array):
    """(the 128-byte header, the REF variable's element bytes, the offset of its data element's tag)."""
    scipy.io.savemat(tmp_path / "plain.mat", {"REF": array})
    raw = (tmp_path / "plain.mat").read_bytes()
    return raw[:128], raw[128:], raw.index(b"REF\0") + 4 - 128  # the data tag follows the name "REF"


# scipy crashes (segmentation fault) on a MAT v5 data element of an unknown type: 0, 8, 10, 11, 19 and
# up are no MAT data type; 14 (a variable) and 15 (compressed) are only valid at the top or in cells.
@pytest.mark.parametrize("compressed", [False, True], ids=["v5", "v7_compressed"])
@pytest.mark.parametrize("code", [0, 8, 10, 11, 14, 15, 19, 20, 158, 0xFFFF])
def test_mat5_data_element_of_unknown_type(tmp_path, code, compressed):
    header, variable, tag = mat5_variable(tmp_path, np.ones((6, 5, 4), np.float32))
    variable = bytearray(variable)
    struct.pack_into("<I", variable, tag, code)
    if compressed:  # as MATLAB's default -v7: each variable in a zlib-compressed element
        packed = zlib.compress(bytes(variable))
        variable = struct.pack("<II", 15, len(packed)) + packed
    path = tmp_path / "cube.mat"
    path.write_bytes(header + bytes(variable))
    outcome(lambda: read_image(str(path)).data, path, ERROR, phrase=f"data element of unknown type {code}")
    outcome(lambda: load_srf(str(path)), path, ERROR, phrase=f"data element of unknown type {code}")
    outcome(lambda: read_wavelengths(str(path), 4), path, ERROR, phrase=f"data element of unknown type {code}")


@pytest.mark.parametrize("seed", range(12))
def test_mat5_with_flipped_bytes(tmp_path, seed):
    """Random bytes of a valid file replaced: refused, or read as the cube it still describes."""
    rng = np.random.default_rng([SEED, seed])
    header, variable, _ = mat5_variable(tmp_path, rng.random((6, 5, 4)))
    raw = np.frombuffer(header + variable, dtype=np.uint8).copy()
    where = rng.integers(0, raw.size, int(rng.integers(1, 6)))
    raw[where] = rng.integers(0, 256, where.size)
    path = tmp_path / "cube.mat"
    path.write_bytes(raw.tobytes())
    outcome(lambda: read_image(str(path)).data, path, EITHER, (6, 5, 4))


# ----------------------------------------------------------------------------- wrong keys and variables

@pytest.mark.parametrize("fmt", ["mat5", "mat73", "h5"])
@pytest.mark.parametrize("variables, key, phrase", [
    ({"a": (4, 5, 3), "b": (4, 5, 3)}, None, r"several 3-D arrays.*--lr_hsi_key NAME"),
    ({"a": (4, 5, 3)}, "nope", r"no variable 'nope' \(given with --lr_hsi_key\).*'a' \(4 x 5 x 3"),
    ({"wl": (1, 5), "label": (4, 5)}, None, r"no 3-D numeric array \(the LR-HSI\) found"),
    ({"REF": (4, 5)}, None, r"no 3-D numeric array"),
    ({"name": "str"}, None, r"no 3-D numeric array"),
    ({"empty": (0, 5, 3)}, None, r"no 3-D numeric array"),
    ({"a": (4, 5, 3), "REF": (4, 5, 2)}, None, None),
])
def test_keys_and_variables(tmp_path, fmt, variables, key, phrase):
    ext, _ = ARRAY_WRITERS[fmt]
    path = tmp_path / f"cube{ext}"
    rng = case_rng(fmt, key, phrase)
    arrays = {k: (np.array(["abc"]) if v == "str" else rng.random(v)) for k, v in variables.items()}
    if fmt == "mat5":
        scipy.io.savemat(path, arrays)
    else:
        for i, (k, v) in enumerate(arrays.items()):
            single = tmp_path / f"part{i}{ext}"
            (save_mat73 if fmt == "mat73" else save_h5)(single, v, k)
            with h5py.File(single, "r") as src, h5py.File(path, "a") as dst:
                src.copy(k, dst)
        if fmt == "mat73":  # the userblock of the first part, so the file reads as MATLAB's
            with open(tmp_path / f"part0{ext}", "rb") as src:
                header = src.read(512)
            merged = tmp_path / "merged.mat"
            with h5py.File(path, "r") as src, h5py.File(merged, "w", userblock_size=512) as dst:
                for k in src:
                    src.copy(k, dst)
            with open(merged, "r+b") as f:
                f.write(header)
            os.replace(merged, path)
    expected = ERROR if phrase else OK
    outcome(lambda: read_image(str(path), key, role="LR-HSI", key_option="--lr_hsi_key").data, path, expected,
            (4, 5, 2), phrase)
    cube_phrase = phrase and phrase.replace("--lr_hsi_key", "--cube_key").replace("the LR-HSI", "the reference cube")
    outcome(lambda: dl.load_cube(str(path), key=key), path, expected, (4, 5, 2), cube_phrase)


@pytest.mark.parametrize("fmt", ["npy", "tif", "envi"])
def test_key_for_a_format_without_variables(tmp_path, fmt):
    cube = np.ones((4, 5, 3), np.float32)
    path = tmp_path / {"npy": "cube.npy", "tif": "cube.tif", "envi": "cube.hdr"}[fmt]
    {"npy": save_npy, "tif": save_tif, "envi": save_envi}[fmt](path, cube)
    outcome(lambda: read_image(str(path), "REF", key_option="--hr_msi_key").data, path, ERROR,
            phrase="drop --hr_msi_key")


# ----------------------------------------------------------------------------- NaN, Inf and fill values

INVALID_CASES = [(fmt, bad) for fmt in ("npy", "mat5", "mat73", "tif", "envi")
                 for bad in ("nan", "signalling_nan", "inf", "-inf", "float32_fill", "declared_nodata",
                             "undeclared_nodata")
                 if fmt in ("tif", "envi") or "declared" not in bad]


@pytest.mark.parametrize("fmt, bad", INVALID_CASES)
def test_nan_inf_and_fill_values(tmp_path, fmt, bad):
    rng = case_rng(fmt, bad)
    cube = rng.random((6, 5, 4)).astype(np.float32)
    where = rng.choice(cube.size, 3, replace=False)
    value = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf, "float32_fill": -3.4028235e38}.get(bad, -9999.0)
    cube.flat[where] = value
    if bad == "signalling_nan":  # numpy warns when it widens one to float64
        cube.view(np.uint32).flat[where] = 0x7F800001
    nodata = -9999.0 if bad == "declared_nodata" else None
    if fmt == "tif":
        path = tmp_path / "cube.tif"
        save_tif(path, cube, nodata=nodata)
    elif fmt == "envi":
        path = tmp_path / "cube.hdr"
        save_envi(path, cube, metadata={} if nodata is None else {"data ignore value": nodata})
    else:
        ext, save = ARRAY_WRITERS[fmt]
        path = tmp_path / f"cube{ext}"
        save(path, cube)
    image = outcome(lambda: read_image(str(path)), path, OK)  # no masking when reading
    assert image.data.shape == (6, 5, 4) and image.nodata == nodata
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(image.data, cube.astype(np.float64))
    if bad == "undeclared_nodata":  # -9999 that the file does not declare is still a fill value
        outcome(lambda: dl.load_cube(str(path)), path, ERROR, phrase=r"3 invalid values \(3 undeclared fill values")
        outcome(lambda: dl.load_cube(str(path), nodata=-9999), path, ERROR, phrase="3 invalid values")
        masked = outcome(lambda: dl.load_cube(str(path), mask_invalid=True), path, OK, (6, 5, 4))
        assert np.isnan(masked).sum() == 3 and np.isnan(masked.flat[where]).all()
        return
    outcome(lambda: dl.load_cube(str(path)), path, ERROR,
            phrase=r"3 invalid values \(3 (NaN or Inf|fill values|equal to the no-data value -9999)")
    masked = outcome(lambda: dl.load_cube(str(path), mask_invalid=True), path, OK, (6, 5, 4))
    assert np.isnan(masked).sum() == 3 and np.isnan(masked.flat[where]).all()


# ----------------------------------------------------------------------------- image metadata

# edit: (header lines that replace the fields they set, or a bare field name to drop, phrase)
ENVI_HEADER_EDITS = {
    "wavelengths_wrong_count": ("wavelength = {450, 550, 650}", "3 wavelengths for 4 bands"),
    "wavelengths_not_numbers": ("wavelength = {blue, green, red, nir}", "not a list of numbers"),
    "wavelength_units_unknown": ("wavelength = {1, 2, 3, 4}\nwavelength units = furlongs", "not supported"),
    "wavelengths_micrometres_undeclared": ("wavelength = {0.45, 0.55, 0.65, 0.85}", "micrometres"),
    "wavelengths_decreasing": ("wavelength = {850, 650, 550, 450}", "increase strictly"),
    "fwhm_negative": ("wavelength = {450, 550, 650, 850}\nfwhm = {10, -10, 10, 10}", "FWHM"),
    "nodata_not_a_number": ("data ignore value = none", "not a list of numbers"),
    "data_type_unknown": ("data type = 99", r"data type = 99 \(one of 1, 2, 3, 4, 5, 6, 9, 12"),
    "data_type_missing": ("data type", r"data type = \(missing\)"),
    "interleave_unknown": ("interleave = xyz", r"interleave = xyz \(bsq, bil or bip\)"),
    "interleave_mixed_case": ("interleave = Bip", r"interleave = Bip \(write it in lower case, bip"),
    "byte_order_unknown": ("byte order = 7", r"byte order = 7 \(0: little-endian, 1: big-endian\)"),
    "offset_negative": ("header offset = -5", r"header offset = -5 \(a whole number of bytes"),
    "offset_beyond_the_data": ("header offset = 100000", "truncated"),
    "bands_more_than_the_data": ("bands = 40", "truncated"),
    "lines_negative": ("lines = -6", r"lines = -6 \(a positive whole number\)"),
    "lines_zero_samples_text": ("lines = 0\nsamples = five", r"samples = five \(a positive.*lines = 0 \("),
    "description_in_latin1": ("description = {Messung \u00fcber Gr\u00fcnland}", "not an ENVI header in"),
    "first_line_not_envi": ("ENVI", "not a readable ENVI header .*first line is ENVI"),
}


@pytest.mark.parametrize("edit", ENVI_HEADER_EDITS)
def test_envi_header_fields(tmp_path, edit):
    """A header field set (its earlier line removed) or, for an edit without '=', removed."""
    hdr = tmp_path / "cube.hdr"
    save_envi(hdr, np.random.default_rng(SEED).random((6, 5, 4)).astype(np.float32))
    lines, phrase = ENVI_HEADER_EDITS[edit]
    text = hdr.read_text()
    for field in (line.split("=")[0].strip() for line in lines.splitlines()):
        text = re.sub(rf"(?m)^{field}\s*(=.*)?$\n?", "", text)
    added = lines if "=" in lines else ""
    hdr.write_bytes((text.rstrip("\n") + "\n" + added + "\n").encode("latin-1"))
    outcome(lambda: read_image(str(hdr)).data, hdr, ERROR, phrase=phrase)


GEOTIFF_TAG_EDITS = {
    "wavelength_on_some_bands": ({1: {"wavelength": "450"}}, "no wavelength tag"),
    "wavelength_not_a_number": ({b: {"wavelength": "blue"} for b in (1, 2, 3)}, "not a list of numbers"),
    "units_differ": ({1: {"wavelength": "450", "wavelength_units": "nm"},
                      2: {"wavelength": "0.55", "wavelength_units": "um"},
                      3: {"wavelength": "650", "wavelength_units": "nm"}}, "different wavelength units"),
    "micrometres_undeclared": ({b: {"wavelength": str(0.35 + 0.1 * b)} for b in (1, 2, 3)}, "micrometres"),
    "fwhm_zero": ({b: {"wavelength": str(400 + 100 * b), "fwhm": "0"} for b in (1, 2, 3)}, "FWHM"),
    "units_unknown": ({b: {"wavelength": str(b), "wavelength_units": "parsec"} for b in (1, 2, 3)}, "not supported"),
}


@pytest.mark.parametrize("edit", GEOTIFF_TAG_EDITS)
def test_geotiff_wavelength_tags(tmp_path, edit):
    path = tmp_path / "cube.tif"
    tags, phrase = GEOTIFF_TAG_EDITS[edit]
    save_tif(path, np.ones((4, 5, 3), np.float32), tags=tags)
    outcome(lambda: read_image(str(path)).data, path, ERROR, phrase=phrase)


# ----------------------------------------------------------------------------- spectral response tables

C, CM = 10, 3  # HSI bands, MSI bands of the SRF cases
HSI_NM = np.linspace(420.0, 960.0, C)


def base_srf(rng):
    """C x CM response with contiguous, overlapping supports (rows = HSI bands)."""
    srf = np.zeros((C, CM))
    for j, start in enumerate((0, 3, 6)):
        srf[start:start + 4, j] = rng.uniform(0.1, 1.0, 4)
    return srf


def table_text(rows, sep, decimal_comma=False):
    """Lines of ``rows`` (lists of cells: str, float, or None for an empty cell) joined by ``sep``."""
    def cell(v):
        if v is None:
            return ""
        if isinstance(v, str):
            return v
        text = repr(float(v))
        return text.replace(".", ",") if decimal_comma else text
    return "".join(sep.join(cell(v) for v in row) + "\n" for row in rows)


# mutation: (outcome, phrase); the SRF read must be C x CM when OK
SRF_MUTATIONS = {
    "none": (OK, None),
    "trailing_separator": (OK, None),
    "comments_and_blank_lines": (OK, None),
    "byte_order_mark": (OK, None),
    "latin1_header": (OK, None),
    "negative_value": (ERROR, "negative SRF value"),
    "empty_column": (ERROR, r"column\(s\) \[1\] are all zero"),
    "all_zero_column": (ERROR, r"column\(s\) \[1\] are all zero"),
    "gap_in_support": (ERROR, "not contiguous"),
    "ragged_row": (ERROR, r"line \d+ has \d+ cells but line \d+ has"),
    "non_numeric_cell": (ERROR, r"line \d+, column \d+ holds 'n/a', which is not a number"),
    "nan_cell": (ERROR, "NaN or Inf"),
    "inf_cell": (ERROR, "NaN or Inf"),
    "row_missing": (ERROR, "rows but the HSI cube has|--hsi_wavelengths"),
    "transposed": (ERROR, r"is the table transposed\?"),
    "unbalanced_quote": (ERROR, r"line \d+"),
    "only_a_wavelength_column": (ERROR, "looks like band centres"),
    "only_a_header": (ERROR, "no rows of numbers"),
    "empty_file": (ERROR, "no rows of numbers"),
    "binary": (ERROR, "a binary file"),
    "named_wavelength_column_decreasing": (ERROR, "named as wavelengths"),
}
SEPARATORS = {"comma": ",", "semicolon": ";", "tab": "\t", "blank": " "}


def _srf_text_cases():
    rng = np.random.default_rng(SEED + 4)
    cases = []
    for mutation in SRF_MUTATIONS:
        for _ in range(2):
            sep = str(rng.choice(list(SEPARATORS)))
            if mutation in ("empty_column", "unbalanced_quote") and sep == "blank":
                sep = "comma"  # blanks cannot leave a cell empty; quotes are a CSV feature
            header = bool(rng.random() < 0.5)
            wavelength = str(rng.choice(["none", "nm", "um"]))
            if mutation in ("transposed", "only_a_wavelength_column", "named_wavelength_column_decreasing"):
                wavelength = "none" if mutation == "transposed" else "nm"
            if mutation == "named_wavelength_column_decreasing":
                header = True
            cases.append(pytest.param(mutation, sep, header, wavelength,
                                      id=f"{mutation}-{sep}-{'header' if header else 'noheader'}-wl_{wavelength}"))
    return cases


def write_srf_text(path, rng, mutation, sep_name, header, wavelength):
    """A text SRF table with the layout asked for and one ``mutation``."""
    sep = SEPARATORS[sep_name]
    srf = base_srf(rng)
    rows = [list(map(float, row)) for row in srf]
    names = [f"B{j + 1}" for j in range(CM)]
    if wavelength != "none":
        column = HSI_NM / (1000.0 if wavelength == "um" else 1.0)
        if mutation == "named_wavelength_column_decreasing":
            column = column[::-1]
        rows = [[float(w), *row] for w, row in zip(column, rows)]
        names = ["wavelength_um" if wavelength == "um" else "wavelength_nm", *names]
    body_start = 1 if header else 0
    table = ([names] if header else []) + rows
    offset = int(wavelength != "none")
    r = body_start + int(rng.integers(0, C))
    if mutation == "negative_value":
        table[r][offset + int(rng.integers(0, CM))] = -0.25
    elif mutation == "empty_column":
        for row in table[body_start:]:
            row[offset + 1] = None
    elif mutation == "all_zero_column":
        for row in table[body_start:]:
            row[offset + 1] = 0.0
    elif mutation == "gap_in_support":
        table[body_start + 4][offset + 1] = 0.0  # band 1 responds on rows 3-6: a zero at 4 splits it
    elif mutation == "ragged_row":
        table[r] = table[r][:-1]
    elif mutation == "non_numeric_cell":
        table[r][offset + int(rng.integers(0, CM))] = "n/a"
    elif mutation in ("nan_cell", "inf_cell"):
        table[r][offset + int(rng.integers(0, CM))] = "nan" if mutation == "nan_cell" else "inf"
    elif mutation == "row_missing":
        del table[r]
    elif mutation == "transposed":
        table = [list(col) for col in zip(*rows)]
    elif mutation == "unbalanced_quote":
        table[r][offset] = '"' + repr(table[r][offset])
    elif mutation == "only_a_wavelength_column":
        table = [row[:1] for row in table]
    elif mutation == "only_a_header":
        table = [names]
    # A single column with decimal commas is two comma-separated columns: no reader can tell.
    text = table_text(table, sep, decimal_comma=sep_name == "semicolon" and mutation != "only_a_wavelength_column")
    if mutation == "trailing_separator":
        text = "".join(line + sep + "\n" for line in text.splitlines())
    elif mutation == "comments_and_blank_lines":
        lines = text.splitlines()
        text = "# SRF of a test sensor\n\n" + "\n\n".join(lines[:3]) + "\n# mid-table comment\n" + \
            "\n".join(lines[3:]) + "\n\n"
    if mutation == "empty_file":
        path.write_bytes(b"")
    elif mutation == "binary":
        path.write_bytes(np.random.default_rng(SEED).integers(0, 256, 300, dtype=np.uint8).tobytes() + b"\0")
    elif mutation == "byte_order_mark":
        path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    elif mutation == "latin1_header":  # Excel on Windows saves CSV in the ANSI code page
        path.write_bytes(("# Empfindlichkeit, gr\u00fcn\n" + text.replace("B1", "Gr\u00fcn", 1)).encode("latin-1"))
    else:
        path.write_text(text)


def srf_pipeline(path, hsi_channels=C, wavelengths=None):
    """load_srf -> srf_for_hsi -> validate_srf, as the data loader runs them; returns the C x Cm SRF."""
    table = load_srf(str(path))
    srf, _ = srf_for_hsi(table, hsi_channels, wavelengths)
    checked = validate_srf(srf, hsi_channels, str(path))
    np.testing.assert_allclose(checked.sum(axis=0), 1.0)
    return checked


@pytest.mark.parametrize("mutation, sep, header, wavelength", _srf_text_cases())
def test_srf_text_tables(tmp_path, mutation, sep, header, wavelength):
    rng = case_rng(mutation, sep, header, wavelength)
    path = tmp_path / ("srf.txt" if sep == "blank" else "srf.csv")
    write_srf_text(path, rng, mutation, sep, header, wavelength)
    expected, phrase = SRF_MUTATIONS[mutation]
    srf = outcome(lambda: srf_pipeline(path), path, expected, (C, CM), phrase)
    if srf is not None:
        reference = base_srf(case_rng(mutation, sep, header, wavelength))
        np.testing.assert_allclose(srf, reference / reference.sum(axis=0), rtol=1e-12)
    # With the HSI band centres known, a table on another grid is resampled; the outcome is the same
    # for the tables whose rows are the HSI bands.
    if wavelength == "none" and mutation not in ("row_missing",):
        outcome(lambda: srf_pipeline(path, wavelengths=HSI_NM), path, expected, (C, CM), phrase)


def _srf_array_cases():
    rng = np.random.default_rng(SEED + 5)
    cases = []
    shapes = ((), (C,), (C, CM), (CM, C), (C, 0), (0, CM), (C, CM, 1), (C, C), (1, CM), (C, 1))
    for fmt in ("npy", "mat5", "mat73", "h5mat"):
        for dtype in ARRAY_DTYPES:
            for shape in _draw(rng, (*shapes, *_random_shapes(rng, 1)), [(C, CM), (C,)], 4):
                cases.append(pytest.param(fmt, dtype, shape, id=f"{fmt}-{dtype}-{shape_id(shape)}"))
    return cases


def expected_srf(array, fmt):
    """(outcome, shape) of an SRF array: a numeric C x m table with 1 < m < C is valid (the values are
    positive: every support is all rows, contiguous); a C-vector is one MSI band (a pan response) in a
    .npy, while in a .mat file vectors are never the table. Logical tables may be read as 0/1."""
    shape = stored_shape(fmt, array.shape)
    if fmt == "npy" and shape in ((C,), (C, 1)):
        valid = (C, 1)
    elif len(shape) == 2 and shape[0] == C and 1 < shape[1] < C:
        valid = shape
    else:
        return ERROR, None
    if array.dtype.kind == "b":
        return EITHER, valid
    return (OK, valid) if array.dtype.kind in "iuf" else (ERROR, None)


@pytest.mark.parametrize("fmt, dtype, shape", _srf_array_cases())
def test_srf_arrays_of_any_shape_and_dtype(tmp_path, fmt, dtype, shape):
    array = make_array(case_rng("srf", fmt, dtype, shape), shape, dtype)
    if array.dtype.kind in "iu":
        array = np.maximum(array, 1)  # no zero inside a support
    path = tmp_path / ("srf.npy" if fmt == "npy" else "srf.mat")
    {"npy": save_npy, "mat5": save_mat5, "mat73": save_mat73, "h5mat": save_h5}[fmt](path, array, "srf")
    expected, out = expected_srf(array, fmt)
    outcome(lambda: srf_pipeline(path), path, expected, out)


@pytest.mark.parametrize("case, phrase", [
    ("key_missing", r"no numeric variable 'nope' \(--srf_key\)"),
    ("two_tables", r"several 2-D tables.*pass --srf_key NAME"),
    ("only_vectors", "no 2-D table"),
    ("table_and_wavelength_vector", None),
    ("text_renamed_mat", "not a readable MATLAB file"),
    ("text_renamed_npy", r"not a readable \.npy array"),
    ("text_renamed_xlsx", "could not read it as an Excel .xlsx workbook"),
    ("text_renamed_xls", "could not read it as an Excel .xls workbook"),
    ("unknown_extension", "unknown SRF format"),
])
def test_srf_files_and_variables(tmp_path, case, phrase):
    srf = base_srf(case_rng(case))
    key = "nope" if case == "key_missing" else None
    if case.startswith("text_renamed") or case == "unknown_extension":
        ext = {"unknown_extension": ".json"}.get(case, "." + case.rsplit("_", 1)[-1])
        path = tmp_path / f"srf{ext}"
        path.write_text("0.1,0.2,0.3\n" * C)
    else:
        path = tmp_path / "srf.mat"
        arrays = {"key_missing": {"srf": srf}, "two_tables": {"srf": srf, "other": srf[:, :2]},
                  "only_vectors": {"wl": HSI_NM, "gain": np.ones(CM)},
                  "table_and_wavelength_vector": {"srf": srf, "wl": HSI_NM}}[case]
        scipy.io.savemat(path, arrays)
    table = outcome(lambda: load_srf(str(path), key=key), path, ERROR if phrase else OK, phrase=phrase)
    if table is not None:
        np.testing.assert_array_equal(table.wavelengths, HSI_NM)
        matrix = outcome(lambda: srf_pipeline(path, wavelengths=HSI_NM), path, OK, (C, CM))
        np.testing.assert_allclose(matrix, srf / srf.sum(axis=0), rtol=1e-12)


# ----------------------------------------------------------------------------- wavelength files

WAVELENGTH_CASES = {
    # name: (content builder(rng) -> (file name, bytes), outcome, phrase)
    "one_per_line": (lambda c: ("wl.txt", "\n".join(map(str, c)) + "\n"), OK, None),
    "with_fwhm": (lambda c: ("wl.csv", "".join(f"{w},{10 + i}\n" for i, w in enumerate(c))), OK, None),
    "header_and_comments": (lambda c: ("wl.csv", "# sensor X\ncentre_nm,fwhm_nm\n" +
                                       "".join(f"{w}, 12\n" for w in c)), OK, None),
    "one_line": (lambda c: ("wl.txt", ", ".join(map(str, c)) + "\n"), OK, None),
    "semicolons_decimal_commas": (lambda c: ("wl.csv", "".join(f"{w:.2f};10,5\n".replace(".", ",", 1)
                                                                for w in c)), OK, None),
    "latin1_header": (lambda c: ("wl.txt", ("Wellenl\u00e4nge (nm)\n" + "\n".join(map(str, c)) + "\n")
                                 .encode("latin-1")), OK, None),
    "micrometres": (lambda c: ("wl.txt", "\n".join(str(w / 1000) for w in c)), ERROR, "micrometres"),
    "one_too_few": (lambda c: ("wl.txt", "\n".join(map(str, c[:-1]))), ERROR,
                    f"{C - 1} wavelengths for an image of {C}"),
    "one_too_many": (lambda c: ("wl.txt", "\n".join(map(str, [*c, 2000.0]))), ERROR, f"{C + 1} wavelengths"),
    "not_monotonic": (lambda c: ("wl.txt", "\n".join(map(str, [c[1], c[0], *c[2:]]))), ERROR, "increase strictly"),
    "repeated": (lambda c: ("wl.txt", "\n".join(map(str, [c[0], *c[:-1]]))), ERROR, "increase strictly"),
    "nan": (lambda c: ("wl.txt", "\n".join(map(str, [*c[:3], float("nan"), *c[4:]]))), ERROR, "finite"),
    "three_columns": (lambda c: ("wl.csv", "".join(f"{w},10,1\n" for w in c)), ERROR, "one or two columns"),
    "ragged": (lambda c: ("wl.csv", "".join(f"{w},10\n" if i % 2 else f"{w}\n" for i, w in enumerate(c))),
               ERROR, "one or two columns"),
    "fwhm_negative": (lambda c: ("wl.csv", "".join(f"{w},-5\n" for w in c)), ERROR, "FWHM of band 0"),
    "text_in_the_middle": (lambda c: ("wl.txt", "\n".join([*map(str, c[:4]), "n/a", *map(str, c[5:])])),
                           ERROR, "line 5 is not numeric"),
    "empty": (lambda c: ("wl.txt", ""), ERROR, "no numbers"),
    "binary": (lambda c: ("wl.txt", bytes(range(256)) * 2), ERROR, None),
    "npy_vector": (lambda c: ("wl.npy", c), OK, None),
    "npy_table_with_fwhm": (lambda c: ("wl.npy", np.stack([c, np.full(C, 10.0)], axis=1)), OK, None),
    "npy_rows_centres_and_fwhm": (lambda c: ("wl.npy", np.stack([c, np.full(C, 10.0)])), OK, None),
    "npy_scalar": (lambda c: ("wl.npy", np.float64(500)), ERROR, r"shape \(\)"),
    "npy_3d": (lambda c: ("wl.npy", np.ones((2, C, 2))), ERROR, "shape"),
    "npy_complex": (lambda c: ("wl.npy", c + 0j), ERROR, "not numbers"),
    "npy_strings": (lambda c: ("wl.npy", c.astype(str)), ERROR, "not numbers"),
    "npy_objects": (lambda c: ("wl.npy", c.astype(object)), ERROR, "not a readable"),
    "mat_vector_and_label": (lambda c: ("wl.mat", {"wl": c, "sensor": "AVIRIS"}), OK, None),
    "mat_two_vectors": (lambda c: ("wl.mat", {"wl": c, "wl_short": c[:4]}), OK, None),
    "mat_two_matching_vectors": (lambda c: ("wl.mat", {"wl": c, "fwhm": np.full(C, 10.0)}), ERROR,
                                 "several arrays could be the wavelengths"),
    "mat_no_vector": (lambda c: ("wl.mat", {"cube": np.ones((2, 3, 4))}), ERROR, "no vector of band centres"),
    "mat_text": (lambda c: ("wl.mat", "not a mat file\n"), ERROR, "not a readable MATLAB file"),
}


@pytest.mark.parametrize("case", WAVELENGTH_CASES)
def test_wavelength_files(tmp_path, case):
    build, expected, phrase = WAVELENGTH_CASES[case]
    name, content = build(HSI_NM.copy())
    path = tmp_path / name
    if isinstance(content, dict):
        scipy.io.savemat(path, content)
    elif isinstance(content, np.ndarray) or np.isscalar(content) and not isinstance(content, (str, bytes)):
        np.save(path, content, allow_pickle=True)
    else:
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    centres = outcome(lambda: read_wavelengths(str(path), C)[0], path, expected, (C,), phrase)
    if centres is not None:
        np.testing.assert_allclose(centres, HSI_NM, rtol=1e-3 if "decimal" in case else 1e-12)


# ----------------------------------------------------------------------------- band-range files

# case: (file name, content, OK and the bands read, or ERROR and a phrase)
BAND_CASES = {
    "names_and_header": ("bands.csv", "name,low_nm,high_nm\nblue,450,510\ngreen,510,580\nred,630,690\n",
                         OK, [("blue", 450, 510), ("green", 510, 580), ("red", 630, 690)]),
    "numbers_only": ("bands.txt", "450 510\n510 580\n630 690\n",
                     OK, [("band 1", 450, 510), ("band 2", 510, 580), ("band 3", 630, 690)]),
    "semicolons_decimal_commas": ("bands.csv", "blue;450,5;510\ngreen;510;580,25\n",
                                  OK, [("blue", 450.5, 510), ("green", 510, 580.25)]),
    "micrometres": ("bands.csv", "0.45,0.51\n0.51,0.58\n", ERROR, "look like micrometres"),
    "low_above_high": ("bands.csv", "blue,510,450\n", ERROR, "'blue' has low 510 >= high 450"),
    "three_numbers": ("bands.csv", "450,510,480\n510,580,545\n", ERROR, r"3 numeric column\(s\)"),
    "one_number": ("bands.csv", "blue,450\ngreen,510\n", ERROR, r"1 numeric column\(s\)"),
    "text_cell": ("bands.csv", "blue,450,510\ngreen,n/a,580\n", ERROR, "line 2, column 2 holds 'n/a'"),
    "ragged": ("bands.csv", "blue,450,510\ngreen,510\n", ERROR, "line 2 has 2 cells"),
    "empty_cell": ("bands.csv", "blue,450,510\ngreen,510,\n", ERROR, "line 2, column 3 is empty"),
    "empty_name": ("bands.csv", "blue,450,510\n,510,580\n", ERROR, "line 2, column 1 is empty"),
    "nan": ("bands.csv", "450,510\nnan,580\n", ERROR, "NaN or Inf"),
    "only_header": ("bands.csv", "name,low,high\n", ERROR, "no band rows"),
    "empty": ("bands.csv", "", ERROR, "no band rows"),
    "binary": ("bands.csv", b"\x00\x01\x02" * 40, ERROR, "a binary file"),
    "names_only": ("bands.csv", "blue\ngreen\n", ERROR, r"0 numeric column\(s\)"),
    "text_renamed_xlsx": ("bands.xlsx", "blue,450,510\n", ERROR, "could not read it as an Excel"),
    "missing": ("absent.csv", None, ERROR, "not found|cannot read"),
}


@pytest.mark.parametrize("case", BAND_CASES)
def test_band_range_files(tmp_path, case):
    name, content, expected, detail = BAND_CASES[case]
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    if expected == OK:
        bands = outcome(lambda: read_band_ranges(str(path)), path, OK, (len(detail), 3))
        assert bands == detail
    else:
        outcome(lambda: read_band_ranges(str(path)), path, ERROR, phrase=detail)


# ----------------------------------------------------------------------------- end to end: simulated pairs

def write_data_root(tmp_path, cube_name, write_cube, srf_name="toy.csv", write_srf=None):
    """<tmp>/data/toy/<cube_name> and <tmp>/srf/<srf_name>; returns (args, cube path, SRF path)."""
    folder = tmp_path / "data" / "toy"
    folder.mkdir(parents=True)
    (tmp_path / "srf").mkdir()
    cube_path, srf_path = folder / cube_name, tmp_path / "srf" / srf_name
    write_cube(cube_path)
    if write_srf is None:
        srf = base_srf(np.random.default_rng(SEED))
        srf_path.write_text(table_text(srf, ","))
    else:
        write_srf(srf_path)
    args = get_args(["--default_datapath", str(tmp_path / "data"), "--data_name", "toy",
                     "--sp_root_path", str(tmp_path / "srf"), "--checkpoints_dir", str(tmp_path / "runs"),
                     "--device", "cpu"])
    return args, cube_path, srf_path


def _cube(shape=(20, 20, C), seed=SEED):
    return np.random.default_rng(seed).random(shape).astype(np.float32)


DATASET_CUBES = {
    # name: (file name, writer(path), outcome, phrase)
    "valid_npy": ("a.npy", lambda p: np.save(p, _cube()), OK, None),
    "valid_tif": ("a.tif", lambda p: save_tif(p, _cube()), OK, None),
    "valid_mat73": ("a.mat", lambda p: save_mat73(p, _cube().astype(np.float64)), OK, None),
    "channels_first_npy": ("a.npy", lambda p: np.save(p, np.moveaxis(_cube(), 2, 0)), ERROR, "channels-first"),
    "channels_first_h5": ("a.h5", lambda p: save_h5(p, np.moveaxis(_cube(), 2, 0)), ERROR, "channels-first"),
    "bands_in_the_middle": ("a.npy", lambda p: np.save(p, np.moveaxis(_cube(), 2, 1)), ERROR,
                            "second axis.*channels-first"),
    "transposed": ("a.npy", lambda p: np.save(p, _cube().T), ERROR, "channels-first"),
    "two_d": ("a.npy", lambda p: np.save(p, _cube()[:, :, 0]), ERROR, "save a single-band image as H x W x 1"),
    "four_d": ("a.npy", lambda p: np.save(p, _cube()[None]), ERROR, "expected an H x W x C array"),
    "complex": ("a.npy", lambda p: np.save(p, _cube() + 1j), ERROR, "not a real numeric array"),
    "empty": ("a.npy", lambda p: np.save(p, np.zeros((0, 20, C))), ERROR, "is empty"),
    "nan": ("a.npy", lambda p: np.save(p, np.where(_cube() > 0.99, np.nan, _cube())), ERROR, "invalid value"),
    "text_renamed_mat": ("a.mat", lambda p: p.write_text("REF = rand(20, 20, 10)\n"), ERROR, "not a readable"),
    "truncated_npy": ("a.npy", lambda p: (np.save(p, _cube()), p.write_bytes(p.read_bytes()[:500])), ERROR,
                      "not a readable"),
    "too_small": ("a.npy", lambda p: np.save(p, _cube((6, 6, C))), ERROR, "smaller than 2 x 2"),
}


@pytest.mark.parametrize("case", DATASET_CUBES)
def test_dataset_with_a_malformed_cube(tmp_path, case):
    name, write, expected, phrase = DATASET_CUBES[case]
    args, cube_path, _ = write_data_root(tmp_path, name, write)
    channels = outcome(lambda: dl.Dataset(args).sp_matrix, cube_path, expected, (C, CM), phrase)
    if channels is not None:
        assert dl.Dataset(args)[0]["lhsi"].shape == (C, 4, 4)


def test_dataset_channels_first_cube_with_few_bands_is_named_channels_first(tmp_path):
    few = base_srf(np.random.default_rng(SEED))[:6, :2]  # 6 HSI bands < 2 r = 10
    args, cube_path, _ = write_data_root(
        tmp_path, "a.npy", lambda p: np.save(p, np.moveaxis(_cube((20, 20, 6)), 2, 0)),
        write_srf=lambda p: p.write_text(table_text(few, ",")))
    outcome(lambda: dl.Dataset(args), cube_path, ERROR, phrase="channels-first")


def _dataset_srf_cases():
    rng = np.random.default_rng(SEED + 6)
    chosen = [m for m, (expected, _) in SRF_MUTATIONS.items() if expected == ERROR and m != "row_missing"]
    return [pytest.param(m, str(rng.choice(list(SEPARATORS))), id=m) for m in chosen]


@pytest.mark.parametrize("mutation, sep", _dataset_srf_cases())
def test_dataset_with_a_malformed_srf(tmp_path, mutation, sep):
    if mutation in ("empty_column", "unbalanced_quote") and sep == "blank":
        sep = "comma"
    wavelength = "nm" if mutation in ("only_a_wavelength_column", "named_wavelength_column_decreasing") else "none"
    header = mutation == "named_wavelength_column_decreasing"
    args, _, srf_path = write_data_root(
        tmp_path, "a.npy", lambda p: np.save(p, _cube()), srf_name="toy.txt" if sep == "blank" else "toy.csv",
        write_srf=lambda p: write_srf_text(p, case_rng(mutation), mutation, sep, header, wavelength))
    outcome(lambda: dl.Dataset(args), srf_path, ERROR, phrase=SRF_MUTATIONS[mutation][1])


# ----------------------------------------------------------------------------- end to end: real pairs

def real_pair_args(tmp_path, *extra):
    return get_args(["--lr_hsi", str(tmp_path / "lr.tif"), "--hr_msi", str(tmp_path / "hr.tif"),
                     "--checkpoints_dir", str(tmp_path / "runs"), "--device", "cpu", *map(str, extra)])


def write_pair(tmp_path, lr=None, hr=None, lr_nodata=None):
    """A 4 x 4 x C LR-HSI and its 8 x 8 x CM HR-MSI (r = 2) as aligned GeoTIFFs, with the SRF as CSV."""
    rng = np.random.default_rng(SEED)
    srf = base_srf(rng)
    cube = rng.random((8, 8, C)).astype(np.float32)
    lr = cube.reshape(4, 2, 4, 2, C).mean(axis=(1, 3)) if lr is None else lr
    hr = (cube @ (srf / srf.sum(axis=0))).astype(np.float32) if hr is None else hr
    save_tif(tmp_path / "lr.tif", lr, nodata=lr_nodata)
    with rasterio.open(tmp_path / "hr.tif", "w", driver="GTiff", height=hr.shape[0], width=hr.shape[1],
                       count=hr.shape[2], dtype=hr.dtype.name, crs=CRS,
                       transform=TRANSFORM @ Affine.scale(0.5)) as ds:
        ds.write(np.moveaxis(hr, 2, 0))
    (tmp_path / "srf.csv").write_text(table_text(srf, ","))
    (tmp_path / "wl.txt").write_text("\n".join(map(str, HSI_NM)))
    return lr, hr


def setup_real_pair(tmp_path, case):
    """Write the pair and the file ``case`` damages; returns (extra options, the file the message must name)."""
    t = tmp_path
    srf = base_srf(np.random.default_rng(SEED))
    with_srf = ["--srf", t / "srf.csv"]
    with_sensor = ["--msi_sensor", "worldview2", "--hsi_wavelengths", t / "wl.txt"]
    if case == "lr_nodata_pixels":
        lr = np.where(np.eye(4)[:, :, None] > 0, -9999.0, 0.5).repeat(C, axis=2).astype(np.float32)
        write_pair(t, lr=lr, lr_nodata=-9999)
        return with_srf, t / "lr.tif"
    if case == "lr_all_nodata":
        write_pair(t, lr=np.full((4, 4, C), -9999, np.float32), lr_nodata=-9999)
        return with_srf, t / "lr.tif"
    if case == "lr_complex":
        write_pair(t, lr=np.ones((4, 4, C), np.complex64))
        return with_srf, t / "lr.tif"
    write_pair(t)
    if case == "valid_srf":
        return with_srf, t / "lr.tif"
    if case == "valid_sensor":
        return ["--msi_sensor", "worldview2", "--msi_bands_select", "2,3,5", "--hsi_wavelengths", t / "wl.txt"], \
            t / "lr.tif"
    if case == "hr_text_renamed_tif":
        (t / "hr.tif").write_text("not a tiff")
        return with_srf, t / "hr.tif"
    if case.startswith("srf_"):
        table = {"srf_transposed": srf.T, "srf_negative": -srf,
                 "srf_other_grid_without_wavelengths": np.column_stack([np.arange(400.0, 1000.0, 20.0),
                                                                        np.ones((30, CM))])}[case]
        (t / "srf.csv").write_text(table_text(table, ","))
        return with_srf, t / "srf.csv"
    if case.startswith("wavelengths_"):
        values = HSI_NM / 1000 if case == "wavelengths_micrometres" else HSI_NM[:-2]
        (t / "wl.txt").write_text("\n".join(map(str, values)))
        return with_sensor, t / "wl.txt"
    text = {"band_ranges_malformed": "blue,450\n",
            "band_ranges_outside_the_hsi": "swir1,1560,1660\nswir2,2100,2300\nblue,450,510\n"}[case]
    (t / "bands.csv").write_text(text)
    return ["--msi_bands", t / "bands.csv", "--hsi_wavelengths", t / "wl.txt"], t / "bands.csv"


REAL_PAIR_CASES = {
    "valid_srf": (OK, None),
    "valid_sensor": (OK, None),
    "lr_nodata_pixels": (OK, None),
    "lr_all_nodata": (ERROR, "every pixel is no-data"),
    "lr_complex": (ERROR, "not a real numeric array"),
    "hr_text_renamed_tif": (ERROR, "not a readable GeoTIFF"),
    "srf_transposed": (ERROR, r"is the table transposed\?"),
    "srf_negative": (ERROR, "negative SRF value"),
    "srf_other_grid_without_wavelengths": (ERROR, "pass --hsi_wavelengths"),
    "wavelengths_micrometres": (ERROR, "micrometres"),
    "wavelengths_wrong_length": (ERROR, f"{C - 2} wavelengths for an image of {C} bands"),
    "band_ranges_malformed": (ERROR, r"1 numeric column\(s\)"),
    "band_ranges_outside_the_hsi": (ERROR, "cover no HSI band centre"),
}


@pytest.mark.parametrize("case", REAL_PAIR_CASES)
def test_real_pair(tmp_path, case):
    expected, phrase = REAL_PAIR_CASES[case]
    extra, named = setup_real_pair(tmp_path, case)
    args = real_pair_args(tmp_path, *extra)
    pair = outcome(lambda: dl.load_real_pair(args), named, expected, phrase=phrase)
    if pair is not None:
        assert pair.lhsi.shape == (4, 4, C) and pair.hmsi.shape == (8, 8, CM) and pair.srf.shape == (C, CM)
        assert pair.scale == 2


def channels_first_lr_hsi_args(tmp_path):
    """Options of a pair whose LR-HSI is saved C x h x w (.npy, read in stored order), with an SRF."""
    lr, _ = write_pair(tmp_path)
    np.save(tmp_path / "lr.npy", np.moveaxis(lr, 2, 0))
    args = real_pair_args(tmp_path, "--srf", tmp_path / "srf.csv")
    args.lr_hsi = str(tmp_path / "lr.npy")
    return args


def test_real_pair_channels_first_lr_hsi_is_refused(tmp_path):
    args = channels_first_lr_hsi_args(tmp_path)
    outcome(lambda: dl.load_real_pair(args), tmp_path / "lr.npy", ERROR)


def test_real_pair_channels_first_lr_hsi_is_named_channels_first(tmp_path):
    args = channels_first_lr_hsi_args(tmp_path)
    outcome(lambda: dl.load_real_pair(args), tmp_path / "lr.npy", ERROR, phrase="channels-first")
