"""G-SOMP+: hyperspectral super-resolution by sparse spatio-spectral representation.

N. Akhtar, F. Shafait and A. Mian, "Sparse spatio-spectral representation for hyperspectral image
super-resolution", Proceedings of the European Conference on Computer Vision (ECCV), 63-78, 2014.

Each HR pixel's spectrum is a non-negative sparse combination of a dictionary Phi (C x k, non-negative)
learned from the LR-HSI's spectra; the HR-MSI's pixels are coded on the spectrally degraded dictionary
Phi_tilde = R Phi (R = srf') and the codes are applied to Phi. Pixels of one patch share their atoms:
G-SOMP+ (the paper's Algorithm 1, GSOMP_NN in the authors' superResolution.m) grows the patch's support by
the L atoms whose normalised correlations with the pixels' normalised residuals sum highest, codes every
pixel by non-negative least squares on the support, and stops after the step whose residual (spectral
norm over the patch) fell by less than the factor gamma; that last step's codes are kept.

Defaults are those of the authors' code (superResolution.m and Demo_HS_SuperResolution.m, as distributed
in github.com/magamig/hif-benchmarking methods/GSOMP, commit ef23570): k = 300 atoms, L = 20, gamma = 0.99,
8 x 8 patches, a dictionary trained for 300 iterations. The method uses no PSF (the LR-HSI only trains
the dictionary; ``psf`` is checked and not used).

A bug of the authors' code. superResolution.m sets L = 20 (its documented default, or param.L) and then
overwrites it with the number of HSI bands (``[M,N,L] = size(S)``, to size the image), so G-SOMP+ runs with
L = C: 31 atoms a step on their CAVE demo, 46 on Houston 2018. The intended L = 20 is the default here;
``atoms_per_step=C`` reproduces the code (on the Houston crop: 42.0 dB with 20 against 41.9 with 46 at r =
4, 44.9 against 45.6 at r = 8).

What replaces SPAMS. The authors learn Phi with SPAMS' ``mexTrainDL`` (Mairal et al.'s online dictionary
learning, JMLR 2010; posD = 1, mode 1: min ||alpha||_1 subject to ||x - Phi alpha||^2 <= eta = 1e-8,
300 iterations of mini-batches of 512) or, without SPAMS, load a dictionary they learned for their demo
image. Here the same online algorithm is scikit-learn's ``MiniBatchDictionaryLearning`` (non-negative
atoms, mini-batches of 512 spectra, seeded), a maintained library rather than our own learner.
scikit-learn only has the penalised form of the coding step, min 1/2 ||x - Phi alpha||^2 + alpha_w
||alpha||_1, here with alpha_w = 1e-3, and its LARS coding with so small a weight is slow: all 300 steps
took 310, 190 and 90 s on the Houston 2018 crop at r = 4, 5 and 8 (42.3, 44.4 and 42.7 dB). The learning
therefore ends at 300 steps or earlier, by scikit-learn's own rule (10 steps without a better smoothed
cost): 5 to 10 s for the whole method there, at 42.0, 41.7 and 44.9 dB. Atoms left at zero by the learning
are dropped (their normalised correlation is undefined).

Given the same dictionary, the authors' superResolution2.m run under GNU Octave agrees with this module
patch by patch wherever the non-negative least-squares problems have one solution; where a patch's support
holds more atoms than the HR-MSI has bands they have many, and Octave's lsqnonneg and scipy's nnls (both
Lawson-Hanson) stop at different ones, so the comparison (tests/baselines/test_octave_reference.py) is on
quality. The authors' code leaves out the rows and
columns beyond the last whole patch; here they are coded as smaller patches. Each pixel's non-negative
least squares is scipy's (Lawson-Hanson, as MATLAB's ``lsqnonneg``), one small solve per pixel.
"""
import numbers

import numpy as np
import scipy.optimize

from baselines.operators import check_inputs, check_integer
from imagery.errors import DataError

ATOMS = 300            # superResolution.m: k
ATOMS_PER_STEP = 20    # superResolution.m: L
GAMMA = 0.99           # superResolution.m: gamma, the residual decay that keeps G-SOMP+ going
PATCH = 8              # superResolution.m: patchsize
DL_ITERS = 300         # superResolution.m: param.iter of mexTrainDL
DL_BATCH = 512         # SPAMS mexTrainDL's default batchsize
DL_PENALTY = 1e-3      # scikit-learn's alpha (module docstring)
DL_PATIENCE = 10       # scikit-learn's max_no_improvement: steps without a better cost before it stops


def fuse(Y, Z, r, psf, srf, atoms=ATOMS, atoms_per_step=ATOMS_PER_STEP, gamma=GAMMA, patch=PATCH,
         penalty=DL_PENALTY, dictionary=None, seed=0):
    """Fuse an LR-HSI and an HR-MSI with G-SOMP+ (Akhtar et al. 2014).

    Y: h x w x C LR-HSI; Z: H x W x Cm HR-MSI with H = r h, W = r w (rows, columns, bands); r: integer scale
    factor; psf: checked, not used; srf: C x Cm, columns summing to 1 (Z = X @ srf). atoms: k, the
    dictionary's size (>= 1); atoms_per_step: L (>= 1); gamma in (0, 1]; patch: the side of the square
    patches whose pixels share their atoms (>= 1); penalty > 0: the l1 weight of the dictionary learning;
    dictionary: a C x k non-negative dictionary to use instead of learning one (``learn_dictionary``); seed:
    the learning's random state. Returns X_hat, H x W x C float64.

    Raises DataError for inconsistent shapes, an SRF that does not fit, non-finite values or a parameter out
    of range.
    """
    Y, Z, r, psf, srf = check_inputs(Y, Z, r, psf, srf, "G-SOMP+")
    atoms_per_step = check_integer(atoms_per_step, "atoms_per_step", "G-SOMP+", 1)
    patch = check_integer(patch, "patch", "G-SOMP+", 1)
    if isinstance(gamma, bool) or not isinstance(gamma, numbers.Real) or not 0 < gamma <= 1:
        raise DataError(f"G-SOMP+: gamma = {gamma!r} must be a number in (0, 1]")
    bands = Y.shape[2]
    if dictionary is None:
        atoms = check_integer(atoms, "atoms", "G-SOMP+", 1)
        dictionary = learn_dictionary(Y.reshape(-1, bands).T, atoms, penalty, seed)
    projected = srf.T @ dictionary
    rows, cols = Z.shape[:2]
    X = np.empty((rows, cols, bands))
    for top in range(0, rows, patch):
        for left in range(0, cols, patch):
            pixels = Z[top:top + patch, left:left + patch]
            codes = gsomp_plus(projected, pixels.reshape(-1, Z.shape[2]).T, atoms_per_step, gamma)
            X[top:top + patch, left:left + patch] = (dictionary @ codes).T.reshape(*pixels.shape[:2], bands)
    return X


def learn_dictionary(spectra, atoms, penalty=DL_PENALTY, seed=0):
    """A non-negative dictionary (C x k', the k' <= ``atoms`` atoms that are not zero) learned from the
    spectra (C x n) by online dictionary learning (scikit-learn's MiniBatchDictionaryLearning: at most
    DL_ITERS steps of DL_BATCH spectra, ended early when its smoothed cost has not improved for DL_PATIENCE
    steps; l1 weight ``penalty``, random state ``seed``)."""
    from sklearn.decomposition import MiniBatchDictionaryLearning

    count = spectra.shape[1]
    batch = min(DL_BATCH, count)
    epochs = max(1, DL_ITERS // -(-count // batch))  # scikit-learn counts epochs of ceil(n / batch) steps
    learner = MiniBatchDictionaryLearning(n_components=atoms, alpha=penalty, batch_size=batch, max_iter=epochs,
                                          positive_dict=True, max_no_improvement=DL_PATIENCE, random_state=seed)
    dictionary = learner.fit(spectra.T).components_.T
    return dictionary[:, np.linalg.norm(dictionary, axis=0) > 0]


def gsomp_plus(D, Y, atoms_per_step, gamma):
    """G-SOMP+ (GSOMP_NN): the non-negative codes (k x n) of the pixels Y (Cm x n, one patch) on the
    dictionary D (Cm x k), with one support shared by the patch (module docstring)."""
    normalised = D / np.linalg.norm(D, axis=0)
    codes = np.zeros((D.shape[1], Y.shape[1]))
    residual, support = Y, np.array([], dtype=int)
    while True:
        previous = residual
        norms = np.linalg.norm(residual, axis=0)
        directions = np.divide(residual, norms, out=np.zeros_like(residual), where=norms > 0)
        ranked = np.argsort(-(normalised.T @ directions).sum(axis=1), kind="stable")
        grown = np.union1d(support, ranked[:atoms_per_step])  # only grows: rows outside it stay 0
        basis = D[:, grown]
        codes[grown] = np.stack([scipy.optimize.nnls(basis, pixel)[0] for pixel in Y.T], axis=1)
        residual = Y - basis @ codes[grown]
        # The authors' loop has no other exit: a support that stops growing (every atom taken) ends it too.
        if np.linalg.norm(residual, 2) > gamma * np.linalg.norm(previous, 2) or len(grown) == len(support):
            return codes
        support = grown
