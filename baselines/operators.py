"""Linear operators shared by the classical fusion baselines, in the project's degradation model.

Arrays are numpy H x W x K (rows, columns, bands), float64. The observation model is the one of
``data_loader.simulate_pair`` (Wald's protocol):

* LR-HSI  Y = blur_decimate(X, psf, r): each disjoint r x r block of X is weighted by the r x r
  convolution kernel ``psf`` (summing to 1) and reduced to one pixel, i.e.
  ``scipy.signal.convolve2d(band, psf, 'valid')[::r, ::r]`` for every band
  (``model.degradation.spatial_degrade``);
* HR-MSI  Z = X @ srf, srf C x Cm with columns summing to 1 (``model.degradation.spectral_degrade``).

Because the kernel is as large as the stride, the blocks do not overlap: the operator is a reshape and
one contraction (exact and cheaper than any FFT), and so is its adjoint. The iterative solvers that
need the blur diagonalised by the 2-D DFT (ADMM, Sylvester equations) get the same operator as a
circular blur followed by decimation at phase 0 (``psf_otf``, ``fft_blur``, ``decimate``); those
whose spatial model is separable (tensor methods) get it as two matrices (``degradation_matrices``).
``bicubic_upsample`` is the floor every method must beat, identical to the project's
``torch.nn.functional.interpolate(..., mode="bicubic", align_corners=False)``.

``check_inputs`` validates the common arguments ``fuse(Y, Z, r, psf, srf)`` of every baseline and
raises ``data_loader.DataError`` (a ValueError) naming the argument, the problem and the fix.
"""
import numbers

import numpy as np

from imagery.errors import DataError
from model.degradation import spatial_degrade_adjoint

# Tolerance on "sums to 1" for the PSF and the SRF columns: the project normalises both in float64,
# and a float32 round trip (e.g. a table read from a file) stays far below this.
SUM_TOLERANCE = 1e-6

# A PSF is treated as separable (rank 1) when its second singular value is below this fraction of the
# first; the sampled Gaussian of model.degradation.gaussian_psf is rank 1 to machine precision.
SEPARABLE_TOLERANCE = 1e-10

# Keys' cubic convolution parameter used by PyTorch's bicubic interpolation (OpenCV's choice; MATLAB
# imresize uses -0.5).
BICUBIC_A = -0.75


# ----------------------------------------------------------------------------- input checks

def _array(x, name, method, ndim):
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{method}: {name} must be a numeric array; got {type(x).__name__}") from None
    if a.ndim != ndim:
        raise DataError(f"{method}: {name} must have {ndim} dimensions; got shape {a.shape}")
    if not np.isfinite(a).all():
        raise DataError(f"{method}: {name} has {int(np.count_nonzero(~np.isfinite(a)))} NaN or Inf values; "
                        "fill or mask them before fusing")
    return a


def check_inputs(Y, Z, r, psf, srf, method="fuse"):
    """Validate the common arguments of a baseline's ``fuse`` and return them as float64 arrays.

    Y: LR-HSI h x w x C; Z: HR-MSI H x W x Cm with H = r h, W = r w and Cm < C; r: integer scale
    factor >= 1; psf: r x r convolution kernel summing to 1; srf: C x Cm, non-negative, columns summing
    to 1 (both within ``SUM_TOLERANCE``). Returns (Y, Z, r, psf, srf). ``method`` names the caller in
    the messages.

    Raises DataError (a ValueError) for a non-numeric or wrongly shaped argument, NaN or Inf values,
    sizes that do not match r, a PSF or SRF that is not normalised, or Y and Z swapped.
    """
    if isinstance(r, bool) or not isinstance(r, numbers.Integral) or r < 1:
        raise DataError(f"{method}: the scale factor r must be an integer >= 1; got {r!r}")
    r = int(r)
    Y = _array(Y, "Y (the LR-HSI, h x w x C)", method, 3)
    Z = _array(Z, "Z (the HR-MSI, H x W x Cm)", method, 3)
    h, w, c = Y.shape
    if Z.shape[2] >= c:
        raise DataError(f"{method}: Y has {c} bands and Z has {Z.shape[2]}: the LR-HSI must have more bands "
                        "than the HR-MSI; are Y and Z swapped?")
    if Z.shape[:2] != (r * h, r * w):
        raise DataError(f"{method}: Z is {Z.shape[0]} x {Z.shape[1]} pixels, but r = {r} times the LR-HSI's "
                        f"{h} x {w} is {r * h} x {r * w}; crop Z (data_loader.crop_to_multiple) or fix r")
    psf = _array(psf, "psf", method, 2)
    if psf.shape != (r, r):
        raise DataError(f"{method}: the PSF is {psf.shape[0]} x {psf.shape[1]}, but the degradation model "
                        f"needs an r x r = {r} x {r} kernel (model.degradation.gaussian_psf(r, sigma))")
    if abs(psf.sum() - 1.0) > SUM_TOLERANCE:
        raise DataError(f"{method}: the PSF sums to {psf.sum():.6g}, not 1; normalise it (psf / psf.sum())")
    srf = _array(srf, "srf", method, 2)
    if srf.shape != (c, Z.shape[2]):
        raise DataError(f"{method}: the SRF is {srf.shape[0]} x {srf.shape[1]}, but Y has {c} bands and Z "
                        f"{Z.shape[2]}: it must be C x Cm = {c} x {Z.shape[2]} (rows = HSI bands)")
    if (srf < 0).any():
        raise DataError(f"{method}: the SRF has negative values; a spectral response is non-negative")
    sums = srf.sum(axis=0)
    if np.abs(sums - 1.0).max() > SUM_TOLERANCE:
        raise DataError(f"{method}: the SRF's columns sum to {np.round(sums, 6).tolist()}, not 1; normalise "
                        "them (srf / srf.sum(axis=0))")
    return Y, Z, r, psf, srf


def check_integer(value, name, method, low, high=None, hint=""):
    """``value`` as an int when it is an integer (not a bool) from ``low`` to ``high`` (None: no upper bound);
    else DataError naming ``method``, the parameter ``name``, the bounds and ``hint``."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low
            or (high is not None and value > high)):
        bound = f"from {low} to {high}" if high is not None else f">= {low}"
        raise DataError(f"{method}: {name} = {value!r} must be an integer {bound}{hint}")
    return int(value)


# ----------------------------------------------------------------------------- block blur + decimation

def blur_decimate(X, psf, r):
    """The spatial degradation of the project: (H x W [x K]) -> (H/r x W/r [x K]).

    Equal to ``model.degradation.spatial_degrade(X, psf, r)`` for H and W multiples of r: each r x r block
    is weighted by the flipped ``psf`` (a convolution kernel, r x r, summing to 1) and summed.
    """
    X = np.asarray(X)
    h, w = X.shape[0] // r, X.shape[1] // r
    blocks = X.reshape(h, r, w, r, -1)
    out = np.einsum("aibjk,ij->abk", blocks, psf[::-1, ::-1], optimize=True)
    return out.reshape(h, w, *X.shape[2:])


# Adjoint of ``blur_decimate``: (h x w [x K]) -> (r h x r w [x K]), <blur_decimate(X), Y> = <X, adjoint(Y)>.
blur_decimate_adjoint = spatial_degrade_adjoint


# ----------------------------------------------------------------------------- FFT form

def psf_otf(psf, shape):
    """2-D DFT (H x W complex) of the circular blur B such that decimate(B X, r) == blur_decimate(X).

    ``shape`` = (H, W), multiples of r = psf.shape[0]. B is a circular correlation with the flipped
    PSF anchored at the block's first pixel: (B X)[p, q] = sum_ij psf[r-1-i, r-1-j] X[p+i, q+j]
    (indices modulo H, W). At the decimated positions p = a r, q = b r the sum never wraps, so the two
    forms agree exactly. Use with ``fft_blur`` / ``fft_blur_adjoint``.
    """
    r = psf.shape[0]
    rows, cols = shape
    kernel = np.zeros((rows, cols))
    i = (-np.arange(r)) % rows
    j = (-np.arange(r)) % cols
    kernel[np.ix_(i, j)] = psf[::-1, ::-1]
    return np.fft.fft2(kernel)


def fft_blur(X, otf):
    """Circular blur of every band of X (H x W [x K]) by the operator whose DFT is ``otf`` (H x W)."""
    spectrum = np.fft.fft2(X, axes=(0, 1))
    return np.real(np.fft.ifft2(spectrum * otf.reshape(otf.shape + (1,) * (X.ndim - 2)), axes=(0, 1)))


def fft_blur_adjoint(X, otf):
    """Adjoint of ``fft_blur`` (the blur by the conjugate transfer function)."""
    return fft_blur(X, np.conj(otf))


def decimate(X, r):
    """Keep the pixels (a r, b r): (H x W [x K]) -> (H/r x W/r [x K]), the sampling at phase 0."""
    return X[::r, ::r]


def zero_fill(Y, r):
    """Adjoint of ``decimate``: (h x w [x K]) -> (r h x r w [x K]), Y at (a r, b r), zeros elsewhere."""
    out = np.zeros((Y.shape[0] * r, Y.shape[1] * r) + Y.shape[2:], dtype=np.result_type(Y, np.float64))
    out[::r, ::r] = Y
    return out


# ----------------------------------------------------------------------------- separable form

def degradation_matrices(psf, r, rows, cols):
    """The spatial degradation as two matrices, for a separable (rank-1) PSF.

    Returns (D_rows, D_cols), (rows/r) x rows and (cols/r) x cols, with
    blur_decimate(X, psf, r)[:, :, k] == D_rows @ X[:, :, k] @ D_cols.T for every band k (the mode-1
    and mode-2 products of tensor methods). The flipped PSF is factored as outer(u, v) by its SVD, u
    and v scaled to sum to 1 each. Raises DataError when the PSF is not rank 1 (second singular value
    above ``SEPARABLE_TOLERANCE`` times the first).
    """
    kernel = np.asarray(psf, dtype=np.float64)[::-1, ::-1]
    u, s, vt = np.linalg.svd(kernel)
    if s.size > 1 and s[1] > SEPARABLE_TOLERANCE * s[0]:
        raise DataError(f"the {r} x {r} PSF is not separable (singular values {s[:2].tolist()}); this method "
                        "needs a PSF that is an outer product of a row and a column kernel, such as a Gaussian")
    col, row = u[:, 0] * s[0], vt[0]
    row_sum = row.sum()
    col, row = col * row_sum, row / row_sum
    return _block_matrix(col, r, rows), _block_matrix(row, r, cols)


def _block_matrix(weights, r, n):
    """(n/r) x n matrix whose row a holds ``weights`` at columns a r .. a r + r - 1."""
    m = n // r
    out = np.zeros((m, n))
    out[np.repeat(np.arange(m), r), np.arange(m * r)] = np.tile(weights, m)
    return out


# ----------------------------------------------------------------------------- bicubic upsampling

def _cubic_weights(t):
    """Keys' cubic convolution weights (4 taps, at offsets -1, 0, 1, 2) for fractional positions t."""
    a = BICUBIC_A

    def near(x):  # the kernel on |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # the kernel on 1 <= |x| <= 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return np.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], axis=-1)


def bicubic_matrix(n, r):
    """(r n) x n interpolation matrix of bicubic upsampling by the integer factor r along one axis.

    Output sample d sits at input coordinate (d + 0.5) / r - 0.5 (pixel centres aligned, PyTorch's
    ``align_corners=False``); 4 taps of Keys' kernel with a = -0.75, indices beyond the border clamped
    to it (edge replication). Each row sums to 1.
    """
    src = (np.arange(n * r) + 0.5) / r - 0.5
    base = np.floor(src)
    weights = _cubic_weights(src - base)
    taps = np.clip(base[:, None].astype(int) + np.arange(-1, 3), 0, n - 1)
    out = np.zeros((n * r, n))
    np.add.at(out, (np.repeat(np.arange(n * r), 4), taps.ravel()), weights.ravel())
    return out


def bicubic_upsample(Y, r):
    """Bicubic upsampling of an h x w [x K] image by the integer factor r: (r h) x (r w) [x K] float64.

    Identical (to rounding) to ``torch.nn.functional.interpolate(y, scale_factor=r, mode="bicubic",
    align_corners=False)``, the floor of the project's result tables; separable, so two matrix products.
    """
    Y = np.asarray(Y, dtype=np.float64)
    up_rows, up_cols = bicubic_matrix(Y.shape[0], r), bicubic_matrix(Y.shape[1], r)
    return np.einsum("pa,ab...,qb->pq...", up_rows, Y, up_cols, optimize=True)
