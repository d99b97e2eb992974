"""baselines.mtf_glp_hs: exact recovery of a cube linear in the MSI (both injections), no blow-up where
the low-pass pan overshoots to 0, and PSNR above bicubic on a Wald pair of the synthetic class-mean cube."""
import numpy as np
import pytest
from conftest import synthetic_wald_pair
from scipy.ndimage import gaussian_filter

from baselines import mtf_glp_hs
from baselines.operators import bicubic_upsample
from data_loader import DataError
from evaluation import compute_psnr
from model.degradation import gaussian_psf, spatial_degrade


@pytest.fixture(scope="module")
def synthetic_pair():
    """A 60 x 60 crop of the synthetic class-mean cube (12 of its 17 spectra), its WorldView-2-like SRF, r = 5, Gaussian
    PSF of FWHM r."""
    return synthetic_wald_pair(slice(20, 80), slice(20, 80))


@pytest.fixture
def linear_case():
    """X = abundances (3 smooth positive maps) x 3 spectra over 10 bands, Z = X @ srf with 4 MSI bands:
    A srf has full row rank, so every HSI band is a linear combination of the MSI bands."""
    rng = np.random.default_rng(2)
    r = 4
    abundances = np.exp(gaussian_filter(rng.standard_normal((32, 32, 3)), sigma=(2, 2, 0)))
    spectra = rng.uniform(0.1, 1.0, (3, 10))
    srf = np.zeros((10, 4))
    for i, band in enumerate((slice(0, 3), slice(2, 6), slice(5, 8), slice(7, 10))):
        srf[band, i] = rng.uniform(0.5, 1.0, band.stop - band.start)
    srf /= srf.sum(axis=0)
    x = abundances @ spectra
    psf = gaussian_psf(r, r / 2.35482)
    return x, x @ srf, spatial_degrade(x, psf, r), r, psf, srf


@pytest.mark.parametrize("injection", mtf_glp_hs.INJECTIONS)
def test_a_cube_linear_in_the_msi_is_recovered_exactly(linear_case, injection):
    x, z, y, r, psf, srf = linear_case
    fused = mtf_glp_hs.fuse(y, z, r, psf, srf, injection=injection)
    assert fused.shape == x.shape and fused.dtype == np.float64
    np.testing.assert_allclose(fused, x, rtol=0, atol=1e-10)


def test_synthetic_pans_fit_the_lr_bands_by_least_squares():
    rng = np.random.default_rng(4)
    y, z_lr = rng.random((5, 6, 7)), rng.random((5, 6, 3))
    weights = mtf_glp_hs.synthetic_pans(y, z_lr)
    design = np.column_stack([z_lr.reshape(-1, 3), np.ones(30)])
    # Least squares: the residual is orthogonal to every regressor (the normal equations).
    np.testing.assert_allclose(design.T @ (design @ weights - y.reshape(-1, 7)), 0, atol=1e-12)


def test_hpm_does_not_blow_up_where_the_low_pass_pan_overshoots_to_zero(synthetic_pair):
    """On this crop the bicubic low-pass pan of some NIR band dips to about 0 at sharp field edges; a plain
    ratio there once turned a reflectance of 0.12 into 54."""
    cube, pair, r, psf, srf = synthetic_pair
    fused = mtf_glp_hs.fuse(pair["lhsi"], pair["hmsi"], r, psf, srf)
    assert np.abs(fused - cube).max() < 0.1


@pytest.mark.parametrize("injection", mtf_glp_hs.INJECTIONS)
def test_beats_bicubic_on_the_synthetic_cube(synthetic_pair, injection):
    cube, pair, r, psf, srf = synthetic_pair
    floor = compute_psnr(cube, bicubic_upsample(pair["lhsi"], r))
    psnr = compute_psnr(cube, mtf_glp_hs.fuse(pair["lhsi"], pair["hmsi"], r, psf, srf, injection=injection))
    assert psnr > floor + 10, f"MTF-GLP-HS ({injection}) {psnr:.2f} dB vs bicubic {floor:.2f} dB"


def test_unknown_injection_and_bad_arguments_raise_data_error(linear_case):
    x, z, y, r, psf, srf = linear_case
    with pytest.raises(DataError, match="injection 'cbd' is not one of hpm, regression"):
        mtf_glp_hs.fuse(y, z, r, psf, srf, injection="cbd")
    with pytest.raises(DataError, match="MTF-GLP-HS: the SRF is 9 x 4"):
        mtf_glp_hs.fuse(y, z, r, psf, srf[:9])
