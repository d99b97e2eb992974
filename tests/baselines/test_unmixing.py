"""Linear unmixing shared by the baselines (baselines/unmixing.py): VCA, the simplex projection, FCLS."""
import numpy as np
import scipy.optimize

from baselines import unmixing


def test_vca_finds_the_pure_pixels():
    """Mixtures of 4 spectra with one pure pixel each: VCA returns exactly those 4 spectra."""
    rng = np.random.default_rng(5)
    spectra = rng.random((10, 4))
    abundances = rng.dirichlet(np.ones(4), 60).T
    abundances[:, :4] = np.eye(4)
    found = unmixing.vca(spectra @ abundances, 4, np.random.default_rng(0))
    distances = np.linalg.norm(found[:, :, None] - spectra[:, None, :], axis=0)
    np.testing.assert_allclose(np.sort(distances.min(axis=0)), 0, atol=1e-10)


def test_simplex_projection_is_the_nearest_point_of_the_simplex():
    rng = np.random.default_rng(6)
    V = rng.normal(0, 1, (5, 200))
    projected = unmixing.simplex_projection(V)
    np.testing.assert_allclose(projected.sum(axis=0), 1, atol=1e-12)
    assert (projected >= 0).all()
    # No point of the simplex (200 random ones) is nearer, and a point of the simplex is its own projection.
    others = rng.dirichlet(np.ones(5), 200).T
    assert (np.linalg.norm(V - projected, axis=0) <= np.linalg.norm(V - others, axis=0) + 1e-12).all()
    np.testing.assert_allclose(unmixing.simplex_projection(others), others, atol=1e-15)


def test_fcls_matches_an_independent_constrained_solver():
    rng = np.random.default_rng(7)
    E = rng.random((12, 4))
    data = E @ rng.dirichlet(np.ones(4), 30).T + rng.normal(0, 0.05, (12, 30))
    ours = unmixing.fcls(E, data)
    for n in range(30):
        expected = scipy.optimize.minimize(
            lambda a: np.sum((data[:, n] - E @ a) ** 2), np.full(4, 0.25), method="SLSQP", bounds=[(0, None)] * 4,
            constraints={"type": "eq", "fun": lambda a: a.sum() - 1}, options={"ftol": 1e-14, "maxiter": 500}).x
        np.testing.assert_allclose(ours[:, n], expected, atol=1e-5)
