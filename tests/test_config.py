"""Options: the original names and defaults, per-method schedules, derived values, bad values."""
import pytest
import torch

from config import get_args


def test_defaults_are_the_original_udaln_options():
    args = get_args([])
    assert (args.scale_factor, args.batchsize, args.gpu_ids, args.checkpoints_dir) == (5, 1, "0", "checkpoints")
    assert (args.isCal_SRF, args.isCal_PSF, args.seed, args.method, args.stages) == ("Yes", "Yes", 2, "udaln", "123")
    assert (args.lr_stage1, args.epoch_stage1, args.decay_begin_epoch_stage1) == (1e-3, 20000, 10000)
    assert (args.lr_stage2, args.epoch_stage2, args.decay_begin_epoch_stage2) == (1e-3, 30000, 20000)
    assert (args.lr_stage3, args.epoch_stage3, args.decay_begin_epoch_stage3) == (6e-5, 15000, 5000)
    assert args.sigma == pytest.approx(5 / 2.35482)
    assert args.data_name == "indian_pines"


def test_pfs2c2_schedule_and_explicit_options_win():
    args = get_args(["--method", "pfs2c2", "--epoch_stage3", "7"])
    assert (args.lr_stage3, args.epoch_stage3, args.decay_begin_epoch_stage3) == (1e-3, 7, 20000)


def test_device_choice():
    assert get_args(["--device", "cpu"]).device == torch.device("cpu")
    expected = "cuda:0" if torch.cuda.is_available() else "cpu"
    assert str(get_args([]).device) == expected


def test_yes_no_options_accept_common_spellings():
    args = get_args(["--isCal_SRF", "no", "--isCal_PSF", "YES"])
    assert (args.isCal_SRF, args.isCal_PSF) == ("No", "Yes")


@pytest.mark.parametrize("argv, message", [
    (["--scale_factor", "1"], "scale_factor must be at least 2"),
    (["--stages", "13"], "--stages must be 123"),
    (["--epoch_stage2", "0"], "epoch_stage2 must be at least 1"),
    (["--isCal_PSF", "maybe"], "expected Yes or No"),
])
def test_bad_options_are_refused_with_a_message(argv, message, capsys):
    with pytest.raises(SystemExit):
        get_args(argv)
    assert message in capsys.readouterr().err
