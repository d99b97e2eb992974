"""Training mechanics: the learning-rate schedule, the stage loop and the run folder."""
import copy
import logging
import os
import random
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import scipy.io
import torch

import func
import fusion.memory
from config import RunOptions, get_args
from func import TrainingDiverged, stage_lr, train_stage
from fusion.run_folder import RunFolder, run_folder_name
from imagery.writers import atomic_write


def original_schedule(lr, epochs, decay_begin):
    """The original training loop's rates: lr is used in an epoch, then lowered after it."""
    rates, current = [], lr
    for epoch in range(1, epochs + 1):
        rates.append(current)
        if epoch > decay_begin - 1:
            current = current - lr / (epochs - decay_begin + 1)
    return rates


@pytest.mark.parametrize("lr, epochs, decay_begin", [(1e-3, 20000, 10000), (6e-5, 15000, 5000), (1e-3, 10, 1)])
def test_stage_lr_equals_the_original_loop(lr, epochs, decay_begin):
    rates = original_schedule(lr, epochs, decay_begin)
    for epoch in (1, decay_begin - 1, decay_begin, decay_begin + 1, (decay_begin + epochs) // 2, epochs - 1, epochs):
        if epoch >= 1:
            # The original accumulates 10^4 float subtractions: agreement to 1e-11 of the initial rate.
            assert stage_lr(epoch, lr, epochs, decay_begin) == pytest.approx(rates[epoch - 1], rel=0, abs=lr * 1e-11)
    # The original's log: stage 1 ends at 1e-3 / 10001 = 9.999e-08.
    assert stage_lr(20000, 1e-3, 20000, 10000) == pytest.approx(9.999000099990001e-08)


def test_stage_lr_is_constant_when_decay_begins_after_the_last_epoch():
    assert [stage_lr(e, 1e-3, 5, 6) for e in range(1, 6)] == [1e-3] * 5
    assert original_schedule(1e-3, 5, 6) == [1e-3] * 5


def test_stage_lr_authors_script_reproduces_the_pfs2c2_script():
    step = 1e-3 / (30000 - 20000 + 1)
    assert stage_lr(20000, 1e-3, 30000, 20000, authors_script=True) is None  # the optimiser's own rate
    for epoch in (20001, 25000, 30000):
        assert stage_lr(epoch, 1e-3, 30000, 20000, authors_script=True) == pytest.approx(1e-3 - step)


def test_train_stage_authors_script_keeps_the_optimisers_rate_until_the_decay():
    # The PFS2C2 script: an optimiser created with 0.5 runs at 0.5 until the decay begins, then at
    # lr - lr / (epochs - decay_begin + 1) every epoch; the next stage starts from that rate.
    w = torch.nn.Parameter(torch.tensor([1.0]))
    opt = torch.optim.SGD([w], lr=0.5)
    seen = []

    def loss():
        seen.append(opt.param_groups[0]["lr"])
        return (w ** 2).sum()
    train_stage("t", [opt], loss, lr=0.1, epochs=10, decay_begin=5, authors_script=True)
    assert seen == [0.5] * 5 + [pytest.approx(0.1 - 0.1 / 6)] * 5
    seen.clear()
    train_stage("t", [opt], loss, lr=0.2, epochs=4, decay_begin=2, authors_script=True)
    assert seen == [pytest.approx(0.1 - 0.1 / 6)] * 2 + [pytest.approx(0.2 - 0.2 / 3)] * 2


def test_train_stage_uses_the_schedule_and_evaluates_on_time():
    w = torch.nn.Parameter(torch.tensor([1.0]))
    opt = torch.optim.SGD([w], lr=1.0)
    seen_lr, evaluated = [], []

    def loss():
        seen_lr.append(opt.param_groups[0]["lr"])
        return (w ** 2).sum()

    final = train_stage("t", [opt], loss, lr=0.1, epochs=10, decay_begin=5,
                        evaluate=lambda e, lr, last: evaluated.append((e, last)), eval_every=4)
    assert seen_lr == pytest.approx(original_schedule(0.1, 10, 5))
    assert evaluated == [(4, False), (8, False), (10, True)]
    assert final == pytest.approx((w.item() / (1 - 2 * seen_lr[-1])) ** 2)


def test_train_stage_stops_on_nan():
    w = torch.nn.Parameter(torch.tensor([1.0]))
    opt = torch.optim.SGD([w], lr=0.1)
    with pytest.raises(TrainingDiverged, match="nan at epoch 100"):
        train_stage("stage x", [opt], lambda: (w * float("nan")).sum(), lr=0.1, epochs=500, decay_begin=400)


def warm_up():
    """The epochs of a stage's warm-up (func.PLATEAU_WARMUP windows, not judged)."""
    return func.PLATEAU_WARMUP * func.PLATEAU_WINDOW


def scripted_stage(means, lr=0.01, epochs=10_000, start=None, decay_begin=None):
    """A stage whose loss, window by window (func.PLATEAU_WINDOW epochs) after the warm-up (a mean of 100, not
    judged), has the mean ``means[k]`` (the last repeated), while SGD moves w by -rate each step (its gradient
    is 1): w tells which epoch's state is kept. Returns (w, the rates seen, the evaluations, the
    PlateauSchedule); ``start``: (w, epoch, a PlateauSchedule's state) to continue from. w moves by float32
    steps over thousands of epochs: the tests compare it to 1e-3."""
    means = [100.0] * func.PLATEAU_WARMUP + list(means)
    w = torch.nn.Parameter(torch.tensor([0.0 if start is None else start[0]]))
    opt = torch.optim.SGD([w], lr=lr)
    rates, evaluated, epoch = [], [], [0 if start is None else start[1]]

    def loss():
        epoch[0] += 1
        rates.append(opt.param_groups[0]["lr"])
        k = min((epoch[0] - 1) // func.PLATEAU_WINDOW, len(means) - 1)
        return w.sum() - w.detach().sum() + means[k]

    def restore(state):
        with torch.no_grad():
            w.copy_(state["w"])

    decay_begin = epochs if decay_begin is None else decay_begin
    plateau = func.PlateauSchedule(lambda: {"w": w.detach().clone()}, restore)
    if start is not None:
        plateau.load_state_dict(start[2])
    train_stage("t", [opt], loss, lr=lr, epochs=epochs, decay_begin=decay_begin, plateau=plateau,
                start_epoch=epoch[0], evaluate=lambda e, rate, last: evaluated.append((e, last, w.item())),
                eval_every=500)
    return w, rates, evaluated, plateau




def test_plateau_schedule_lowers_the_rate_on_each_plateau_and_stops_at_the_last():
    window, patience, warm = func.PLATEAU_WINDOW, func.PLATEAU_PATIENCE, warm_up()
    # After the warm-up, each rate: one window sets its best, PATIENCE windows without improvement end it.
    # The loss falls once at the start of each lowered rate, so each finds a better state.
    per_rate = window * (1 + patience)
    w, rates, evaluated, plateau = scripted_stage([3.0] * (1 + patience) + [2.0] * (1 + patience) + [1.0])
    assert len(rates) == warm + func.PLATEAU_RATES * per_rate
    assert rates == pytest.approx([0.01 * func.PLATEAU_FACTOR ** (max(0, e - warm) // per_rate)
                                   for e in range(len(rates))])
    summary = plateau.summary(len(rates))
    assert summary["rate_lowered_after"] == [warm + per_rate, warm + 2 * per_rate] and summary["stopped_on_plateau"]
    assert summary["rate_factors"] == pytest.approx([1, func.PLATEAU_FACTOR, func.PLATEAU_FACTOR ** 2])
    # Each lowered rate restarts from the best state, the first window of the rate before: the state kept
    # is after one window at each rate, and it is the one evaluated last.
    assert summary["best_epoch"] == warm + 2 * per_rate + window
    kept = -0.01 * warm - (0.01 + 0.001 + 0.0001) * window
    assert evaluated[-1][:2] == (warm + 3 * per_rate, True) and evaluated[-1][2] == pytest.approx(kept, abs=1e-3)
    assert w.item() == pytest.approx(kept, abs=1e-3)


def test_plateau_schedule_judges_nothing_in_the_warm_up():
    # Falling then rising in the warm-up: no window of it is kept, none counts towards a plateau.
    window, warm = func.PLATEAU_WINDOW, warm_up()
    _, rates, _, plateau = scripted_stage([50.0], epochs=warm + window)
    assert plateau.best_epoch == warm + window and len(rates) == warm + window
    _, _, _, plateau = scripted_stage([50.0], epochs=warm)
    assert plateau.best_state is None and plateau.summary(warm)["best_mean_loss"] is None


def test_plateau_schedule_stops_when_a_lowered_rate_finds_nothing_better():
    window, patience, warm = func.PLATEAU_WINDOW, func.PLATEAU_PATIENCE, warm_up()
    w, rates, _, plateau = scripted_stage([1.0])  # a loss that never falls
    assert len(rates) == warm + (1 + 2 * patience) * window and plateau.stopped
    assert plateau.best_epoch == warm + window and w.item() == pytest.approx(-0.01 * (warm + window), abs=1e-3)


def test_plateau_schedule_keeps_the_best_state_not_the_last():
    # Means 10, 9, 8, 7, then 20 for ever: the state after the fourth window (w = -0.01 x its epoch) is kept.
    warm = warm_up()
    w, rates, evaluated, plateau = scripted_stage([10.0, 9.0, 8.0, 7.0, 20.0])
    assert plateau.best_epoch == warm + 400 and plateau.best == pytest.approx(7.0)
    assert w.item() == pytest.approx(-0.01 * (warm + 400), abs=1e-3) and evaluated[-1][2] == pytest.approx(w.item())
    # Improvements under PLATEAU_TOLERANCE (relative) do not reset the patience, but do move the best state.
    windows = 1 + 3 * func.PLATEAU_PATIENCE  # one to set the best, then a plateau at each of the three rates
    slow = [1.0 - 1e-5 * k for k in range(windows + 1)]
    _, rates, _, plateau = scripted_stage(slow)
    assert len(rates) == warm + windows * func.PLATEAU_WINDOW == plateau.best_epoch


def test_plateau_schedule_is_the_paper_schedule_until_a_plateau():
    # A loss falling 1 % a window never plateaus: the rates are the paper's, decay included, to its last epoch.
    _, rates, evaluated, plateau = scripted_stage([0.99 ** k for k in range(60)], epochs=4000, decay_begin=1000)
    assert rates == pytest.approx([stage_lr(e, 0.01, 4000, 1000) for e in range(1, 4001)])
    assert evaluated[-1][:2] == (4000, True) and plateau.summary(4000)["rate_lowered_after"] == []
    # With a plateau in the decay, the paper's decaying rate is lowered from there on.
    _, rates, _, plateau = scripted_stage([3.0, 2.0, 1.0], epochs=4000, decay_begin=300)
    lowered = plateau.summary(len(rates))["rate_lowered_after"][0]
    assert lowered == warm_up() + 300 + func.PLATEAU_WINDOW * func.PLATEAU_PATIENCE
    assert rates[lowered] == pytest.approx(0.1 * stage_lr(lowered + 1, 0.01, 4000, 300))


def test_plateau_schedule_stops_at_the_cap_with_its_best_state():
    warm = warm_up()
    w, rates, evaluated, plateau = scripted_stage([5.0, 4.0, 3.0, 2.0, 6.0], epochs=warm + 750)
    assert len(rates) == warm + 750 and not plateau.stopped and plateau.best_epoch == warm + 400
    assert evaluated[-1][:2] == (warm + 750, True) and w.item() == pytest.approx(-0.01 * (warm + 400), abs=1e-3)


def test_plateau_schedule_resumed_mid_window_takes_the_same_decisions():
    window, patience, warm = func.PLATEAU_WINDOW, func.PLATEAU_PATIENCE, warm_up()
    means = [10.0, 9.0, 8.0, 8.0, 7.0, 9.0, 9.0] + [8.0] * patience + [6.0]
    w, rates, evaluated, plateau = scripted_stage(means)
    # After the warm-up, window means 10, 9, 8, 8, 7 (the best, five windows in), then 9: the second rate
    # begins PATIENCE windows later, from the best state, and finds a better one. The same stage interrupted
    # a window and a half into the second rate, and continued from its state then, ends alike.
    best = warm + 500
    lowered = best + window * patience
    stop_at = lowered + window + window // 2
    interrupted = {}
    original_end = func.PlateauSchedule.end_epoch

    def end_epoch(self, epoch):
        done = original_end(self, epoch)
        if epoch == stop_at:
            interrupted["state"] = copy.deepcopy(self.state_dict())
            raise KeyboardInterrupt
        return done

    func.PlateauSchedule.end_epoch = end_epoch
    try:
        with pytest.raises(KeyboardInterrupt):
            scripted_stage(means)
    finally:
        func.PlateauSchedule.end_epoch = original_end
    assert plateau.rate_epochs[:2] == [0, lowered] and plateau.best_epoch > lowered
    assert interrupted["state"]["window_epochs"] == window // 2 and interrupted["state"]["level"] == 1
    w_at = -0.01 * best - 0.001 * (stop_at - lowered)
    w2, rates2, evaluated2, plateau2 = scripted_stage(means, start=(w_at, stop_at, interrupted["state"]))
    assert rates2 == pytest.approx(rates[stop_at:]) and plateau2.summary(0) == plateau.summary(0)
    assert w2.item() == pytest.approx(w.item(), abs=1e-3) and evaluated2[-1][:2] == evaluated[-1][:2]


def test_run_folder_name_is_the_original_naming():
    args = get_args(["--device", "cpu"])
    assert run_folder_name(args) == \
        "houston18_5_S1=0.001_20000_10000_S2=0.001_30000_20000_S3=6e-05_15000_5000"
    args = get_args(["--device", "cpu", "--data_name", "houston18", "--method", "pfs2c2", "--stages", "12"])
    assert run_folder_name(args) == "pfs2c2_houston18_5_S1=0.001_20000_10000_S2=0.001_30000_20000_stages12"
    args = get_args(["--device", "cpu", "--stages", "3"])
    assert run_folder_name(args) == "houston18_5_S3=6e-05_15000_5000_stages3"


SCHEDULE = "S1=0.001_20000_10000_S2=0.001_30000_20000_S3=6e-05_15000_5000"


@pytest.mark.parametrize("options, tokens", [
    (["--seed", "3"], "_seed3"),
    (["--isCal_PSF", "No"], "_knownPSF"),
    (["--isCal_PSF", "No", "--isCal_SRF", "no"], "_knownPSF_knownSRF"),
    (["--snr_hsi", "30", "--snr_msi", "35.5"], "_snrHSI30_snrMSI35.5"),
    (["--msi_gamma", "0.9", "--msi_gain_jitter", "0.05", "--msi_offset_jitter", "0.02"],
     "_gamma0.9_gainJitter0.05_offsetJitter0.02"),
    (["--pfs_lr_reset"], ""),                      # changes nothing for UDALN
    (["--gce", "no", "--scf_kernel", "1"], ""),   # UDS2C2 options, UDALN run
    (["--seed", "2", "--isCal_SRF", "Yes"], ""),  # defaults given explicitly
    (["--eval_every", "10", "--threads", "1"], ""),  # do not change the result
    (["--schedule", "auto"], "_autoSchedule"),
    (["--schedule", "paper"], ""),  # the default for a simulated pair
])
def test_run_folder_name_tokens(options, tokens):
    assert run_folder_name(get_args(["--device", "cpu", *options])) == f"houston18_5_{SCHEDULE}{tokens}"


def test_run_folder_name_method_tokens_cube_and_real_pair():
    uds = get_args(["--device", "cpu", "--method", "uds2c2"])
    ablation = get_args(["--device", "cpu", "--method", "uds2c2", "--gce", "no"])
    assert run_folder_name(uds) == f"uds2c2_houston18_5_{SCHEDULE}"
    assert run_folder_name(ablation) == f"uds2c2_houston18_5_{SCHEDULE}_noGCE"
    args = get_args(["--device", "cpu", "--method", "uds2c2", "--scfconv", "yes", "--scf_kernel", "3"])
    assert run_folder_name(args).endswith(f"{SCHEDULE}_SCFConv_k3")
    args = get_args(["--device", "cpu", "--method", "uds2c2", "--scfconv", "yes", "--scf_place", "spatial",
                     "--scf_attention", "sigmoid"])
    assert run_folder_name(args).endswith(f"{SCHEDULE}_SCFConv_scfSpatial_scfSigmoid")
    # UDS2C2 uses the normalised degradation model by default, simulated pair or not.
    assert uds.degradation == "normalised"
    args = get_args(["--device", "cpu", "--method", "uds2c2", "--degradation", "original"])
    assert run_folder_name(args) == f"uds2c2_houston18_5_{SCHEDULE}_originalDegradation"
    args = get_args(["--device", "cpu", "--method", "pfs2c2", "--pfs_lr_reset", "--stages", "12"])
    assert run_folder_name(args).endswith("_stages12_lrReset")
    args = get_args(["--device", "cpu", "--image_index", "2"])
    assert run_folder_name(args, cube="scene_b") == f"houston18_5_{SCHEDULE}_scene_b"
    assert run_folder_name(args) == f"houston18_5_{SCHEDULE}_image2"
    args = get_args(["--device", "cpu"])
    args.lr_hsi, args.scale_factor = "/data/flight 3/hyperion_lr.tif", 3
    assert run_folder_name(args).startswith("hyperion_lr_3_S1=")


def test_run_folder_never_overwrites_an_earlier_run(tmp_path):
    args = get_args(["--device", "cpu", "--checkpoints_dir", str(tmp_path)])
    first = RunFolder.create(args)
    first.append_precision("first run")
    second = RunFolder.create(args)
    third = RunFolder.create(args)
    assert second.path == first.path + "_2" and third.path == first.path + "_3"
    assert open(first.file("precision.txt")).read() == "first run\n"


def test_runs_started_together_never_share_a_folder(tmp_path):
    args = get_args(["--device", "cpu", "--checkpoints_dir", str(tmp_path)])
    barrier = threading.Barrier(8)

    def create():
        barrier.wait()
        return RunFolder.create(args).path

    with ThreadPoolExecutor(8) as pool:
        paths = list(pool.map(lambda _: create(), range(8)))
    assert len(set(paths)) == 8 and len(os.listdir(tmp_path)) == 8


def test_overwrite_replaces_the_earlier_run_only_when_complete(tmp_path):
    args = get_args(["--device", "cpu", "--checkpoints_dir", str(tmp_path)])
    first = RunFolder.create(args)
    first.save_output(np.zeros((2, 2, 2), dtype=np.float32))
    first.save_metrics({"run": 1})
    args.overwrite = True
    again = RunFolder.create(args)
    assert os.path.basename(again.path).startswith(".") and again.target == first.path
    assert os.path.dirname(again.path) == str(tmp_path) and oct(os.stat(again.path).st_mode & 0o777) != oct(0o700)
    again.append_precision("second run")
    again.save_metrics({"run": 2})
    assert open(first.file("metrics.json")).read() == '{\n  "run": 1\n}'  # untouched until complete
    open(again.file("training_state.pt"), "wb").close()
    again.complete()
    assert again.path == first.path and os.listdir(tmp_path) == [os.path.basename(first.path)]
    assert sorted(os.listdir(first.path)) == ["metrics.json", "precision.txt"]
    assert open(first.file("precision.txt")).read() == "second run\n"


def test_run_folder_files(tmp_path):
    args = get_args(["--device", "cpu", "--checkpoints_dir", str(tmp_path)])
    run = RunFolder.create(args)
    text = run.write_options(RunOptions.resolve(args, 5, "whole", 0))
    assert text.startswith("----------------- Options ---------------")
    assert "             scale_factor: 5" in text
    cube = np.random.default_rng(0).random((4, 5, 3)).astype(np.float32)
    run.save_output(cube)
    np.testing.assert_array_equal(scipy.io.loadmat(run.file("My_Out.mat"))["Out"], cube)
    run.save_metrics({"final": {"PSNR": np.float64(30.0)}, "psf": np.eye(2)})
    assert '"PSNR": 30.0' in open(run.file("metrics.json")).read()
    assert oct(os.stat(run.file("metrics.json")).st_mode & 0o777) != oct(0o600)


def test_interrupted_write_leaves_no_file(tmp_path):
    def fail(f):
        f.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(str(tmp_path / "My_Out.mat"), fail)
    assert os.listdir(tmp_path) == []


def test_train_stage_continues_from_start_epoch_and_reports_progress():
    w = torch.nn.Parameter(torch.tensor([1.0]))
    opt = torch.optim.SGD([w], lr=1.0)
    seen_lr, events = [], []

    class Progress:
        def enter_step(self):
            events.append("step")

        def leave_step(self, epoch):
            events.append(epoch)

    def loss():
        seen_lr.append(opt.param_groups[0]["lr"])
        return (w ** 2).sum()

    train_stage("t", [opt], loss, lr=0.1, epochs=10, decay_begin=5, start_epoch=6, progress=Progress())
    assert seen_lr == pytest.approx(original_schedule(0.1, 10, 5)[6:])
    assert events == ["step", 7, "step", 8, "step", 9, "step", 10]


def test_train_stage_resumed_after_its_last_step_still_evaluates():
    w = torch.nn.Parameter(torch.tensor([1.0]))
    evaluated = []
    train_stage("t", [torch.optim.SGD([w], lr=1.0)], lambda: (w ** 2).sum(), lr=0.1, epochs=10, decay_begin=5,
                evaluate=lambda e, lr, last: evaluated.append((e, last)), start_epoch=10)
    assert evaluated == [(10, True)] and w.item() == 1.0


def test_train_stage_logs_progress_lines_without_a_terminal(monkeypatch, caplog):
    monkeypatch.setattr(func, "LOG_EVERY_SECONDS", 0)
    w = torch.nn.Parameter(torch.tensor([1.0]))
    with caplog.at_level(logging.INFO):
        train_stage("Stage 2", [torch.optim.SGD([w], lr=0.1)], lambda: (w ** 2).sum(), lr=0.1, epochs=3,
                    decay_begin=5)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3 and lines[0].startswith("Stage 2: epoch 1/3, loss 1.000e+00, lr 1.00e-01, ")
    assert lines[2].startswith("Stage 2: epoch 3/3, loss 4.096e-01, lr 1.00e-01, ")  # w = 0.8^2 before epoch 3
    assert all(line.endswith(" epochs/s") for line in lines)


class _Monitor:
    stage_results = {1: {"epoch": 5, "lr": 0.5, "checks": {"fusion": {"PSNR": np.float64(30.0)}}}}
    seconds = 1.5
    loss_history = {}
    check_history = {}


def _session(tmp_path, state=None, every="5"):
    args = get_args(["--device", "cpu", "--checkpoints_dir", str(tmp_path), "--checkpoint_every", every])
    run = RunFolder(str(tmp_path))
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters(), lr=0.1)
    session = func.TrainingSession(run, RunOptions.resolve(args, 5, "whole", 0), state)
    session.attach({"net": net}, [opt, opt], _Monitor())
    return session, net, opt


def _step(net, opt):
    opt.zero_grad()
    net(torch.ones(1, 3)).sum().backward()
    opt.step()


def test_checkpoint_round_trip_restores_modules_optimisers_and_generators(tmp_path):
    session, net, opt = _session(tmp_path)
    loss_fn, done = session.begin_stage(2, lambda: "loss")
    assert (loss_fn, done) == ("loss", 0) and len(session.optimizers) == 1
    start = {k: v.clone() for k, v in net.state_dict().items()}
    _step(net, opt)
    session.leave_step(1)
    session.save()
    expected = (torch.rand(3), np.random.rand(), random.random())
    _step(net, opt)
    state = func.load_training_state(str(tmp_path))  # weights_only=True
    assert (state["stage"], state["epoch"]) == (2, 1) and state["options"]["device"] == "cpu"
    assert state["stage_results"][1]["checks"]["fusion"]["PSNR"] == 30.0

    resumed, net2, opt2 = _session(tmp_path, state)
    assert resumed.completed(1) and not resumed.completed(2)
    seen = []
    _, done = resumed.begin_stage(2, lambda: seen.append({k: v.clone() for k, v in net2.state_dict().items()}))
    assert done == 1
    assert all(torch.equal(seen[0][k], start[k]) for k in start)  # make_loss saw the stage's start
    assert (torch.rand(3).tolist(), np.random.rand(), random.random()) == (expected[0].tolist(), *expected[1:])
    _step(net2, opt2)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), net2.state_dict().values()))
    assert "resumed at stage 2, epoch 1" in open(os.path.join(tmp_path, "precision.txt")).read()


@pytest.mark.usefixtures("default_signal_handlers")
def test_a_pending_signal_stops_at_the_end_of_the_epoch_with_a_checkpoint(tmp_path):
    session, net, opt = _session(tmp_path)
    with pytest.raises(func.Interrupted) as info:
        with session.stop_signals():
            session.begin_stage(3, lambda: None)
            _step(net, opt)
            signal.raise_signal(signal.SIGTERM)
            session.leave_step(1)
    assert str(info.value) == "interrupted at stage 3, epoch 1 (SIGTERM)" and info.value.exit_code == 143
    assert info.value.how_to_resume() == \
        f"resume from stage 3, epoch 1 with: python train_all_special.py --resume {tmp_path}"
    assert func.load_training_state(str(tmp_path))["epoch"] == 1
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_a_ctrl_c_during_the_optimiser_step_saves_nothing_inconsistent(tmp_path):
    session, net, opt = _session(tmp_path)
    with pytest.raises(func.Interrupted) as info:
        with session.stop_signals():
            session.begin_stage(1, lambda: None)
            session.enter_step()
            raise KeyboardInterrupt
    assert info.value.exit_code == 130 and info.value.checkpoint is None
    assert info.value.how_to_resume() == "no checkpoint was saved yet: start the run again"
    assert not os.path.exists(os.path.join(tmp_path, "training_state.pt"))


def test_checkpoints_are_saved_every_checkpoint_every_minutes(tmp_path, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(func.time, "monotonic", lambda: clock[0])
    session, net, opt = _session(tmp_path, every="0.5")
    session.begin_stage(1, lambda: None)
    path = os.path.join(tmp_path, "training_state.pt")
    clock[0] += 29
    session.leave_step(1)
    assert not os.path.exists(path)
    clock[0] += 1
    session.leave_step(2)
    assert func.load_training_state(str(tmp_path))["epoch"] == 2
    clock[0] += 29
    session.leave_step(3)
    assert func.load_training_state(str(tmp_path))["epoch"] == 2


def test_resume_takes_the_checkpoints_options(tmp_path):
    state = {"options": {"method": "pfs2c2", "seed": 7, "threads": 3, "device": "cpu", "checkpoint_every": 1.0,
                         "resume": None}}
    args = get_args(["--device", "cpu", "--resume", str(tmp_path), "--threads", "1"])
    options = func.resumed_options(args, state, anew=("threads",))
    assert (options.method, options.seed, options.threads, options.checkpoint_every) == ("pfs2c2", 7, 1, 1.0)
    assert options.device == torch.device("cpu") and options.resume == str(tmp_path)
    assert options.scale_factor == args.scale_factor  # an option the checkpoint predates
    # --degradation came later: a checkpoint without it trained the papers' model, even for a real pair,
    # whose default is now the normalised model.
    args.degradation = "normalised"
    assert func.resumed_options(args, state, anew=("threads",)).degradation == "original"
    state["options"]["degradation"] = "normalised"
    assert func.resumed_options(args, state, anew=("threads",)).degradation == "normalised"
    # So did UDS2C2's SCFConv placement and attention start: a checkpoint without them had SCFConv in the
    # inverse mapping, its attentions started by plain sigmoids.
    old = func.resumed_options(args, state, anew=("threads",))
    assert (old.scf_place, old.scf_attention) == ("inverse", "sigmoid")
    if not torch.cuda.is_available():
        state["options"]["device"] = "cuda:0"
        with pytest.raises(func.DataError, match="trained on cuda:0, which this machine does not have; give "
                                                 "--device cpu"):
            func.resumed_options(args, state, anew=())


def test_resume_overrides_accepts_only_threads_device_and_checkpoint_every():
    assert func.resume_overrides(["--resume", "x"]) == ()
    assert func.resume_overrides(["--resume", "x", "--device", "cpu", "--checkpoint_every", "2"]) == \
        ("device", "checkpoint_every")
    with pytest.raises(func.DataError, match="drop --method, --overwrite"):
        func.resume_overrides(["--resume", "x", "--overwrite", "--method", "udaln", "--threads", "2"])


# ----------------------------------------------------------------------------- memory

def _kept_for_backward(args, stages):
    """Bytes of every storage autograd saves in one step of the largest of ``stages``, and H x W."""
    from data_loader import Dataset
    from fusion.pair import Pair
    from methods import METHODS
    pair = Pair.from_dataset(Dataset(args), 0, torch.device("cpu"))
    _, all_stages = METHODS[args.method](args, pair)
    counted = 0
    for stage in (s for s in all_stages if s.number in stages):
        loss_fn = stage.make_loss()
        saved = {}

        def pack(t):
            saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss_fn()
        counted = max(counted, sum(saved.values()))
    return counted, pair.Z.shape[2] * pair.Z.shape[3]


@pytest.mark.parametrize("method, stages", [("udaln", (3,)), ("pfs2c2", (1, 3)), ("uds2c2", (3,))])
def test_memory_estimate_counts_what_torch_keeps_for_backward(crop_data, short_run_args, tmp_path, method, stages):
    """Against an explicit count: the bytes autograd keeps in a step of the largest stage, per HR pixel
    (the difference between a 40 x 40 and a 120 x 120 image, so that the parameters' share drops out)."""
    os.makedirs(tmp_path / "data" / "tiled")
    np.save(tmp_path / "data" / "tiled" / "tiled.npy", np.tile(np.load(crop_data / "crop" / "crop.npy"), (3, 3, 1)))
    np.save(tmp_path / "data" / "tiled.npy", np.load(crop_data / "crop.npy"))
    small, small_px = _kept_for_backward(short_run_args("--method", method), stages)
    tiled = short_run_args("--method", method, "--default_datapath", str(tmp_path / "data"),
                           "--sp_root_path", str(tmp_path / "data"), "--data_name", "tiled")
    large, large_px = _kept_for_backward(tiled, stages)
    per_pixel = (large - small) / (large_px - small_px)
    estimate = 4 * fusion.memory.kept_floats_per_pixel(method, 68, 8)
    assert per_pixel <= estimate <= 1.4 * per_pixel
    training, evaluation = fusion.memory.estimate_memory(method, 40, 40, 68, 8, 5)
    assert training == int(4 * (fusion.memory.BACKWARD_PEAK_FACTOR * estimate / 4 * 1600 + 9 * 1600 + 2 * 68 * 64))
    assert evaluation == 8 * 10 * 1600 * 68 + 4 * 1600 * 68


def test_udaln_kept_floats_explicitly():
    # Cm = 8, C = 68: widths 8, 16, 32, 64, 68; 8 + 2 (16 + 32 + 64) + 4 * 68
    assert fusion.memory.kept_floats_per_pixel("udaln", 68, 8) == 504
    assert fusion.memory.kept_floats_per_pixel("pfs2c2", 68, 8) == 504 + 64  # the spectral attention's input


def test_check_memory_refuses_with_the_advice_for_the_device():
    shapes = ((1, 200, 400, 400), (1, 10, 2000, 2000))
    with pytest.raises(fusion.memory.OutOfMemory) as info:
        fusion.memory.check_memory("udaln", *shapes, 5, "cuda:0", available={"device": 2 ** 30, "host": 2 ** 40})
    message = str(info.value)
    assert message.startswith("not enough memory on cuda:0 to fuse a 2000 x 2000 x 200 (LR-HSI 400 x 400, "
                              "HR-MSI 2000 x 2000 x 10): training (udaln, stage 3) needs about ")
    assert message.endswith("GiB, 1.0 GiB are available: run on the CPU with --device cpu (main memory is "
                            "usually larger), or crop the image or fuse a smaller region")
    with pytest.raises(fusion.memory.OutOfMemory, match="on cpu .* crop the image or fuse a smaller region$"):
        fusion.memory.check_memory("udaln", *shapes, 5, "cpu", available={"device": 2 ** 40, "host": 2 ** 30})
    fusion.memory.check_memory("udaln", *shapes, 5, "cpu", available={"device": None, "host": None})
    fusion.memory.check_memory("udaln", *shapes, 5, "cpu", available={"device": 2 ** 40, "host": 2 ** 40})


def test_available_memory_and_out_of_memory_errors():
    free = fusion.memory.available_memory(torch.device("cpu"))
    assert 0 < free <= os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    with pytest.raises(RuntimeError) as info:
        torch.empty(2 ** 45)
    assert fusion.memory.is_out_of_memory(info.value) and fusion.memory.is_out_of_memory(MemoryError())
    assert not fusion.memory.is_out_of_memory(RuntimeError("shape mismatch"))
    assert fusion.memory.out_of_memory_message("Stage 3", "SIZE", "cuda:1", resume="/runs/a").endswith(
        "or crop the image or fuse a smaller region; to continue this run on the CPU: --resume /runs/a --device cpu")
