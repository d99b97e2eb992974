"""Training mechanics: the learning-rate schedule, the stage loop and the run folder."""
import os

import numpy as np
import pytest
import scipy.io
import torch

from config import get_args
from func import RunFolder, TrainingDiverged, _atomic_write, run_folder_name, stage_lr, train_stage


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


def test_stage_lr_reset_each_epoch_reproduces_the_pfs2c2_script():
    step = 1e-3 / (30000 - 20000 + 1)
    assert stage_lr(20000, 1e-3, 30000, 20000, reset_each_epoch=True) == 1e-3
    for epoch in (20001, 25000, 30000):
        assert stage_lr(epoch, 1e-3, 30000, 20000, reset_each_epoch=True) == pytest.approx(1e-3 - step)


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


def test_run_folder_name_is_the_original_naming():
    args = get_args(["--device", "cpu"])
    assert run_folder_name(args) == \
        "indian_pines_5_S1=0.001_20000_10000_S2=0.001_30000_20000_S3=6e-05_15000_5000"
    args = get_args(["--device", "cpu", "--data_name", "houston18", "--method", "pfs2c2", "--stages", "12"])
    assert run_folder_name(args) == \
        "pfs2c2_houston18_5_S1=0.001_20000_10000_S2=0.001_30000_20000_S3=0.001_30000_20000_stages12"


def test_run_folder_never_overwrites_an_earlier_run(tmp_path):
    args = get_args(["--device", "cpu", "--checkpoints_dir", str(tmp_path)])
    first = RunFolder.create(args)
    first.append_precision("first run")
    second = RunFolder.create(args)
    third = RunFolder.create(args)
    assert second.path == first.path + "_2" and third.path == first.path + "_3"
    assert open(first.file("precision.txt")).read() == "first run\n"
    first.save_output(np.zeros((2, 2, 2), dtype=np.float32))
    args.overwrite = True
    again = RunFolder.create(args)
    assert again.path == first.path
    assert not os.path.exists(first.file("precision.txt")) and not os.path.exists(first.file("My_Out.mat"))


def test_run_folder_files(tmp_path):
    args = get_args(["--device", "cpu", "--checkpoints_dir", str(tmp_path)])
    run = RunFolder.create(args)
    text = run.write_options(args)
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
        _atomic_write(str(tmp_path / "My_Out.mat"), fail)
    assert os.listdir(tmp_path) == []
