"""The classical baselines: quality on the default data set (Wald's protocol, true PSF and SRF given,
as the papers' comparisons did) and wall time at the UDALN paper's size. One JSON line per method and
case, then a Markdown table.

    python benchmarks/baselines.py [--methods gsa,mtf_glp_hs,...] [--scales 5,8] [--threads 1]

Quality: the default data set (the real Houston 2018 crop with its WorldView-2 SRF; --data_name chooses
another of data/), simulated as train_all_special.py simulates it. Time: a 240 x 240 x 46 smooth random cube
(a random field blurred with a Gaussian of 4 pixels, per band) with the Houston-2018 WorldView-2 SRF, r = 5,
timed once after the quality runs. BLAS threads are set before numpy loads (default 1: the solvers lose badly
to contention on a shared 2-core machine).
"""
import argparse
import json
import os
import sys
import time


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=None, help="comma-separated names of baselines.BASELINES (default: all)")
    parser.add_argument("--scales", default="5,8")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data_name", default=None, help="a data set of data/ (default: train_all_special.py's)")
    parser.add_argument("--no_timing", action="store_true", help="skip the 240 x 240 x 46 timing case")
    return parser.parse_args(argv)


def main(argv=None):
    opts = parse(argv)
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(opts.threads)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path.insert(0, root)
    import numpy as np
    from scipy.ndimage import gaussian_filter

    from baselines import BASELINES, fuse_with
    from benchmarks.speed import benchmark_srf
    from config import get_args
    from data_loader import Dataset, simulate_pair
    from evaluation import evaluate
    from model.degradation import gaussian_psf

    methods = opts.methods.split(",") if opts.methods else list(BASELINES)
    rows = []
    for scale in map(int, opts.scales.split(",")):
        data_options = ["--data_name", opts.data_name] if opts.data_name else []
        data = Dataset(get_args(["--device", "cpu", "--scale_factor", str(scale), *data_options]))
        item = {k: v.numpy().transpose(1, 2, 0).astype(np.float64) for k, v in data[0].items()
                if k in ("lhsi", "hmsi", "hhsi")}
        for name in methods:
            start = time.perf_counter()
            x_hat = fuse_with(name, item["lhsi"], item["hmsi"], scale, data.PSF, data.sp_matrix)
            seconds = time.perf_counter() - start
            metrics = evaluate(item["hhsi"], x_hat, scale)
            rows.append({"method": name, "case": f"{data.args.data_name}_r{scale}", "seconds": round(seconds, 2),
                         **{k: round(v, 5) for k, v in metrics.items()}})
            print(json.dumps(rows[-1]), flush=True)
    timing = {}
    if not opts.no_timing:
        rng = np.random.default_rng(0)
        cube = gaussian_filter(rng.random((240, 240, 46)), sigma=(4, 4, 0))
        cube = (cube - cube.min()) / np.ptp(cube)
        srf, psf = benchmark_srf(46), gaussian_psf(5, 5 / 2.35482)
        pair = simulate_pair(cube, srf, psf, 5)
        for name in methods:
            start = time.perf_counter()
            fuse_with(name, pair["lhsi"], pair["hmsi"], 5, psf, srf)
            timing[name] = round(time.perf_counter() - start, 2)
            print(json.dumps({"method": name, "case": "smooth_240x240x46_r5", "seconds": timing[name]}), flush=True)
    print("\n| method | r | SAM | ERGAS | PSNR | RMSE | CC | SSIM | time (s) | time at 240 x 240 x 46 (s) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['method']} | {row['case'][-1]} | {row['SAM']:.3f} | {row['ERGAS']:.3f} | {row['PSNR']:.2f} | "
              f"{row['RMSE']:.5f} | {row['CC']:.5f} | {row['SSIM']:.4f} | {row['seconds']:.2f} | "
              f"{timing.get(row['method'], '-')} |")


if __name__ == "__main__":
    main()
