"""Spectral response functions (SRFs): reading the tables people have, resampling them to the HSI
bands, and the checks SpeDnet needs.

The SRF matrix S is C x Cm: rows are the HSI bands (in band order), columns the MSI bands, entries
non-negative, each column normalised to sum to 1, so that the MSI is Z = X S (X: H x W x C cube).
SpeDnet (Li et al., "Deep Unsupervised Blind Hyperspectral and Multispectral Data Fusion", IEEE GRSL
19, 2022) learns one weight per HSI band of each MSI band's support, which must therefore be one run
of consecutive HSI bands.

Tables come as people have them: rows = HSI bands, or rows = the response's own wavelength grid
(published SRFs are sampled every 1 nm or so) with the wavelengths in the first column or in a
vector next to the table; an optional header row of band names; ``,`` ``;`` tab or blank separated
text, ``.xls``/``.xlsx`` sheets with empty cells for zero (text and sheets read by ``imagery.tables``),
``.npy``, MATLAB ``.mat`` (v5 or v7.3).
``load_srf`` reads a table as it is (``SRFTable``); ``srf_for_hsi`` turns it into S for a given cube.
Wavelengths are in nanometres throughout.
"""
import logging
import os
import re
from dataclasses import dataclass

import numpy as np

from config import FWHM_TO_SIGMA
from imagery.errors import DataError
from imagery.readers import read_mat_arrays
from imagery.tables import EXCEL_EXTENSIONS, TEXT_EXTENSIONS, numeric_rows, read_cells

SRF_EXTENSIONS = (".xls", ".xlsx", ".csv", ".txt", ".npy", ".mat")
# A strictly increasing first column whose values all exceed this is a wavelength grid in nm: a
# response (any scale: 0-1, percent) never increases monotonically through values above 100.
NM_FLOOR = 100.0
# A strictly increasing column of at least 3 values inside this range, in steps of at most
# UM_MAX_STEP, is read as micrometres: the optical range that multispectral sensors cover, 0.35-2.5 um,
# with a margin, sampled at least every 100 nm (HSI bands and published SRFs: 1-20 nm).
UM_RANGE = (0.2, 3.0)
UM_MAX_STEP = 0.1
# Wavelength grids closer than this to the HSI band centres are the HSI bands themselves.
SAME_GRID_NM = 0.5
# Resampled responses below this fraction of their band's peak are set to 0; see resample_srf.
RESAMPLE_FLOOR = 0.01
# Header names that declare a wavelength column (and its unit).
WAVELENGTH_HEADER = re.compile(r"wave|lambda|^\s*wl\b|\bnm\b|\bum\b|µm|micro", re.IGNORECASE)
MICROMETRE_HEADER = re.compile(r"\bum\b|µm|micro", re.IGNORECASE)

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- the SRF matrix

def normalise_srf(srf):
    """Scale each column (MSI band) of a C x Cm SRF to sum to 1, as the upstream UDALN loader does."""
    return srf / srf.sum(axis=0, keepdims=True)


def support_range(srf):
    """First and last HSI band of each MSI band's support (rows where the response is > 0).

    ``srf``: C x Cm. Returns Cm x 2 ints (0-based, inclusive), SpeDnet's ``sp_range``.
    """
    positive = srf > 0
    first = positive.argmax(axis=0)
    last = srf.shape[0] - 1 - positive[::-1].argmax(axis=0)
    return np.stack([first, last], axis=1)


def srf_from_bands(hsi_wavelengths, msi_bands, shape="gaussian"):
    """SRF matrix (C x Cm, columns summing to 1) of a sensor given its band ranges.

    ``hsi_wavelengths``: C band centres; ``msi_bands``: Cm (low, high) pairs in the same unit (nm).
    'rect': response 1 for HSI bands whose centre lies in [low, high].
    'gaussian': a Gaussian centred on the band with FWHM = high - low, kept within one FWHM of the
    centre (response >= 1/16 of the peak) so that each support stays contiguous and finite.
    Raises ValueError for pairs with low >= high, an unknown shape, or a band with no HSI centre
    within its kept range.
    """
    wl = np.asarray(hsi_wavelengths, dtype=np.float64)[:, None]
    bands = np.asarray(msi_bands, dtype=np.float64)
    if bands.ndim != 2 or bands.shape[1] != 2 or np.any(bands[:, 1] <= bands[:, 0]):
        raise ValueError("msi_bands must be a sequence of (low, high) pairs with low < high")
    low, high = bands[:, 0], bands[:, 1]
    if shape == "rect":
        srf = ((wl >= low) & (wl <= high)).astype(np.float64)
    elif shape == "gaussian":
        centre, fwhm = (low + high) / 2, high - low
        srf = np.exp(-0.5 * ((wl - centre) / (fwhm / FWHM_TO_SIGMA)) ** 2)
        srf[np.abs(wl - centre) > fwhm] = 0
    else:
        raise ValueError(f"shape must be 'gaussian' or 'rect', got {shape!r}")
    empty = np.flatnonzero(srf.sum(axis=0) == 0)
    if empty.size:
        raise ValueError(f"MSI bands {empty.tolist()} contain no HSI band centre: widen them or check the units")
    return normalise_srf(srf)


def _channels_first_hint(rows, cube_path, cube_shape):
    """The sentence saying a cube looks channels-first, when the SRF's row count is one of its other axes."""
    if cube_shape is None or len(cube_shape) != 3:
        return ""
    axes = [i for i in (0, 1) if cube_shape[i] == rows]
    if not axes:
        return ""
    axis = axes[0]
    shape = " x ".join(str(n) for n in cube_shape)
    return (f"; the cube {cube_path or ''} was read as {shape} (H x W x C), and its "
            f"{('first', 'second')[axis]} axis has {rows} entries, the SRF's row count: the cube looks "
            f"channels-first (bands on axis {axis}, as an array written by h5py or numpy in C x H x W order, "
            "which is read in stored order; only MATLAB -v7.3 files are transposed back). Store it "
            f"bands-last, H x W x C (numpy: np.moveaxis(cube, {axis}, -1))")


def validate_srf(srf, hsi_channels, path, cube_path=None, cube_shape=None):
    """Check an SRF read from ``path`` against the HSI cube and return it normalised (C x Cm float64).

    ``srf``: C x Cm array (rows = HSI bands, columns = MSI bands), or an ``SRFTable`` whose rows are
    the HSI bands. ``cube_path`` / ``cube_shape`` (the cube's shape as read, H x W x C) let a row
    count that matches another axis of the cube be reported as a channels-first cube.
    Raises DataError (naming ``path``) unless: 2-D, finite, rows == ``hsi_channels``, fewer columns
    than rows, non-negative, every column has a positive entry, and every column's support (rows > 0)
    is one run of consecutive bands (SpeDnet, Li et al. IEEE GRSL 2022).
    """
    srf = np.asarray(srf.response if isinstance(srf, SRFTable) else srf, dtype=np.float64)
    if srf.ndim != 2:
        raise DataError(f"{path}: the SRF must be a 2-D table (rows = HSI bands, columns = MSI bands), "
                     f"got an array of shape {srf.shape}")
    if not np.all(np.isfinite(srf)):
        raise DataError(f"{path}: the SRF contains NaN or Inf; fill every cell with a number (0 outside a band)")
    rows, cols = srf.shape
    if rows != hsi_channels:
        hint = " (is the table transposed?)" if cols == hsi_channels else ""
        raise DataError(f"{path}: the SRF has {rows} rows but the HSI cube has {hsi_channels} bands{hint}; "
                     "it needs one row per HSI band and one column per MSI band"
                     + _channels_first_hint(rows, cube_path, cube_shape))
    if cols >= rows:
        raise DataError(f"{path}: the SRF has {cols} MSI bands for {rows} HSI bands; the MSI must have "
                     "fewer bands than the HSI (rows = HSI bands, columns = MSI bands)")
    if np.any(srf < 0):
        r, c = np.argwhere(srf < 0)[0]
        raise DataError(f"{path}: negative SRF value {srf[r, c]:g} at HSI band {r}, MSI band {c}; "
                     "a spectral response is non-negative")
    zero = np.flatnonzero(~np.any(srf > 0, axis=0))
    if zero.size:
        raise DataError(f"{path}: SRF column(s) {zero.tolist()} are all zero; every MSI band must respond "
                     "to at least one HSI band (remove the column or fix its values)")
    first_last = support_range(srf)
    support = srf > 0
    lengths = first_last[:, 1] - first_last[:, 0] + 1
    gaps = np.flatnonzero(support.sum(axis=0) != lengths)
    if gaps.size:
        j = gaps[0]
        raise DataError(f"{path}: the support of MSI band {j} is not contiguous (HSI bands "
                     f"{np.flatnonzero(support[:, j]).tolist()}); SpeDnet learns one weight per band "
                     "between the first and the last responding band, so each support must be one run "
                     "of consecutive bands: fill the gap with small positive values or split the band")
    return normalise_srf(srf)


# ----------------------------------------------------------------------------- resampling

def hsi_range(hsi_wavelengths, hsi_fwhm=None):
    """The spectral range (nm) the HSI covers: from the first band's lower half-maximum to the last
    band's upper one when the FWHM is known, else from the first to the last band centre."""
    wl = np.asarray(hsi_wavelengths, dtype=np.float64)
    if hsi_fwhm is None:
        return float(wl[0]), float(wl[-1])
    fwhm = np.broadcast_to(np.asarray(hsi_fwhm, dtype=np.float64), wl.shape)
    return float(wl[0] - fwhm[0] / 2), float(wl[-1] + fwhm[-1] / 2)


def check_hsi_wavelengths(hsi_wavelengths, hsi_fwhm, hsi_channels, source):
    """The HSI band centres (and FWHM) as float64 nm arrays of length ``hsi_channels``.

    Raises DataError naming ``source`` when the centres are not a finite, strictly increasing vector
    of ``hsi_channels`` values, or the FWHM (a scalar or one per band) is not positive and finite.
    """
    wl = np.asarray(hsi_wavelengths, dtype=np.float64).ravel()
    if wl.size != hsi_channels:
        raise DataError(f"{source}: {wl.size} HSI band centres for a cube of {hsi_channels} bands; give one "
                     "centre (nm) per HSI band")
    if not np.all(np.isfinite(wl)) or np.any(np.diff(wl) <= 0):
        raise DataError(f"{source}: the HSI band centres must be finite and strictly increasing (nm)")
    return wl, None if hsi_fwhm is None else _fwhm_per_band(hsi_fwhm, wl.size, source)


def _fwhm_per_band(hsi_fwhm, bands, source):
    """``hsi_fwhm`` (one value or one per band, nm) as ``bands`` positive values; DataError otherwise."""
    fwhm = np.asarray(hsi_fwhm, dtype=np.float64).ravel()
    if fwhm.size not in (1, bands) or not np.all(np.isfinite(fwhm)) or np.any(fwhm <= 0):
        raise DataError(f"{source}: the HSI FWHM must be one positive value (nm) or one per band "
                     f"({bands}), got {fwhm.size} value(s)")
    return np.broadcast_to(fwhm, (bands,)).copy()


def trapezoid_weights(grid):
    """Weights w (N) with sum(w * f) equal to the trapezoid rule's integral of f sampled on ``grid``."""
    step = np.diff(grid)
    weights = np.zeros(len(grid))
    weights[:-1] += step / 2
    weights[1:] += step / 2
    return weights


def resample_srf(grid_nm, response, hsi_wavelengths, hsi_fwhm=None, *, band_names=None, source="the SRF"):
    """Resample a response sampled on its own wavelength grid to the HSI bands: C x Cm, columns sum 1.

    ``grid_nm``: N strictly increasing wavelengths (nm) of the response's rows; ``response``: N x Cm
    (or N) non-negative; ``hsi_wavelengths``: C band centres (nm); ``hsi_fwhm``: None, one FWHM (nm)
    or C of them. Which rule is used:

    - FWHM known: each HSI band is a Gaussian line shape of that FWHM with unit area, and
      S[c, m] = integral of response_m(l) g_c(l) dl by the trapezoid rule over the grid, computed for
      all bands at once as one matrix product (G * w) @ response. This is what the HSI band sees of
      the MSI band (the response averaged over the HSI band); it tends to point sampling as the FWHM
      goes to 0. The grid should be finer than the FWHM (published SRFs: 1-5 nm).
    - FWHM unknown: point sampling, linear interpolation of each response at the band centres;
      centres outside the grid get 0 (a published SRF is zero beyond its tabulated range).

    Then values below 1 % (``RESAMPLE_FLOOR``) of each column's peak are set to 0: measured SRFs have
    long low tails (and noise floors) and the Gaussian integration spreads every response further, so
    without a floor every MSI band's support would span nearly the whole HSI range, and SpeDnet would
    learn weights for hundreds of bands that carry almost none of the signal. Finally the columns are
    normalised to sum to 1.

    Raises DataError (naming ``source`` and the band) for a malformed grid or response, and for an MSI
    band with no response at any HSI band (its range lies outside the HSI's).
    """
    grid = np.asarray(grid_nm, dtype=np.float64).ravel()
    resp = np.asarray(response, dtype=np.float64)
    resp = resp[:, None] if resp.ndim == 1 else resp
    wl = np.asarray(hsi_wavelengths, dtype=np.float64).ravel()
    if grid.size < 2 or np.any(np.diff(grid) <= 0) or not np.all(np.isfinite(grid)):
        raise DataError(f"{source}: the response's wavelength grid must hold at least 2 finite, strictly "
                     "increasing values (nm)")
    if resp.ndim != 2 or resp.shape[0] != grid.size:
        raise DataError(f"{source}: the response has shape {resp.shape} for a grid of {grid.size} wavelengths; "
                     "it needs one row per wavelength and one column per MSI band")
    if not np.all(np.isfinite(resp)) or np.any(resp < 0):
        raise DataError(f"{source}: the response must be finite and non-negative (0 outside a band)")
    names = band_names or [f"MSI band {j + 1}" for j in range(resp.shape[1])]
    if hsi_fwhm is None:
        left = np.clip(np.searchsorted(grid, wl, side="right") - 1, 0, grid.size - 2)
        t = ((wl - grid[left]) / (grid[left + 1] - grid[left]))[:, None]
        out = resp[left] * (1 - t) + resp[left + 1] * t
        out[(wl < grid[0]) | (wl > grid[-1])] = 0
    else:
        fwhm = _fwhm_per_band(hsi_fwhm, wl.size, source)
        if fwhm.min() < 2 * np.diff(grid).max():
            log.warning("%s: the HSI FWHM (from %g nm) is under twice the response's grid step (up to %g nm): "
                        "the integration over the grid is coarse; a finer response table gives a better SRF",
                        source, fwhm.min(), np.diff(grid).max())
        sigma = (fwhm / FWHM_TO_SIGMA)[:, None]
        line_shapes = np.exp(-0.5 * ((grid[None, :] - wl[:, None]) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))
        out = (line_shapes * trapezoid_weights(grid)) @ resp
    peak = out.max(axis=0)
    empty = np.flatnonzero(peak <= 0)
    if empty.size:
        listed = ", ".join(f"{names[j]} (responds from {_response_span(grid, resp[:, j])})" for j in empty)
        raise DataError(f"{source}: no response at any HSI band for {listed}; the HSI covers "
                     f"{wl[0]:g}-{wl[-1]:g} nm. Remove those columns, or use an HSI that covers them")
    out[out < RESAMPLE_FLOOR * peak] = 0
    return normalise_srf(out)


def _response_span(grid, column):
    positive = np.flatnonzero(column > 0)
    if positive.size == 0:
        return "nowhere: the column is all zero"
    return f"{grid[positive[0]]:g} to {grid[positive[-1]]:g} nm"


# ----------------------------------------------------------------------------- reading tables

@dataclass
class SRFTable:
    """A spectral response table as read from a file, before it meets a cube.

    response: N x Cm float64, one column per MSI band; wavelengths: N row wavelengths in nm (from a
    wavelength column or a vector in the .mat) or None when the rows are the HSI bands; band_names:
    Cm MSI band names from a header row, or None; path: the file; key: the .mat variable used.
    """
    response: np.ndarray
    wavelengths: np.ndarray = None
    band_names: list = None
    path: str = ""
    key: str = None


def wavelength_unit(values, name=None):
    """'nm' or 'um' when ``values`` (strictly increasing) look like wavelengths, else None.

    A header ``name`` mentioning um/µm/micro or nm decides; otherwise all values > ``NM_FLOOR`` are nm,
    and at least 3 values within ``UM_RANGE`` in steps of at most ``UM_MAX_STEP`` are micrometres.
    """
    if name and MICROMETRE_HEADER.search(name):
        return "um"
    if name and re.search(r"\bnm\b|nanom", name, re.IGNORECASE):
        return "nm"
    if np.all(values > NM_FLOOR):
        return "nm"
    if (values.size >= 3 and UM_RANGE[0] <= values.min() and values.max() <= UM_RANGE[1]
            and np.max(np.diff(values)) <= UM_MAX_STEP):
        return "um"
    return None


def _as_wavelengths(values, name, path, what):
    """``values`` in nm if they are a wavelength grid (strictly increasing, nm or um), else None.

    A column whose header names a wavelength must be one: DataError otherwise.
    """
    named = bool(name and WAVELENGTH_HEADER.search(name))
    increasing = values.size >= 2 and np.all(np.isfinite(values)) and np.all(np.diff(values) > 0)
    unit = wavelength_unit(values, name) if increasing else None
    if unit is None:
        if named:
            raise DataError(f"{path}: {what} {name!r} is named as wavelengths but its values "
                         f"({values.min():g} to {values.max():g}) are not strictly increasing nanometres "
                         "or micrometres; fix the column or rename it")
        return None
    return values * 1000.0 if unit == "um" else values


def _table_from_matrix(matrix, header, path, key=None):
    """SRFTable of a numeric table whose first column may be the wavelength grid."""
    names = None if header is None else [str(v).strip() if v is not None else f"band {j + 1}"
                                         for j, v in enumerate(header)]
    first = names[0] if names else None
    wavelengths = _as_wavelengths(matrix[:, 0], first, path, "column 1") if matrix.shape[0] else None
    if wavelengths is None:
        return SRFTable(matrix, None, names, path, key)
    if matrix.shape[1] == 1:
        raise DataError(f"{path}: the table holds one column, strictly increasing from {wavelengths[0]:g} to "
                     f"{wavelengths[-1]:g} nm: it looks like band centres (wavelengths), not a spectral "
                     "response. Give one response column per MSI band (optionally after a wavelength "
                     "column); band centres go to --hsi_wavelengths")
    log.info("%s: column 1%s increases strictly from %g to %g nm: read as the wavelength of each of the %d "
             "rows; %d response column(s)", path, f" ({first!r})" if first else "", wavelengths[0],
             wavelengths[-1], matrix.shape[0], matrix.shape[1] - 1)
    return SRFTable(matrix[:, 1:], wavelengths, names[1:] if names else None, path, key)


def _is_vector(array):
    return np.ndim(array) == 1 or (np.ndim(array) == 2 and min(np.shape(array)) == 1)


def _mat_table(path, key, hsi_channels):
    """SRFTable of a .mat file: the table ``key``, else the only 2-D table (vectors never count), else
    the one with ``hsi_channels`` rows; a vector as long as the table's rows may give the wavelengths."""
    # Complex (a cast would drop the imaginary part), logical, text and empty variables are never the table.
    arrays = {k: np.asarray(v) for k, v in read_mat_arrays(path).items()
              if np.asarray(v).dtype.kind in "iuf" and np.size(v) > 0}
    shapes = ", ".join(f"{k} {np.shape(v)}" for k, v in arrays.items()) or "none"
    if key is not None:
        if key not in arrays:
            raise DataError(f"{path}: no numeric variable {key!r} (--srf_key); the numeric variables are: {shapes}")
        chosen = key
    else:
        tables = [k for k, v in arrays.items() if v.ndim == 2 and min(v.shape) > 1]
        if len(tables) > 1 and hsi_channels is not None:
            matching = [k for k in tables if arrays[k].shape[0] == hsi_channels]
            if len(matching) == 1:
                log.info("%s: SRF table %r, the 2-D variable with %d rows (the HSI bands)", path, matching[0],
                         hsi_channels)
                tables = matching
        if not tables:
            raise DataError(f"{path}: no 2-D table (the SRF, rows = HSI bands or wavelengths, columns = MSI "
                         f"bands) among the numeric variables: {shapes}")
        if len(tables) > 1:
            raise DataError(f"{path}: several 2-D tables ({', '.join(f'{k} {arrays[k].shape}' for k in tables)}), "
                         "cannot tell which is the SRF; pass --srf_key NAME with one of them")
        chosen = tables[0]
    value = arrays[chosen]
    if value.ndim > 2:
        raise DataError(f"{path}: variable {chosen!r} has shape {value.shape}; the SRF must be a 2-D table")
    matrix = (value.reshape(-1, 1) if _is_vector(value) else value).astype(np.float64)
    table = _table_from_matrix(matrix, None, path, chosen)
    if table.wavelengths is None:
        table.wavelengths = _wavelength_vector(arrays, chosen, table.response.shape[0], path)
    return table


def _wavelength_vector(arrays, chosen, rows, path):
    """The vector next to the table that holds its rows' wavelengths, or None (logged)."""
    candidates = {}
    for k, v in arrays.items():
        if k != chosen and _is_vector(v) and v.size == rows:
            wl = _as_wavelengths(v.ravel().astype(np.float64), None, path, "variable")
            if wl is not None:
                candidates[k] = wl
    if len(candidates) > 1:
        named = {k: v for k, v in candidates.items() if WAVELENGTH_HEADER.search(k)}
        candidates = named if len(named) == 1 else candidates
    if len(candidates) > 1:
        log.info("%s: vectors %s could each be the wavelengths of the %d rows of %r; none used",
                 path, sorted(candidates), rows, chosen)
        return None
    if candidates:
        (k, wl), = candidates.items()
        log.info("%s: vector %r (%g to %g nm) read as the wavelength of each row of %r", path, k, wl[0], wl[-1],
                 chosen)
        return wl
    return None


def load_srf(path, key=None, hsi_channels=None):
    """Read a spectral response table from .xls, .xlsx, .csv, .txt, .npy or .mat, as it is stored.

    Rows are the HSI bands or the response's own wavelength grid, columns the MSI bands. Detected and
    logged (logger "fusion"): a header row of text (kept as the MSI band names); a first column that
    increases strictly through wavelengths (all > 100: nm; within 0.2-3: micrometres, converted; or a
    header naming it 'wavelength', 'wl', 'nm', 'um'), which becomes ``wavelengths``. Empty cells are 0.
    In a .mat file: the variable ``key`` (``--srf_key``), else the only 2-D table (1 x N and N x 1
    vectors are not tables), else the one with ``hsi_channels`` rows; a vector as long as the table's
    rows that looks like wavelengths gives them.

    Returns an ``SRFTable`` (response N x Cm float64). Raises DataError naming the file: missing or
    unreadable file, unknown extension, a cell that is not a number (with its line and column, or
    its sheet and Excel cell), a table that is only a wavelength column ("looks like band centres"),
    an ambiguous .mat (listing the tables and saying "pass --srf_key NAME").
    """
    if not os.path.isfile(path):
        raise DataError(f"{path}: spectral response file not found; put the SRF table there "
                     f"(one of {', '.join(SRF_EXTENSIONS)}) or set --sp_root_path")
    ext = os.path.splitext(path)[1].lower()
    if ext in TEXT_EXTENSIONS + EXCEL_EXTENSIONS:
        cells = read_cells(path, "SRF table")
        header = cells.header()
        first = 0 if header is None else 1
        if len(cells.rows) <= first:
            raise DataError(f"{path}: no rows of numbers; the SRF table needs one row per HSI band (or per "
                         "wavelength) and one column per MSI band")
        matrix = numeric_rows(cells, first, path, "SRF table")
        if header is not None:
            log.info("%s: header row read as the column names %s", path, header)
        return _table_from_matrix(matrix, header, path)
    if ext == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except Exception as exc:
            raise DataError(f"{path}: not a readable .npy array ({exc}); save it with numpy.save") from exc
        if array.ndim not in (1, 2) or array.dtype.kind not in "iuf" or array.size == 0:
            raise DataError(f"{path}: the SRF must be a non-empty 2-D real numeric table (rows = HSI bands, "
                         f"columns = MSI bands), got an array of shape {array.shape} and type {array.dtype}")
        return _table_from_matrix(array.reshape(array.shape[0], -1).astype(np.float64), None, path)
    if ext == ".mat":
        return _mat_table(path, key, hsi_channels)
    raise DataError(f"{path}: unknown SRF format {ext!r}; use one of {', '.join(SRF_EXTENSIONS)}")


def find_srf_file(sp_root_path, data_name):
    """The SRF file ``<sp_root_path>/<data_name>.<ext>`` (ext in ``SRF_EXTENSIONS``); exactly one must
    exist, else DataError."""
    found = [os.path.join(sp_root_path, data_name + ext) for ext in SRF_EXTENSIONS
             if os.path.isfile(os.path.join(sp_root_path, data_name + ext))]
    if not found:
        raise DataError(f"{os.path.join(sp_root_path, data_name)}.*: no spectral response file for data set "
                     f"{data_name!r}; add {data_name}{'/'.join(SRF_EXTENSIONS)} to {sp_root_path} "
                     "(rows = HSI bands, columns = MSI bands) or set --sp_root_path / --data_name")
    if len(found) > 1:
        raise DataError(f"{sp_root_path}: several spectral response files for {data_name!r} ({found}); keep one")
    return found[0]


# ----------------------------------------------------------------------------- table -> SRF for a cube

def srf_for_hsi(table, hsi_channels, hsi_wavelengths=None, hsi_fwhm=None, cube_path=None, cube_shape=None):
    """The C x Cm SRF (columns sum to 1) of ``table`` for an HSI of ``hsi_channels`` bands, and the MSI
    band names (the table's header, or None).

    - The table has no wavelengths: its rows are the HSI bands.
    - It has wavelengths, N == C rows, and the HSI band centres are unknown: the rows are taken as the
      HSI bands (the wavelengths label them; logged).
    - It has wavelengths and the HSI centres (nm) are known: used as they are when the grid is the
      HSI's (within 0.5 nm), else resampled with ``resample_srf`` (integration against each band's
      Gaussian when ``hsi_fwhm`` is known, else point sampling; logged). A response partly outside the
      HSI's range is logged as a warning.
    - It has its own grid (N != C) and the HSI centres are unknown: DataError asking for
      --hsi_wavelengths.
    ``validate_srf`` is the final check (``cube_path`` / ``cube_shape`` let it recognise a
    channels-first cube). Raises DataError naming ``table.path``.
    """
    path, grid = table.path, table.wavelengths
    if hsi_wavelengths is not None:
        hsi_wavelengths, hsi_fwhm = check_hsi_wavelengths(hsi_wavelengths, hsi_fwhm, hsi_channels,
                                                          "--hsi_wavelengths")
    if grid is None:
        return validate_srf(table.response, hsi_channels, path, cube_path, cube_shape), table.band_names
    rows = grid.size
    if hsi_wavelengths is None:
        if rows != hsi_channels:
            raise DataError(f"{path}: the SRF is sampled on {rows} wavelengths from {grid[0]:g} to {grid[-1]:g} nm "
                         f"but the HSI band centres are unknown: pass --hsi_wavelengths FILE (one centre in nm "
                         f"per HSI band, {hsi_channels} of them) so it can be resampled to the HSI bands")
        log.info("%s: %d rows, as many as the HSI bands: taken as the HSI bands (%g to %g nm)", path, rows,
                 grid[0], grid[-1])
        return validate_srf(table.response, hsi_channels, path, cube_path, cube_shape), table.band_names
    if rows == hsi_channels and np.max(np.abs(grid - hsi_wavelengths)) <= SAME_GRID_NM:
        log.info("%s: the table's wavelengths are the HSI band centres: rows used as they are", path)
        return validate_srf(table.response, hsi_channels, path, cube_path, cube_shape), table.band_names
    rule = "integrated against each HSI band's Gaussian (FWHM given)" if hsi_fwhm is not None \
        else "linearly interpolated at the HSI band centres (no FWHM given)"
    log.info("%s: the response, sampled on %d wavelengths from %g to %g nm, is %s", path, rows, grid[0],
             grid[-1], rule)
    srf = resample_srf(grid, table.response, hsi_wavelengths, hsi_fwhm, band_names=table.band_names, source=path)
    _warn_outside(table, hsi_range(hsi_wavelengths, hsi_fwhm))  # after resample_srf refused NaN, Inf, negatives
    return validate_srf(srf, hsi_channels, path, cube_path, cube_shape), table.band_names


def _warn_outside(table, covered):
    """Log a warning for each MSI band whose response lies more than 1 % outside the HSI's range."""
    grid, resp = table.wavelengths, table.response
    weights = trapezoid_weights(grid)[:, None]
    total = (weights * resp).sum(axis=0)
    inside = (weights * resp * ((grid >= covered[0]) & (grid <= covered[1]))[:, None]).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        outside = 1 - inside / total
    names = table.band_names or [f"MSI band {j + 1}" for j in range(resp.shape[1])]
    for j in np.flatnonzero(outside > RESAMPLE_FLOOR):
        log.warning("%s: %.0f %% of %s's response lies outside the HSI range %g-%g nm; the HSI cannot "
                    "reproduce that part of the band", table.path, 100 * outside[j], names[j], *covered)
