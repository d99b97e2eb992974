"""The real pair of docs/real_pairs.md, Houston 2018, fused blind by each method and judged
by classification (UDS2C2's real-data evaluation), with each training's no-reference indices,
reduced-resolution scores, wall time and peak memory. One training process at a time.

    python benchmarks/real_pair_example.py [--methods udaln,pfs2c2,uds2c2,recommended] [--threads 1]
        [--checkpoints_dir checkpoints/real_pair_example] [--seeds 0,1,2,3,4]
        [--run_folders udaln=FOLDER,...] [--output checkpoints/real_pair_example_results]
        [extra options of train_all_special.py]

Each method runs, in turn, as `train_all_special.py --lr_hsi data/real_pair_example/houston18_lr_hsi.tif
--hr_msi data/real_pair_example/houston18_hr_rgb.tif --msi_sensor worldview2 --msi_bands_select
red,green,blue --reduced_resolution --method M --threads 1 --checkpoints_dir DIR` with its full
schedule (hours each on a 2-core CPU; extra options are passed on, e.g. a shorter schedule
`--epoch_stage1 20 --decay_begin_epoch_stage1 10 ...`). The RGB camera's SRF is unknown: the SRF is
WorldView-2's red, green and blue band ranges (a nominal SRF), and the fusion is blind. The child's log
goes to --output/train_M.log; its peak resident memory is the child process's (os.wait4). A method given a
finished run folder with --run_folders (e.g. fused by ``python -m fusion.batch`` on another machine, or
resumed over several sessions) is not trained again: its time is the run's own total_seconds (metrics.json)
and its peak memory is not known ("-").

Then ``reproduce.classification`` classifies, with the labels data/ground_truth/houston18_labels.tif
(12 classes on the RGB grid; the RGB's no-data patch and the labels under it are left out), each
run's fused cube, bicubic upsampling of the LR-HSI (the HSI upsampled), the RGB image alone and the
RGB stacked with bicubic, with an SVM and a random forest, one stratified 10 % split per seed; its
classification.md/.csv/.json go to --output (about half a minute per image and seed on the 2-core
CPU: some 15 minutes for the six images and five seeds). Bicubic upsampling of the reduced-resolution pair gives
the floor of the reduced-resolution scores.

Prints one Markdown table (rows: bicubic, RGB, RGB + bicubic, each method; OA and AA in %, kappa as a
fraction, mean ± standard deviation over the seeds) and writes it to --output/real_pair_example.md,
with the numbers behind it in real_pair_example.json.
"""
import argparse
import json
import logging
import os
import subprocess
import sys
import time

import numpy as np
import sklearn
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from baselines import bicubic  # noqa: E402
from config import get_args  # noqa: E402
from evaluation import evaluate  # noqa: E402
from fusion.pair import hwc, reduced_resolution_pair  # noqa: E402
from reproduce import classification  # noqa: E402

PAIR = ["--lr_hsi", os.path.join(ROOT, "data", "real_pair_example", "houston18_lr_hsi.tif"),
        "--hr_msi", os.path.join(ROOT, "data", "real_pair_example", "houston18_hr_rgb.tif"),
        "--msi_sensor", "worldview2", "--msi_bands_select", "red,green,blue"]
LABELS = os.path.join(ROOT, "data", "ground_truth", "houston18_labels.tif")
# The classification's rows other than the runs, as this table names them.
BASELINE_ROWS = {"bicubic": "bicubic upsampling", "HR-MSI": "RGB alone", "HR-MSI + bicubic": "RGB + bicubic"}
HEADER = ("| image | D_lambda | D_s | QNR | LR-HSI consistency PSNR | HR-MSI consistency PSNR | "
          "reduced-res. PSNR / SAM | SVM OA (%) / AA (%) / kappa | RF OA (%) / AA (%) / kappa | time (s) | "
          "peak RSS (MiB) |")

log = logging.getLogger(__name__)


def train(method, threads, checkpoints_dir, output, extra):
    """Fuse the pair with one method in a child process (its stderr in ``output``/train_METHOD.log);
    returns {'folder': its run folder, 'seconds': wall time, 'peak_rss_mib': the child's peak resident
    memory}. Exits with the log's text when the training fails."""
    argv = [sys.executable, os.path.join(ROOT, "train_all_special.py"), *PAIR, "--method", method,
            "--reduced_resolution", "--threads", str(threads), "--checkpoints_dir", checkpoints_dir, *extra]
    log_path = os.path.join(output, f"train_{method}.log")
    start = time.perf_counter()
    with open(log_path, "w") as log_file:
        child = subprocess.Popen(argv, cwd=ROOT, stderr=log_file, text=True)
        _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    with open(log_path) as log_file:
        text = log_file.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{method} failed (log: {log_path}):\n{text}")
    folder = next(line.split("run folder: ", 1)[1] for line in text.splitlines() if "run folder: " in line)
    return {"folder": os.path.join(ROOT, folder.strip()), "seconds": seconds, "peak_rss_mib": usage.ru_maxrss / 1024}


def finished_run(folder):
    """A run folder given with --run_folders, as ``train`` describes a run: {'folder', 'seconds': its
    metrics.json total_seconds, 'peak_rss_mib': None}. Exits naming the folder when it has no metrics.json
    (the run is not finished)."""
    path = os.path.join(folder, "metrics.json")
    if not os.path.isfile(path):
        raise SystemExit(f"{folder}: no metrics.json, the run is not finished; resume it (train_all_special.py "
                         "--resume FOLDER) or leave it out of --run_folders")
    with open(path) as f:
        seconds = json.load(f)["total_seconds"]
    return {"folder": os.path.abspath(folder), "seconds": seconds, "peak_rss_mib": None}


def run_folder_list(text):
    """--run_folders: 'method=FOLDER,...' as {method: folder}."""
    pairs = [item.split("=", 1) for item in text.split(",") if item.strip()]
    if any(len(pair) != 2 or not pair[1] for pair in pairs):
        raise argparse.ArgumentTypeError(f"{text!r}: give method=FOLDER pairs separated by commas")
    return {method.strip(): folder.strip() for method, folder in pairs}


def bicubic_reduced_resolution(extra):
    """Bicubic upsampling of the reduced-resolution pair (``fusion.pair.reduced_resolution_pair``)
    scored against the LR-HSI over its valid pixels, as the runs' reduced-resolution protocol scores
    their output: ``evaluation.evaluate``'s dict (PSNR in dB, SAM in degrees, ...)."""
    from fusion.run import load_pair

    pair, _ = load_pair(get_args(PAIR + extra + ["--device", "cpu"]))
    rr = reduced_resolution_pair(pair)
    upsampled = bicubic.fuse(hwc(rr.Y).astype(np.float64), hwc(rr.Z).astype(np.float64), rr.scale, rr.psf, rr.srf)
    return evaluate(rr.X, upsampled, rr.scale, mask=rr.out_valid)


def scores_cell(image, name):
    """'OA / AA / kappa' of one classifier for one image of the classification results, each as
    ``classification.table_cell`` writes it (mean ± standard deviation over the seeds)."""
    return " / ".join(classification.table_cell(image["mean"][name][s], image["std"][name][s], s)
                      for s in classification.SCORES)


def table(results, runs, bicubic_rr):
    """The Markdown table's lines: one row per image of the classification ``results`` (in their
    order), the runs' (``runs``: {method: train's dict plus its metrics.json as 'metrics'}) with their
    no-reference indices, reduced-resolution PSNR (dB) / SAM (degrees), time and peak memory, bicubic
    with its reduced-resolution scores ``bicubic_rr``."""
    methods = {run["folder"]: method for method, run in runs.items()}
    lines = [HEADER, "|---" * HEADER.count(" | ") + "|---|"]
    for image in results["images"]:
        scores = f"{scores_cell(image, 'svm')} | {scores_cell(image, 'rf')}"
        method = methods.get(image["source"])
        if method is None:
            rr = (f"{bicubic_rr['PSNR']:.2f} / {bicubic_rr['SAM']:.3f}" if image["name"] == "bicubic" else "-")
            lines.append(f"| {BASELINE_ROWS.get(image['name'], image['name'])} | - | - | - | - | - | {rr} | "
                         f"{scores} | - | - |")
            continue
        run = runs[method]
        q, rr = run["metrics"]["no_reference"], run["metrics"]["reduced_resolution"]
        peak = "-" if run["peak_rss_mib"] is None else f"{run['peak_rss_mib']:.0f}"
        lines.append(f"| {method} | {q['D_lambda']:.4f} | {q['D_s']:.4f} | {q['QNR']:.4f} | "
                     f"{q['lrhsi_consistency']['PSNR']:.2f} | {q['hrmsi_consistency']['PSNR']:.2f} | "
                     f"{rr['PSNR']:.2f} / {rr['SAM']:.3f} | {scores} | {run['seconds']:.0f} | {peak} |")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="udaln,pfs2c2,uds2c2,recommended")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--checkpoints_dir", default=os.path.join(ROOT, "checkpoints", "real_pair_example"))
    parser.add_argument("--seeds", type=classification.seed_list, default=classification.DEFAULT_SEEDS)
    parser.add_argument("--output", default=os.path.join(ROOT, "checkpoints", "real_pair_example_results"))
    parser.add_argument("--run_folders", type=run_folder_list, default={},
                        help="method=FOLDER,...: finished run folders of these methods, used instead of training")
    args, extra = parser.parse_known_args(argv)
    unknown = sorted(set(args.run_folders) - set(args.methods.split(",")))
    if unknown:
        parser.error(f"--run_folders names {', '.join(unknown)}, not among --methods {args.methods}")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    os.makedirs(args.output, exist_ok=True)
    bicubic_rr = bicubic_reduced_resolution(extra)
    runs = {}
    for method in args.methods.split(","):
        runs[method] = run = (finished_run(args.run_folders[method]) if method in args.run_folders
                              else train(method, args.threads, args.checkpoints_dir, args.output, extra))
        with open(os.path.join(run["folder"], "metrics.json")) as f:
            run["metrics"] = json.load(f)
        log.info("%s: %.0f s, run folder %s", method, run["seconds"], run["folder"])
    results = classification.evaluate_runs([run["folder"] for run in runs.values()], LABELS, seeds=args.seeds)
    classification.write_tables(results, args.output)
    lines = table(results, runs, bicubic_rr)
    facts = {"threads": args.threads, "extra": extra, "seeds": list(args.seeds),
             "labelled_pixels": results["labelled_pixels"], "train_pixels": results["train_pixels"],
             "masked_labelled_pixels": results["masked_labelled_pixels"],
             "numpy": np.__version__, "torch": torch.__version__, "sklearn": sklearn.__version__}
    with open(os.path.join(args.output, "real_pair_example.md"), "w") as f:
        f.write("\n".join(lines) + "\n\n" + json.dumps(facts) + "\n")
    with open(os.path.join(args.output, "real_pair_example.json"), "w") as f:
        json.dump({**facts, "bicubic_reduced_resolution": bicubic_rr,
                   "runs": {method: {k: run[k] for k in ("folder", "seconds", "peak_rss_mib")}
                            | {k: run["metrics"][k] for k in ("no_reference", "reduced_resolution")}
                            for method, run in runs.items()}}, f, indent=2)
    print("\n".join(lines))
    print(json.dumps(facts))


if __name__ == "__main__":
    main()
