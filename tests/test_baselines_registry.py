"""The baselines registry: every entry imports and has the common signature."""
import inspect

import numpy as np
import pytest

from baselines import BASELINES, fuse_with
from data_loader import gaussian_psf, spatial_degrade


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_every_baseline_has_the_common_signature(name):
    import importlib
    parameters = list(inspect.signature(importlib.import_module(BASELINES[name]).fuse).parameters)
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
