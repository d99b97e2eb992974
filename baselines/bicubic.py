"""Bicubic upsampling of the LR-HSI: the floor every fusion method must beat.

R. G. Keys, "Cubic convolution interpolation for digital image processing", IEEE Trans. Acoustics,
Speech, and Signal Processing 29(6), 1981 (kernel parameter a = -0.75, as PyTorch and OpenCV). The
result equals the project's bicubic rows of the tables in docs/results.md, computed with
``torch.nn.functional.interpolate(..., mode="bicubic", align_corners=False)``. The HR-MSI, PSF and
SRF are validated but not used.
"""
from baselines.operators import bicubic_upsample, check_inputs


def fuse(Y, Z, r, psf, srf):
    """X_hat = bicubic upsampling of Y by r, (r h) x (r w) x C float64 (values as Y, e.g. reflectance).

    Y: LR-HSI h x w x C; Z: HR-MSI r h x r w x Cm; r: integer scale factor; psf: r x r convolution
    kernel summing to 1; srf: C x Cm, columns summing to 1 (Z = X @ srf). Raises
    data_loader.DataError for inconsistent arguments (``operators.check_inputs``).
    """
    Y, _, r, _, _ = check_inputs(Y, Z, r, psf, srf, "bicubic")
    return bicubic_upsample(Y, r)
