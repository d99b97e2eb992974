"""The baselines registry: every entry imports and has the common signature."""
import inspect

import numpy as np
import pytest

from baselines import BASELINES, baseline, fuse_with
from imagery.errors import DataError
from model.degradation import gaussian_psf, spatial_degrade

# Fewer steps for the one method trained on the pair, so that the contract is checked in seconds.
PARAMS = {"usdn": {"init_steps": 200, "max_steps": 600, "patience": 5}}


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_every_baseline_has_the_common_signature(name):
    parameters = list(inspect.signature(baseline(name)).parameters)
    assert parameters[:5] == ["Y", "Z", "r", "psf", "srf"]


def test_fuse_with_runs_the_named_baseline_and_refuses_unknown_names():
    rng = np.random.default_rng(0)
    x = rng.random((8, 8, 6))
    srf = np.zeros((6, 2))
    srf[:3, 0] = srf[3:, 1] = 1 / 3
    psf = gaussian_psf(2, 2 / 2.35482)
    out = fuse_with("bicubic", spatial_degrade(x, psf, 2), x @ srf, 2, psf, srf)
    assert out.shape == (8, 8, 6)
    with pytest.raises(KeyError, match="known: bicubic"):
        fuse_with("sfim", None, None, 2, psf, srf)


@pytest.fixture(scope="module")
def small_case():
    """A smooth 16 x 16 x 12 cube of 3 endmembers, its LR-HSI at r = 4 and a 3-band HR-MSI."""
    rng = np.random.default_rng(1)
    rows, cols = np.mgrid[0:16, 0:16] / 15.0
    abundances = np.stack([1 + rows, 1 + cols, 1 + rows * cols], -1)
    abundances /= abundances.sum(-1, keepdims=True)
    x = abundances @ rng.uniform(0.1, 0.9, (3, 12))
    srf = np.zeros((12, 3))
    for band in range(3):
        srf[4 * band:4 * band + 4, band] = 0.25
    psf = gaussian_psf(4, 4 / 2.35482)
    return x, spatial_degrade(x, psf, 4), x @ srf, psf, srf


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_every_baseline_keeps_the_contract(name, small_case, one_torch_thread):
    """fuse(Y, Z, r, psf, srf): an H x W x C finite image, the same on a second call, and a DataError (a
    ValueError) naming the problem for an HR-MSI that is not r times the LR-HSI."""
    x, y, z, psf, srf = small_case
    params = PARAMS.get(name, {})
    out = fuse_with(name, y, z, 4, psf, srf, **params)
    assert out.shape == x.shape and np.isfinite(out).all()
    np.testing.assert_array_equal(out, fuse_with(name, y, z, 4, psf, srf, **params))
    with pytest.raises(DataError, match="16 x 15"):
        fuse_with(name, y, z[:, :15], 4, psf, srf, **params)
