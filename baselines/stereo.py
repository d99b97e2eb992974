"""STEREO and Blind-STEREO: hyperspectral super-resolution by coupled canonical polyadic decomposition.

C. I. Kanatsoulis, X. Fu, N. D. Sidiropoulos and W.-K. Ma, "Hyperspectral super-resolution: a coupled
tensor factorization approach", IEEE Transactions on Signal Processing 66(24), 6503-6517, 2018.

The HR-HSI (I x J x K) is a rank-F CPD X = [[A, B, C]] (A: I x F, B: J x F, C: K x F). The LR-HSI is
X x1 P1 x2 P2 = [[P1 A, P2 B, C]] (P1, P2: the separable blur and decimation of each spatial mode) and
the HR-MSI is X x3 P3 = [[A, B, P3 C]] (P3 = srf'), so the two share factors and STEREO fits

    min  lambda ||Y - [[P1 A, P2 B, C]]||^2 + ||Z - [[A, B, P3 C]]||^2

by alternating least squares (Algorithm 1 of the paper): each factor's normal equations form a
Sylvester equation (eqs. 19-21), solved exactly (Bartels-Stewart, scipy.linalg.solve_sylvester, as
MATLAB's ``sylvester`` in the authors' STEREO.m). It is initialised by TenRec (Algorithm 2): a rank-F CPD
of the HR-MSI gives A, B and P3 C, then C is the least-squares fit of the LR-HSI with A and B degraded.

Blind-STEREO (Section V of the paper, the authors' Blind_STEREO.m) does not know P1 and P2 (the PSF): it
keeps the degraded factors P1 A and P2 B as free unknowns, fitted to the LR-HSI, and A and B to the
HR-MSI, coupled through C; Blind TenRec initialises P1 A and P2 B as r-pixel block means of A and B. It
still needs the SRF. Its ``psf`` argument is only checked, never used.

Defaults are those of the authors' MATLAB demos (github.com/marhar19/HSR_via_tensor_decomposition,
demo_for_STEREO.m, Demo_for_Blind_STEREO.m, commit ad25244): rank F = 400, lambda = 1,
25 CPD iterations; STEREO runs ``for iter = 2:MAXIT`` with MAXIT = 2, i.e. one alternating iteration,
and Blind-STEREO MAXIT = 4, i.e. three. The demos compute the initial CPD with Tensorlab's ``cpd``
(Gauss-Newton with its own initialisation), which is not freely redistributable; here it is plain ALS
(``cpd_als``) from a seeded Gaussian random start, 25 iterations as the demos ask of ``cpd``. Given the same
initial factors, the authors' STEREO.m and Blind_STEREO.m run under GNU Octave return the same cube to
rounding (tests/baselines/test_octave_reference.py). The PSF must be separable for STEREO
(operators.degradation_matrices), as the paper's model requires.

The rank. F = 400 suits the demos' LR-HSI of 12,768 pixels (Pavia University at r = 4); TenRec fits C's F
columns to the h w LR pixels, so F must stay well below h w. On the real scenes' crops (120 x 120 Houston, 68
x 68 Indian Pines) the result falls apart as F nears h w (Houston at r = 8, h w = 225: 38.1 dB at F = 100,
37.5 at 200, 20.1 at 225; Indian Pines at r = 4, h w = 289: 35.7 at 100, 26.9 at 200) and is best near a
third of it (Houston at r = 4, h w = 900: 45.4 dB at 200, 46.9 at 400). The default is therefore F =
min(400, h w / 3): the authors' 400 wherever the LR-HSI has 1,200 pixels or more.
"""
import numbers

import numpy as np
import scipy.linalg

from baselines.operators import check_inputs, check_integer, degradation_matrices
from imagery.errors import DataError

RANK = 400             # demo_for_STEREO.m, Demo_for_Blind_STEREO.m: t_rank
RANK_PIXEL_FRACTION = 3  # the default rank is at most the LR-HSI's pixel count over this (module docstring)
LAMBDA = 1.0           # demo_for_STEREO.m: lamda; Demo_for_Blind_STEREO.m: lamdab
CPD_ITERS = 25         # the demos: maxit, cpd's 'MaxIter'
STEREO_ITERS = 1       # demo_for_STEREO.m: s_iter = 2, STEREO.m loops iter = 2:MAXIT
BLIND_ITERS = 3        # Demo_for_Blind_STEREO.m: bs_iter = 4, Blind_STEREO.m loops iter = 2:MAXIT


def fuse(Y, Z, r, psf, srf, rank=None, lam=LAMBDA, iters=STEREO_ITERS, cpd_iters=CPD_ITERS, seed=0):
    """Fuse an LR-HSI and an HR-MSI with STEREO (Kanatsoulis et al. 2018), given the PSF and the SRF.

    Y: h x w x C LR-HSI; Z: H x W x Cm HR-MSI with H = r h, W = r w (rows, columns, bands); r: integer
    scale factor; psf: r x r separable convolution kernel summing to 1 (Y =
    model.degradation.spatial_degrade(X, psf, r)); srf: C x Cm, columns summing to 1 (Z = X @ srf).
    rank: F, the CPD rank (1 to h w; default min(400, h w / 3)); lam >= 0: weight of the LR-HSI term; iters
    >= 0: STEREO's alternating iterations after TenRec; cpd_iters >= 1: ALS iterations of the HR-MSI's
    CPD; seed: its random start. Returns X_hat, H x W x C float64, in the units of Y.

    Raises DataError for inconsistent shapes, a PSF that is not separable, an SRF that does not fit,
    non-finite values or a parameter out of range.
    """
    Y, Z, r, psf, srf = check_inputs(Y, Z, r, psf, srf, "STEREO")
    rank, lam, iters, cpd_iters = _parameters(Y, rank, lam, iters, cpd_iters, "STEREO")
    P1, P2 = degradation_matrices(psf, r, Z.shape[0], Z.shape[1])
    A, B, C, C_tilde = ten_rec(Y, Z, P1, P2, rank, cpd_iters, seed)
    return cpd_tensor(*stereo(Y, Z, P1, P2, srf.T, A, B, C, C_tilde, lam, iters))


def fuse_blind(Y, Z, r, psf, srf, rank=None, lam=LAMBDA, iters=BLIND_ITERS, cpd_iters=CPD_ITERS, seed=0):
    """Fuse with Blind-STEREO (Kanatsoulis et al. 2018, Section V): as ``fuse``, but the spatial
    degradation is unknown (``psf`` is checked and not used); the SRF is needed. iters >= 0: Blind-STEREO's
    alternating iterations after Blind TenRec (default 3). Returns X_hat, H x W x C float64."""
    Y, Z, r, psf, srf = check_inputs(Y, Z, r, psf, srf, "Blind-STEREO")
    rank, lam, iters, cpd_iters = _parameters(Y, rank, lam, iters, cpd_iters, "Blind-STEREO")
    A, B, A_lr, B_lr, C_tilde = blind_ten_rec(Z, r, rank, cpd_iters, seed)
    return cpd_tensor(*blind_stereo(Y, Z, srf.T, A, B, A_lr, B_lr, C_tilde, lam, iters))


def default_rank(Y):
    """The default CPD rank for the h x w x C LR-HSI ``Y``: min(400, h w / 3) (module docstring)."""
    return max(1, min(RANK, Y.shape[0] * Y.shape[1] // RANK_PIXEL_FRACTION))


# ----------------------------------------------------------------------------- the algorithms

def ten_rec(Y, Z, P1, P2, rank, cpd_iters, seed):
    """TenRec (the paper's Algorithm 2, TenRec.m): a rank-``rank`` CPD of the HR-MSI (``cpd_als``) gives A,
    B and C_tilde, then C fits the LR-HSI with P1 A and P2 B. Returns (A, B, C, C_tilde)."""
    A, B, C_tilde = cpd_als(Z, rank, cpd_iters, np.random.default_rng(seed))
    return A, B, _least_squares_spectra(Y, P1 @ A, P2 @ B), C_tilde


def blind_ten_rec(Z, r, rank, cpd_iters, seed):
    """Blind TenRec (Blind_TenRec.m): TenRec's CPD of the HR-MSI, with the degraded factors taken as r-row
    block means of A and B. Returns (A, B, A_lr, B_lr, C_tilde)."""
    A, B, C_tilde = cpd_als(Z, rank, cpd_iters, np.random.default_rng(seed))
    return A, B, block_means(A, r), block_means(B, r), C_tilde


def stereo(Y, Z, P1, P2, P3, A, B, C, C_tilde, lam, iters):
    """STEREO's alternating least squares (the paper's Algorithm 1, STEREO.m) from the factors A, B, C and
    C_tilde (= P3 C, the HR-MSI's spectral factor as TenRec left it); returns (A, B, C)."""
    B_lr = P2 @ B
    for _ in range(iters):
        A = _sylvester_factor(lam * (P1.T @ P1), (C_tilde.T @ C_tilde) * (B.T @ B), (C.T @ C) * (B_lr.T @ B_lr),
                              lam * P1.T @ mttkrp(Y, 0, C, B_lr) + mttkrp(Z, 0, C_tilde, B))
        A_lr = P1 @ A
        B = _sylvester_factor(lam * (P2.T @ P2), (C_tilde.T @ C_tilde) * (A.T @ A), (C.T @ C) * (A_lr.T @ A_lr),
                              lam * P2.T @ mttkrp(Y, 1, C, A_lr) + mttkrp(Z, 1, C_tilde, A))
        B_lr = P2 @ B
        C = _sylvester_factor(P3.T @ P3, lam * (B_lr.T @ B_lr) * (A_lr.T @ A_lr), (B.T @ B) * (A.T @ A),
                              lam * mttkrp(Y, 2, B_lr, A_lr) + P3.T @ mttkrp(Z, 2, B, A))
        C_tilde = P3 @ C
    return A, B, C


def blind_stereo(Y, Z, P3, A, B, A_lr, B_lr, C_tilde, lam, iters):
    """Blind-STEREO's alternating least squares (Blind_STEREO.m): the LR factors A_lr, B_lr are fitted to
    the LR-HSI, A and B to the HR-MSI, C to both (a Sylvester equation, after each side); returns (A, B,
    C)."""
    C = _least_squares_spectra(Y, A_lr, B_lr)
    ms_gram = (B.T @ B) * (A.T @ A)
    ms_spectra = P3.T @ mttkrp(Z, 2, B, A)

    def spectra():
        return _sylvester_factor(P3.T @ P3, lam * (B_lr.T @ B_lr) * (A_lr.T @ A_lr), ms_gram,
                                 lam * mttkrp(Y, 2, B_lr, A_lr) + ms_spectra)

    for _ in range(iters):
        A_lr = _solve_factor((C.T @ C) * (B_lr.T @ B_lr), mttkrp(Y, 0, C, B_lr))
        B_lr = _solve_factor((C.T @ C) * (A_lr.T @ A_lr), mttkrp(Y, 1, C, A_lr))
        C = spectra()
        C_tilde = P3 @ C
        A = _solve_factor((C_tilde.T @ C_tilde) * (B.T @ B), mttkrp(Z, 0, C_tilde, B))
        B = _solve_factor((C_tilde.T @ C_tilde) * (A.T @ A), mttkrp(Z, 1, C_tilde, A))
        ms_gram = (B.T @ B) * (A.T @ A)
        ms_spectra = P3.T @ mttkrp(Z, 2, B, A)
        C = spectra()
    return A, B, C


def cpd_als(T, rank, iters, rng):
    """A rank-``rank`` CPD of the I x J x K tensor ``T`` by alternating least squares, ``iters`` sweeps
    from Gaussian random factors drawn from ``rng``: (A I x F, B J x F, C K x F) with T ~ [[A, B, C]]."""
    A, B, C = (rng.standard_normal((n, rank)) for n in T.shape)
    for _ in range(iters):
        A = _solve_factor((C.T @ C) * (B.T @ B), mttkrp(T, 0, C, B))
        B = _solve_factor((C.T @ C) * (A.T @ A), mttkrp(T, 1, C, A))
        C = _solve_factor((B.T @ B) * (A.T @ A), mttkrp(T, 2, B, A))
    return A, B, C


def mttkrp(T, mode, first, second):
    """The matricised tensor times Khatri-Rao product of the I x J x K tensor ``T`` for ``mode`` (0, 1, 2)
    with the other two modes' factors, the later mode's first (as the authors' khatri_rao(C, B) for
    mode 0, (C, A) for mode 1, (B, A) for mode 2): an (I, J or K) x F matrix."""
    spec = {0: "ijk,kf,jf->if", 1: "ijk,kf,if->jf", 2: "ijk,jf,if->kf"}[mode]
    return np.einsum(spec, T, first, second, optimize=True)


def cpd_tensor(A, B, C):
    """[[A, B, C]]: the I x J x K tensor sum_f A[:, f] o B[:, f] o C[:, f]."""
    return np.einsum("if,jf,kf->ijk", A, B, C, optimize=True)


def block_means(factor, r):
    """Blind TenRec's degraded factor: the mean of each block of r consecutive rows of ``factor``."""
    return factor.reshape(factor.shape[0] // r, r, -1).mean(axis=1)


def _least_squares_spectra(Y, A_lr, B_lr):
    """TenRec's spectral factor: C minimising ||Y - [[A_lr, B_lr, C]]|| (MATLAB's ``khatri_rao(B, A) \\ H3``)."""
    h, w, c = Y.shape
    khatri_rao = (B_lr[:, None, :] * A_lr[None, :, :]).reshape(w * h, -1)
    return np.linalg.lstsq(khatri_rao, Y.transpose(1, 0, 2).reshape(w * h, c), rcond=None)[0].T


def _sylvester_factor(left, right_gram, data_gram, rhs):
    """The factor F solving left F + F right_gram data_gram^+ = rhs data_gram^+ (eqs. 19-21, with the
    authors' pseudo-inverse of the Gram matrix)."""
    inverse = np.linalg.pinv(data_gram)
    return scipy.linalg.solve_sylvester(left, right_gram @ inverse, rhs @ inverse)


def _solve_factor(gram, rhs):
    """The least-squares factor F = rhs gram^-1 (``(gram \\ rhs')'`` in the authors' code; gram is symmetric)."""
    return np.linalg.solve(gram, rhs.T).T


# ----------------------------------------------------------------------------- checks

def _parameters(Y, rank, lam, iters, cpd_iters, method):
    pixels = Y.shape[0] * Y.shape[1]
    rank = default_rank(Y) if rank is None else check_integer(rank, "rank", method, 1, pixels,
                                                              " (the LR-HSI's pixel count h w)")
    if isinstance(lam, bool) or not isinstance(lam, numbers.Real) or not 0 <= lam < np.inf:
        raise DataError(f"{method}: lam = {lam!r} must be a finite number >= 0")
    return rank, float(lam), check_integer(iters, "iters", method, 0), check_integer(cpd_iters, "cpd_iters", method, 1)
