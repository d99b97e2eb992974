"""HySure: hyperspectral superresolution by a convex, subspace-based, vector-total-variation formulation.

M. Simoes, J. Bioucas-Dias, L. B. Almeida and J. Chanussot, "A convex formulation for hyperspectral
image superresolution via subspace-based regularization", IEEE Transactions on Geoscience and Remote
Sensing 53(6), 3373-3388, 2015.

The fused image is E X: E (C x p) spans the LR-HSI's spectral subspace and X (p x N) holds the
coordinates of the N HR pixels. X minimises the paper's convex objective

    1/2 ||Y_h - E X B M||^2 + lambda_m/2 ||Y_m - R E X||^2 + lambda_phi VTV(X D_h, X D_v)

(B: circulant blur, M: decimation by r, R: spectral response, D_h / D_v: horizontal / vertical
circular differences; VTV sums over pixels the Euclidean norm of both differences of all p
coordinates, so edges are aligned across bands). It is solved by ADMM/SALSA with the splitting
V1 = X B, V2 = X, V3 = X D_h, V4 = X D_v of the paper's appendix: the X step is one linear system
diagonalised by the 2-D DFT, the V1 and V2 steps are p x p solves per pixel, the V3/V4 step is the
vector soft threshold; then the scaled multipliers are updated.

Defaults are those of the authors' MATLAB code (github.com/alfaiate/HySure, data_fusion.m and the
demos): p = 10, lambda_phi = 5e-4, lambda_m = 1, ADMM parameter mu = 0.05, 200 iterations, data
scaled to [0, 1] as here. The subspace is learned by SVD of the LR-HSI (the paper's option; the demos
use VCA, random, the best-volume of 20 runs; the SVD branch of data_fusion.m cannot run: its test
``case basis_type == 'SVD'`` never matches and it reads an undefined variable), limited to the
LR-HSI's numerical rank. Given the same subspace, data_fusion.m run under GNU Octave returns the same
cube to 1e-13 (tests/baselines/test_octave_reference.py); with its VCA basis the result differs by the basis
(49.8 dB against 51.6 dB on that test's case). Non-blind: the true PSF and SRF are given (the
authors' own estimator of both, sen_resp_est.m, is not implemented). The demos' extra denoising of
the result by projection (a step of their simulation, not of the method) is not applied.
"""
import numbers

import numpy as np
from scipy import fft

from baselines.fuse_sylvester import principal_directions
from baselines.operators import check_inputs, check_integer, psf_otf
from imagery.errors import DataError

SUBSPACE_DIM = 10      # demo_*.m: p
LAMBDA_PHI = 5e-4      # demo_*.m: weight of the vector total variation
LAMBDA_M = 1.0         # demo_*.m: weight of the HR-MSI term
MU = 0.05              # data_fusion.m: ADMM parameter
ITERS = 200            # data_fusion.m: ADMM iterations


def fuse(Y, Z, r, psf, srf, subspace_dim=None, lambda_phi=LAMBDA_PHI, lambda_m=LAMBDA_M, mu=MU,
         iters=ITERS):
    """Fuse an LR-HSI and an HR-MSI with HySure (Simoes et al. 2015).

    Y: h x w x C LR-HSI; Z: H x W x Cm HR-MSI with H = r h, W = r w (rows, columns, bands; scaled
    to about [0, 1], which the default weights assume); r: integer scale factor; psf: r x r
    convolution kernel summing to 1 (Y = model.degradation.spatial_degrade(X, psf, r)); srf: C x Cm,
    columns summing to 1 (Z = X @ srf). subspace_dim: p, the number of singular vectors of the
    LR-HSI kept (1 to C; default min(10, C); reduced, with a log message, to the LR-HSI's
    numerical rank); lambda_phi >= 0: weight of the vector total variation (0 gives the plain
    least-squares fit); lambda_m >= 0: weight of the HR-MSI term; mu > 0: ADMM parameter; iters >= 1: ADMM iterations.
    Returns X_hat, H x W x C float64, in the units of Y. The blur is circular; at the decimated
    pixels it equals spatial_degrade's block blur exactly.

    Raises DataError for inconsistent shapes, a PSF or SRF that does not fit, non-finite values,
    an all-zero LR-HSI, or parameters out of range.
    """
    Y, Z, r, psf, srf = check_inputs(Y, Z, r, psf, srf, "HySure")
    bands = Y.shape[2]
    H, W, _ = Z.shape
    p = check_integer(min(SUBSPACE_DIM, bands) if subspace_dim is None else subspace_dim, "subspace_dim", "HySure",
                      1, bands)
    iters = check_integer(iters, "iters", "HySure", 1)
    lambda_phi = _number(lambda_phi, "lambda_phi", 0.0)
    lambda_m = _number(lambda_m, "lambda_m", 0.0)
    mu = _number(mu, "mu", None)

    E, _ = principal_directions(Y, p, "HySure")
    p = E.shape[1]
    shape = (H, W)
    fb, fdh, fdv = _spectra(psf, shape)
    denominator = np.abs(fb) ** 2 + np.abs(fdh) ** 2 + np.abs(fdv) ** 2 + 1

    def rfft(a):
        return fft.rfft2(a, axes=(1, 2))

    def irfft(a):
        return fft.irfft2(a, s=shape, axes=(1, 2))

    # V1 step at the sampled pixels: (E'E + mu I)^-1 (E'Y_h + mu NU1); elsewhere V1 = NU1.
    hs_gain = np.linalg.inv(E.T @ E + mu * np.eye(p))
    hs_term = np.tensordot(hs_gain, np.moveaxis(Y @ E, 2, 0), axes=1)
    # V2 step: (lambda_m E'R'RE + mu I)^-1 (lambda_m E'R'Y_m + mu NU2).
    RE = srf.T @ E
    ms_gain = np.linalg.inv(lambda_m * RE.T @ RE + mu * np.eye(p))
    ms_term = lambda_m * np.tensordot(ms_gain, np.moveaxis(Z @ RE, 2, 0), axes=1)
    threshold = lambda_phi / mu

    V = [np.zeros((p, H, W)) for _ in range(4)]
    D = [np.zeros((p, H, W)) for _ in range(4)]
    for _ in range(iters):
        # X step: min sum_k ||X F_k - V_k - D_k||^2 over the four split variables (F_k = B, I, D_h, D_v).
        spectrum = (np.conj(fb) * rfft(V[0] + D[0]) + rfft(V[1] + D[1]) + np.conj(fdh) * rfft(V[2] + D[2])
                    + np.conj(fdv) * rfft(V[3] + D[3])) / denominator
        X = irfft(spectrum)
        nu = [irfft(spectrum * fb) - D[0], X - D[1], irfft(spectrum * fdh) - D[2], irfft(spectrum * fdv) - D[3]]
        V[0] = nu[0].copy()
        V[0][:, ::r, ::r] = hs_term + mu * np.tensordot(hs_gain, nu[0][:, ::r, ::r], axes=1)
        V[1] = ms_term + mu * np.tensordot(ms_gain, nu[1], axes=1)
        V[2], V[3] = _vector_soft(nu[2], nu[3], threshold)
        D = [v - n for v, n in zip(V, nu)]
    return np.moveaxis(X, 0, 2) @ E.T


def _spectra(psf, shape):
    """Real-input 2-D DFTs (H x (W/2 + 1)) of the blur and of the horizontal and vertical circular
    differences x[i, j] - x[i, j + 1] and x[i, j] - x[i + 1, j]."""
    half = shape[1] // 2 + 1
    dh, dv = np.zeros(shape), np.zeros(shape)
    dh[0, 0] = dv[0, 0] = 1
    dh[0, -1] = dv[-1, 0] = -1
    return psf_otf(psf, shape)[:, :half], fft.rfft2(dh), fft.rfft2(dv)


def _vector_soft(a, b, threshold):
    """Proximal map of threshold * sum over pixels of ||(a, b)||_2, the norm taken over both
    differences and all p coordinates of a pixel (a, b: p x H x W)."""
    norm = np.sqrt(np.sum(a * a + b * b, axis=0))
    shrink = np.maximum(norm - threshold, 0) / np.maximum(norm, np.finfo(float).tiny)
    return a * shrink, b * shrink



def _number(value, name, low):
    """A finite real >= low (low None: > 0)."""
    ok = not isinstance(value, bool) and isinstance(value, numbers.Real) and np.isfinite(value)
    if not ok or (value < low if low is not None else value <= 0):
        bound = f">= {low:g}" if low is not None else "> 0"
        raise DataError(f"HySure: {name} = {value!r} must be a finite number {bound}")
    return float(value)
