"""Options: the original names and defaults, per-method schedules, derived values, bad values, -h,
default paths from another folder, and the per-stage thread choice."""
import dataclasses
import json
import os
import re

import pytest
import torch

import config
from config import AUTO_STAGE_THREADS, ROOT, RunOptions, get_args, threads_for_stage


def test_defaults_are_the_original_udaln_options():
    args = get_args([])
    assert (args.scale_factor, args.batchsize, args.gpu_ids) == (5, 1, "0")
    assert (args.isCal_SRF, args.isCal_PSF, args.seed, args.method, args.stages) == ("Yes", "Yes", 2, "udaln", "123")
    assert (args.lr_stage1, args.epoch_stage1, args.decay_begin_epoch_stage1) == (1e-3, 20000, 10000)
    assert (args.lr_stage2, args.epoch_stage2, args.decay_begin_epoch_stage2) == (1e-3, 30000, 20000)
    assert (args.lr_stage3, args.epoch_stage3, args.decay_begin_epoch_stage3) == (6e-5, 15000, 5000)
    assert args.sigma == pytest.approx(5 / 2.35482)
    assert args.data_name == "houston18"
    assert (args.threads, args.checkpoint_every, args.resume, args.lr_hsi, args.nodata) == (None, 5.0, None, None, None)
    assert args.schedule == "paper"


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


# ----------------------------------------------------------------------------- real pair

@pytest.fixture
def files(tmp_path):
    """Empty files standing for the real pair's inputs (get_args checks only that they exist)."""
    for name in ("y.npy", "z.npy", "wl.txt", "srf.csv", "bands.csv"):
        (tmp_path / name).write_text("")
    return lambda name: str(tmp_path / name)


def test_real_pair_keeps_scale_factor_none_until_resolved(files):
    args = get_args(["--lr_hsi", files("y.npy"), "--hr_msi", files("z.npy"), "--msi_sensor", "worldview2",
                     "--msi_bands_select", "blue, green,3", "--hsi_wavelengths", files("wl.txt"),
                     "--nodata", "-9999", "--reduced_resolution"])
    assert (args.scale_factor, args.sigma) == (None, None)
    assert (args.msi_bands_select, args.nodata, args.reduced_resolution) == ("blue, green,3", -9999.0, True)
    options = RunOptions.resolve(args, 8, "whole", 0)
    assert (options.scale_factor, options.sigma) == (8, pytest.approx(8 / 2.35482))
    assert (args.scale_factor, args.sigma) == (None, None)  # the parsed options are left as they were
    assert get_args(["--lr_hsi", files("y.npy"), "--hr_msi", files("z.npy"), "--scale_factor", "4"]).scale_factor == 4


def test_every_pair_gets_the_papers_schedule_unless_auto_is_asked_for(files):
    pair = ["--lr_hsi", files("y.npy"), "--hr_msi", files("z.npy")]
    assert get_args(pair).schedule == "paper" and get_args(pair + ["--schedule", "auto"]).schedule == "auto"


def test_real_pair_files_are_taken_from_the_current_folder(files, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = get_args(["--lr_hsi", "y.npy", "--hr_msi", "z.npy", "--srf", "srf.csv", "--srf_key", "R"])
    assert (args.lr_hsi, args.srf, args.srf_key) == (str(tmp_path / "y.npy"), str(tmp_path / "srf.csv"), "R")


REAL_PAIR_ERRORS = [
    (["--lr_hsi", "y.npy"], "--lr_hsi needs --hr_msi"),
    (["--hr_msi", "z.npy"], "--hr_msi needs --lr_hsi"),
    (["--lr_hsi", "y.npy", "--hr_msi", "missing.npy"], "--hr_msi missing.npy: file not found"),
    (["--lr_hsi", ".", "--hr_msi", "z.npy"], "--lr_hsi .: is a folder, not a file"),
    (["--lr_hsi", "y.npy", "--hr_msi", "z.npy", "--hsi_wavelengths", "nowhere.txt"],
     "--hsi_wavelengths nowhere.txt: file not found"),
    (["--lr_hsi", "y.npy", "--hr_msi", "z.npy", "--srf", "srf.csv", "--msi_sensor", "wv2"],
     "--srf and --msi_sensor each give the spectral response; keep one of them"),
    (["--lr_hsi", "y.npy", "--hr_msi", "z.npy", "--srf", "srf.csv", "--msi_sensor", "wv2", "--msi_bands",
      "bands.csv"], "--srf, --msi_sensor and --msi_bands each give the spectral response"),
    (["--lr_hsi", "y.npy", "--hr_msi", "z.npy", "--msi_sensor", "wv2", "--msi_bands", "bands.csv"],
     "--msi_sensor and --msi_bands each give"),
    (["--lr_hsi", "y.npy", "--hr_msi", "z.npy", "--srf", "srf.csv", "--msi_bands_select", "1,2"],
     "--msi_bands_select picks bands of --msi_sensor or --msi_bands"),
    (["--lr_hsi", "y.npy", "--hr_msi", "z.npy", "--msi_sensor", "wv2", "--msi_bands_select", "1,,2"],
     "has an empty item"),
    (["--lr_hsi", "y.npy", "--hr_msi", "z.npy", "--msi_sensor", "wv2", "--msi_bands_select", "0,1"],
     "indices are 1-based"),
    (["--lr_hsi", "y.npy", "--hr_msi", "z.npy", "--srf_key", "R"], "--srf_key names a variable in the --srf file"),
    (["--lr_hsi_key", "Y"], "--lr_hsi_key names a variable in the --lr_hsi file"),
    (["--hr_msi_key", "Z"], "give --hr_msi FILE or drop --hr_msi_key"),
    (["--reduced_resolution"], "--reduced_resolution needs a real pair"),
    (["--lr_hsi", "y.npy", "--hr_msi", "z.npy", "--cube_key", "REF"], "drop --cube_key"),
    (["--nodata", "nan"], "--nodata must be a finite value"),
    (["--lr_hsi", "y.npy", "--hr_msi", "z.npy", "--sim_psf_shift", "1"], "a real pair (--lr_hsi) has none"),
]


@pytest.mark.parametrize("argv, message", REAL_PAIR_ERRORS)
def test_real_pair_options_are_checked(argv, message, files, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        get_args(argv)
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert exit_info.value.code == 2
    assert "error: " in last_line and message in last_line  # the whole message on one line


# ----------------------------------------------------------------------------- numbers and folders

@pytest.mark.parametrize("argv, message", [
    (["--scale_factor", "1"], "scale_factor must be at least 2"),
    (["--stages", "13"], "--stages must be 123"),
    (["--epoch_stage2", "0"], "epoch_stage2 must be at least 1"),
    (["--decay_begin_epoch_stage1", "0"], "decay_begin_epoch_stage1 must be at least 1"),
    (["--isCal_PSF", "maybe"], "expected Yes or No"),
    (["--lr_stage1", "-0.001"], "--lr_stage1 must be a positive number (got -0.001)"),
    (["--lr_stage3", "0"], "--lr_stage3 must be a positive number"),
    (["--lr_stage2", "nan"], "--lr_stage2 must be a positive number"),
    (["--threads", "0"], "--threads must be at least 1 (got 0); omit it"),
    (["--threads", "-1"], "--threads must be at least 1"),
    (["--batchsize", "4"], "one image pair is fused at a time: --batchsize must be 1 (got 4)"),
    (["--checkpoint_every", "0"], "--checkpoint_every must be more than 0 minutes"),
    (["--checkpoint_every", "nan"], "--checkpoint_every must be more than 0 minutes"),
    (["--eval_every", "0"], "--eval_every must be at least 1"),
    (["--snr_hsi", "inf"], "--snr_hsi must be a finite SNR in dB"),
    (["--snr_msi", "nan"], "--snr_msi must be a finite SNR in dB"),
    (["--image_index", "-1"], "--image_index must be at least 0"),
    (["--scf_kernel", "2"], "--scf_kernel must be a positive odd number"),
    (["--method", "uds2c2", "--scfconv", "yes", "--scf_place", "spatial", "--isCal_PSF", "No"], "--scf_place spatial learns a per-band PSF"),
    (["--psf_size", "3"], "--psf_size must be at least the scale factor r = 5"),
    (["--scale_factor", "3", "--sim_psf_size", "2"], "--sim_psf_size must be at least the scale factor r = 3"),
    (["--psf_size", "-1"], "--psf_size must be at least the scale factor"),
    (["--psf_size", "7", "--isCal_PSF", "No"], "the known PSF, which has its own size: drop --psf_size"),
    (["--method", "uds2c2", "--scfconv", "yes", "--scf_place", "spatial", "--psf_size", "7"],
     "--scf_place spatial learns a per-band r x r PSF"),
    (["--method", "pfs2c2", "--pfs_lr_reset", "--schedule", "auto"],
     "--pfs_lr_reset reproduces the PFS2C2 authors' learning-rate script, which --schedule auto replaces"),
])
def test_bad_options_are_refused_with_a_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        get_args(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_checkpoints_dir_and_resume_must_be_folders(tmp_path, capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    for argv, message in [(["--checkpoints_dir", str(a_file)], "is a file, not a folder"),
                          (["--resume", str(tmp_path / "gone")], f"--resume {tmp_path / 'gone'}: no such folder"),
                          (["--resume", str(a_file)], "is a file, not a run folder")]:
        with pytest.raises(SystemExit):
            get_args(argv)
        assert message in capsys.readouterr().err
    args = get_args(["--resume", str(tmp_path), "--checkpoints_dir", str(tmp_path / "new"), "--checkpoint_every", "0.5"])
    assert (args.resume, args.checkpoint_every) == (str(tmp_path), 0.5)


# ----------------------------------------------------------------------------- paths

def test_default_paths_are_the_repository_folders_from_any_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = get_args([])
    assert args.default_datapath == os.path.join(ROOT, "data", "")
    assert args.sp_root_path == os.path.join(ROOT, "data", "spectral_response", "")
    assert args.checkpoints_dir == os.path.join(ROOT, "checkpoints")
    assert os.path.isfile(os.path.join(args.default_datapath, args.data_name, "houston18.mat"))
    assert os.path.isfile(os.path.join(args.sp_root_path, args.data_name + ".xls"))


def test_given_relative_paths_are_taken_from_the_current_folder(tmp_path, monkeypatch):
    """Resolved when parsed, so that opt.txt and a run resumed from another folder use the same files."""
    monkeypatch.chdir(tmp_path)
    args = get_args(["--default_datapath", "mine/", "--sp_root_path", "srfs", "--checkpoints_dir", "runs"])
    assert (args.default_datapath, args.sp_root_path, args.checkpoints_dir) == \
        (str(tmp_path / "mine"), str(tmp_path / "srfs"), str(tmp_path / "runs"))


def test_a_bad_option_is_one_line_on_stderr(capsys):
    with pytest.raises(SystemExit) as exit_info:
        get_args(["--lr_stage1", "-0.001"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--lr_stage1" in err and "-h lists every option" in err


# ----------------------------------------------------------------------------- -h

@pytest.fixture(scope="module")
def help_text():
    return config.build_parser().format_help()


def _blocks(text):
    """The help split into one block per option (and per group title)."""
    return re.split(r"\n(?=  -|\S)", text)


def test_help_shows_each_default_once_and_never_none(help_text):
    assert "(default: None)" not in help_text and "(default: none)" not in help_text
    for block in _blocks(help_text):
        assert block.count("default:") <= 1, block


def test_help_shows_each_methods_schedule(help_text):
    flat = " ".join(help_text.split())
    assert "stage 3 learning rate; default: 6e-5 (udaln, uds2c2), 1e-3 (pfs2c2)" in flat
    assert "stage 3 epochs; default: 15000 (udaln, uds2c2), 30000 (pfs2c2)" in flat
    assert "stage 1 learning rate; default: 1e-3 (every method)" in flat
    assert "default: 5 for a simulated pair; for a real pair, inferred from the image sizes" in flat
    assert "default: data/ in the repository folder" in flat
    assert "default: auto, per stage, as measured in docs/performance.md: udaln: 1 for stage 1, 1 for stage 2, all cores for stage 3; pfs2c2: all cores" in flat
    assert "(default: 1000)" in flat  # --eval_every keeps argparse's default


def test_help_lists_every_new_option(help_text):
    for option in ("--lr_hsi", "--hr_msi", "--lr_hsi_key", "--hr_msi_key", "--hsi_wavelengths", "--srf ",
                   "--srf_key", "--msi_sensor", "--msi_bands ", "--msi_bands_select", "--nodata",
                   "--reduced_resolution", "--mask_invalid", "--cube_key", "--checkpoint_every", "--resume",
                   "real pair (no reference)"):
        assert option in help_text


def test_dash_h_exits_cleanly(capsys):
    with pytest.raises(SystemExit) as exit_info:
        get_args(["-h"])
    assert exit_info.value.code == 0
    assert "--threads" in capsys.readouterr().out


# ----------------------------------------------------------------------------- threads

def test_run_options_are_frozen_and_record_every_parsed_option(monkeypatch):
    """opt.txt keeps exactly the options it always had; the resolved options cannot be changed."""
    monkeypatch.setattr(config, "usable_cpus", lambda: 4)
    args = get_args(["--method", "pfs2c2", "--scale_factor", "8", "--epoch_stage3", "7"])
    options = RunOptions.resolve(args, 8, "patches", 12)
    record = options.record()
    assert set(record) == set(vars(args))
    assert {k: v for k, v in record.items() if k not in ("training_mode", "patch_size")} == \
        {k: v for k, v in vars(args).items() if k not in ("training_mode", "patch_size")}
    assert (options.training_mode, options.patch_size, options.stage_threads) == ("patches", 12, {1: 4, 2: 1, 3: 4})
    assert options.stage_schedule(3) == {"lr": 1e-3, "epochs": 7, "decay_begin": 20000}
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.seed = 3


def test_threads_for_stage_given_value_wins():
    args = get_args(["--threads", "3"])
    assert [threads_for_stage(args, s) for s in (1, 2, 3)] == [3, 3, 3]


def test_threads_for_stage_auto_policy_capped_at_the_cores(monkeypatch):
    args = get_args([])
    monkeypatch.setattr(config, "usable_cpus", lambda: 4)
    assert [threads_for_stage(args, s) for s in (1, 2, 3)] == [1, 1, 4]
    assert [threads_for_stage(get_args(["--method", "pfs2c2"]), s) for s in (1, 2, 3)] == [4, 1, 4]
    monkeypatch.setitem(AUTO_STAGE_THREADS["udaln"], 2, 8)
    assert threads_for_stage(args, 2) == 4
    monkeypatch.setattr(config, "usable_cpus", lambda: 1)
    assert [threads_for_stage(args, s) for s in (1, 2, 3)] == [1, 1, 1]
    with pytest.raises(ValueError, match="stage must be one of"):
        threads_for_stage(args, 4)


def test_usable_cpus_is_the_affinity_mask():
    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert config.usable_cpus() == expected


def test_threads_benchmark_prints_a_line_per_stage_and_thread_count(capsys):
    from benchmarks import threads
    before = torch.get_num_threads()
    try:
        threads.main(["--size", "10", "--bands", "20", "--steps", "2", "--warmup", "1", "--threads", "1,2"])
    finally:
        torch.set_num_threads(before)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["stage"], r["threads"]) for r in lines] == [(s, t) for t in (1, 2) for s in (1, 2, 3)]
    assert all(r["ms_per_step"] > 0 and r["case"] == "10x10x20_r5" for r in lines)
