"""Many fusion runs, each a subprocess that writes a run folder, run a few at a time on this machine or as
SLURM jobs through submitit, resumed where they were interrupted and skipped where they are complete.
``reproduce.tables`` runs the papers' cells with it and ``fusion.batch`` a campaign of real pairs.

``Job``: one run (its command, its run folder or the folder its run folder goes in, its threads).
``run_status`` is the resume logic, ``run_command`` runs one command (in a local worker or a submitit
job: a plain function of this module, which imports no torch, so submitit pickles it by reference),
``run_all`` runs what is not complete and reports each as it ends.
"""
import concurrent.futures
import glob
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass

from config import ROOT, usable_cpus

TRAIN_SCRIPT = os.path.join(ROOT, "train_all_special.py")
# A deep run saves its checkpoint every --checkpoint_every minutes (5 by default): a folder without
# metrics.json touched more recently than this is taken to be trained by another process right now.
BUSY_MINUTES = 15.0
EXECUTORS = ("pool", "local", "slurm")


@dataclass(frozen=True)
class Status:
    """What to do with a run. ``state``: "complete" (skipped), "running" (another process trains it: not
    started), "resume" (continue the checkpoint in ``folder``), "rerun" (an incomplete or stale folder:
    made again, replacing it), "new". ``command``: what to run (None when nothing is run); ``why``: the
    reason, in words."""
    state: str
    folder: str
    command: tuple = None
    why: str = ""


def read_metrics(folder):
    """``folder``/metrics.json as a dict, or None when it is missing or unreadable (a folder with a damaged
    metrics.json is treated as incomplete and made again)."""
    try:
        with open(os.path.join(folder, "metrics.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _last_touched(folder):
    """The newest modification time (s since the epoch) of ``folder`` and the files directly in it."""
    times = [os.path.getmtime(folder)]
    times += [entry.stat().st_mtime for entry in os.scandir(folder) if entry.is_file()]
    return max(times)


def run_status(folders, command, threads, busy_minutes=BUSY_MINUTES, now=None, folder=""):
    """Whether a deep run whose run folder is one of ``folders`` (paths, the preferred first; the hidden
    ``.<name>.*.incomplete`` folders of an ``--overwrite`` run among them) must run, and how (a Status;
    ``folder``: the one it reports for a run made anew).

    Complete when one holds metrics.json. Otherwise one touched in the last ``busy_minutes`` minutes is
    being trained by another process ("running": not started, so that two processes never write one
    folder); one holding training_state.pt is resumed (``train_all_special.py --resume``); an incomplete
    folder without checkpoint is trained again with ``--overwrite`` (it replaces the folder once
    complete); no folder: ``command`` as it is.
    """
    from fusion.run_folder import CHECKPOINT_NAME  # here: a submitit job running run_command needs no torch

    folders = [f for f in folders if os.path.isdir(f)]
    for path in folders:
        if read_metrics(path) is not None:
            return Status("complete", path)
    now = time.time() if now is None else now
    for path in folders:
        idle = (now - _last_touched(path)) / 60.0
        if idle < busy_minutes:
            return Status("running", path, None,
                          f"{path} has no metrics.json and was written {idle:.0f} min ago: another process is "
                          f"probably training it; run again when it is done (or remove the folder)")
    for path in folders:
        if os.path.exists(os.path.join(path, CHECKPOINT_NAME)):
            resume = (sys.executable, TRAIN_SCRIPT, "--resume", path, "--threads", str(threads))
            return Status("resume", path, resume, f"resuming the interrupted run in {path}")
    if folders:
        return Status("rerun", folder or folders[0], tuple(command) + ("--overwrite",),
                      f"{folder or folders[0]} has no metrics.json and no checkpoint: trained again")
    return Status("new", folder, tuple(command))


def named_run_folders(folder):
    """The run folder ``folder`` and the hidden folders of an ``--overwrite`` run that will become it."""
    parent, name = os.path.split(folder)
    hidden = glob.glob(os.path.join(glob.escape(parent), f".{glob.escape(name)}.*.incomplete"))
    return [folder] + sorted(hidden, key=os.path.getmtime, reverse=True)


def run_folders_in(checkpoints_dir):
    """The run folders (complete or not) in ``checkpoints_dir``, the most recently touched first."""
    if not os.path.isdir(checkpoints_dir):
        return []
    folders = [entry.path for entry in os.scandir(checkpoints_dir) if entry.is_dir()]
    return sorted(folders, key=_last_touched, reverse=True)


def run_command(command, log_path, threads):
    """Run ``command`` (argv) from the repository folder with ``threads`` BLAS/OpenMP threads, its output
    appended to ``log_path``; returns its exit status."""
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads), PYTHONPATH=os.pathsep.join(
                   p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
    with open(log_path, "a") as log:
        log.write(f"$ {' '.join(command)}\n")
        log.flush()
        return subprocess.run(list(command), stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT).returncode


class SubmititRunner:
    """Runs commands as submitit jobs (``executor``: "local" or "slurm"); ``submit`` returns a job, whose
    done() and result() ``run_all`` polls like a local future."""

    def __init__(self, executor, folder, name, timeout_min, cpus, partition=None):
        import submitit

        self.executor = submitit.AutoExecutor(folder=folder, cluster=executor)
        self.executor.update_parameters(timeout_min=timeout_min, cpus_per_task=cpus, nodes=1, tasks_per_node=1,
                                        name=name, slurm_partition=partition)

    def submit(self, command, log_path, threads):
        return self.executor.submit(run_command, command, log_path, threads)

    def close(self, wait):
        """Nothing to wait for: a submitted job outlives the sweep, and the next one finds its folder."""


class LocalPool:
    """Runs commands as subprocesses, ``jobs`` at a time (a thread each waits on its subprocess)."""

    def __init__(self, jobs):
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=jobs)

    def submit(self, command, log_path, threads):
        return self.pool.submit(run_command, command, log_path, threads)

    def close(self, wait):
        self.pool.shutdown(wait=wait, cancel_futures=True)


def add_runner_options(parser, what):
    """The options of how the runs are run (``--jobs``, ``--threads``, ``--executor``, ``--slurm_*``,
    ``--busy_minutes``), for a command whose runs are ``what`` (e.g. "cells", "pairs")."""
    parser.add_argument("--jobs", type=int, default=None,
                        help=f"{what} run at once (default: usable cores // --threads locally; every one at once "
                             "on SLURM)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per run (default: 1)")
    parser.add_argument("--executor", choices=EXECUTORS, default="pool",
                        help="pool: a local pool of worker subprocesses; local: submitit's local executor; "
                             "slurm: SLURM jobs through submitit (default: pool)")
    parser.add_argument("--slurm_partition", default=None, help="SLURM partition (default: the cluster's)")
    parser.add_argument("--slurm_time", type=int, default=240, metavar="MINUTES",
                        help="time limit of each submitit job, minutes (default: 240)")
    parser.add_argument("--slurm_cpus", type=int, default=None, help="CPUs per SLURM job (default: --threads)")
    parser.add_argument("--busy_minutes", type=float, default=BUSY_MINUTES,
                        help="a run folder without metrics.json written to in the last this many minutes is being "
                             "trained by another process and is not started (default: 15)")


def check_runner_options(parser, opts):
    """``parser.error`` for a count option of ``add_runner_options`` below 1."""
    for option in ("jobs", "threads", "slurm_cpus", "slurm_time"):
        if getattr(opts, option) is not None and getattr(opts, option) < 1:
            parser.error(f"--{option} must be at least 1")


def runner_for(opts, folder, name):
    """A function of the count of runs to do that gives (runner, runs at once) as ``opts`` ask
    (``executor``, ``jobs``, ``threads``, ``slurm_time``, ``slurm_cpus``, ``slurm_partition``); submitit
    keeps its files in ``folder`` and names the jobs ``name``."""
    def make(todo):
        jobs = opts.jobs or (todo if opts.executor == "slurm" else max(1, usable_cpus() // opts.threads))
        if opts.executor == "pool":
            return LocalPool(jobs), jobs
        return SubmititRunner(opts.executor, folder, name, opts.slurm_time, opts.slurm_cpus or opts.threads,
                              opts.slurm_partition), jobs
    return make


def run_all(items, status_of, values_of, summarize, make_runner, logs, poll_seconds=0.5):
    """Run the ``items`` that are not complete and print a line per item as it is decided or ends
    ('[k/n] label: ...'). An item has ``label``, ``key`` (its log's name in ``logs``) and ``threads``;
    ``status_of(item)`` gives its Status, ``values_of(item)`` its results once complete (None otherwise)
    and ``summarize(values)`` one line of them; ``make_runner(count)`` gives (runner, jobs at once).
    Returns {item: outcome}, outcome one of "complete", "running" (left to another process), "failed"."""
    n = len(items)
    outcome, todo, k = {}, [], 0
    for item in items:
        status = status_of(item)
        if status.command is None:
            k += 1
            outcome[item] = status.state
            values = values_of(item) if status.state == "complete" else None
            what = f"already complete ({summarize(values)})" if values else f"not started: {status.why}"
            print(f"[{k}/{n}] {item.label}: {what}", flush=True)
        else:
            if status.why:
                print(f"{item.label}: {status.why}", flush=True)
            todo.append((item, status))
    if not todo:
        return outcome
    runner, jobs = make_runner(len(todo))
    queue, running = list(todo), {}
    try:
        while queue or running:
            while queue and len(running) < jobs:
                item, status = queue.pop(0)
                log_path = os.path.join(logs, f"{item.key}.log")
                running[runner.submit(status.command, log_path, item.threads)] = (item, log_path)
            finished = [handle for handle in running if handle.done()]
            if not finished:
                time.sleep(poll_seconds)
            for handle in finished:
                item, log_path = running.pop(handle)
                k += 1
                try:
                    reason = f"exit {handle.result()}"
                except Exception as exc:  # e.g. a submitit job past its time limit: reported, the rest goes on
                    reason = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}"
                values = values_of(item)
                outcome[item] = "complete" if values else "failed"
                what = summarize(values) if values else f"failed ({reason}); see {log_path}"
                print(f"[{k}/{n}] {item.label}: {what}", flush=True)
    except KeyboardInterrupt:
        print("interrupted: waiting for the running jobs (Ctrl-C in the terminal stops them too; a deep run "
              "saves its checkpoint and the next run resumes it)", flush=True)
        runner.close(wait=isinstance(runner, LocalPool))
        raise
    runner.close(wait=True)
    return outcome


def exit_status(interrupted, incomplete, total, what):
    """A sweep's exit status, as its command line returns it: 130 when it was interrupted, 1 (after a line
    naming them) when some of the ``total`` runs, the ``incomplete`` labels, are not complete, else 0.
    ``what`` names the runs ("cells", "pairs")."""
    if interrupted:
        return 130
    if incomplete:
        print(f"{len(incomplete)} of {total} {what} not complete: {', '.join(incomplete)}", flush=True)
        return 1
    return 0
