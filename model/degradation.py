"""The degradation model of every method and of Wald's protocol: the Gaussian PSF, the padding of a
PSF wider than the pixel, and the spatial and spectral degradations Y = X P, Z = X S (UDALN, Li et al.,
IEEE GRSL 2022, Eq. 1-2; docs/degradation_model.md).

Numpy cubes are H x W x C. A PSF passed to ``spatial_degrade`` is a convolution kernel (as in MATLAB
``conv2`` or ``scipy.signal.convolve2d``: it is flipped before it meets the image). The learned PSF of
SpaDnet is a correlation kernel (as ``torch.nn.Conv2d``). For the symmetric Gaussian PSF both are the
same. The SRF is C x Cm (HSI bands x MSI bands).
"""
import numpy as np


def gaussian_psf(size, sigma):
    """Isotropic Gaussian PSF with MATLAB ``fspecial('gaussian', size, sigma)`` semantics.

    h(x, y) = exp(-(x^2 + y^2) / (2 sigma^2)) on a size x size grid centred at 0; values below
    eps * max(h) are zeroed, then h is normalised to sum to 1.
    """
    half = (size - 1) / 2.0
    y, x = np.ogrid[-half:half + 1, -half:half + 1]
    h = np.exp(-(x * x + y * y) / (2.0 * sigma * sigma))
    h[h < np.finfo(h.dtype).eps * h.max()] = 0
    return h / h.sum()


def psf_padding(size, r):
    """The HR pixels (before, after) that a K x K PSF of stride r reaches beyond an LR pixel's r x r block,
    along each axis: ((K - r) // 2, K - r - (K - r) // 2). LR pixel (a, b) is the K x K window whose top-left
    HR pixel is (r a - before, r b - before); at the image's borders the image is extended by replicating
    its edge pixels. K = r gives (0, 0), the papers' disjoint blocks. One convention for the simulation
    (``spatial_degrade``), SpaDnet and the PSF comparisons (``on_support``). Raises ValueError for K < r."""
    if size < r:
        raise ValueError(f"a PSF of {size} x {size} HR pixels is smaller than the scale factor {r}: it would leave "
                         "HR pixels out of every LR pixel; give a size of at least r")
    before = (size - r) // 2
    return before, size - r - before


def on_support(kernel, size, r):
    """``kernel`` (k x k, either form) placed on a size x size support (size >= k) of stride r as
    ``psf_padding`` places both: the same LR-pixel footprint, zeros elsewhere. Compares PSFs of different
    sizes (a learned K x K PSF against the true one). Returns a float64 size x size array."""
    kernel = np.asarray(kernel, dtype=np.float64)
    k = kernel.shape[0]
    start = psf_padding(size, r)[0] - psf_padding(k, r)[0]
    placed = np.zeros((size, size))
    placed[start:start + k, start:start + k] = kernel
    return placed


def simulation_psf(r, sigma, size=None, shift=0):
    """The simulation's PSF as a convolution kernel: the Gaussian ``gaussian_psf(size, sigma)`` (size r when
    None, the papers' setting) whose centre lies ``shift`` HR pixels below and to the right of the LR
    pixel's centre (a sub-pixel misregistration or off-centre optics; negative: above and left). A shifted
    PSF is returned on a support of size + 2 |shift| pixels, so that ``psf_padding`` centres that support
    on the block and the Gaussian sits ``shift`` pixels off it. Raises ValueError for size < r."""
    size = r if size is None else size
    psf_padding(size, r)
    gaussian = gaussian_psf(size, sigma)
    if shift == 0:
        return gaussian
    margin = abs(shift)
    footprint = np.zeros((size + 2 * margin,) * 2)
    start = margin + shift
    footprint[start:start + size, start:start + size] = gaussian[::-1, ::-1]  # correlation form: where it reads
    return footprint[::-1, ::-1].copy()


def spatial_degrade(cube, psf, r):
    """Y = X P: each band blurred by ``psf`` (a K x K convolution kernel, K >= r) and sampled every r pixels,
    an H x W x ... cube to (H // r) x (W // r) x ... (trailing rows and columns that fill no r x r block
    are dropped first).

    For K = r (the papers' PSF) the windows are the disjoint r x r blocks, and the result equals
    ``scipy.signal.convolve2d(band, psf, 'valid')[::r, ::r]`` for every band, computed for all bands at
    once as a reshape and one contraction. For K > r the windows overlap and reach ``psf_padding(K, r)``
    pixels beyond the block, the image's edges replicated: equal to ``convolve2d`` of the edge-padded
    band, 'valid', sampled every r pixels (one strided slice per kernel tap, for all bands at once).
    Raises ValueError for a PSF that is not square or smaller than r.
    """
    psf = np.asarray(psf)
    if psf.ndim != 2 or psf.shape[0] != psf.shape[1]:
        raise ValueError(f"the PSF must be a square K x K kernel; got shape {psf.shape}")
    size = psf.shape[0]
    before, after = psf_padding(size, r)
    h, w = cube.shape[:2]
    hl, wl = h // r, w // r
    cube = cube[:hl * r, :wl * r]
    correlation = psf[::-1, ::-1]
    if size == r:
        blocks = cube.reshape(hl, r, wl, r, *cube.shape[2:])
        return np.einsum("aibj...,ij->ab...", blocks, correlation)
    padded = np.pad(cube, [(before, after), (before, after)] + [(0, 0)] * (cube.ndim - 2), mode="edge")
    out = np.zeros((hl, wl) + cube.shape[2:], dtype=np.result_type(cube, psf))
    for i, j in np.ndindex(size, size):
        if correlation[i, j]:
            out += correlation[i, j] * padded[i:i + hl * r:r, j:j + wl * r:r]
    return out


def spectral_degrade(cube, srf):
    """MSI = cube x SRF: each MSI band is a weighted sum of the HSI bands (SRF is C x Cm)."""
    return cube @ srf


def spatial_degrade_adjoint(Y, psf, r):
    """The adjoint of ``spatial_degrade`` for an r x r PSF: (h x w [x K]) -> (r h x r w [x K]). Pixel
    (a r + i, b r + j) receives Y[a, b] times the PSF's weight (i, j) in correlation form, so that
    <spatial_degrade(X, psf, r), Y> = <X, spatial_degrade_adjoint(Y, psf, r)> for all X, Y."""
    Y = np.asarray(Y)
    h, w = Y.shape[:2]
    out = np.einsum("abk,ij->aibjk", Y.reshape(h, w, -1), np.asarray(psf)[::-1, ::-1])
    return out.reshape(h * r, w * r, *Y.shape[2:])


def lr_consistent(cube, Y, psf, r):
    """The cube nearest to ``cube`` (least squares) whose spatial degradation is Y: the orthogonal
    projection onto {X : spatial_degrade(X, psf, r) = Y}, the back-projection of the residual.

    For the papers' PSF (K = r) the LR pixels' windows are disjoint, so the projection is exact and
    closed-form, block by block: X_b + k (Y_b - <k, X_b>) / |k|^2, with k the PSF in correlation form.
    cube: H x W x C with H = r h, W = r w; Y: h x w x C; psf: r x r convolution kernel. Returns a new
    H x W x C float64 array. Raises ValueError for a PSF that is not r x r or shapes that do not match.
    """
    psf = np.asarray(psf, dtype=np.float64)
    if psf.shape != (r, r):
        raise ValueError(f"the LR-consistency projection needs an r x r PSF (r = {r}); got shape {psf.shape}")
    h, w = Y.shape[:2]
    if cube.shape[:2] != (h * r, w * r) or cube.shape[2:] != Y.shape[2:]:
        raise ValueError(f"a cube of {cube.shape} does not degrade to an LR-HSI of {Y.shape} at r = {r}")
    residual = Y - spatial_degrade(cube, psf, r)
    return cube + spatial_degrade_adjoint(residual / np.sum(psf ** 2), psf, r)
