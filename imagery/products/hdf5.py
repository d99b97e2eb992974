"""Reading the HDF5 containers of delivered products (PRISMA's HDF-EOS5, EMIT's NetCDF-4) with h5py, every
failure turned into a DataError that names the file and what it lacks."""
from contextlib import contextmanager

import numpy as np

from imagery.errors import DataError


@contextmanager
def open_product(path, what):
    """``path`` open read-only as an h5py.File; DataError naming ``what`` the file should be when it is not
    an HDF5 file."""
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DataError(f"{path}: not readable as {what} ({exc}); the file may be truncated: download it "
                        "again") from None
    with f:
        yield f


def dataset(f, name, what):
    """The dataset ``name`` of the open file ``f``; DataError when it is missing."""
    if name not in f:
        raise DataError(f"{f.filename}: no dataset {name!r}; the file is not {what} of the documented layout")
    return f[name]


def attribute(node, name, what):
    """The attribute ``name`` of ``node`` (a file, group or dataset) as a float64 vector (numbers) or str;
    DataError when it is missing."""
    if name not in node.attrs:
        raise DataError(f"{node.file.filename}: no attribute {name!r}; the file is not {what} of the documented "
                        "layout")
    value = node.attrs[name]
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, str):
        return value
    value = np.asarray(value)
    if value.dtype.kind in "SO":
        item = value.ravel()[0]
        return item.decode() if isinstance(item, bytes) else str(item)
    return value.astype(np.float64).ravel()


def scalar(node, name, what):
    """The single number that attribute ``name`` of ``node`` holds, as float."""
    value = attribute(node, name, what)
    if isinstance(value, str) or value.size != 1:
        raise DataError(f"{node.file.filename}: attribute {name!r} is {value!r}, not one number; the file is not "
                        f"{what} of the documented layout")
    return float(value[0])
