"""Threads benchmark: milliseconds per training step of each stage at 1, 2, ... CPU threads, to set
config.AUTO_STAGE_THREADS (the per-stage choice when --threads is not given).

    python benchmarks/threads.py [--size 145] [--bands 68] [--scale 5] [--method udaln]
                                 [--threads 1,2,4] [--steps 200] [--warmup 20]

Builds the pair as benchmarks/speed.py does (a fixed random reference cube, size x size x bands, and a
WorldView-2 SRF), then for each thread count builds the method's networks afresh (same seed, so every
count does the same work) and times each stage with speed.py's ms_per_step: the very loss functions,
optimisers and stage loop of train_all_special.py. Prints one JSON line per (stage, threads). Run it
on an otherwise idle machine; on a shared one, run it also while the cores are busy, which is where
extra threads lose most.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.speed import benchmark_srf, ms_per_step  # noqa: E402
from config import get_args, usable_cpus  # noqa: E402
from data_loader import simulate_pair, support_range, to_tensor  # noqa: E402
from fusion.memory import tune_cpu_allocator  # noqa: E402
from fusion.pair import Pair  # noqa: E402
from methods import METHODS  # noqa: E402
from model.degradation import gaussian_psf  # noqa: E402


def _thread_counts(text):
    try:
        counts = [int(item) for item in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated thread counts such as 1,2,4, got {text!r}")
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"thread counts must be at least 1, got {text!r}")
    return counts


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=145, help="reference cube rows and columns (HR pixels)")
    p.add_argument("--bands", type=int, default=68, help="HSI bands (46: the Houston WorldView-2 SRF)")
    p.add_argument("--scale", type=int, default=5)
    p.add_argument("--method", default="udaln", choices=sorted(METHODS))
    p.add_argument("--threads", type=_thread_counts, default=None,
                   help="comma-separated thread counts (default: 1 up to the usable cores)")
    p.add_argument("--steps", type=int, default=200, help="timed steps per stage")
    p.add_argument("--warmup", type=int, default=20)
    opts = p.parse_args(argv)
    counts = opts.threads or list(range(1, usable_cpus() + 1))
    args = get_args(["--method", opts.method, "--scale_factor", str(opts.scale), "--device", "cpu"])
    tune_cpu_allocator()
    reference = np.random.default_rng(0).random((opts.size, opts.size, opts.bands))
    srf, psf = benchmark_srf(opts.bands), gaussian_psf(opts.scale, args.sigma)
    item = {k: to_tensor(v) for k, v in simulate_pair(reference, srf, psf, opts.scale).items()}
    pair = Pair.from_item(item, psf, srf, support_range(srf), args.device)
    case = f"{opts.size}x{opts.size}x{opts.bands}_r{opts.scale}"
    for threads in counts:
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        _, stages = METHODS[opts.method](args, pair)
        for stage in stages:
            ms = ms_per_step(stage, opts.steps, opts.warmup, args, args.device)
            print(json.dumps({"case": case, "method": opts.method, "stage": stage.number, "threads": threads,
                              "ms_per_step": round(ms, 3), "usable_cpus": usable_cpus()}), flush=True)


if __name__ == "__main__":
    main()
