"""Image-quality metrics for H x W x C hyperspectral cubes.

With a reference: SAM, ERGAS, PSNR, RMSE, CC, SSIM (the UDALN formulas), each over the valid pixels
of an optional H x W boolean mask (True = valid pixel) and over the bands that vary there: bands of
the reference that are constant over the valid pixels (zeroed water-absorption bands, a blank
channel) are left out of every metric, SAM's spectra included; ``constant_bands`` lists them.

Per pixel: ``spectral_angles`` and ``pixel_rmse``, the maps that SAM (their mean) and RMSE (the root of
their mean square) summarise, drawn as the error maps of reproduce.figures.

Without a reference: the QNR of Alparone et al. (2008) in its hyperspectral-multispectral form
(``qnr``), built on the universal image quality index of Wang and Bovik (2002) (``uiqi``).

Scenes too large to hold with their reference are scored tile by tile with the same formulas: every
metric is a sum over pixels (or blocks) followed by a formula on the sums, and the whole-image
functions and the streamed classes share both halves. ``StreamingMetrics`` gives ``evaluate``'s
numbers, ``StreamingQNR`` gives ``qnr``'s; ``ConstantBands`` is the first pass over the reference
that they may need (see ``StreamingMetrics`` for the two passes).

Invalid arguments (shapes, masks, parameters) raise ValueError with a message that says what to fix.
"""

import math
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

# Added to the norm product exactly as the upstream UDALN code does; it biases
# angles of dark pixels, and keeping it is what makes our numbers comparable
# with the published tables.
SAM_EPS = 1e-7

# Per-band PSNR is clipped to [-PSNR_CAP_DB, PSNR_CAP_DB] and a band with zero
# MSE scores exactly PSNR_CAP_DB, so a perfect band never yields inf/nan and
# never ranks below a merely near-perfect one.
PSNR_CAP_DB = 100.0

# Floor on mean(reference band)^2 in ERGAS: a varying band of signed data can
# have a zero mean.  Far below any real band's squared mean.
ERGAS_EPS = 1e-12

# Wang et al. (2004) SSIM settings.  truncate=3.5 with sigma=1.5 gives ndimage
# an 11-tap kernel (radius int(3.5 * 1.5 + 0.5) = 5), as skimage uses.
SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03

# The SSIM window's radius in pixels (5): a pixel's SSIM depends on the pixels at most this far
# away, so a tile with this much halo around its core gives the core's SSIM exactly.
SSIM_HALO = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)

# QNR block side at the high resolution: Alparone et al. (2008) and the pansharpening
# toolbox of Vivone et al. (2015) use 32 x 32 blocks.
QNR_BLOCK = 32

# Bound on the float64 elements of one batch of blocks in ``uiqi`` (about 32 MB per
# temporary), so a 1000 x 1000 x 200 cube is processed without gigabyte intermediates.
_UIQI_BATCH_ELEMENTS = 1 << 22

METRIC_NAMES = ("SAM", "ERGAS", "PSNR", "RMSE", "CC", "SSIM")

_FORMATS = {
    "SAM": ".3f",
    "ERGAS": ".3f",
    "PSNR": ".2f",
    "RMSE": ".5f",
    "CC": ".4f",
    "SSIM": ".4f",
}


# ----------------------------------------------------------------------------- input checks

def _as_cube(x, name):
    """``x`` as a float64 array after checking it is a non-empty 3-D (H, W, C) cube."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 3 or a.size == 0:
        raise ValueError(f"{name} must be a non-empty 3-D (H, W, C) array; got shape {a.shape}")
    return a


def _as_cubes(x_true, x_pred, names=("x_true", "x_pred")):
    """Return both inputs as float64 arrays after checking they are equal-shape, non-empty 3-D cubes."""
    t = np.asarray(x_true, dtype=np.float64)
    p = np.asarray(x_pred, dtype=np.float64)
    if t.ndim != 3 or p.ndim != 3 or t.shape != p.shape or t.size == 0:
        raise ValueError(
            f"{names[0]} and {names[1]} must be non-empty 3-D (H, W, C) arrays of the same "
            f"shape; got {names[0]} shape {t.shape} and {names[1]} shape {p.shape}"
        )
    return t, p


def _check_mask(mask, shape, name="mask", image="the image", allow_empty=False):
    """The H x W boolean validity mask, or None when it is None or marks every pixel valid.

    ``allow_empty``: a mask without a valid pixel is returned (a tile may lie in a no-data area)
    instead of refused.
    """
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.dtype != bool:
        raise ValueError(
            f"{name} must be a boolean H x W array (True = valid pixel); got dtype {m.dtype}: "
            f"convert it with `{name} != 0` or `{name} != nodata_value`"
        )
    if m.shape != tuple(shape[:2]):
        raise ValueError(
            f"{name} has shape {m.shape} but {image} is {shape[0]} x {shape[1]} pixels: "
            f"pass an H x W mask of the same height and width"
        )
    if not allow_empty and not m.any():
        raise ValueError(
            f"{name} marks no pixel as valid (True = valid pixel), so there is nothing to evaluate: "
            "check the mask's polarity (a numpy masked-array mask is True where data are invalid)"
        )
    # All-valid takes the unmasked path, so its numbers are exactly those without a mask.
    return None if m.all() else m


def _check_scale(scale_factor):
    try:
        scale = float(scale_factor)
    except (TypeError, ValueError):
        scale = float("nan")
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale_factor must be a positive number; got {scale_factor!r}")
    return scale


def _varying(low, high):
    """True where a band whose minimum is ``low`` and maximum ``high`` is not constant.

    The one definition of a constant band, for whole cubes and for the per-tile extrema of the
    streamed passes alike (max - min as np.ptp, so NaN and Inf bands count as varying).
    """
    return (high - low) != 0


def _varying_bands(t):
    """Per band of the (H, W, C) or gathered (N, 1, C) reference: True where it is not constant."""
    return _varying(np.min(t, axis=(0, 1)), np.max(t, axis=(0, 1)))


def _require_varying(keep):
    """Refuse a reference whose bands (``keep``: True = varying) are all constant."""
    if not keep.any():
        raise ValueError(
            f"every band of x_true (all {keep.size}) is constant over the valid pixels, so no "
            "metric is defined: check that the reference is not blank and that the mask marks "
            "its valid pixels (True = valid)"
        )


def _valid_data(t, p, mask):
    """The valid pixels and varying bands of both float64 cubes: ``(t_v, p_v, keep)``.

    With a mask the valid pixels are gathered once into N x 1 x C cubes (N valid pixels, in
    row-major order), on which the per-pixel and per-band formulas work unchanged; without one
    the cubes are returned as they are. ``keep`` (C bools) marks the bands of the reference that
    vary over the valid pixels; the others are dropped from both cubes.
    """
    if mask is not None:
        t = t[mask][:, None, :]
        p = p[mask][:, None, :]
    keep = _varying_bands(t)
    _require_varying(keep)
    if not keep.all():
        t = t[:, :, keep]
        p = p[:, :, keep]
    return t, p, keep


def constant_bands(x_true, mask=None):
    """Indices (ascending int array) of the reference's bands that are constant over the valid pixels.

    x_true: H x W x C reference cube (any units). mask: H x W bool, True = valid pixel (None: all
    valid). A band is constant when its maximum equals its minimum over the valid pixels (for
    example a zeroed water-absorption band); every metric of this module leaves such bands out.
    Raises ValueError for a non-3-D or empty cube, or a mask of the wrong dtype or shape or with
    no valid pixel.
    """
    t = _as_cube(x_true, "x_true")
    mask = _check_mask(mask, t.shape)
    if mask is not None:
        t = t[mask][:, None, :]
    return np.flatnonzero(~_varying_bands(t))


# ----------------------------------------------------------------------------- metrics as sums and formulas
# Each metric is a sum over pixels (``add``: float64 (H, W, K) or gathered (N, 1, K) cubes of valid
# pixels and varying bands, as _valid_data gives) and a formula on the sums. The whole-image
# functions add one cube; StreamingMetrics adds one tile at a time.

def _band_sum(a, b):
    """Per-band sum over pixels of a * b, without a full-size temporary."""
    return np.einsum("ijk,ijk->k", a, b)


def spectral_angles(t, p):
    """Per-pixel spectral angle in degrees between the reference t and the estimate p, float64 (H, W, K)
    or gathered (N, 1, K) cubes: ``compute_sam``'s formula (UDALN's),
    arccos(clip(<t, p> / (||t|| ||p|| + 1e-7), -1, 1)), 0 where the two spectra are bit-identical, NaN
    where either holds a NaN. Returns (H, W) or (N, 1); ``compute_sam`` is the mean over the valid
    pixels of these angles over the reference's varying bands."""
    dot = np.einsum("ijk,ijk->ij", t, p)
    norm_prod = np.sqrt(np.einsum("ijk,ijk->ij", t, t)) * np.sqrt(
        np.einsum("ijk,ijk->ij", p, p)
    )
    cos = np.clip(dot / (norm_prod + SAM_EPS), -1.0, 1.0)
    angles = np.degrees(np.arccos(cos))
    return np.where(np.all(t == p, axis=2), 0.0, angles)


def pixel_rmse(t, p):
    """Per-pixel root mean squared error over the bands, sqrt(mean_k (t - p)^2), of two float64 (H, W, K)
    or (N, 1, K) cubes, in their units; NaN where either holds a NaN. Returns (H, W) or (N, 1);
    ``compute_rmse`` is the square root of the mean over the valid pixels of its square, over the
    reference's varying bands."""
    return np.sqrt(np.mean((t - p) ** 2, axis=2))


class _AngleSum:
    """SAM: the sum of the per-pixel spectral angles (degrees) and the number of pixels."""

    def __init__(self):
        self.total = 0.0
        self.count = 0

    def add(self, t, p):
        angles = spectral_angles(t, p)
        self.total += float(angles.sum())
        self.count += angles.size
        return self

    def sam(self):
        return float(self.total / self.count)


class _BandErrors:
    """PSNR, ERGAS, RMSE: per band the sums of squared errors and of the reference, the reference's
    maximum; the total squared error and the number of pixels."""

    def __init__(self):
        self.count = 0
        self.total = 0.0

    def add(self, t, p):
        sq = (t - p) ** 2
        sq_err, ref_sum = np.sum(sq, axis=(0, 1)), np.sum(t, axis=(0, 1))
        ref_max = np.max(t, axis=(0, 1))
        if self.count == 0:
            self.sq_err, self.ref_sum, self.ref_max = sq_err, ref_sum, ref_max
        else:
            self.sq_err = self.sq_err + sq_err
            self.ref_sum = self.ref_sum + ref_sum
            self.ref_max = np.maximum(self.ref_max, ref_max)
        # Summed over all elements at once (not from the per-band sums) so that one cube gives
        # exactly np.mean's value.
        self.total += float(np.sum(sq))
        self.count += t.shape[0] * t.shape[1]
        return self

    def psnr(self):
        mse = self.sq_err / self.count
        peak_sq = self.ref_max**2
        # inf/nan/-inf from the zero cases are replaced just below.
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            band = 10.0 * np.log10(peak_sq / mse)
        band = np.where(mse == 0, PSNR_CAP_DB, np.clip(band, -PSNR_CAP_DB, PSNR_CAP_DB))
        return float(band.mean())

    def ergas(self, scale):
        mse = self.sq_err / self.count
        mean_sq = (self.ref_sum / self.count) ** 2
        ratio = mse / np.maximum(mean_sq, ERGAS_EPS)
        return float(100.0 / scale * np.sqrt(ratio.mean()))

    def rmse(self):
        return float(np.sqrt(self.total / (self.count * self.sq_err.size)))


class _BandCorrelation:
    """CC: per band the means, centred sums of squares and of cross products, the estimate's range.

    Each cube's centred sums are taken about its own means (two passes, no cancellation) and merged
    into the running ones with the pairwise update of Chan, Golub and LeVeque (1979).
    """

    def __init__(self):
        self.count = 0

    def add(self, t, p):
        n = t.shape[0] * t.shape[1]
        mean_t, mean_p = t.mean(axis=(0, 1)), p.mean(axis=(0, 1))
        tc, pc = t - mean_t, p - mean_p
        ss_t, ss_p, sp = _band_sum(tc, tc), _band_sum(pc, pc), _band_sum(tc, pc)
        p_min, p_max = np.min(p, axis=(0, 1)), np.max(p, axis=(0, 1))
        if self.count == 0:
            self.mean_t, self.mean_p, self.ss_t, self.ss_p, self.sp = mean_t, mean_p, ss_t, ss_p, sp
            self.p_min, self.p_max = p_min, p_max
        else:
            total = self.count + n
            d_t, d_p = mean_t - self.mean_t, mean_p - self.mean_p
            weight = self.count * n / total
            self.ss_t = self.ss_t + ss_t + d_t * d_t * weight
            self.ss_p = self.ss_p + ss_p + d_p * d_p * weight
            self.sp = self.sp + sp + d_t * d_p * weight
            self.mean_t = self.mean_t + d_t * (n / total)
            self.mean_p = self.mean_p + d_p * (n / total)
            self.p_min, self.p_max = np.minimum(self.p_min, p_min), np.maximum(self.p_max, p_max)
        self.count += n
        return self

    def cc(self):
        den = np.sqrt(self.ss_t * self.ss_p)
        # Decide constancy from the raw values: the rounded mean of a constant band
        # need not equal its value, so the centred band can be tiny but non-zero.
        degenerate = ~_varying(self.p_min, self.p_max) | (den == 0)
        r = np.clip(self.sp / np.where(degenerate, 1.0, den), -1.0, 1.0)
        return float(np.where(degenerate, 0.0, r).mean())


class _PixelSums:
    """The sums of every metric but SSIM, fed together."""

    def __init__(self):
        self.angles, self.errors, self.correlation = _AngleSum(), _BandErrors(), _BandCorrelation()

    def add(self, t, p):
        self.angles.add(t, p)
        self.errors.add(t, p)
        self.correlation.add(t, p)
        return self

    def metrics(self, scale):
        """SAM, ERGAS, PSNR, RMSE, CC in ``evaluate``'s order."""
        return {
            "SAM": self.angles.sam(),
            "ERGAS": self.errors.ergas(scale),
            "PSNR": self.errors.psnr(),
            "RMSE": self.errors.rmse(),
            "CC": self.correlation.cc(),
        }


def _ssim_blur(a):
    """Gaussian-weighted local mean within each band (no mixing across bands)."""
    return gaussian_filter(
        a, sigma=(SSIM_SIGMA, SSIM_SIGMA, 0.0), truncate=SSIM_TRUNCATE, mode="reflect"
    )


def _ssim_map(t, p, mask, fill, data_range):
    """Per-pixel SSIM of the (H, W, K) cubes t, p; with a mask, both cubes' invalid pixels are ``fill``.

    ``fill``: K per-band values (the reference's mean over the valid pixels), so whatever the
    invalid pixels hold (0, a nodata value, 1e6) never reaches the valid pixels' windows.
    """
    if mask is not None:
        t = np.where(mask[:, :, None], t, fill)
        p = np.where(mask[:, :, None], p, fill)

    mu_t = _ssim_blur(t)
    mu_p = _ssim_blur(p)
    var_t = _ssim_blur(t * t) - mu_t * mu_t
    var_p = _ssim_blur(p * p) - mu_p * mu_p
    cov = _ssim_blur(t * p) - mu_t * mu_p

    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    return ((2 * mu_t * mu_p + c1) * (2 * cov + c2)) / (
        (mu_t**2 + mu_p**2 + c1) * (var_t + var_p + c2)
    )


def _ssim_counted(size, core):
    """Along one axis of a tile of ``size`` pixels with core ``core`` (a slice, explicit bounds): the
    pixels whose SSIM counts.

    Where the core reaches the tile's edge, that edge is the image's: its SSIM_HALO pixels see
    reflected data and are left out (like skimage), unless the axis is shorter than the window,
    which is then the image's whole side and is kept. A side with a halo keeps the whole core.
    """
    start, stop = core.start, core.stop
    if start == 0 and stop == size and size < 2 * SSIM_HALO + 1:
        return core
    if start == 0:
        start = SSIM_HALO
    if stop == size:
        stop = size - SSIM_HALO
    return slice(start, max(start, stop))


def _ssim_sums(ssim_map, mask, rows, cols):
    """Per-band sum of the SSIM map over the pixels ``rows`` x ``cols`` valid under ``mask``; their count."""
    region = ssim_map[rows, cols]
    if mask is None:
        return np.sum(region, axis=(0, 1)), region.shape[0] * region.shape[1]
    values = region[mask[rows, cols]]
    return np.sum(values, axis=0), values.shape[0]


def _ssim_no_pixel_error():
    return ValueError(
        f"SSIM leaves out a {SSIM_HALO}-pixel border and no valid pixel lies inside it: "
        "evaluate a larger valid area, or leave SSIM out (evaluate(..., ssim=False))"
    )


def _ssim(t, p, mask, keep, t_valid, data_range):
    """SSIM of the full (H, W, C) cubes t, p over the bands ``keep`` and the pixels ``mask``.

    ``t_valid`` is the reference's valid pixels and kept bands as given by _valid_data.
    """
    if not keep.all():
        t = t[:, :, keep]
        p = p[:, :, keep]
    if data_range is None:
        # Positive: at least one kept band varies over the valid pixels.
        data_range = float(t_valid.max() - t_valid.min())
    fill = None if mask is None else t_valid.mean(axis=(0, 1))
    ssim_map = _ssim_map(t, p, mask, fill, data_range)
    h, w = ssim_map.shape[:2]
    sums, count = _ssim_sums(
        ssim_map, mask, _ssim_counted(h, slice(0, h)), _ssim_counted(w, slice(0, w))
    )
    if count == 0:
        raise _ssim_no_pixel_error()
    return float((sums / count).mean())


# ----------------------------------------------------------------------------- public metrics

def compute_sam(x_true, x_pred, mask=None):
    """Spectral angle mapper in degrees, averaged over the valid pixels.

    x_true, x_pred: H x W x C cubes (same units, any scale). Per pixel with spectra t and p
    (the varying bands only):
        angle = arccos(clip(<t, p> / (||t|| * ||p|| + 1e-7), -1, 1)) * 180 / pi
    as the UDALN code. The clip removes the upstream's nan when rounding pushes the cosine past 1.
    Pixels whose two spectra are bit-identical (including both all-zero) are
    defined as 0 degrees; otherwise the 1e-7 would give identical spectra a
    small spurious angle (and both-zero pixels 90 degrees).  A pixel where
    exactly one spectrum is all-zero gives arccos(0) = 90 degrees.

    mask: H x W bool, True = valid pixel (None: all valid); only the valid pixels count. Bands of
    x_true constant over the valid pixels are left out (``constant_bands``). Raises ValueError for
    cubes that are not equal-shape, non-empty 3-D arrays, a mask that is not boolean, not H x W or
    without a valid pixel, and when every band of x_true is constant over the valid pixels.
    """
    t, p = _as_cubes(x_true, x_pred)
    return _AngleSum().add(*_valid_data(t, p, _check_mask(mask, t.shape))[:2]).sam()


def compute_psnr(x_true, x_pred, mask=None):
    """Mean over bands of the per-band peak signal-to-noise ratio in dB.

    x_true, x_pred: H x W x C cubes. Per band b, over the valid pixels:
        PSNR_b = 10 * log10( max(x_true_b)^2 / mean((x_true_b - x_pred_b)^2) )
    (the peak is the band's own maximum of the reference, as upstream).
    PSNR_b is clipped to [-PSNR_CAP_DB, PSNR_CAP_DB] = [-100, 100]; a band with
    zero MSE is PSNR_CAP_DB (whatever its peak), and a band with zero peak (a
    varying band of values <= 0) but non-zero MSE is -PSNR_CAP_DB.  No
    floating-point warnings are emitted.

    mask: H x W bool, True = valid pixel (None: all valid); only the valid pixels count. Bands of
    x_true constant over the valid pixels are left out (``constant_bands``). Raises ValueError for
    cubes that are not equal-shape, non-empty 3-D arrays, a mask that is not boolean, not H x W or
    without a valid pixel, and when every band of x_true is constant over the valid pixels.
    """
    t, p = _as_cubes(x_true, x_pred)
    return _BandErrors().add(*_valid_data(t, p, _check_mask(mask, t.shape))[:2]).psnr()


def compute_ergas(x_true, x_pred, scale_factor, mask=None):
    """Relative dimensionless global error in synthesis (ERGAS, Wald 2000), as the UDALN code.

    x_true, x_pred: H x W x C cubes; over the valid pixels and varying bands b:
        ERGAS = (100 / scale_factor)
                * sqrt( mean_b( mean((x_true_b - x_pred_b)^2)
                                / max(mean(x_true_b)^2, ERGAS_EPS) ) )
    with ERGAS_EPS = 1e-12, which only matters for (near-)zero-mean reference
    bands (signed data) and keeps the result finite.  scale_factor is the spatial ratio
    between the high- and low-resolution images and must be positive (ValueError otherwise).

    mask: H x W bool, True = valid pixel (None: all valid); only the valid pixels count. Bands of
    x_true constant over the valid pixels are left out (``constant_bands``). Raises ValueError for
    cubes that are not equal-shape, non-empty 3-D arrays, a mask that is not boolean, not H x W or
    without a valid pixel, and when every band of x_true is constant over the valid pixels.
    """
    t, p = _as_cubes(x_true, x_pred)
    scale = _check_scale(scale_factor)
    return _BandErrors().add(*_valid_data(t, p, _check_mask(mask, t.shape))[:2]).ergas(scale)


def compute_cc(x_true, x_pred, mask=None):
    """Mean over bands of the Pearson correlation coefficient.

    x_true, x_pred: H x W x C cubes. Per varying band b, with t, p the band's valid pixels and
    bars their means:
        CC_b = sum((t - t_bar) * (p - p_bar))
               / sqrt(sum((t - t_bar)^2) * sum((p - p_bar)^2)),
    clipped to [-1, 1] like np.corrcoef.  A band of x_pred that is constant over the valid
    pixels (zero variance) has CC_b = 0.0.

    mask: H x W bool, True = valid pixel (None: all valid); only the valid pixels count. Bands of
    x_true constant over the valid pixels are left out (``constant_bands``). Raises ValueError for
    cubes that are not equal-shape, non-empty 3-D arrays, a mask that is not boolean, not H x W or
    without a valid pixel, and when every band of x_true is constant over the valid pixels.
    """
    t, p = _as_cubes(x_true, x_pred)
    return _BandCorrelation().add(*_valid_data(t, p, _check_mask(mask, t.shape))[:2]).cc()


def compute_rmse(x_true, x_pred, mask=None):
    """Root mean squared error over the valid pixels and varying bands: sqrt(mean((x_true - x_pred)^2)).

    x_true, x_pred: H x W x C cubes; the result is in their units.

    mask: H x W bool, True = valid pixel (None: all valid); only the valid pixels count. Bands of
    x_true constant over the valid pixels are left out (``constant_bands``). Raises ValueError for
    cubes that are not equal-shape, non-empty 3-D arrays, a mask that is not boolean, not H x W or
    without a valid pixel, and when every band of x_true is constant over the valid pixels.
    """
    t, p = _as_cubes(x_true, x_pred)
    return _BandErrors().add(*_valid_data(t, p, _check_mask(mask, t.shape))[:2]).rmse()


def compute_ssim(x_true, x_pred, data_range=None, mask=None):
    """Mean over bands of the structural similarity index (Wang et al. 2004).

    x_true, x_pred: H x W x C cubes. With Gaussian-weighted (11x11, sigma 1.5) local means mu,
    variances sigma^2 and covariance sigma_tp (population normalisation), per pixel:
        SSIM = ((2 mu_t mu_p + C1) (2 sigma_tp + C2))
               / ((mu_t^2 + mu_p^2 + C1) (sigma_t^2 + sigma_p^2 + C2)),
        C1 = (0.01 L)^2,  C2 = (0.03 L)^2,
    L = data_range (positive, ValueError otherwise), defaulting to max - min of x_true over the
    valid pixels and varying bands.  Without a mask the map is averaged after dropping a 5-pixel
    border, the filter radius, on each spatial side, matching
    skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, channel_axis=2).  A spatial axis shorter
    than the 11-pixel window (where skimage refuses) is not cropped.

    With a mask the map is still computed on the full image, after the invalid pixels of both
    cubes are set to the reference's per-band mean over the valid pixels (so whatever they held,
    0, a nodata value or garbage, affects no pixel; a valid pixel near no-data sees that neutral
    value in its window), and it is averaged over the valid pixels outside the border.

    mask: H x W bool, True = valid pixel (None: all valid). Bands of x_true constant over the
    valid pixels are left out (``constant_bands``). Raises ValueError as the other metrics do,
    for a non-positive data_range, and when no valid pixel lies outside the border.
    """
    t, p = _as_cubes(x_true, x_pred)
    if data_range is not None and not data_range > 0:
        raise ValueError(f"data_range must be positive; got {data_range!r}")
    mask = _check_mask(mask, t.shape)
    t_valid, _, keep = _valid_data(t, p, mask)
    return _ssim(t, p, mask, keep, t_valid, data_range)


def evaluate(x_true, x_pred, scale_factor, ssim=True, mask=None):
    """All metrics as a dict with keys SAM, ERGAS, PSNR, RMSE, CC, SSIM (in that order), as floats.

    x_true (reference) and x_pred: H x W x C cubes; scale_factor: the spatial ratio for ERGAS;
    mask: H x W bool, True = valid pixel. Each value equals the matching ``compute_*`` (see those
    for units, masks and the constant bands left out; ``constant_bands`` lists them). The valid
    pixels are gathered once for all metrics. ``ssim=False`` leaves out SSIM, by far the
    costliest, for frequent checks during training. Raises ValueError as the ``compute_*`` do.
    ``StreamingMetrics`` gives the same numbers from tiles, for images too large to hold.
    """
    t, p = _as_cubes(x_true, x_pred)
    scale = _check_scale(scale_factor)
    mask = _check_mask(mask, t.shape)
    tv, pv, keep = _valid_data(t, p, mask)
    metrics = _PixelSums().add(tv, pv).metrics(scale)
    if ssim:
        metrics["SSIM"] = _ssim(t, p, mask, keep, tv, None)
    return metrics


def format_metrics(metrics):
    """One line such as 'SAM 1.234  ERGAS 0.567  PSNR 40.12  RMSE 0.00312  CC 0.9991  SSIM 0.9876'.

    Keys are printed in the dict's order; unknown keys use 4 significant digits.
    """
    return "  ".join(
        f"{name} {format(float(value), _FORMATS.get(name, '.4g'))}"
        for name, value in metrics.items()
    )


# ----------------------------------------------------------------------------- streamed scoring (tiles)

def _core_slices(core, shape):
    """``core`` (rows, columns slices of a tile of ``shape``; None: the whole tile), explicit bounds."""
    if core is None:
        return slice(0, shape[0]), slice(0, shape[1])
    if not (isinstance(core, tuple) and len(core) == 2 and all(isinstance(s, slice) for s in core)):
        raise ValueError(
            "core must be a (rows, columns) pair of slices inside the tile, e.g. "
            f"(slice(5, -5), slice(5, -5)); got {core!r}"
        )
    bounds = []
    for s, size in zip(core, shape[:2]):
        start, stop, step = s.indices(size)
        if step != 1 or stop <= start:
            raise ValueError(
                f"core {core!r} selects no pixel, or not a contiguous block, of a {shape[0]} x "
                f"{shape[1]} tile: give slices of step 1 that select at least one pixel"
            )
        bounds.append(slice(start, stop))
    return tuple(bounds)


class _TileBands:
    """The band count every tile of a stream must share (set by the first tile)."""

    def __init__(self):
        self.bands = None

    def check(self, bands, name):
        if self.bands is None:
            self.bands = bands
        elif bands != self.bands:
            raise ValueError(
                f"{name} has {bands} bands but the first tile had {self.bands}: every tile must "
                "hold all bands of the cube (split the image along rows and columns only)"
            )


def _valid_core(t, mask, rows, cols):
    """The core's valid pixels of the float64 tile ``t``: the core cube when all are valid, else an
    (N, 1, C) gather (N may be 0); and the core's mask (None: all valid)."""
    t = t[rows, cols]
    if mask is None:
        return t, None
    core_mask = mask[rows, cols]
    if core_mask.all():
        return t, None
    return t[core_mask][:, None, :], core_mask


@dataclass(frozen=True, eq=False)
class ReferenceSummary:
    """What ``ConstantBands`` found in the reference over its valid pixels (pass it as ``constant=``).

    constant: ascending int indices of the bands constant over the valid pixels (as
    ``constant_bands`` gives for the whole cube). minimum, maximum, mean: per band (C float64
    arrays, reference units). count: the number of valid pixels.
    """

    constant: np.ndarray
    minimum: np.ndarray
    maximum: np.ndarray
    mean: np.ndarray
    count: int


class ConstantBands:
    """First pass of streamed scoring: the reference's constant bands, range and band means.

    ``ConstantBands().update(x_true_tile, mask_tile, core).update(...).result()`` returns a
    ``ReferenceSummary`` whose ``constant`` equals ``constant_bands(x_true, mask)`` of the whole
    cube. Tiles (H' x W' x C numpy arrays, any units) are disjoint in their cores and come in any
    order; mask_tile is H' x W' bool (True = valid pixel, None: all valid), core a (rows, columns)
    pair of slices of the tile that it owns (None: the whole tile). Raises ValueError for a tile
    that is not a non-empty 3-D array, a band count that differs from the first tile's, a bad mask
    or core, and (``result``) when no tile was fed or no pixel was valid.
    """

    def __init__(self):
        self._bands = _TileBands()
        self._count = 0

    def update(self, x_true_tile, mask_tile=None, core=None):
        """Add one reference tile (see the class); returns self."""
        t = _as_cube(x_true_tile, "x_true_tile")
        self._bands.check(t.shape[2], "x_true_tile")
        rows, cols = _core_slices(core, t.shape)
        mask = _check_mask(mask_tile, t.shape, "mask_tile", image="the tile", allow_empty=True)
        t, _ = _valid_core(t, mask, rows, cols)
        if t.size == 0:
            return self
        low, high, total = np.min(t, axis=(0, 1)), np.max(t, axis=(0, 1)), np.sum(t, axis=(0, 1))
        if self._count == 0:
            self._low, self._high, self._total = low, high, total
        else:
            self._low, self._high = np.minimum(self._low, low), np.maximum(self._high, high)
            self._total = self._total + total
        self._count += t.shape[0] * t.shape[1]
        return self

    def result(self):
        """The ``ReferenceSummary`` of the tiles fed so far."""
        if self._count == 0:
            raise ValueError(
                "no valid reference pixel was fed: feed every tile of the reference with update() "
                "(and check the masks' polarity, True = valid pixel)"
            )
        return ReferenceSummary(
            constant=np.flatnonzero(~_varying(self._low, self._high)),
            minimum=self._low.copy(),
            maximum=self._high.copy(),
            mean=self._total / self._count,
            count=self._count,
        )


class StreamingMetrics:
    """``evaluate``'s metrics of a scene fed as tiles, for scenes too large to hold with the reference.

    sm = StreamingMetrics(scale_factor, ssim=False, constant=None)
    sm.update(x_true_tile, x_pred_tile, mask_tile=None, core=None)   # each tile once, any order
    sm.result() -> {"SAM", "ERGAS", "PSNR", "RMSE", "CC"[, "SSIM"]}

    Tiles: H' x W' x C numpy arrays of the reference and the estimate (the same bands in every
    tile, any dtype, computed in float64), their cores disjoint and together covering the image;
    mask_tile: H' x W' bool, True = valid pixel (None: all valid; a tile without a valid pixel adds
    nothing); core: the (rows, columns) slices of the tile that it owns and that are scored (None:
    the whole tile). ``result`` gives the same keys, units and meaning as
    ``evaluate(x_true, x_pred, scale_factor, ssim, mask)`` of the whole image, the same formulas
    (shared code), and the same numbers to 1e-9 relative (float64 sums taken in another order and
    the correlations' centred sums merged across tiles; observed differences are about 1e-15). One
    tile holding the whole image gives them exactly (with a mask, SSIM to rounding: the band means
    standing in for invalid pixels are summed in another order).

    Two passes. Every metric leaves out the reference's bands that are constant over the valid
    pixels (``constant_bands``), and SAM's per-pixel angle needs them known before the first tile:
        1. summary = ConstantBands(); summary.update(x_true_tile, mask_tile, core) for every tile
           (the reference only); summary = summary.result()
        2. sm = StreamingMetrics(r, ssim, constant=summary); sm.update(...) for every tile
    ``constant`` may also be an array of band indices known in advance, or None for "no constant
    band": a single pass, for references without blank bands. ``result`` then checks the claim
    against the tiles fed and raises ValueError naming the bands if it was wrong (the pre-pass
    is then needed). With a ReferenceSummary, ``result`` checks that the same valid pixels and
    values were fed in both passes.

    SSIM (ssim=True) is supported with halos. The Gaussian window reaches SSIM_HALO = 5 pixels, so
    each tile must carry a halo of at least 5 pixels of the image around its core on every side
    where the image continues, and none (core at the tile's edge) where the image ends; the halo
    is read but not scored. Then the score of every core pixel is the whole image's, and the image's
    5-pixel border is left out as in ``compute_ssim``. An image side shorter than 11 pixels must
    lie whole in each tile. SSIM also needs the pre-pass (its data range and, with masks, the
    band means that stand in for invalid pixels), so ``constant`` must be a ReferenceSummary.
    A side with no halo that is not the image's edge cannot be detected and loses 5 pixels of SSIM.

    Raises ValueError for a bad scale_factor or constant, ssim=True without a ReferenceSummary,
    tiles that are not equal-shape non-empty 3-D arrays, a band count that differs from the first
    tile's (or from ``constant``'s), a bad mask_tile or core, with SSIM a halo of 1 to 4 pixels;
    and in ``result`` when no valid pixel was fed, every band is constant, ``constant`` does not
    match the tiles fed, or (SSIM) no valid pixel lies inside the 5-pixel border.
    """

    def __init__(self, scale_factor, ssim=False, constant=None):
        self._scale = _check_scale(scale_factor)
        self._ssim = bool(ssim)
        self._summary = constant if isinstance(constant, ReferenceSummary) else None
        if self._summary is not None:
            self._constant = self._summary.constant
        elif constant is None:
            self._constant = np.zeros(0, dtype=int)
        else:
            given = np.asarray(constant)
            integers = given.size == 0 or np.issubdtype(given.dtype, np.integer)
            if given.ndim != 1 or not integers or (given.size and given.min() < 0):
                raise ValueError(
                    "constant must be None, the ReferenceSummary of ConstantBands().result(), or a "
                    f"1-D array of non-negative band indices; got {constant!r}"
                )
            self._constant = np.unique(given.astype(int))
        if self._ssim and self._summary is None:
            raise ValueError(
                "ssim=True needs the reference's data range and band means before the first tile: "
                "run ConstantBands over the reference's tiles and pass its result() as constant="
            )
        self._bands = _TileBands()
        self._keep = None
        self._sums = _PixelSums()
        self._low = self._high = None
        self._ssim_sum, self._ssim_count = 0.0, 0

    def _start(self, bands):
        """Fix the kept bands from ``constant`` at the first tile."""
        if self._summary is not None and self._summary.minimum.size != bands:
            raise ValueError(
                f"the tiles have {bands} bands but constant= summarises a reference of "
                f"{self._summary.minimum.size}: pass the ConstantBands result of this reference"
            )
        if self._constant.size and self._constant[-1] >= bands:
            raise ValueError(
                f"constant= lists band {self._constant[-1]} but the tiles have {bands} bands "
                "(indices start at 0)"
            )
        keep = np.ones(bands, dtype=bool)
        keep[self._constant] = False
        _require_varying(keep)
        self._keep = keep
        if self._ssim:
            low, high = self._summary.minimum[keep], self._summary.maximum[keep]
            self._data_range = float(high.max() - low.min())
            self._fill = self._summary.mean[keep]

    def update(self, x_true_tile, x_pred_tile, mask_tile=None, core=None):
        """Add one tile (see the class); returns self."""
        t, p = _as_cubes(x_true_tile, x_pred_tile, ("x_true_tile", "x_pred_tile"))
        self._bands.check(t.shape[2], "x_true_tile")
        if self._keep is None:
            self._start(t.shape[2])
        rows, cols = _core_slices(core, t.shape)
        mask = _check_mask(mask_tile, t.shape, "mask_tile", image="the tile", allow_empty=True)
        if self._ssim:
            self._check_halo(rows, cols, t.shape)
        tv, core_mask = _valid_core(t, mask, rows, cols)
        if tv.size == 0:
            return self
        pv = p[rows, cols] if core_mask is None else p[rows, cols][core_mask][:, None, :]
        low, high = np.min(tv, axis=(0, 1)), np.max(tv, axis=(0, 1))
        if self._low is None:
            self._low, self._high = low, high
        else:
            self._low, self._high = np.minimum(self._low, low), np.maximum(self._high, high)
        keep = self._keep
        if not keep.all():
            tv, pv = tv[:, :, keep], pv[:, :, keep]
        self._sums.add(tv, pv)
        if self._ssim:
            if not keep.all():
                t, p = t[:, :, keep], p[:, :, keep]
            ssim_map = _ssim_map(t, p, mask, self._fill, self._data_range)
            sums, count = _ssim_sums(
                ssim_map, mask, _ssim_counted(t.shape[0], rows), _ssim_counted(t.shape[1], cols)
            )
            self._ssim_sum = self._ssim_sum + sums
            self._ssim_count += count
        return self

    @staticmethod
    def _check_halo(rows, cols, shape):
        sides = (("top", rows.start), ("bottom", shape[0] - rows.stop),
                 ("left", cols.start), ("right", shape[1] - cols.stop))
        for side, halo in sides:
            if 0 < halo < SSIM_HALO:
                raise ValueError(
                    f"the tile has a {halo}-pixel halo at its {side}: SSIM needs a halo of at "
                    f"least SSIM_HALO = {SSIM_HALO} pixels where the image continues (and none at "
                    "the image's edge); give the tile a wider halo, or use ssim=False"
                )

    def _check_constant(self):
        """Refuse a result whose kept bands differ from those the tiles fed call for."""
        if self._summary is not None:
            s = self._summary
            if (s.count != self._sums.errors.count or not np.array_equal(s.minimum, self._low)
                    or not np.array_equal(s.maximum, self._high)):
                raise ValueError(
                    f"the tiles fed ({self._sums.errors.count} valid pixels) are not those of the "
                    f"first pass ({s.count} valid pixels, or other values): feed ConstantBands and "
                    "StreamingMetrics the same reference tiles, cores and masks"
                )
            return
        actual = np.flatnonzero(~_varying(self._low, self._high))
        if not np.array_equal(actual, self._constant):
            raise ValueError(
                f"the reference's constant bands over the valid pixels are {actual.tolist()} but "
                f"constant= gave {self._constant.tolist()}: every metric leaves constant bands out "
                "and SAM needs them before the first tile, so run ConstantBands over the reference "
                "tiles first and pass its result() as constant="
            )

    def result(self):
        """The metrics of the tiles fed so far, as ``evaluate`` (see the class)."""
        if self._sums.errors.count == 0:
            raise ValueError(
                "no valid pixel was fed: feed every tile with update() (and check the masks' "
                "polarity, True = valid pixel)"
            )
        _require_varying(_varying(self._low, self._high))
        self._check_constant()
        metrics = self._sums.metrics(self._scale)
        if self._ssim:
            if self._ssim_count == 0:
                raise _ssim_no_pixel_error()
            metrics["SSIM"] = float((self._ssim_sum / self._ssim_count).mean())
        return metrics


# ----------------------------------------------------------------------------- no-reference quality (QNR)

def _as_bands(x, name):
    """``x`` as an (H, W, C) array; an H x W image is one band."""
    a = np.asarray(x)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.size == 0 or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise ValueError(
            f"{name} must be a non-empty numeric H x W image or H x W x C cube; "
            f"got shape {a.shape}, dtype {a.dtype}"
        )
    return a


def _check_block(block):
    if isinstance(block, bool) or not isinstance(block, (int, np.integer)) or block < 2:
        raise ValueError(f"block must be an integer of at least 2 pixels; got {block!r}")


def _q_of_blocks(a, b):
    """Sum over blocks of Q between every band of ``a`` and every band of ``b``: a (Ca, Cb) array.

    a: (K, N, Ca), b: (K, N, Cb) float64, the N pixels of K blocks (``b is a`` computes the
    statistics once). The (N - 1) of the sample (co)variances cancels in Q, so plain sums of
    centred products are used.
    """

    def centred(x):
        mu = x.mean(axis=1)
        # A constant block must have exactly zero variance; its rounded mean need not equal
        # its value, so the centred values are zeroed explicitly.
        xc = (x - mu[:, None, :]) * (np.ptp(x, axis=1) != 0)[:, None, :]
        return mu, xc, np.einsum("knc,knc->kc", xc, xc)

    mu_a, ac, var_a = centred(a)
    mu_b, bc, var_b = (mu_a, ac, var_a) if b is a else centred(b)
    cov = np.matmul(ac.transpose(0, 2, 1), bc)

    mu_ab = mu_a[:, :, None] * mu_b[:, None, :]
    var_sum = var_a[:, :, None] + var_b[:, None, :]
    mean_sq = mu_a[:, :, None] ** 2 + mu_b[:, None, :] ** 2
    den = var_sum * mean_sq
    # The special cases of Wang and Bovik's reference code (img_qi.m): two constant blocks give
    # the luminance term alone, two zero-mean blocks give 1.
    q = np.where(
        den != 0,
        4 * cov * mu_ab / np.where(den != 0, den, 1.0),
        np.where(mean_sq != 0, 2 * mu_ab / np.where(mean_sq != 0, mean_sq, 1.0), 1.0),
    )
    return q.sum(axis=0)


class NoValidBlock(ValueError):
    """``uiqi`` / ``qnr`` found no whole valid block: the image, or its valid part, is smaller than one
    block. A caller may retry with a smaller block."""


def uiqi(a, b, block, mask=None):
    """Universal image quality index Q (Wang and Bovik, IEEE SPL 9(3), 2002) between every band pair.

    a: H x W x Ca (or H x W, one band), b: H x W x Cb, any units; block: side in pixels (>= 2) of
    the non-overlapping square blocks; mask: H x W bool, True = valid pixel (None: all valid).
    Returns a Ca x Cb float64 array whose (i, j) entry is Q(a_i, b_j) averaged over the blocks:
        Q = 4 sigma_ab mu_a mu_b / ((sigma_a^2 + sigma_b^2) (mu_a^2 + mu_b^2))
    per block (means, variances and covariance of the block's pixels), in [-1, 1]. As Wang and
    Bovik's code, two constant blocks give 2 mu_a mu_b / (mu_a^2 + mu_b^2), and two blocks of
    zero mean give 1.

    Blocks tile the image from its top-left corner; rows and columns beyond the last whole block
    are not used, and with a mask a block counts only when all its pixels are valid. All pairs
    are computed at once (batched matrix products over blocks), a batch of blocks at a time.
    Raises ValueError for inputs that are not 2-D or 3-D, differ in height or width, a block
    that is not an integer >= 2 or larger than the image, a bad mask, or when no block is whole
    and valid.
    """
    same = b is a
    a = _as_bands(a, "a")
    b = a if same else _as_bands(b, "b")
    if a.shape[:2] != b.shape[:2]:
        raise ValueError(
            f"a and b must have the same height and width; got {a.shape[:2]} and {b.shape[:2]}"
        )
    _check_block(block)
    h, w = a.shape[:2]
    if h < block or w < block:
        raise NoValidBlock(
            f"the image ({h} x {w} pixels) is smaller than one {block} x {block} block: "
            "pass a smaller block"
        )
    total, count = _uiqi_sum(a, b, block, _check_mask(mask, a.shape), same)
    if count == 0:
        raise NoValidBlock(
            f"no {block} x {block} block is entirely valid under the mask: pass a smaller block"
        )
    return total / count


def _uiqi_sum(a, b, block, mask, same):
    """``uiqi``'s sum over blocks: ((Ca, Cb) sum of Q over the whole valid blocks, number of blocks).

    a: (H, W, Ca), b: (H, W, Cb), any numeric dtype (cast to float64 a batch of blocks at a time;
    ``same``: b is a); mask: H x W bool or None. No block (an image smaller than one) gives zeros.
    """
    h, w = a.shape[:2]
    nh, nw = h // block, w // block
    if mask is None:
        rows, cols = np.divmod(np.arange(nh * nw), nw)
    else:
        whole = mask[:nh * block, :nw * block].reshape(nh, block, nw, block).all(axis=(1, 3))
        rows, cols = np.nonzero(whole)

    # Views (no copy): axis 0 and 2 index the blocks, 1 and 3 the pixels within a block.
    a_blocks = a[:nh * block, :nw * block].reshape(nh, block, nw, block, a.shape[2])
    b_blocks = b[:nh * block, :nw * block].reshape(nh, block, nw, block, b.shape[2])
    n = block * block
    per_block = max(n * (a.shape[2] + b.shape[2]), a.shape[2] * b.shape[2])
    batch = max(1, _UIQI_BATCH_ELEMENTS // per_block)
    total = np.zeros((a.shape[2], b.shape[2]))
    for start in range(0, rows.size, batch):
        r, c = rows[start:start + batch], cols[start:start + batch]
        a_k = a_blocks[r, :, c].reshape(r.size, n, a.shape[2]).astype(np.float64)
        b_k = a_k if same else b_blocks[r, :, c].reshape(r.size, n, b.shape[2]).astype(np.float64)
        total += _q_of_blocks(a_k, b_k)
    return total, rows.size


def _lr_block(block, ratio):
    """QNR's block side at the low resolution for ``block`` at the high one and scale ratio r."""
    return max(block // ratio, 2)


def _require_two_varying(keep):
    """Refuse an LR-HSI with fewer than 2 varying bands (``keep``: True = varying)."""
    if keep.sum() < 2:
        raise ValueError(
            f"y has {keep.sum()} band(s) that vary over its valid pixels; D_lambda needs at least 2"
        )


def qnr(x_hat, y, z, z_lr, block=QNR_BLOCK, mask=None, lr_mask=None):
    """Quality with No Reference (QNR) of a fused hyperspectral image, in its HSI-MSI form.

    Follows L. Alparone, B. Aiazzi, S. Baronti, A. Garzelli, F. Nencini, M. Selva, "Multispectral
    and panchromatic data fusion assessment without reference", PE&RS 74(2):193-200, 2008, as
    computed by the "original QNR paper" option of the pansharpening toolbox (Vivone et al., IEEE
    TGRS 2015): the low-resolution terms are computed on the low-resolution images themselves.
    "HSI-MSI form": the LR-HSI bands take the place of the multispectral bands and each HR-MSI
    band takes the place of the panchromatic image, so D_s averages over all (HSI band, MSI band)
    pairs instead of over the MS bands against one pan.

    x_hat: fused H x W x C; y: LR-HSI h x w x C with H = r h and W = r w (integer r); z: HR-MSI
    H x W x Cm; z_lr: the HR-MSI degraded to the LR grid, h x w x Cm (the learned SpaDnet(Z), or
    block averaging); same units within each pair of images compared. With Q = ``uiqi`` averaged
    over non-overlapping blocks of ``block`` x ``block`` pixels at H x W and of
    max(block // r, 2) pixels at h x w (the same ground when r divides block, e.g. 32 with
    r = 2, 4, 8, 16):
        D_lambda = ( 1/(C(C-1)) sum_{i != j} |Q(X_i, X_j) - Q(Y_i, Y_j)|^p )^(1/p)
        D_s = ( 1/(C Cm) sum_i sum_k |Q(X_i, Z_k) - Q(Y_i, Z_lr_k)|^q )^(1/q)
        QNR = (1 - D_lambda)^alpha (1 - D_s)^beta,     p = q = alpha = beta = 1.
    D_lambda and D_s are 0 for a fusion that keeps the LR-HSI's inter-band and HSI-MSI
    relationships exactly (QNR = 1); they are at most 2 (|Q| <= 1), usually well below 1.

    mask: H x W bool, True = valid pixel of x_hat and z; lr_mask: h x w bool for y and z_lr
    (None: all valid); a block counts only when all its pixels are valid. HSI bands constant over
    the valid pixels of y (zeroed water-absorption bands) are left out, as the reference metrics
    do. Returns {"D_lambda": float, "D_s": float, "QNR": float}. Raises ValueError for shapes
    that do not fit as above (not integer ratio, band counts that differ), a bad block or mask, or
    fewer than 2 varying HSI bands; NoValidBlock (a ValueError) when no whole block is valid.
    ``StreamingQNR`` gives the same numbers from block-aligned tiles.
    """
    # Not cast to float64 here: uiqi casts one batch of blocks at a time.
    x_hat, y = _as_bands(x_hat, "x_hat"), _as_bands(y, "y")
    z, z_lr = _as_bands(z, "z"), _as_bands(z_lr, "z_lr")
    (big_h, big_w, c), (h, w) = x_hat.shape, y.shape[:2]
    if y.shape[2] != c:
        raise ValueError(
            f"x_hat has {c} bands but y has {y.shape[2]}: pass the fused image of this LR-HSI"
        )
    if z.shape[:2] != (big_h, big_w) or z_lr.shape[:2] != (h, w) or z.shape[2] != z_lr.shape[2]:
        raise ValueError(
            f"z must be {big_h} x {big_w} (as x_hat) and z_lr {h} x {w} (as y), with the same bands; "
            f"got z {z.shape} and z_lr {z_lr.shape}"
        )
    if big_h % h or big_w % w or big_h // h != big_w // w:
        raise ValueError(
            f"x_hat ({big_h} x {big_w}) must be an integer multiple r of y ({h} x {w}), "
            "the same r on both axes"
        )
    _check_block(block)
    block_lr = _lr_block(block, big_h // h)

    lr_mask = _check_mask(lr_mask, y.shape, "lr_mask")
    keep = _varying_bands(y if lr_mask is None else y[lr_mask][:, None, :])
    _require_two_varying(keep)
    if not keep.all():
        x_hat, y = x_hat[:, :, keep], y[:, :, keep]

    return _qnr_indices(
        uiqi(x_hat, x_hat, block, mask), uiqi(y, y, block_lr, lr_mask),
        uiqi(x_hat, z, block, mask), uiqi(y, z_lr, block_lr, lr_mask),
    )


def _qnr_indices(q_x, q_y, q_xz, q_yz):
    """D_lambda, D_s and QNR from the block-averaged Q matrices of X-X, Y-Y, X-Z and Y-Z_lr."""
    off_diagonal = ~np.eye(q_x.shape[0], dtype=bool)
    d_lambda = float(np.abs(q_x - q_y)[off_diagonal].mean())
    d_s = float(np.abs(q_xz - q_yz).mean())
    return {"D_lambda": d_lambda, "D_s": d_s, "QNR": (1.0 - d_lambda) * (1.0 - d_s)}


class StreamingQNR:
    """``qnr`` of a fused image scored tile by tile, for scenes too large to hold at once.

    sq = StreamingQNR((H, W), ratio, block=QNR_BLOCK)
    sq.update(x_hat_tile, y_tile, z_tile, z_lr_tile, origin, mask_tile=None, lr_mask_tile=None)
    sq.result() -> {"D_lambda", "D_s", "QNR"}

    QNR averages Q over non-overlapping blocks (``block`` pixels at H x W, max(block // r, 2) at
    h x w, both from the top-left corner), and a block's Q needs only its own pixels, so a tile
    made of whole blocks of both grids adds its blocks' Q to the sums exactly. (H, W): the fused
    image's size in pixels; ratio: the integer r with H = r h, W = r w. Each update gives the HR
    tiles of the fused image (H' x W' x C) and the HR-MSI (H' x W' x Cm, or H' x W'), the matching
    LR tiles of the LR-HSI (H'/r x W'/r x C) and of the HR-MSI on the LR grid (H'/r x W'/r x Cm),
    ``origin`` = (row, column) of the HR tile's top-left pixel in the fused image, and optional
    masks (H' x W' and H'/r x W'/r bool, True = valid pixel; a block counts only when all its
    pixels are valid). Tiles must not overlap and must together cover the image; each must start
    at multiples of ``step`` (lcm of the HR block and r times the LR block: 32 for r = 2, 4, 8, 16;
    480 for r = 3, 5) on both axes and end at a multiple of ``step`` or at the image's edge, so no
    block is split. The result then equals ``qnr`` of the whole images to 1e-9 relative (the
    block sums added in another order); the HSI bands constant over the valid pixels of y are
    left out at the end, as ``qnr`` does.

    Raises ValueError for a bad size, ratio or block; in ``update`` for tiles whose shapes do not
    fit as above, band counts that differ from the first tile's, a misaligned, overlapping or
    out-of-image tile, a bad mask; in ``result`` when part of the image was never fed or fewer
    than 2 HSI bands vary; NoValidBlock (a ValueError) when no block is whole and valid.
    """

    def __init__(self, shape, ratio, block=QNR_BLOCK):
        try:
            big_h, big_w = (int(v) for v in shape)
        except (TypeError, ValueError):
            big_h = big_w = 0
        if isinstance(ratio, bool) or not isinstance(ratio, (int, np.integer)) or ratio < 1:
            raise ValueError(f"ratio must be a positive integer (H / h); got {ratio!r}")
        if big_h < 1 or big_w < 1 or big_h % ratio or big_w % ratio:
            raise ValueError(
                f"shape must be the fused image's (H, W), positive multiples of ratio {ratio}; "
                f"got {shape!r}"
            )
        _check_block(block)
        self.shape, self.ratio, self.block = (big_h, big_w), int(ratio), block
        self.block_lr = _lr_block(block, self.ratio)
        self.step = math.lcm(block, self.ratio * self.block_lr)
        self._fed = np.zeros((-(-big_h // self.step), -(-big_w // self.step)), dtype=bool)
        self._bands, self._msi_bands = _TileBands(), _TileBands()
        self._hr = self._lr = None
        self._low = self._high = None

    def _place(self, origin, size):
        """Check the tile's alignment and mark its cells as fed; returns nothing."""
        try:
            r0, c0 = (int(v) for v in origin)
        except (TypeError, ValueError):
            raise ValueError(
                f"origin must be the tile's (row, column) in the fused image; got {origin!r}"
            ) from None
        bounds = []
        axes = ((r0, size[0], self.shape[0], "row"), (c0, size[1], self.shape[1], "column"))
        for start, extent, full, axis in axes:
            stop = start + extent
            if start < 0 or stop > full:
                raise ValueError(
                    f"the tile's {axis}s {start}..{stop - 1} lie outside the image's 0..{full - 1}"
                )
            if start % self.step or (stop % self.step and stop != full):
                raise ValueError(
                    f"the tile's {axis}s {start}..{stop - 1} would split a QNR block: tiles must "
                    f"start at multiples of {self.step} (StreamingQNR.step) and end at one or at "
                    "the image's edge"
                )
            bounds.append(slice(start // self.step, -(-stop // self.step)))
        if self._fed[bounds[0], bounds[1]].any():
            raise ValueError(
                f"the tile at origin {(r0, c0)} overlaps a tile fed before: feed each part once"
            )
        self._fed[bounds[0], bounds[1]] = True

    def update(self, x_hat_tile, y_tile, z_tile, z_lr_tile, origin, mask_tile=None,
               lr_mask_tile=None):
        """Add one tile (see the class); returns self."""
        x, y = _as_bands(x_hat_tile, "x_hat_tile"), _as_bands(y_tile, "y_tile")
        z, z_lr = _as_bands(z_tile, "z_tile"), _as_bands(z_lr_tile, "z_lr_tile")
        (th, tw, c), r = x.shape, self.ratio
        lr_size = (th // r, tw // r)
        if (th % r or tw % r or z.shape[:2] != (th, tw) or y.shape[:2] != lr_size
                or z_lr.shape[:2] != lr_size):
            raise ValueError(
                f"x_hat_tile and z_tile must be H' x W' with H', W' multiples of r = {r}, y_tile "
                f"and z_lr_tile H'/r x W'/r; got x_hat_tile {x.shape}, z_tile {z.shape}, y_tile "
                f"{y.shape}, z_lr_tile {z_lr.shape}"
            )
        if y.shape[2] != c or z.shape[2] != z_lr.shape[2]:
            raise ValueError(
                f"x_hat_tile and y_tile must have the same bands, z_tile and z_lr_tile too; got "
                f"{c} and {y.shape[2]}, {z.shape[2]} and {z_lr.shape[2]}"
            )
        self._bands.check(c, "x_hat_tile")
        self._msi_bands.check(z.shape[2], "z_tile")
        mask = _check_mask(mask_tile, x.shape, "mask_tile", image="the tile", allow_empty=True)
        lr_mask = _check_mask(
            lr_mask_tile, y.shape, "lr_mask_tile", image="the LR tile", allow_empty=True
        )
        self._place(origin, (th, tw))

        y_valid, _ = _valid_core(y, lr_mask, slice(None), slice(None))
        if y_valid.size:
            low, high = np.min(y_valid, axis=(0, 1)), np.max(y_valid, axis=(0, 1))
            if self._low is None:
                self._low, self._high = low, high
            else:
                self._low, self._high = np.minimum(self._low, low), np.maximum(self._high, high)
        hr = (_uiqi_sum(x, x, self.block, mask, True), _uiqi_sum(x, z, self.block, mask, False))
        lr = (_uiqi_sum(y, y, self.block_lr, lr_mask, True),
              _uiqi_sum(y, z_lr, self.block_lr, lr_mask, False))
        self._hr = hr if self._hr is None else _add_block_sums(self._hr, hr)
        self._lr = lr if self._lr is None else _add_block_sums(self._lr, lr)
        return self

    def result(self):
        """D_lambda, D_s and QNR of the tiles fed (see the class)."""
        missing = np.argwhere(~self._fed)
        if missing.size:
            r0, c0 = missing[0] * self.step
            raise ValueError(
                f"{len(missing)} part(s) of the image were never fed, the first at rows {r0}.. and "
                f"columns {c0}.. (cells of {self.step} x {self.step} pixels): feed every tile once"
            )
        if self._hr[0][1] == 0 or self._lr[0][1] == 0:
            raise NoValidBlock(
                f"no {self.block} x {self.block} block (or {self.block_lr} x {self.block_lr} at the "
                "low resolution) is entirely valid: pass a smaller block"
            )
        if self._low is None:
            raise ValueError(
                "y has no valid pixel: check lr_mask_tile's polarity (True = valid pixel)"
            )
        keep = _varying(self._low, self._high)
        _require_two_varying(keep)
        (q_x, n_hr), (q_xz, _) = self._hr
        (q_y, n_lr), (q_yz, _) = self._lr
        return _qnr_indices(q_x[keep][:, keep] / n_hr, q_y[keep][:, keep] / n_lr,
                            q_xz[keep] / n_hr, q_yz[keep] / n_lr)


def _add_block_sums(a, b):
    """Element-wise sum of two tuples of (Q sum, block count) pairs."""
    return tuple((sa + sb, na + nb) for (sa, na), (sb, nb) in zip(a, b))
