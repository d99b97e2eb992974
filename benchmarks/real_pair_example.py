"""The real-pair example of README ("Fuse your own pair") for each method: reference-based scores next
to the no-reference indices, wall time and peak memory. One training process at a time.

    python benchmarks/real_pair_example.py [--methods udaln,pfs2c2,uds2c2] [--threads 1]
                                           [--checkpoints_dir checkpoints/real_pair_example] [extra options]

Each method runs as `train_all_special.py --lr_hsi ... --hr_msi ... --msi_sensor worldview2
--reference data/indian_pines/indian_pines_vnir.mat --reduced_resolution` with its full schedule
(extra options are passed on, e.g. a shorter schedule). The peak resident memory is the child
process's (os.wait4). Prints a Markdown table, with bicubic upsampling of the LR-HSI as the floor.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch
from torch.nn import functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from config import get_args  # noqa: E402
from data_loader import load_real_pair  # noqa: E402
from evaluation import evaluate  # noqa: E402

EXAMPLE = ["--lr_hsi", "data/real_pair_example/indian_pines_lr_hsi.tif",
           "--hr_msi", "data/real_pair_example/indian_pines_hr_msi.tif", "--msi_sensor", "worldview2",
           "--reference", "data/indian_pines/indian_pines_vnir.mat"]


def run(method, threads, checkpoints_dir, extra):
    """Train one method in a child process; returns its run folder, wall seconds and peak RSS (MiB)."""
    argv = [sys.executable, os.path.join(ROOT, "train_all_special.py"), *EXAMPLE, "--method", method,
            "--reduced_resolution", "--checkpoints_dir", checkpoints_dir, *extra]
    if threads:
        argv += ["--threads", str(threads)]
    start = time.perf_counter()
    child = subprocess.Popen(argv, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    log = child.stderr.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{method} failed:\n{log}")
    folder = next(line.split("run folder: ", 1)[1] for line in log.splitlines() if "run folder: " in line)
    return folder.strip(), seconds, usage.ru_maxrss / 1024


def bicubic_row():
    """Bicubic upsampling of the example's LR-HSI, scored against the reference over the valid pixels."""
    pair = load_real_pair(get_args(EXAMPLE + ["--device", "cpu"]))
    y = torch.from_numpy(pair.lhsi.transpose(2, 0, 1)[None].copy())
    up = F.interpolate(y, scale_factor=pair.scale, mode="bicubic", align_corners=False)[0].numpy().transpose(1, 2, 0)
    return evaluate(pair.reference, up, pair.scale, mask=pair.out_valid)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="udaln,pfs2c2,uds2c2")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--checkpoints_dir", default=os.path.join(ROOT, "checkpoints", "real_pair_example"))
    args, extra = parser.parse_known_args(argv)
    header = ("| method | PSNR | SAM | ERGAS | SSIM | D_lambda | D_s | QNR | LR-HSI consistency PSNR | "
              "HR-MSI consistency PSNR | reduced-res. PSNR / SAM | time (s) | peak RSS (MiB) |")
    lines = [header, "|---" * header.count(" | ") + "|---|"]
    ref = bicubic_row()
    lines.append(f"| bicubic upsampling | {ref['PSNR']:.2f} | {ref['SAM']:.3f} | {ref['ERGAS']:.3f} | "
                 f"{ref['SSIM']:.4f} | - | - | - | - | - | - | - | - |")
    for method in args.methods.split(","):
        folder, seconds, rss = run(method, args.threads, args.checkpoints_dir, extra)
        m = json.load(open(os.path.join(folder, "metrics.json")))
        f, q, rr = m["final"], m["no_reference"], m["reduced_resolution"]
        lines.append(f"| {method} | {f['PSNR']:.2f} | {f['SAM']:.3f} | {f['ERGAS']:.3f} | {f['SSIM']:.4f} | "
                     f"{q['D_lambda']:.4f} | {q['D_s']:.4f} | {q['QNR']:.4f} | "
                     f"{q['lrhsi_consistency']['PSNR']:.2f} | {q['hrmsi_consistency']['PSNR']:.2f} | "
                     f"{rr['PSNR']:.2f} / {rr['SAM']:.3f} | {seconds:.0f} | {rss:.0f} |")
        print(lines[-1], flush=True)
    print("\n".join(lines))
    print(json.dumps({"threads": args.threads, "extra": extra, "numpy": np.__version__, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
