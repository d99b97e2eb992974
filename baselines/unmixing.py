"""Linear spectral unmixing shared by the baselines that model pixels as mixtures of endmembers (CSTF's
spectral dictionary, CSU): endmember extraction by VCA, the Euclidean projection onto the probability
simplex, and fully constrained least-squares abundances.

Arrays follow the unmixing literature's layout: spectra as columns (C x N data, C x p endmembers, p x N
abundances).
"""
import numpy as np

# Accelerated projected-gradient iterations of ``fcls`` at most, and the relative change of the abundances
# below which it stops.
FCLS_ITERS = 5000
FCLS_TOLERANCE = 1e-10


def vca(data, p, rng):
    """Vertex component analysis (Nascimento & Bioucas-Dias 2005), high-SNR form: p <= C endmembers
    (C x p) of the C x N data, each a data point projected on the data's p-dim principal subspace.

    The data are projected on the p leading singular vectors and scaled projectively onto the
    hyperplane of their mean; each endmember is the point with the largest |projection| on a random
    direction orthogonal to the endmembers found so far.
    """
    count = data.shape[1]
    _, vectors = np.linalg.eigh(data @ data.T / count)
    basis = vectors[:, ::-1][:, :p]
    projected = basis.T @ data
    denominator = np.mean(projected, axis=1) @ projected
    scaled = projected / np.where(np.abs(denominator) > 0, denominator, 1.0)
    found = np.zeros((p, p))
    found[-1, 0] = 1
    indices = np.zeros(p, dtype=int)
    for i in range(p):
        direction = rng.random(p)
        direction -= found @ (np.linalg.pinv(found) @ direction)
        direction /= max(np.linalg.norm(direction), np.finfo(float).tiny)
        indices[i] = np.argmax(np.abs(direction @ scaled))
        found[:, i] = scaled[:, indices[i]]
    return basis @ projected[:, indices]


def simplex_projection(V):
    """The Euclidean projection of each column of ``V`` (p x N) onto the probability simplex {a >= 0,
    sum(a) = 1} (Chen & Ye 2011, "Projection onto a simplex", arXiv:1101.6081: the threshold from the
    sorted entries), p x N."""
    sorted_desc = -np.sort(-V, axis=0)
    cumulative = np.cumsum(sorted_desc, axis=0) - 1.0
    counts = np.arange(1, V.shape[0] + 1)[:, None]
    support = np.count_nonzero(sorted_desc * counts > cumulative, axis=0)
    threshold = cumulative[support - 1, np.arange(V.shape[1])] / support
    return np.maximum(V - threshold, 0.0)


def fcls(E, data, iters=FCLS_ITERS, tolerance=FCLS_TOLERANCE):
    """Fully constrained least squares: for each column x of ``data`` (C x N), the abundances a (p) on the
    simplex minimising ||x - E a|| (E: C x p endmembers), by accelerated projected gradient (FISTA, step
    1 / ||E' E||_2) until the abundances change by less than ``tolerance`` (relative) or ``iters`` steps.
    Returns p x N. The problem of SUNSAL with positivity and sum-to-one (Bioucas-Dias & Figueiredo 2010),
    solved to convergence."""
    gram, correlation = E.T @ E, E.T @ data
    step = 1.0 / max(np.linalg.norm(gram, 2), np.finfo(float).tiny)
    a = np.full((E.shape[1], data.shape[1]), 1.0 / E.shape[1])
    momentum, t = a, 1.0
    for _ in range(iters):
        previous = a
        a = simplex_projection(momentum - step * (gram @ momentum - correlation))
        t_next = (1 + np.sqrt(1 + 4 * t * t)) / 2
        momentum = a + (t - 1) / t_next * (a - previous)
        t = t_next
        if np.linalg.norm(a - previous) <= tolerance * max(np.linalg.norm(a), np.finfo(float).tiny):
            break
    return a
