"""Quality against time: each method trained on a real scene's Wald pair under the papers' schedules and
under --schedule auto (func.PlateauSchedule), with the checks evaluated every --eval_every epochs. Writes
the curves (PSNR of X_hat and of the stage's own checks against training seconds, the training loss against
epochs), where each stage of the paper schedule stops improving, and the table of the two schedules side by
side (docs/performance.md, "Time to quality").

    python benchmarks/convergence.py --data_name houston18 --scales 4,8 --seeds 2,3 \\
        --methods udaln,uds2c2,pfs2c2,recommended [--schedules paper,auto] [--eval_every 250] \\
        [--checkpoints_dir checkpoints/convergence] [--out checkpoints/convergence/houston18] [--jobs 1] \\
        [--threads 1] [--report_only] [extra options of train_all_special.py, e.g. --degradation normalised]

One run folder per (method, scale, seed, schedule), trained as ``train_all_special.py`` trains it, one
process at a time by default (fusion.jobs: a run that was interrupted is resumed, a complete one skipped;
the folders go to --checkpoints_dir, apart from the tables' runs, whose checks were not all kept;
``--report_only`` trains nothing and tabulates the complete runs). The
time of a run is its training time without the evaluations (metrics.json's check_history "seconds"); the
table's time is the whole run's (total_seconds), as the tables report it. The machine's load average at the
start and the end is written beside the results: timings are comparable only on an otherwise idle machine.

Writes to --out: convergence.md (the tables), convergence.json (every curve and number behind them) and
convergence.png (the curves).
"""
import argparse
import json
import os
import sys
import time
from dataclasses import dataclass

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from config import get_args  # noqa: E402
from fusion.jobs import (TRAIN_SCRIPT, add_runner_options, check_runner_options, exit_status,  # noqa: E402
                         named_run_folders, read_metrics, run_all, run_status, runner_for)
from fusion.run_folder import run_folder_name  # noqa: E402

# The target for --schedule auto against the paper's: at least the PSNR less this (dB), at most the
# SAM plus this (degrees), in at most this fraction of the time.
TARGET_PSNR_DB, TARGET_SAM_DEG, TARGET_TIME_FRACTION = 0.2, 0.02, 0.25
# A stage "stops improving" at the first check within this many dB of the best PSNR it reaches.
IMPROVING_DB = 0.1
# The check that each stage is judged by: X_hat against the reference where the stage computes it, else
# the degradation networks' consistency (the two LR-MSIs, Loss1's images).
STAGE_CHECKS = ("fusion", "consistency")
PANELS_PER_ROW = 2  # of the figure: one panel per (method, scale), the scales of a method side by side


@dataclass(frozen=True)
class Run:
    """One training run of the benchmark (an item of fusion.jobs.run_all)."""
    method: str
    scale: int
    seed: int
    schedule: str
    folder: str
    command: tuple
    threads: int

    @property
    def label(self):
        return f"{self.method} r={self.scale} seed {self.seed} {self.schedule}"

    @property
    def key(self):
        return f"{self.method}_r{self.scale}_seed{self.seed}_{self.schedule}"


def parse(argv):
    parser = argparse.ArgumentParser(
        prog="python benchmarks/convergence.py", allow_abbrev=False,
        description="Quality against time under the papers' schedules and --schedule auto. Options not listed "
                    "here are train_all_special.py's, passed to every run (e.g. --data_name, --degradation).")
    parser.add_argument("--scales", default="4,8", help="scale factors, comma-separated (default: 4,8)")
    parser.add_argument("--seeds", default="2,3", help="seeds, comma-separated (default: 2,3)")
    parser.add_argument("--methods", default="udaln,uds2c2,pfs2c2,recommended",
                        help="methods, comma-separated (default: udaln,uds2c2,pfs2c2,recommended)")
    parser.add_argument("--schedules", default="paper,auto", help="schedules, comma-separated (default: paper,auto)")
    parser.add_argument("--eval_every", type=int, default=250,
                        help="epochs between the checks that make the curves (default: 250)")
    parser.add_argument("--report_only", action="store_true",
                        help="train nothing: tabulate and draw the complete runs only")
    add_runner_options(parser, "runs")
    parser.add_argument("--out", default=None,
                        help="folder of the results (default: <checkpoints_dir>/<data_name>)")
    opts, train_argv = parser.parse_known_args(argv)
    check_runner_options(parser, opts)
    opts.scales = [int(v) for v in opts.scales.split(",")]
    opts.seeds = [int(v) for v in opts.seeds.split(",")]
    opts.methods = opts.methods.split(",")
    opts.schedules = opts.schedules.split(",")
    if set(opts.schedules) - {"paper", "auto"}:
        parser.error(f"--schedules {','.join(opts.schedules)}: choose from paper, auto")
    if "--checkpoints_dir" not in train_argv:
        train_argv = train_argv + ["--checkpoints_dir", os.path.join(ROOT, "checkpoints", "convergence")]
    return opts, train_argv


def plan(opts, train_argv):
    """The runs, named by fusion.run_folder.run_folder_name for exactly their options."""
    runs = []
    for method in opts.methods:
        for scale in opts.scales:
            for seed in opts.seeds:
                for schedule in opts.schedules:
                    argv = list(train_argv) + ["--method", method, "--scale_factor", str(scale), "--seed", str(seed),
                                               "--schedule", schedule, "--eval_every", str(opts.eval_every)]
                    args = get_args(argv + ["--device", "cpu"])
                    folder = os.path.join(args.checkpoints_dir, run_folder_name(args))
                    command = (sys.executable, TRAIN_SCRIPT, *argv, "--threads", str(opts.threads))
                    runs.append(Run(method, scale, seed, schedule, folder, command, opts.threads))
    return runs


def stage_curve(entries):
    """A stage's curve from metrics.json's check_history entries: (epochs, training seconds, PSNR, SAM, the
    check's key), judged by the first of STAGE_CHECKS the stage has (None when it has neither)."""
    key = next((k for k in STAGE_CHECKS if entries and k in entries[0]["checks"]), None)
    if key is None:
        return None
    checks = [e["checks"][key] for e in entries]
    return {"check": key, "epoch": [e["epoch"] for e in entries], "seconds": [e["seconds"] for e in entries],
            "PSNR": [c["PSNR"] for c in checks], "SAM": [c.get("SAM") for c in checks]}


def stops_improving(curve, epochs):
    """The first epoch at which the stage's PSNR is within IMPROVING_DB of the best it reaches, with that
    epoch as a fraction of the stage's ``epochs``."""
    psnr = np.asarray(curve["PSNR"])
    first = int(np.argmax(psnr >= psnr.max() - IMPROVING_DB))
    return {"epoch": curve["epoch"][first], "fraction": curve["epoch"][first] / epochs,
            "best_PSNR": float(psnr.max()), "last_PSNR": float(psnr[-1])}


def run_values(run):
    """A complete run's numbers and curves from its metrics.json, or None."""
    metrics = read_metrics(run.folder)
    if metrics is None or "final" not in metrics:
        return None
    options = metrics["options"]
    stages = {}
    for stage, entries in sorted(metrics.get("check_history", {}).items()):
        result = metrics["stage_results"].get(stage, {})
        curve = stage_curve(entries)
        epochs = options[f"epoch_stage{stage}"]
        stages[stage] = {"seconds": result.get("seconds"), "schedule": result.get("schedule"), "curve": curve,
                         "loss": metrics["loss_history"].get(stage),
                         "stops_improving": stops_improving(curve, epochs) if curve else None}
    return {"PSNR": metrics["final"]["PSNR"], "SAM": metrics["final"]["SAM"], "seconds": metrics["total_seconds"],
            "stages": stages}


def _summary(values):
    return f"PSNR {values['PSNR']:.2f} dB, SAM {values['SAM']:.3f} deg, {values['seconds']:.0f} s"


def _mean_spread(numbers):
    numbers = [n for n in numbers if n is not None]
    if not numbers:
        return None, None
    return float(np.mean(numbers)), (max(numbers) - min(numbers)) / 2 if len(numbers) > 1 else None


def _cell(mean, spread, digits):
    if mean is None:
        return "-"
    return f"{mean:.{digits}f}" + (f" ± {spread:.{digits}f}" if spread is not None else "")


def comparison(runs, values):
    """The schedules side by side: one row per (method, scale), the mean (and half the range) over the seeds
    of the final PSNR, SAM and the run's seconds, with the auto schedule's differences and whether they meet
    the target (TARGET_*). Returns (Markdown lines, rows as dicts)."""
    header = ["| method | r | paper PSNR / SAM / s | auto PSNR / SAM / s | auto - paper, dB / deg | time auto / paper "
              "| target met |", "|---|---|---|---|---|---|---|"]
    lines, rows = list(header), []
    for method, scale in dict.fromkeys((r.method, r.scale) for r in runs):
        cells, numbers = [], {}
        for schedule in ("paper", "auto"):
            done = [values[r] for r in runs if (r.method, r.scale, r.schedule) == (method, scale, schedule)
                    and values.get(r)]
            stats = {k: _mean_spread([v[k] for v in done]) for k in ("PSNR", "SAM", "seconds")}
            numbers[schedule] = {k: m for k, (m, _) in stats.items()}
            cells.append(" / ".join([_cell(*stats["PSNR"], 2), _cell(*stats["SAM"], 3), _cell(*stats["seconds"], 0)]))
        paper, auto = numbers["paper"], numbers["auto"]
        row = {"method": method, "scale": scale, "paper": paper, "auto": auto}
        if paper["PSNR"] is not None and auto["PSNR"] is not None:
            row.update(dPSNR=auto["PSNR"] - paper["PSNR"], dSAM=auto["SAM"] - paper["SAM"],
                       time_fraction=auto["seconds"] / paper["seconds"])
            row["target_met"] = bool(row["dPSNR"] >= -TARGET_PSNR_DB and row["dSAM"] <= TARGET_SAM_DEG
                                     and row["time_fraction"] <= TARGET_TIME_FRACTION)
            cells += [f"{row['dPSNR']:+.2f} / {row['dSAM']:+.3f}", f"{row['time_fraction']:.2f}",
                      "yes" if row["target_met"] else "no"]
        else:
            cells += ["-", "-", "-"]
        lines.append(f"| {method} | {scale} | " + " | ".join(cells) + " |")
        rows.append(row)
    return lines, rows


def improvement_table(runs, values):
    """Where each stage of the paper schedule stops improving (first check within IMPROVING_DB of its best
    PSNR), and where the auto schedule ended it (epochs run, the epoch whose state it kept)."""
    lines = ["| method | r | seed | stage | check | paper: stops improving at epoch (fraction) | paper: best / last "
             "PSNR | auto: epochs run, state kept | auto: last PSNR |", "|---|---|---|---|---|---|---|---|---|"]
    for run in runs:
        if run.schedule != "paper" or not values.get(run):
            continue
        twin = next((r for r in runs if (r.method, r.scale, r.seed, r.schedule) ==
                     (run.method, run.scale, run.seed, "auto")), None)
        auto = values.get(twin) if twin else None
        for stage, info in values[run]["stages"].items():
            stop = info["stops_improving"]
            if stop is None:
                continue
            auto_stage = auto["stages"].get(stage) if auto else None
            schedule = auto_stage["schedule"] if auto_stage else None
            kept = f"{schedule['epochs_run']}, {schedule['best_epoch']}" if schedule else "-"
            auto_last = (f"{auto_stage['curve']['PSNR'][-1]:.2f}" if auto_stage and auto_stage["curve"] else "-")
            lines.append(f"| {run.method} | {run.scale} | {run.seed} | {stage} | {info['curve']['check']} | "
                         f"{stop['epoch']} ({stop['fraction']:.2f}) | "
                         f"{stop['best_PSNR']:.2f} / {stop['last_PSNR']:.2f} | {kept} | {auto_last} |")
    return lines


def draw(path, runs, values):
    """The curves: for each (method, scale) a panel of PSNR against training seconds, paper solid, auto
    dashed, one colour per seed: X_hat's (the final one marked), or for a method that forms X_hat only after
    training (the recommended mode) the stage's consistency check, with the final X_hat's PSNR in the
    legend."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = list(dict.fromkeys((r.method, r.scale) for r in runs))
    columns = min(len(panels), PANELS_PER_ROW)
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.6 * rows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    seeds = sorted({r.seed for r in runs})
    for ax, (method, scale) in zip(axes.flat, panels):
        done = [r for r in runs if (r.method, r.scale) == (method, scale) and values.get(r)]
        curves = [info["curve"] for r in done for info in values[r]["stages"].values() if info["curve"]]
        check = "fusion" if any(c["check"] == "fusion" for c in curves) else "consistency"
        for run in done:
            colour = f"C{seeds.index(run.seed)}"
            style = "-" if run.schedule == "paper" else "--"
            label = f"seed {run.seed} {run.schedule}"
            if check != "fusion":
                label += f" (X_hat {values[run]['PSNR']:.2f} dB)"
            for info in values[run]["stages"].values():
                curve = info["curve"]
                if curve is not None and curve["check"] == check:
                    ax.plot(curve["seconds"], curve["PSNR"], style, color=colour, lw=1.2, label=label)
                    label = None
            if check == "fusion":
                ax.plot([values[run]["seconds"]], [values[run]["PSNR"]], "o" if run.schedule == "paper" else "s",
                        color=colour, ms=4)
        ax.set_title(f"{method}, r = {scale}")
        ax.set_xlabel("training seconds")
        ax.set_ylabel("PSNR of X_hat (dB)" if check == "fusion" else "PSNR, LR-MSI consistency (dB)")
        ax.grid(alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        if handles:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    opts, train_argv = parse(argv)
    train = get_args(train_argv + ["--device", "cpu"])
    out = os.path.abspath(opts.out or os.path.join(train.checkpoints_dir, train.data_name))
    os.makedirs(out, exist_ok=True)
    runs = plan(opts, train_argv)
    load_before = os.getloadavg()
    started = time.time()
    interrupted, outcome = False, {}
    try:
        if not opts.report_only:
            outcome = run_all(runs, lambda r: run_status(named_run_folders(r.folder), r.command, r.threads,
                                                         opts.busy_minutes, folder=r.folder),
                              run_values, _summary, runner_for(opts, os.path.join(out, "submitit"), "convergence"),
                              os.path.join(out, "logs"))
    except KeyboardInterrupt:
        interrupted = True
    values = {run: run_values(run) for run in runs}
    if opts.report_only:
        outcome = {run: "complete" for run in runs if values[run]}
    table, rows = comparison(runs, values)
    load = (f"load average (1 min) {load_before[0]:.2f} at the start, {os.getloadavg()[0]:.2f} at the end"
            if not opts.report_only else "tabulated from the complete runs (--report_only)")
    text = ["# Time to quality: the papers' schedules and --schedule auto", "",
            f"{train.data_name}, Wald's protocol; options {' '.join(train_argv) or '(defaults)'}; "
            f"{opts.threads} thread(s) per run, {opts.jobs or 'auto'} run(s) at once; {load}. PSNR in dB, SAM in "
            "degrees, against the reference; s: the run's training and results (total_seconds). Mean ± half the "
            f"range over seeds {', '.join(map(str, opts.seeds))}. Target: at least the paper's PSNR - "
            f"{TARGET_PSNR_DB} dB, at most its SAM + {TARGET_SAM_DEG} deg, in at most {TARGET_TIME_FRACTION:.0%} of "
            "its time.", "", *table, "", "## Where each stage stops improving", "",
            f"First check within {IMPROVING_DB} dB of the stage's best PSNR (fusion: X_hat against the reference; "
            "consistency: the two LR-MSIs, stage 1).", "", *improvement_table(runs, values), ""]
    with open(os.path.join(out, "convergence.md"), "w") as f:
        f.write("\n".join(text))
    with open(os.path.join(out, "convergence.json"), "w") as f:
        json.dump({"options": train_argv, "load_average": [load_before, os.getloadavg()],
                   "seconds": time.time() - started, "comparison": rows,
                   "runs": [{"label": r.label, "folder": r.folder, "values": values[r]} for r in runs]}, f, indent=1)
    draw(os.path.join(out, "convergence.png"), runs, values)
    print("\n".join(table))
    print(f"results: {out}", flush=True)
    return exit_status(interrupted, [r.label for r in runs if outcome.get(r) != "complete"], len(runs), "runs")


if __name__ == "__main__":
    sys.exit(main())
