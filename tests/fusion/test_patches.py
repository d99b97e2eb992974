"""Patch-sampled training (fusion.patches, issue #12): aligned patches, seeded draws, no-data skipped,
resume to the same bits, end-to-end runs of each method, the automatic mode choice, and whole-image
mode left as it was."""
import argparse
import json
import logging
import os
import signal

import numpy as np
import pytest
import scipy.io
import torch
from conftest import short_run_argv

import func
import fusion.memory
import fusion.patches
import fusion.run
import train_all_special
from data_loader import DataError
from fusion.monitor import Monitor
from fusion.pair import Pair, mosaic
from fusion.patches import (MIN_VALID_FRACTION, PatchSampler, by_lr_rows, choose_training_mode, stream_seed,
                            validation_patches, window_share)
from methods import METHODS
from model import SpaDnet, SpeDnet

# A few epochs per stage: these runs test what patch training writes and reproduces, not its quality.
PATCH_RUN = ["--epoch_stage1", "20", "--decay_begin_epoch_stage1", "10", "--epoch_stage2", "20",
             "--decay_begin_epoch_stage2", "10", "--epoch_stage3", "12", "--decay_begin_epoch_stage3", "6",
             "--eval_every", "10", "--threads", "1", "--patch_size", "4", "--patches_per_step", "2"]


def synthetic_pair(h=7, w=9, r=3, c=5, cm=2, lr_valid=None, hr_valid=None, seed=0):
    """A random pair with odd sizes: Y 1 x c x h x w, Z 1 x cm x rh x rw, a reference and LR-MSI truths."""
    rng = np.random.default_rng(seed)
    return Pair(Y=torch.from_numpy(rng.random((1, c, h, w), dtype=np.float32)),
                Z=torch.from_numpy(rng.random((1, cm, r * h, r * w), dtype=np.float32)),
                X=rng.random((r * h, r * w, c)), lrmsi_frommsi=rng.random((h, w, cm)),
                lrmsi_fromlrhsi=rng.random((h, w, cm)), psf=np.full((r, r), 1 / r ** 2), srf=np.full((c, cm), 1 / c),
                sp_range=np.array([[0, c - 1]] * cm), scale=r, lr_valid=lr_valid, hr_valid=hr_valid)


def patch_args(**options):
    values = dict(training_mode="patches", patch_size=4, patches_per_step=3, seed=2, method="udaln",
                  device=torch.device("cpu"))
    values.update(options)
    return argparse.Namespace(**values)


# ----------------------------------------------------------------------------- geometry

def test_an_hr_patch_is_exactly_the_r_times_footprint_of_its_lr_patch_at_the_borders_too():
    pair = synthetic_pair(h=7, w=9, r=3)
    p = 4
    rows, cols = torch.tensor([0, 3, 0, 3, 2]), torch.tensor([0, 5, 5, 0, 1])  # 3 = h - P and 5 = w - P: the last
    view = pair.patches(rows, cols, p, p, truth=True)
    assert view.Y.shape == (5, 5, p, p) and view.Z.shape == (5, 2, 3 * p, 3 * p)
    for b, (i, j) in enumerate(zip(rows.tolist(), cols.tolist())):
        assert torch.equal(view.Y[b], pair.Y[0, :, i:i + p, j:j + p])
        assert torch.equal(view.Z[b], pair.Z[0, :, 3 * i:3 * (i + p), 3 * j:3 * (j + p)])
        assert np.array_equal(view.X[b * 3 * p:(b + 1) * 3 * p], pair.X[3 * i:3 * (i + p), 3 * j:3 * (j + p)])
        assert np.array_equal(view.lrmsi_frommsi[b * p:(b + 1) * p], pair.lrmsi_frommsi[i:i + p, j:j + p])
    assert np.array_equal(mosaic(view.Y), np.concatenate([pair.Y[0, :, i:i + p, j:j + p].permute(1, 2, 0).numpy()
                                                          for i, j in zip(rows.tolist(), cols.tolist())]))
    with pytest.raises(IndexError):  # past the last origin: patches are never padded
        pair.patches(torch.tensor([4]), torch.tensor([0]), p, p)


def test_drawn_origins_cover_every_position_from_zero_to_the_last_one():
    pair = synthetic_pair(h=7, w=9, r=3)
    sampler = PatchSampler(pair, 4, 200, seed=2, stream=1)
    rows, cols = sampler.origins(200)
    assert (int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max())) == (0, 3, 0, 5)
    assert len(set(zip(rows.tolist(), cols.tolist()))) == 4 * 6  # every one of the (7-4+1) x (9-4+1) positions


def test_a_patch_larger_than_the_image_covers_its_whole_extent():
    pair = synthetic_pair(h=5, w=9, r=2)
    view = PatchSampler(pair, 6, 2, seed=2, stream=1).draw()
    assert view.Y.shape == (2, 5, 5, 6) and view.Z.shape == (2, 2, 10, 12)
    assert torch.equal(view.Y[0], pair.Y[0, :, :, int(view.cols[0]):int(view.cols[0]) + 6])


def test_window_share_against_a_direct_count():
    valid = np.random.default_rng(1).random((12, 15)) > 0.4
    share = window_share(valid, (6, 4), 2, (4, 5))
    direct = np.array([[valid[2 * a:2 * a + 6, 2 * b:2 * b + 4].mean() for b in range(5)] for a in range(4)])
    assert np.allclose(share, direct)


# ----------------------------------------------------------------------------- seeds and state

def test_the_same_seed_draws_the_same_patches_another_seed_or_stage_others():
    pair = synthetic_pair(h=20, w=20, r=2)

    def draws(seed, stream):
        sampler = PatchSampler(pair, 4, 3, seed, stream)
        return [(v.rows.tolist(), v.cols.tolist()) for v in (sampler.draw() for _ in range(5))]

    assert draws(2, 1) == draws(2, 1)
    assert draws(2, 1) != draws(3, 1)
    assert draws(2, 1) != draws(2, 2)
    assert stream_seed(2, 1) != stream_seed(2, 2) and stream_seed(-1, 1) == stream_seed(2 ** 64 - 1, 1)


def test_the_sampler_state_continues_the_same_sequence():
    pair = synthetic_pair(h=20, w=20, r=2)
    sampler = PatchSampler(pair, 4, 3, seed=2, stream=1)
    for _ in range(4):
        sampler.draw()
    after_four = sampler.state_dict(4)
    expected = [sampler.draw().rows.tolist() for _ in range(3)]
    inside_a_step = sampler.state_dict(6)  # the 7th batch was drawn, its step not completed
    resumed = PatchSampler(pair, 4, 3, seed=2, stream=1)
    resumed.load_state_dict(after_four)
    assert [resumed.draw().rows.tolist() for _ in range(3)] == expected
    resumed.load_state_dict(inside_a_step)
    assert resumed.draw().rows.tolist() == expected[2] and resumed.draws == 7
    with pytest.raises(ValueError, match="cannot save its state after 2"):
        resumed.state_dict(2)
    resumed.load_state_dict(None)  # a stage not begun: its first batch
    assert resumed.draw().rows.tolist() == PatchSampler(pair, 4, 3, seed=2, stream=1).draw().rows.tolist()


# ----------------------------------------------------------------------------- no-data

def test_patches_that_are_mostly_no_data_are_never_drawn():
    lr_valid = np.ones((10, 12), dtype=bool)
    lr_valid[:6, :7] = False  # a no-data corner
    hr_valid = np.ones((20, 24), dtype=bool)
    hr_valid[:, 20:] = False  # HR no-data on the right: LR columns 10, 11
    pair = synthetic_pair(h=10, w=12, r=2, lr_valid=lr_valid, hr_valid=hr_valid)
    sampler = PatchSampler(pair, 4, 500, seed=2, stream=1)
    expected = {(i, j) for i in range(7) for j in range(9)
                if lr_valid[i:i + 4, j:j + 4].mean() >= MIN_VALID_FRACTION
                and hr_valid[2 * i:2 * i + 8, 2 * j:2 * j + 8].mean() >= MIN_VALID_FRACTION}
    assert 0 < len(expected) < 7 * 9 and sampler.positions == len(expected)
    view = sampler.draw()
    assert set(zip(view.rows.tolist(), view.cols.tolist())) == expected
    # each patch's loss weights are the slices of the sampler's: zero exactly where the pair has no data
    b, i, j = 0, int(view.rows[0]), int(view.cols[0])
    assert torch.equal(view.lr_mask[b, 0] > 0, torch.from_numpy(lr_valid[i:i + 4, j:j + 4]))
    assert torch.equal(view.lr_mask[b, 0], sampler.lr_weight[0, 0, i:i + 4, j:j + 4])
    a = torch.rand_like(view.Y)
    w = view.lr_mask.expand_as(a)
    assert torch.isclose(view.lr_l1(a, view.Y), ((a - view.Y).abs() * w).sum() / w.sum())


def test_coverage_weights_make_every_pixel_count_equally():
    # Summed over every allowed position, a pixel's weight times the patches covering it is the same
    # for all covered valid pixels: the batch loss is an unbiased estimate of the whole image's.
    lr_valid = np.ones((9, 11), dtype=bool)
    lr_valid[:5, :4] = False
    pair = synthetic_pair(h=9, w=11, r=2, lr_valid=lr_valid)
    sampler = PatchSampler(pair, 4, 1, seed=0, stream=1)
    allowed = range(sampler.positions) if sampler.allowed is None else sampler.allowed.tolist()
    total = np.zeros((9, 11))
    for flat in allowed:
        i, j = divmod(int(flat), sampler.grid[1])
        total[i:i + 4, j:j + 4] += sampler.lr_weight[0, 0, i:i + 4, j:j + 4].numpy()
    counted = total > 0
    assert np.allclose(total[counted], total[counted][0])
    assert not counted[~lr_valid].any()
    # an HR pixel is covered as often as its LR pixel (the HR-MSI's own mask, all valid here, applies)
    hr, lr_valid_hr = sampler.hr_weight[0, 0].numpy(), np.kron(lr_valid, np.ones((2, 2), bool))
    lr_as_hr = np.kron(sampler.lr_weight[0, 0].numpy(), np.ones((2, 2), np.float32))
    assert np.array_equal(hr[lr_valid_hr], lr_as_hr[lr_valid_hr])
    # and the HR terms are unbiased too, over every HR pixel a patch covers, under a masked LR pixel or not
    hr_total = np.zeros((18, 22))
    for flat in allowed:
        i, j = divmod(int(flat), sampler.grid[1])
        hr_total[2 * i:2 * i + 8, 2 * j:2 * j + 8] += hr[2 * i:2 * i + 8, 2 * j:2 * j + 8]
    hr_counted = hr_total > 0
    assert hr_counted[~lr_valid_hr].any()
    assert np.allclose(hr_total[hr_counted], total[counted][0])


def test_a_pair_without_a_patch_valid_enough_is_refused():
    lr_valid = np.zeros((6, 6), dtype=bool)
    lr_valid[::3, ::3] = True
    with pytest.raises(DataError, match="every 4 x 4 LR-pixel patch of the pair is less than 50% valid .* give "
                                        "a smaller --patch_size, or --training_mode whole"):
        PatchSampler(synthetic_pair(h=6, w=6, r=2, lr_valid=lr_valid), 4, 2, seed=2, stream=1)


# ----------------------------------------------------------------------------- losses and checks

def test_pfs2c2_stage3_targets_by_bands_of_rows_equal_the_whole_image_pass():
    pair = synthetic_pair(h=7, w=9, r=3)
    spa, spe = SpaDnet(3), SpeDnet(pair.sp_range, 5)
    with torch.no_grad():
        spa.psf.weight.copy_(torch.rand(1, 1, 3, 3))
        assert torch.allclose(by_lr_rows(spa, pair.Z, 3, rows=2), spa(pair.Z), rtol=1e-6, atol=0)
        assert torch.allclose(by_lr_rows(spe, pair.Y, 1, rows=3), spe(pair.Y), rtol=1e-6, atol=0)


@pytest.mark.parametrize("method", ["udaln", "pfs2c2", "uds2c2"])
def test_each_stage_loss_draws_one_fresh_batch_a_step(method, short_run_args):
    args = short_run_args("--method", method, "--patch_size", "3", "--patches_per_step", "2")
    pair = synthetic_pair(h=8, w=8, r=5, c=68, cm=8)
    pair.sp_range = np.array([[8 * k, 8 * k + 10] for k in range(8)])
    options = fusion.run.resolve_options(args, pair)[0]
    _, stages = METHODS[method](options, pair)
    for stage in stages:
        loss_fn = stage.make_loss()
        values = [float(loss_fn().detach()) for _ in range(3)]
        assert stage.sampler.draws == 3 and np.all(np.isfinite(values)) and len(set(values)) > 1


def test_the_checks_run_on_a_fixed_validation_subset(crop_data, short_run_args):
    args = short_run_args("--patch_size", "3")
    pair = fusion.run.load_pair(args)[0]
    options = fusion.run.resolve_options(args, pair)[0]
    validation = validation_patches(options, pair)
    again = validation_patches(options, pair)
    assert torch.equal(validation.rows, again.rows) and torch.equal(validation.cols, again.cols)
    assert len(set(zip(validation.rows.tolist(), validation.cols.tolist()))) == 8  # distinct positions
    nets, _ = METHODS["udaln"](options, pair)
    checks = {key: (truth, estimate) for key, _, truth, estimate, _ in
              Monitor(pair, nets, None, validation=validation).checks(("degradation", "inverse", "fusion"))}
    assert checks["fusion"][0].shape == checks["fusion"][1].shape == (8 * 15, 15, 68)
    assert checks["psf_test"][0].shape == (8 * 3, 3, 8)
    i, j = int(validation.rows[1]), int(validation.cols[1])
    assert np.array_equal(checks["fusion"][0][15:30], pair.X[5 * i:5 * i + 15, 5 * j:5 * j + 15])
    with torch.no_grad():
        x_hat = nets.fuse(pair.Z[:, :, 5 * i:5 * i + 15, 5 * j:5 * j + 15], None)[0].permute(1, 2, 0).numpy()
    assert np.allclose(checks["fusion"][1][15:30], x_hat, atol=1e-6)


# ----------------------------------------------------------------------------- choosing the mode

def test_choose_training_mode_thresholds(monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    pair = synthetic_pair(h=120, w=120, r=5, c=8, cm=2)  # HR 600 x 600; automatic P = 64 // 5 = 12
    monkeypatch.setattr(fusion.patches, "available_memory", lambda device: 2 ** 40)
    args = patch_args(training_mode="auto", patch_size=0, patches_per_step=4)
    assert choose_training_mode(args, pair) == ("whole", 0, None)
    assert "training on the whole image (the HR-MSI (600 x 600 pixels) and the memory" in caplog.text

    monkeypatch.setattr(fusion.patches, "PATCH_MODE_HR_PIXELS", 100 * 100)
    args = patch_args(training_mode="auto", patch_size=0, patches_per_step=2)
    assert choose_training_mode(args, pair) == ("patches", 12, 2 * 60 * 60)
    assert "training on patches (the HR-MSI has 600 x 600 pixels, more than 10000" in caplog.text
    assert "2 patches of 12 x 12 LR pixels (60 x 60 HR pixels) per step" in caplog.text

    monkeypatch.setattr(fusion.patches, "PATCH_MODE_HR_PIXELS", 1024 * 1024)
    whole = fusion.memory.estimate_memory("udaln", 600, 600, 8, 2, 5)[0]
    monkeypatch.setattr(fusion.patches, "available_memory", lambda device: whole)  # fits, but not within MEMORY_FRACTION
    args = patch_args(training_mode="auto", patch_size=0, patches_per_step=2)
    assert choose_training_mode(args, pair) == ("patches", 12, 2 * 60 * 60)
    assert "whole-image training needs about" in caplog.text and "more than 50% of the" in caplog.text

    args = patch_args(training_mode="auto", patch_size=0, patches_per_step=100)  # 100 x 60^2 >= 600^2
    assert choose_training_mode(args, pair) == ("whole", 0, None)
    assert "a batch of 100 patches would be as large as the image" in caplog.text

    args = patch_args(training_mode="auto", patch_size=6, patches_per_step=3)
    assert choose_training_mode(args, pair) == ("patches", 6, 3 * 30 * 30)
    assert "training on patches (--patch_size 6 given)" in caplog.text
    args = patch_args(training_mode="patches", patch_size=0, patches_per_step=3)
    assert choose_training_mode(args, pair) == ("patches", 12, 3 * 60 * 60)
    assert "training on patches (--training_mode patches)" in caplog.text


def test_the_memory_estimate_in_patch_mode_counts_the_batch_not_the_image():
    training, evaluation = fusion.memory.estimate_memory("udaln", 3000, 3000, 166, 8, 3, batch_pixels=4 * 255 * 255)
    kept = fusion.memory.kept_floats_per_pixel("udaln", 166, 8)
    hr, batch = 3000 * 3000, 4 * 255 * 255
    assert training == int(4 * (fusion.memory.BACKWARD_PEAK_FACTOR * kept * batch + 9 * hr + 2 * 166 * hr / 9
                                + (9 + 2 * 166 / 9) * batch))
    assert training < fusion.memory.estimate_memory("udaln", 3000, 3000, 166, 8, 3)[0] / 15  # 3.5 against 64 GB
    assert evaluation == fusion.memory.estimate_memory("udaln", 3000, 3000, 166, 8, 3)[1]
    shapes = ((1, 166, 1000, 1000), (1, 8, 3000, 3000))
    fusion.memory.check_memory("udaln", *shapes, 3, "cuda:0", available={"device": 2 ** 32, "host": 2 ** 42},
                      batch_pixels=batch)
    with pytest.raises(fusion.memory.OutOfMemory) as info:
        fusion.memory.check_memory("udaln", *shapes, 3, "cuda:0", available={"device": 2 ** 31, "host": 2 ** 42},
                          batch_pixels=batch)
    assert str(info.value).startswith("not enough memory on cuda:0 to fuse a 3000 x 3000 x 166 (LR-HSI 1000 x 1000, "
                                      "HR-MSI 3000 x 3000 x 8): training (udaln, stage 3, a batch of patches of "
                                      "260100 HR pixels) needs about ")
    assert str(info.value).endswith("run on the CPU with --device cpu (main memory is usually larger), or give a "
                                    "smaller --patch_size or --patches_per_step, or crop the image or fuse a "
                                    "smaller region")


def test_patch_options_are_checked(capsys):
    for argv, message in ((["--patch_size", "-1"], "--patch_size must be at least 1 LR-HSI pixel, or 0"),
                          (["--patches_per_step", "0"], "--patches_per_step must be at least 1 (got 0)"),
                          (["--training_mode", "whole", "--patch_size", "8"],
                           "--patch_size 8 trains on patches, --training_mode whole on the whole image: drop one")):
        with pytest.raises(SystemExit):
            train_all_special.get_args(argv)
        assert message in capsys.readouterr().err


# ----------------------------------------------------------------------------- runs

def output(folder):
    return scipy.io.loadmat(os.path.join(folder, "My_Out.mat"))["Out"]


def only_folder(checkpoints):
    [name] = [n for n in os.listdir(checkpoints) if not n.startswith(".")]
    return os.path.join(checkpoints, name)


@pytest.mark.parametrize("method, files", [
    ("udaln", {"spectral_upsample.pth"}),
    ("pfs2c2", {"SpeUp.pth", "SpaUp.pth"}),
    ("uds2c2", {"spectral_upsample.pth", "GCE.pth"}),
])
def test_a_patch_run_of_each_method_writes_a_complete_run_folder(crop_data, tmp_path, caplog, method, files):
    caplog.set_level(logging.INFO)
    argv = short_run_argv(crop_data, tmp_path / "checkpoints", *PATCH_RUN, "--method", method)
    run = fusion.run.fuse(train_all_special.get_args(argv))
    assert os.path.basename(run.path).endswith("_patch4x2")
    assert {"opt.txt", "precision.txt", "PSF.pth", "convolution_hr2msi.pth", "My_Out.mat", "metrics.json"} | files \
        <= set(os.listdir(run.path))
    assert output(run.path).shape == (40, 40, 68)
    metrics = json.load(open(run.file("metrics.json")))
    assert sorted(metrics["stage_results"]) == ["1", "2", "3"]
    assert (metrics["options"]["training_mode"], metrics["options"]["patch_size"]) == ("patches", 4)
    assert "training on patches (--patch_size 4 given): 2 patches of 4 x 4 LR pixels (20 x 20 HR pixels)" in caplog.text


@pytest.mark.usefixtures("default_signal_handlers")
def test_a_patch_run_stopped_and_resumed_gives_the_same_bits(crop_data, tmp_path, monkeypatch):
    """Stopped by SIGTERM at the end of a stage-2 epoch, and by a Ctrl-C inside a stage-3 step after its
    batch was drawn: both resume to the uninterrupted run's output, drawing the same patches."""
    argv = short_run_argv(crop_data, tmp_path / "checkpoints", *PATCH_RUN)
    reference = train_all_special.get_args(argv)
    reference.checkpoints_dir = str(tmp_path / "reference")
    expected = output(fusion.run.fuse(reference).path)

    leave_step = func.TrainingSession.leave_step

    def sigterm_at_stage2_epoch7(self, epoch):
        if self.run is not None and (self.stage, epoch) == (2, 7):
            signal.raise_signal(signal.SIGTERM)
        leave_step(self, epoch)

    with monkeypatch.context() as patch:
        patch.setattr(func.TrainingSession, "leave_step", sigterm_at_stage2_epoch7)
        assert train_all_special.main(argv) == 143
    folder = only_folder(tmp_path / "checkpoints")
    state = torch.load(os.path.join(folder, "training_state.pt"), weights_only=True)
    assert (state["stage"], state["epoch"], state["sampler"]["draws"]) == (2, 7, 7)

    draw = PatchSampler.draw
    draws = []

    def ctrl_c_in_the_fifth_stage3_step(self):
        view = draw(self)
        draws.append(self)
        if self.seed == stream_seed(2, 3) and self.draws == 5:
            raise KeyboardInterrupt
        return view

    with monkeypatch.context() as patch:
        patch.setattr(PatchSampler, "draw", ctrl_c_in_the_fifth_stage3_step)
        assert train_all_special.main(["--resume", folder]) == 130
    assert len(draws) == 13 + 5  # stage 2 went on from its 8th batch
    state = torch.load(os.path.join(folder, "training_state.pt"), weights_only=True)
    assert (state["stage"], state["epoch"], state["sampler"]["draws"]) == (3, 4, 4)

    assert train_all_special.main(["--resume", folder]) == 0
    assert np.array_equal(output(folder), expected)


def test_whole_image_mode_is_the_default_and_draws_no_patch(crop_data, tmp_path, monkeypatch, caplog):
    """The papers' sizes train on the whole image: no sampler is ever made, the run folder keeps its name,
    the checks see the whole pair, and the losses are those of the whole image."""
    caplog.set_level(logging.INFO)

    def no_sampler(*args, **kwargs):
        raise AssertionError("a PatchSampler in whole-image mode")

    monkeypatch.setattr(PatchSampler, "__init__", no_sampler)
    argv = short_run_argv(crop_data, tmp_path / "checkpoints", *PATCH_RUN[:-4])
    args = train_all_special.get_args(argv)
    pair = fusion.run.load_pair(args)[0]
    options = fusion.run.resolve_options(args, pair)[0]
    assert choose_training_mode(args, pair) == ("whole", 0, None) and options.training_mode == "whole"
    nets, stages = METHODS["udaln"](options, pair)
    assert Monitor(pair, nets, None).view is pair and all(stage.sampler is None for stage in stages)
    loss = stages[0].make_loss()()
    assert torch.equal(loss, pair.lr_l1(nets.to_msi(pair.Y), nets.spa(pair.Z)))

    run = fusion.run.fuse(train_all_special.get_args(argv))
    assert os.path.basename(run.path) == "crop_5_S1=0.001_20_10_S2=0.001_20_10_S3=6e-05_12_6"
    assert "training on the whole image" in caplog.text
    forced = train_all_special.get_args(argv + ["--training_mode", "whole"])
    forced.checkpoints_dir = str(tmp_path / "forced")
    assert np.array_equal(output(fusion.run.fuse(forced).path), output(run.path))
