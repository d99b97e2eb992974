"""The registration of a real pair, measured from its pixels once the georeference is applied: the shift
between the LR-MSI computed from the LR-HSI (Y S, with the pair's nominal SRF) and the HR-MSI degraded to
the LR grid (r x r block means), by phase correlation (scikit-image's ``phase_cross_correlation``, to
1/UPSAMPLE LR pixel) of each MSI band, the median over the bands, refined by measuring again after
moving the degraded HR-MSI back by the estimate.

Two sensors' georeferences often disagree by a pixel or more; a fusion of misregistered images puts the
HR-MSI's edges in the wrong LR pixels. ``check_registration`` applies the thresholds: up to WARN_LR_PIXELS
the pair counts as registered, above it a warning, above REFUSE_LR_PIXELS a refusal unless the user asks
to correct the shift (``shift_hr_msi`` resamples the HR-MSI by it, area-weighted) or to ignore it.
"""
import logging

import numpy as np
from affine import Affine
from rasterio.warp import Resampling, reproject
from scipy import ndimage
from skimage.registration import phase_cross_correlation

from imagery.errors import DataError
from imagery.radiometry import block_all

log = logging.getLogger(__name__)

WARN_LR_PIXELS = 0.2    # a shift above this (Euclidean, LR pixels) is reported as a misregistration
REFUSE_LR_PIXELS = 1.0  # above this the pair is refused unless --registration correct or ignore
UPSAMPLE = 20           # phase correlation refined to 1/20 LR pixel
MIN_LR_SIDE = 8         # smaller LR images carry too little structure to measure a shift on
# The taper and the content a shift brings in bias one phase correlation towards 0 for shifts of an LR pixel
# or more: the HR-MSI is moved back by the estimate and the residual measured again, this many times.
REFINEMENTS = 3
# Above this median normalised error of the phase correlation (scikit-image's ``error``: 0 for images equal
# up to a shift and a gain, near 1 for unrelated ones) the two images do not share enough structure for a
# shift to mean anything: measured 0.16-0.30 on a simulated pair, 0.50-0.52 on the Houston HSI against
# its RGB camera, 0.94-0.98 on unrelated noise.
MAX_CORRELATION_ERROR = 0.8


def measure_shift(lhsi, hmsi, srf, r, lr_invalid=None, hr_invalid=None):
    """The shift (rows, columns) in LR pixels by which the HR-MSI's content lies below and to the right of
    where the LR-HSI puts it: (0.5, 0) when the HR-MSI shows a scene half an LR pixel further down.

    lhsi: h x w x C, hmsi: r h x r w x Cm, srf: C x Cm (the nominal one: only its band supports matter, the
    measure ignores gains); lr_invalid (h x w) and hr_invalid (r h x r w): no-data masks (their pixels are
    filled with the band mean, so that they add no edge). Returns None for an LR image smaller than
    MIN_LR_SIDE on a side, when no band has any variation, or when the images do not correlate (the
    median phase-correlation error is above MAX_CORRELATION_ERROR; logged as a warning).
    """
    h, w = lhsi.shape[:2]
    if min(h, w) < MIN_LR_SIDE:
        return None
    # LR-sized results only: no float64 copy of either image (whole scenes stay within their own size).
    from_hsi = (np.asarray(lhsi) @ np.asarray(srf, dtype=np.asarray(lhsi).dtype)).astype(np.float64)
    degraded = np.asarray(hmsi).reshape(h, r, w, r, -1).mean(axis=(1, 3), dtype=np.float64)
    invalid = np.zeros((h, w), dtype=bool)
    if lr_invalid is not None:
        invalid |= lr_invalid
    if hr_invalid is not None:
        invalid |= ~block_all(~hr_invalid, r)
    if invalid.all():
        return None
    for image in (from_hsi, degraded):  # no-data at its band's mean: no edge, and nothing extreme to move
        image[invalid] = image[~invalid].mean(axis=0)
    window = np.outer(np.hanning(h), np.hanning(w))
    total = np.zeros(2)
    for _ in range(REFINEMENTS):
        moved = ndimage.shift(degraded, (*-total, 0), order=1, mode="nearest") if total.any() else degraded
        step, error = _median_band_shift(from_hsi, moved, invalid, window)
        if step is None:
            return None
        if error > MAX_CORRELATION_ERROR:
            log.warning("registration: not measured: the LR-MSI from the LR-HSI and the HR-MSI do not correlate "
                        "(phase-correlation error %.2f, above %.2f); check that the two images show the same "
                        "ground and that the SRF matches the HR-MSI's bands", error, MAX_CORRELATION_ERROR)
            return None
        total += step
    return tuple(float(v) for v in np.round(total, 3))


def _median_band_shift(reference, moving, invalid, window):
    """The median over the bands of each band's phase-correlation shift of ``moving`` against ``reference``
    (h x w x Cm) and of its normalised error; (None, None) when no band varies."""
    shifts, errors = [], []
    for band in range(reference.shape[2]):
        a, b = (_prepared(image[:, :, band], invalid, window) for image in (reference, moving))
        if a is None or b is None:
            continue
        shift, error, _ = phase_cross_correlation(a, b, upsample_factor=UPSAMPLE, normalization=None)
        shifts.append(-shift)
        errors.append(error)
    return (np.median(shifts, axis=0), float(np.median(errors))) if shifts else (None, None)


def _prepared(band, invalid, window):
    """A band standardised over its valid pixels, invalid pixels at 0, tapered by ``window``; None when it
    is constant."""
    values = band[~invalid]
    if values.size == 0 or np.ptp(values) == 0:
        return None
    out = (band - values.mean()) / values.std()
    out[invalid] = 0.0
    return out * window


def check_registration(shift, choice, hsi_path, msi_path):
    """Apply the thresholds to ``shift`` (rows, columns; LR pixels; None: not measured) under --registration
    ``choice`` ('check', 'correct' or 'ignore'). Returns True when the HR-MSI is to be resampled by the
    shift. Logs the shift; raises DataError above REFUSE_LR_PIXELS with 'check'."""
    if shift is None:
        log.info("registration: not measured (an LR-HSI smaller than %d x %d pixels, without structure, or "
                 "not correlated with the HR-MSI)", MIN_LR_SIDE, MIN_LR_SIDE)
        return False
    size = float(np.hypot(*shift))
    text = (f"{msi_path} (HR-MSI) lies {shift[0]:+.2f} LR pixels down and {shift[1]:+.2f} right of {hsi_path} "
            f"(LR-HSI), measured from the pixels (a shift of {size:.2f} LR pixels)")
    if choice == "correct" and size > WARN_LR_PIXELS:
        log.warning("registration: %s; --registration correct: the HR-MSI is resampled by it", text)
        return True
    if size <= WARN_LR_PIXELS or choice == "ignore":
        log.info("registration: %s", text)
        return False
    if size > REFUSE_LR_PIXELS:
        raise DataError(f"{text}: more than {REFUSE_LR_PIXELS:g} LR pixel, so the fusion would put the HR-MSI's "
                        "detail in the wrong LR pixels. Check the two georeferences; give --registration correct "
                        "to resample the HR-MSI by the measured shift, or --registration ignore to fuse as is")
    log.warning("registration: %s: more than %.1f LR pixel; --registration correct resamples the HR-MSI by it",
                text, WARN_LR_PIXELS)
    return False


def shift_hr_msi(hmsi, shift, r, nodata_fill=np.nan):
    """The HR-MSI (H x W x Cm float32) moved back by ``shift`` (rows, columns; LR pixels), so that its content
    lies where the LR-HSI puts it: resampled with GDAL's area-weighted average (rasterio.warp.reproject, the
    grids offset by the shift in HR pixels), ``nodata_fill`` where no source pixel reaches."""
    rows, cols = (-v * r for v in shift)
    source = np.moveaxis(np.asarray(hmsi, dtype=np.float32), 2, 0)
    target = np.full_like(source, nodata_fill)
    reproject(source, target, src_transform=Affine.translation(cols, rows), dst_transform=Affine.identity(),
              src_crs="EPSG:3857", dst_crs="EPSG:3857", src_nodata=np.nan, dst_nodata=nodata_fill,
              resampling=Resampling.average)
    return np.ascontiguousarray(np.moveaxis(target, 0, 2))
