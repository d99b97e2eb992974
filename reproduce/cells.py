"""The cells of the papers' tables: one fusion each (a method at a scale factor, for UDALN also a choice
of stages), run as a subprocess that writes a folder whose metrics.json marks it complete.

A deep cell is ``train_all_special.py`` with the cell's options; its folder is the run folder that
``fusion.run_folder.run_folder_name`` gives for exactly those options, so runs started by hand with the same
options count as the cell. A baseline cell (``python -m reproduce.cells``) fuses the Wald pair saved
once per scale by ``save_wald_pair`` with one of ``baselines.BASELINES`` and writes
``<folder>/metrics.json`` (``final``: the metrics, ``total_seconds``: the fusion's wall time) and
``<folder>/My_Out.mat`` (the fused cube, variable ``Out``, H x W x C float32 in the cube's units).

``cell_status`` is the resume logic of a sweep (fusion.jobs's for a deep cell), which fusion.jobs runs.
Wald's protocol: the pair is simulated by ``data_loader.Dataset``, as for the deep runs.
"""
import argparse
import hashlib
import os
import sys
import time
from dataclasses import dataclass

import numpy as np

from fusion.jobs import BUSY_MINUTES, Status, named_run_folders, read_metrics, run_status

PAIR_ARRAYS = ("lhsi", "hmsi", "hhsi", "psf", "srf")


@dataclass(frozen=True)
class Cell:
    """One table cell. ``kind``: "deep" or "baseline"; ``method``: a train_all_special --method or a
    baselines.BASELINES key; ``scale``: r; ``stages``: "123", "12" or "3" (UDALN ablation; "123" for
    the others); ``folder``: where its metrics.json goes; ``argv``: the command that makes it from
    scratch; ``threads``: CPU threads it may use; ``pair_sha256``: for a baseline, the digest of the
    pair it must be scored on (``pair_digest``); ``variant``: what else tells it from its row's other cells
    (e.g. "seed3", "normalised"; "" when nothing)."""
    kind: str
    method: str
    scale: int
    stages: str
    folder: str
    argv: tuple
    threads: int
    pair_sha256: str = ""
    variant: str = ""

    @property
    def label(self):
        """e.g. 'udaln r=5', 'udaln stages 12 r=5', 'gsa r=8', 'udaln r=5 seed3 normalised'."""
        stages = f" stages {self.stages}" if self.stages != "123" else ""
        variant = f" {self.variant}" if self.variant else ""
        return f"{self.method}{stages} r={self.scale}{variant}"

    @property
    def key(self):
        """A file-name-safe identifier, e.g. 'udaln_s12_r5', 'udaln_r5_seed3_normalised'."""
        stages = f"_s{self.stages}" if self.stages != "123" else ""
        variant = f"_{self.variant.replace(' ', '_')}" if self.variant else ""
        return f"{self.method}{stages}_r{self.scale}{variant}"


def cell_status(cell, busy_minutes=BUSY_MINUTES, now=None):
    """Whether ``cell`` must run, and how (a Status).

    Deep cell: complete when ``cell.folder``/metrics.json exists. Otherwise the folder and the hidden
    ``.<name>.*.incomplete`` folders of an earlier ``--overwrite`` run are examined: one touched in the
    last ``busy_minutes`` minutes is being trained by another process ("running": not started, so
    that two processes never write one folder); one holding training_state.pt is resumed
    (``train_all_special.py --resume``); an incomplete folder without checkpoint is trained again with
    ``--overwrite`` (it replaces the folder once complete); no folder: the cell's command as it is.
    Baseline cell: complete when metrics.json exists and was computed on the pair of digest
    ``cell.pair_sha256``; otherwise run again (its files are overwritten).
    """
    folder = cell.folder
    metrics = read_metrics(folder)
    if cell.kind == "baseline":
        if metrics is not None and metrics.get("pair_sha256") == cell.pair_sha256:
            return Status("complete", folder)
        if metrics is not None:
            return Status("rerun", folder, cell.argv, "scored on another Wald pair (the data options changed)")
        return Status("new", folder, cell.argv)
    return run_status(named_run_folders(folder), cell.argv, cell.threads, busy_minutes, now, folder=folder)


# ----------------------------------------------------------------------------- the Wald pair of the baselines

def wald_pair(args):
    """The Wald pair train_all_special.py fuses for ``args`` (config.get_args of a simulated pair),
    simulated once by ``data_loader.Dataset``: a dict with lhsi (h x w x C), hmsi (H x W x Cm), hhsi
    (the reference, H x W x C), all float32 and scaled by the scaling rule (``factor``: multiply by it
    for the cube's units), psf (r x r), srf (C x Cm), out_valid (H x W bool, None when every pixel is
    valid), scale (r) and cube (the file stem of the cube fused). Raises data_loader.DataError."""
    from data_loader import Dataset  # torch is only needed where a pair is simulated

    dataset = Dataset(args)
    item = dataset[args.image_index]
    pair = {k: item[k].numpy().transpose(1, 2, 0) for k in ("lhsi", "hmsi", "hhsi")}
    pair.update(psf=np.asarray(dataset.PSF, dtype=np.float64), srf=np.asarray(dataset.sp_matrix, dtype=np.float64),
                out_valid=item.get("out_valid"), factor=float(item.get("factor", 1.0)), scale=int(args.scale_factor),
                cube=os.path.splitext(os.path.basename(dataset.imgpath_list[args.image_index]))[0])
    return pair


def pair_digest(pair):
    """SHA-256 (hex) of the pair's arrays and scale: equal digests, the very same pair."""
    digest = hashlib.sha256(str(pair["scale"]).encode())
    arrays = [pair[k] for k in PAIR_ARRAYS] + ([] if pair["out_valid"] is None else [pair["out_valid"]])
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def save_wald_pair(pair, path):
    """Write ``pair`` (``wald_pair``) to ``path`` (.npz) atomically, unless the file already holds the
    same pair; returns its digest (``pair_digest``)."""
    digest = pair_digest(pair)
    if os.path.exists(path):
        try:
            with np.load(path) as saved:
                if str(saved["sha256"]) == digest:
                    return digest
        except (OSError, ValueError, KeyError):
            pass  # unreadable or from an older layout: written again below
    os.makedirs(os.path.dirname(path), exist_ok=True)
    arrays = {k: pair[k] for k in PAIR_ARRAYS}
    if pair["out_valid"] is not None:
        arrays["out_valid"] = pair["out_valid"]
    partial = f"{path}.{os.getpid()}.part.npz"
    np.savez(partial, sha256=digest, scale=pair["scale"], factor=pair["factor"], cube=pair["cube"], **arrays)
    os.replace(partial, path)
    return digest


def load_wald_pair(path):
    """The pair written by ``save_wald_pair`` (same keys as ``wald_pair``, plus sha256). Raises
    data_loader.DataError when the file is missing or not such a pair."""
    from data_loader import DataError

    try:
        with np.load(path) as saved:
            pair = {k: saved[k] for k in saved.files}
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read the Wald pair ({exc}); run python -m reproduce.tables again, "
                        "which writes it") from None
    missing = [k for k in PAIR_ARRAYS + ("sha256", "scale", "factor") if k not in pair]
    if missing:
        raise DataError(f"{path}: not a Wald pair of reproduce.tables (no {', '.join(missing)}); run "
                        "python -m reproduce.tables again, which writes it")
    pair.setdefault("out_valid", None)
    pair.update(sha256=str(pair["sha256"]), scale=int(pair["scale"]), factor=float(pair["factor"]),
                cube=str(pair.get("cube", "")))
    return pair


def fuse_baseline(method, pair_path, folder):
    """One baseline cell: fuse the pair in ``pair_path`` with ``baselines.fuse_with(method, ...)`` (the
    true PSF and SRF given, float64, as benchmarks/baselines.py), score it against the reference
    (evaluation.evaluate over the valid pixels) and write ``folder``/My_Out.mat and metrics.json
    (last: it marks the cell complete). Returns the metrics.json dict. Raises DataError for a bad
    pair file and KeyError for an unknown method."""
    from baselines import fuse_with
    from evaluation import evaluate
    from fusion.run_folder import RunFolder

    pair = load_wald_pair(pair_path)
    y, z = (pair[k].astype(np.float64) for k in ("lhsi", "hmsi"))
    start = time.perf_counter()
    x_hat = fuse_with(method, y, z, pair["scale"], pair["psf"], pair["srf"])
    seconds = time.perf_counter() - start
    metrics = evaluate(pair["hhsi"].astype(np.float64), x_hat, pair["scale"], mask=pair["out_valid"])
    os.makedirs(folder, exist_ok=True)
    run = RunFolder(folder)
    run.save_output((x_hat * pair["factor"]).astype(np.float32))
    results = {"method": method, "kind": "baseline", "scale_factor": pair["scale"], "final": metrics,
               "total_seconds": seconds, "pair": os.path.abspath(pair_path), "pair_sha256": pair["sha256"],
               "threads": os.environ.get("OMP_NUM_THREADS"), "degradations": "true PSF and SRF given"}
    run.save_metrics(results)
    return results


def main(argv=None):
    """``python -m reproduce.cells --method NAME --pair PAIR.npz --folder DIR``: one baseline cell;
    exit status 0 done, 1 a bad pair file or method (one line, no traceback)."""
    parser = argparse.ArgumentParser(description="One baseline cell of reproduce.tables.")
    parser.add_argument("--method", required=True, help="a key of baselines.BASELINES")
    parser.add_argument("--pair", required=True, help="the Wald pair (.npz) written by reproduce.tables")
    parser.add_argument("--folder", required=True, help="the cell's folder (metrics.json, My_Out.mat)")
    opts = parser.parse_args(argv)
    from data_loader import DataError

    try:
        results = fuse_baseline(opts.method, opts.pair, opts.folder)
    except (DataError, KeyError) as exc:
        print(f"error: {exc.args[0] if isinstance(exc, KeyError) else exc}", file=sys.stderr)
        return 1
    print(f"{opts.method} r={results['scale_factor']}: PSNR {results['final']['PSNR']:.2f} dB, "
          f"{results['total_seconds']:.2f} s -> {opts.folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
