"""baselines.hysure (HySure): the ADMM's limit against a dense least-squares solve, exact recovery of a
low-rank cube without the total variation, the vector soft threshold, and PSNR above bicubic on a Wald
pair of the synthetic class-mean cube."""
import numpy as np
import pytest
from conftest import low_rank_case, synthetic_wald_pair

from baselines import hysure
from baselines.fuse_sylvester import principal_directions
from baselines.operators import bicubic_upsample
from data_loader import DataError
from evaluation import compute_psnr
from model.degradation import gaussian_psf, spatial_degrade


@pytest.fixture(scope="module")
def synthetic_pair():
    """A 40 x 40 crop of the synthetic class-mean cube, its WorldView-2-like SRF, r = 5, Gaussian PSF of FWHM r."""
    return synthetic_wald_pair(slice(50, 90), slice(50, 90))


def test_shape_and_dtype():
    rng = np.random.default_rng(0)
    y, z = rng.random((4, 5, 6)), rng.random((12, 15, 3))
    srf = rng.random((6, 3))
    out = hysure.fuse(y, z, 3, np.full((3, 3), 1 / 9), srf / srf.sum(axis=0), iters=5)
    assert out.shape == (12, 15, 6) and out.dtype == np.float64 and np.isfinite(out).all()


def test_without_total_variation_the_admm_reaches_the_least_squares_solution():
    """lambda_phi = 0 leaves 1/2 ||Y - E X B M||^2 + lambda_m / 2 ||Z - R E X||^2: compare with lstsq on
    the explicit stacked system (model.degradation.spatial_degrade, an independent operator), noisy data."""
    rng = np.random.default_rng(0)
    size, r, bands, msi_bands, dim, weight = 8, 2, 6, 4, 3, 0.5
    spectra = rng.random((dim, bands))
    x = rng.random((size, size, dim)) @ spectra
    psf = gaussian_psf(r, r / 2.35482)
    srf = rng.random((bands, msi_bands))
    srf /= srf.sum(axis=0)
    y = spatial_degrade(x, psf, r) + 0.01 * rng.standard_normal((size // r, size // r, bands))
    z = x @ srf + 0.01 * rng.standard_normal((size, size, msi_bands))
    out = hysure.fuse(y, z, r, psf, srf, subspace_dim=dim, lambda_phi=0.0, lambda_m=weight, iters=1000)
    basis, _ = principal_directions(y, dim, "test")

    def forward(u):
        cube = u.reshape(size, size, dim) @ basis.T
        return np.concatenate([spatial_degrade(cube, psf, r).ravel(), np.sqrt(weight) * (cube @ srf).ravel()])

    system = np.stack([forward(e) for e in np.eye(size * size * dim)], axis=1)
    u = np.linalg.lstsq(system, np.concatenate([y.ravel(), np.sqrt(weight) * z.ravel()]), rcond=None)[0]
    np.testing.assert_allclose(out, u.reshape(size, size, dim) @ basis.T, rtol=0, atol=1e-8)


def test_low_rank_cube_is_recovered_exactly_without_and_closely_with_total_variation():
    """Spectra in a 3-dim subspace seen by 4 MSI bands: with lambda_phi = 0 the data terms alone fix X
    (exact up to the ADMM's convergence: 1e-5 after 2000 iterations); the default VTV weight shrinks
    the edges by a few percent."""
    x, y, z, r, psf, srf = low_rank_case()
    exact = hysure.fuse(y, z, r, psf, srf, lambda_phi=0.0, iters=2000)
    assert np.abs(exact - x).max() < 1e-4 * np.abs(x).max()
    default = hysure.fuse(y, z, r, psf, srf)
    assert np.abs(default - x).max() < 0.05 * np.abs(x).max()
    assert np.sqrt(np.mean((default - x) ** 2)) < 0.01 * np.abs(x).max()


def test_vector_soft_threshold_shrinks_each_pixels_joint_norm():
    """The proximal map of t * sum_pixels ||(a, b)||: the joint vector loses t of its norm, or vanishes."""
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((3, 5, 6)), rng.standard_normal((3, 5, 6))
    norm = np.sqrt((a ** 2 + b ** 2).sum(axis=0))
    t = np.median(norm)
    sa, sb = hysure._vector_soft(a, b, t)
    np.testing.assert_allclose(np.sqrt((sa ** 2 + sb ** 2).sum(axis=0)), np.maximum(norm - t, 0), atol=1e-12)
    kept = norm > t
    np.testing.assert_allclose(sa[:, kept] / a[:, kept], sb[:, kept] / b[:, kept], atol=1e-12)


def test_beats_bicubic_on_the_synthetic_cube(synthetic_pair):
    cube, pair, r, psf, srf = synthetic_pair
    out = hysure.fuse(pair["lhsi"], pair["hmsi"], r, psf, srf)
    floor = compute_psnr(cube, bicubic_upsample(pair["lhsi"], r))
    assert compute_psnr(cube, out) > floor + 10


@pytest.mark.parametrize("kwargs, phrase", [
    ({"subspace_dim": 7}, "subspace_dim = 7 must be an integer from 1 to 6"),
    ({"iters": 0}, "iters = 0 must be an integer >= 1"),
    ({"lambda_phi": -1.0}, "lambda_phi = -1.0 must be a finite number >= 0"),
    ({"lambda_m": float("inf")}, "lambda_m = inf must be a finite number >= 0"),
    ({"mu": 0.0}, "mu = 0.0 must be a finite number > 0"),
])
def test_bad_parameters_raise_data_error(kwargs, phrase):
    y, z = np.ones((2, 2, 6)), np.ones((4, 4, 3))
    with pytest.raises(DataError, match="^HySure: ") as info:
        hysure.fuse(y, z, 2, np.full((2, 2), 0.25), np.full((6, 3), 1 / 6), **kwargs)
    assert phrase in str(info.value)
