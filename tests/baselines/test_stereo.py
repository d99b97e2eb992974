"""STEREO and Blind-STEREO (baselines/stereo.py): exact recovery where the CPD model holds, monotone
alternating least squares, the CPD initialisation, and the rank's default and bounds."""
import numpy as np
import pytest
from conftest import low_rank_case

from baselines import stereo
from baselines.operators import degradation_matrices
from imagery.errors import DataError
from model.degradation import gaussian_psf, spatial_degrade

R = 4


@pytest.fixture(scope="module")
def cpd_case():
    """A rank-3 CPD cube (24 x 24 x 20, Gaussian factors), its LR-HSI by a Gaussian PSF at r = 4 and a
    4-band HR-MSI (block SRF)."""
    rng = np.random.default_rng(0)
    A, B, C = rng.standard_normal((24, 3)), rng.standard_normal((24, 3)), rng.standard_normal((20, 3))
    x = stereo.cpd_tensor(A, B, C)
    srf = np.kron(np.eye(4), np.full((5, 1), 0.2))
    psf = gaussian_psf(R, R / 2.35482)
    return x, spatial_degrade(x, psf, R), x @ srf, psf, srf


def relative_error(x_hat, x):
    return np.abs(x_hat - x).max() / np.abs(x).max()


def test_cpd_tensor_is_the_sum_of_outer_products():
    rng = np.random.default_rng(1)
    A, B, C = rng.random((3, 2)), rng.random((4, 2)), rng.random((5, 2))
    expected = sum(np.multiply.outer(np.multiply.outer(A[:, f], B[:, f]), C[:, f]) for f in range(2))
    np.testing.assert_allclose(stereo.cpd_tensor(A, B, C), expected, rtol=1e-13)


def test_cpd_als_recovers_a_rank_3_tensor(cpd_case):
    _, _, z, _, _ = cpd_case
    A, B, C = stereo.cpd_als(z, 3, 100, np.random.default_rng(0))
    assert np.linalg.norm(stereo.cpd_tensor(A, B, C) - z) / np.linalg.norm(z) < 1e-8


def test_stereo_recovers_a_cpd_cube_given_its_rank(cpd_case):
    x, y, z, psf, srf = cpd_case
    assert relative_error(stereo.fuse(y, z, R, psf, srf, rank=3), x) < 2e-3
    assert relative_error(stereo.fuse(y, z, R, psf, srf, rank=3, cpd_iters=100, iters=5), x) < 1e-6


def test_blind_stereo_recovers_it_without_the_psf(cpd_case):
    x, y, z, psf, srf = cpd_case
    wrong_psf = np.full((R, R), 1 / R ** 2)  # checked, never used
    assert relative_error(stereo.fuse_blind(y, z, R, wrong_psf, srf, rank=3, iters=100), x) < 2e-3


def objective(y, z, P1, P2, P3, factors, lam):
    A, B, C = factors
    hsi = stereo.cpd_tensor(P1 @ A, P2 @ B, C)
    return lam * np.sum((y - hsi) ** 2) + np.sum((z - stereo.cpd_tensor(A, B, P3 @ C)) ** 2)


def test_each_stereo_iteration_lowers_the_coupled_objective():
    """Every factor update solves its block exactly, so the objective of eq. (17) never rises."""
    x, y, z, _, _, srf = low_rank_case(size=24, r=R, bands=16, msi_bands=4)
    psf = gaussian_psf(R, R / 2.35482)
    y = spatial_degrade(x, psf, R)
    P1, P2 = degradation_matrices(psf, R, 24, 24)
    start = stereo.ten_rec(y, z, P1, P2, 8, 10, 0)
    values = [objective(y, z, P1, P2, srf.T, stereo.stereo(y, z, P1, P2, srf.T, *start, 0.5, n), 0.5)
              for n in range(5)]
    assert all(b <= a * (1 + 1e-9) for a, b in zip(values, values[1:])) and values[-1] < values[0]


def test_the_default_rank_is_the_authors_400_or_a_third_of_the_lr_pixels():
    assert stereo.default_rank(np.zeros((48, 48, 3))) == 400
    assert stereo.default_rank(np.zeros((15, 15, 3))) == 75


def test_a_rank_beyond_the_lr_pixels_is_refused(cpd_case):
    _, y, z, psf, srf = cpd_case
    with pytest.raises(DataError, match="rank = 37 must be an integer from 1 to 36"):
        stereo.fuse(y, z, R, psf, srf, rank=37)
