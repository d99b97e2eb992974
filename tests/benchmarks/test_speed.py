"""The speed benchmark: its output, and the vectorised networks against the original per-band
structure over real training steps (the speed work must not change results beyond rounding)."""
import json

import numpy as np
import pytest
import torch

from benchmarks import speed
from benchmarks.per_band_baseline import per_band_nets
from config import get_args
from data_loader import simulate_pair, support_range, to_tensor
from func import train_stage
from fusion.pair import Pair
from methods.udaln import udaln, udaln_stages
from model.degradation import gaussian_psf


def test_speed_prints_one_json_line(capsys):
    speed.main(["--size", "20", "--bands", "12", "--steps", "2", "--warmup", "1", "--breakdown"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert result["case"] == "20x20x12_r5" and result["device"] == "cpu"
    for key in ("s1_ms", "s2_ms", "s3_ms", "eval_ms", "peak_rss_mb", "threads"):
        assert result[key] > 0
    assert set(result["s3_breakdown_ms"]) == {"LR_terms_loss1_loss2", "SpeUnet_Z_fwd_bwd", "SpeDnet_X_loss3_fwd_bwd",
                                              "SpaDnet_X_loss4_fwd_bwd", "adam_steps"}


@pytest.fixture
def tiny_pair():
    reference = np.random.default_rng(0).random((30, 30, 12))
    srf = speed.benchmark_srf(12)
    psf = gaussian_psf(5, 5 / 2.35482)
    item = {k: to_tensor(v) for k, v in simulate_pair(reference, srf, psf, 5).items()}
    return Pair.from_item(item, psf, srf, support_range(srf), torch.device("cpu"))


def trained_output(pair, per_band):
    torch.manual_seed(0)
    args = get_args(["--device", "cpu"])
    nets, stages = udaln(args, pair)
    if per_band:
        nets = per_band_nets(nets)
        stages = udaln_stages(args, pair, nets)
    for stage in stages:
        train_stage(f"Stage {stage.number}", stage.optimizers, stage.make_loss(), lr=1e-3, epochs=30, decay_begin=20)
    with torch.no_grad():
        return nets.fuse(pair.Z, pair.Y), nets.spa.kernel, nets.spe.srf().detach()


def test_vectorised_training_equals_the_per_band_original_structure(tiny_pair):
    fast = trained_output(tiny_pair, per_band=False)
    original = trained_output(tiny_pair, per_band=True)
    for a, b in zip(fast, original):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
