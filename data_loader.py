"""Reading reference cubes and spectral responses, and simulating the LR-HSI / HR-MSI pair by Wald's protocol.

Array conventions: numpy cubes are H x W x C; the tensors handed to the networks are C x H x W float32.
The degradations themselves (PSF, Y = X P, Z = X S) are ``model.degradation``'s.
"""
import glob
import logging
import os
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from imagery.alignment import align_to_lr_grid, georeferenced, onto_hr_grid
from imagery.errors import DataError  # noqa: F401 (re-exported: callers catch data_loader.DataError)
from imagery.geometry import infer_scale
from imagery.radiometry import (band_extrema, block_all, empty_bands, fill_invalid, invalid_pixels, power_of_ten_scale,
                                replicate, scale_in_place, undeclared_fill)
from imagery.readers import FILL_MAGNITUDE, invalid_values, read_image, read_wavelengths
from imagery.registration import check_registration, measure_shift, shift_hr_msi
from imagery.sensors import check_band_count, read_band_ranges, select_bands, sensor_bands, srf_from_sensor
from imagery.spectral_response import (SRF_EXTENSIONS, SRFTable, find_srf_file, load_srf, normalise_srf,  # noqa: F401
                                       srf_for_hsi, srf_from_bands, support_range, validate_srf)
from model.degradation import simulation_psf, spatial_degrade, spectral_degrade

CUBE_EXTENSIONS = (".mat", ".npy", ".h5", ".hdf5", ".hdr", ".tif", ".tiff")
MIN_LR_PIXELS = 2  # an LR-HSI needs at least 2 x 2 pixels: a 1 x 1 image has no spatial structure to learn from
# A real pair holding more values than this (LR-HSI and HR-MSI together) reaches the networks as tensors
# that share the pair's float32 arrays (to_tensor's ``share``) instead of contiguous copies: 2^26 values
# (256 MiB in float32) is far above the papers' scenes (UDALN's Houston 2018 pair, 240 x 240 HR pixels and
# 46 bands: 0.6 M values; the embedded example: 0.2 M) and far below a whole scene (a 1600 x 1600 x 166
# LR-HSI alone: 425 M), so the papers' results keep today's contiguous tensors bit for bit.
LARGE_PAIR_VALUES = 1 << 26
log = logging.getLogger(__name__)


def crop_to_multiple(cube, r, with_offsets=False):
    """Crop centrally so height and width are multiples of r (the upstream split: the extra pixel
    of an odd remainder is removed at the bottom/right). ``with_offsets`` also returns the rows and
    columns removed as (top, bottom, left, right)."""
    h, w = cube.shape[:2]
    rh, rw = h % r, w % r
    offsets = (rh // 2, rh - rh // 2, rw // 2, rw - rw // 2)
    cropped = cube[offsets[0]:h - offsets[1], offsets[2]:w - offsets[3]]
    return (cropped, offsets) if with_offsets else cropped


def add_noise(cube, snr_db, rng):
    """Additive white Gaussian noise at ``snr_db`` per band: sigma_c^2 = mean(band_c^2) / 10^(snr/10)."""
    power = np.mean(cube ** 2, axis=(0, 1), keepdims=True)
    sigma = np.sqrt(power / 10.0 ** (snr_db / 10.0))
    return cube + sigma * rng.standard_normal(cube.shape)


# ----------------------------------------------------------------------------- cubes

def load_cube(path, key=None, nodata=None, mask_invalid=False):
    """Read an H x W x C reference cube (rows, columns, bands; float64, values as stored): the data of
    ``read_cube``, which says what is read and refused."""
    return read_cube(path, key, nodata, mask_invalid).data


def read_cube(path, key=None, nodata=None, mask_invalid=False):
    """Read a reference cube file into an ``imagery.readers.Image``: ``data`` the H x W x C cube (rows,
    columns, bands; float64, values as stored), with the file's metadata (band centres and FWHM in nm
    when it declares them, e.g. a .mat file's 'wavelengths' vector; its no-data value).

    Any format of ``imagery.readers.read_image``: MATLAB .mat (v5/v7 or v7.3), HDF5, .npy, ENVI,
    GeoTIFF. In a .mat/HDF5 file the variable is ``key`` (--cube_key) if given, else 'REF' (the
    upstream name), else the only 3-D array.
    Invalid values (``imagery.readers.invalid_values``: NaN, Inf, fill values of magnitude above
    1e30, and the no-data value: ``nodata`` if given, else the one the file declares) are refused
    here, so every caller is protected; with ``mask_invalid`` they are returned as NaN instead and
    the caller leaves them out. Raises DataError naming the file (for invalid values: their count,
    kinds and the first index (h, w, c)).
    """
    if not os.path.exists(path):
        raise DataError(f"{path}: cube file not found; check --default_datapath and --data_name")
    image = read_image(path, key=key, role="reference cube", key_option="--cube_key")
    cube = image.data
    nodata = image.nodata if nodata is None else nodata
    bad = invalid_values(cube, nodata)
    undeclared = undeclared_fill(cube) & ~bad if nodata is None else np.zeros_like(bad)
    bad |= undeclared
    if not bad.any():
        return image
    if mask_invalid:
        cube[bad] = np.nan
        return image
    count, finite = int(bad.sum()), np.isfinite(cube)
    fill = np.count_nonzero(np.abs(cube[finite]) > FILL_MAGNITUDE)
    kinds = {"NaN or Inf": np.count_nonzero(~finite), f"fill values of magnitude above {FILL_MAGNITUDE:g}": fill,
             "undeclared fill values (-9999, -32768, -32767, or one negative value in every band of a pixel)":
                 int(undeclared.sum())}
    if nodata is not None:
        kinds[f"equal to the no-data value {nodata:g}"] = count - sum(kinds.values())
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    raise DataError(f"{path}: the reference cube has {count} invalid value{'s' if count > 1 else ''} "
                    f"({', '.join(f'{n} {kind}' for kind, n in kinds.items() if n)}), the first at index "
                    f"(h, w, c) = {first} (value {cube[first]:g}); fill or remove them, give --nodata V for an "
                    "undeclared fill value, or pass --mask_invalid to leave those pixels out of training and "
                    "metrics")


# ----------------------------------------------------------------------------- Wald's protocol

def radiometric_mismatch(msi, gamma=1.0, gain_jitter=0.0, offset_jitter=0.0, rng=None, gain=1.0):
    """A second sensor's radiometry: per band, gain_c * msi^gamma + offset_c, with gain_c drawn
    uniformly in gain * (1 +- gain_jitter) and offset_c in +- offset_jitter (``msi``: H x W x Cm)."""
    rng = rng or np.random.default_rng(0)
    bands = msi.shape[-1]
    gain = gain * (1 + gain_jitter * rng.uniform(-1, 1, bands))
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
    """The --msi_gain / --msi_gamma / --msi_gain_jitter / --msi_offset_jitter simulation, or None when all
    are neutral."""
    gamma, jitter, offset, gain = (getattr(args, "msi_gamma", 1.0), getattr(args, "msi_gain_jitter", 0.0),
                                   getattr(args, "msi_offset_jitter", 0.0), getattr(args, "msi_gain", 1.0))
    if (gamma, jitter, offset, gain) == (1.0, 0.0, 0.0, 1.0):
        return None
    return lambda msi: radiometric_mismatch(msi, gamma, jitter, offset, np.random.default_rng(getattr(args, "seed", 0)),
                                            gain=gain)


def to_tensor(cube, share=False):
    """H x W x C numpy array -> C x H x W float32 tensor: a contiguous copy, unless ``share`` is True
    and ``cube`` is a C-contiguous float32 array, when the tensor is a view of ``cube``'s memory (no
    copy: writing one changes the other), permuted to C x H x W. Such a view's memory is
    channels-last (strides (1, W C, C); with a leading [None], torch.channels_last), which torch's
    convolutions take as it is but may round differently from the contiguous layout, hence a copy
    by default."""
    if share and cube.dtype == np.float32 and cube.flags.c_contiguous:
        return torch.from_numpy(cube).permute(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(cube.transpose(2, 0, 1), dtype=np.float32))


class Dataset(torch.utils.data.Dataset):
    """The cubes in ``<default_datapath>/<data_name>/``, each turned into a simulated LR-HSI / HR-MSI pair.

    Upstream-compatible attributes: hsi_channel, msi_channel, sp_matrix (C x Cm, columns sum to 1),
    sp_range (Cm x 2, first and last HSI band of each MSI band), PSF (the convolution kernel of
    ``simulation_psf``: r x r Gaussian, FWHM = r, unless --sim_psf_size / --sim_psf_shift say otherwise);
    msi_band_names (the SRF table's header, or None); wavelengths, fwhm: the C HSI band centres and
    widths in nm (--hsi_wavelengths, else the first cube file's own, e.g. a .mat file's 'wavelengths'
    vector; None when unknown) and wavelength_source (the file they come from, or None).
    Items are dicts of C x H x W float32 tensors with keys lhsi, hmsi, hhsi, lrmsi_frommsi,
    lrmsi_fromlrhsi, plus ``factor`` (the scaling rule's factor, imagery.radiometry), ``hr_valid`` /
    ``lr_valid`` / ``out_valid`` (H x W and h x w bool masks, None when every pixel is valid) and
    ``info`` (crop offsets, masked pixels, constant bands, the band centres' source, for metrics.json).
    Optional noise (``snr_hsi``/``snr_msi`` in dB) is added to the LR-HSI / HR-MSI only; an optional radiometric
    mismatch (``msi_gain``, ``msi_gamma``, ``msi_gain_jitter``, ``msi_offset_jitter``) makes the HR-MSI come from a
    sensor whose radiometry differs from the HSI's.

    Only the cube selected by ``image_index`` is read when the data set is built (other files in the
    folder, e.g. a label map, are not touched); other items are read when indexed.
    """

    def __init__(self, args):
        super().__init__()
        self.args = args
        folder = os.path.join(args.default_datapath, args.data_name)
        if not os.path.isdir(folder):
            raise DataError(f"{folder}: data folder not found; put the reference cube(s) of data set "
                            f"{args.data_name!r} there or set --default_datapath / --data_name (relative "
                            f"paths are taken from the current folder, {os.getcwd()})")
        self.imgpath_list = sorted(p for p in glob.glob(os.path.join(folder, "*"))
                                   if os.path.splitext(p)[1].lower() in CUBE_EXTENSIONS)
        if not self.imgpath_list:
            raise DataError(f"{folder}: no cube file ({', '.join(CUBE_EXTENSIONS)}) in the data folder")
        index = getattr(args, "image_index", 0)
        if not 0 <= index < len(self.imgpath_list):
            raise DataError(f"--image_index {index}: the data folder has {len(self.imgpath_list)} cube(s) "
                            f"({', '.join(self.imgpath_list)})")
        self.srf_path = find_srf_file(args.sp_root_path, args.data_name)
        self.PSF = simulation_psf(args.scale_factor, args.sigma, getattr(args, "sim_psf_size", 0) or None,
                                  getattr(args, "sim_psf_shift", 0))
        self.items = {}
        self[index]
        self.sp_range = support_range(self.sp_matrix)
        self.hsi_channel, self.msi_channel = self.sp_matrix.shape

    def __len__(self):
        return len(self.imgpath_list)

    def __getitem__(self, index):
        if index not in self.items:
            self.items[index] = self._simulate(self.imgpath_list[index])
        return self.items[index]

    def _spectral_response(self, image):
        """The SRF, read and checked against the first cube read (the others must have as many bands),
        and with it the band centres (``_band_centres``)."""
        cube, path = image.data, image.path
        if not hasattr(self, "sp_matrix"):
            self.wavelengths, self.fwhm, self.wavelength_source = self._band_centres(image)
            table = load_srf(self.srf_path, getattr(self.args, "srf_key", None), cube.shape[2])
            self.sp_matrix, self.msi_band_names = srf_for_hsi(table, cube.shape[2], self.wavelengths, self.fwhm,
                                                              cube_path=path, cube_shape=cube.shape)
        elif cube.shape[2] != self.sp_matrix.shape[0]:
            raise DataError(f"{path}: {cube.shape[2]} bands, but the other cubes and the SRF have "
                            f"{self.sp_matrix.shape[0]}; keep one sensor per data folder")
        return self.sp_matrix

    def _band_centres(self, image):
        """(centres, FWHM, source) of the cube ``image`` (imagery.readers.Image), as for a real pair's
        LR-HSI: the file --hsi_wavelengths when given (logged when the cube's file declares its own),
        else the cube file's (e.g. a .mat file's 'wavelengths' vector); float64 vectors of C values in
        nm, or None, and the file they come from (None when unknown)."""
        hsi_wavelengths = getattr(self.args, "hsi_wavelengths", None)
        if hsi_wavelengths:
            if image.wavelengths is not None:
                log.info("%s: using the band centres of --hsi_wavelengths %s, not the file's own", image.path,
                         hsi_wavelengths)
            return (*read_wavelengths(hsi_wavelengths, image.data.shape[2]), hsi_wavelengths)
        if image.wavelengths is not None:
            return image.wavelengths, image.fwhm, image.path
        return None, None, None

    def _simulate(self, path):
        args, r = self.args, self.args.scale_factor
        nodata = getattr(args, "nodata", None)
        image = read_cube(path, key=getattr(args, "cube_key", None), nodata=nodata,
                          mask_invalid=getattr(args, "mask_invalid", False))
        cube = image.data
        srf = self._spectral_response(image)  # first: it tells a channels-first cube by the SRF's rows
        if min(cube.shape[:2]) < MIN_LR_PIXELS * r:
            raise DataError(f"{path}: the cube is {cube.shape[0]} x {cube.shape[1]} pixels, which gives an LR-HSI "
                            f"smaller than {MIN_LR_PIXELS} x {MIN_LR_PIXELS} pixels at scale factor {r}; use a "
                            "larger image or a smaller --scale_factor")
        cube, offsets = crop_to_multiple(cube, r, with_offsets=True)
        if any(offsets):
            log.info("%s: cropped by %s rows/columns (top, bottom, left, right) to %d x %d, a multiple of r = %d",
                     path, list(offsets), cube.shape[0], cube.shape[1], r)
        invalid = no_data_pixels(cube, nodata, path)
        valid = ~invalid
        factor = power_of_ten_scale(cube, valid)
        reference = fill_invalid(cube / factor, invalid)
        pair = simulate_pair(reference, srf, self.PSF, r, msi_radiometry=_mismatch_of(args))
        # Each cube its own noise stream; the first keeps the stream of the seed alone (earlier runs' noise).
        position = self.imgpath_list.index(path)
        rng = np.random.default_rng(getattr(args, "seed", 0) if position == 0 else [getattr(args, "seed", 0), position])
        if getattr(args, "snr_hsi", None) is not None:
            pair["lhsi"] = add_noise(pair["lhsi"], args.snr_hsi, rng)
        if getattr(args, "snr_msi", None) is not None:
            pair["hmsi"] = add_noise(pair["hmsi"], args.snr_msi, rng)
        item = {k: to_tensor(v) for k, v in pair.items()}
        lr_valid = block_all(valid, r)
        masked = not valid.all()
        item.update(factor=factor, out_valid=valid if masked else None,
                    hr_valid=valid & replicate(lr_valid, r) if masked else None,
                    lr_valid=lr_valid if masked else None,
                    info={"cube": path, "crop": dict(zip(("top", "bottom", "left", "right"), offsets)),
                          "scale": factor, "masked_hr_pixels": int(invalid.sum()),
                          "masked_lr_pixels": int((~lr_valid).sum()),
                          "wavelength_source": self.wavelength_source,
                          "constant_bands": warn_constant_bands(cube, valid, path)})
        if masked:
            log.info("%s: %d of %d pixels have no data (NaN, fill or no-data values, or 0 in every band); they "
                     "are left out of the losses and the metrics", path, int(invalid.sum()), invalid.size)
        return item


# ----------------------------------------------------------------------------- real pairs (no reference)

@dataclass
class RealPair:
    """A real LR-HSI / HR-MSI pair read from files: scaled by the rule of imagery.radiometry, no-data
    pixels filled with 0 and flagged in the masks, the HR-MSI cropped to r times the LR-HSI grid.

    lhsi: h x w x C, hmsi: H x W x Cm (float32, C-contiguous, scaled); lr_valid: h x w and hr_valid: H x W bool
    (True = pixel used in the LR / HR loss terms: both images have data there); out_valid: H x W bool
    (the HR-MSI, and the reference when given, have data: X_hat is defined and scored there); srf: C x Cm (columns sum to 1, the nominal response that
    fixes each MSI band's support); hsi_factor / msi_factor: the scaling factors (multiply to restore
    the input units); hsi / msi: the files' metadata (imagery.readers.Image, data dropped);
    wavelengths / fwhm: the HSI band centres and widths in nm (None when unknown); nodata: the value
    written where the output has no data; reference: the --reference HR-HSI, H x W x C float32, scaled
    like the LR-HSI (None without one).
    """
    lhsi: np.ndarray
    hmsi: np.ndarray
    lr_valid: np.ndarray
    hr_valid: np.ndarray
    out_valid: np.ndarray
    srf: np.ndarray
    scale: int
    hsi_factor: float
    msi_factor: float
    hsi: object
    msi: object
    wavelengths: np.ndarray = None
    fwhm: np.ndarray = None
    msi_band_names: list = None
    nodata: float = float("nan")
    reference: np.ndarray = None
    info: dict = field(default_factory=dict)

    @property
    def large(self):
        """True when the LR-HSI and HR-MSI together hold more than LARGE_PAIR_VALUES values: their tensors
        then share these arrays (``to_tensor`` with ``share``) rather than copy them."""
        return self.lhsi.size + self.hmsi.size > LARGE_PAIR_VALUES


def _pair_scale(hsi, msi, given):
    """``imagery.geometry.infer_scale`` for the pair; when the sizes do not fit but would with an image's
    first axis taken as its bands (an array saved C x H x W by numpy or h5py), the error says so."""
    try:
        return infer_scale(hsi.data.shape, msi.data.shape, hsi.path, msi.path, given)
    except DataError as exc:
        hsi_shape, msi_shape = hsi.data.shape, msi.data.shape
        for image, shape, other in ((hsi, hsi_shape, msi_shape), (msi, msi_shape, hsi_shape)):
            moved = (*shape[1:], shape[0])
            pair = (moved, other) if image is hsi else (other, moved)
            try:
                infer_scale(*pair, hsi.path, msi.path, given)
            except DataError:
                continue
            raise DataError(f"{exc}. Note: {image.path} was read as {' x '.join(map(str, shape))} (H x W x C); "
                            f"taken as C x H x W it fits: the image looks channels-first (saved bands-first by "
                            f"numpy or h5py); store it bands-last, H x W x C (numpy: np.moveaxis(a, 0, -1))") from None
        raise


def _hsi_wavelengths(args, hsi):
    """The LR-HSI band centres and FWHM (nm): --hsi_wavelengths when given, else the file's metadata."""
    if getattr(args, "hsi_wavelengths", None):
        if hsi.wavelengths is not None:
            log.info("%s: using the band centres of --hsi_wavelengths %s, not the file's own",
                     hsi.path, args.hsi_wavelengths)
        centres, fwhm = read_wavelengths(args.hsi_wavelengths, hsi.data.shape[2])
        return centres, fwhm, args.hsi_wavelengths
    if hsi.wavelengths is not None:
        return hsi.wavelengths, hsi.fwhm, hsi.path
    return None, None, None


def _real_srf(args, hsi, msi, wavelengths, fwhm):
    """The SRF (C x Cm) and MSI band names, from the first source given: --srf, --msi_sensor, --msi_bands."""
    bands = hsi.data.shape[2]
    if getattr(args, "srf", None):
        table = load_srf(args.srf, key=getattr(args, "srf_key", None))
        srf, names = srf_for_hsi(table, bands, wavelengths, fwhm, cube_path=hsi.path, cube_shape=hsi.data.shape)
        source = args.srf
    elif getattr(args, "msi_sensor", None) or getattr(args, "msi_bands", None):
        if getattr(args, "msi_sensor", None):
            ranges = sensor_bands(args.msi_sensor, getattr(args, "msi_bands_select", None))
            source = f"--msi_sensor {args.msi_sensor}"
        else:
            ranges = read_band_ranges(args.msi_bands)
            select = getattr(args, "msi_bands_select", None)
            if select:
                ranges = select_bands(ranges, select, args.msi_bands)
            source = args.msi_bands
        if wavelengths is None:
            raise DataError(f"{hsi.path}: the LR-HSI band centres are unknown, and the SRF from {source} needs "
                            "them; pass --hsi_wavelengths FILE (one centre per band, nm) or --srf FILE")
        srf, names = srf_from_sensor(ranges, wavelengths, fwhm, source=source)
    else:
        raise DataError(f"{msi.path}: no spectral response given for the HR-MSI; pass --srf FILE (a response "
                        "table), --msi_sensor NAME (a known sensor's bands, e.g. sentinel2_msi) or --msi_bands "
                        "FILE (band ranges in nm)")
    check_band_count(srf.shape[1], msi.data.shape[2], msi.path, source)
    return validate_srf(srf, bands, source), names, source


def load_real_pair(args):
    """Read, check and scale the pair of --lr_hsi / --hr_msi (docs/real_pairs.md).

    Raises DataError for every problem of the files or their combination (the message names the
    files and the fix): swapped images, a non-integer or inconsistent ratio, misaligned GeoTIFFs,
    no SRF source, unknown wavelengths, a band count that the SRF does not match.

    Memory: each image is held once, as float32 (``read_image``'s dtype; exact for integers of up to
    16 bits and float32 files), scaled and filled in place; masks are H x W bool and every pass over
    an image goes in row blocks (``imagery.radiometry``). The float32 arrays hold exactly what a
    float64 copy divided by the factor would give once converted to float32, so the networks see the
    same values as when the pair was loaded in float64. The HR-MSI is copied once more only when
    columns are cropped off (the cropped view would not be contiguous).
    """
    hsi = read_image(args.lr_hsi, getattr(args, "lr_hsi_key", None), role="LR-HSI", key_option="--lr_hsi_key",
                     dtype=np.float32)
    msi = read_image(args.hr_msi, getattr(args, "hr_msi_key", None), role="HR-MSI", key_option="--hr_msi_key",
                     allow_2d=True, dtype=np.float32)
    reference = None
    if getattr(args, "reference", None):
        reference = read_image(args.reference, role="reference", key_option="--cube_key", dtype=np.float32)
    return real_pair_from_images(hsi, msi, args, reference=reference)


def real_pair_from_images(hsi, msi, args, srf=None, reference=None):
    """``load_real_pair`` from the images already read (imagery.readers.Image, float32 data: from files, or
    arrays given to fusion.api.fuse_arrays): the LR-HSI ``hsi``, the HR-MSI ``msi`` and an optional HR-HSI
    ``reference``. ``srf`` (C x Cm array) replaces the SRF sources of ``args`` (--srf, --msi_sensor,
    --msi_bands); the other options come from ``args``. The images' arrays are scaled and filled in place.
    Raises DataError as ``load_real_pair``."""
    if min(hsi.data.shape[:2]) < MIN_LR_PIXELS:
        raise DataError(f"{hsi.path}: the LR-HSI is {hsi.data.shape[0]} x {hsi.data.shape[1]} pixels, smaller than "
                        f"{MIN_LR_PIXELS} x {MIN_LR_PIXELS}: there is no spatial structure to learn from; use a "
                        "larger region")
    if msi.data.shape[2] >= hsi.data.shape[2]:
        raise DataError(f"{hsi.path} (LR-HSI) has {hsi.data.shape[2]} bands and {msi.path} (HR-MSI) has "
                        f"{msi.data.shape[2]}: the LR-HSI must have more bands; are --lr_hsi and --hr_msi swapped?")
    alignment, file_shape = None, msi.data.shape
    if georeferenced(hsi) and georeferenced(msi):
        hsi, msi, alignment = align_to_lr_grid(hsi, msi, getattr(args, "scale_factor", None))
    r, (rows, cols) = _pair_scale(hsi, msi, getattr(args, "scale_factor", None))
    if msi.data.shape[:2] != (rows, cols):
        log.info("%s: cropped from %d x %d to %d x %d pixels (r = %d): the extra rows/columns at the bottom "
                 "and right are dropped", msi.path, *msi.data.shape[:2], rows, cols, r)
    wavelengths, fwhm, wavelength_source = _hsi_wavelengths(args, hsi)
    if srf is None:
        srf, names, srf_source = _real_srf(args, hsi, msi, wavelengths, fwhm)
    else:
        srf_source, names = "the srf array", None
        check_band_count(np.shape(srf)[1], msi.data.shape[2], msi.path, srf_source)
        srf = validate_srf(np.asarray(srf, dtype=np.float64), hsi.data.shape[2], srf_source)

    hsi_data = hsi.data
    msi_data = msi.data if msi.data.shape[:2] == (rows, cols) else np.ascontiguousarray(msi.data[:rows, :cols])
    # From here on only these two arrays hold the pixels (an uncropped HR-MSI is released).
    hsi, msi = replace(hsi, data=None), replace(msi, data=None)

    user_nodata = getattr(args, "nodata", None)
    hsi_nodata = user_nodata if user_nodata is not None else hsi.nodata
    empty = empty_bands(hsi_data, hsi_nodata)
    if empty.any() and not empty.all():
        hsi_data, wavelengths, fwhm, srf = _drop_bands(hsi_data, wavelengths, fwhm, srf, empty, hsi.path)
    hsi_invalid = no_data_pixels(hsi_data, hsi_nodata, hsi.path)
    msi_invalid = no_data_pixels(msi_data, user_nodata if user_nodata is not None else msi.nodata, msi.path)
    shift = measure_shift(hsi_data, msi_data, srf, r, hsi_invalid, msi_invalid)
    if check_registration(shift, getattr(args, "registration", "check"), hsi.path, msi.path):
        msi_data[msi_invalid] = np.nan
        msi_data = shift_hr_msi(msi_data, shift, r)
        msi_invalid = no_data_pixels(msi_data, None, msi.path)
    hsi_factor = power_of_ten_scale(hsi_data, ~hsi_invalid)
    msi_factor = power_of_ten_scale(msi_data, ~msi_invalid)
    lr_valid = ~hsi_invalid & block_all(~msi_invalid, r)
    hr_valid = ~msi_invalid & replicate(~hsi_invalid, r)
    out_valid = ~msi_invalid
    if reference is not None:
        reference, ref_invalid = _reference_for(reference, (rows, cols, hsi_data.shape[2]), user_nodata, alignment,
                                                ~empty)
        out_valid &= ~ref_invalid
    nodata = hsi.nodata if hsi.nodata is not None else (user_nodata if user_nodata is not None else float("nan"))
    cut = None if alignment is not None and alignment.resampled else [int(file_shape[0] - rows),
                                                                     int(file_shape[1] - cols)]
    info = {"scale_factor": r, "hr_crop": cut,
            "hsi_factor": hsi_factor, "msi_factor": msi_factor,
            "masked_lr_pixels": int((~lr_valid).sum()), "masked_hr_pixels": int((~hr_valid).sum()),
            "wavelength_source": wavelength_source, "srf_source": srf_source,
            "constant_bands": warn_constant_bands(hsi_data, ~hsi_invalid, hsi.path),
            "alignment": alignment.facts() if alignment is not None else None,
            "dropped_bands": [int(b) + 1 for b in np.flatnonzero(empty)] if not empty.all() else [],
            "registration_shift_lr_pixels": list(shift) if shift is not None else None}
    pair = RealPair(lhsi=scale_in_place(hsi_data, hsi_factor, hsi_invalid),
                    hmsi=scale_in_place(msi_data, msi_factor, msi_invalid),
                    lr_valid=lr_valid, hr_valid=hr_valid, out_valid=out_valid, srf=srf, scale=r, hsi_factor=hsi_factor,
                    msi_factor=msi_factor, hsi=hsi, msi=msi,
                    wavelengths=wavelengths, fwhm=fwhm, msi_band_names=names, nodata=nodata, reference=reference,
                    info=info)
    log.info("real pair: LR-HSI %s (%d x %d x %d, / %g), HR-MSI %s (%d x %d x %d, / %g), r = %d, %d LR and %d HR "
             "pixels masked", hsi.path, *hsi_data.shape, hsi_factor, msi.path, *msi_data.shape, msi_factor, r,
             info["masked_lr_pixels"], info["masked_hr_pixels"])
    return pair


def _drop_bands(hsi, wavelengths, fwhm, srf, empty, path):
    """The LR-HSI without its ``empty`` bands (C bool: no data anywhere, as EnMAP L2A delivers its bad
    bands), with their band centres, widths and SRF rows; the SRF's columns summed to 1 again. Raises
    DataError when an MSI band keeps no HSI band."""
    keep = ~empty
    log.warning("%s: bands %s (1-based) hold no data anywhere and are dropped; %d bands are fused", path,
                ", ".join(str(b + 1) for b in np.flatnonzero(empty)), int(keep.sum()))
    srf = srf[keep]
    sums = srf.sum(axis=0)
    if (sums <= 0).any():
        raise DataError(f"{path}: the bands that hold no data are all the HSI bands of MSI band(s) "
                        f"{', '.join(str(b + 1) for b in np.flatnonzero(sums <= 0))}: that MSI band cannot be "
                        "predicted from the LR-HSI; drop it from the HR-MSI or --msi_bands_select")
    return (np.ascontiguousarray(hsi[:, :, keep]), None if wavelengths is None else wavelengths[keep],
            None if fwhm is None else fwhm[keep], srf / sums)


def no_data_pixels(cube, nodata, path):
    """``imagery.radiometry.invalid_pixels`` of the H x W x C ``cube`` read from ``path`` (H x W bool), and,
    when no no-data value is declared (``nodata`` None), the pixels holding an undeclared fill value
    (``imagery.radiometry.undeclared_fill``, masked with a warning); DataError when no pixel is left."""
    invalid = invalid_pixels(cube, nodata)
    if nodata is None:
        fill = undeclared_fill(cube).any(axis=2) & ~invalid
        if fill.any():
            first = tuple(int(i) for i in np.argwhere(fill)[0])
            log.warning("%s: %d pixels hold an undeclared fill value (%g at pixel %s: -9999, -32768, -32767, or "
                        "one negative value in every band) and are masked as no-data; declare it with --nodata V "
                        "if that is right", path, int(fill.sum()), cube[first][np.argmin(cube[first])], first)
            invalid |= fill
    if invalid.all():
        raise DataError(f"{path}: every pixel is no-data (NaN, a fill value, the no-data value or 0 in every "
                        "band); check the file and --nodata")
    return invalid


def warn_constant_bands(cube, valid, path):
    """Indices of the bands of the H x W x C ``cube`` that are constant over the valid pixels (H x W bool),
    with a warning naming them: they carry no information and are left out of every metric.

    The bands of ``evaluation.constant_bands`` (maximum equal to minimum over the valid pixels),
    found in row blocks (``imagery.radiometry.band_extrema``) instead of through its float64 copy of
    the valid pixels, so that a whole scene adds no full-size temporary."""
    low, high = band_extrema(cube, valid)
    constant = np.flatnonzero(low == high)
    if constant.size:
        log.warning("%s: band(s) %s are constant (e.g. zeroed water-absorption bands); they are left out of "
                    "every metric", path, constant.tolist())
    return constant.tolist()


def _reference_for(ref, shape, nodata, alignment, kept_bands):
    """An HR-HSI reference (an imagery.readers.Image, float32) for scoring a real-pair run: H x W x C
    float32 (as the pair: scaled and filled in place) on the HR-MSI's grid, scaled by the same rule (so
    reflectance references match reflectance inputs); returns it with its H x W no-data mask.

    On the grid: cropped at the bottom and right like the HR-MSI; for a pair put on nested grids
    (``alignment``, imagery.alignment), a georeferenced reference goes onto the same grid, and one without
    georeference is taken as on the HR-MSI file's grid, which must then only have been cut at the bottom
    and right. ``kept_bands`` (C bool): the LR-HSI bands kept; a reference of all the file's bands loses
    the same ones. Raises DataError for a reference of another size or band count, or one that cannot be
    placed."""
    path = ref.path
    rows, cols, bands = shape
    if alignment is not None and georeferenced(ref):
        ref = replace(ref, data=onto_hr_grid(ref, alignment))
    elif alignment is not None and (alignment.resampled or alignment.hr_crop[0].start or alignment.hr_crop[1].start):
        raise DataError(f"{path}: the reference has no georeference, but the HR-MSI was "
                        f"{'resampled' if alignment.resampled else 'cut at the top or left'} to fit the LR-HSI's "
                        "grid; give the reference with the HR-MSI's georeference (e.g. as a GeoTIFF)")
    if ref.data.shape[2] == kept_bands.size and not kept_bands.all():
        ref = replace(ref, data=ref.data[:, :, kept_bands])
    if ref.data.shape[2] != bands or ref.data.shape[0] < rows or ref.data.shape[1] < cols:
        raise DataError(f"{path}: the reference is {' x '.join(map(str, ref.data.shape))}, but the fused image "
                        f"will be {rows} x {cols} x {bands}; give the HR-HSI of the same scene and bands")
    data = ref.data[:rows, :cols]
    invalid = no_data_pixels(data, nodata if nodata is not None else ref.nodata, path)
    factor = power_of_ten_scale(data, ~invalid)
    return scale_in_place(data, factor, invalid), invalid
