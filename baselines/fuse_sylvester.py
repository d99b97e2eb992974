"""FUSE: fast fusion of multi-band images by the closed-form solution of a Sylvester equation.

Q. Wei, N. Dobigeon and J.-Y. Tourneret, "Fast fusion of multi-band images based on solving a
Sylvester equation", IEEE Transactions on Image Processing 24(11), 4109-4121, 2015.

The fused image is X = E U, with E a C x L basis of the LR-HSI's spectral subspace and U its L x N
coordinates. With Gaussian noise of identity covariance and the paper's Gaussian prior
U ~ N(mu, Sigma) per pixel, the MAP estimate minimises

    1/2 ||Y_h - E U B S||^2 + 1/2 ||Y_m - R E U||^2 + 1/2 ||Sigma^(-1/2) (U - mu)||^2

(B: circulant blur, S: decimation by r, R: spectral response). Setting the gradient to zero gives
the paper's Sylvester equation C1 U + U C2 = C3, with
C1 = (E'E)^-1 (E'R'RE + Sigma^-1), C2 = B S S' B' and C3 = (E'E)^-1 (E'Y_h S'B' + E'R'Y_m + Sigma^-1 mu).
C1 is diagonalised (C1 = Q Lambda Q^-1) and B by the 2-D DFT; the decimation then couples only the
r^2 frequencies that alias onto one LR frequency, and each such group is a rank-one update of a
scaled identity, inverted in closed form (the paper's Algorithm 1, FUSE): no iterations.

Defaults are those of the authors' MATLAB code (BayesianFusion.m with prior 'Gaussian', as their
demo and FUSE_wrapper.m of the HSMSFusionToolbox of Yokoya, Grohnfeldt & Chanussot, IEEE GRSM 2017,
call it): the subspace is the first 15 principal directions of the LR-HSI's (uncentred)
second-moment matrix, each scaled by the square root of its eigenvalue, so the coordinates have
unit second moment; the prior mean is the spline-interpolated projected LR-HSI; Sigma^-1 = 1e-3 I;
noise covariances are identity. That toolbox's wrapper feeds reflectance x 10^4 (``data_scale``),
which sets the prior's weight against the data terms; inputs here are [0, 1]-scaled reflectance and
are multiplied by ``data_scale`` inside. The authors' sparse prior (dictionary learning plus 10
alternations, a separate paper) is not implemented. Non-blind: the true PSF and SRF are given, as
in the paper's experiments.
"""
import logging
import numbers

import numpy as np
import scipy.linalg
from scipy import ndimage

from baselines.operators import check_inputs, psf_otf
from imagery.errors import DataError

SUBSPACE_DIM = 15          # idHSsub.m, 'PCA'
PRIOR_PRECISION = 1e-3     # SylvesterFusion.m, prior 'Gaussian': invCov = 1e-3 I
DATA_SCALE = 1e4           # HSMSFusionToolbox FUSE_wrapper.m: reflectance x 10^4
# Eigenvalues of the second-moment matrix below this fraction of the largest are rounding noise
# (float32 data: about 1e-14); such directions are not part of the LR-HSI's subspace.
RANK_TOL = 1e-10
log = logging.getLogger(__name__)


def fuse(Y, Z, r, psf, srf, subspace_dim=None, prior_precision=PRIOR_PRECISION, data_scale=DATA_SCALE):
    """Fuse an LR-HSI and an HR-MSI with FUSE (Wei et al. 2015), Gaussian prior.

    Y: h x w x C LR-HSI; Z: H x W x Cm HR-MSI with H = r h, W = r w (rows, columns, bands;
    reflectance-like scale, e.g. [0, 1]); r: integer scale factor; psf: r x r convolution kernel
    summing to 1 (Y = model.degradation.spatial_degrade(X, psf, r)); srf: C x Cm, columns summing to 1
    (Z = X @ srf). subspace_dim: L, the number of principal directions (1 to C; default min(15, C);
    reduced, with a log message, to the LR-HSI's numerical rank when that is smaller);
    prior_precision: Sigma^-1 = prior_precision * I on the unit-second-moment subspace coordinates;
    data_scale: the factor applied to Y and Z before the prior weight applies. Returns X_hat,
    H x W x C float64, in the units of Y.

    Raises DataError for inconsistent shapes, a PSF or SRF that does not fit, non-finite values,
    an all-zero LR-HSI, or parameters out of range.
    """
    Y, Z, r, psf, srf = check_inputs(Y, Z, r, psf, srf, "FUSE")
    bands = Y.shape[2]
    L = _check_dim(min(SUBSPACE_DIM, bands) if subspace_dim is None else subspace_dim, bands, "subspace_dim")
    _check_positive(prior_precision, "prior_precision (the Gaussian prior's inverse covariance; a tiny value "
                    "such as 1e-12 gives the maximum-likelihood limit)")
    _check_positive(data_scale, "data_scale")
    Ys, Zs = Y * data_scale, Z * data_scale
    E, P_dec = pca_subspace(Ys, L)
    # The Gaussian prior's mean is the interpolated HSI (the authors' ima_interp_spline): the projected
    # LR-HSI, cubic-spline interpolated with each LR pixel at the centre of its r x r block, where the
    # blur of spatial_degrade places it.
    mean = ndimage.zoom(Ys @ P_dec.T, (r, r, 1), order=3, mode="reflect", grid_mode=True)
    return sylvester_fusion(Ys, Zs, r, psf, srf, E, mean, prior_precision) / data_scale


def principal_directions(Y, L, method):
    """The L leading eigenvectors (C x L') and eigenvalues (L') of the uncentred second-moment matrix
    Y'Y / n of an h x w x C image over its n pixels: its leading right singular vectors.

    L' = min(L, rank of Y): directions whose eigenvalue is below RANK_TOL times the largest hold only
    rounding noise, carry no information from Y and would make a scaled basis singular; reducing L
    is logged. ``method`` names the caller in messages. Raises DataError if Y is all zero.
    """
    pixels = Y.reshape(-1, Y.shape[2])
    values, vectors = np.linalg.eigh(pixels.T @ pixels / pixels.shape[0])
    values, vectors = values[::-1], vectors[:, ::-1]
    if not values[0] > 0:
        raise DataError(f"{method}: the LR-HSI Y is zero everywhere; there is no spectral subspace to fuse in")
    keep = min(L, int(np.sum(values > values[0] * RANK_TOL)))
    if keep < L:
        log.info("%s: the LR-HSI spans %d spectral dimensions; the subspace dimension %d is reduced to %d",
                 method, keep, L, keep)
    return vectors[:, :keep], values[:keep]


def pca_subspace(Y, L):
    """The authors' PCA subspace (idHSsub.m with scale = 1) of an h x w x C image.

    Returns (E, P_dec): E = V diag(sqrt(lambda)) (C x L') and P_dec = diag(1/sqrt(lambda)) V' (L' x C),
    with V, lambda from ``principal_directions`` (L' = min(L, rank of Y)). Raises DataError if Y is
    all zero.
    """
    vectors, values = principal_directions(Y, L, "FUSE")
    root = np.sqrt(values)
    return vectors * root, vectors.T / root[:, None]


def sylvester_fusion(Y, Z, r, psf, srf, E, prior_mean, prior_precision):
    """The closed-form MAP estimate of FUSE for a given subspace basis and Gaussian prior.

    Minimises 1/2 ||Y - spatial_degrade(X)||^2 + 1/2 ||Z - X srf||^2
    + prior_precision/2 ||U - prior_mean||^2 over X = U E' (per pixel x = E u), with circular
    boundary conditions for the blur (exact for the block-wise blur of model.degradation.spatial_degrade,
    whose kernel never wraps).
    Y: h x w x C; Z: H x W x Cm; E: C x L of full column rank; prior_mean: H x W x L;
    prior_precision > 0. Returns X_hat, H x W x C float64. Inputs are assumed checked (see ``fuse``).
    """
    h, w, _ = Y.shape
    H, W, _ = Z.shape
    L = E.shape[1]
    RE = srf.T @ E
    gram = E.T @ E
    # C1 = gram^-1 A with A symmetric positive definite: the generalised symmetric eigenproblem
    # A q = lambda gram q gives C1 = Q Lambda Q^-1 with Q^-1 = Q' gram, so Q^-1 C3 = Q' (gram C3).
    lam, Q = scipy.linalg.eigh(RE.T @ RE + prior_precision * np.eye(L), gram)
    otf = psf_otf(psf, (H, W))
    # gram C3 = E'Y S'B' + E'R'Z + Sigma^-1 mu, in the DFT domain. The zero-filled LR image has the
    # tiled LR spectrum, so E'Y S' costs one LR-sized FFT.
    hs = np.tile(np.fft.fft2(np.moveaxis(Y @ E, 2, 0)), (1, r, r)) * np.conj(otf)
    rest = np.fft.fft2(np.moveaxis(Z @ RE + prior_precision * prior_mean, 2, 0))
    c = np.tensordot(Q.T, hs + rest, axes=1)
    # Row l of Q^-1 U F solves (lambda_l I + (1/r^2) conj(k) k^T) u = c on every alias group
    # (k: the r^2 OTF values of the group); Sherman-Morrison inverts it.
    c = c.reshape(L, r, h, r, w)
    k = otf.reshape(r, h, r, w)
    energy = np.sum(np.abs(k) ** 2, axis=(0, 2))
    proj = np.sum(k * c, axis=(1, 3)) / (lam[:, None, None] * r * r + energy)
    u = (c - np.conj(k) * proj[:, None, :, None, :]) / lam[:, None, None, None, None]
    U = np.fft.ifft2(np.tensordot(Q, u.reshape(L, H, W), axes=1)).real
    return np.moveaxis(U, 0, 2) @ E.T


def _check_positive(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value < np.inf:
        raise DataError(f"FUSE: {name} = {value!r} must be a finite number > 0")


def _check_dim(value, bands, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 1 <= value <= bands:
        raise DataError(f"FUSE: {name} = {value!r} must be an integer from 1 to the number of HSI bands ({bands})")
    return int(value)
