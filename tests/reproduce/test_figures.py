"""Tests for reproduce/figures.py (the papers' figures) and the loss history a run keeps for them."""
import json
import os
import signal

import numpy as np
import pytest
import scipy.io
import torch
from conftest import TINY_SCHEDULE, short_run_argv

import func
import fusion.run
import imagery.blocks
import train_all_special
from evaluation import compute_rmse, compute_sam, spectral_angles
from fusion import figures as run_figures
from fusion.monitor import Monitor
from imagery.quicklook import composite_bands
from reproduce import figures

image = pytest.importorskip("matplotlib.image")

WAVELENGTHS = np.linspace(420.0, 900.0, 10)  # true colour: 633, 527, 473 nm are bands 8, 5, 2


@pytest.fixture
def rng():
    return np.random.default_rng(11)


@pytest.fixture
def srf():
    response = np.exp(-0.5 * ((WAVELENGTHS[:, None] - np.array([470.0, 550.0, 650.0, 850.0])) / 40.0) ** 2)
    return response / response.sum(axis=0)


def png_shape(path):
    return image.imread(path).shape[:2]


def loop_psnr(t, p):
    return np.mean([10 * np.log10(t[:, :, b].max() ** 2 / np.mean((t[:, :, b] - p[:, :, b]) ** 2))
                    for b in range(t.shape[2])])


def loop_sam(t, p):
    """Degrees, per pixel, with UDALN's 1e-7 in the denominator."""
    out = np.empty(t.shape[:2])
    for i in range(t.shape[0]):
        for j in range(t.shape[1]):
            a, b = t[i, j], p[i, j]
            cos = a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-7)
            out[i, j] = 0.0 if np.array_equal(a, b) else np.degrees(np.arccos(min(1.0, max(-1.0, cos))))
    return out


def loop_mrae(t, p, zero):
    out = np.empty(t.shape[:2])
    for i in range(t.shape[0]):
        for j in range(t.shape[1]):
            terms = [abs(p[i, j, b] - t[i, j, b]) / abs(t[i, j, b]) for b in range(t.shape[2])
                     if abs(t[i, j, b]) > zero]
            out[i, j] = np.mean(terms) if terms else np.nan
    return out


# ----------------------------------------------------------------------------- Fig. 2

def test_consistency_figure_shows_the_residuals_x40_and_scores_the_regenerations(tmp_path, rng, srf):
    x = 0.2 + rng.random((20, 15, 10))
    y = x.reshape(4, 5, 3, 5, 10).mean(axis=(1, 3))
    y_regen = y + 0.002 * rng.standard_normal(y.shape)
    z = x @ srf
    z_regen = z * 1.01
    lr_valid = np.ones(y.shape[:2], dtype=bool)
    lr_valid[0, 0] = False
    drawn = run_figures.save_consistency_figure(tmp_path / "fig2.png", y, y_regen, z, z_regen, wavelengths=WAVELENGTHS,
                                            srf=srf, lr_valid=lr_valid, title="run")
    assert png_shape(tmp_path / "fig2.png") == (800, 1200)
    bands = composite_bands(WAVELENGTHS)
    residual = drawn.panels["lrhsi"]["residual"]
    assert np.isnan(residual[0, 0]).all()
    expected = 40.0 * (y[:, :, bands] - y_regen[:, :, bands])
    np.testing.assert_array_equal(residual[lr_valid], expected[lr_valid])
    # The MSI bands nearest 640/550/470 nm by their SRF centres: columns 2, 1, 0.
    np.testing.assert_array_equal(drawn.panels["hrmsi"]["residual"], 40.0 * (z - z_regen)[:, :, [2, 1, 0]])
    valid = y[lr_valid][:, None, :], y_regen[lr_valid][:, None, :]
    assert drawn.numbers["lrhsi"]["PSNR"] == pytest.approx(loop_psnr(*valid), rel=1e-12)
    assert drawn.numbers["lrhsi"]["SAM"] == pytest.approx(loop_sam(*valid).mean(), rel=1e-9)
    assert drawn.numbers["hrmsi"]["SAM"] == pytest.approx(loop_sam(z, z_regen).mean(), rel=1e-9)
    assert drawn.numbers["hrmsi"]["PSNR"] == pytest.approx(loop_psnr(z, z_regen), rel=1e-12)


def test_consistency_figure_shows_scores_already_computed(tmp_path, rng):
    y, z = rng.random((4, 3, 10)), rng.random((20, 15, 4))
    quality = {"lrhsi_consistency": {"PSNR": 51.5, "SAM": 0.3, "ERGAS": 0.1}, "hrmsi_consistency": {"PSNR": 40.0,
                                                                                                  "SAM": 1.5}}
    drawn = run_figures.save_consistency_figure(tmp_path / "f.png", y, y * 0.9, z, z, scores=quality)
    assert drawn.numbers == {"lrhsi": {"PSNR": 51.5, "SAM": 0.3}, "hrmsi": {"PSNR": 40.0, "SAM": 1.5}}
    with pytest.raises(ValueError, match="scores must hold hrmsi_consistency with PSNR and SAM"):
        run_figures.save_consistency_figure(tmp_path / "f.png", y, y, z, z, scores={"lrhsi_consistency": {"PSNR": 1.0,
                                                                                                       "SAM": 1.0}})


def test_consistency_figure_refuses_mismatched_images(tmp_path, rng):
    y, z = rng.random((4, 3, 10)), rng.random((20, 15, 4))
    with pytest.raises(ValueError, match=r"y_regen must have the shape of y, \(4, 3, 10\); got \(4, 3, 9\)"):
        run_figures.save_consistency_figure(tmp_path / "f.png", y, y[:, :, :9], z, z)
    with pytest.raises(ValueError, match="wavelengths must hold 10 finite values"):
        run_figures.save_consistency_figure(tmp_path / "f.png", y, y, z, z, wavelengths=WAVELENGTHS[:4])
    assert not os.listdir(tmp_path)


# ----------------------------------------------------------------------------- Fig. 3

@pytest.fixture
def scene(rng):
    """A 12 x 9 x 10 reference with a constant band (4), a few values near 0, and two estimates."""
    reference = 0.1 + rng.random((12, 9, 10))
    reference[2, 3, [1, 6]] = 1e-6
    reference[5, 5, :] = 0.0  # a black pixel: every varying band is ~0
    reference[:, :, 4] = 0.3
    outputs = {"udaln": reference + 0.01 * rng.standard_normal(reference.shape),
               "gsa": reference * (1 + 0.05 * rng.random(reference.shape))}
    return reference, outputs


def test_comparison_maps_equal_a_per_pixel_computation(tmp_path, scene):
    reference, outputs = scene
    drawn = figures.save_comparison_figure(tmp_path / "fig3.png", reference, outputs, wavelengths=WAVELENGTHS)
    assert png_shape(tmp_path / "fig3.png") == (900, 3 * 300 + 100)
    keep = np.arange(10) != 4  # the constant band is left out of SAM, as evaluation does
    zero = 1e-3 * np.abs(reference).max()
    for name, x in outputs.items():
        sam, mrae = drawn.panels[name]["SAM"], drawn.panels[name]["MRAE"]
        np.testing.assert_allclose(sam, loop_sam(reference[:, :, keep], x[:, :, keep]), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(mrae, loop_mrae(reference[:, :, keep], x[:, :, keep], zero), rtol=1e-12)
        assert np.isnan(mrae[5, 5]) and np.isfinite(mrae[2, 3])
        assert drawn.numbers[name]["SAM"] == pytest.approx(compute_sam(reference, x), rel=1e-9)
        assert drawn.numbers[name]["MRAE"] == pytest.approx(np.nanmean(mrae))
        np.testing.assert_array_equal(drawn.panels[name]["composite"], x[:, :, list(composite_bands(WAVELENGTHS))])
    both = np.concatenate([drawn.panels[n]["SAM"].ravel() for n in outputs])
    assert drawn.numbers["scale"]["SAM"] == pytest.approx(np.percentile(both, 99))


def test_comparison_of_a_large_image_uses_the_pixels_shown_in_blocks(tmp_path, rng, monkeypatch):
    reference = 0.1 + rng.random((2003, 4, 5)).astype(np.float32)
    estimate = reference + np.float32(0.01)
    mask = np.ones(reference.shape[:2], dtype=bool)
    mask[:300] = False
    whole = figures.save_comparison_figure(tmp_path / "a.png", reference, {"m": estimate}, mask=mask)
    assert whole.step == 3 and whole.panels["m"]["SAM"].shape == (668, 2)
    shown = reference[::3, ::3].astype(np.float64), estimate[::3, ::3].astype(np.float64)
    expected = loop_sam(*shown)
    expected[:100] = np.nan  # rows 0..297 of the image are masked out
    np.testing.assert_allclose(whole.panels["m"]["SAM"], expected, rtol=1e-9, atol=1e-12)
    monkeypatch.setattr(imagery.blocks, "BLOCK_VALUES", 8)  # one row a block
    blocks = figures.save_comparison_figure(tmp_path / "b.png", reference, {"m": estimate}, mask=mask)
    np.testing.assert_array_equal(blocks.panels["m"]["SAM"], whole.panels["m"]["SAM"])
    np.testing.assert_array_equal(blocks.panels["m"]["MRAE"], whole.panels["m"]["MRAE"])


def test_comparison_refuses_what_cannot_be_compared(tmp_path, scene):
    reference, outputs = scene
    with pytest.raises(ValueError, match="outputs is empty"):
        figures.save_comparison_figure(tmp_path / "f.png", reference, {})
    with pytest.raises(ValueError, match=r"outputs\['gsa'\] must have the shape of reference"):
        figures.save_comparison_figure(tmp_path / "f.png", reference, {"gsa": reference[:, :8]})


# ----------------------------------------------------------------------------- a run's error maps

def test_error_maps_are_evaluations_per_pixel_sam_and_rmse(tmp_path, scene):
    reference, outputs = scene
    fused = outputs["udaln"]
    mask = np.ones(reference.shape[:2], dtype=bool)
    mask[0, :3] = False
    sam, rmse, step = run_figures.error_maps(reference, fused, mask)
    keep = np.arange(10) != 4  # the constant band is left out, as evaluation does
    t, p = reference[:, :, keep], fused[:, :, keep]
    expected = loop_sam(t, p)
    expected[~mask] = np.nan
    assert step == 1 and sam.shape == rmse.shape == (12, 9)
    np.testing.assert_array_equal(sam, np.where(mask, spectral_angles(t, p), np.nan))
    np.testing.assert_allclose(sam, expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(rmse[mask], np.sqrt(np.mean((t - p) ** 2, axis=2))[mask], rtol=1e-12)
    assert np.isnan(rmse[0, :3]).all()
    assert np.nanmean(sam) == pytest.approx(compute_sam(reference, fused, mask=mask), rel=1e-12)
    assert np.sqrt(np.nanmean(rmse ** 2)) == pytest.approx(compute_rmse(reference, fused, mask=mask), rel=1e-12)

    drawn = run_figures.save_error_maps_figure(tmp_path / "fig3_error_maps.png", reference, fused,
                                           wavelengths=WAVELENGTHS, mask=mask, factor=10.0)
    assert png_shape(tmp_path / "fig3_error_maps.png") == (380, 1300)
    np.testing.assert_array_equal(drawn.panels["fused"]["SAM"], sam)
    np.testing.assert_allclose(drawn.panels["fused"]["RMSE"], 10.0 * rmse, rtol=1e-12)  # in the input's units
    assert drawn.numbers["fused"]["SAM"] == pytest.approx(compute_sam(reference, fused, mask=mask), rel=1e-12)
    assert drawn.numbers["fused"]["RMSE"] == pytest.approx(10.0 * compute_rmse(reference, fused, mask=mask))
    shown = fused[:, :, list(composite_bands(WAVELENGTHS))]
    np.testing.assert_array_equal(drawn.panels["fused"]["composite"][mask], shown[mask])
    assert np.isnan(drawn.panels["fused"]["composite"][~mask]).all()
    with pytest.raises(ValueError, match="estimate must have the shape of reference"):
        run_figures.error_maps(reference, fused[:, :8], mask)


def test_a_run_with_a_reference_writes_its_error_maps(uninterrupted):
    folder, _, _ = uninterrupted
    assert png_shape(os.path.join(folder, "fig3_error_maps.png")) == (380, 1300)


# ----------------------------------------------------------------------------- PSF, SRF, loss curves

def test_degradation_figure_gives_the_relative_errors(tmp_path, srf, rng):
    srf5 = np.concatenate([srf, srf[:, :1]], axis=1)
    learned = srf5 + 0.01 * rng.random(srf5.shape)
    psf = np.full((5, 5), 1 / 25)
    drawn = run_figures.save_degradation_figure(tmp_path / "psf_srf.png", psf * 1.1, psf, learned, srf5,
                                            wavelengths=WAVELENGTHS, msi_band_names=list("BGRNX"))
    assert png_shape(tmp_path / "psf_srf.png") == (900, 1200)  # the PSFs, then 5 SRF panels in 2 rows of 4
    assert drawn.numbers["psf"]["rel_error"] == pytest.approx(0.1)
    for k, name in enumerate("BGRNX"):
        error = np.sqrt(np.sum((learned[:, k] - srf5[:, k]) ** 2) / np.sum(srf5[:, k] ** 2))
        assert drawn.numbers["srf"][name] == pytest.approx(error)
    alone = run_figures.save_degradation_figure(tmp_path / "alone.png", psf, None, learned[:, :3], None)
    assert png_shape(tmp_path / "alone.png") == (600, 1200) and "psf" not in alone.numbers
    with pytest.raises(ValueError, match="msi_band_names must name the 5 MSI bands"):
        run_figures.save_degradation_figure(tmp_path / "f.png", psf, psf, learned, srf5, msi_band_names=["B"])


def test_loss_curves_one_panel_per_stage(tmp_path):
    history = {"2": {"epoch": [100, 150], "loss": [0.2, 0.1]}, "1": {"epoch": [100, 200, 230], "loss": [3, 2, 1]}}
    drawn = run_figures.save_loss_curves(tmp_path / "loss.png", history)
    assert png_shape(tmp_path / "loss.png") == (350, 800)
    assert list(drawn.panels) == ["1", "2"]
    np.testing.assert_array_equal(drawn.panels["1"]["loss"], [3, 2, 1])
    with pytest.raises(ValueError, match="the loss history is empty"):
        run_figures.save_loss_curves(tmp_path / "f.png", {})
    with pytest.raises(ValueError, match="stage 1: 2 epochs for 1 losses"):
        run_figures.save_loss_curves(tmp_path / "f.png", {1: {"epoch": [1, 2], "loss": [1.0]}})


# ----------------------------------------------------------------------------- run folders and the command line

def fake_run(folder, method, cube, crop, srf, history=True, factor=1.0):
    """A finished run folder as train_all_special writes it: My_Out.mat and metrics.json."""
    os.makedirs(folder)
    scipy.io.savemat(os.path.join(folder, "My_Out.mat"), {"Out": cube.astype(np.float32)})
    psf = np.arange(25.0).reshape(5, 5) / 300
    metrics = {"method": method, "scale_factor": 5, "estimated_psf": psf.tolist(), "true_psf": psf.T.tolist(),
               "estimated_srf": (srf * 1.1).tolist(), "true_srf": srf.tolist(),
               "data": {"crop": dict(zip(("top", "bottom", "left", "right"), crop)), "scale": factor}, "options": {}}
    if history:
        metrics["loss_history"] = {"1": {"epoch": [100, 200], "loss": [0.5, 0.25]}}
    with open(os.path.join(folder, "metrics.json"), "w") as f:
        json.dump(metrics, f)
    return str(folder)


def test_run_figures_are_redrawn_from_metrics_json(tmp_path, srf, rng, caplog):
    run = fake_run(tmp_path / "run", "udaln", rng.random((10, 10, 10)), (0, 0, 0, 0), srf)
    assert figures.main([run]) == 0
    assert png_shape(os.path.join(run, "psf_srf.png")) == (600, 1200)
    assert png_shape(os.path.join(run, "loss_curves.png")) == (350, 400)
    old = fake_run(tmp_path / "old", "udaln", rng.random((10, 10, 10)), (0, 0, 0, 0), srf, history=False)
    assert figures.save_run_figures(old) == [os.path.join(os.path.abspath(old), "psf_srf.png")]
    assert "no loss history" in caplog.text
    (tmp_path / "unfinished").mkdir()
    assert figures.main([str(tmp_path / "unfinished")]) == 1
    assert "no metrics.json, so not a finished run" in caplog.text


def test_compare_runs_against_the_reference_cropped_as_the_runs(tmp_path, srf, rng):
    full = 0.05 + 0.9 * rng.random((13, 12, 10))  # reflectance: the scaling rule's factor is 1
    reference = full[1:11, 1:11].astype(np.float32).astype(np.float64)  # Wald's protocol at r = 5 crops to 10 x 10
    scipy.io.savemat(tmp_path / "ref.mat", {"REF": full})
    runs = [fake_run(tmp_path / name, method, reference * gain, (1, 2, 1, 1), srf, factor=factor)
            for name, method, gain, factor in (("a", "udaln", 1.02, 1.0), ("b", "udaln", 0.97, 1.0),
                                               ("x10000", "pfs2c2", 10000.0, 10000.0))]
    np.save(tmp_path / "gsa.npy", reference + 0.01)
    out = tmp_path / "fig3.png"
    assert figures.main(["--compare", *runs, str(tmp_path / "gsa.npy"), "--reference", str(tmp_path / "ref.mat"),
                         "--out", str(out)]) == 0
    assert png_shape(out) == (900, 5 * 300 + 100)
    drawn = figures.save_run_comparison(out, runs, str(tmp_path / "ref.mat"))
    assert list(drawn.panels) == ["reference", "a", "b", "pfs2c2"]  # two runs of one method: named by folder
    expected = loop_mrae(reference, (reference * 1.02).astype(np.float32).astype(np.float64), 1e-3 * reference.max())
    np.testing.assert_allclose(drawn.panels["a"]["MRAE"], expected, rtol=1e-6)
    # A run of the cube in units x 10000 is brought back by its factor: the exact image again.
    assert np.nanmax(drawn.panels["pfs2c2"]["MRAE"]) < 1e-6
    scipy.io.savemat(tmp_path / "small.mat", {"REF": full[:8]})
    with pytest.raises(figures.DataError, match="the fused image is 10 x 10 x 10 but the reference"):
        figures.save_run_comparison(out, runs, str(tmp_path / "small.mat"))


def test_compare_takes_labels_and_the_reference_files_band_centres(tmp_path, srf, rng, monkeypatch):
    reference = 0.05 + 0.9 * rng.random((10, 10, 10))
    wavelengths = np.linspace(420.0, 700.0, 10)
    scipy.io.savemat(tmp_path / "ref.mat", {"REF": reference, "wavelengths": wavelengths[None]})
    run = fake_run(tmp_path / "run", "udaln", reference, (0, 0, 0, 0), srf)
    os.makedirs(tmp_path / "fuse")
    np.save(tmp_path / "fuse" / "My_Out.npy", reference + 0.01)
    np.save(tmp_path / "My_Out.npy", reference - 0.01)
    seen = {}
    monkeypatch.setattr(figures, "save_comparison_figure",
                        lambda path, ref, outputs, wavelengths=None, title="": seen.update(
                            labels=list(outputs), wavelengths=wavelengths))
    figures.save_run_comparison(tmp_path / "fig3.png", [f"UDALN (papers' model)={run}",
                                                        f"FUSE={tmp_path / 'fuse' / 'My_Out.npy'}",
                                                        f"GSA={tmp_path / 'My_Out.npy'}"], str(tmp_path / "ref.mat"))
    assert seen["labels"] == ["UDALN (papers' model)", "FUSE", "GSA"]
    np.testing.assert_allclose(seen["wavelengths"], wavelengths)


# ----------------------------------------------------------------------------- the loss history of a run

def test_record_loss_replaces_the_epochs_a_resumed_stage_runs_again():
    monitor = Monitor(None, None, None)
    for epoch, loss in ((100, 3.0), (200, 2.0), (300, 1.0), (200, 2.5)):
        monitor.record_loss(1, epoch, loss)
    monitor.record_loss(2, 100, 0.5)
    assert monitor.loss_history == {"1": {"epoch": [100, 200], "loss": [3.0, 2.5]},
                                    "2": {"epoch": [100], "loss": [0.5]}}


CHECK_EVERY = 10


def traced_run(patch, argv, seen, monitors):
    """Run ``argv`` with the loss read every CHECK_EVERY epochs, recording every loss of every epoch in
    ``seen`` ({stage: {epoch: loss}}) and the run's Monitor in ``monitors``; returns the exit code."""
    patch.setattr(func, "LOSS_CHECK_EVERY", CHECK_EVERY)
    begin_stage, write_results = func.TrainingSession.begin_stage, fusion.run.write_results

    def traced_begin(self, number, make_loss):
        loss_fn, done = begin_stage(self, number, make_loss)
        epochs = iter(range(done + 1, 10 ** 9))

        def loss():
            value = loss_fn()
            seen.setdefault(str(number), {})[next(epochs)] = value.item()
            return value
        return loss, done

    def keep_monitor(args, pair, nets, monitor, *rest):
        monitors.append(monitor)
        return write_results(args, pair, nets, monitor, *rest)

    patch.setattr(func.TrainingSession, "begin_stage", traced_begin)
    patch.setattr(fusion.run, "write_results", keep_monitor)
    return train_all_special.main(argv)


@pytest.fixture(scope="module")
def uninterrupted(crop_data, tmp_path_factory):
    """A tiny run, not interrupted: (its folder, every epoch's loss, its Monitor)."""
    checkpoints = tmp_path_factory.mktemp("checkpoints")
    seen, monitors = {}, []
    with pytest.MonkeyPatch.context() as patch:
        assert traced_run(patch, short_run_argv(crop_data, checkpoints, *TINY_SCHEDULE), seen, monitors) == 0
    [name] = os.listdir(checkpoints)
    return os.path.join(checkpoints, name), seen, monitors[0]


def test_a_run_records_its_loss_every_few_epochs(uninterrupted):
    folder, seen, monitor = uninterrupted
    history = monitor.loss_history
    assert sorted(history) == ["1", "2", "3"]
    for stage, epochs in (("1", 60), ("2", 60), ("3", 30)):
        assert history[stage]["epoch"] == list(range(CHECK_EVERY, epochs + 1, CHECK_EVERY))
        assert history[stage]["loss"] == [seen[stage][e] for e in history[stage]["epoch"]]


def test_metrics_json_holds_the_loss_history(uninterrupted):
    folder, _, monitor = uninterrupted
    with open(os.path.join(folder, "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["loss_history"] == monitor.loss_history


@pytest.mark.usefixtures("default_signal_handlers")
def test_a_resumed_run_keeps_the_history_of_an_uninterrupted_one(crop_data, tmp_path, uninterrupted, monkeypatch):
    folder, _, monitor = uninterrupted
    argv = short_run_argv(crop_data, tmp_path, *TINY_SCHEDULE)
    leave_step = func.TrainingSession.leave_step

    def stop_at_stage_2_epoch_25(self, epoch):
        if self.run is not None and self.stage == 2 and epoch == 25:
            signal.raise_signal(signal.SIGTERM)
        leave_step(self, epoch)

    with monkeypatch.context() as patch:
        patch.setattr(func.TrainingSession, "leave_step", stop_at_stage_2_epoch_25)
        assert traced_run(patch, argv, {}, []) == 143
    [name] = os.listdir(tmp_path)
    stopped = os.path.join(tmp_path, name)
    state = torch.load(os.path.join(stopped, "training_state.pt"), weights_only=True)
    assert state["loss_history"]["1"] == monitor.loss_history["1"]
    assert state["loss_history"]["2"]["epoch"] == [10, 20]
    resumed = []
    with monkeypatch.context() as patch:
        assert traced_run(patch, ["--resume", stopped], {}, resumed) == 0
    assert resumed[0].loss_history == monitor.loss_history
    np.testing.assert_array_equal(scipy.io.loadmat(os.path.join(stopped, "My_Out.mat"))["Out"],
                                  scipy.io.loadmat(os.path.join(folder, "My_Out.mat"))["Out"])
