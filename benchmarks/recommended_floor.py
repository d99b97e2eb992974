"""The recommended mode's detail injection, measured: HPM with floors of 1-20 % (with and without its
modulation clipped at 0) and the additive injections,
each with the PSF the mode learned blind and the projection onto the LR-HSI, on the real scenes' Wald pairs
(docs/methods.md, "The recommended mode"). Reads the recommended mode's run folders of the tables
(``python -m reproduce.tables ... --methods ...,recommended``, seed 2) for their learned PSF, so it takes
seconds; prints one Markdown table (PSNR in dB / SAM in degrees against the reference).

    python benchmarks/recommended_floor.py --checkpoints_dir checkpoints/real_scenes/runs \\
        [--scenes houston18:4,5,8 indian_pines_roi70:4,8 salinas_a:4,8 cave_toy:4,8]
"""
import argparse
import os
import sys

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from baselines import mtf_glp_hs  # noqa: E402
from config import get_args  # noqa: E402
from evaluation import evaluate  # noqa: E402
from fusion.run_folder import run_folder_name  # noqa: E402
from model.degradation import lr_consistent, spatial_degrade  # noqa: E402
from reproduce.cells import wald_pair  # noqa: E402

FLOORS = (0.01, 0.05, 0.1, 0.15, 0.2)
DEFAULT_SCENES = ("houston18:4,5,8", "indian_pines_roi70:4,8", "salinas_a:4,8", "cave_toy:4,8")


def injections(y, z, r, psf):
    """{name: X_hat} for each injection: HPM with each of FLOORS, as the baseline and with its modulation
    clipped at 0, additive with unit gain and with the toolbox's regression gain; every one projected onto
    Y (model.degradation.lr_consistent)."""
    z_lr = spatial_degrade(z, psf, r)
    weights = mtf_glp_hs.synthetic_pans(y, z_lr)
    up, pan, pan_low = mtf_glp_hs.pans(y, z, z_lr, r, weights)
    out = {f"HPM, floor {floor:g}{', modulation >= 0' if nonnegative else ''}": mtf_glp_hs.hpm_sharpen(
        y, z, z_lr, r, weights, mtf_glp_hs.hpm_floors(z_lr, weights, floor), nonnegative)
        for nonnegative in (False, True) for floor in FLOORS}
    out["additive, unit gain"] = up + pan - pan_low
    low0, up0 = pan_low - pan_low.mean(axis=(0, 1)), up - up.mean(axis=(0, 1))
    gain = np.einsum("pqk,pqk->k", up0, low0) / np.einsum("pqk,pqk->k", low0, low0)
    out["additive, regression gain"] = up + gain * (pan - pan_low)
    return {name: lr_consistent(x, y, psf, r) for name, x in out.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints_dir", required=True, help="where the tables' run folders are")
    parser.add_argument("--scenes", nargs="+", default=DEFAULT_SCENES, help="SCENE:r,r,... (default: %(default)s)")
    opts = parser.parse_args(argv)
    columns, rows = [], {}
    for spec in opts.scenes:
        scene, scales = spec.split(":")
        for r in map(int, scales.split(",")):
            argv = ["--data_name", scene, "--scale_factor", str(r), "--device", "cpu"]
            folder = os.path.join(opts.checkpoints_dir,
                                  run_folder_name(get_args(argv + ["--method", "recommended"])))
            state = os.path.join(folder, "hypersharpening.pth")
            if not os.path.isfile(state):
                parser.error(f"{state} not found: run python -m reproduce.tables --data_name {scene} --scales {r} "
                             f"--methods recommended --checkpoints_dir {opts.checkpoints_dir} first")
            psf = torch.load(state)["psf"].numpy()
            pair = wald_pair(get_args(argv))
            y, z, x = (pair[k].astype(np.float64) for k in ("lhsi", "hmsi", "hhsi"))
            columns.append(f"{scene} r = {r}")
            for name, fused in injections(y, z, r, psf).items():
                scores = evaluate(x, fused, r, mask=pair["out_valid"], ssim=False)
                rows.setdefault(name, []).append(f"{scores['PSNR']:.2f} / {scores['SAM']:.3f}")
    print("| injection | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for name, cells in rows.items():
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
