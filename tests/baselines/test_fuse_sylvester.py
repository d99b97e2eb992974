"""baselines.fuse_sylvester (FUSE): the closed form against a dense least-squares solve, exact recovery of
a cube whose spectra span a low-dimensional subspace, and PSNR above bicubic on a Wald pair of the
synthetic class-mean cube."""
import logging

import numpy as np
import pytest
from conftest import low_rank_case, synthetic_wald_pair

from baselines import fuse_sylvester
from baselines.operators import bicubic_upsample
from data_loader import DataError
from evaluation import compute_psnr
from model.degradation import spatial_degrade


@pytest.fixture(scope="module")
def synthetic_pair():
    """A 40 x 40 crop of the synthetic class-mean cube, its WorldView-2-like SRF, r = 5, Gaussian PSF of FWHM r."""
    return synthetic_wald_pair(slice(50, 90), slice(50, 90))


def test_shape_and_dtype():
    rng = np.random.default_rng(0)
    y, z = rng.random((4, 5, 6)), rng.random((12, 15, 3))
    srf = rng.random((6, 3))
    out = fuse_sylvester.fuse(y, z, 3, np.full((3, 3), 1 / 9), srf / srf.sum(axis=0), subspace_dim=4)
    assert out.shape == (12, 15, 6) and out.dtype == np.float64 and np.isfinite(out).all()


def test_closed_form_equals_a_dense_least_squares_solve():
    """sylvester_fusion minimises the MAP objective: compare with lstsq on the explicit stacked system,
    built from model.degradation.spatial_degrade (an independent operator), with a non-symmetric PSF."""
    rng = np.random.default_rng(1)
    size, r, bands, msi_bands, dim, precision = 8, 2, 5, 3, 3, 0.3
    y, z = rng.random((size // r, size // r, bands)), rng.random((size, size, msi_bands))
    psf = rng.random((r, r))
    psf /= psf.sum()
    srf = rng.random((bands, msi_bands))
    srf /= srf.sum(axis=0)
    basis, mean = rng.standard_normal((bands, dim)), rng.random((size, size, dim))
    out = fuse_sylvester.sylvester_fusion(y, z, r, psf, srf, basis, mean, precision)

    def forward(u):
        x = u.reshape(size, size, dim) @ basis.T
        return np.concatenate([spatial_degrade(x, psf, r).ravel(), (x @ srf).ravel(), np.sqrt(precision) * u])

    system = np.stack([forward(e) for e in np.eye(size * size * dim)], axis=1)
    rhs = np.concatenate([y.ravel(), z.ravel(), np.sqrt(precision) * mean.ravel()])
    u = np.linalg.lstsq(system, rhs, rcond=None)[0]
    np.testing.assert_allclose(out, u.reshape(size, size, dim) @ basis.T, rtol=0, atol=1e-10)


def test_low_rank_cube_is_recovered_exactly_and_the_subspace_reduced(caplog):
    """Spectra in a 3-dim subspace seen by 4 MSI bands: the MSI fixes every pixel's coordinates, so the
    default FUSE (15 directions, reduced to the LR-HSI's rank 3; weak prior) returns X up to rounding."""
    x, y, z, r, psf, srf = low_rank_case()
    with caplog.at_level(logging.INFO):
        out = fuse_sylvester.fuse(y, z, r, psf, srf)
    assert "subspace dimension 15 is reduced to 3" in caplog.text
    assert np.abs(out - x).max() < 1e-6 * np.abs(x).max()


def test_pca_subspace_is_the_authors_scaled_basis():
    """E = V sqrt(lambda), P_dec = E^+ for the eigenpairs of the uncentred second-moment matrix."""
    rng = np.random.default_rng(2)
    y = rng.random((6, 7, 5))
    basis, dec = fuse_sylvester.pca_subspace(y, 3)
    pixels = y.reshape(-1, 5)
    values = np.linalg.eigvalsh(pixels.T @ pixels / pixels.shape[0])[::-1][:3]
    np.testing.assert_allclose(basis.T @ basis, np.diag(values), atol=1e-12)
    np.testing.assert_allclose(dec @ basis, np.eye(3), atol=1e-12)


def test_beats_bicubic_on_the_synthetic_cube(synthetic_pair):
    cube, pair, r, psf, srf = synthetic_pair
    out = fuse_sylvester.fuse(pair["lhsi"], pair["hmsi"], r, psf, srf)
    floor = compute_psnr(cube, bicubic_upsample(pair["lhsi"], r))
    assert compute_psnr(cube, out) > floor + 10


@pytest.mark.parametrize("kwargs, phrase", [
    ({"subspace_dim": 0}, "subspace_dim = 0 must be an integer from 1 to the number of HSI bands (6)"),
    ({"subspace_dim": 2.5}, "subspace_dim = 2.5 must be an integer"),
    ({"prior_precision": 0.0}, "prior_precision"),
    ({"data_scale": float("nan")}, "data_scale = nan must be a finite number > 0"),
])
def test_bad_parameters_raise_data_error(kwargs, phrase):
    y, z = np.ones((2, 2, 6)), np.ones((4, 4, 3))
    with pytest.raises(DataError, match="^FUSE: ") as info:
        fuse_sylvester.fuse(y, z, 2, np.full((2, 2), 0.25), np.full((6, 3), 1 / 6), **kwargs)
    assert phrase in str(info.value)


def test_zero_hsi_raises_data_error():
    with pytest.raises(DataError, match="zero everywhere"):
        fuse_sylvester.fuse(np.zeros((2, 2, 6)), np.ones((4, 4, 3)), 2, np.full((2, 2), 0.25), np.full((6, 3), 1 / 6))
