"""CSU (baselines/csu.py): recovery where the coupled unmixing model holds, and its parameter checks."""
import numpy as np
import pytest

from baselines import csu, fuse_with
from evaluation import evaluate
from imagery.errors import DataError
from model.degradation import gaussian_psf, spatial_degrade

R = 4


@pytest.fixture(scope="module")
def mixture_case():
    """A 32 x 32 x 24 cube of convex mixtures of 3 endmembers in [0, 1] (smooth abundance maps, with a pure
    8 x 8 block of each), its LR-HSI by a Gaussian PSF at r = 4 and a 4-band HR-MSI (block SRF)."""
    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[0:32, 0:32] / 32
    maps = np.stack([1 + np.sin(2 * np.pi * rows), 1 + np.cos(2 * np.pi * cols), 0.5 + rows * cols], -1) ** 3
    maps[:8, :8], maps[:8, -8:], maps[-8:, :8] = [1, 0, 0], [0, 1, 0], [0, 0, 1]
    maps /= maps.sum(-1, keepdims=True)
    x = maps @ rng.uniform(0.05, 0.95, (24, 3)).T
    srf = np.kron(np.eye(4), np.full((6, 1), 1 / 6))
    psf = gaussian_psf(R, R / 2.35482)
    return x, spatial_degrade(x, psf, R), x @ srf, psf, srf


def test_csu_recovers_a_mixture_of_as_many_endmembers_as_it_is_given(mixture_case):
    x, y, z, psf, srf = mixture_case
    assert np.abs(csu.fuse(y, z, R, psf, srf, endmembers=3) - x).max() < 1e-4


def test_csu_with_the_default_10_endmembers_far_exceeds_bicubic(mixture_case):
    x, y, z, psf, srf = mixture_case
    ours = evaluate(x, csu.fuse(y, z, R, psf, srf), R, ssim=False)["PSNR"]
    assert ours > evaluate(x, fuse_with("bicubic", y, z, R, psf, srf), R, ssim=False)["PSNR"] + 40


def test_more_endmembers_than_bands_or_lr_pixels_are_refused(mixture_case):
    _, y, z, psf, srf = mixture_case
    with pytest.raises(DataError, match="endmembers = 25 must be an integer from 1 to 24"):
        csu.fuse(y, z, R, psf, srf, endmembers=25)
