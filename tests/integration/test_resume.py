"""Runs that survive: interruption (SIGINT, SIGTERM, Ctrl-C), checkpoint and resume to the same bits,
--overwrite that never loses the earlier run, out-of-memory reports."""
import json
import os
import signal

import numpy as np
import pytest
import scipy.io
import torch
from conftest import short_run_argv

import func
import fusion.memory
import fusion.pair
import fusion.run
import fusion.run_folder
import train_all_special
from fusion.monitor import Monitor

# Shorter than conftest's schedule: a run takes well under a second or two on the 40 x 40 crop.
TINY = ["--epoch_stage1", "60", "--decay_begin_epoch_stage1", "30", "--epoch_stage2", "60",
        "--decay_begin_epoch_stage2", "30", "--epoch_stage3", "40", "--decay_begin_epoch_stage3", "20",
        "--eval_every", "20"]


@pytest.fixture
def argv(crop_data, tmp_path):
    return lambda *extra: short_run_argv(crop_data, tmp_path / "checkpoints", *TINY, *extra)


def stop_at(monkeypatch, stage, epoch, action, after=False):
    """Call ``action()`` once the optimisers have stepped for ``epoch`` of ``stage``: before the session
    records the epoch and looks at the signals (a signal sent there is acted on at the end of that
    epoch), or ``after`` it."""
    original = func.TrainingSession.leave_step

    def leave_step(self, e):
        now = self.run is not None and self.stage == stage and e == epoch
        if now and not after:
            action()
        original(self, e)
        if now and after:
            action()

    monkeypatch.setattr(func.TrainingSession, "leave_step", leave_step)


def only_folder(checkpoints):
    [name] = [n for n in os.listdir(checkpoints) if not n.startswith(".")]
    return os.path.join(checkpoints, name)


def output(folder):
    return scipy.io.loadmat(os.path.join(folder, "My_Out.mat"))["Out"]


def uninterrupted(argv, tmp_path, *extra):
    args = train_all_special.get_args(argv(*extra))
    args.checkpoints_dir = str(tmp_path / "reference")
    return output(fusion.run.fuse(args).path)


@pytest.mark.usefixtures("default_signal_handlers")
@pytest.mark.parametrize("method, stage, epoch, signum", [
    ("udaln", 2, 25, signal.SIGTERM),
    ("pfs2c2", 3, 15, signal.SIGINT),
])
def test_a_signal_saves_a_checkpoint_and_resuming_gives_the_same_bits(argv, tmp_path, monkeypatch, caplog,
                                                                      method, stage, epoch, signum):
    expected = uninterrupted(argv, tmp_path, "--method", method)
    with monkeypatch.context() as patch:
        stop_at(patch, stage, epoch, lambda: signal.raise_signal(signum))
        code = train_all_special.main(argv("--method", method))
    assert code == {signal.SIGTERM: 143, signal.SIGINT: 130}[signum]
    folder = only_folder(tmp_path / "checkpoints")
    files = set(os.listdir(folder))
    assert "training_state.pt" in files and "metrics.json" not in files and "My_Out.mat" not in files
    precision = open(os.path.join(folder, "precision.txt")).read()
    assert f"interrupted at stage {stage}, epoch {epoch} ({signal.Signals(signum).name})" in precision
    assert f"--resume {folder}" in caplog.text
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler lives only while training runs

    state = torch.load(os.path.join(folder, "training_state.pt"), weights_only=True)
    assert (state["stage"], state["epoch"]) == (stage, epoch)
    assert sorted(state["stage_results"]) == list(range(1, stage))
    assert state["options"]["method"] == method

    assert train_all_special.main(["--resume", folder]) == 0
    assert only_folder(tmp_path / "checkpoints") == folder
    assert np.array_equal(output(folder), expected)
    files = set(os.listdir(folder))
    assert "metrics.json" in files and "training_state.pt" not in files
    metrics = json.load(open(os.path.join(folder, "metrics.json")))
    assert sorted(metrics["stage_results"]) == ["1", "2", "3"]
    precision = open(os.path.join(folder, "precision.txt")).read()
    assert f"resumed at stage {stage}, epoch {epoch}" in precision
    assert all(precision.count(f"results in Stage {s}") == 1 for s in (1, 2, 3))


@pytest.mark.usefixtures("default_signal_handlers")
def test_the_auto_schedule_resumes_to_the_same_bits(argv, tmp_path, monkeypatch):
    # Windows of 5 epochs, a patience of 2 and a warm-up of 1: plateaus within the tiny schedule's 40-60 epochs.
    monkeypatch.setattr(func, "PLATEAU_WINDOW", 5)
    monkeypatch.setattr(func, "PLATEAU_PATIENCE", 2)
    monkeypatch.setattr(func, "PLATEAU_WARMUP", 1)
    expected = uninterrupted(argv, tmp_path, "--schedule", "auto")
    reference = json.load(open(os.path.join(only_folder(tmp_path / "reference"), "metrics.json")))
    schedules = {s: r["schedule"] for s, r in reference["stage_results"].items()}
    assert all(0 < s["best_epoch"] <= s["epochs_run"] <= 60 for s in schedules.values())
    assert schedules["1"]["rate_lowered_after"] == [45] and schedules["1"]["epochs_run"] == 55  # a plateau ends it
    with monkeypatch.context() as patch:
        stop_at(patch, 1, 52, lambda: signal.raise_signal(signal.SIGTERM))  # mid-window, at the second rate
        assert train_all_special.main(argv("--schedule", "auto")) == 143
    folder = only_folder(tmp_path / "checkpoints")
    assert folder.endswith("_autoSchedule")
    plateau = torch.load(os.path.join(folder, "training_state.pt"), weights_only=True)["plateau"]
    assert (plateau["level"], plateau["window_epochs"]) == (1, 2)
    assert train_all_special.main(["--resume", folder]) == 0
    assert np.array_equal(output(folder), expected)
    metrics = json.load(open(os.path.join(folder, "metrics.json")))
    assert {s: r["schedule"] for s, r in metrics["stage_results"].items()} == schedules


@pytest.mark.usefixtures("default_signal_handlers")
@pytest.mark.parametrize("when", ["last epoch", "between stages"])
def test_interrupted_at_a_stage_boundary(argv, tmp_path, monkeypatch, when):
    """At the last epoch of stage 1 (resumed: only its final evaluation is left) and after stage 1 closed."""
    expected = uninterrupted(argv, tmp_path)
    with monkeypatch.context() as patch:
        if when == "last epoch":
            stop_at(patch, 1, 60, lambda: signal.raise_signal(signal.SIGTERM))
        else:
            close_stage = Monitor.close_stage

            def close_then_signal(self, stage, *args):
                close_stage(self, stage, *args)
                if stage == 1:
                    signal.raise_signal(signal.SIGTERM)

            patch.setattr(Monitor, "close_stage", close_then_signal)
        assert train_all_special.main(argv()) == 143
    folder = only_folder(tmp_path / "checkpoints")
    precision = open(os.path.join(folder, "precision.txt")).read()
    stopped = "at stage 1, epoch 60" if when == "last epoch" else "after stage 1"
    assert f"interrupted {stopped} (SIGTERM)" in precision
    assert train_all_special.main(["--resume", folder]) == 0
    assert np.array_equal(output(folder), expected)
    precision = open(os.path.join(folder, "precision.txt")).read()
    assert all(precision.count(f"results in Stage {s}") == 1 for s in (1, 2, 3))


def test_a_hard_ctrl_c_between_steps_is_resumable_too(argv, tmp_path, monkeypatch):
    """A KeyboardInterrupt raised outside the optimiser steps (a second Ctrl-C) still leaves a consistent
    checkpoint; uds2c2 has a GCE module and SCFConv's dynamic PSF to restore as well."""
    uds2c2 = ("--method", "uds2c2", "--scfconv", "yes", "--scf_place", "spatial")
    expected = uninterrupted(argv, tmp_path, *uds2c2)

    def ctrl_c():
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        stop_at(patch, 1, 10, ctrl_c, after=True)
        assert train_all_special.main(argv(*uds2c2)) == 130
    folder = only_folder(tmp_path / "checkpoints")
    state = torch.load(os.path.join(folder, "training_state.pt"), weights_only=True)
    assert (state["stage"], state["epoch"]) == (1, 10)
    assert train_all_special.main(["--resume", folder]) == 0  # the same (per-stage) threads as the first run
    assert np.array_equal(output(folder), expected)


def test_periodic_checkpoints_and_a_run_killed_after_its_last_stage(argv, tmp_path, monkeypatch):
    """--checkpoint_every (minutes) saves during training; a run killed while writing its results
    resumes straight to them."""
    seen = []
    with monkeypatch.context() as patch:
        stop_at(patch, 2, 30, lambda: seen.append(torch.load(os.path.join(
            only_folder(tmp_path / "checkpoints"), "training_state.pt"), weights_only=True)["epoch"]))

        def killed(*args, **kwargs):
            raise SystemExit("killed")

        patch.setattr(fusion.run_folder.RunFolder, "save_output", killed)
        with pytest.raises(SystemExit):
            train_all_special.main(argv("--checkpoint_every", "1e-9"))
    assert seen == [29]  # saved after every epoch: the previous one is on disk
    folder = only_folder(tmp_path / "checkpoints")
    state = torch.load(os.path.join(folder, "training_state.pt"), weights_only=True)
    assert state["stage"] is None  # every stage done
    assert train_all_special.main(["--resume", folder]) == 0
    assert np.array_equal(output(folder), uninterrupted(argv, tmp_path))


def test_resume_refuses_what_cannot_be_resumed(argv, tmp_path, caplog):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert train_all_special.main(["--resume", str(empty)]) == 1
    assert "no training checkpoint" in caplog.text and "start the run again without --resume" in caplog.text
    caplog.clear()
    assert train_all_special.main(argv()) == 0
    folder = only_folder(tmp_path / "checkpoints")
    assert train_all_special.main(["--resume", folder]) == 1
    assert "this run is complete (metrics.json is there)" in caplog.text
    caplog.clear()
    (empty / "training_state.pt").write_bytes(b"not a checkpoint")
    assert train_all_special.main(["--resume", str(empty)]) == 1
    assert "the training checkpoint cannot be read" in caplog.text
    caplog.clear()
    assert train_all_special.main(["--resume", str(empty), "--seed", "3", "--threads", "1"]) == 1
    assert "drop --seed (only --threads, --device, --checkpoint_every may be given again)" in caplog.text


@pytest.mark.usefixtures("default_signal_handlers")
def test_overwrite_keeps_the_earlier_run_until_the_new_one_is_complete(argv, tmp_path, monkeypatch):
    assert train_all_special.main(argv()) == 0
    folder = only_folder(tmp_path / "checkpoints")
    earlier = output(folder)
    with monkeypatch.context() as patch:
        stop_at(patch, 1, 20, lambda: signal.raise_signal(signal.SIGTERM))
        assert train_all_special.main(argv("--overwrite", "--seed", "2")) == 143
    assert np.array_equal(output(folder), earlier) and os.path.exists(os.path.join(folder, "metrics.json"))
    [temporary] = [n for n in os.listdir(tmp_path / "checkpoints") if n.startswith(".")]
    assert temporary.endswith(".incomplete")
    assert train_all_special.main(["--resume", str(tmp_path / "checkpoints" / temporary)]) == 0
    assert os.listdir(tmp_path / "checkpoints") == [os.path.basename(folder)]
    assert "training_state.pt" not in os.listdir(folder)
    precision = open(os.path.join(folder, "precision.txt")).read()
    assert precision.count("results in Stage 1") == 1 and "resumed at stage 1, epoch 20" in precision
    assert np.array_equal(output(folder), earlier)  # same options, same seed: the same bits


def test_out_of_memory_is_reported_in_one_message(argv, tmp_path, monkeypatch, caplog):
    """A real allocator failure in the stage-2 loss: one message naming the stage, the image size, the
    device and what to do; precision.txt says why the run stopped; no metrics.json."""
    calls = []
    l1 = fusion.pair.l1

    def loss(a, b):
        calls.append(a.shape)
        if a.shape[1] == 68 and len(calls) > 100:  # stage 2 (UDALN): SpeUnet's output against Y
            torch.empty(2 ** 45)
        return l1(a, b)

    monkeypatch.setattr(fusion.pair, "l1", loss)
    assert train_all_special.main(argv()) == 1
    message = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"][0]
    assert message.startswith("error: out of memory in Stage 2 on cpu fusing a 40 x 40 x 68 (LR-HSI 8 x 8, "
                              "HR-MSI 40 x 40 x 8): crop the image or fuse a smaller region")
    assert "DefaultCPUAllocator" not in caplog.text
    folder = only_folder(tmp_path / "checkpoints")
    assert "aborted: out of memory in Stage 2" in open(os.path.join(folder, "precision.txt")).read()
    assert "metrics.json" not in os.listdir(folder)


def test_a_run_that_cannot_fit_is_refused_before_anything_is_written(argv, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(fusion.memory, "available_memory", lambda device: 10 * 2 ** 20)
    assert train_all_special.main(argv()) == 1
    assert "not enough memory on cpu to fuse a 40 x 40 x 68 (LR-HSI 8 x 8, HR-MSI 40 x 40 x 8)" in caplog.text
    assert "GiB are available: crop the image or fuse a smaller region" in caplog.text
    assert not os.path.exists(tmp_path / "checkpoints")
