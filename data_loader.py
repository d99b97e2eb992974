"""Reading reference cubes and spectral responses, and simulating the LR-HSI / HR-MSI pair by Wald's protocol.

Array conventions: numpy cubes are H x W x C; the tensors handed to the networks are C x H x W float32.
A PSF passed to ``spatial_degrade`` is a convolution kernel (as in MATLAB ``conv2`` or
``scipy.signal.convolve2d``: it is flipped before it meets the image). The learned PSF of SpaDnet
is a correlation kernel (as ``torch.nn.Conv2d``). For the symmetric Gaussian PSF both are the same.
"""
import glob
import os

import h5py
import numpy as np
import scipy.io
import torch

from config import FWHM_TO_SIGMA

CUBE_EXTENSIONS = (".mat", ".npy")
SRF_EXTENSIONS = (".xls", ".csv", ".txt", ".npy", ".mat")
UPSTREAM_CUBE_KEY = "REF"
# WorldView-2 multispectral band ranges (nm): coastal, blue, green, yellow, red, red edge, NIR1, NIR2.
WORLDVIEW2_BANDS = ((400, 450), (450, 510), (510, 580), (585, 625), (630, 690), (705, 745), (770, 895), (860, 1040))


class DataError(ValueError):
    """Bad input data: the message names the file, what is wrong and how to fix it."""


# ----------------------------------------------------------------------------- degradation model

def gaussian_psf(size, sigma):
    """Isotropic Gaussian PSF with MATLAB ``fspecial('gaussian', size, sigma)`` semantics.

    h(x, y) = exp(-(x^2 + y^2) / (2 sigma^2)) on a size x size grid centred at 0; values below
    eps * max(h) are zeroed, then h is normalised to sum to 1.
    """
    half = (size - 1) / 2.0
    y, x = np.ogrid[-half:half + 1, -half:half + 1]
    h = np.exp(-(x * x + y * y) / (2.0 * sigma * sigma))
    h[h < np.finfo(h.dtype).eps * h.max()] = 0
    return h / h.sum()


def spatial_degrade(cube, psf, r):
    """LR = blur each disjoint r x r block with ``psf`` (convolution) and keep one value per block.

    Equal to ``scipy.signal.convolve2d(band, psf, 'valid')[::r, ::r]`` for every band, computed for
    all bands at once: the kernel size equals the stride, so the blocks do not overlap and the
    operation is a reshape followed by one contraction.
    """
    psf = np.asarray(psf)
    if psf.shape != (r, r):
        raise ValueError(f"PSF shape {psf.shape} does not match the scale factor {r}: expected ({r}, {r})")
    h, w = cube.shape[:2]
    hl, wl = h // r, w // r
    blocks = cube[:hl * r, :wl * r].reshape(hl, r, wl, r, *cube.shape[2:])
    return np.einsum("aibj...,ij->ab...", blocks, psf[::-1, ::-1])


def spectral_degrade(cube, srf):
    """MSI = cube x SRF: each MSI band is a weighted sum of the HSI bands (SRF is C x Cm)."""
    return cube @ srf


def crop_to_multiple(cube, r):
    """Crop centrally so height and width are multiples of r (the upstream split: the extra pixel
    of an odd remainder is removed at the bottom/right)."""
    h, w = cube.shape[:2]
    rh, rw = h % r, w % r
    return cube[rh // 2:h - (rh - rh // 2), rw // 2:w - (rw - rw // 2)]


def add_noise(cube, snr_db, rng):
    """Additive white Gaussian noise at ``snr_db`` per band: sigma_c^2 = mean(band_c^2) / 10^(snr/10)."""
    power = np.mean(cube ** 2, axis=(0, 1), keepdims=True)
    sigma = np.sqrt(power / 10.0 ** (snr_db / 10.0))
    return cube + sigma * rng.standard_normal(cube.shape)


# ----------------------------------------------------------------------------- spectral responses

def normalise_srf(srf):
    """Scale each column (MSI band) to sum to 1, as the upstream loader does."""
    return srf / srf.sum(axis=0, keepdims=True)


def support_range(srf):
    """First and last HSI band of each MSI band's support (rows where the response is > 0), Cm x 2 ints."""
    positive = srf > 0
    first = positive.argmax(axis=0)
    last = srf.shape[0] - 1 - positive[::-1].argmax(axis=0)
    return np.stack([first, last], axis=1)


def srf_from_bands(hsi_wavelengths, msi_bands, shape="gaussian"):
    """SRF matrix (HSI bands x MSI bands, columns summing to 1) of a sensor given its band ranges.

    ``msi_bands``: sequence of (low, high) in the unit of ``hsi_wavelengths``.
    'rect': response 1 for HSI bands whose centre lies in [low, high].
    'gaussian': a Gaussian centred on the band with FWHM = high - low, kept within one FWHM of the
    centre (response >= 1/16 of the peak) so that each support stays contiguous and finite.
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


def validate_srf(srf, hsi_channels, path):
    """Check an SRF matrix read from ``path`` against the HSI cube and return it normalised."""
    if srf.ndim != 2:
        raise DataError(f"{path}: the SRF must be a 2-D table (rows = HSI bands, columns = MSI bands), "
                        f"got an array of shape {srf.shape}")
    if not np.all(np.isfinite(srf)):
        raise DataError(f"{path}: the SRF contains NaN or Inf; fill every cell with a number (0 outside a band)")
    rows, cols = srf.shape
    if rows != hsi_channels:
        hint = " (is the table transposed?)" if cols == hsi_channels else ""
        raise DataError(f"{path}: the SRF has {rows} rows but the HSI cube has {hsi_channels} bands{hint}; "
                        "it needs one row per HSI band and one column per MSI band")
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


def load_srf(path):
    """Read an SRF table (rows = HSI bands, columns = MSI bands) from .xls, .csv, .txt, .npy or .mat."""
    if not os.path.isfile(path):
        raise DataError(f"{path}: spectral response file not found; put the SRF table there "
                        f"(one of {', '.join(SRF_EXTENSIONS)}) or set --sp_root_path")
    ext = os.path.splitext(path)[1].lower()
    try:
        if ext == ".xls":
            import xlrd
            sheet = xlrd.open_workbook(path).sheet_by_index(0)
            srf = np.array([sheet.col_values(j) for j in range(sheet.ncols)], dtype=np.float64).T
        elif ext in (".csv", ".txt"):
            with open(path) as f:
                delimiter = "," if "," in "".join(line for line in f if not line.startswith("#")) else None
            srf = np.loadtxt(path, delimiter=delimiter, ndmin=2)
        elif ext == ".npy":
            srf = np.load(path)
        elif ext == ".mat":
            srf = _single_array(_read_mat(path), path, ndim=2, what="SRF matrix")
        else:
            raise DataError(f"{path}: unknown SRF format {ext!r}; use one of {', '.join(SRF_EXTENSIONS)}")
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{path}: could not read the SRF table ({exc}); it must be a numeric table "
                        "with rows = HSI bands and columns = MSI bands") from exc
    return np.asarray(srf, dtype=np.float64)


def find_srf_file(sp_root_path, data_name):
    """The SRF file ``<sp_root_path>/<data_name>.<ext>``; exactly one must exist."""
    found = [os.path.join(sp_root_path, data_name + ext) for ext in SRF_EXTENSIONS
             if os.path.isfile(os.path.join(sp_root_path, data_name + ext))]
    if not found:
        raise DataError(f"{os.path.join(sp_root_path, data_name)}.*: no spectral response file for data set "
                        f"{data_name!r}; add {data_name}.xls/.csv/.txt/.npy/.mat to {sp_root_path} "
                        "(rows = HSI bands, columns = MSI bands) or set --sp_root_path / --data_name")
    if len(found) > 1:
        raise DataError(f"{sp_root_path}: several spectral response files for {data_name!r} ({found}); keep one")
    return found[0]


# ----------------------------------------------------------------------------- cubes

def _read_mat(path):
    """All arrays of a MATLAB file, v5 (scipy) or v7.3 (HDF5, axes reversed back to MATLAB's order)."""
    if h5py.is_hdf5(path):
        with h5py.File(path, "r") as f:
            # MATLAB writes column-major, so h5py sees the axes reversed: transposing restores H x W x C.
            return {k: np.asarray(v).T for k, v in f.items() if isinstance(v, h5py.Dataset)}
    try:
        return {k: v for k, v in scipy.io.loadmat(path).items() if not k.startswith("__")}
    except Exception as exc:
        raise DataError(f"{path}: not a readable MATLAB file ({exc}); save it with MATLAB's save "
                        "(v5/v7 or -v7.3) or as .npy") from exc


def _single_array(arrays, path, ndim, what, key=None):
    if key is not None:
        if key not in arrays:
            raise DataError(f"{path}: no variable {key!r}; found {sorted(arrays)}")
        return arrays[key]
    if ndim == 3 and UPSTREAM_CUBE_KEY in arrays:
        return arrays[UPSTREAM_CUBE_KEY]
    candidates = [k for k, v in arrays.items() if np.ndim(v) == ndim and np.issubdtype(np.asarray(v).dtype, np.number)]
    if len(candidates) == 1:
        return arrays[candidates[0]]
    shapes = {k: np.shape(v) for k, v in arrays.items()}
    if not candidates:
        raise DataError(f"{path}: no {ndim}-D numeric array (the {what}) found; variables: {shapes}")
    raise DataError(f"{path}: several {ndim}-D arrays {candidates}, cannot tell which is the {what}; "
                    f"name it {UPSTREAM_CUBE_KEY!r} or keep only one (variables: {shapes})")


def load_cube(path, key=None):
    """Read an H x W x C reference cube (float64) from a .mat (v5 or v7.3) or .npy file.

    The variable is ``key`` if given, else 'REF' (the upstream name), else the only 3-D array.
    A cube with NaN or Inf is rejected here, so every caller is protected.
    """
    if not os.path.isfile(path):
        raise DataError(f"{path}: cube file not found; check --default_datapath and --data_name")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npy":
        cube = np.load(path)
        if cube.ndim != 3:
            raise DataError(f"{path}: expected an H x W x C array, got shape {cube.shape}")
    elif ext == ".mat":
        cube = _single_array(_read_mat(path), path, ndim=3, what="hyperspectral cube", key=key)
    else:
        raise DataError(f"{path}: unknown cube format {ext!r}; use .mat (v5 or v7.3) or .npy")
    cube = np.asarray(cube, dtype=np.float64)
    if cube.ndim != 3:
        raise DataError(f"{path}: expected an H x W x C array, got shape {cube.shape}")
    bad = ~np.isfinite(cube)
    if bad.any():
        raise DataError(f"{path}: the cube has {int(bad.sum())} NaN or Inf values (first at index "
                        f"{tuple(int(i) for i in np.argwhere(bad)[0])}); fill or remove them before fusion")
    return cube


# ----------------------------------------------------------------------------- Wald's protocol

def radiometric_mismatch(msi, gamma=1.0, gain_jitter=0.0, offset_jitter=0.0, rng=None):
    """A second sensor's radiometry: per band, gain_c * msi^gamma + offset_c, with gain_c drawn
    uniformly in 1 +- gain_jitter and offset_c in +- offset_jitter."""
    rng = rng or np.random.default_rng(0)
    bands = msi.shape[-1]
    gain = 1 + gain_jitter * rng.uniform(-1, 1, bands)
    offset = offset_jitter * rng.uniform(-1, 1, bands)
    return gain * np.clip(msi, 0, None) ** gamma + offset


def simulate_pair(reference, srf, psf, r, msi_radiometry=None):
    """Wald's protocol: from a reference H x W x C cube, the LR-HSI Y = P X and HR-MSI Z = X S,
    with the two LR-MSIs that the degradation networks must agree on (Z P and Y S).
    ``msi_radiometry`` (a function of the MSI) simulates an MSI sensor whose radiometry differs."""
    lhsi = spatial_degrade(reference, psf, r)
    hmsi = spectral_degrade(reference, srf)
    if msi_radiometry is not None:
        hmsi = msi_radiometry(hmsi)
    return {
        "lhsi": lhsi,
        "hmsi": hmsi,
        "hhsi": reference,
        "lrmsi_frommsi": spatial_degrade(hmsi, psf, r),
        "lrmsi_fromlrhsi": spectral_degrade(lhsi, srf),
    }


def _mismatch_of(args):
    """The --msi_gamma / --msi_gain_jitter / --msi_offset_jitter simulation, or None when all are neutral."""
    gamma, gain, offset = (getattr(args, "msi_gamma", 1.0), getattr(args, "msi_gain_jitter", 0.0),
                           getattr(args, "msi_offset_jitter", 0.0))
    if (gamma, gain, offset) == (1.0, 0.0, 0.0):
        return None
    return lambda msi: radiometric_mismatch(msi, gamma, gain, offset, np.random.default_rng(getattr(args, "seed", 0)))


def to_tensor(cube):
    """H x W x C numpy -> C x H x W float32 tensor."""
    return torch.from_numpy(np.ascontiguousarray(cube.transpose(2, 0, 1), dtype=np.float32))


class Dataset(torch.utils.data.Dataset):
    """Every cube in ``<default_datapath>/<data_name>/`` turned into a simulated LR-HSI / HR-MSI pair.

    Upstream-compatible attributes: hsi_channel, msi_channel, sp_matrix (C x Cm, columns sum to 1),
    sp_range (Cm x 2, first and last HSI band of each MSI band), PSF (r x r Gaussian, FWHM = r).
    Items are dicts of C x H x W float32 tensors with keys lhsi, hmsi, hhsi, lrmsi_frommsi,
    lrmsi_fromlrhsi. Optional noise (``snr_hsi``/``snr_msi`` in dB) is added to the LR-HSI / HR-MSI only;
    an optional radiometric mismatch (``msi_gamma``, ``msi_gain_jitter``, ``msi_offset_jitter``) makes
    the HR-MSI come from a sensor whose radiometry differs from the HSI's.
    """

    def __init__(self, args):
        super().__init__()
        r = args.scale_factor
        folder = os.path.join(args.default_datapath, args.data_name)
        if not os.path.isdir(folder):
            raise DataError(f"{folder}: data folder not found; put the reference cube(s) of data set "
                            f"{args.data_name!r} there or set --default_datapath / --data_name")
        self.imgpath_list = sorted(p for p in glob.glob(os.path.join(folder, "*"))
                                   if os.path.splitext(p)[1].lower() in CUBE_EXTENSIONS)
        if not self.imgpath_list:
            raise DataError(f"{folder}: no cube file (.mat or .npy) in the data folder")
        srf_path = find_srf_file(args.sp_root_path, args.data_name)
        raw_srf = load_srf(srf_path)

        self.PSF = gaussian_psf(r, args.sigma)
        self.items = []
        rng = np.random.default_rng(getattr(args, "seed", 0))
        for path in self.imgpath_list:
            cube = load_cube(path)
            if min(cube.shape[:2]) < r:
                raise DataError(f"{path}: the cube is {cube.shape[0]} x {cube.shape[1]} pixels, smaller than "
                                f"the scale factor {r}; use a larger image or a smaller --scale_factor")
            if not hasattr(self, "sp_matrix"):
                self.sp_matrix = validate_srf(raw_srf, cube.shape[2], srf_path)
            elif cube.shape[2] != self.sp_matrix.shape[0]:
                raise DataError(f"{path}: {cube.shape[2]} bands, but the other cubes and the SRF have "
                                f"{self.sp_matrix.shape[0]}; keep one sensor per data folder")
            pair = simulate_pair(crop_to_multiple(cube, r), self.sp_matrix, self.PSF, r,
                                 msi_radiometry=_mismatch_of(args))
            if getattr(args, "snr_hsi", None) is not None:
                pair["lhsi"] = add_noise(pair["lhsi"], args.snr_hsi, rng)
            if getattr(args, "snr_msi", None) is not None:
                pair["hmsi"] = add_noise(pair["hmsi"], args.snr_msi, rng)
            self.items.append({k: to_tensor(v) for k, v in pair.items()})
        self.sp_range = support_range(self.sp_matrix)
        self.hsi_channel, self.msi_channel = self.sp_matrix.shape

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]
