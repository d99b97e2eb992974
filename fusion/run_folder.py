"""A run folder and its name: opt.txt, precision.txt, <module>.pth, My_Out.mat, metrics.json (written
last: it marks the run complete) and, while the run trains, its checkpoint training_state.pt
(docs/run_folder.md). ``run_folder_name`` names a run after the options that change its result."""
import itertools
import json
import logging
import os
import shutil
import tempfile
import uuid

import numpy as np
import scipy.io
import torch

from config import SCHEDULES, build_parser, default_degradation
from imagery.errors import DataError
from imagery.writers import MAT_V5_MAX_BYTES, UMASK, atomic_write, write_mat73

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "training_state.pt"  # written by func.TrainingSession, removed by RunFolder.complete


def _number(value):
    return f"{value:g}" if isinstance(value, float) else str(value)


# Options that change the result, with the token each adds to the run folder's name when it is not at
# its default (the method-specific ones only for that method).
NAME_TOKENS = (
    ("seed", lambda v: f"seed{v}"),
    ("isCal_PSF", lambda v: "knownPSF"),
    ("isCal_SRF", lambda v: "knownSRF"),
    ("snr_hsi", lambda v: f"snrHSI{_number(v)}"),
    ("snr_msi", lambda v: f"snrMSI{_number(v)}"),
    ("msi_gain", lambda v: f"gain{_number(v)}"),
    ("msi_gamma", lambda v: f"gamma{_number(v)}"),
    ("msi_gain_jitter", lambda v: f"gainJitter{_number(v)}"),
    ("msi_offset_jitter", lambda v: f"offsetJitter{_number(v)}"),
    ("sim_psf_size", lambda v: f"simPSF{v}"),
    ("sim_psf_shift", lambda v: f"simShift{v}"),
    ("psf_size", lambda v: f"psf{v}"),
    ("schedule", lambda v: f"{v}Schedule"),
    ("cube_key", lambda v: f"key{v}"),
    ("nodata", lambda v: f"nodata{_number(v)}"),
    ("mask_invalid", lambda v: "maskInvalid"),
    ("srf", lambda v: f"srf{os.path.splitext(os.path.basename(v))[0]}"),
    ("msi_sensor", lambda v: v),
    ("msi_bands", lambda v: f"bands{os.path.splitext(os.path.basename(v))[0]}"),
    ("msi_bands_select", lambda v: "select" + v.replace(",", "-")),
)
METHOD_NAME_TOKENS = {
    "pfs2c2": (("pfs_lr_reset", lambda v: "lrReset"),),
    "uds2c2": (("gce", lambda v: "noGCE"), ("scfconv", lambda v: "SCFConv" if v == "Yes" else "noSCFConv"),
               ("scf_kernel", lambda v: f"k{v}"), ("scf_place", lambda v: f"scf{v.capitalize()}"),
               ("scf_attention", lambda v: f"scf{v.capitalize()}")),
}


def run_folder_name(options, cube=None):
    """The run folder's name: the original naming <data>_<scale>_S1=<lr>_<epochs>_<decay>_S2=..._S3=...,
    prefixed with the method for methods other than UDALN, with only the schedules of the stages run (the
    recommended mode has stage 1 only)
    and a suffix for the ablations (_stages12: S1 and S2, _stages3: S3), then one token per option that
    changes the result and is not at its default (NAME_TOKENS, METHOD_NAME_TOKENS; e.g. _seed3,
    _knownPSF, _noGCE). A run with the default options keeps the original name.

    ``cube``: the name (file stem) of the cube fused when ``--image_index`` is not 0 (default
    image<index>). A real pair (``options.lr_hsi``) is named after the LR-HSI file's stem instead of
    ``--data_name``. opt.txt and metrics.json hold every option in any case. ``options``: a run's
    config.RunOptions, or the options of config.get_args (reproduce.tables names its cells before they run).
    """
    stages = "_".join(
        f"S{s}={getattr(options, f'lr_stage{s}')}_{getattr(options, f'epoch_stage{s}')}"
        f"_{getattr(options, f'decay_begin_epoch_stage{s}')}"
        for s in SCHEDULES[options.method] if str(s) in options.stages)
    lr_hsi = options.lr_hsi
    data = os.path.splitext(os.path.basename(lr_hsi))[0] if lr_hsi else options.data_name
    name = f"{data}_{options.scale_factor}_{stages}"
    if options.method != "udaln":
        name = f"{options.method}_{name}"
    if options.stages != "123":
        name += f"_stages{options.stages}"
    tokens = []
    if options.image_index != 0 and not lr_hsi:
        tokens.append(cube or f"image{options.image_index}")
    defaults = build_parser()
    for option, token in NAME_TOKENS + METHOD_NAME_TOKENS.get(options.method, ()):
        value = getattr(options, option)
        if value != defaults.get_default(option):
            tokens.append(token(value))
    degradation = options.degradation
    if degradation not in ("auto", default_degradation(options)):
        tokens.append(f"{degradation}Degradation")
    if options.training_mode == "patches":  # patch training changes the result; whole-image does not
        tokens.append(f"patch{options.patch_size}x{options.patches_per_step}")
    return "_".join([name] + tokens)


def read_metrics(folder):
    """metrics.json of the finished run in ``folder``, as a dict. Raises DataError when the folder or its
    metrics.json is missing (an unfinished run) or unreadable."""
    path = os.path.join(folder, "metrics.json")
    if not os.path.isdir(folder):
        raise DataError(f"{folder}: run folder not found")
    if not os.path.isfile(path):
        raise DataError(f"{folder}: no metrics.json, so not a finished run; finish it (--resume {folder}) first")
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot be read ({exc}); run the fusion again to rewrite it") from None


class RunFolder:
    """One training run's folder: opt.txt, precision.txt, <module>.pth, My_Out.mat, metrics.json, and
    while it trains training_state.pt (the checkpoint). metrics.json is written last: a folder
    without it is not a complete run.

    With --overwrite the run is built in a hidden temporary folder beside its ``target`` and replaces
    the earlier run only once it is complete (``complete``): a crash never loses the earlier run.
    """

    def __init__(self, path, target=None):
        self.path = path
        self.target = target or path

    @classmethod
    def create(cls, options, name=None):
        """A new folder ``name`` (default ``run_folder_name(options)``) under ``options.checkpoints_dir``. An
        earlier run is never overwritten: the name gets a suffix _2, _3, ..., each folder created
        atomically, so runs started together never share one. With ``options.overwrite`` the run goes to a
        temporary folder .<name>.<random>.incomplete that ``complete`` moves to <name>."""
        name = name or run_folder_name(options)
        os.makedirs(options.checkpoints_dir, exist_ok=True)
        base = os.path.join(options.checkpoints_dir, name)
        if options.overwrite:
            path = tempfile.mkdtemp(dir=options.checkpoints_dir, prefix=f".{name}.", suffix=".incomplete")
            os.chmod(path, 0o777 & ~UMASK)  # mkdtemp creates 0700
            return cls(path, target=base)
        for n in itertools.count(1):
            path = base if n == 1 else f"{base}_{n}"
            try:
                os.mkdir(path)
            except FileExistsError:
                continue
            if n > 1:
                log.info("%s exists; writing this run to %s (use --overwrite to replace it)", base, path)
            return cls(path)

    @classmethod
    def resume(cls, path, state):
        """The folder of an interrupted run, with the target name its checkpoint ``state`` recorded."""
        target = state.get("target")
        return cls(path, target=os.path.join(os.path.dirname(os.path.normpath(path)), target) if target else None)

    @classmethod
    def inside(cls, run, name):
        """A sub-folder ``name`` of ``run`` for a secondary result (e.g. reduced_resolution/)."""
        path = run.file(name)
        os.makedirs(path, exist_ok=True)
        return cls(path)

    def file(self, name):
        return os.path.join(self.path, name)

    def write_options(self, options):
        """opt.txt in the original format: every option of ``options`` (config.RunOptions.record), sorted,
        one per line."""
        lines = ["----------------- Options ---------------"]
        lines += ["{:>25}: {:<30}".format(str(k), str(v)) for k, v in sorted(options.record().items())]
        lines.append("----------------- End -------------------")
        text = "\n".join(lines) + "\n"
        atomic_write(self.file("opt.txt"), lambda f: f.write(text.encode()))
        return text

    def append_precision(self, message):
        """precision.txt is a log: stage results are appended as they are reached, as in the original."""
        with open(self.file("precision.txt"), "a") as f:
            f.write(f"{message}\n")

    def save_module(self, name, module):
        """<name>.pth: the module's state, in the original's layout where it has one (``original_state_dict``:
        SpaDnet's kernel as psf.weight, whichever degradation model learned it)."""
        state = getattr(module, "original_state_dict", module.state_dict)()
        state = {k: v.detach().cpu() for k, v in state.items()}
        atomic_write(self.file(f"{name}.pth"), lambda f: torch.save(state, f))

    def save_output(self, cube):
        """My_Out.mat, key 'Out', H x W x C: loads with MATLAB ``load``. MATLAB v5 (also read by
        ``scipy.io.loadmat``) up to its 2 GB per variable (imagery.writers.MAT_V5_MAX_BYTES), MATLAB v7.3
        (HDF5, ``imagery.writers.write_mat73``; h5py or ``imagery.readers.read_image``) above. A whole
        scene is not passed here but streamed (fusion.results.fuse_and_write)."""
        if np.asarray(cube).nbytes > MAT_V5_MAX_BYTES:
            write_mat73(self.file("My_Out.mat"), "Out", cube)
            return
        atomic_write(self.file("My_Out.mat"), lambda f: scipy.io.savemat(f, {"Out": cube}))

    def save_metrics(self, metrics):
        """metrics.json: written last, it marks the run complete."""
        text = json.dumps(metrics, indent=2, default=_json_default)
        atomic_write(self.file("metrics.json"), lambda f: f.write(text.encode()))

    def complete(self):
        """After metrics.json: drop the training checkpoint and, for --overwrite, replace the earlier run
        (renamed to a hidden name, the new folder renamed to the target, then the earlier one deleted)."""
        if os.path.exists(self.file(CHECKPOINT_NAME)):
            os.remove(self.file(CHECKPOINT_NAME))
        if self.path == self.target:
            return
        parent, name = os.path.split(self.target)
        trash = None
        if os.path.lexists(self.target):
            trash = os.path.join(parent, f".{name}.replaced-{uuid.uuid4().hex[:8]}")
            os.rename(self.target, trash)
        os.rename(self.path, self.target)
        self.path = self.target
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)


def _json_default(value):
    if isinstance(value, (np.ndarray, torch.Tensor)):
        return np.asarray(value).tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value)}")
