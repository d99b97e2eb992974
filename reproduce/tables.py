"""The papers' tables in one command: UDALN's Table I (the ablation of its training stages 1+2 / 3 / 1+2+3,
and stages 1+2 given the true PSF and SRF) and Tables II-III (every method at scale factors 5 and 8: the three
deep methods and every classical baseline of ``baselines.BASELINES``) with SAM (degrees), ERGAS, PSNR (dB),
RMSE, CC, SSIM and the wall time (s), for any data set, all on one Wald pair per scale (Li et al., IEEE GRSL
2022, Tables I-III; the same protocol for PFS2C2 and UDS2C2).

    python -m reproduce.tables [--scales 5,8] [--methods LIST] [--tables ablation,comparison]
        [--seeds 2,3] [--degradations original,normalised]
        [--jobs N] [--threads T] [--executor pool|local|slurm] [--out DIR] [train_all_special.py options]

With ``--degradations``, each deep method has a row per degradation model ("papers' model" is
``original``, the UDALN paper's free PSF; ``normalised`` is this project's, docs/degradation_model.md).
With ``--seeds``, each deep row is the mean over one run per seed and shows the spread (half the range,
"±") beside each value; a row with fewer complete seeds than asked says so in its label.

Each cell (``reproduce.cells``) is a subprocess: ``train_all_special.py --method M --scale_factor S
[--stages 12|3] --threads T`` plus the train_all_special.py options given here (data set, schedule,
seed, ...), writing its run folder in --checkpoints_dir, or a baseline fusing the pair saved in
``<out>/pairs/`` into ``<out>/baselines/<method>_r<S>/``. Complete cells (metrics.json present) are
skipped, so a sweep resumes; a progress line is printed per finished cell. The tables go to
``<out>/tables.md``, ``tables.csv``, ``tables.tex`` and ``tables.json`` (default out:
``<checkpoints_dir>/tables/<data_name>/``), with the best value of each column in bold (lowest SAM,
ERGAS, RMSE, time; highest PSNR, CC, SSIM), the seed and the git commit.
"""
import argparse
import csv
import io
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from baselines import BASELINES
from config import METHODS as DEEP_METHODS
from config import ROOT, build_parser, get_args
from fusion.jobs import (TRAIN_SCRIPT, add_runner_options, check_runner_options, exit_status, read_metrics, run_all,
                         runner_for)
from reproduce.cells import Cell, cell_status

LABELS = {"bicubic": "Bicubic", "gsa": "GSA", "mtf_glp_hs": "MTF-GLP-HS", "cnmf": "CNMF", "hysure": "HySure",
          "fuse": "FUSE", "cstf": "CSTF", "stereo": "STEREO", "blind_stereo": "Blind-STEREO", "csu": "CSU",
          "gsomp": "G-SOMP+", "usdn": "uSDN", "udaln": "UDALN", "pfs2c2": "PFS2C2", "uds2c2": "UDS2C2",
          "recommended": "Recommended mode (blind)"}
# Deep methods longest first (PFS2C2 takes about twice UDS2C2's time and three times UDALN's at one thread),
# after the baselines (seconds each), so that a pool of workers finishes as early as it can; the project's
# recommended mode (under a minute) last.
DEFAULT_METHODS = tuple(BASELINES) + ("pfs2c2", "uds2c2", "udaln", "recommended")
# Table I's rows: (stages, label, trained with the true PSF and SRF). The last row is not the paper's: the
# stages 1+2 of a run given the true operators (--isCal_PSF No --isCal_SRF No) tell how much of the result
# the blind estimation of the degradations costs.
ABLATION_STAGES = (("12", "1+2", False), ("3", "3", False), ("123", "1+2+3", False),
                   ("12", "1+2, true PSF and SRF", True))
KNOWN_DEGRADATIONS = ("--isCal_PSF", "No", "--isCal_SRF", "No")
TABLE_KINDS = ("ablation", "comparison")
ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X")
# Options of train_all_special.py that the sweep sets per cell itself, or that give no reference to score.
SET_PER_CELL = ("method", "scale_factor", "stages", "resume", "overwrite")
# Options the sweep sets per cell when their plural form (--seeds, --degradations) is given.
PLURAL_OPTIONS = {"seeds": "seed", "degradations": "degradation"}
DEGRADATION_LABELS = {"original": "papers' model", "normalised": "normalised model"}
NO_REFERENCE = ("lr_hsi", "hr_msi", "reference", "reduced_resolution")


@dataclass(frozen=True)
class Column:
    """A table column: ``key`` in a row's values, ``header``, ``fmt`` for its numbers, ``better``
    (min or max) picks the bold value."""
    key: str
    header: str
    fmt: str
    better: object


COLUMNS = (Column("SAM", "SAM", "{:.3f}", min), Column("ERGAS", "ERGAS", "{:.3f}", min),
           Column("PSNR", "PSNR", "{:.2f}", max), Column("RMSE", "RMSE", "{:.5f}", min),
           Column("CC", "CC", "{:.5f}", max), Column("SSIM", "SSIM", "{:.4f}", max),
           Column("time", "Time (s)", "{:.2f}", min))


@dataclass
class Row:
    """One line of a table: its ``label``, ``values`` {column key: float, or None when the cell is not
    complete; over several seeds, the mean}, the cell's ``folder`` (the first seed's), ``spread``
    {column key: half the range over the seeds} (empty for one seed) and ``seeds`` (the number of
    complete runs the values come from)."""
    label: str
    values: dict
    folder: str = ""
    spread: dict = field(default_factory=dict)
    seeds: int = 1


@dataclass
class Table:
    """``number`` (roman, as in the paper), ``title``, ``first`` (the first column's header), ``scale``
    (r), ``rows`` (Row); ``id`` names it in the CSV and in the LaTeX label."""
    id: str
    number: str
    title: str
    first: str
    scale: int
    rows: list = field(default_factory=list)


# ----------------------------------------------------------------------------- writers

def _shown(column, value):
    """The value as the table prints it, or None for a missing or NaN value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return column.fmt.format(value)


def best_rows(table):
    """{column key: set of row indices holding the best value} (lowest SAM, ERGAS, RMSE, time; highest
    PSNR, CC, SSIM), compared as printed, so that values equal in the table are bold together; rows
    without a value are left out, a column without any value has no entry."""
    best = {}
    for column in COLUMNS:
        shown = {i: float(s) for i, row in enumerate(table.rows)
                 if (s := _shown(column, row.values.get(column.key))) is not None}
        if shown:
            target = column.better(shown.values())
            best[column.key] = {i for i, v in shown.items() if v == target}
    return best


def _cells(table, bold, plus_minus="±"):
    """Each row's label and printed values, with ``bold(text)`` around the best ones, '-' for none, and the
    spread over seeds after the value (``plus_minus`` and the spread in the column's format)."""
    best = best_rows(table)
    lines = []
    for i, row in enumerate(table.rows):
        texts = []
        for column in COLUMNS:
            text = _shown(column, row.values.get(column.key))
            if text is None:
                texts.append("-")
                continue
            text = bold(text) if i in best.get(column.key, ()) else text
            spread = _shown(column, row.spread.get(column.key))
            texts.append(f"{text} {plus_minus}{spread}" if spread is not None else text)
        lines.append((row.label, texts))
    return lines


def provenance_line(provenance):
    """'Seed 2, git commit 0123abc...' or 'Seeds 2, 3, ...' (with ', with uncommitted changes' when the
    checkout was dirty)."""
    seeds = str(provenance["seed"])
    return f"Seed{'s' if ',' in seeds else ''} {seeds}, git commit {provenance['commit']}"


def markdown(tables, provenance):
    """The tables as one Markdown document: a header with the data set, seed, commit and units, then
    one section per table, the best value of each column in bold (**x**)."""
    out = [f"# Reproduced tables: {provenance['data_name']}", "",
           f"{provenance_line(provenance)}. {provenance['note']}", ""]
    for table in tables:
        out += [f"## Table {table.number}: {table.title}", "",
                "| " + " | ".join([table.first] + [c.header for c in COLUMNS]) + " |",
                "|---" + "|---:" * len(COLUMNS) + "|"]
        out += ["| " + " | ".join([label] + texts) + " |" for label, texts in _cells(table, lambda t: f"**{t}**")]
        out.append("")
    return "\n".join(out)


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text):
    """``text`` with LaTeX's special characters escaped."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def latex(tables, provenance):
    """The tables as LaTeX ``table`` environments (plain ``tabular`` with ``\\hline``, no package
    needed), the best value of each column in ``\\textbf``, the seed and commit in each caption."""
    out = [f"% Reproduced tables: {latex_escape(provenance['data_name'])}. "
           f"{latex_escape(provenance_line(provenance))}."]
    for table in tables:
        out += [r"\begin{table}[htbp]", r"\centering",
                rf"\caption{{{latex_escape(table.title)}. {latex_escape(provenance_line(provenance))}.}}",
                rf"\label{{tab:{table.id}}}",
                r"\begin{tabular}{l" + "r" * len(COLUMNS) + "}", r"\hline",
                " & ".join([latex_escape(table.first)] + [latex_escape(c.header) for c in COLUMNS]) + r" \\",
                r"\hline"]
        out += [" & ".join([latex_escape(label)] + texts) + r" \\"
                for label, texts in _cells(table, lambda t: rf"\textbf{{{t}}}", r"$\pm$")]
        out += [r"\hline", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(out)


def csv_text(tables, provenance):
    """The tables as one CSV: a row per table line with the table id, r, the label, the unrounded values
    (empty when missing; means over seeds), ``best`` (the columns where the line is best, ';'-separated:
    the bold of the other formats), the seed(s), the commit, the number of seeds averaged and the spread
    of each value over them (half the range; empty for one seed)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    keys = [c.key if c.key != "time" else "time_s" for c in COLUMNS]
    writer.writerow(["table", "r", "row"] + keys + ["best", "seed", "commit", "seeds"] + [f"{k}_spread" for k in keys])

    def number(value):
        return "" if value is None else repr(float(value))

    for table in tables:
        best = best_rows(table)
        for i, row in enumerate(table.rows):
            writer.writerow([table.id, table.scale, row.label] + [number(row.values.get(c.key)) for c in COLUMNS]
                            + [";".join(c.key for c in COLUMNS if i in best.get(c.key, ())),
                               provenance["seed"], provenance["commit"], row.seeds]
                            + [number(row.spread.get(c.key)) for c in COLUMNS])
    return buffer.getvalue()


def _atomic_text(path, text):
    partial = f"{path}.{os.getpid()}.part"
    with open(partial, "w") as f:
        f.write(text)
    os.replace(partial, path)


def write_tables(tables, folder, provenance, extra=None):
    """Write tables.md, tables.csv, tables.tex and tables.json (the tables' values, best rows, folders,
    the provenance and ``extra``) into ``folder``; returns their paths."""
    os.makedirs(folder, exist_ok=True)
    paths = {ext: os.path.join(folder, f"tables.{ext}") for ext in ("md", "csv", "tex", "json")}
    _atomic_text(paths["md"], markdown(tables, provenance))
    _atomic_text(paths["csv"], csv_text(tables, provenance))
    _atomic_text(paths["tex"], latex(tables, provenance))
    record = {**provenance, **(extra or {}), "tables": [
        {"id": t.id, "number": t.number, "title": t.title, "scale": t.scale,
         "best": {k: sorted(t.rows[i].label for i in v) for k, v in best_rows(t).items()},
         "rows": [{"label": r.label, "folder": r.folder, "values": r.values, "spread": r.spread, "seeds": r.seeds}
                  for r in t.rows]} for t in tables]}
    _atomic_text(paths["json"], json.dumps(record, indent=2))
    return paths


# ----------------------------------------------------------------------------- provenance

def git_commit(root=ROOT):
    """The checkout's HEAD commit (hex), '+ uncommitted changes' appended when tracked files differ from
    it, or 'unknown (...)' outside a git checkout. Only reads the repository."""
    def git(*argv):
        return subprocess.run(["git", "-C", root, *argv], capture_output=True, text=True, check=True).stdout.strip()
    try:
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{commit}, with uncommitted changes" if dirty else commit


# ----------------------------------------------------------------------------- the sweep

def parse(argv):
    """This command's options and the train_all_special.py options passed through to every cell
    (validated by config.get_args: a bad one exits with its one-line message, status 2)."""
    parser = argparse.ArgumentParser(
        prog="python -m reproduce.tables", allow_abbrev=False,
        description="The papers' tables (UDALN Table I, Tables II-III) in one command. Options not listed "
                    "here are train_all_special.py's (e.g. --data_name, --default_datapath, --seed, "
                    "--epoch_stage1) and are passed to every deep cell and to the Wald simulation.")
    parser.add_argument("--scales", default="5,8", help="scale factors, comma-separated (default: 5,8)")
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                        help="methods of the comparison tables, in table order (default: every baseline, then "
                             "pfs2c2, uds2c2, udaln, recommended)")
    parser.add_argument("--tables", default=",".join(TABLE_KINDS),
                        help="ablation (Table I: UDALN stages 12 / 3 / 123) and/or comparison (Tables II-III) "
                             "(default: both)")
    parser.add_argument("--seeds", default=None,
                        help="seeds of the deep cells, comma-separated: each deep row is their mean and spread "
                             "(default: one run, the --seed of the cells' options)")
    parser.add_argument("--degradations", default=None,
                        help="degradation models of the deep cells, comma-separated (original: the papers'; "
                             "normalised): a row per model (default: one row, each method's default model)")
    add_runner_options(parser, "cells")
    parser.add_argument("--out", default=None,
                        help="folder of the tables, the Wald pairs and the baseline cells (default: "
                             "<checkpoints_dir>/tables/<data_name>/)")
    opts, train_argv = parser.parse_known_args(argv)

    def numbers(text, option, least):
        try:
            values = [int(v) for v in text.split(",")]
        except ValueError:
            values = []
        if not values or min(values) < least:
            parser.error(f"--{option} {text}: give comma-separated integers >= {least}")
        return values

    opts.scales = numbers(opts.scales, "scales", 2)
    opts.seeds = None if opts.seeds is None else numbers(opts.seeds, "seeds", 0)
    if opts.degradations is not None:
        opts.degradations = [d for d in opts.degradations.split(",") if d]
        if not opts.degradations or set(opts.degradations) - set(DEGRADATION_LABELS):
            parser.error(f"--degradations {','.join(opts.degradations)}: choose from "
                         f"{', '.join(DEGRADATION_LABELS)}")
    opts.methods = [m for m in opts.methods.split(",") if m]
    unknown = [m for m in opts.methods if m not in LABELS]
    if unknown or not opts.methods:
        parser.error(f"--methods: unknown {', '.join(unknown) or '(none given)'}; choose from "
                     f"{', '.join(DEFAULT_METHODS)}")
    opts.tables = [t for t in opts.tables.split(",") if t]
    if not opts.tables or set(opts.tables) - set(TABLE_KINDS):
        parser.error(f"--tables {','.join(opts.tables)}: choose from {', '.join(TABLE_KINDS)}")
    check_runner_options(parser, opts)
    given, unknown = build_parser().parse_known_args(train_argv)
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)} (python -m reproduce.tables -h lists this "
                     "command's options, python train_all_special.py -h those passed to the cells)")
    defaults = build_parser().parse_args([])
    for plural, name in PLURAL_OPTIONS.items():
        if getattr(opts, plural) is not None and getattr(given, name) != getattr(defaults, name):
            parser.error(f"--{name} cannot be passed to the cells with --{plural}: the sweep sets it per cell")
    for name in SET_PER_CELL + NO_REFERENCE:
        if getattr(given, name) != getattr(defaults, name):
            why = ("the sweep sets it per cell (--scales, --methods, --tables)" if name in SET_PER_CELL
                   else "the tables need a reference cube: give a data set (--data_name, --default_datapath)")
            parser.error(f"--{name} cannot be passed to the cells: {why}")
    train = get_args(train_argv + ["--device", "cpu"])  # CPU here only: the device does not change a run's name
    return opts, train_argv, train


def _cell_args(train_argv, method, scale, stages, seed=None, degradation=None):
    """train_all_special.py's options of a deep cell, without --threads (not part of the run's name)."""
    return list(train_argv) + ["--method", method, "--scale_factor", str(scale)] + (
        ["--stages", stages] if stages != "123" else []) + (
        ["--seed", str(seed)] if seed is not None else []) + (
        ["--degradation", degradation] if degradation is not None else [])


def _deep_label(method, degradation):
    """'UDALN', or 'UDALN (papers' model)' when the tables compare degradation models."""
    return LABELS[method] + (f" ({DEGRADATION_LABELS[degradation]})" if degradation else "")


def plan(opts, train_argv, train, out):
    """The cells and the tables: the Wald pair of each scale (and seed, where the seed changes the pair:
    noise or a radiometric mismatch) simulated once and saved to ``<out>/pairs/<data_name>_r<S>.npz``
    (the baselines' input; the deep runs simulate the same pair with data_loader.Dataset), a deep cell per
    (method, scale, stages, seed, degradation model) named by fusion.run_folder.run_folder_name for exactly its options,
    a baseline cell per (baseline, scale, distinct pair). Returns (cells, layout, pairs): the cells in the
    order they are started (baselines, then the longest deep runs), the tables as (Table without rows,
    [(row label, [Cell, one per seed]), ...]) and {scale: {"path", "sha256", "cube"}} (the first seed's
    pairs). Raises data_loader.DataError for a bad data set."""
    from fusion.run_folder import run_folder_name
    from reproduce.cells import save_wald_pair, wald_pair

    seeds = opts.seeds or [None]
    degradations = opts.degradations or [None]
    cells, layout, pairs = {}, [], {}

    def variant(seed, degradation, known):
        return " ".join(([f"seed{seed}"] if opts.seeds and len(opts.seeds) > 1 else [])
                        + ([degradation] if degradation and len(opts.degradations or ()) > 1 else [])
                        + (["known"] if known else []))

    def deep(method, scale, stages, seed, degradation, known=False):
        argv = _cell_args(train_argv, method, scale, stages, seed, degradation) + list(KNOWN_DEGRADATIONS * known)
        args = get_args(argv + ["--device", "cpu"])
        folder = os.path.join(args.checkpoints_dir, run_folder_name(args, pairs[scale, seed]["cube"]))
        command = (sys.executable, TRAIN_SCRIPT, *argv, "--threads", str(opts.threads))
        return cells.setdefault(folder, Cell("deep", method, scale, stages, folder, command, opts.threads,
                                             variant=variant(seed, degradation, known)))

    def baseline(method, scale, seed):
        pair = pairs[scale, seed]
        folder = os.path.join(out, "baselines", f"{method}_r{scale}{pair['suffix']}")
        command = (sys.executable, "-m", "reproduce.cells", "--method", method, "--pair", pair["path"],
                   "--folder", folder)
        return cells.setdefault(folder, Cell("baseline", method, scale, "123", folder, command, opts.threads,
                                             pair["sha256"], pair["suffix"].lstrip("_")))

    for scale in opts.scales:
        for seed in seeds:
            seeded = ["--seed", str(seed)] if seed is not None else []
            pair = wald_pair(get_args(train_argv + seeded + ["--scale_factor", str(scale), "--device", "cpu"]))
            first = pairs.get((scale, seeds[0]))
            suffix = "" if first is None else f"_seed{seed}"
            path = os.path.join(out, "pairs", f"{train.data_name}_r{scale}{suffix}.npz")
            record = {"path": path, "sha256": save_wald_pair(pair, path), "cube": pair["cube"], "suffix": suffix}
            if first is not None and record["sha256"] == first["sha256"]:
                os.remove(path)
                record = first
            pairs[scale, seed] = record

    def where(scale):
        cube = f", cube {pairs[scale, seeds[0]]['cube']}" if train.image_index != 0 else ""
        return f"{train.data_name}{cube}, r = {scale}"

    def deep_row(method, scale, stages, degradation, known=False):
        return [deep(method, scale, stages, seed, degradation, known) for seed in seeds]

    def baseline_row(method, scale):
        return list(dict.fromkeys(baseline(method, scale, seed) for seed in seeds))

    if "ablation" in opts.tables:
        for scale in opts.scales:
            table = Table(f"ablation_r{scale}", ROMAN[0], f"UDALN, ablation of its training stages ({where(scale)})",
                          "Stages", scale)
            layout.append((table, [(label + (f" ({DEGRADATION_LABELS[d]})" if d else ""),
                                    deep_row("udaln", scale, stages, d, known))
                                   for d in degradations for stages, label, known in ABLATION_STAGES]))
    if "comparison" in opts.tables:
        for i, scale in enumerate(opts.scales):
            table = Table(f"comparison_r{scale}", ROMAN[min(i + 1, len(ROMAN) - 1)],
                          f"Comparison of the methods ({where(scale)})", "Method", scale)
            rows = []
            for m in opts.methods:
                if m == "recommended":  # one model only, the normalised one (methods.recommended)
                    rows.append((LABELS[m], deep_row(m, scale, "123", None)))
                elif m in DEEP_METHODS:
                    rows += [(_deep_label(m, d), deep_row(m, scale, "123", d)) for d in degradations]
                else:
                    rows.append((LABELS[m], baseline_row(m, scale)))
            layout.append((table, rows))
    order = {m: i for i, m in enumerate(DEFAULT_METHODS)}
    ordered = sorted(cells.values(), key=lambda c: (c.kind == "deep", order[c.method], c.stages != "123", c.scale))
    firsts = {scale: {k: v for k, v in pairs[scale, seeds[0]].items() if k != "suffix"} for scale in opts.scales}
    return ordered, layout, firsts


def cell_values(cell):
    """A complete cell's row values {SAM, ..., SSIM, time} from its metrics.json ("final",
    "total_seconds"), or None when it is not complete."""
    metrics = read_metrics(cell.folder)
    if metrics is None or "final" not in metrics or (cell.kind == "baseline"
                                                     and metrics.get("pair_sha256") != cell.pair_sha256):
        return None
    return {**{c.key: metrics["final"].get(c.key) for c in COLUMNS if c.key != "time"},
            "time": metrics.get("total_seconds")}


def _summary(values):
    seconds = values["time"]
    return f"PSNR {values['PSNR']:.2f} dB, {seconds:.{2 if seconds < 10 else 0}f} s"


def sweep(cells, opts, out, poll_seconds=0.5):
    """Run the cells that are not complete, ``--jobs`` at a time, with the chosen executor (fusion.jobs);
    print a progress line per cell ('[k/n] label: ...'). Returns {cell: outcome}, outcome one of
    "complete", "running" (left to another process), "failed" (see the log in ``<out>/logs/``)."""
    return run_all(cells, lambda cell: cell_status(cell, opts.busy_minutes), cell_values, _summary,
                   runner_for(opts, os.path.join(out, "submitit"), "reproduce-tables"), os.path.join(out, "logs"),
                   poll_seconds)


def row_of(label, cells):
    """A table Row from the cells of one line (one per seed): the mean of each value over the complete
    cells, and with two or more, the spread (half the range); empty values when none is complete. A row
    missing some seeds says how many it has in its label."""
    complete = [v for v in map(cell_values, cells) if v is not None]
    if len(complete) < len(cells) and complete:
        label = f"{label} ({len(complete)} of {len(cells)} seeds)"
    values, spread = {}, {}
    for column in COLUMNS:
        numbers = [v[column.key] for v in complete if v.get(column.key) is not None]
        if numbers:
            values[column.key] = float(np.mean(numbers))
            if len(numbers) > 1:
                spread[column.key] = (max(numbers) - min(numbers)) / 2
    return Row(label, values, cells[0].folder, spread, len(complete))


def build_tables(layout):
    """The tables of ``layout`` (plan's) with each row's values read from its cells' metrics.json
    (``row_of``; empty values for a row without a complete cell)."""
    return [Table(table.id, table.number, table.title, table.first, table.scale,
                  [row_of(label, cells) for label, cells in rows]) for table, rows in layout]


def main(argv=None):
    """The command line; returns the exit status: 0 every cell complete, 1 some cell failed or is left
    to another process (the tables hold the complete ones, '-' elsewhere), 2 bad options, 130 interrupted."""
    from data_loader import DataError

    opts, train_argv, train = parse(argv)
    out = os.path.abspath(opts.out or os.path.join(train.checkpoints_dir, "tables", train.data_name))
    try:
        cells, layout, pairs = plan(opts, train_argv, train, out)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    started = time.time()
    interrupted = False
    try:
        outcome = sweep(cells, opts, out)
    except KeyboardInterrupt:
        interrupted, outcome = True, {}
    provenance = {
        "data_name": train.data_name, "seed": ", ".join(map(str, opts.seeds)) if opts.seeds else train.seed,
        "commit": git_commit(),
        "note": (f"Wald's protocol (data_loader.simulate_pair), one pair per scale for every method. SAM in "
                 f"degrees, PSNR in dB, RMSE in the cube's units; time: wall time in seconds, {opts.threads} "
                 f"thread{'s' if opts.threads > 1 else ''} per cell (deep methods: training and results, "
                 "metrics.json total_seconds; baselines: the fusion, given the true PSF and SRF). Bold: the best "
                 "of each column (lowest SAM, ERGAS, RMSE, time; highest PSNR, CC, SSIM). '-': the cell is not "
                 "complete."),
    }
    extra = {"written": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "sweep_seconds": round(time.time() - started, 1),
             "threads": opts.threads, "executor": opts.executor, "train_options": train_argv,
             "pairs": {str(s): p for s, p in pairs.items()}}
    paths = write_tables(build_tables(layout), out, provenance, extra)
    print(f"tables: {', '.join(paths.values())}", flush=True)
    return exit_status(interrupted, [c.label for c in cells if outcome.get(c) != "complete"], len(cells), "cells")


if __name__ == "__main__":
    sys.exit(main())
