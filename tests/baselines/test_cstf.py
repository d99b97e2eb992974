"""baselines.cstf (CSTF): the core step against a dense least-squares solve, the dictionary step's
Sylvester solve, OMP and VCA on cases with a known answer, recovery of a cube that follows the
Tucker model, and PSNR above bicubic on a Wald pair of the synthetic class-mean cube."""
import numpy as np
import pytest
from conftest import low_rank_case, synthetic_wald_pair

from baselines import cstf
from baselines.operators import bicubic_upsample
from data_loader import DataError
from evaluation import compute_psnr


@pytest.fixture(scope="module")
def synthetic_pair():
    """A 30 x 30 crop of the synthetic class-mean cube, its WorldView-2-like SRF, r = 5, Gaussian PSF of FWHM r."""
    return synthetic_wald_pair(slice(50, 80), slice(50, 80))


def test_shape_and_dtype():
    rng = np.random.default_rng(0)
    y, z = rng.random((4, 5, 6)), rng.random((12, 15, 3))
    srf = rng.random((6, 3))
    out = cstf.fuse(y, z, 3, np.full((3, 3), 1 / 9), srf / srf.sum(axis=0), outer_iters=2, ksvd_iters=2)
    assert out.shape == (12, 15, 6) and out.dtype == np.float64 and np.isfinite(out).all()


def test_tucker_product_matches_einsum():
    rng = np.random.default_rng(1)
    core, a, b, c = rng.random((3, 4, 5)), rng.random((6, 3)), rng.random((7, 4)), rng.random((2, 5))
    np.testing.assert_allclose(cstf.tucker(core, (a, b, c)), np.einsum("ijk,ai,bj,ck->abc", core, a, b, c))
    np.testing.assert_allclose(cstf.tucker(core, (None, b, None)), np.einsum("ijk,bj->ibk", core, b))


def test_ridge_step_equals_a_dense_solve_with_rank_deficient_dictionaries():
    """Each ADMM copy solves (K + p I) s = D'data + p x with K = D'D for the Kronecker (Tucker) operator
    D; the LR dictionaries P1 W have rank 2 < 3 atoms, the case the eigen-range shortcut handles."""
    rng = np.random.default_rng(2)
    data, x, penalty = rng.random((2, 3, 5)), rng.random((3, 3, 2)), 0.01
    dicts = (rng.random((2, 4)) @ rng.random((4, 3)), rng.random((3, 6)) @ rng.random((6, 3)), rng.random((5, 2)))
    operator = np.kron(np.kron(dicts[0], dicts[1]), dicts[2])
    gram = operator.T @ operator + penalty * np.eye(operator.shape[1])
    dense = np.linalg.solve(gram, operator.T @ data.ravel() + penalty * x.ravel())
    np.testing.assert_allclose(cstf._ridge_solver(data, dicts, penalty)(x).ravel(), dense, rtol=1e-9, atol=1e-9)


def test_core_step_without_sparsity_is_the_least_squares_core():
    """With lam = 0 and no proximal weight the ADMM's limit is the least-squares core of the two
    coupled Tucker fits (orthonormal dictionaries and penalty 1 make it converge in a few hundred steps)."""
    rng = np.random.default_rng(2)
    y, z = rng.random((4, 4, 5)), rng.random((4, 4, 2))

    def orthonormal(rows, cols):
        return np.linalg.qr(rng.standard_normal((rows, cols)))[0]

    lr = (orthonormal(4, 3), orthonormal(4, 3), orthonormal(5, 2))
    ms = (orthonormal(4, 3), orthonormal(4, 3), orthonormal(2, 2))
    core = cstf.sparse_core(y, z, lr, ms, 0.0, np.zeros((3, 3, 2)), proximal=0.0, penalty=1.0, iters=300)
    system = np.vstack([np.kron(np.kron(*lr[:2]), lr[2]), np.kron(np.kron(*ms[:2]), ms[2])])
    expected = np.linalg.lstsq(system, np.concatenate([y.ravel(), z.ravel()]), rcond=None)[0]
    np.testing.assert_allclose(core.ravel(), expected, atol=1e-10)


def test_sylvester_step_solves_its_equation():
    rng = np.random.default_rng(3)
    a, b, c = rng.random((5, 3)), rng.random((4, 6)), rng.random((4, 4))
    P, M1, M2 = a @ a.T, b @ b.T, c @ c.T + 0.1 * np.eye(4)
    rhs = rng.random((5, 4))
    D = cstf._sylvester(P, M1, M2, rhs)
    np.testing.assert_allclose(P @ D @ M1 + D @ M2, rhs, atol=1e-10)


def test_omp_recovers_two_sparse_codes_in_an_orthonormal_dictionary():
    rng = np.random.default_rng(4)
    D = np.linalg.qr(rng.standard_normal((8, 8)))[0]
    codes = np.zeros((8, 30))
    for n in range(30):
        codes[rng.choice(8, 2, replace=False), n] = rng.uniform(0.5, 2, 2) * rng.choice([-1, 1], 2)
    np.testing.assert_allclose(cstf.omp(D, D @ codes, 2), codes, atol=1e-10)


def test_cube_following_the_tucker_model_is_recovered():
    """Spectra in a 3-dim subspace with 3 spectral atoms and complete spatial dictionaries: the HR-MSI
    fixes the core and VCA's atoms span the spectra, so CSTF returns X up to the proximal steps' lag
    (the authors' 15 outer iterations leave about 0.5 % at the worst pixel)."""
    x, y, z, r, psf, srf = low_rank_case()
    out = cstf.fuse(y, z, r, psf, srf, atoms_spectral=3)
    assert np.abs(out - x).max() < 0.01 * np.abs(x).max()
    assert np.sqrt(np.mean((out - x) ** 2)) < 1e-3 * np.abs(x).max()


def test_beats_bicubic_on_the_synthetic_cube(synthetic_pair):
    cube, pair, r, psf, srf = synthetic_pair
    out = cstf.fuse(pair["lhsi"], pair["hmsi"], r, psf, srf)
    floor = compute_psnr(cube, bicubic_upsample(pair["lhsi"], r))
    assert compute_psnr(cube, out) > floor + 10


@pytest.mark.parametrize("kwargs, phrase", [
    ({"atoms_rows": 13}, "atoms_rows = 13 must be an integer from 1 to 12"),
    ({"atoms_spectral": 7}, "atoms_spectral = 7 must be an integer from 1 to 4"),
    ({"lam": -1e-5}, "lam = -1e-05 must be a finite number >= 0"),
    ({"outer_iters": -1}, "outer_iters = -1 must be an integer >= 0"),
])
def test_bad_parameters_raise_data_error(kwargs, phrase):
    y, z = np.ones((2, 2, 6)), np.ones((4, 4, 3))
    with pytest.raises(DataError, match="^CSTF: ") as info:
        cstf.fuse(y, z, 2, np.full((2, 2), 0.25), np.full((6, 3), 1 / 6), **kwargs)
    assert phrase in str(info.value)


def test_zero_training_signals_raise_data_error():
    z = np.zeros((4, 4, 3))
    z[:, 0, 0] = 1
    with pytest.raises(DataError, match="only 1 nonzero training signals"):
        cstf.fuse(np.ones((2, 2, 6)), z, 2, np.full((2, 2), 0.25), np.full((6, 3), 1 / 6))


def test_non_separable_psf_is_refused():
    psf = np.array([[0.5, 0.0], [0.0, 0.5]])
    with pytest.raises(DataError, match="not separable"):
        cstf.fuse(np.ones((2, 2, 6)), np.ones((4, 4, 3)), 2, psf, np.full((6, 3), 1 / 6))
