"""CSTF: hyperspectral-multispectral fusion by coupled sparse tensor factorisation.

S. Li, R. Dian, L. Fang and J. M. Bioucas-Dias, "Fusing hyperspectral and multispectral images via
coupled sparse tensor factorization", IEEE Transactions on Image Processing 27(8), 4118-4130, 2018.

The HR-HSI (rows x cols x C) is a Tucker product X = C x1 W x2 H x3 S of a sparse core
(n_w x n_h x n_s) and dictionaries of the row mode (W, rows x n_w), the column mode (H, cols x n_h)
and the spectral mode (S, C x n_s).
The LR-HSI is X x1 P1 x2 P2 (P1, P2: the separable blur and decimation of each spatial mode) and
the HR-MSI is X x3 R (R = srf'), so both are Tucker products of the same core with degraded
dictionaries, and the paper estimates everything from the coupled factorisation

    min ||Y - C x1 (P1 W) x2 (P2 H) x3 S||^2 + ||Z - C x1 W x2 H x3 (R S)||^2 + lambda ||C||_1

by proximal alternating optimisation:
- initialisation: W and H learned by K-SVD from the mode-1 and mode-2 unfoldings of the HR-MSI
  (columns and rows of its bands as training signals, 2 atoms per signal), S by VCA from the LR-HSI,
  C by the core step below;
- then, each outer iteration: W, H and S each by their quadratic subproblem with a proximal term
  mu ||D - D_previous||^2, whose normal equations form a generalised Sylvester equation
  P D M1 + D M2 = RHS (P: P1'P1, P2'P2 or R'R), of which the authors take 30 conjugate-gradient
  steps from the previous dictionary (DIC_CG.m, DIC_CG1.m; ``cg_iters``, None for the exact
  solution by two symmetric eigendecompositions). The steps do not reach the minimiser, and this
  inexact update is part of the method's result: with the exact one, SAM on the case of
  tests/baselines/test_octave_reference.py is 0.54 degrees instead of 0.40 (the authors' own run: 0.41);
  then C by ADMM (split C into one copy per data term, soft thresholding, 60 iterations), with a
  proximal term towards the previous core.

Defaults are those of the authors' MATLAB code as first published (github.com/renweidian/CSTF,
commit 3e33be6 of 2019: CSTF_FUS.m, sparse_tucker2.m, DIC_CG*.m, demo.m; the 2020 revisions of
CSTF_FUS.m replace K-SVD by the leading singular vectors and run 3 outer iterations): lambda = 1e-5,
proximal weight mu = 1e-3, ADMM penalty 0.01 with 60 iterations, 15 outer iterations, 30 CG steps
per dictionary update, K-SVD with 100 iterations and 2 atoms per signal, n_w = n_h = 240 atoms (the
demo's 256 x 256 image; capped here at the image's height and width), n_s = 9 spectral atoms; data
scaled to [0, 1] as here. K-SVD follows Aharon et al. (2006) with the approximate atom update of
Rubinstein et al. (2008), as the authors' trainD.m (K-SVD toolbox, one dictionary-update cycle, OMP
with ompcore.c's stopping rules); VCA (Nascimento & Bioucas-Dias 2005) is used in its high-SNR form
(projective projection), the form it takes on clean data, with numpy's generator (``seed``) where
the authors' code draws from MATLAB's. Two choices of trainD.m are random or rounding-bound and
cannot be reproduced exactly: among training signals of equal representation error the one that
replaces an unused atom is found in random order (here: the first), and on data with repeated
training signals (few distinct spectra) the OMP's choice between equal atoms follows rounding, so
after some iterations the dictionaries differ from the authors' run (tests/baselines/test_octave_reference.py
states the tolerance this leaves). The PSF must be separable (operators.degradation_matrices), as
the paper's model requires. Non-blind: the true PSF and SRF are given.
"""
import numbers
from functools import partial

import numpy as np
import scipy.linalg

from baselines.operators import check_inputs, check_integer, degradation_matrices
from baselines.unmixing import vca
from imagery.errors import DataError

LAMBDA = 1e-5          # demo.m: par.lambda, weight of ||C||_1
PROXIMAL = 1e-3        # CSTF_FUS.m: mu, proximal weight of every block update
ADMM_PENALTY = 0.01    # sparse_tucker2.m: mu
ADMM_ITERS = 60        # sparse_tucker2.m: T
CG_ITERS = 30          # DIC_CG.m, DIC_CG1.m: maxIter
OUTER_ITERS = 15       # CSTF_FUS.m
KSVD_ITERS = 100       # CSTF_FUS.m: params.iternum
KSVD_SPARSITY = 2      # CSTF_FUS.m: params.Tdata
SPATIAL_ATOMS = 240    # demo.m: par.W = par.H
SPECTRAL_ATOMS = 9     # demo.m: par.S
# K-SVD's dictionary clean-up (the K-SVD toolbox's cleardict): an atom used by fewer signals, or
# more coherent with another atom, is replaced by the worst-represented signal.
KSVD_MIN_USE = 4
KSVD_MAX_COHERENCE = 0.99
# ompcore.c's stopping rules (K-SVD toolbox): the squared correlation of the best atom with the
# residual, and the Cholesky pivot of a new atom, at or below these end a signal's pursuit.
OMP_MIN_CORRELATION = 1e-14
OMP_MIN_PIVOT = 1e-14
# Per-mode Gram eigenvalues below this fraction of the largest are zero (P1 W has rank <= h): the
# core step treats them as exactly zero, which keeps its transforms to the Gram's range.
GRAM_RANK_TOL = 1e-12


def fuse(Y, Z, r, psf, srf, lam=LAMBDA, atoms_rows=None, atoms_cols=None, atoms_spectral=None,
         outer_iters=OUTER_ITERS, ksvd_iters=KSVD_ITERS, seed=0, cg_iters=CG_ITERS):
    """Fuse an LR-HSI and an HR-MSI with CSTF (Li et al. 2018).

    Y: h x w x C LR-HSI; Z: H x W x Cm HR-MSI with H = r h, W = r w (rows, columns, bands; scaled
    to about [0, 1], which lam assumes); r: integer scale factor; psf: r x r separable convolution
    kernel summing to 1 (Y = model.degradation.spatial_degrade(X, psf, r)); srf: C x Cm, columns summing
    to 1 (Z = X @ srf). lam >= 0: weight of the core's l1 norm; atoms_rows / atoms_cols: atoms of
    the row and column dictionaries (default min(240, H) and min(240, W)), at most the number of
    training signals (W Cm and H Cm); atoms_spectral: atoms of the spectral dictionary (default 9,
    capped at C and h w; at most C and h w); outer_iters, ksvd_iters >= 0: iteration counts; seed:
    VCA's random directions; cg_iters >= 1: conjugate-gradient steps of each dictionary update (None:
    the exact solution). Returns X_hat, H x W x C float64, in the units of Y.

    Raises DataError for inconsistent shapes, a PSF that is not separable, an SRF that does not
    fit, non-finite values, or parameters out of range.
    """
    Y, Z, r, psf, srf = check_inputs(Y, Z, r, psf, srf, "CSTF")
    h, w, bands = Y.shape
    rows, cols, msi_bands = Z.shape
    lam = _number(lam, "lam")
    n_w = check_integer(min(SPATIAL_ATOMS, rows) if atoms_rows is None else atoms_rows, "atoms_rows", "CSTF", 1,
                        cols * msi_bands)
    n_h = check_integer(min(SPATIAL_ATOMS, cols) if atoms_cols is None else atoms_cols, "atoms_cols", "CSTF", 1,
                        rows * msi_bands)
    n_s = check_integer(min(SPECTRAL_ATOMS, bands, h * w) if atoms_spectral is None else atoms_spectral,
                        "atoms_spectral", "CSTF", 1, min(bands, h * w))
    outer_iters = check_integer(outer_iters, "outer_iters", "CSTF", 0)
    ksvd_iters = check_integer(ksvd_iters, "ksvd_iters", "CSTF", 0)
    solve = (_sylvester if cg_iters is None
             else partial(_sylvester_cg, iters=check_integer(cg_iters, "cg_iters", "CSTF", 1)))
    P1, P2 = degradation_matrices(psf, r, rows, cols)
    R = srf.T
    rng = np.random.default_rng(seed)

    # Training signals in the authors' order (MATLAB unfoldings): the columns of every MSI band, and
    # the rows of every band with the band index fastest; K-SVD starts from the first ones.
    W_dict = ksvd(Z.transpose(0, 2, 1).reshape(rows, msi_bands * cols), n_w, ksvd_iters, "atoms_rows")
    H_dict = ksvd(Z.transpose(1, 0, 2).reshape(cols, rows * msi_bands), n_h, ksvd_iters, "atoms_cols")
    S_dict = vca(Y.reshape(-1, bands).T, n_s, rng)
    core = np.zeros((n_w, n_h, n_s))
    core = sparse_core(Y, Z, (P1 @ W_dict, P2 @ H_dict, S_dict), (W_dict, H_dict, R @ S_dict), lam, core)
    for _ in range(outer_iters):
        # Row dictionary: the LR term sees P1 W, the MSI term W.
        lr = tucker(core, (None, P2 @ H_dict, S_dict))
        ms = tucker(core, (None, H_dict, R @ S_dict))
        W_dict = solve(P1.T @ P1, _gram(lr, 0), _gram(ms, 0) + PROXIMAL * np.eye(n_w),
                       P1.T @ _cross(Y, lr, 0) + _cross(Z, ms, 0) + PROXIMAL * W_dict, start=W_dict)
        # Column dictionary: the LR term sees P2 H, the MSI term H.
        lr = tucker(core, (P1 @ W_dict, None, S_dict))
        ms = tucker(core, (W_dict, None, R @ S_dict))
        H_dict = solve(P2.T @ P2, _gram(lr, 1), _gram(ms, 1) + PROXIMAL * np.eye(n_h),
                       P2.T @ _cross(Y, lr, 1) + _cross(Z, ms, 1) + PROXIMAL * H_dict, start=H_dict)
        # Spectral dictionary: the LR term sees S, the MSI term R S.
        lr = tucker(core, (P1 @ W_dict, P2 @ H_dict, None))
        ms = tucker(core, (W_dict, H_dict, None))
        S_dict = solve(R.T @ R, _gram(ms, 2), _gram(lr, 2) + PROXIMAL * np.eye(n_s),
                       _cross(Y, lr, 2) + R.T @ _cross(Z, ms, 2) + PROXIMAL * S_dict, start=S_dict)
        core = sparse_core(Y, Z, (P1 @ W_dict, P2 @ H_dict, S_dict), (W_dict, H_dict, R @ S_dict), lam, core)
    return tucker(core, (W_dict, H_dict, S_dict))


# ----------------------------------------------------------------------------- tensor algebra

def tucker(core, matrices):
    """core x1 A1 x2 A2 x3 A3 for a 3-way array and three matrices (None: that mode is left as is)."""
    out = core
    for mode, matrix in enumerate(matrices):
        if matrix is not None:
            out = np.moveaxis(np.tensordot(matrix, out, axes=(1, mode)), 0, mode)
    return out


def _gram(t, mode):
    """T_(mode) T_(mode)': the Gram matrix of a 3-way array's mode unfolding."""
    other = tuple(m for m in range(3) if m != mode)
    return np.tensordot(t, t, axes=(other, other))


def _cross(a, b, mode):
    """A_(mode) B_(mode)' for two 3-way arrays that agree on the other two modes."""
    other = tuple(m for m in range(3) if m != mode)
    return np.tensordot(a, b, axes=(other, other))


def _sylvester(P, M1, M2, rhs, start=None):
    """D solving P D M1 + D M2 = rhs, for P and M1 symmetric positive semi-definite and M2 symmetric
    positive definite: with P = U diag(p) U' and M1 V = M2 V diag(t), V' M2 V = I,
    D = U [(U' rhs V) / (1 + p t')] V'. ``start`` is not used (the signature of _sylvester_cg)."""
    p, U = np.linalg.eigh(P)
    t, V = scipy.linalg.eigh(M1, M2)
    return U @ ((U.T @ rhs @ V) / (1 + np.outer(p, t))) @ V.T


def _sylvester_cg(P, M1, M2, rhs, start, iters=None):
    """``iters`` conjugate-gradient steps from ``start`` towards D solving P D M1 + D M2 = rhs (P, M1
    symmetric positive semi-definite, M2 symmetric positive definite: the operator D -> P D M1 + D M2
    is then symmetric positive definite for the trace inner product), as the authors' DIC_CG.m and
    DIC_CG1.m. Stops early only at an exactly zero residual, where their code would divide 0 by 0."""
    D = start
    residual = rhs - (P @ D @ M1 + D @ M2)
    direction = residual
    norm = np.sum(residual * residual)
    for _ in range(iters):
        if norm == 0:
            break
        image = P @ direction @ M1 + direction @ M2
        step = norm / np.sum(direction * image)
        D = D + step * direction
        residual = residual - step * image
        new_norm = np.sum(residual * residual)
        direction = residual + (new_norm / norm) * direction
        norm = new_norm
    return D


# ----------------------------------------------------------------------------- core step (ADMM)

def sparse_core(Y, Z, lr_dicts, ms_dicts, lam, previous, proximal=PROXIMAL, penalty=ADMM_PENALTY,
                iters=ADMM_ITERS):
    """The core step of CSTF: C minimising ||Y - C x lr_dicts||^2 + ||Z - C x ms_dicts||^2 + lam ||C||_1
    + proximal ||C - previous||^2, by ADMM with one copy of C per data term (scaled multipliers,
    penalty ``penalty``), started from C = 0 as the authors' sparse_tucker2.m.

    Y: h x w x C and Z: H x W x Cm arrays; lr_dicts / ms_dicts: three matrices each (rows = the
    data's mode size, columns = the core's); previous: the core's shape. Returns the core (float64).
    Each copy's step is the ridge system (K + penalty I) s = b with K = K3 (x) K2 (x) K1 the Kronecker
    product of the per-mode Grams, solved in their eigenbases; eigenvalues that are zero (e.g. the
    h nonzero ones of (P1 W)'(P1 W)) are left out, where the inverse is exactly 1/penalty.
    """
    solvers = [_ridge_solver(data, dicts, penalty) for data, dicts in ((Y, lr_dicts), (Z, ms_dicts))]
    core = np.zeros_like(previous)
    duals = [np.zeros_like(previous), np.zeros_like(previous)]
    weight = 2 * penalty + proximal
    # The data terms are written without the factor 1/2 the ADMM steps assume: lam / 2 is the
    # threshold's weight (the authors' lambda / (4 mu + 2 mu1)).
    threshold = lam / 2 / weight
    for _ in range(iters):
        copies = [solve(core - dual) for solve, dual in zip(solvers, duals)]
        target = (penalty * (copies[0] + duals[0] + copies[1] + duals[1]) + proximal * previous) / weight
        core = np.sign(target) * np.maximum(np.abs(target) - threshold, 0)
        duals = [dual + copy - core for dual, copy in zip(duals, copies)]
    return core


def _ridge_solver(data, dicts, penalty):
    """s(x) = (K + penalty I)^-1 (D' data + penalty x) for the Tucker operator D of ``dicts``."""
    bases, values = [], []
    for matrix in dicts:
        e, v = np.linalg.eigh(matrix.T @ matrix)
        keep = e > GRAM_RANK_TOL * max(e[-1], np.finfo(float).tiny)
        bases.append(v[:, keep])
        values.append(e[keep])
    spectrum = np.einsum("i,j,k->ijk", *values)
    gain = 1 / (spectrum + penalty) - 1 / penalty
    transposed = [b.T for b in bases]
    rhs = tucker(data, [m.T for m in dicts])

    def solve(x):
        # (K + p I)^-1 v = v / p + B [(1 / (lambda + p) - 1 / p) * B' v], B the range's eigenbasis.
        v = rhs + penalty * x
        return v / penalty + tucker(gain * tucker(v, transposed), bases)

    return solve


# ----------------------------------------------------------------------------- initialisation

def ksvd(data, atoms, iters, name="atoms", sparsity=KSVD_SPARSITY):
    """K-SVD dictionary (n x atoms, unit-norm columns) for the n x N training signals ``data``.

    As the authors' trainD.m (K-SVD toolbox of R. Rubinstein, with one dictionary-update cycle):
    starts from the first ``atoms`` nonzero signals, normalised; each iteration codes every signal
    with ``sparsity`` atoms by orthogonal matching pursuit, then updates the atoms one after another:
    an atom that codes some signals by the approximate K-SVD step (one power iteration on the
    residual of those signals), an atom that codes none by the worst-represented signal not taken
    before (normalised, first entry made positive; such an atom is "replaced" for good); finally
    atoms used by fewer than KSVD_MIN_USE signals or coherent above KSVD_MAX_COHERENCE with another
    are cleared (``_clear_dictionary``), except replaced ones. Raises DataError (naming ``name``)
    when there are fewer nonzero signals than atoms.
    """
    norms = np.linalg.norm(data, axis=0)
    nonzero = np.flatnonzero(norms > 0)
    if nonzero.size < atoms:
        raise DataError(f"CSTF: {name} = {atoms}, but the HR-MSI gives only {nonzero.size} nonzero training "
                        f"signals for that dictionary; pass {name} <= {nonzero.size}")
    D = data[:, nonzero[:atoms]] / norms[nonzero[:atoms]]
    # trainD's unused_sigs: only the replacements of unused atoms take signals out for good.
    unused = np.ones(data.shape[1], dtype=bool)
    replaced = np.zeros(atoms, dtype=bool)
    for _ in range(iters):
        codes = omp(D, data, sparsity)
        # The atom updates are sequential by design (each uses the atoms updated before it).
        for j in range(atoms):
            users = np.flatnonzero(codes[j])
            if users.size == 0:
                candidates = np.flatnonzero(unused)
                error = np.sum((data[:, candidates] - D @ codes[:, candidates]) ** 2, axis=0)
                best = candidates[np.argmax(error)]
                atom = data[:, best] / np.linalg.norm(data[:, best])
                D[:, j] = np.sign(atom[0]) * atom
                unused[best] = False
                replaced[j] = True
                continue
            gamma = codes[j, users]
            residual = data[:, users] - D @ codes[:, users] + np.outer(D[:, j], gamma)
            atom = residual @ gamma
            atom /= np.linalg.norm(atom)
            D[:, j] = atom
            codes[j, users] = atom @ residual
        _clear_dictionary(D, codes, data, unused.copy(), replaced)
    return D


def _clear_dictionary(D, codes, data, unused, replaced):
    """Replace rarely used or near-duplicate atoms of D (in place) by the worst-coded unused signals,
    leaving out the atoms flagged in ``replaced``; ``unused`` (bool per signal) is updated."""
    error = np.sum((data - D @ codes) ** 2, axis=0)
    usage = np.count_nonzero(np.abs(codes) > 1e-7, axis=1)
    gram = D.T @ D
    np.fill_diagonal(gram, 0)
    # The K-SVD toolbox takes, for each atom to replace, the unused signal of largest error.
    order = np.argsort(-error, kind="stable")
    candidates = iter(order[unused[order]])
    for j in range(D.shape[1]):
        if replaced[j] or (np.max(np.abs(gram[j])) <= KSVD_MAX_COHERENCE and usage[j] >= KSVD_MIN_USE):
            continue
        best = next(candidates, None)
        if best is None:
            return
        unused[best] = False
        norm = np.linalg.norm(data[:, best])
        if norm > 0:
            D[:, j] = data[:, best] / norm
            column = D.T @ D[:, j]
            column[j] = 0
            gram[j], gram[:, j] = column, column


def omp(D, X, sparsity):
    """Orthogonal matching pursuit of every column of X (n x N) with at most ``sparsity`` atoms of D
    (n x K, unit-norm columns), all signals at once. Returns the K x N coefficient matrix.

    Stops a signal early as the K-SVD toolbox's ompcore.c does: when the best remaining correlation
    with the residual is below OMP_MIN_CORRELATION in square (e.g. a signal equal to one atom takes
    that atom alone), when the best atom was already chosen, or when it depends linearly on the
    chosen ones (the Cholesky pivot 1 - g' G_sub^-1 g at most OMP_MIN_PIVOT).
    """
    gram = D.T @ D
    correlation = D.T @ X
    N = X.shape[1]
    columns = np.arange(N)
    chosen = np.zeros((0, N), dtype=int)
    valid = np.zeros((0, N), dtype=bool)       # False: a slot left empty by a signal that stopped
    coef = np.zeros((0, N))
    active = np.ones(N, dtype=bool)
    for _ in range(min(sparsity, D.shape[1])):
        residual_corr = correlation - np.einsum("ksn,sn->kn", gram[:, chosen], coef)
        pick = np.argmax(np.abs(residual_corr), axis=0)
        repeated = ((chosen == pick) & valid).any(axis=0)
        weak = residual_corr[pick, columns] ** 2 < OMP_MIN_CORRELATION
        g = gram[chosen, pick] * valid                                         # slots x N
        sub = _padded_gram(gram, chosen, valid)
        pivot = 1 - np.einsum("sn,sn->n", g, np.linalg.solve(sub, g.T[:, :, None])[:, :, 0].T) if len(chosen) \
            else np.ones(N)
        active &= ~(repeated | weak | (pivot <= OMP_MIN_PIVOT))
        chosen = np.vstack([chosen, np.where(active, pick, 0)])
        valid = np.vstack([valid, active])
        rhs = correlation[chosen, columns] * valid
        coef = np.linalg.solve(_padded_gram(gram, chosen, valid), rhs.T[:, :, None])[:, :, 0].T
    codes = np.zeros((D.shape[1], N))
    np.add.at(codes, (chosen, np.broadcast_to(columns, chosen.shape)), coef * valid)
    return codes


def _padded_gram(gram, chosen, valid):
    """N x s x s Gram matrices of each signal's chosen atoms, with identity rows and columns for the
    empty slots (their coefficients solve to 0)."""
    both = valid.T[:, :, None] & valid.T[:, None, :]
    eye = np.eye(chosen.shape[0], dtype=bool)
    return np.where(both, gram[chosen.T[:, :, None], chosen.T[:, None, :]], eye)


# ----------------------------------------------------------------------------- checks



def _number(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < np.inf:
        raise DataError(f"CSTF: {name} = {value!r} must be a finite number >= 0")
    return float(value)
