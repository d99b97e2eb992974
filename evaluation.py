"""Image-quality metrics for H x W x C hyperspectral cubes.

With a reference: SAM, ERGAS, PSNR, RMSE, CC, SSIM (the UDALN formulas), each over the valid pixels
of an optional H x W boolean mask (True = valid pixel) and over the bands that vary there: bands of
the reference that are constant over the valid pixels (zeroed water-absorption bands, a blank
channel) are left out of every metric, SAM's spectra included; ``constant_bands`` lists them.

Without a reference: the QNR of Alparone et al. (2008) in its hyperspectral-multispectral form
(``qnr``), built on the universal image quality index of Wang and Bovik (2002) (``uiqi``).

Invalid arguments (shapes, masks, parameters) raise ValueError with a message that says what to fix.
"""

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


def _as_cubes(x_true, x_pred):
    """Return both inputs as float64 arrays after checking they are equal-shape, non-empty 3-D cubes."""
    t = np.asarray(x_true, dtype=np.float64)
    p = np.asarray(x_pred, dtype=np.float64)
    if t.ndim != 3 or p.ndim != 3 or t.shape != p.shape or t.size == 0:
        raise ValueError(
            "x_true and x_pred must be non-empty 3-D (H, W, C) arrays of the same "
            f"shape; got x_true shape {t.shape} and x_pred shape {p.shape}"
        )
    return t, p


def _check_mask(mask, shape, name="mask"):
    """The H x W boolean validity mask, or None when it is None or marks every pixel valid."""
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
            f"{name} has shape {m.shape} but the image is {shape[0]} x {shape[1]} pixels: "
            f"pass an H x W mask of the same height and width"
        )
    if not m.any():
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


def _varying_bands(t):
    """Per band of the (H, W, C) or gathered (N, 1, C) reference: True where it is not constant."""
    return np.ptp(t, axis=(0, 1)) != 0


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
    if not keep.any():
        raise ValueError(
            f"every band of x_true (all {keep.size}) is constant over the valid pixels, so no "
            "metric is defined: check that the reference is not blank and that the mask marks "
            "its valid pixels (True = valid)"
        )
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


# ----------------------------------------------------------------------------- metrics on prepared cubes
# Each takes the float64 (H, W, K) or (N, 1, K) cubes of _valid_data: valid pixels, varying bands.

def _band_sum(a, b):
    """Per-band sum over pixels of a * b, without a full-size temporary."""
    return np.einsum("ijk,ijk->k", a, b)


def _sam(t, p):
    dot = np.einsum("ijk,ijk->ij", t, p)
    norm_prod = np.sqrt(np.einsum("ijk,ijk->ij", t, t)) * np.sqrt(
        np.einsum("ijk,ijk->ij", p, p)
    )
    cos = np.clip(dot / (norm_prod + SAM_EPS), -1.0, 1.0)
    angles = np.degrees(np.arccos(cos))
    angles = np.where(np.all(t == p, axis=2), 0.0, angles)
    return float(angles.mean())


def _psnr(t, p):
    mse = np.mean((t - p) ** 2, axis=(0, 1))
    peak_sq = np.max(t, axis=(0, 1)) ** 2
    # inf/nan/-inf from the zero cases are replaced just below.
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        band = 10.0 * np.log10(peak_sq / mse)
    band = np.where(mse == 0, PSNR_CAP_DB, np.clip(band, -PSNR_CAP_DB, PSNR_CAP_DB))
    return float(band.mean())


def _ergas(t, p, scale):
    mse = np.mean((t - p) ** 2, axis=(0, 1))
    mean_sq = np.mean(t, axis=(0, 1)) ** 2
    ratio = mse / np.maximum(mean_sq, ERGAS_EPS)
    return float(100.0 / scale * np.sqrt(ratio.mean()))


def _cc(t, p):
    tc = t - t.mean(axis=(0, 1))
    pc = p - p.mean(axis=(0, 1))
    num = _band_sum(tc, pc)
    den = np.sqrt(_band_sum(tc, tc) * _band_sum(pc, pc))
    # Decide constancy from the raw values: the rounded mean of a constant band
    # need not equal its value, so the centred band can be tiny but non-zero.
    degenerate = (np.ptp(p, axis=(0, 1)) == 0) | (den == 0)
    r = np.clip(num / np.where(degenerate, 1.0, den), -1.0, 1.0)
    return float(np.where(degenerate, 0.0, r).mean())


def _rmse(t, p):
    return float(np.sqrt(np.mean((t - p) ** 2)))


def _ssim_blur(a):
    """Gaussian-weighted local mean within each band (no mixing across bands)."""
    return gaussian_filter(
        a, sigma=(SSIM_SIGMA, SSIM_SIGMA, 0.0), truncate=SSIM_TRUNCATE, mode="reflect"
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
    if mask is not None:
        # Whatever the invalid pixels hold (0, a nodata value, 1e6) must not reach the
        # valid pixels' windows: both images get the same neutral value there.
        fill = t_valid.mean(axis=(0, 1))
        t = np.where(mask[:, :, None], t, fill)
        p = np.where(mask[:, :, None], p, fill)

    mu_t = _ssim_blur(t)
    mu_p = _ssim_blur(p)
    var_t = _ssim_blur(t * t) - mu_t * mu_t
    var_p = _ssim_blur(p * p) - mu_p * mu_p
    cov = _ssim_blur(t * p) - mu_t * mu_p

    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    ssim_map = ((2 * mu_t * mu_p + c1) * (2 * cov + c2)) / (
        (mu_t**2 + mu_p**2 + c1) * (var_t + var_p + c2)
    )

    # Border pixels see reflected data, so (like skimage) they are left out.
    radius = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)
    window = 2 * radius + 1
    h, w = ssim_map.shape[:2]
    rows = slice(radius, h - radius) if h >= window else slice(None)
    cols = slice(radius, w - radius) if w >= window else slice(None)
    if mask is None:
        return float(ssim_map[rows, cols].mean(axis=(0, 1)).mean())
    inner = mask[rows, cols]
    if not inner.any():
        raise ValueError(
            f"SSIM leaves out a {radius}-pixel border and no valid pixel lies inside it: "
            "evaluate a larger valid area, or leave SSIM out (evaluate(..., ssim=False))"
        )
    return float(ssim_map[rows, cols][inner].mean(axis=0).mean())


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
    return _sam(*_valid_data(t, p, _check_mask(mask, t.shape))[:2])


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
    return _psnr(*_valid_data(t, p, _check_mask(mask, t.shape))[:2])


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
    return _ergas(*_valid_data(t, p, _check_mask(mask, t.shape))[:2], scale)


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
    return _cc(*_valid_data(t, p, _check_mask(mask, t.shape))[:2])


def compute_rmse(x_true, x_pred, mask=None):
    """Root mean squared error over the valid pixels and varying bands: sqrt(mean((x_true - x_pred)^2)).

    x_true, x_pred: H x W x C cubes; the result is in their units.

    mask: H x W bool, True = valid pixel (None: all valid); only the valid pixels count. Bands of
    x_true constant over the valid pixels are left out (``constant_bands``). Raises ValueError for
    cubes that are not equal-shape, non-empty 3-D arrays, a mask that is not boolean, not H x W or
    without a valid pixel, and when every band of x_true is constant over the valid pixels.
    """
    t, p = _as_cubes(x_true, x_pred)
    return _rmse(*_valid_data(t, p, _check_mask(mask, t.shape))[:2])


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
    """
    t, p = _as_cubes(x_true, x_pred)
    scale = _check_scale(scale_factor)
    mask = _check_mask(mask, t.shape)
    tv, pv, keep = _valid_data(t, p, mask)
    metrics = {
        "SAM": _sam(tv, pv),
        "ERGAS": _ergas(tv, pv, scale),
        "PSNR": _psnr(tv, pv),
        "RMSE": _rmse(tv, pv),
        "CC": _cc(tv, pv),
    }
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
    nh, nw = h // block, w // block
    if nh == 0 or nw == 0:
        raise NoValidBlock(
            f"the image ({h} x {w} pixels) is smaller than one {block} x {block} block: "
            "pass a smaller block"
        )
    mask = _check_mask(mask, a.shape)
    if mask is None:
        rows, cols = np.divmod(np.arange(nh * nw), nw)
    else:
        whole = mask[:nh * block, :nw * block].reshape(nh, block, nw, block).all(axis=(1, 3))
        rows, cols = np.nonzero(whole)
        if rows.size == 0:
            raise NoValidBlock(
                f"no {block} x {block} block is entirely valid under the mask: pass a smaller block"
            )

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
    return total / rows.size


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
    block_lr = max(block // (big_h // h), 2)

    lr_mask = _check_mask(lr_mask, y.shape, "lr_mask")
    keep = _varying_bands(y if lr_mask is None else y[lr_mask][:, None, :])
    if keep.sum() < 2:
        raise ValueError(
            f"y has {keep.sum()} band(s) that vary over its valid pixels; D_lambda needs at least 2"
        )
    if not keep.all():
        x_hat, y = x_hat[:, :, keep], y[:, :, keep]

    q_x = uiqi(x_hat, x_hat, block, mask)
    q_y = uiqi(y, y, block_lr, lr_mask)
    off_diagonal = ~np.eye(q_x.shape[0], dtype=bool)
    d_lambda = float(np.abs(q_x - q_y)[off_diagonal].mean())
    d_s = float(np.abs(uiqi(x_hat, z, block, mask) - uiqi(y, z_lr, block_lr, lr_mask)).mean())
    return {"D_lambda": d_lambda, "D_s": d_s, "QNR": (1.0 - d_lambda) * (1.0 - d_s)}
