"""G-SOMP+ (baselines/gsomp.py): exact recovery where each patch is a non-negative code on a given
dictionary, the learned-dictionary path against bicubic, and the parameter checks."""
import numpy as np
import pytest

from baselines import fuse_with, gsomp
from evaluation import evaluate
from imagery.errors import DataError
from model.degradation import gaussian_psf, spatial_degrade

R = 4


@pytest.fixture(scope="module")
def coded_case():
    """A 16 x 16 x 24 cube whose pixels are non-negative combinations of 5 atoms of a random non-negative
    dictionary (24 x 5), its LR-HSI at r = 4 and an 8-band HR-MSI (block SRF)."""
    rng = np.random.default_rng(3)
    dictionary = rng.uniform(0.05, 1.0, (24, 5))
    x = rng.uniform(0, 0.4, (16, 16, 5)) @ dictionary.T
    srf = np.kron(np.eye(8), np.full((3, 1), 1 / 3))
    psf = gaussian_psf(R, R / 2.35482)
    return x, spatial_degrade(x, psf, R), x @ srf, psf, srf, dictionary


def test_gsomp_plus_recovers_pixels_coded_on_its_dictionary(coded_case):
    """Five atoms and eight bands: one step takes every atom, each pixel's code is the unique
    non-negative least-squares solution, and X comes back exactly, edge patches (16 = 8 + 8, 16 = 6 + 6 + 4)
    included."""
    x, y, z, psf, srf, dictionary = coded_case
    out = gsomp.fuse(y, z, R, psf, srf, dictionary=dictionary, atoms_per_step=5, patch=6)
    np.testing.assert_allclose(out, x, atol=1e-9)


def test_gsomp_plus_grows_the_shared_support_until_the_patch_is_explained():
    """Pixels mixing atoms 2 and 7 of 12, one atom a step: the support grows until it holds both, and the
    non-negative codes then reproduce every pixel."""
    rng = np.random.default_rng(4)
    D = rng.uniform(0.1, 1, (6, 12))
    pixels = D[:, [2, 7]] @ rng.uniform(0.2, 1, (2, 9))
    codes = gsomp.gsomp_plus(D, pixels, 1, 0.99)
    assert {2, 7} <= set(np.flatnonzero(np.abs(codes).sum(axis=1))) and (codes >= 0).all()
    np.testing.assert_allclose(D @ codes, pixels, atol=1e-9)


def test_with_a_learned_dictionary_it_beats_bicubic(coded_case):
    x, y, z, psf, srf, _ = coded_case
    ours = evaluate(x, gsomp.fuse(y, z, R, psf, srf), R, ssim=False)["PSNR"]
    assert ours > evaluate(x, fuse_with("bicubic", y, z, R, psf, srf), R, ssim=False)["PSNR"] + 10


def test_a_gamma_outside_its_range_is_refused(coded_case):
    _, y, z, psf, srf, _ = coded_case
    with pytest.raises(DataError, match=r"gamma = 1.5 must be a number in \(0, 1\]"):
        gsomp.fuse(y, z, R, psf, srf, gamma=1.5)
