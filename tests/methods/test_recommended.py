"""The recommended mode (methods.recommended): its HyperSharpening step against the baseline it wraps, its
consistency with the LR-HSI, tiles against the whole image, its refusals, and a short run end to end."""
import json
import os
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import low_rank_case, short_run_argv

import fusion.run
from baselines import mtf_glp_hs
from baselines.operators import blur_decimate
from config import get_args
from data_loader import DataError
from evaluation import compute_psnr
from fusion.pair import hwc
from fusion.tiling import TiledForward, forward_tiled
from methods.recommended import HPM_FLOOR, HyperSharpening, check_recommended
from model import SpaDnet
from model.degradation import lr_consistent, spatial_degrade


def tensor(cube):
    return torch.from_numpy(np.ascontiguousarray(cube.transpose(2, 0, 1)[None], dtype=np.float32))


@pytest.fixture(scope="module")
def case():
    """A 20 x 20 x 16 cube with a 4-band MSI at r = 4 whose spectra the MSI does not fully determine (a
    band-alternating component that the block SRF cancels), its exact pair, and HyperSharpening fitted with
    the true PSF."""
    x, _, _, r, psf, srf = low_rank_case(size=20, r=4, bands=16, msi_bands=4)
    rows, cols = np.mgrid[0:20, 0:20]
    x = x + 0.05 * (-1.0) ** np.arange(16) * (np.cos(rows / 3.0) * np.sin(cols / 2.0))[..., None]
    x = x.astype(np.float32).astype(np.float64)
    y, z = spatial_degrade(x, psf, r).astype(np.float32), (x @ srf).astype(np.float32)
    step = HyperSharpening(r, 4, 16)
    step.fit(SimpleNamespace(Y=tensor(y), Z=tensor(z), scale=r, lr_valid=None),
             SpaDnet(r, known_psf=psf, trainable=False))
    return SimpleNamespace(x=x, y=y, z=z, r=r, psf=psf, srf=srf, step=step)


def hypersharpened(case):
    """MTF-GLP-HS of the case with the true PSF and the mode's HPM floor, by the baseline's own functions."""
    y, z = case.y.astype(np.float64), case.z.astype(np.float64)
    z_lr = blur_decimate(z, case.psf, case.r)
    weights = mtf_glp_hs.synthetic_pans(y, z_lr)
    return mtf_glp_hs.hpm_sharpen(y, z, z_lr, case.r, weights, mtf_glp_hs.hpm_floors(z_lr, weights, HPM_FLOOR),
                                  nonnegative=True)


def test_with_the_true_psf_it_is_mtf_glp_hs_projected_onto_the_lr_hsi(case):
    fused = hwc(case.step(tensor(case.z), tensor(case.y))).astype(np.float64)
    expected = lr_consistent(hypersharpened(case), case.y.astype(np.float64), case.psf, case.r)
    np.testing.assert_allclose(fused, expected, atol=2e-6)


def test_its_output_degrades_to_the_lr_hsi_and_is_nearer_the_truth_than_before_the_projection(case):
    fused = hwc(case.step(tensor(case.z), tensor(case.y))).astype(np.float64)
    np.testing.assert_allclose(spatial_degrade(fused, case.psf, case.r), case.y, atol=1e-6)
    glp = hypersharpened(case)
    assert np.abs(spatial_degrade(glp, case.psf, case.r) - case.y).max() > 1e-4  # the projection had work to do
    # The truth satisfies the constraint, so the projection can only come nearer it.
    assert np.linalg.norm(fused - case.x) < np.linalg.norm(glp - case.x)


def test_tiles_equal_the_whole_image(case):
    z, y = tensor(case.z), tensor(case.y)
    whole = case.step(z, y)
    tiled = forward_tiled(case.step, z, align=case.r, side=2 * case.r, lr_input=y)
    torch.testing.assert_close(tiled, whole, rtol=0, atol=1e-6)


def test_an_lr_input_off_the_tile_grid_is_refused(case):
    z, y = tensor(case.z), tensor(case.y)
    with pytest.raises(ValueError, match="not the .* image's LR grid"):
        TiledForward(case.step, z, align=2, lr_input=y)


def test_the_band_regression_is_fitted_on_the_valid_lr_pixels_only(case):
    valid = np.ones(case.y.shape[:2], dtype=bool)
    valid[1:3, 2] = False
    y = case.y.copy()
    y[~valid] = 1e3  # no-data values that would dominate the regression
    step = HyperSharpening(case.r, 4, 16)
    spa = SpaDnet(case.r, known_psf=case.psf, trainable=False)
    step.fit(SimpleNamespace(Y=tensor(y), Z=tensor(case.z), scale=case.r, lr_valid=valid), spa)
    z_lr = spatial_degrade(case.z.astype(np.float64), case.psf, case.r)
    expected = mtf_glp_hs.synthetic_pans(case.y[valid][None].astype(np.float64), z_lr[valid][None])
    np.testing.assert_allclose(step.weights.numpy(), expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("extra, message", [
    (("--degradation", "original"), "drop --degradation original"),
    (("--stages", "12"), "has one training stage"),
    (("--psf_size", "7"), "drop --psf_size 7"),
])
def test_options_it_cannot_use_are_refused(extra, message):
    args = get_args(["--method", "recommended", "--device", "cpu", *extra])
    pair = SimpleNamespace(scale=5, psf=np.full((5, 5), 1 / 25))
    with pytest.raises(DataError, match=message):
        check_recommended(args, pair)


def test_the_schedules_of_stages_it_does_not_have_are_dropped():
    args = get_args(["--method", "recommended", "--epoch_stage1", "50", "--epoch_stage2", "10"])
    assert (args.epoch_stage1, args.epoch_stage2, args.lr_stage3) == (50, None, None)


def test_auto_is_recommended_for_a_real_pair_and_udaln_for_a_simulated_one():
    assert get_args(["--device", "cpu"]).method == "udaln"
    real = get_args(["--device", "cpu"], arrays="pair")
    assert (real.method, real.degradation, real.epoch_stage1, real.epoch_stage2) == ("recommended", "normalised",
                                                                                      20000, None)


def test_a_short_run_beats_bicubic_agrees_with_the_lr_hsi_and_saves_the_original_psf(crop_data, tmp_path):
    args = get_args(short_run_argv(crop_data, tmp_path, "--method", "recommended", "--threads", "1"))
    run = fusion.run.fuse(args)
    assert os.path.basename(run.path) == "recommended_crop_5_S1=0.001_300_150"
    metrics = json.load(open(run.file("metrics.json")))
    pair = np.load(crop_data / "crop" / "crop.npy")
    psf = torch.load(run.file("PSF.pth"))
    assert set(psf) == {"psf.weight"} and psf["psf.weight"].shape == (1, 1, 5, 5)  # the original's layout
    spa = SpaDnet(5)
    spa.load_state_dict(psf)
    np.testing.assert_allclose(spa.kernel.numpy(), np.asarray(metrics["estimated_psf"]), rtol=1e-6)
    assert set(torch.load(run.file("hypersharpening.pth"))) == {"psf", "weights", "floors"}
    upsampled = mtf_glp_hs.bicubic_upsample(spatial_degrade(pair.astype(np.float64), np.full((5, 5), 1 / 25), 5), 5)
    assert metrics["final"]["PSNR"] > compute_psnr(pair, upsampled) + 10
    assert metrics["no_reference"]["lrhsi_consistency"]["PSNR"] > 80  # exact to float32 rounding


def test_a_panchromatic_image_sharpens_every_band_and_keeps_the_lr_hsi():
    """One HR band (a pan image): every HSI band gets the pan's detail, and the output still degrades to Y."""
    x, _, _, r, psf, srf = low_rank_case(size=20, r=4, bands=16, msi_bands=1)
    y, z = spatial_degrade(x, psf, r).astype(np.float32), (x @ srf).astype(np.float32)
    step = HyperSharpening(r, 1, 16)
    spa = SpaDnet(r, known_psf=psf, trainable=False)
    step.fit(SimpleNamespace(Y=tensor(y), Z=tensor(z), scale=r, lr_valid=None), spa)
    fused = hwc(step(tensor(z), tensor(y))).astype(np.float64)
    np.testing.assert_allclose(spatial_degrade(fused, psf, r), y, atol=1e-6)
    upsampled = mtf_glp_hs.bicubic_upsample(y, r)
    assert compute_psnr(x, fused) > compute_psnr(x, upsampled) + 5  # 38.0 against 29.1 dB
