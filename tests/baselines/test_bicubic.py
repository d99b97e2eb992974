"""baselines.bicubic: the floor reproduces the project's bicubic rows (docs/results.md) and PyTorch's interpolation."""
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import SYNTHETIC_CUBE, SYNTHETIC_SRF

from baselines import bicubic
from data_loader import DataError, crop_to_multiple, load_cube, simulate_pair
from evaluation import evaluate
from model.degradation import gaussian_psf

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_fuse_is_torch_bicubic_of_the_lr_hsi_with_the_hr_shape():
    rng = np.random.default_rng(3)
    r, srf = 3, np.full((6, 2), 1 / 6)
    y = rng.random((4, 5, 6))
    x = bicubic.fuse(y, rng.random((12, 15, 2)), r, np.full((r, r), 1 / r ** 2), srf)
    expected = F.interpolate(torch.from_numpy(y.transpose(2, 0, 1))[None], scale_factor=r, mode="bicubic",
                             align_corners=False)[0].numpy().transpose(1, 2, 0)
    assert x.shape == (12, 15, 6) and x.dtype == np.float64
    np.testing.assert_allclose(x, expected, rtol=0, atol=1e-13)


def test_a_band_constant_cube_is_reproduced_exactly():
    r, levels = 4, np.array([0.1, 0.5, 0.25, 0.9])
    x = bicubic.fuse(np.broadcast_to(levels, (3, 3, 4)), np.zeros((12, 12, 2)), r, np.full((r, r), 1 / 16),
                     np.full((4, 2), 0.25))
    np.testing.assert_allclose(x, np.broadcast_to(levels, (12, 12, 4)), rtol=0, atol=1e-14)


def test_the_synthetic_pair_gives_the_recorded_bicubic_row():
    """docs/synthetic_results.md: bicubic upsampling of the synthetic class-mean cube, r = 5: SAM 1.648,
    ERGAS 3.142, PSNR 20.42 (that run worked in float32, hence the tolerance of one unit in the last digit)."""
    r = 5
    cube = crop_to_multiple(load_cube(SYNTHETIC_CUBE), r)
    srf = np.loadtxt(SYNTHETIC_SRF, delimiter=",")
    psf = gaussian_psf(r, r / 2.35482)
    pair = simulate_pair(cube, srf, psf, r)
    metrics = evaluate(cube, bicubic.fuse(pair["lhsi"], pair["hmsi"], r, psf, srf), r, ssim=False)
    assert metrics["SAM"] == pytest.approx(1.648, abs=1e-3)
    assert metrics["ERGAS"] == pytest.approx(3.142, abs=1e-3)
    assert metrics["PSNR"] == pytest.approx(20.42, abs=1e-2)


def test_inconsistent_arguments_raise_data_error():
    with pytest.raises(DataError, match="bicubic: Z is 10 x 10 pixels, but r = 3"):
        bicubic.fuse(np.zeros((4, 4, 6)), np.zeros((10, 10, 2)), 3, np.full((3, 3), 1 / 9), np.full((6, 2), 1 / 6))
