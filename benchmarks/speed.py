"""Speed benchmark: milliseconds per training step of each stage, at the UDALN paper's size by default.

    python benchmarks/speed.py [--size 240] [--bands 46] [--scale 5] [--method udaln] [--device cpu]

Builds a fixed random reference cube (size x size x bands), simulates the pair with the WorldView-2
SRF (data/spectral_response/houston18.xls for 46 bands, else a WorldView-2-like SRF from the band
ranges), then times the very stages train_all_special.py runs (the same loss functions, optimisers
and stage loop) after a warm-up, and one evaluation as done during training. Prints one JSON line.
"""
import argparse
import json
import os
import resource
import sys
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.per_band_baseline import per_band_nets  # noqa: E402
from config import get_args  # noqa: E402
from data_loader import load_srf, simulate_pair, srf_from_bands, support_range, to_tensor, validate_srf  # noqa: E402
from func import train_stage  # noqa: E402
from fusion.memory import tune_cpu_allocator  # noqa: E402
from fusion.monitor import Monitor  # noqa: E402
from fusion.pair import Pair  # noqa: E402
from imagery.sensors import band_ranges  # noqa: E402
from methods import METHODS  # noqa: E402
from methods.udaln import udaln_stages  # noqa: E402
from model.degradation import gaussian_psf  # noqa: E402


def benchmark_srf(bands):
    path = os.path.join(ROOT, "data", "spectral_response", "houston18.xls")
    if bands == 46:
        return validate_srf(load_srf(path), bands, path)
    return srf_from_bands(np.linspace(400, 1040, bands), band_ranges("worldview2"))


def ms_per_step(stage, epochs, warmup, args, device):
    loss_fn = stage.make_loss()
    n = stage.number
    lr, decay = getattr(args, f"lr_stage{n}"), getattr(args, f"decay_begin_epoch_stage{n}")
    train_stage("warm-up", stage.optimizers, loss_fn, lr, warmup, decay)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    train_stage(f"Stage {n}", stage.optimizers, loss_fn, lr, epochs, decay)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return 1000 * (time.perf_counter() - start) / epochs


def timed(fn, repeats=50, warmup=5):
    for _ in range(warmup):
        fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return round(1000 * (time.perf_counter() - start) / repeats, 3)


def stage3_breakdown(nets, pair, optimizers):
    """Where a UDALN stage-3 step goes: each part of the joint loss, forward and backward, alone."""
    l1 = torch.nn.functional.l1_loss
    Y, Z = pair.Y, pair.Z
    with torch.no_grad():
        x = nets.up(Z)
    x.requires_grad_()
    grad_x = torch.randn_like(x)

    def lr_terms():
        z_l2 = nets.spa(Z)
        (l1(nets.spe(Y), z_l2) + l1(nets.up(z_l2), Y)).backward()

    def step():
        for optimizer in optimizers:
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    return {"LR_terms_loss1_loss2": timed(lr_terms),
            "SpeUnet_Z_fwd_bwd": timed(lambda: nets.up(Z).backward(grad_x)),
            "SpeDnet_X_loss3_fwd_bwd": timed(lambda: l1(nets.spe(x), Z).backward()),
            "SpaDnet_X_loss4_fwd_bwd": timed(lambda: l1(nets.spa(x), Y).backward()),
            "adam_steps": timed(step)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=240)
    p.add_argument("--bands", type=int, default=46)
    p.add_argument("--scale", type=int, default=5)
    p.add_argument("--method", default="udaln")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--steps", type=int, default=200, help="timed steps per stage")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--breakdown", action="store_true",
                   help="also time each part of a UDALN stage-3 step alone (s3_breakdown_ms)")
    p.add_argument("--per_band_baseline", action="store_true",
                   help="time UDALN as the original code runs it: per-band networks, the default memory "
                        "allocator (the 'before' figure)")
    opts = p.parse_args(argv)
    if opts.threads:
        torch.set_num_threads(opts.threads)
    args = get_args(["--method", opts.method, "--scale_factor", str(opts.scale), "--device", opts.device])
    if args.device.type == "cpu" and not opts.per_band_baseline:
        tune_cpu_allocator()
    torch.manual_seed(0)
    reference = np.random.default_rng(0).random((opts.size, opts.size, opts.bands))
    srf, psf = benchmark_srf(opts.bands), gaussian_psf(opts.scale, args.sigma)
    item = {k: to_tensor(v) for k, v in simulate_pair(reference, srf, psf, opts.scale).items()}
    pair = Pair.from_item(item, psf, srf, support_range(srf), args.device)
    nets, stages = METHODS[opts.method](args, pair)
    if opts.per_band_baseline:
        nets = per_band_nets(nets)
        stages = udaln_stages(args, pair, nets)
    result = {"case": f"{opts.size}x{opts.size}x{opts.bands}_r{opts.scale}",
              "method": opts.method + ("_per_band_baseline" if opts.per_band_baseline else ""),
              "device": str(args.device), "threads": torch.get_num_threads()}
    for stage in stages:
        result[f"s{stage.number}_ms"] = round(ms_per_step(stage, opts.steps, opts.warmup, args, args.device), 3)
    if opts.breakdown:
        result["s3_breakdown_ms"] = stage3_breakdown(nets, pair, stages[-1].optimizers)
    monitor = Monitor(pair, nets, run=None)
    watch = stages[-1].watch
    monitor(watch, 1, 0.0)
    start = time.perf_counter()
    monitor(watch, 1, 0.0)
    result["eval_ms"] = round(1000 * (time.perf_counter() - start), 1)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
