"""CNMF: coupled nonnegative matrix factorisation unmixing.

N. Yokoya, T. Yairi and A. Iwasaki, "Coupled nonnegative matrix factorization unmixing for
hyperspectral and multispectral data fusion", IEEE TGRS 50(2), 528-537, 2012. Both images follow the
linear mixing model with shared endmembers and abundances:

    V_h = W_h H_h  (LR-HSI, C x N_h),     V_m = W_m H_m  (HR-MSI, Cm x N_m),
    H_h = H_m S    (S: the PSF's blur and decimation),   W_m = R W_h   (R = srf^T: the SRF),

and X = W_h H_m. Each image is unmixed in turn by Lee and Seung's multiplicative updates for the
Frobenius norm, with the abundance sum-to-one constraint imposed softly by appending a row delta
(1 ... 1) to the data and endmember matrices (the H update sees it, the W update does not). The sensor
models couple the two unmixings through the initialisation of each one: W_m = R W_h before unmixing
the MSI, H_h = S(H_m) before unmixing the HSI.

Schedule and defaults are those of the authors' MATLAB code (CNMF_fusion.m, CNMF_init.m and
CNMF_ite.m of 2015/01/14, as in the HSMSFusionToolbox of Yokoya et al., IEEE GRSM 5(2), 2017): M =
max(min(30, C), VD) endmembers, VD the virtual dimensionality (Harsanyi-Farrand-Chang, false-alarm
rate 0.05); 200 inner iterations per unmixing, stopped early when the cost's relative decrease falls
below 1e-8, each unmixing starting with a phase that updates one factor only (see ``_unmix``): the
first HSI unmixing's runs up to 3 x 200 steps, the first MSI unmixing's always runs all 200 (the
code's early-stop test there reads ``i > 1`` inside the ``i == 1`` branch, so it never fires); 1
outer iteration (their setting for real and synthetic data alike; see ``outer_iterations``), a
further one accepted only if both costs fall by more than 1 %; delta = 2 sqrt(mean(Z) / 0.7455) /
Cm^3; with Cm <= 3 MSI bands the MSI endmembers and the HSI abundances are not re-estimated (too few
bands); the HR abundances start from the interpolated LR ones, negative values set to 0.

Differences from that code: the endmembers are initialised by the successive projection algorithm
(SPA: N. Gillis and S. A. Vavasis, IEEE TPAMI 36(4), 2014) instead of VCA, a deterministic choice of
pure pixels where VCA draws random directions; S is the true PSF's blur and decimation
(``operators.blur_decimate``, the paper's spatial spread transform) where the code uses its fixed
Gaussian ``gaussian_down_sample``, and the abundances are interpolated by this project's bicubic
(``imresize`` in the code); VD leaves out eigenvalues at rounding level (``VD_RANK_TOLERANCE``),
which the code counts (on noiseless data their number depends on the eigensolver: 34 in Octave, 33
with numpy on the case of tests/baselines/test_octave_reference.py). Run with the same endmembers and operators,
this module reproduces the authors' code to rounding (tests/baselines/test_octave_reference.py). Not blind: the
true SRF and PSF are used (the code's SRF estimator, estR, is not implemented).
"""
import numpy as np
from scipy.stats import norm

from baselines.operators import bicubic_upsample, blur_decimate, check_inputs
from imagery.errors import DataError

VD_FALSE_ALARM = 5e-2
# Eigenvalues below bands x this x the largest are rounding noise: the threshold scales with them, so
# on noiseless low-rank data (the synthetic class-mean test cube: 17 spectra) the test would count dozens of them.
VD_RANK_TOLERANCE = np.finfo(np.float64).eps
INNER_ITERATIONS = 200
# The first HSI unmixing's H-only phase may run this many times the inner iterations (CNMF_init.m).
HSI_FIRST_PHASE = 3
# The code's lower bound on the number of endmembers: M = max(min(30, C), VD).
MIN_ENDMEMBERS = 30
OUTER_ITERATIONS = 1
INNER_TOLERANCE = 1e-8
OUTER_TOLERANCE = 1e-2
# The authors' sum-to-one weight: delta = 2 sqrt(mean(Z) / 0.7455) / Cm^3 (0.7455 is their constant).
DELTA_REFERENCE_MEAN = 0.7455
# With this few MSI bands the code keeps W_m = R W_h and the HSI abundances fixed.
MIN_BANDS_TO_REESTIMATE = 4
# Added to the denominators of the multiplicative updates: an all-zero factor row gives 0, not NaN.
DENOMINATOR_FLOOR = np.finfo(np.float64).eps


def virtual_dimensionality(V, false_alarm=VD_FALSE_ALARM):
    """Number of spectrally distinct signal sources in V (bands x pixels), by the HFC method.

    J. Harsanyi, W. Farrand and C.-I Chang, "Determining the number and identity of spectral
    endmembers: an integrated approach using Neyman-Pearson eigen-thresholding and iterative
    constrained RMS error minimization", Proc. 9th Thematic Conf. Geologic Remote Sensing, 1993; C.-I
    Chang and Q. Du, IEEE TGRS 42(3), 608-619, 2004: the sorted eigenvalues of the sample correlation
    matrix (V V^T / N) and covariance matrix (unbiased) are compared pairwise; a source is counted
    where the difference exceeds the Neyman-Pearson threshold at ``false_alarm`` of a zero-mean
    Gaussian with variance 2 (e_R^2 + e_K^2) / N. Only the eigenvalues above the correlation matrix's
    numerical rank are tested (see ``VD_RANK_TOLERANCE``). Returns an int in [0, bands].
    """
    n = V.shape[1]
    e_r = np.linalg.eigvalsh(V @ V.T / n)[::-1]
    e_k = np.linalg.eigvalsh(np.cov(V))[::-1]
    sigma = np.sqrt(2.0 * (e_r ** 2 + e_k ** 2) / n)
    signal = e_r > VD_RANK_TOLERANCE * V.shape[0] * e_r[0]
    return int(np.count_nonzero(signal & (e_r - e_k > sigma * norm.isf(false_alarm))))


def successive_projection(V, count):
    """Indices of ``count`` columns of V (bands x pixels) chosen by the successive projection algorithm.

    Each step takes the column of largest residual norm and projects every column onto the orthogonal
    complement of it (Gillis and Vavasis 2014). Under the sum-to-one mixing model the largest norms
    are reached at vertices of the data simplex, i.e. at the purest pixels.
    """
    residual = np.array(V, dtype=np.float64)
    picked = []
    for _ in range(count):
        j = int(np.argmax(np.einsum("ij,ij->j", residual, residual)))
        picked.append(j)
        norm_j = np.linalg.norm(residual[:, j])
        if norm_j > 0:
            u = residual[:, j] / norm_j
            residual -= np.outer(u, u @ residual)
    return np.array(picked)


def _update_h(V, W, H, delta):
    """Multiplicative update of H for || [V; delta 1] - [W; delta 1] H ||_F^2 (Lee-Seung)."""
    # [W; delta 1]^T [V; delta 1] = W^T V + delta^2 and [W; delta 1]^T [W; delta 1] = W^T W + delta^2.
    return H * (W.T @ V + delta ** 2) / ((W.T @ W + delta ** 2) @ H + DENOMINATOR_FLOOR)


def _update_w(V, W, H):
    """Multiplicative update of W for || V - W H ||_F^2 (Lee-Seung); the sum-to-one row stays fixed."""
    return W * (V @ H.T) / (W @ (H @ H.T) + DENOMINATOR_FLOOR)


def _cost(V, W, H):
    """Squared Frobenius error of V ~ W H, without the sum-to-one row (as the code's stopping rules)."""
    return float(np.sum((V - W @ H) ** 2))


def _unmix(V, W, H, delta, first, then, iterations, tolerance, first_iterations=None, first_stops=True):
    """The code's two-phase NMF of V ~ W H (bands x pixels), returning the updated (W, H).

    Phase 1 updates only the factor ``first`` ("W" or "H") up to ``first_iterations`` times (default
    ``iterations``); phase 2 then applies the updates listed in ``then`` (a sequence of "W"/"H") in
    turn, up to ``iterations`` - 1 times. Either phase stops, and keeps the factors of the previous
    step, once one step lowers the cost by a relative amount below ``tolerance``; with
    ``first_stops=False`` phase 1 always runs all its steps (see ``fuse``).
    """
    def step(W, H, which):
        return (_update_w(V, W, H), H) if which == "W" else (W, _update_h(V, W, H, delta))

    cost = _cost(V, W, H)
    for i in range(iterations if first_iterations is None else first_iterations):
        W_new, H_new = step(W, H, first)
        new_cost = _cost(V, W_new, H_new)
        if first_stops and i > 0 and cost - new_cost < tolerance * new_cost:
            break
        W, H, cost = W_new, H_new, new_cost
    for _ in range(iterations - 1):
        W_new, H_new = W, H
        for which in then:
            W_new, H_new = step(W_new, H_new, which)
        new_cost = _cost(V, W_new, H_new)
        if cost - new_cost < tolerance * new_cost:
            break
        W, H, cost = W_new, H_new, new_cost
    return W, H


def fuse(Y, Z, r, psf, srf, n_endmembers=None, inner_iterations=INNER_ITERATIONS,
         outer_iterations=OUTER_ITERATIONS):
    """CNMF fusion of Y and Z: X_hat (r h) x (r w) x C float64, non-negative, in Y's units.

    Y: LR-HSI h x w x C; Z: HR-MSI r h x r w x Cm (both non-negative radiance or reflectance; negative
    values are set to 0, as the authors' code does); r: integer scale factor; psf: r x r convolution
    kernel summing to 1 (Y = model.degradation.spatial_degrade(X, psf, r)); srf: C x Cm, columns summing
    to 1 (Z = X @ srf). n_endmembers: None for the authors' max(min(30, C), VD of Y), at most the
    number of LR pixels; inner_iterations, outer_iterations: see the module docstring.

    Raises data_loader.DataError for inconsistent arguments (``operators.check_inputs``), an MSI
    whose mean is not positive, or iteration counts / n_endmembers out of range.
    """
    Y, Z, r, psf, srf = check_inputs(Y, Z, r, psf, srf, "CNMF")
    h, w, c = Y.shape
    cm = Z.shape[2]
    for name, value, low in (("inner_iterations", inner_iterations, 1), ("outer_iterations", outer_iterations, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise DataError(f"CNMF: {name} must be an integer >= {low}; got {value!r}")
    if Z.mean() <= 0:
        raise DataError("CNMF: the HR-MSI's mean is not positive; CNMF unmixes non-negative data (radiance or "
                        "reflectance), rescale or offset the images")
    delta = 2.0 * np.sqrt(Z.mean() / DELTA_REFERENCE_MEAN) / cm ** 3
    v_h = np.maximum(Y, 0).reshape(-1, c).T
    v_m = np.maximum(Z, 0).reshape(-1, cm).T
    if n_endmembers is None:
        m = min(max(min(MIN_ENDMEMBERS, c), virtual_dimensionality(v_h)), v_h.shape[1])
    elif isinstance(n_endmembers, bool) or not isinstance(n_endmembers, (int, np.integer)) \
            or not 1 <= n_endmembers <= v_h.shape[1]:
        raise DataError(f"CNMF: n_endmembers must be an integer from 1 to the number of LR pixels "
                        f"({v_h.shape[1]}); got {n_endmembers!r}")
    else:
        m = int(n_endmembers)
    reestimate = cm >= MIN_BANDS_TO_REESTIMATE
    w_then = ("W", "H") if reestimate else ("H",)
    unmix = dict(iterations=inner_iterations, tolerance=INNER_TOLERANCE, delta=delta)

    def to_maps(H, rows, cols):
        return H.T.reshape(rows, cols, m)

    def from_maps(maps):
        return maps.reshape(-1, m).T

    # Initialisation: HSI unmixing from pure pixels, then the MSI's from W_m = R W_h.
    W_h = v_h[:, successive_projection(v_h, m)]
    W_h, H_h = _unmix(v_h, W_h, np.full((m, v_h.shape[1]), 1.0 / m), first="H", then=("W", "H"),
                      first_iterations=HSI_FIRST_PHASE * inner_iterations, **unmix)
    H_m = from_maps(np.maximum(bicubic_upsample(to_maps(H_h, h, w), r), 0))
    W_m, H_m = _unmix(v_m, srf.T @ W_h, H_m, first="H", then=w_then, first_stops=False, **unmix)
    # The outer stopping rule compares RMSEs (square roots of the costs), as the code does.
    rmse_h, rmse_m = np.sqrt(_cost(v_h, W_h, H_h)), np.sqrt(_cost(v_m, W_m, H_m))

    for i in range(outer_iterations):
        H_h_new = from_maps(blur_decimate(to_maps(H_m, h * r, w * r), psf, r))
        W_h_new, H_h_new = _unmix(v_h, W_h, H_h_new, first="W", then=("H", "W") if reestimate else ("W",), **unmix)
        if i == outer_iterations - 1:
            W_h = W_h_new
            break
        W_m_new, H_m_new = _unmix(v_m, srf.T @ W_h_new, H_m, first="H", then=w_then, **unmix)
        new_h, new_m = np.sqrt(_cost(v_h, W_h_new, H_h_new)), np.sqrt(_cost(v_m, W_m_new, H_m_new))
        if rmse_h - new_h <= OUTER_TOLERANCE * rmse_h or rmse_m - new_m <= OUTER_TOLERANCE * rmse_m:
            # The code keeps the new HSI endmembers and the previous MSI abundances.
            W_h = W_h_new
            break
        W_h, H_m, rmse_h, rmse_m = W_h_new, H_m_new, new_h, new_m
    return (W_h @ H_m).T.reshape(h * r, w * r, c)
