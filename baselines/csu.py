"""CSU: hyperspectral super-resolution by coupled spectral unmixing.

C. Lanaras, E. Baltsavias and K. Schindler, "Hyperspectral super-resolution by coupled spectral unmixing",
Proceedings of the IEEE International Conference on Computer Vision (ICCV), 3586-3594, 2015.

Every HR pixel is a convex mixture of p endmembers: X = E A (E: C x p in [0, 1], A: p x N, each column on
the probability simplex). The LR-HSI is E A S (S: the spatial degradation) and the HR-MSI is R E A (R =
srf'), and the paper minimises

    ||H - E A S||_F^2 + ||M - R E A||_F^2      subject to 0 <= E <= 1 and A on the simplex    (eq. 5)

by PALM (proximal alternating linearised minimisation, Bolte et al. 2014), alternating two projected
gradient loops (SupResPALM.m):
- the low-resolution step (eq. 6): E <- clip(E - (E A S - H) (A S)' / c, 0, 1), c = 1.01 ||A S (A S)'||_F;
- the high-resolution step (eq. 7): A <- simplex projection of A - (R E)' (R E A - M) / d, d = 1.01
  ||R E (R E)'||_F;
each run until its residual (RMSE) improves by less than 1 % (at most 100 steps; a rise also ends it, after
the step), and the outer loop until the sum of the two loops' best residuals changes by less than 1e-4
(relative; at most 1500 rounds).

Defaults are those of the authors' code (github.com/lanha/SupResPALM, SupResPALM.m and demoSupResPALM.m,
commit ffdb249): p = 10 endmembers, the loop constants above; the sparsity constraint is off (the code's
Tau_multi line is commented out). Where the code departs from the project's model or needs code that is not
part of it, this module follows the project:
- the spatial degradation S is the project's PSF (``operators.blur_decimate``), where the code uses the
  r x r box average of its own simulations (hyperSpatialDown.m);
- the endmembers start from VCA (``unmixing.vca``, seeded) where the code uses SISAL (Bioucas-Dias 2009,
  minimum-volume simplex, not in the repository), and the LR abundances from fully constrained least squares
  (``unmixing.fcls``, solved to convergence) where the code runs SUNSAL's ADMM with its default stopping;
- the HR abundances start from the project's bicubic upsampling of the LR ones (the code's ``imresize``).
Given the same start and operators, the authors' SupResPALM.m run under GNU Octave returns the same cube
to rounding (tests/baselines/test_octave_reference.py). Non-blind: the true PSF and SRF are given.
"""
import numbers

import numpy as np

from baselines.operators import bicubic_upsample, blur_decimate, check_inputs, check_integer
from baselines.unmixing import fcls, simplex_projection, vca
from imagery.errors import DataError

ENDMEMBERS = 10        # demoSupResPALM.m: p
OUTER_ITERS = 1500     # SupResPALM.m: maxIter
TOLERANCE = 1e-4       # SupResPALM.m: epsilon, on the relative change of the summed residuals
INNER_ITERS = 100      # lowResStep, highResStep: maxIter
INNER_STOP = 1.01      # lowResStep, highResStep: epsilon, the least improvement factor of a step
STEP_MARGIN = 1.01     # lowResStep: gamma1, highResStep: gamma2


def fuse(Y, Z, r, psf, srf, endmembers=ENDMEMBERS, outer_iters=OUTER_ITERS, tolerance=TOLERANCE, seed=0):
    """Fuse an LR-HSI and an HR-MSI with CSU (Lanaras et al. 2015).

    Y: h x w x C LR-HSI; Z: H x W x Cm HR-MSI with H = r h, W = r w (rows, columns, bands; reflectance in
    [0, 1], the range the endmembers are clipped to); r: integer scale factor; psf: r x r convolution kernel
    summing to 1 (Y = model.degradation.spatial_degrade(X, psf, r)); srf: C x Cm, columns summing to 1 (Z =
    X @ srf). endmembers: p (1 to min(C, h w)); outer_iters >= 1: PALM rounds at most; tolerance >= 0: the
    relative change of the residual that ends them; seed: VCA's random directions. Returns X_hat, H x W x C
    float64.

    Raises DataError for inconsistent shapes, a PSF or SRF that does not fit, non-finite values or a
    parameter out of range.
    """
    Y, Z, r, psf, srf = check_inputs(Y, Z, r, psf, srf, "CSU")
    h, w, bands = Y.shape
    endmembers = check_integer(endmembers, "endmembers", "CSU", 1, min(bands, h * w))
    outer_iters = check_integer(outer_iters, "outer_iters", "CSU", 1)
    if isinstance(tolerance, bool) or not isinstance(tolerance, numbers.Real) or not 0 <= tolerance < np.inf:
        raise DataError(f"CSU: tolerance = {tolerance!r} must be a finite number >= 0")
    H = Y.reshape(-1, bands).T
    M = Z.reshape(-1, Z.shape[2]).T
    E = vca(H, endmembers, np.random.default_rng(seed))
    A_lr = fcls(E, H)
    A = _pixels(bicubic_upsample(_maps(A_lr, h, w), r))
    E, A = palm(H, M, srf.T, E, A, A_lr, lambda A: _pixels(blur_decimate(_maps(A, r * h, r * w), psf, r)),
                outer_iters, tolerance)
    return (E @ A).T.reshape(r * h, r * w, bands)


def palm(H, M, R, E, A, A_lr, degrade, outer_iters=OUTER_ITERS, tolerance=TOLERANCE):
    """SupResPALM's loop from the endmembers E (C x p), HR abundances A (p x N) and LR abundances A_lr (p x n:
    the first endmember step uses the unmixing of the LR-HSI, the later ones the degraded A): H (C x n) the
    LR-HSI's pixels, M (Cm x N) the HR-MSI's, R (Cm x C) the spectral response, ``degrade`` the map A -> A S
    (p x N -> p x n). Returns (E, A)."""
    previous = 1.0  # SupResPALM.m's resAB(1)
    for _ in range(outer_iters):
        E, low = low_resolution_step(H, E, A_lr)
        A, high = high_resolution_step(M, R @ E, A)
        A_lr = degrade(A)
        residual = low + high
        if abs(previous / residual - 1) <= tolerance:
            break
        previous = residual
    return E, A


def low_resolution_step(H, E, A_lr):
    """Eq. (6): projected gradient steps on the endmembers E (clipped to [0, 1]) against the LR-HSI H with
    the degraded abundances A_lr fixed. Returns (E, the least residual RMSE seen)."""
    step = 1.0 / (STEP_MARGIN * np.linalg.norm(A_lr @ A_lr.T))
    correlation, gram = H @ A_lr.T, A_lr @ A_lr.T
    return _descend(lambda E: np.clip(E - step * (E @ gram - correlation), 0.0, 1.0), E,
                    lambda E: _rmse(H, E @ A_lr))


def high_resolution_step(M, RE, A):
    """Eq. (7): projected gradient steps on the abundances A (each pixel's projected onto the simplex)
    against the HR-MSI M with the degraded endmembers RE fixed. Returns (A, the least residual RMSE seen)."""
    step = 1.0 / (STEP_MARGIN * np.linalg.norm(RE @ RE.T))
    correlation, gram = RE.T @ M, RE.T @ RE
    return _descend(lambda A: simplex_projection(A - step * (gram @ A - correlation)), A,
                    lambda A: _rmse(M, RE @ A))


def _descend(update, x, residual):
    """The inner loop of lowResStep/highResStep: steps until one improves the residual by less than
    INNER_STOP times (a rise included: the code's branch that would undo a rising step is never reached,
    its improvement test comes first), at most INNER_ITERS; returns (x, min residual)."""
    best = last = np.inf  # the code's res(1), a norm plus 100: larger than any RMSE that follows
    for _ in range(INNER_ITERS):
        x = update(x)
        current = residual(x)
        best = min(best, current)
        if last < INNER_STOP * current:
            break
        last = current
    return x, best


def _rmse(target, estimate):
    return np.sqrt(np.sum((target - estimate) ** 2) / target.size)


def _maps(A, rows, cols):
    """p x N abundances (pixels in row-major order) as rows x cols x p maps."""
    return A.T.reshape(rows, cols, -1)


def _pixels(maps):
    return maps.reshape(-1, maps.shape[2]).T
