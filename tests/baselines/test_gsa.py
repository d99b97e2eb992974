"""baselines.gsa: band grouping, the exact answer when every HSI band is affine in one MSI band, mean
preservation, and PSNR above bicubic on a Wald pair of the synthetic class-mean cube."""
import numpy as np
import pytest
from conftest import synthetic_wald_pair
from scipy.ndimage import gaussian_filter

from baselines import gsa
from baselines.operators import bicubic_upsample, blur_decimate
from data_loader import DataError
from evaluation import compute_psnr
from model.degradation import gaussian_psf, spatial_degrade


@pytest.fixture(scope="module")
def synthetic_pair():
    """A 60 x 60 crop of the synthetic class-mean cube (12 of its 17 spectra), its WorldView-2-like SRF, r = 5, Gaussian
    PSF of FWHM r."""
    return synthetic_wald_pair(slice(20, 80), slice(20, 80))


@pytest.fixture
def grouped_case():
    """X whose HSI band k is a_k Z_g(k) + c_k, consistent with Z = X @ srf (block SRF per group)."""
    rng = np.random.default_rng(11)
    r, cm, per_group = 3, 3, 3
    z = 0.5 + gaussian_filter(rng.standard_normal((30, 30, cm)), sigma=(2, 2, 0))
    groups = np.repeat(np.arange(cm), per_group)
    srf = np.zeros((cm * per_group, cm))
    srf[np.arange(cm * per_group), groups] = rng.uniform(0.5, 1.5, cm * per_group)
    srf /= srf.sum(axis=0)
    weight = srf.sum(axis=1)                                    # each band's weight in its MSI band
    a = rng.uniform(0.5, 1.5, groups.size)
    a /= np.bincount(groups, weight * a)[groups]                # sum over the group of srf * a = 1
    c = rng.uniform(-0.1, 0.1, groups.size)
    c -= np.bincount(groups, weight * c)[groups]                # sum over the group of srf * c = 0
    x = z[..., groups] * a + c
    np.testing.assert_allclose(x @ srf, z, atol=1e-12)
    psf = gaussian_psf(r, r / 2.35482)
    return x, z, spatial_degrade(x, psf, r), r, psf, srf, groups, a


def test_band_groups_pick_the_most_correlated_msi_band():
    rng = np.random.default_rng(5)
    y, z_lr = rng.random((6, 7, 9)), rng.random((6, 7, 3))
    corr = np.array([[np.corrcoef(y[..., k].ravel(), z_lr[..., i].ravel())[0, 1] for i in range(3)] for k in range(9)])
    np.testing.assert_array_equal(gsa.band_groups(y, z_lr), corr.argmax(axis=1))


def test_an_hsi_affine_in_its_group_msi_band_is_recovered_up_to_the_interpolation_mean(grouped_case):
    """With Y_k = a_k Z_lr + c_k, GSA returns a_k Z + c_k plus the constant a_k (mean(up(Z_lr)) - mean(Z)):
    its last step keeps each band's mean equal to that of the upsampled band (Aiazzi et al. 2007)."""
    x, z, y, r, psf, srf, groups, a = grouped_case
    np.testing.assert_array_equal(gsa.band_groups(y, blur_decimate(z, psf, r)), groups)
    offset = bicubic_upsample(blur_decimate(z, psf, r), r).mean(axis=(0, 1)) - z.mean(axis=(0, 1))
    fused = gsa.fuse(y, z, r, psf, srf)
    assert fused.shape == x.shape and fused.dtype == np.float64
    np.testing.assert_allclose(fused, x + a * offset[groups], rtol=0, atol=1e-10)
    assert np.abs(fused - x).max() < 0.01


def test_each_band_keeps_the_mean_of_its_upsampled_band(synthetic_pair):
    _, pair, r, psf, srf = synthetic_pair
    fused = gsa.fuse(pair["lhsi"], pair["hmsi"], r, psf, srf)
    np.testing.assert_allclose(fused.mean(axis=(0, 1)), bicubic_upsample(pair["lhsi"], r).mean(axis=(0, 1)),
                               rtol=0, atol=1e-12)


def test_beats_bicubic_on_the_synthetic_cube(synthetic_pair):
    cube, pair, r, psf, srf = synthetic_pair
    floor = compute_psnr(cube, bicubic_upsample(pair["lhsi"], r))
    psnr = compute_psnr(cube, gsa.fuse(pair["lhsi"], pair["hmsi"], r, psf, srf))
    assert psnr > floor + 10, f"GSA {psnr:.2f} dB vs bicubic {floor:.2f} dB"


def test_inconsistent_arguments_raise_data_error(grouped_case):
    x, z, y, r, psf, srf, *_ = grouped_case
    with pytest.raises(DataError, match="GSA: the PSF sums to 2"):
        gsa.fuse(y, z, r, 2 * psf, srf)
