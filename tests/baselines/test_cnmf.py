"""baselines.cnmf: virtual dimensionality and SPA on a mixture with pure pixels, convergence to the exact
cube of a noiseless linear mixture, and PSNR above bicubic on a Wald pair of the synthetic class-mean cube."""
import numpy as np
import pytest
from conftest import synthetic_wald_pair
from scipy.ndimage import gaussian_filter
from scipy.stats import norm

from baselines import cnmf
from baselines.operators import bicubic_upsample
from data_loader import DataError
from evaluation import compute_psnr
from model.degradation import gaussian_psf, spatial_degrade


@pytest.fixture(scope="module")
def synthetic_pair():
    """A 60 x 60 crop of the synthetic class-mean cube (12 of its 17 spectra), its WorldView-2-like SRF, r = 5, Gaussian
    PSF of FWHM r."""
    return synthetic_wald_pair(slice(20, 80), slice(20, 80))


@pytest.fixture(scope="module")
def mixture():
    """Noiseless linear mixture of 3 endmembers over 12 bands, smooth abundances summing to 1, with one pure
    r x r block per endmember (LR pixels 0, 12, 24: the first column of LR rows 0, 1, 2); 4 MSI bands."""
    rng = np.random.default_rng(0)
    r, size, k, c, cm = 3, 36, 3, 12, 4
    abundances = np.exp(8 * gaussian_filter(rng.standard_normal((size, size, k)), sigma=(4, 4, 0)))
    abundances /= abundances.sum(axis=2, keepdims=True)
    for j in range(k):
        abundances[j * r:(j + 1) * r, :r] = np.eye(k)[j]
    x = abundances @ rng.uniform(0.1, 1.1, (k, c))
    srf = np.zeros((c, cm))
    srf[np.arange(c), np.arange(c) // 3] = rng.uniform(0.5, 1.5, c)
    srf /= srf.sum(axis=0)
    psf = gaussian_psf(r, r / 2.35482)
    return x, x @ srf, spatial_degrade(x, psf, r), r, psf, srf, k


def test_virtual_dimensionality_counts_the_endmembers_and_matches_the_hfc_formula(mixture):
    x, z, y, *_, k = mixture
    v = y.reshape(-1, y.shape[2]).T
    assert cnmf.virtual_dimensionality(v) == k
    noisy = v + np.random.default_rng(1).normal(0, 1e-3, v.shape)
    e_r = np.sort(np.linalg.eigvals(noisy @ noisy.T / v.shape[1]).real)[::-1]
    e_k = np.sort(np.linalg.eigvals(np.cov(noisy)).real)[::-1]
    tau = norm.ppf(1 - 0.05) * np.sqrt(2 * (e_r ** 2 + e_k ** 2) / v.shape[1])
    assert cnmf.virtual_dimensionality(noisy) == np.sum(e_r - e_k > tau)


def test_successive_projection_finds_the_pure_pixels(mixture):
    x, z, y, *_, k = mixture
    assert sorted(cnmf.successive_projection(y.reshape(-1, y.shape[2]).T, k)) == [0, 12, 24]


def test_a_noiseless_mixture_is_approached_as_the_iterations_grow(mixture):
    """The model holds exactly, so only the multiplicative updates' slow convergence separates CNMF from
    the truth: relative RMSE below 1 % at the authors' 100 inner iterations, below 0.1 % at 1000."""
    x, z, y, r, psf, srf, k = mixture
    errors = []
    for iterations in (100, 1000):
        fused = cnmf.fuse(y, z, r, psf, srf, inner_iterations=iterations)
        errors.append(np.sqrt(np.mean((fused - x) ** 2) / np.mean(x ** 2)))
    assert fused.shape == x.shape and fused.dtype == np.float64 and fused.min() >= 0
    assert errors[0] < 1e-2 and errors[1] < 1e-3


def test_beats_bicubic_on_the_synthetic_cube(synthetic_pair):
    cube, pair, r, psf, srf = synthetic_pair
    floor = compute_psnr(cube, bicubic_upsample(pair["lhsi"], r))
    psnr = compute_psnr(cube, cnmf.fuse(pair["lhsi"], pair["hmsi"], r, psf, srf))
    assert psnr > floor + 10, f"CNMF {psnr:.2f} dB vs bicubic {floor:.2f} dB"


@pytest.mark.parametrize("options,phrase", [
    ({"n_endmembers": 0}, "n_endmembers must be an integer from 1 to the number of LR pixels \\(144\\)"),
    ({"inner_iterations": 0}, "inner_iterations must be an integer >= 1"),
    ({"outer_iterations": 2.5}, "outer_iterations must be an integer >= 1"),
])
def test_bad_options_raise_data_error(mixture, options, phrase):
    x, z, y, r, psf, srf, k = mixture
    with pytest.raises(DataError, match=phrase):
        cnmf.fuse(y, z, r, psf, srf, **options)


def test_an_msi_of_non_positive_mean_is_refused(mixture):
    x, z, y, r, psf, srf, k = mixture
    with pytest.raises(DataError, match="CNMF: the HR-MSI's mean is not positive"):
        cnmf.fuse(y, z - 2, r, psf, srf)
