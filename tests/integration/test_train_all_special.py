"""End-to-end: short training runs on a crop of the embedded data set."""
import json
import os

import numpy as np
import pytest
import scipy.io
import torch
import torch.nn.functional as F
from conftest import SYNTHETIC_SRF, TINY_SCHEDULE, short_run_argv

import fusion.pair
import fusion.run
import train_all_special
from config import get_args
from data_loader import DataError, Dataset
from evaluation import compute_psnr, evaluate
from model import SpaDnet, SpeDnet, SpeUnet

RUN_FILES = {"opt.txt", "precision.txt", "PSF.pth", "convolution_hr2msi.pth", "spectral_upsample.pth",
             "My_Out.mat", "metrics.json"}


@pytest.fixture(scope="module")
def full_run(crop_data, tmp_path_factory):
    """One short run of all three stages, shared by the tests that only read its folder."""
    args = get_args(short_run_argv(crop_data, tmp_path_factory.mktemp("checkpoints")))
    return args, fusion.run.fuse(args)


def bicubic_psnr(args):
    item = Dataset(args)[0]
    up = F.interpolate(item["lhsi"][None], scale_factor=args.scale_factor, mode="bicubic", align_corners=False)
    return compute_psnr(item["hhsi"].permute(1, 2, 0).numpy(), up[0].permute(1, 2, 0).numpy())


def test_a_run_writes_every_file_of_the_run_folder(full_run):
    args, run = full_run
    assert RUN_FILES <= set(os.listdir(run.path))
    assert not [f for f in os.listdir(run.path) if f.endswith(".part")]
    out = scipy.io.loadmat(run.file("My_Out.mat"))["Out"]
    assert out.shape == (40, 40, 68) and out.dtype == np.float32
    precision = open(run.file("precision.txt")).read()
    for text in ("results in Stage 1", "results in Stage 2", "results in Stage 3", "estimated PSF:",
                 "true SRF:", "generated HHSI and true hhsi", "time of Stage 3:", "total time:"):
        assert text in precision
    assert "scale_factor: 5" in open(run.file("opt.txt")).read()


def test_metrics_json_reports_the_result_and_the_degradations(full_run):
    args, run = full_run
    metrics = json.load(open(run.file("metrics.json")))
    assert set(metrics["final"]) == {"SAM", "ERGAS", "PSNR", "RMSE", "CC", "SSIM"}
    assert set(metrics["stage_seconds"]) == {"1", "2", "3"}
    assert np.array(metrics["estimated_psf"]).shape == (5, 5)
    assert np.array(metrics["estimated_srf"]).shape == (68, 8)
    # Stage 1 moves the PSF from its flat start towards the Gaussian truth.
    flat = np.full((5, 5), 1 / 25)
    true_psf = np.array(metrics["true_psf"])
    assert metrics["psf_rel_error"] < np.linalg.norm(flat - true_psf) / np.linalg.norm(true_psf)
    psnr = compute_psnr(Dataset(args)[0]["hhsi"].permute(1, 2, 0).numpy(),
                        scipy.io.loadmat(run.file("My_Out.mat"))["Out"])
    assert metrics["final"]["PSNR"] == pytest.approx(psnr)


def test_the_fused_image_beats_bicubic_upsampling(full_run):
    args, run = full_run
    psnr = json.load(open(run.file("metrics.json")))["final"]["PSNR"]
    baseline = bicubic_psnr(args)
    assert psnr > baseline + 5, f"fusion {psnr:.2f} dB vs bicubic {baseline:.2f} dB"


def test_saved_modules_load_back_and_reproduce_the_output(full_run):
    args, run = full_run
    data = Dataset(args)
    up = SpeUnet(data.msi_channel, data.hsi_channel)
    up.load_state_dict(torch.load(run.file("spectral_upsample.pth")))
    spa, spe = SpaDnet(5), SpeDnet(data.sp_range, data.hsi_channel)
    spa.load_state_dict(torch.load(run.file("PSF.pth")))
    spe.load_state_dict(torch.load(run.file("convolution_hr2msi.pth")))
    with torch.no_grad():
        x_hat = up(data[0]["hmsi"][None])[0].permute(1, 2, 0).numpy()
        psf, srf = spa.kernel.detach().numpy(), spe.srf().detach().numpy()
    np.testing.assert_array_equal(x_hat, scipy.io.loadmat(run.file("My_Out.mat"))["Out"])
    metrics = json.load(open(run.file("metrics.json")))  # the PSF and SRF the run reports are the saved ones
    np.testing.assert_allclose(np.asarray(metrics["estimated_psf"]), psf.reshape(np.shape(metrics["estimated_psf"])),
                               rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(np.asarray(metrics["estimated_srf"]), srf.reshape(np.shape(metrics["estimated_srf"])),
                               rtol=1e-6, atol=1e-9)


def test_same_seed_gives_identical_output_and_never_overwrites(full_run):
    args, run = full_run
    again = fusion.run.fuse(args)
    assert again.path == run.path + "_2"
    first = scipy.io.loadmat(run.file("My_Out.mat"))["Out"]
    np.testing.assert_array_equal(first, scipy.io.loadmat(again.file("My_Out.mat"))["Out"])
    assert open(run.file("precision.txt")).read().count("results in Stage 1") == 1


@pytest.mark.parametrize("stages, present, absent", [
    ("12", ["Stage 1", "Stage 2"], ["Stage 3"]),
    ("3", ["Stage 3"], ["Stage 1", "Stage 2"]),
])
def test_ablation_stages(short_run_args, stages, present, absent):
    """Stage 3 alone starts from untrained networks at a small learning rate (paper Table I): a
    short run of it is not expected to beat bicubic, stages 1-2 are."""
    args = short_run_args("--stages", stages)
    run = fusion.run.fuse(args)
    assert run.path.endswith(f"_stages{stages}")
    precision = open(run.file("precision.txt")).read()
    assert all(f"results in {s}" in precision for s in present)
    assert not any(f"results in {s}" in precision for s in absent)
    assert RUN_FILES <= set(os.listdir(run.path))
    metrics = json.load(open(run.file("metrics.json")))
    fused = scipy.io.loadmat(run.file("My_Out.mat"))["Out"]
    assert metrics["final"]["PSNR"] == pytest.approx(compute_psnr(Dataset(args)[0]["hhsi"].permute(1, 2, 0).numpy(),
                                                                  fused))
    trained = [str(s) for s in (1, 2, 3) if f"Stage {s}" in present]
    assert sorted(metrics["loss_history"]) == trained  # the stages left out were not trained
    assert all(metrics["loss_history"][s]["epoch"][-1] == getattr(args, f"epoch_stage{s}") for s in trained)
    if stages == "12":
        assert metrics["final"]["PSNR"] > bicubic_psnr(args)


def test_known_psf_and_srf_stay_fixed(short_run_args):
    args = short_run_args("--isCal_PSF", "No", "--isCal_SRF", "No", "--stages", "12")
    run = fusion.run.fuse(args)
    metrics = json.load(open(run.file("metrics.json")))
    assert metrics["psf_rel_error"] < 1e-6 and metrics["srf_rel_error"] < 1e-6
    assert "Stage 1 skipped" not in open(run.file("precision.txt")).read()
    assert "results in Stage 1" not in open(run.file("precision.txt")).read()


def test_a_diverging_loss_aborts_with_a_message_and_keeps_the_log(short_run_args, monkeypatch, caplog):
    args = short_run_args()
    monkeypatch.setattr(fusion.pair, "l1", lambda a, b: (a - b).abs().mean() * float("nan"))
    monkeypatch.setattr(train_all_special, "get_args", lambda argv: args)
    assert train_all_special.main([]) == 1
    assert "the loss became nan" in caplog.text
    [folder] = os.listdir(args.checkpoints_dir)
    precision = open(os.path.join(args.checkpoints_dir, folder, "precision.txt")).read()
    assert "aborted: Stage 1: the loss became nan at epoch 100" in precision
    assert "My_Out.mat" not in os.listdir(os.path.join(args.checkpoints_dir, folder))


def test_missing_data_is_reported_not_raised(tmp_path, caplog):
    assert train_all_special.main(["--default_datapath", str(tmp_path), "--device", "cpu"]) == 1
    assert f"{tmp_path}/houston18: data folder not found" in caplog.text


METHOD_FILES = {
    "pfs2c2": RUN_FILES - {"spectral_upsample.pth"} | {"SpeUp.pth", "SpaUp.pth"},
    "uds2c2": RUN_FILES | {"GCE.pth"},
}


@pytest.mark.parametrize("method", ["pfs2c2", "uds2c2"])
def test_other_methods_write_their_run_folder_and_beat_bicubic(short_run_args, method):
    args = short_run_args("--method", method)
    run = fusion.run.fuse(args)
    assert os.path.basename(run.path).startswith(f"{method}_crop_5_")
    assert METHOD_FILES[method] <= set(os.listdir(run.path))
    psnr = json.load(open(run.file("metrics.json")))["final"]["PSNR"]
    assert psnr > bicubic_psnr(args) + 3
    again = fusion.run.fuse(args)
    np.testing.assert_array_equal(scipy.io.loadmat(run.file("My_Out.mat"))["Out"],
                                  scipy.io.loadmat(again.file("My_Out.mat"))["Out"])


def test_pfs2c2_lr_reset_follows_the_authors_script(short_run_args):
    intended = fusion.run.fuse(short_run_args("--method", "pfs2c2", "--stages", "12"))
    authors = fusion.run.fuse(short_run_args("--method", "pfs2c2", "--stages", "12", "--pfs_lr_reset"))
    lr_intended = json.load(open(intended.file("metrics.json")))["stage_results"]["1"]["lr"]
    lr_authors = json.load(open(authors.file("metrics.json")))["stage_results"]["1"]["lr"]
    assert lr_intended == pytest.approx(1e-3 / 151)          # last epoch of the linear decay
    assert lr_authors == pytest.approx(1e-3 - 1e-3 / 151)    # never decays past one step


def test_uds2c2_ablation_switches(short_run_args):
    args = short_run_args("--method", "uds2c2", "--gce", "no", "--scfconv", "no", "--scf_kernel", "1",
                          "--degradation", "original", "--stages", "12")
    run = fusion.run.fuse(args)
    assert "GCE.pth" not in os.listdir(run.path)
    state = torch.load(run.file("spectral_upsample.pth"))
    expected = {k: v.shape for k, v in SpeUnet(8, 68).state_dict().items()}
    assert {k: v.shape for k, v in state.items()} == expected, "with k=1 and no SCFConv it is UDALN's SpeUnet"
    udaln = fusion.run.fuse(short_run_args("--stages", "12"))
    np.testing.assert_array_equal(scipy.io.loadmat(run.file("My_Out.mat"))["Out"],
                                  scipy.io.loadmat(udaln.file("My_Out.mat"))["Out"])


def test_uds2c2_with_scfconv_in_the_spatial_degradation(short_run_args, tmp_path):
    args = short_run_args("--method", "uds2c2", "--scfconv", "yes", "--scf_place", "spatial", "--stages", "12")
    run = fusion.run.fuse(args)
    psf = torch.load(run.file("PSF.pth"))
    assert {"psf_logits", "spatial.weight", "gain.weight"} <= set(psf)
    expected = {k: v.shape for k, v in SpeUnet(8, 68).state_dict().items()}
    assert {k: v.shape for k, v in torch.load(run.file("spectral_upsample.pth")).items()} == expected
    metrics = json.load(open(run.file("metrics.json")))
    assert metrics["final"]["PSNR"] > bicubic_psnr(args)
    # Patch training sees one patch at a time, not a band's whole-image mean: refused before any file.
    folders = set(os.listdir(tmp_path / "checkpoints"))
    with pytest.raises(train_all_special.DataError, match="--scf_place spatial computes each band's PSF"):
        fusion.run.fuse(short_run_args("--method", "uds2c2", "--scfconv", "yes", "--scf_place", "spatial",
                                              "--training_mode", "patches", "--patch_size", "4"))
    assert set(os.listdir(tmp_path / "checkpoints")) == folders


def test_a_psf_wider_than_r_learns_a_shifted_psf_that_an_r_x_r_one_cannot(short_run_args, tmp_path):
    # The simulated PSF is a 5 x 5 Gaussian at r = 3, one HR pixel off the block's centre: a 3 x 3 PSF leaves
    # out the part of it outside the block (its error is at least that part's norm); --psf_size 7 covers it.
    # Stage 1 at 10 x the published rate for 1,000 epochs: as far as the full schedule's 20,000 go at 1e-3.
    def run(*options):
        folder = fusion.run.fuse(short_run_args("--threads", "1", "--scale_factor", "3", "--sim_psf_size", "5",
                                                       "--sim_psf_shift", "1", "--degradation", "normalised",
                                                       "--lr_stage1", "0.01", "--epoch_stage1", "1000",
                                                       "--decay_begin_epoch_stage1", "500", *options))
        return json.load(open(folder.file("metrics.json")))

    box, wide = run(), run("--psf_size", "7")
    truth = np.flip(np.array(wide["true_psf"]))
    assert truth.shape == (7, 7) and np.array(wide["estimated_psf"]).shape == (7, 7)
    outside = truth.copy()
    outside[2:5, 2:5] = 0
    floor = np.linalg.norm(outside) / np.linalg.norm(truth)
    assert box["psf_rel_error"] >= floor > 0.3
    assert wide["psf_rel_error"] < floor / 4
    assert wide["final"]["PSNR"] > box["final"]["PSNR"] + 2
    # Patch training cuts patches on the r x r blocks and has no rows beyond them: refused before any file.
    folders = set(os.listdir(tmp_path / "checkpoints"))
    with pytest.raises(train_all_special.DataError, match="--psf_size 7 reads HR pixels beyond"):
        fusion.run.fuse(short_run_args("--scale_factor", "3", "--psf_size", "7", "--training_mode", "patches",
                                              "--patch_size", "4"))
    assert set(os.listdir(tmp_path / "checkpoints")) == folders


# ----------------------------------------------------------------------------- inputs as people have them

TINY = TINY_SCHEDULE


def cube_run(tmp_path, name, cube, *extra):
    """A tiny-schedule run on ``cube`` (H x W x C, saved as data/<name>/<name>.npy) with the crop's SRF."""
    folder = tmp_path / "data" / name
    folder.mkdir(parents=True)
    np.save(folder / f"{name}.npy", cube)
    srf = np.loadtxt(SYNTHETIC_SRF, delimiter=",")[:cube.shape[2]]
    np.save(tmp_path / "data" / f"{name}_srf.npy", srf[:, srf.sum(axis=0) > 0])
    os.rename(tmp_path / "data" / f"{name}_srf.npy", tmp_path / "data" / f"{name}.npy")
    args = get_args(["--default_datapath", str(tmp_path / "data"), "--sp_root_path", str(tmp_path / "data"),
                     "--data_name", name, "--checkpoints_dir", str(tmp_path / "checkpoints"), "--device", "cpu",
                     *TINY, *extra])
    run = fusion.run.fuse(args)
    return run, json.load(open(run.file("metrics.json"))), scipy.io.loadmat(run.file("My_Out.mat"))["Out"]


@pytest.fixture(scope="module")
def crop_cube(crop_data):
    return np.load(crop_data / "crop" / "crop.npy").astype(np.float64)


@pytest.mark.parametrize("method", ["udaln", "pfs2c2", "uds2c2"])
def test_a_cube_in_raw_units_gives_the_same_result_in_its_units(tmp_path, crop_cube, method):
    """Reflectance x 10000 (as delivered) and reflectance in [0, 1] fuse identically (the scaling rule),
    and the output comes back in the cube's units."""
    _, metrics, out = cube_run(tmp_path / "a", "unit", crop_cube, "--method", method)
    _, metrics_raw, out_raw = cube_run(tmp_path / "b", "raw", crop_cube * 10000, "--method", method)
    assert metrics_raw["data"]["scale"] == 10000 and metrics["data"]["scale"] == 1
    np.testing.assert_allclose(out_raw / 10000, out, rtol=1e-4, atol=1e-6)
    assert metrics_raw["final"]["PSNR"] == pytest.approx(metrics["final"]["PSNR"], abs=1e-3)


def test_zeroed_bands_are_listed_and_left_out_of_the_metrics(tmp_path, crop_cube):
    """People keep the zeroed water-absorption bands: the metrics are those over the real bands."""
    cube = crop_cube[:, :, :40].copy()
    cube[:, :, 38:] = 0
    run, metrics, out = cube_run(tmp_path, "zeroed", cube)
    assert metrics["data"]["constant_bands"] == [38, 39]
    reference = cube[:, :, :38]
    expected = evaluate(reference, out[:, :, :38].astype(np.float64), 5)
    for key in ("SAM", "ERGAS", "PSNR", "CC"):
        assert metrics["final"][key] == pytest.approx(expected[key], rel=1e-6), key


def test_a_no_data_frame_is_left_out_of_the_losses_and_the_metrics(tmp_path, crop_cube):
    cube = crop_cube.copy()
    cube[:5], cube[-5:], cube[:, :5], cube[:, -5:] = 0, 0, 0, 0
    run, metrics, out = cube_run(tmp_path, "framed", cube)
    assert metrics["data"]["masked_hr_pixels"] == 40 * 40 - 30 * 30
    assert metrics["data"]["masked_lr_pixels"] == 8 * 8 - 6 * 6
    valid = np.zeros((40, 40), dtype=bool)
    valid[5:-5, 5:-5] = True
    assert np.isnan(out[~valid]).all()
    expected = evaluate(cube[5:-5, 5:-5], out[5:-5, 5:-5].astype(np.float64), 5)
    assert metrics["final"]["SAM"] == pytest.approx(expected["SAM"], rel=1e-6)


def test_fill_values_are_refused_naming_the_file_or_masked_on_request(tmp_path, crop_cube):
    """A block at -3.4e38 used to end in "the loss became inf ... try a smaller learning rate"."""
    cube = crop_cube.copy()
    cube[10:14, 10:14] = -3.4e38
    with pytest.raises(DataError, match=r"filled.npy: the reference cube has 1088 invalid values .*--mask_invalid"):
        cube_run(tmp_path / "a", "filled", cube)
    _, metrics, out = cube_run(tmp_path / "b", "filled", cube, "--mask_invalid")
    assert metrics["data"]["masked_hr_pixels"] == 16 and np.isnan(out[10:14, 10:14]).all()


def test_a_brighter_msi_changes_nothing_under_the_normalised_degradation_model(short_run_args):
    # The papers' model lets the free PSF absorb the sensors' gain (its sum drops to about 1 / 1.5) and the
    # fused image inherits it; the normalised model (PSF summing to 1, MSIGain started at the band means'
    # ratio, gain learned as its logarithm) trains on the calibrated MSI, the same numbers up to rounding.
    def run(*options):
        folder = fusion.run.fuse(short_run_args("--threads", "1", *options))
        return json.load(open(folder.file("metrics.json")))

    consistent = run("--degradation", "normalised")
    brighter = run("--degradation", "normalised", "--msi_gain", "1.5")
    published = run("--msi_gain", "1.5")
    assert abs(brighter["final"]["PSNR"] - consistent["final"]["PSNR"]) < 0.1
    assert brighter["psf_sum"] == pytest.approx(1.0, abs=1e-6)
    assert published["final"]["PSNR"] < consistent["final"]["PSNR"] - 10
    assert published["psf_sum"] < 0.8
