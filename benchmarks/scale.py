"""Whole satellite scenes: memory and time against scene size (docs/whole_scenes.md).

    python benchmarks/scale.py [--sides 240,960,2400,4800] [--method udaln] [--threads 2] [--steps 200]
                               [--full_side 960] [--work_dir scale_work] [extra train_all_special options]

For each HR-MSI side the script writes a synthetic but realistic pair as GeoTIFFs (spectra mixed from
five endmembers with spatial texture at several scales; 166 HSI bands over 400-2500 nm, the 8
WorldView-2 bands, r = 3, reflectance x 10000 as int16/uint16) into --work_dir, fuses it in patch
mode (--training_mode patches, the automatic patch size) with ``--steps`` steps per stage in a child
process, and prints one JSON line: the child's peak RSS (MiB, inputs included), seconds per training
step in each stage, the time of the results (tiled inference, scores, writing), the inference alone
(another child: the method's untrained networks over the whole scene, tile by tile, outputs dropped),
the output file's size. With ``--full_side S`` it then fuses the S x S scene with the method's full
default schedule (patch mode) and prints its wall time. One child runs at a time.

The scene is generated without ever holding its HR-HSI: spectral and spatial degradations are linear,
so Z = A (E S) and Y = (A blurred and decimated) E, with A the HR abundances and E the endmembers.
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import time

import numpy as np
from affine import Affine
from scipy import ndimage

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from data_loader import srf_from_bands  # noqa: E402
from imagery.sensors import band_ranges  # noqa: E402
from imagery.writers import write_geotiff  # noqa: E402
from model.degradation import gaussian_psf, spatial_degrade  # noqa: E402

SCALE = 3
HSI_BANDS = 166
WAVELENGTHS = np.linspace(400.0, 2500.0, HSI_BANDS)
FWHM = np.full(HSI_BANDS, 12.7)
ENDMEMBERS = 5
REFLECTANCE_SCALE = 10000
CRS = "EPSG:32650"
HR_PIXEL_M = 10.0
ROWS_PER_BLOCK = 512  # HR rows generated at once: bounds the generator's memory at any side


def endmember_spectra(rng):
    """ENDMEMBERS x HSI_BANDS smooth reflectance spectra in [0.02, 0.7] (sums of Gaussian bumps)."""
    centres = rng.uniform(400, 2500, size=(ENDMEMBERS, 4))
    widths = rng.uniform(80, 400, size=(ENDMEMBERS, 4))
    heights = rng.uniform(0.05, 0.25, size=(ENDMEMBERS, 4))
    bumps = heights[..., None] * np.exp(-0.5 * ((WAVELENGTHS - centres[..., None]) / widths[..., None]) ** 2)
    return (0.02 + bumps.sum(axis=1)).clip(0.02, 0.7)


def abundances(side, rng):
    """side x side x ENDMEMBERS abundances summing to 1: a softmax of textures at 3 spatial scales."""
    logits = np.zeros((side, side, ENDMEMBERS), np.float32)
    for cells, weight in ((8, 3.0), (side // 24, 1.5), (side // 4, 0.5)):
        coarse = rng.standard_normal((cells, cells, ENDMEMBERS)).astype(np.float32)
        logits += weight * ndimage.zoom(coarse, (side / cells, side / cells, 1), order=1)[:side, :side]
    logits -= logits.max(axis=2, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=2, keepdims=True)
    return logits


def write_scene(side, folder, seed=0):
    """Write lr_hsi.tif and hr_msi.tif for an HR side of ``side`` pixels (a multiple of SCALE) into
    ``folder``; returns their paths. Skips the work when both exist."""
    paths = os.path.join(folder, "lr_hsi.tif"), os.path.join(folder, "hr_msi.tif")
    if all(os.path.exists(p) for p in paths):
        return paths
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    spectra = endmember_spectra(rng).astype(np.float32)                      # E: k x C
    srf = srf_from_bands(WAVELENGTHS, band_ranges("worldview2"), shape="gaussian").astype(np.float32)
    a = abundances(side, rng)
    hr = np.round(a @ (spectra @ srf) * REFLECTANCE_SCALE).astype(np.uint16)  # Z = A (E S)
    a_lr = spatial_degrade(a, gaussian_psf(SCALE, SCALE / 2.35482), SCALE).astype(np.float32)
    del a
    lr = np.empty((side // SCALE, side // SCALE, HSI_BANDS), np.int16)
    for top in range(0, lr.shape[0], ROWS_PER_BLOCK):
        lr[top:top + ROWS_PER_BLOCK] = np.round(a_lr[top:top + ROWS_PER_BLOCK] @ spectra * REFLECTANCE_SCALE)
    hr_transform = Affine(HR_PIXEL_M, 0, 500000.0, 0, -HR_PIXEL_M, 4000000.0)
    write_geotiff(paths[0], lr, CRS, hr_transform @ Affine.scale(SCALE), wavelengths=WAVELENGTHS, fwhm=FWHM,
                  band_names=[f"{w:.1f} nm" for w in WAVELENGTHS], dtype="int16")
    write_geotiff(paths[1], hr, CRS, hr_transform, dtype="uint16")
    return paths


def fuse_child(paths, method, threads, folder, extra):
    """Run train_all_special.py on the pair in a child; returns (metrics.json, wall seconds, peak RSS MiB,
    output bytes)."""
    argv = [sys.executable, os.path.join(ROOT, "train_all_special.py"), "--lr_hsi", paths[0], "--hr_msi", paths[1],
            "--msi_sensor", "worldview2", "--method", method, "--threads", str(threads), "--training_mode", "patches",
            "--checkpoints_dir", folder, "--overwrite", *extra]
    os.makedirs(folder, exist_ok=True)
    log_path = os.path.join(folder, "last_run.log")
    start = time.perf_counter()
    with open(log_path, "w") as log_file:
        child = subprocess.Popen(argv, cwd=ROOT, stderr=log_file)
        _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    with open(log_path) as f:
        log = f.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{log[-4000:]}")
    run = [line.rsplit(" -> ", 1)[1].strip() for line in log.splitlines() if " -> " in line][-1]  # the completed folder
    with open(os.path.join(run, "metrics.json")) as f:
        metrics = json.load(f)
    output = sum(os.path.getsize(p) for p in glob.glob(os.path.join(run, "My_Out.*")))
    return metrics, seconds, usage.ru_maxrss / 1024, output


def inference_seconds(paths, method, threads, device="cpu"):
    """Seconds of tiled inference X_hat = the method's inverse network over the whole HR-MSI on ``device``
    (untrained networks: the cost does not depend on the weights), in a child; outputs are dropped."""
    code = f"""
import sys, time, torch
sys.path.insert(0, {ROOT!r})
from config import get_args
from fusion.tiling import TiledForward
from methods import METHODS
from fusion.run import load_pair
torch.set_num_threads({threads})
args = get_args(["--lr_hsi", {paths[0]!r}, "--hr_msi", {paths[1]!r}, "--msi_sensor", "worldview2", "--method",
                 {method!r}, "--device", {device!r}])
pair, _ = load_pair(args)
nets, _ = METHODS[args.method](args, pair)
with torch.inference_mode():
    start = time.perf_counter()
    for part in TiledForward(nets.up, pair.Z, align=pair.scale):
        pass
    if pair.Z.is_cuda:
        torch.cuda.synchronize()
    print(time.perf_counter() - start)
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"inference timing failed:\n{out.stderr[-4000:]}")
    return float(out.stdout.strip().splitlines()[-1])


def short_schedule(steps):
    """--epoch_stageN / --decay_begin_epoch_stageN / --eval_every for ``steps`` steps per stage."""
    argv = []
    for n in (1, 2, 3):
        argv += [f"--epoch_stage{n}", str(steps), f"--decay_begin_epoch_stage{n}", str(steps // 2)]
    return argv + ["--eval_every", str(steps)]


def measure(side, args, extra):
    """One JSON line for the side x side scene (see the module docstring)."""
    paths = write_scene(side, os.path.join(args.work_dir, f"scene_{side}"))
    metrics, wall, peak, output = fuse_child(paths, args.method, args.threads, os.path.join(args.work_dir, "runs"),
                                             short_schedule(args.steps) + extra)
    options = metrics["options"]
    return {"hr_side": side, "lr_side": side // SCALE, "hsi_bands": HSI_BANDS, "msi_bands": 8, "r": SCALE,
            "method": args.method, "threads": args.threads, "patch_size": options["patch_size"],
            "patches_per_step": options["patches_per_step"], "steps_per_stage": args.steps,
            "seconds_per_step": {s: round(t / args.steps, 5) for s, t in metrics["stage_seconds"].items()},
            "results_seconds": round(metrics["output_seconds"], 2),
            "inference_seconds": round(inference_seconds(paths, args.method, args.threads, options["device"]), 2),
            "output_mib": round(output / 2 ** 20, 1), "peak_rss_mib": round(peak), "wall_seconds": round(wall, 1)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sides", default="240,960,2400,4800", help="HR-MSI sides, multiples of 3")
    parser.add_argument("--method", default="udaln")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=200, help="training steps per stage of the timing runs")
    parser.add_argument("--full_side", type=int, default=0, help="also fuse this side with the full schedule")
    parser.add_argument("--work_dir", default=os.path.join(ROOT, "scale_work"),
                        help="scenes and run folders (several GB at 4800)")
    args, extra = parser.parse_known_args(argv)
    for side in (int(s) for s in args.sides.split(",") if s):
        print(json.dumps(measure(side, args, extra)), flush=True)
    if args.full_side:
        paths = write_scene(args.full_side, os.path.join(args.work_dir, f"scene_{args.full_side}"))
        metrics, wall, peak, output = fuse_child(paths, args.method, args.threads,
                                                 os.path.join(args.work_dir, "runs_full"), extra)
        print(json.dumps({"hr_side": args.full_side, "method": args.method, "schedule": "full default",
                          "threads": args.threads, "patch_size": metrics["options"]["patch_size"],
                          "stage_seconds": {s: round(t, 1) for s, t in metrics["stage_seconds"].items()},
                          "results_seconds": round(metrics["output_seconds"], 1), "wall_seconds": round(wall, 1),
                          "peak_rss_mib": round(peak), "no_reference": metrics["no_reference"]}), flush=True)


if __name__ == "__main__":
    main()
