"""Markdown table of finished runs, read from their run folders (metrics.json and opt.txt).

    python benchmarks/report.py checkpoints/*/ [more run folders]
"""
import json
import os
import sys

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
        name += f" (GCE {options['gce']}, SCFConv {options['scfconv']}, k={options['scf_kernel']})"
    if options.get("stages", "123") != "123":
        name += f", stages {options['stages']}"
    if float(options.get("msi_gamma", 1)) != 1 or float(options.get("msi_gain_jitter", 0)) != 0:
        name += ", mismatched MSI"
    return name


def main(folders):
    print("| method | r | " + " | ".join(COLUMNS) + " | PSF rel. err | SRF rel. err | time (s) | threads |")
    print("|---" * (len(COLUMNS) + 6) + "|")
    for folder in folders:
        path = os.path.join(folder, "metrics.json")
        if not os.path.exists(path):
            continue
        metrics = json.load(open(path))
        options = read_options(folder)
        cells = [format(metrics["final"][c], FORMATS[c]) for c in COLUMNS]
        print(f"| {describe(options)} | {metrics['scale_factor']} | " + " | ".join(cells)
              + f" | {metrics['psf_rel_error']:.4f} | {metrics['srf_rel_error']:.4f}"
              + f" | {metrics['total_seconds']:.0f} | {options.get('threads', 'None')} |")


if __name__ == "__main__":
    main(sys.argv[1:])
