"""GSA: Gram-Schmidt adaptive component substitution, adapted to hyperspectral-multispectral fusion.

B. Aiazzi, S. Baronti and M. Selva, "Improving component substitution pansharpening through
multivariate regression of MS+Pan data", IEEE TGRS 45(10), 3230-3239, 2007; adapted to HS-MS fusion
as in N. Yokoya, C. Grohnfeldt and J. Chanussot, "Hyperspectral and multispectral data fusion: a
comparative review of the recent literature", IEEE GRSM 5(2), 29-56, 2017 (their HSMSFusionToolbox,
``GSA_wrapper``): every HSI band joins the group of the MSI band it correlates with best at low
resolution, and each group is pansharpened with its MSI band as the "pan".

Per group (MSI band Z_i, HSI bands k in G_i), with every image mean-removed:

1. intensity weights: least-squares regression of the low-resolution pan on the group's LR-HSI bands
   (Aiazzi et al.'s adaptive, regression-based intensity, with a constant term that the centring
   makes zero);
2. intensity I = the same weights applied to the upsampled HSI bands;
3. injection gains g_k = cov(I, upsampled band k) / var(I) (the Gram-Schmidt gains);
4. X_k = upsampled band k + g_k (Z_i - mean Z_i - I) (mean removed from I), which keeps band k's mean
   (the toolbox's final mean equalisation).

Differences from the toolbox, all because this project gives the true degradation: the LR pan is the
MSI band degraded by the true PSF (``operators.blur_decimate``; the toolbox uses bilinear
``imresize``), and the HSI is upsampled by the project's bicubic (a = -0.75; ``imresize`` uses -0.5).
There are no parameters. Not blind: the SRF is not needed, the PSF only for the LR pan. Given
these same operators, the toolbox's GSA_wrapper.m run under GNU Octave returns the same cube to 1e-7
(tests/baselines/test_octave_reference.py; the rest is its least-squares solve of rank-deficient band
regressions, a pseudo-inverse here).
"""
import numpy as np

from baselines.operators import bicubic_upsample, blur_decimate, check_inputs

# Relative eigenvalue cut-off of the per-group Gram matrices in the weight regression: adjacent HSI
# bands are nearly collinear (a cube of few spectra is exactly so), and the minimum-norm solution keeps
# the weights bounded where a plain solve would blow up; 1e-12 on the Gram is 1e-6 on the data.
GRAM_RCOND = 1e-12


def band_groups(Y, Z_lr):
    """Index (0 .. Cm-1) of the MSI band each HSI band correlates with best: C ints.

    Y: LR-HSI h x w x C; Z_lr: the MSI degraded to the same grid, h x w x Cm. The correlation is
    Pearson's over the LR pixels; a constant band correlates 0 with everything (joins group 0).
    """
    y = Y.reshape(-1, Y.shape[2])
    z = Z_lr.reshape(-1, Z_lr.shape[2])
    y = y - y.mean(axis=0)
    z = z - z.mean(axis=0)
    norms = np.outer(np.linalg.norm(y, axis=0), np.linalg.norm(z, axis=0))
    corr = np.divide(y.T @ z, norms, out=np.zeros(norms.shape), where=norms > 0)
    return np.argmax(corr, axis=1)


def fuse(Y, Z, r, psf, srf):
    """GSA fusion of the LR-HSI Y and HR-MSI Z: X_hat (r h) x (r w) x C float64, in Y's units.

    Y: LR-HSI h x w x C; Z: HR-MSI r h x r w x Cm; r: integer scale factor; psf: r x r convolution
    kernel summing to 1 (Y = model.degradation.spatial_degrade(X, psf, r)); srf: C x Cm, columns summing
    to 1 (validated, not used). Raises data_loader.DataError for inconsistent arguments
    (``operators.check_inputs``).
    """
    Y, Z, r, psf, srf = check_inputs(Y, Z, r, psf, srf, "GSA")
    c, cm = Y.shape[2], Z.shape[2]
    z_lr = blur_decimate(Z, psf, r)
    groups = band_groups(Y, z_lr)
    member = groups[None, :] == np.arange(cm)[:, None]                     # Cm x C

    y0 = Y.reshape(-1, c) - Y.reshape(-1, c).mean(axis=0)
    pan_lr = z_lr.reshape(-1, cm) - z_lr.reshape(-1, cm).mean(axis=0)
    gram = y0.T @ y0
    # One regression per group, all at once: the Gram restricted to the group's bands (zero rows and
    # columns elsewhere, which the pseudo-inverse leaves zero) against the group's pan.
    group_gram = gram[None] * (member[:, :, None] & member[:, None, :])
    rhs = (y0.T @ pan_lr).T * member                                       # Cm x C
    weights = np.einsum("icd,id->ic", np.linalg.pinv(group_gram, rcond=GRAM_RCOND, hermitian=True), rhs)

    up = bicubic_upsample(Y, r)
    up0 = up - up.mean(axis=(0, 1))
    intensity = up0 @ weights.T                                            # H x W x Cm
    intensity -= intensity.mean(axis=(0, 1))
    variance = np.mean(intensity ** 2, axis=(0, 1))
    covariance = np.einsum("pqk,pqk->k", intensity[..., groups], up0) / (up0.shape[0] * up0.shape[1])
    gains = np.divide(covariance, variance[groups], out=np.zeros(c), where=variance[groups] > 0)
    detail = Z - Z.mean(axis=(0, 1)) - intensity
    return up + gains * detail[..., groups]
