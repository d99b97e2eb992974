"""A campaign of real pairs: ``python -m fusion.batch PAIRS.csv`` fuses each pair of a table into its own run
folder, a few at a time on this machine (``--jobs``) or as SLURM jobs through submitit (``--executor
slurm``), resumes what was interrupted, skips what is complete, and ends with a summary table.

The table (CSV, a header row): one row per pair; the columns ``name`` (the pair's folder under
``--out``/runs/), ``lr_hsi`` and ``hr_msi`` (paths, relative ones taken from the table's folder), and any
option of train_all_special.py by its name (``msi_sensor``, ``method``, ``registration``, ...; an empty
cell leaves it out, ``yes``/``no`` for a flag such as ``reduced_resolution``). The options after the
table apply to every pair. The summary (``summary.csv`` and ``summary.md`` in ``--out``) gives each pair's
state, its quality without a reference (QNR, D_lambda, D_s; the reduced-resolution PSNR and SAM when it
ran), its time and its warnings; the exit status is 0 when every pair is complete, 1 otherwise.

    python -m fusion.batch pairs.csv --out checkpoints/campaign --jobs 2 --threads 1 --reduced_resolution
"""
import argparse
import csv
import os
import sys
from dataclasses import dataclass

from config import ROOT, OptionError, build_parser, get_args, options_argv
from fusion.jobs import (TRAIN_SCRIPT, Status, add_runner_options, check_runner_options, exit_status, read_metrics,
                         run_all, run_folders_in, run_status, runner_for)

REQUIRED = ("name", "lr_hsi", "hr_msi")
PATH_COLUMNS = ("lr_hsi", "hr_msi", "hsi_wavelengths", "srf", "msi_bands", "reference")
SET_PER_PAIR = ("checkpoints_dir", "resume", "overwrite", "threads")
SUMMARY_COLUMNS = ("pair", "state", "QNR", "D_lambda", "D_s", "RR PSNR (dB)", "RR SAM (deg)", "time (s)",
                   "warnings", "run folder")


@dataclass(frozen=True)
class PairJob:
    """One pair of the table: ``name``, its ``command`` (train_all_special.py with its options), the folder
    its run folder goes in (``checkpoints_dir``), its ``threads``; ``error``: why its options were refused
    (then it does not run)."""
    name: str
    command: tuple
    checkpoints_dir: str
    threads: int
    error: str = ""

    @property
    def label(self):
        return self.name

    @property
    def key(self):
        return self.name


def read_table(path):
    """The rows of the pairs table ``path`` as dicts (column -> non-empty text). Raises ValueError naming the
    file for a missing required column, an unknown option column, or a name used twice or not usable as a
    folder name."""
    options = {action.dest for action in build_parser()._actions}
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        columns = [c.strip() for c in reader.fieldnames or []]
        rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k is not None} for row in reader]
    missing = [c for c in REQUIRED if c not in columns]
    unknown = [c for c in columns if c not in REQUIRED and (c not in options or c in SET_PER_PAIR)]
    if missing or unknown:
        raise ValueError(f"{path}: " + "; ".join(
            ([f"missing column(s) {', '.join(missing)}"] if missing else []) +
            ([f"column(s) {', '.join(unknown)} are not options a pair may set (docs/options.md)"] if unknown else [])))
    names = [row["name"] for row in rows]
    for name in names:
        if not name or names.count(name) > 1 or os.sep in name or name.startswith("."):
            raise ValueError(f"{path}: the pair name {name!r} is empty, repeated or not a folder name; give each "
                             "pair its own name")
    return rows


def pair_jobs(rows, table_path, common, out, threads):
    """A PairJob per row: its options checked by config.get_args (a refused one carries the message)."""
    base = os.path.dirname(os.path.abspath(table_path))
    flags = {a.dest for a in build_parser()._actions if a.nargs == 0}
    jobs = []
    for row in rows:
        options = {column: (value.lower() in ("yes", "y", "true", "1") if column in flags else
                            os.path.join(base, value) if column in PATH_COLUMNS else value)
                   for column, value in row.items() if column != "name" and value}
        argv = options_argv(options)
        folder = os.path.join(out, "runs", row["name"])
        argv += [*common, "--checkpoints_dir", folder]
        error = ""
        try:
            get_args(argv, raise_errors=True)
        except OptionError as exc:
            error = f"refused: {exc}"
        jobs.append(PairJob(row["name"], (sys.executable, TRAIN_SCRIPT, *argv, "--threads", str(threads)), folder,
                            threads, error))
    return jobs


def pair_status(job, busy_minutes):
    if job.error:
        return Status("failed", "", None, job.error)
    return run_status(run_folders_in(job.checkpoints_dir), job.command, job.threads, busy_minutes)


def pair_values(job):
    """The complete run of ``job``: {folder, metrics}, or None."""
    for folder in run_folders_in(job.checkpoints_dir):
        metrics = read_metrics(folder)
        if metrics is not None:
            return {"folder": folder, "metrics": metrics}
    return None


def _summary_line(values):
    quality = values["metrics"].get("no_reference") or {}
    return f"QNR {quality.get('QNR', float('nan')):.4f}, {values['metrics'].get('total_seconds', 0):.0f} s"


def summary_rows(jobs, outcome):
    """One row (SUMMARY_COLUMNS) per pair."""
    rows = []
    for job in jobs:
        values = pair_values(job)
        if values is None:
            state = job.error or outcome.get(job, "not run")
            rows.append([job.name, state] + [""] * (len(SUMMARY_COLUMNS) - 2))
            continue
        metrics = values["metrics"]
        quality, reduced = metrics.get("no_reference") or {}, metrics.get("reduced_resolution") or {}
        warnings = metrics.get("warnings", [])
        rows.append([job.name, "complete"] + [_number(quality.get(k), 4) for k in ("QNR", "D_lambda", "D_s")] +
                    [_number(reduced.get("PSNR"), 2), _number(reduced.get("SAM"), 3),
                     _number(metrics.get("total_seconds"), 0),
                     f"{len(warnings)}" + (f": {warnings[0]}" if warnings else ""), values["folder"]])
    return rows


def _number(value, digits):
    return "" if value is None else f"{value:.{digits}f}"


def write_summary(rows, out):
    """summary.csv and summary.md in ``out``; returns their paths."""
    os.makedirs(out, exist_ok=True)
    csv_path, md_path = os.path.join(out, "summary.csv"), os.path.join(out, "summary.md")
    with open(csv_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(SUMMARY_COLUMNS)
        writer.writerows(rows)
    lines = ["| " + " | ".join(SUMMARY_COLUMNS) + " |", "|" + "---|" * len(SUMMARY_COLUMNS)]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    with open(md_path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return csv_path, md_path


def parse(argv):
    parser = argparse.ArgumentParser(
        prog="python -m fusion.batch", description="Fuse every pair of a table, each into its own run folder; "
        "the options after the table that this command does not know go to every pair's train_all_special.py.")
    parser.add_argument("table", help="CSV: name, lr_hsi, hr_msi, then any train_all_special.py option by name")
    parser.add_argument("--out", default=None, help="the campaign's folder: runs/<name>/, logs/, summary.csv/.md "
                        "(default: checkpoints/batch_<table name> in the repository folder)")
    add_runner_options(parser, "pairs")
    opts, common = parser.parse_known_args(argv)
    check_runner_options(parser, opts)
    return opts, common


def main(argv=None):
    """The command line; returns 0 when every pair is complete, 1 when one failed or is left to another
    process, 2 for a bad table, 130 interrupted."""
    opts, common = parse(argv)
    stem = os.path.splitext(os.path.basename(opts.table))[0]
    out = os.path.abspath(opts.out or os.path.join(ROOT, "checkpoints", f"batch_{stem}"))
    try:
        jobs = pair_jobs(read_table(opts.table), opts.table, common, out, opts.threads)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    interrupted = False
    try:
        outcome = run_all(jobs, lambda job: pair_status(job, opts.busy_minutes), pair_values, _summary_line,
                          runner_for(opts, os.path.join(out, "submitit"), "fusion-batch"), os.path.join(out, "logs"))
    except KeyboardInterrupt:
        interrupted, outcome = True, {}
    rows = summary_rows(jobs, outcome)
    csv_path, md_path = write_summary(rows, out)
    print(f"summary: {csv_path}, {md_path}", flush=True)
    return exit_status(interrupted, [row[0] for row in rows if row[1] != "complete"], len(jobs), "pairs")


if __name__ == "__main__":
    sys.exit(main())
