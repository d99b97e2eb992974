"""MTF-GLP-HS: hypersharpening by the MTF-matched generalised Laplacian pyramid.

M. Selva, B. Aiazzi, F. Butera, L. Chiarantini and S. Baronti, "Hyper-sharpening: a first approach
on SIM-GA data", IEEE J. Sel. Topics Appl. Earth Observ. Remote Sens. (JSTARS) 8(6), 3008-3024,
2015: each HSI band gets its own synthetic high-resolution "pan", the linear combination of the MSI
bands (and a constant) that best fits that band at low resolution. The band is then sharpened by the MTF-GLP scheme of B. Aiazzi, L. Alparone,
S. Baronti, A. Garzelli and M. Selva, "MTF-tailored multiscale fusion of high-resolution MS and Pan
imagery", PE&RS 72(5), 2006, with the high-pass modulation (HPM) injection of G. Vivone et al., "A
critical comparison among pansharpening algorithms", IEEE TGRS 53(5), 2015 (MTF-GLP-HPM):

    P_k   = [Z, 1] w_k,  w_k = argmin || [Z_lr, 1] w - Y_k ||   (least squares over the LR pixels)
    P_k^L = up(blur_decimate(P_k))                              (the pan through the MTF-matched chain)
    X_k   = up(Y_k) * P_k / P_k^L                               (HPM; see HPM_FLOOR)

The low-pass filter is "MTF-matched" by construction: the pan is degraded by the sensor's own PSF,
given here (a Gaussian of FWHM r in the project's simulations), decimated and interpolated by the same
bicubic as the HSI, so the pan's low-pass part is exactly what the HSI would hold. ``injection=
"regression"`` replaces HPM by the additive injection of the HSMSFusionToolbox's ``MTF_GLP_wrapper``
(Yokoya et al., IEEE GRSM 5(2), 2017): X_k = up(Y_k) + g_k (P_k - P_k^L), with g_k the regression
coefficient cov(up(Y_k), P_k^L) / var(P_k^L). The toolbox's own choices that this project's model
replaces: its LR-MSI is bilinear ``imresize``, its low-pass a fixed Gaussian downsampler
(``gaussian_down_sample``) and its interpolator the 23-tap polynomial kernel; here the degradation is
the true PSF and the interpolator the project's bicubic, for the HSI and the pan alike; the toolbox
also clips its result to [0, 2^sqrt(max Y)], which this module does not. Given these same operators,
the toolbox's MTF_GLP_wrapper.m run under GNU Octave returns the cube of ``injection="regression"``
to 1e-11 (tests/baselines/test_octave_reference.py). Not blind; the SRF is validated but not used (the
regression learns the spectral relation).
"""
import numpy as np

from baselines.operators import bicubic_upsample, blur_decimate, check_inputs
from imagery.errors import DataError

INJECTIONS = ("hpm", "regression")

# HPM models the band as proportional to the pan, which means nothing where the low-pass pan is at or
# near 0: for non-negative data such values are overshoots of the cubic interpolation at sharp edges
# (one such pixel turned 0.12 into 54 on the synthetic class-mean cube). Below this fraction of the
# band's mean |pan| on the LR grid (``hpm_floors``) the detail is injected additively with unit gain, the
# HPM's own limit where the pan fits the band (up(Y_k) = P_k^L); exact recovery of a cube linear in the MSI
# is unaffected.
HPM_FLOOR = 1e-2
# Singular values of the regression's design below this fraction of the largest are dropped: directions of
# the MSI bands resolved only by float32 rounding (the recommended mode degrades Z in float32).
REGRESSION_RCOND = 1e-6


def synthetic_pans(Y, Z_lr):
    """Regression weights of every HSI band on the MSI bands and a constant: (Cm + 1) x C.

    Y: LR-HSI h x w x C; Z_lr: h x w x Cm, the MSI on the LR grid (Z degraded by the PSF). Column k
    holds w_k of the module docstring; the last row is the constant. MSI bands that are linear combinations
    of the others (to REGRESSION_RCOND) get the minimum-norm weights, which float32 rounding cannot blow up.
    """
    design = np.concatenate([Z_lr.reshape(-1, Z_lr.shape[2]), np.ones((Z_lr.shape[0] * Z_lr.shape[1], 1))], axis=1)
    weights, *_ = np.linalg.lstsq(design, Y.reshape(-1, Y.shape[2]), rcond=REGRESSION_RCOND)
    return weights


def hpm_floors(z_lr, weights, fraction=HPM_FLOOR):
    """``fraction`` (default HPM_FLOOR) times each band's mean |P_k| over the LR grid (z_lr: h x w x Cm, the
    MSI degraded by the PSF; weights: ``synthetic_pans``): C values, below which the low-pass pan is not
    divided by. Taken on the LR grid, so that a tile of the image (methods.recommended) gets the whole
    image's floors."""
    return fraction * np.abs(z_lr @ weights[:-1] + weights[-1]).mean(axis=(0, 1))


def pans(Y, Z, z_lr, r, weights):
    """up(Y_k), P_k and P_k^L of the module docstring for every band, each (r h) x (r w) x C float64.

    Y: LR-HSI h x w x C; Z: HR-MSI r h x r w x Cm; z_lr: Z degraded by the PSF, h x w x Cm; weights:
    ``synthetic_pans``. Each output pixel reads the LR pixels within 2 of its own (the bicubic's support),
    so a tile computed with 2 LR pixels of margin equals the whole image's over its core.
    """
    gains, offsets = weights[:-1], weights[-1]
    # The chain is linear and the bicubic rows sum to 1, so degrading and interpolating the MSI bands
    # once gives every band's low-pass pan (Cm images instead of C).
    return bicubic_upsample(Y, r), Z @ gains + offsets, bicubic_upsample(z_lr, r) @ gains + offsets


def hpm_sharpen(Y, Z, z_lr, r, weights, floors, nonnegative=False):
    """The HPM injection of the module docstring, X_k = up(Y_k) P_k / P_k^L (additive where P_k^L is below
    ``floors``, ``hpm_floors``), arguments as ``pans``: (r h) x (r w) x C float64. ``nonnegative``: the
    modulation P_k / P_k^L is clipped at 0 (methods.recommended), so that HPM never turns a band's sign: a
    regression with gains of both signs can make P_k negative where P_k^L is not."""
    up, pan, pan_low = pans(Y, Z, z_lr, r, weights)
    valid = pan_low > floors
    modulation = np.divide(pan, pan_low, out=np.ones_like(pan), where=valid)
    if nonnegative:
        modulation = np.maximum(modulation, 0.0)
    return np.where(valid, up * modulation, up + pan - pan_low)


def fuse(Y, Z, r, psf, srf, injection="hpm"):
    """MTF-GLP-HS fusion of Y and Z: X_hat (r h) x (r w) x C float64, in Y's units.

    Y: LR-HSI h x w x C; Z: HR-MSI r h x r w x Cm; r: integer scale factor; psf: r x r convolution
    kernel summing to 1 (Y = model.degradation.spatial_degrade(X, psf, r)); srf: C x Cm, columns summing to
    1 (validated, not used); injection: "hpm" (high-pass modulation, default) or "regression"
    (additive, the HSMSFusionToolbox's). Raises data_loader.DataError for inconsistent arguments
    (``operators.check_inputs``) or an unknown ``injection``.
    """
    if injection not in INJECTIONS:
        raise DataError(f"MTF-GLP-HS: injection {injection!r} is not one of {', '.join(INJECTIONS)}")
    Y, Z, r, psf, srf = check_inputs(Y, Z, r, psf, srf, "MTF-GLP-HS")
    z_lr = blur_decimate(Z, psf, r)
    weights = synthetic_pans(Y, z_lr)
    if injection == "hpm":
        return hpm_sharpen(Y, Z, z_lr, r, weights, hpm_floors(z_lr, weights))
    up, pan, pan_low = pans(Y, Z, z_lr, r, weights)
    low0 = pan_low - pan_low.mean(axis=(0, 1))
    up0 = up - up.mean(axis=(0, 1))
    variance = np.einsum("pqk,pqk->k", low0, low0)
    coefficient = np.divide(np.einsum("pqk,pqk->k", up0, low0), variance, out=np.zeros(Y.shape[2]),
                            where=variance > 0)
    return up + coefficient * (pan - pan_low)
