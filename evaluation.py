"""Image-quality metrics (SAM, ERGAS, PSNR, RMSE, CC, SSIM) for H x W x C hyperspectral cubes."""

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

# Floor on mean(reference band)^2 in ERGAS: a constant-zero reference band
# would otherwise divide by zero.  Far below any real band's squared mean.
ERGAS_EPS = 1e-12

# Wang et al. (2004) SSIM settings.  truncate=3.5 with sigma=1.5 gives ndimage
# an 11-tap kernel (radius int(3.5 * 1.5 + 0.5) = 5), as skimage uses.
SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03

METRIC_NAMES = ("SAM", "ERGAS", "PSNR", "RMSE", "CC", "SSIM")

_FORMATS = {
    "SAM": ".3f",
    "ERGAS": ".3f",
    "PSNR": ".2f",
    "RMSE": ".5f",
    "CC": ".4f",
    "SSIM": ".4f",
}


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


def _band_sum(a, b):
    """Per-band sum over pixels of a * b, without a full-size temporary."""
    return np.einsum("ijk,ijk->k", a, b)


def compute_sam(x_true, x_pred):
    """Spectral angle mapper in degrees, averaged over all pixels.

    Per pixel with spectra t and p:
        angle = arccos(clip(<t, p> / (||t|| * ||p|| + 1e-7), -1, 1)) * 180 / pi
    The clip removes the upstream's nan when rounding pushes the cosine past 1.
    Pixels whose two spectra are bit-identical (including both all-zero) are
    defined as 0 degrees; otherwise the 1e-7 would give identical spectra a
    small spurious angle (and both-zero pixels 90 degrees).  A pixel where
    exactly one spectrum is all-zero gives arccos(0) = 90 degrees.
    """
    t, p = _as_cubes(x_true, x_pred)
    dot = np.einsum("ijk,ijk->ij", t, p)
    norm_prod = np.sqrt(np.einsum("ijk,ijk->ij", t, t)) * np.sqrt(
        np.einsum("ijk,ijk->ij", p, p)
    )
    cos = np.clip(dot / (norm_prod + SAM_EPS), -1.0, 1.0)
    angles = np.degrees(np.arccos(cos))
    angles = np.where(np.all(t == p, axis=2), 0.0, angles)
    return float(angles.mean())


def compute_psnr(x_true, x_pred):
    """Mean over bands of the per-band peak signal-to-noise ratio in dB.

    Per band b:
        PSNR_b = 10 * log10( max(x_true_b)^2 / mean((x_true_b - x_pred_b)^2) )
    (the peak is the band's own maximum of the reference, as upstream).
    PSNR_b is clipped to [-PSNR_CAP_DB, PSNR_CAP_DB] = [-100, 100]; a band with
    zero MSE is PSNR_CAP_DB (whatever its peak), and a band with zero peak but
    non-zero MSE is -PSNR_CAP_DB.  No floating-point warnings are emitted.
    """
    t, p = _as_cubes(x_true, x_pred)
    mse = np.mean((t - p) ** 2, axis=(0, 1))
    peak_sq = np.max(t, axis=(0, 1)) ** 2
    # inf/nan/-inf from the zero cases are replaced just below.
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        band = 10.0 * np.log10(peak_sq / mse)
    band = np.where(mse == 0, PSNR_CAP_DB, np.clip(band, -PSNR_CAP_DB, PSNR_CAP_DB))
    return float(band.mean())


def compute_ergas(x_true, x_pred, scale_factor):
    """Relative dimensionless global error in synthesis (ERGAS).

        ERGAS = (100 / scale_factor)
                * sqrt( mean_b( mean((x_true_b - x_pred_b)^2)
                                / max(mean(x_true_b)^2, ERGAS_EPS) ) )
    with ERGAS_EPS = 1e-12, which only matters for (near-)zero-mean reference
    bands and keeps the result finite.  scale_factor is the spatial ratio
    between the high- and low-resolution images and must be positive.
    """
    t, p = _as_cubes(x_true, x_pred)
    try:
        scale = float(scale_factor)
    except (TypeError, ValueError):
        scale = float("nan")
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale_factor must be a positive number; got {scale_factor!r}")
    mse = np.mean((t - p) ** 2, axis=(0, 1))
    mean_sq = np.mean(t, axis=(0, 1)) ** 2
    ratio = mse / np.maximum(mean_sq, ERGAS_EPS)
    return float(100.0 / scale * np.sqrt(ratio.mean()))


def compute_cc(x_true, x_pred):
    """Mean over bands of the Pearson correlation coefficient.

    Per band b, with t, p the flattened bands and bars their means:
        CC_b = sum((t - t_bar) * (p - p_bar))
               / sqrt(sum((t - t_bar)^2) * sum((p - p_bar)^2)),
    clipped to [-1, 1] like np.corrcoef.  If either band is constant (zero
    variance) CC_b is 1.0 when both are constant with the same value, else 0.0.
    """
    t, p = _as_cubes(x_true, x_pred)
    tc = t - t.mean(axis=(0, 1))
    pc = p - p.mean(axis=(0, 1))
    num = _band_sum(tc, pc)
    den = np.sqrt(_band_sum(tc, tc) * _band_sum(pc, pc))
    # Decide constancy from the raw values: the rounded mean of a constant band
    # need not equal its value, so the centred band can be tiny but non-zero.
    t_const = np.ptp(t, axis=(0, 1)) == 0
    p_const = np.ptp(p, axis=(0, 1)) == 0
    degenerate = t_const | p_const | (den == 0)
    r = np.clip(num / np.where(degenerate, 1.0, den), -1.0, 1.0)
    same_constant = t_const & p_const & (t[0, 0] == p[0, 0])
    r = np.where(degenerate, np.where(same_constant, 1.0, 0.0), r)
    return float(r.mean())


def compute_rmse(x_true, x_pred):
    """Root mean squared error over all pixels and bands: sqrt(mean((x_true - x_pred)^2))."""
    t, p = _as_cubes(x_true, x_pred)
    return float(np.sqrt(np.mean((t - p) ** 2)))


def _ssim_blur(a):
    """Gaussian-weighted local mean within each band (no mixing across bands)."""
    return gaussian_filter(
        a, sigma=(SSIM_SIGMA, SSIM_SIGMA, 0.0), truncate=SSIM_TRUNCATE, mode="reflect"
    )


def compute_ssim(x_true, x_pred, data_range=None):
    """Mean over bands of the structural similarity index (Wang et al. 2004).

    With Gaussian-weighted (11x11, sigma 1.5) local means mu, variances
    sigma^2 and covariance sigma_tp (population normalisation), per pixel:
        SSIM = ((2 mu_t mu_p + C1) (2 sigma_tp + C2))
               / ((mu_t^2 + mu_p^2 + C1) (sigma_t^2 + sigma_p^2 + C2)),
        C1 = (0.01 L)^2,  C2 = (0.03 L)^2,
    L = data_range, defaulting to x_true.max() - x_true.min() over the whole
    cube (1.0 if that is 0).  The map is averaged after dropping a 5-pixel
    border, the filter radius, on each spatial side, matching
    skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, channel_axis=2).  A spatial axis shorter
    than the 11-pixel window (where skimage refuses) is not cropped.
    """
    t, p = _as_cubes(x_true, x_pred)
    if data_range is None:
        data_range = float(t.max() - t.min())
        if data_range == 0:
            data_range = 1.0
    elif not data_range > 0:
        raise ValueError(f"data_range must be positive; got {data_range!r}")

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
    return float(ssim_map[rows, cols].mean(axis=(0, 1)).mean())


def evaluate(x_true, x_pred, scale_factor, ssim=True):
    """All metrics as a dict with keys SAM, ERGAS, PSNR, RMSE, CC, SSIM (in that order).

    ``ssim=False`` leaves out SSIM, by far the costliest, for frequent checks during training.
    """
    # Convert once so each metric below reuses the float64 arrays.
    t, p = _as_cubes(x_true, x_pred)
    metrics = {
        "SAM": compute_sam(t, p),
        "ERGAS": compute_ergas(t, p, scale_factor),
        "PSNR": compute_psnr(t, p),
        "RMSE": compute_rmse(t, p),
        "CC": compute_cc(t, p),
    }
    if ssim:
        metrics["SSIM"] = compute_ssim(t, p)
    return metrics


def format_metrics(metrics):
    """One line such as 'SAM 1.234  ERGAS 0.567  PSNR 40.12  RMSE 0.00312  CC 0.9991  SSIM 0.9876'.

    Keys are printed in the dict's order; unknown keys use 4 significant digits.
    """
    return "  ".join(
        f"{name} {format(float(value), _FORMATS.get(name, '.4g'))}"
        for name, value in metrics.items()
    )
