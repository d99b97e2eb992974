"""Markdown table of finished runs, read from their run folders (metrics.json and opt.txt), with
bicubic upsampling of the LR-HSI as a baseline row for each scale factor found.

    python benchmarks/report.py checkpoints/*/ [more run folders]
"""
import json
import os
import sys

from torch.nn import functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from config import get_args  # noqa: E402
from data_loader import Dataset  # noqa: E402
from evaluation import evaluate  # noqa: E402

COLUMNS = ("SAM", "ERGAS", "PSNR", "RMSE", "CC", "SSIM")
FORMATS = {"SAM": ".3f", "ERGAS": ".3f", "PSNR": ".2f", "RMSE": ".5f", "CC": ".5f", "SSIM": ".4f"}


def read_options(folder):
    options = {}
    with open(os.path.join(folder, "opt.txt")) as f:
        for line in f:
            key, sep, value = line.partition(": ")
            if sep:
                options[key.strip()] = value.strip()
    return options


def describe(options):
    """Method and the options that distinguish the benchmark runs."""
    name = options["method"]
    if name == "uds2c2":
        scf = options["scfconv"]
        if scf == "Yes":  # runs older than these options had SCFConv in the inverse mapping, sigmoid-started
            scf = f"{options.get('scf_place', 'inverse')}, {options.get('scf_attention', 'sigmoid')} start"
        name += f" (GCE {options['gce']}, SCFConv {scf}, k={options['scf_kernel']})"
    if options.get("stages", "123") != "123":
        name += f", stages {options['stages']}"
    if options.get("degradation", "original") == "normalised":
        name += ", normalised degradation"
    if float(options.get("msi_gain", 1)) != 1:
        name += f", MSI x{float(options['msi_gain']):g}"
    if float(options.get("msi_gamma", 1)) != 1 or float(options.get("msi_gain_jitter", 0)) != 0:
        name += ", mismatched MSI"
    if int(options.get("psf_size", 0)):
        name += f", learned PSF {options['psf_size']} x {options['psf_size']}"
    return name


def simulation(options):
    """The simulated pair's options besides the data: the true PSF's size and shift (runs older than these
    options had the papers' r x r PSF)."""
    return {k: options.get(k, "0") for k in ("sim_psf_size", "sim_psf_shift")}


def describe_pair(options):
    size, shift = (int(v) for v in simulation(options).values())
    if not size and not shift:
        return options["data_name"]
    size = size or options["scale_factor"]
    return f"{options['data_name']}, true PSF {size} x {size} shifted {shift}"


def bicubic_metrics(options):
    """Bicubic upsampling of the run's LR-HSI, scored like the runs."""
    argv = ["--device", "cpu"] + [f"--{k}={options[k]}" for k in
                                  ("scale_factor", "default_datapath", "sp_root_path", "data_name", "image_index")]
    argv += [f"--{k}={v}" for k, v in simulation(options).items()]
    args = get_args(argv)
    item = Dataset(args)[args.image_index]
    up = F.interpolate(item["lhsi"][None], scale_factor=args.scale_factor, mode="bicubic", align_corners=False)
    return evaluate(item["hhsi"].permute(1, 2, 0).numpy(), up[0].permute(1, 2, 0).numpy(), args.scale_factor)


def srf_test_psnr(metrics):
    """PSNR of the learned SRF's output Y S_est against the true Y S, at the end of the last stage."""
    last = max(metrics["stage_results"], key=int)
    return metrics["stage_results"][last]["checks"]["srf_test"]["PSNR"]


def row(name, scale, final, rest):
    cells = [format(final[c], FORMATS[c]) for c in COLUMNS]
    return f"| {name} | {scale} | " + " | ".join(cells) + f" | {rest} |"


def main(folders):
    print("| method | r | " + " | ".join(COLUMNS)
          + " | PSF rel. err | PSF sum | SRF rel. err | SRF test PSNR | time (s) | threads |")
    print("|---" * (len(COLUMNS) + 8) + "|")
    baselines = {}
    runs = []
    for folder in folders:
        path = os.path.join(folder, "metrics.json")
        if os.path.exists(path):
            options = read_options(folder)
            runs.append((options, json.load(open(path))))
            key = (describe_pair(options), options["scale_factor"])
            if key not in baselines:
                baselines[key] = bicubic_metrics(options)
    for (pair, scale), final in sorted(baselines.items()):
        print(row(f"bicubic upsampling ({pair})", scale, final, "- | - | - | - | - | -"))
    for options, metrics in runs:
        print(row(describe(options), metrics["scale_factor"], metrics["final"],
                  f"{metrics['psf_rel_error']:.4f} | {metrics['psf_sum']:.3f} | {metrics['srf_rel_error']:.4f} | "
                  f"{srf_test_psnr(metrics):.2f} | "
                  f"{metrics['total_seconds']:.0f} | {options.get('threads', 'None')}"))


if __name__ == "__main__":
    main(sys.argv[1:])
