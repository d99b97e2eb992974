"""Command-line options: the original UDALN option names and defaults, plus this project's.

Nothing is parsed at import time: call ``get_args(argv)``. Every bad value is refused there with a
one-line message (argparse's ``parser.error``, exit status 2) that names the option and the fix.
"""
import argparse
import math
import os
from dataclasses import dataclass, field, fields

import torch

from imagery.products import is_sentinel2_safe

METHODS = ("udaln", "pfs2c2", "uds2c2", "recommended")
SCF_PLACES = ("inverse", "spatial")  # UDS2C2's SCFConv: in the spectral inverse mapping or in SpaDnet
ATTENTION_STARTS = ("identity", "sigmoid")  # SCFConv's attentions at the start (model.scfconv)
REGISTRATION_CHOICES = ("check", "correct", "ignore")  # --registration (imagery.registration)

# The repository folder: default data and output paths are taken relative to it, so the training
# script runs from any current folder. Paths the user gives stay relative to the current folder.
ROOT = os.path.dirname(os.path.abspath(__file__))
DEFAULT_PATHS = {
    "default_datapath": os.path.join(ROOT, "data", ""),
    "sp_root_path": os.path.join(ROOT, "data", "spectral_response", ""),
    "checkpoints_dir": os.path.join(ROOT, "checkpoints"),
}

# Per-method training schedules (learning rate, epochs, epoch at which linear decay begins).
# UDALN: the original config.py and the run folder shipped with it (S3=6e-05_15000_5000).
# PFS2C2: the authors' configuration (Jia et al., JSTARS 2025).
# UDS2C2 keeps the UDALN schedule: the paper builds on the UDALN framework.
_UDALN_SCHEDULE = {1: (1e-3, 20000, 10000), 2: (1e-3, 30000, 20000), 3: (6e-5, 15000, 5000)}
SCHEDULES = {
    "udaln": _UDALN_SCHEDULE,
    "pfs2c2": {1: (1e-3, 20000, 10000), 2: (1e-3, 30000, 20000), 3: (1e-3, 30000, 20000)},
    "uds2c2": _UDALN_SCHEDULE,
    "recommended": {1: _UDALN_SCHEDULE[1]},  # UDALN's stage 1 only (methods.recommended)
}

# The UDALN paper's default ratio, used for simulated pairs; a real pair's ratio comes from its sizes.
DEFAULT_SCALE_FACTOR = 5

# FWHM of a Gaussian = 2 sqrt(2 ln 2) sigma; the PSF's FWHM equals the scale factor.
FWHM_TO_SIGMA = 2.35482

# CPU threads per stage when --threads is not given (None: all usable cores), measured with
# benchmarks/threads.py at the size of the first default data set (145 x 145 x 68, r = 5), 2-core machine,
# ms per step at 1 / 2 threads. Idle machine: UDALN stage 1 1.59 / 0.91, stage 2 2.05 / 1.50, stage 3 41.2 / 25.0;
# PFS2C2 stage 1 38.6 / 25.5. With the other core busy: UDALN stage 1 1.16 / 4.96, stage 2 2.29 / 6.30,
# stage 3 43.5 / 82.7; PFS2C2 stage 1 43.7 / 94.4. Stages on LR-sized tensors gain under 1 ms a step
# from a second thread and lose 3-4 ms when it is contended: one thread. Stages on HR-sized tensors
# (UDALN/UDS2C2 stage 3, PFS2C2 stages 1 and 3) gain 35-40 % on an idle machine: all cores (set
# --threads 1 on a shared machine).
AUTO_STAGE_THREADS = {
    "udaln": {1: 1, 2: 1, 3: None},
    "pfs2c2": {1: None, 2: 1, 3: None},
    "uds2c2": {1: 1, 2: 1, 3: None},
    "recommended": {1: 1},
}


def usable_cpus():
    """The number of CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def threads_for_stage(args, stage):
    """CPU threads for training stage ``stage`` (1, 2 or 3): ``args.threads`` when given, else the
    method's ``AUTO_STAGE_THREADS`` entry capped at the usable cores (None there: all of them).

    Raises ValueError for a stage other than 1, 2 or 3.
    """
    policy = AUTO_STAGE_THREADS[args.method]
    if stage not in policy:
        raise ValueError(f"stage must be one of {sorted(policy)}, got {stage!r}")
    if args.threads is not None:
        return args.threads
    cpus = usable_cpus()
    auto = policy[stage]
    return cpus if auto is None else min(auto, cpus)


def _yes_no(text):
    value = text.strip().lower()
    if value in ("yes", "y", "true", "1"):
        return "Yes"
    if value in ("no", "n", "false", "0"):
        return "No"
    raise argparse.ArgumentTypeError(f"expected Yes or No, got {text!r}")


def _stages(text):
    if text not in ("123", "12", "3"):
        raise argparse.ArgumentTypeError(
            f"--stages must be 123 (full), 12 (stop after stage 2) or 3 (stage 3 only), got {text!r}")
    return text


class _HelpFormatter(argparse.HelpFormatter):
    """Appends "(default: X)" to an option's help once: not when the help states its default itself,
    nor for flags and options without a default (None), which would print "(default: None)"."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default:" in text or action.nargs == 0 or action.default in (None, argparse.SUPPRESS):
            return text
        return text + " (default: %(default)s)"


def short_number(value):
    """A schedule value as the help and docs/options.md print it: 1e-3 rather than 0.001, 6e-5 rather
    than 6e-05; integers as they are."""
    if isinstance(value, float):
        short = f"{value:.0e}"
        if float(short) == value:
            mantissa, exponent = short.split("e")
            return f"{mantissa}e{int(exponent)}"
    return str(value)


def _schedule_default(stage, field):
    """Each method's default of one schedule value, e.g. '6e-5 (udaln, uds2c2), 1e-3 (pfs2c2)'."""
    methods_of = {}
    for method in METHODS:
        if stage in SCHEDULES[method]:
            methods_of.setdefault(SCHEDULES[method][stage][field], []).append(method)
    if len(methods_of) == 1:
        return f"{short_number(next(iter(methods_of)))} (every method)"
    return ", ".join(f"{short_number(value)} ({', '.join(methods)})" for value, methods in methods_of.items())


def _auto_threads_text():
    def stage_text(policy):
        return ", ".join(f"{'all cores' if n is None else n} for stage {s}" for s, n in policy.items())
    return "; ".join(f"{method}: {stage_text(policy)}" for method, policy in AUTO_STAGE_THREADS.items())


class OptionError(ValueError):
    """A bad option given through the Python API (fusion.api); the command line exits with the message."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: the usage block of this many options would bury the message. With
    ``raise_errors`` a bad option raises OptionError instead of exiting."""
    raise_errors = False

    def error(self, message):
        if self.raise_errors:
            raise OptionError(message)
        self.exit(2, f"{self.prog}: error: {message} ({self.prog} -h lists every option)\n")


# Options holding a path: a relative one is resolved against the current folder when parsed, so that
# opt.txt and a resumed run (--resume, from any folder) use the same files.
PATH_OPTIONS = ("default_datapath", "sp_root_path", "checkpoints_dir", "lr_hsi", "hr_msi", "hsi_wavelengths",
                "srf", "msi_bands", "reference", "resume")


def build_parser():
    p = _Parser(
        description="Unsupervised blind HSI-MSI fusion (UDALN, PFS2C2, UDS2C2). Relative paths you give "
                    "are taken from the current folder; the default paths are in the repository folder.",
        formatter_class=_HelpFormatter)

    g = p.add_argument_group("data (original UDALN options)")
    g.add_argument("--scale_factor", type=int, default=None,
                   help="spatial ratio r between the HR-MSI and the LR-HSI, 5 and 8 in the paper "
                        f"(default: {DEFAULT_SCALE_FACTOR} for a simulated pair; for a real pair, "
                        "inferred from the image sizes)")
    g.add_argument("--sp_root_path", default=None,
                   help="folder holding <data_name>.xls/.csv/.txt/.npy/.mat, the SRF (HSI bands x MSI bands) "
                        "(default: data/spectral_response/ in the repository folder)")
    g.add_argument("--default_datapath", default=None,
                   help="folder holding one sub-folder of reference cubes per data set "
                        "(default: data/ in the repository folder)")
    g.add_argument("--data_name", default="houston18",
                   help="data set: cubes in <default_datapath>/<data_name>/, SRF <sp_root_path>/<data_name>.*")
    g.add_argument("--cube_key", default=None, metavar="NAME",
                   help="variable of the reference cube in a .mat/.h5 file (default: REF, else the only 3-D array)")
    g.add_argument("--mask_invalid", action="store_true",
                   help="leave NaN, Inf and fill values of a reference cube out of training and metrics "
                        "(default: refuse such a cube)")
    g.add_argument("--isCal_SRF", type=_yes_no, default="Yes",
                   help="Yes: learn the SRF (blind); No: use the known SRF")
    g.add_argument("--isCal_PSF", type=_yes_no, default="Yes",
                   help="Yes: learn the PSF (blind); No: use the known Gaussian PSF")
    g.add_argument("--batchsize", type=int, default=1,
                   help="kept for compatibility with the original options; must be 1 (one image pair is "
                        "fused at a time)")
    g.add_argument("--gpu_ids", default="0", help="CUDA device index used when a GPU is available")
    g.add_argument("--checkpoints_dir", default=None,
                   help="where run folders are written (default: checkpoints/ in the repository folder)")

    g = p.add_argument_group("real pair (no reference)")
    g.add_argument("--lr_hsi", metavar="FILE", default=None,
                   help="the LR-HSI to fuse (.mat, .h5, .npy, ENVI, GeoTIFF; products: EnMAP L2A SPECTRAL_IMAGE.TIF, "
                        "PRISMA L2D .he5, EMIT L2A .nc); needs --hr_msi "
                        "(default: none, simulate a pair from a reference cube)")
    g.add_argument("--hr_msi", metavar="FILE", default=None,
                   help="the HR-MSI of the same scene (a single-band pan image is accepted; a Sentinel-2 L2A .SAFE "
                        "folder gives its 10 m bands B2, B3, B4, B8, a PRISMA L2D .he5 file its 5 m panchromatic "
                        "image); needs --lr_hsi")
    g.add_argument("--lr_hsi_key", metavar="NAME", default=None,
                   help="variable of the LR-HSI in a .mat/.h5 file (default: REF, else the only 3-D array)")
    g.add_argument("--hr_msi_key", metavar="NAME", default=None,
                   help="variable of the HR-MSI in a .mat/.h5 file (default: REF, else the only 3-D array); for a "
                        "Sentinel-2 L2A .SAFE folder, the resolution: 10m (B2, B3, B4, B8; the default) or 20m (B2-B7, "
                        "B8A, B11, B12)")
    g.add_argument("--hsi_wavelengths", metavar="FILE", default=None,
                   help="the HSI band centres in nm, one per band, with an optional second column FWHM "
                        "(default: those the LR-HSI file, or a simulated pair's reference cube file, declares, if any)")
    g.add_argument("--srf", metavar="FILE", default=None,
                   help="spectral response table: rows = HSI bands, or its own wavelength grid (nm) in a "
                        "first column; one column per MSI band")
    g.add_argument("--srf_key", metavar="NAME", default=None,
                   help="variable of the response table in a .mat/.h5 --srf file (only with --srf; default: the table whose rows match the HSI bands)")
    g.add_argument("--msi_sensor", metavar="NAME", default=None,
                   help="build the SRF from this sensor's band ranges, a name from the band table in "
                        "imagery/sensors.py (an unknown name lists them); needs the HSI wavelengths")
    g.add_argument("--msi_bands", metavar="FILE", default=None,
                   help="build the SRF from the MSI's band ranges: N x 2 (lower, upper nm), optional band "
                        "name column or header")
    g.add_argument("--msi_bands_select", metavar="LIST", default=None,
                   help="the bands of --msi_sensor/--msi_bands the HR-MSI holds, in its order: comma-separated "
                        "band names or 1-based indices, e.g. blue,green,red,nir or 2,3,4,8 (default: all)")
    g.add_argument("--nodata", type=float, metavar="V", default=None,
                   help="a value meaning no data, in either image or in a reference cube (default: the value "
                        "the file declares; NaN, Inf and values beyond 1e30 are always no data)")
    g.add_argument("--reference", metavar="FILE", default=None,
                   help="an HR-HSI of the same scene to score the fused image against (e.g. when the pair was "
                        "itself made from one); the fusion never sees it (default: no reference)")
    g.add_argument("--registration", choices=REGISTRATION_CHOICES, default="check",
                   help="the shift between the two images, measured from their pixels (phase correlation of the "
                        "LR-MSI from the LR-HSI with the HR-MSI degraded to the LR grid): check warns above 0.2 LR "
                        "pixel and refuses above 1; correct resamples the HR-MSI by the shift above 0.2; ignore "
                        "reports it only (docs/real_pairs.md)")
    g.add_argument("--reduced_resolution", action="store_true",
                   help="also run the reduced-resolution protocol (fuse the pair degraded by r, score "
                        "against the LR-HSI)")

    g = p.add_argument_group("simulation (Wald's protocol)")
    g.add_argument("--image_index", type=int, default=0,
                   help="which cube of the data folder (sorted by file name) to fuse")
    g.add_argument("--snr_hsi", type=float, default=None,
                   help="add Gaussian noise to the LR-HSI at this SNR in dB (default: no noise)")
    g.add_argument("--snr_msi", type=float, default=None,
                   help="add Gaussian noise to the HR-MSI at this SNR in dB (default: no noise)")
    g.add_argument("--msi_gain", type=float, default=1.0,
                   help="radiometric mismatch: every band's gain (1.5: an HR-MSI 1.5 x brighter)")
    g.add_argument("--msi_gamma", type=float, default=1.0,
                   help="radiometric mismatch: the HR-MSI is gain * MSI^gamma + offset per band")
    g.add_argument("--msi_gain_jitter", type=float, default=0.0,
                   help="radiometric mismatch: per-band gains drawn uniformly in --msi_gain x (1 +- this)")
    g.add_argument("--msi_offset_jitter", type=float, default=0.0,
                   help="radiometric mismatch: per-band offsets drawn uniformly in +- this")
    g.add_argument("--sim_psf_size", type=int, metavar="K", default=0,
                   help="the simulation's Gaussian PSF (FWHM r) on K x K HR pixels, at least r; windows as "
                        "--psf_size places them (default: 0, K = r, the papers' PSF)")
    g.add_argument("--sim_psf_shift", type=int, metavar="S", default=0,
                   help="the simulation's PSF centred S HR pixels below and right of each LR pixel's centre "
                        "(a misregistration of the two images; default: 0)")

    g = p.add_argument_group("training schedule (default: the method's published schedule)")
    g.add_argument("--schedule", choices=("paper", "auto"), default="paper",
                   help="paper: each stage's epochs, constant rate, then linear decay to 0 (the papers'); auto: "
                        "the paper's, cut short where the stage's loss stops falling: at each plateau the best "
                        "state so far is taken back and the rate divided by 10; a plateau at the third rate, or "
                        "at a lower rate that found nothing better, ends the stage with its best state "
                        "(docs/performance.md: on the real scenes it is not yet both as good and faster, so "
                        "paper is the default for every pair)")
    for stage in (1, 2, 3):
        g.add_argument(f"--lr_stage{stage}", type=float, default=None,
                       help=f"stage {stage} learning rate; default: {_schedule_default(stage, 0)}")
        g.add_argument(f"--epoch_stage{stage}", type=int, default=None,
                       help=f"stage {stage} epochs; default: {_schedule_default(stage, 1)}")
        g.add_argument(f"--decay_begin_epoch_stage{stage}", type=int, default=None,
                       help=f"stage {stage}: epoch after which the learning rate decays linearly to 0; "
                            f"default: {_schedule_default(stage, 2)}")

    g = p.add_argument_group("degradation model (all methods; docs/degradation_model.md)")
    g.add_argument("--degradation", choices=("auto", "original", "normalised"), default="auto",
                   help="original: the papers' free PSF, which can absorb a gain between the two sensors; "
                        "normalised: a PSF summing to 1 (softmax) and a learned gain and offset per MSI band "
                        "(auto: normalised for a real pair and for UDS2C2, original for UDALN and PFS2C2 on a simulated one)")
    g.add_argument("--psf_size", type=int, metavar="K", default=0,
                   help="side of the learned PSF in HR pixels, at least r, stride r: LR pixel (i, j) reads the "
                        "K x K window from HR pixel (r i - (K - r) // 2, r j - (K - r) // 2), the image's edges "
                        "replicated beyond its borders (default: 0, K = r, the papers' disjoint r x r blocks)")

    g = p.add_argument_group("PFS2C2")
    g.add_argument("--pfs_lr_reset", action="store_true",
                   help="reproduce the authors' script: the learning rate set only once a stage's decay begins "
                        "and reset every epoch, so the decay never accumulates; optimisers created with the "
                        "other stage's rate (default: the intended linear decay to 0)")

    g = p.add_argument_group("UDS2C2")
    g.add_argument("--gce", type=_yes_no, default="Yes",
                   help="group convolution enhancement: harmonise the HSI-derived MSI with the real MSI")
    g.add_argument("--scfconv", type=_yes_no, default="No",
                   help="SCFConv attention dynamic convolution, placed by --scf_place (default No: every "
                        "placement measured worse, docs/methods.md, UDS2C2)")
    g.add_argument("--scf_kernel", type=int, default=1,
                   help="kernel size of the upsampler's hidden layers (1: UDALN's pixel-wise mapping)")
    g.add_argument("--scf_place", choices=SCF_PLACES, default="inverse",
                   help="where SCFConv goes with --scfconv Yes: inverse (the upsampler's hidden layers) or "
                        "spatial (a dynamic per-band PSF in SpaDnet; the upsampler's layers are then static)")
    g.add_argument("--scf_attention", choices=ATTENTION_STARTS, default="identity",
                   help="SCFConv's attentions at the start: identity (2 sigmoid, exactly 1: the static "
                        "convolution) or sigmoid (near 1/2 each, as first built here)")

    g = p.add_argument_group("run")
    g.add_argument("--method", choices=("auto",) + METHODS, default="auto",
                   help="fusion method: a paper's (udaln, pfs2c2, uds2c2) or this project's recommended blind mode "
                        "(recommended: UDALN's stage 1, then MTF-GLP-HS with the learned PSF; docs/methods.md); "
                        "auto: recommended for a real pair, udaln (the paper reproduced) for a simulated one. The "
                        "recommended mode has stage 1 only: schedules given for stages 2 and 3 do not apply to it")
    g.add_argument("--stages", type=_stages, default="123",
                   help="UDALN ablation (paper Table I): 123 (all stages), 12 (stop after stage 2) or 3 (stage 3 only, from untrained networks)")
    g.add_argument("--seed", type=int, default=2, help="random seed (the original uses 2)")
    g.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="auto: cuda:<gpu_ids> when available, else CPU")
    g.add_argument("--threads", type=int, default=None,
                   help=f"CPU threads for PyTorch, at least 1; give 1 on a shared machine (default: auto, per stage, as measured in docs/performance.md: {_auto_threads_text()})")
    g.add_argument("--eval_every", type=int, default=1000,
                   help="epochs between evaluations (also done at the end of each stage)")
    g.add_argument("--overwrite", action="store_true",
                   help="replace an existing run folder of the same name once the new run is complete, instead of writing to a new one suffixed _2, _3, ...")
    g.add_argument("--checkpoint_every", type=float, metavar="MINUTES", default=5.0,
                   help="minutes between training checkpoints (training_state.pt in the run folder)")
    g.add_argument("--resume", metavar="RUN_FOLDER", default=None,
                   help="continue a killed run from its training_state.pt, in the same folder "
                        "(default: none, start a new run)")

    g = p.add_argument_group("whole scenes: patch training (docs/whole_scenes.md)")
    g.add_argument("--training_mode", choices=("auto", "whole", "patches"), default="auto",
                   help="whole: every step trains on the whole image (the papers' way); patches: on a batch of "
                        "random aligned patches; auto: patches when the HR-MSI has more than 1024 x 1024 pixels "
                        "or whole-image training needs more than half the available memory, else whole")
    g.add_argument("--patch_size", type=int, metavar="P", default=0,
                   help="patch side in LR-HSI pixels (the HR-MSI patch is r P); a value > 0 trains on patches "
                        "(default: 0, automatic: 64 // r)")
    g.add_argument("--patches_per_step", type=int, metavar="B", default=4,
                   help="patches in each training step's batch (patch training only)")
    return p


def _check_file(parser, option, path):
    if path is None or os.path.isfile(path) or (option == "--hr_msi" and is_sentinel2_safe(path)):
        return
    what = "is a folder, not a file" if os.path.isdir(path) else "file not found"
    parser.error(f"{option} {path}: {what}; give an existing file (a relative path is taken from the "
                 f"current folder, {os.getcwd()})")


def _list_options(options):
    return options[0] if len(options) == 1 else ", ".join(options[:-1]) + " and " + options[-1]


def _check_real_pair(parser, args, arrays=False):
    """The real-pair options: both images or neither, existing files (but the images given as ``arrays``),
    one source of the SRF."""
    if (args.lr_hsi is None) != (args.hr_msi is None):
        given, missing = ("--lr_hsi", "--hr_msi") if args.hr_msi is None else ("--hr_msi", "--lr_hsi")
        parser.error(f"{given} needs {missing}: a real pair is fused from both images; give {missing} FILE "
                     f"too, or neither to simulate a pair from a reference cube")
    real = args.lr_hsi is not None
    for option, depends in (("lr_hsi_key", "lr_hsi"), ("hr_msi_key", "hr_msi"), ("srf_key", "srf")):
        if getattr(args, option) is not None and getattr(args, depends) is None:
            parser.error(f"--{option} names a variable in the --{depends} file, which was not given: "
                         f"give --{depends} FILE or drop --{option}")
    if args.reduced_resolution and not real:
        parser.error("--reduced_resolution needs a real pair: give --lr_hsi and --hr_msi, or drop it "
                     "(a simulated pair is scored against its reference cube)")
    if real and args.cube_key is not None:
        parser.error("--cube_key names the variable of a reference cube, and a real pair (--lr_hsi/--hr_msi) "
                     "has none: drop --cube_key (use --lr_hsi_key/--hr_msi_key)")
    if args.reference is not None and not real:
        parser.error("--reference scores a real pair (--lr_hsi/--hr_msi); a simulated pair is scored against "
                     "its own reference cube: drop --reference")
    for option in ("hsi_wavelengths", "srf", "msi_bands", "reference") + (() if arrays else ("lr_hsi", "hr_msi")):
        _check_file(parser, f"--{option}", getattr(args, option))
    sources = [f"--{o}" for o in ("srf", "msi_sensor", "msi_bands") if getattr(args, o) is not None]
    if len(sources) > 1:
        parser.error(f"{_list_options(sources)} each give the spectral response; keep one of them")
    if args.msi_bands_select is not None:
        if args.msi_sensor is None and args.msi_bands is None:
            parser.error("--msi_bands_select picks bands of --msi_sensor or --msi_bands: give one of them, "
                         "or drop --msi_bands_select")
        items = [item.strip() for item in args.msi_bands_select.split(",")]
        if "" in items:
            parser.error(f"--msi_bands_select {args.msi_bands_select!r} has an empty item: give comma-separated "
                         "band names or 1-based indices, e.g. blue,green,red or 2,3,4")
        for item in items:
            if item.lstrip("+-").isdigit() and int(item) < 1:
                parser.error(f"--msi_bands_select: band index {item} is not valid; indices are 1-based "
                             "(the first band is 1)")
    if args.nodata is not None and not math.isfinite(args.nodata):
        parser.error(f"--nodata must be a finite value (got {args.nodata}); NaN, Inf and values beyond "
                     "1e30 are always treated as no data, so give the file's fill value (e.g. -9999) or "
                     "drop --nodata")


def _check_numbers(parser, args):
    """Values that would otherwise reach torch or the data layer as a traceback."""
    for stage in (1, 2, 3):
        if stage not in SCHEDULES[args.method]:
            continue
        lr = getattr(args, f"lr_stage{stage}")
        if not (lr > 0 and math.isfinite(lr)):
            parser.error(f"--lr_stage{stage} must be a positive number (got {lr}); the method's default is "
                         f"{_schedule_default(stage, 0)}")
        if getattr(args, f"epoch_stage{stage}") < 1:
            parser.error(f"--epoch_stage{stage} must be at least 1")
        if getattr(args, f"decay_begin_epoch_stage{stage}") < 1:
            parser.error(f"--decay_begin_epoch_stage{stage} must be at least 1")
    if args.scale_factor is not None and args.scale_factor < 2:
        parser.error(f"--scale_factor must be at least 2 (got {args.scale_factor}): "
                     "it is the ratio of the HR-MSI to the LR-HSI pixel size")
    if args.scf_kernel < 1 or args.scf_kernel % 2 == 0:
        parser.error(f"--scf_kernel must be a positive odd number (got {args.scf_kernel})")
    if args.scfconv == "Yes" and args.scf_place == "spatial" and args.isCal_PSF == "No" and args.method == "uds2c2":
        parser.error("--scf_place spatial learns a per-band PSF, which cannot be the known PSF of --isCal_PSF No; "
                     "use --scf_place inverse, or drop --isCal_PSF No")
    _check_psf_sizes(parser, args)
    if args.eval_every < 1:
        parser.error("--eval_every must be at least 1")
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be at least 1 (got {args.threads}); omit it to let each stage choose "
                     f"({_auto_threads_text()})")
    if args.batchsize != 1:
        parser.error(f"one image pair is fused at a time: --batchsize must be 1 (got {args.batchsize})")
    if not args.checkpoint_every > 0:
        parser.error(f"--checkpoint_every must be more than 0 minutes (got {args.checkpoint_every})")
    for option in ("snr_hsi", "snr_msi"):
        value = getattr(args, option)
        if value is not None and not math.isfinite(value):
            parser.error(f"--{option} must be a finite SNR in dB (got {value}); omit it for no noise")
    if not (args.msi_gain > 0 and math.isfinite(args.msi_gain)):
        parser.error(f"--msi_gain must be a positive factor (got {args.msi_gain}); 1 leaves the HR-MSI as simulated")
    if args.image_index < 0:
        parser.error(f"--image_index must be at least 0 (got {args.image_index}): it is the position of the "
                     "cube in the data folder, sorted by file name")
    if args.patch_size < 0:
        parser.error(f"--patch_size must be at least 1 LR-HSI pixel, or 0 for the automatic size (got "
                     f"{args.patch_size})")
    if args.patches_per_step < 1:
        parser.error(f"--patches_per_step must be at least 1 (got {args.patches_per_step})")
    if args.training_mode == "whole" and args.patch_size > 0:
        parser.error(f"--patch_size {args.patch_size} trains on patches, --training_mode whole on the whole "
                     "image: drop one of them")


def _check_psf_sizes(parser, args):
    """--psf_size and the --sim_psf options: sizes of at least r (checked again once a real pair's r is
    known, methods.common.check_psf_size), only where they mean something."""
    r = DEFAULT_SCALE_FACTOR if args.scale_factor is None and not args.lr_hsi else args.scale_factor
    for option in ("psf_size", "sim_psf_size"):
        size = getattr(args, option)
        if size < 0 or (r is not None and 0 < size < r):
            parser.error(f"--{option} must be at least the scale factor r{'' if r is None else f' = {r}'} (a "
                         f"window smaller than an LR pixel's r x r block), or 0 for r (got {size})")
    if args.psf_size and args.isCal_PSF == "No":
        parser.error("--isCal_PSF No uses the known PSF, which has its own size: drop --psf_size")
    if args.psf_size and args.method == "uds2c2" and args.scfconv == "Yes" and args.scf_place == "spatial":
        parser.error("--scf_place spatial learns a per-band r x r PSF: drop --psf_size, or use --scf_place inverse")
    if args.lr_hsi and (args.sim_psf_size or args.sim_psf_shift):
        parser.error("--sim_psf_size and --sim_psf_shift shape the simulated pair's PSF; a real pair (--lr_hsi) "
                     "has none: drop them")


def _check_folders(parser, args):
    if os.path.exists(args.checkpoints_dir) and not os.path.isdir(args.checkpoints_dir):
        parser.error(f"--checkpoints_dir {args.checkpoints_dir}: is a file, not a folder; give a folder "
                     "where run folders can be created")
    if args.resume is not None and not os.path.isdir(args.resume):
        what = "is a file, not a run folder" if os.path.exists(args.resume) else "no such folder"
        parser.error(f"--resume {args.resume}: {what}; give the folder of the interrupted run "
                     f"(under --checkpoints_dir, e.g. {os.path.join(args.checkpoints_dir, '<run name>')})")


def options_argv(options):
    """The command line of ``options`` ({option name: value}; True/False for a flag, None leaves it out), as
    the Python API (fusion.api) and a batch table (fusion.batch) give them. Raises OptionError for a name
    that is not an option of train_all_special.py."""
    actions = {action.dest: action for action in build_parser()._actions if action.dest != "help"}
    argv = []
    for option, value in options.items():
        if option not in actions:
            raise OptionError(f"unknown option {option!r}; the options are those of train_all_special.py "
                              "(docs/options.md), e.g. method, seed, threads, epoch_stage3")
        if actions[option].nargs == 0:  # a flag
            argv += [f"--{option}"] if value else []
        elif value is not None:
            argv += [f"--{option}", str(value)]
    return argv


def get_args(argv=None, arrays=None, raise_errors=False):
    """Parse ``argv`` (default: sys.argv[1:]), fill the method's schedule and the default paths, check
    every value, and add the derived options ``sigma`` and ``device``.

    A simulated pair gets ``scale_factor`` 5 when none is given; a real pair (``--lr_hsi/--hr_msi``)
    keeps None, meaning "infer it from the image sizes", and ``sigma`` None: ``RunOptions.resolve``
    completes them from the loaded pair. Bad options exit through ``parser.error`` (status 2, one line).

    ``arrays``: the name of a real pair given as arrays (fusion.api.fuse_arrays): ``lr_hsi`` and ``hr_msi``
    are set to it (it names the run folder), no image file is looked for, and a bad option raises
    OptionError instead of exiting, as it does with ``raise_errors``.
    """
    parser = build_parser()
    parser.raise_errors = arrays is not None or raise_errors
    args = parser.parse_args(argv)
    given_paths = [name for name in PATH_OPTIONS if getattr(args, name) is not None]
    if arrays is not None:
        args.lr_hsi = args.hr_msi = arrays
    if args.method == "auto":
        args.method = default_method(args)
    schedule = SCHEDULES[args.method]
    for stage in (1, 2, 3):
        defaults = schedule.get(stage, (None, None, None))
        for name, value in zip(("lr_stage", "epoch_stage", "decay_begin_epoch_stage"), defaults):
            # A stage the method does not have (the recommended mode's 2 and 3) drops a schedule given for all methods.
            if stage not in schedule or getattr(args, f"{name}{stage}") is None:
                setattr(args, f"{name}{stage}", value)
    for name, path in DEFAULT_PATHS.items():
        if getattr(args, name) is None:
            setattr(args, name, path)
    _check_real_pair(parser, args, arrays=arrays is not None)
    _check_numbers(parser, args)
    _check_folders(parser, args)
    for name in given_paths:  # after the checks, whose messages quote the paths as given
        setattr(args, name, os.path.abspath(getattr(args, name)))
    if args.scale_factor is None and args.lr_hsi is None:
        args.scale_factor = DEFAULT_SCALE_FACTOR
    args.sigma = None if args.scale_factor is None else args.scale_factor / FWHM_TO_SIGMA
    if args.degradation == "auto":
        args.degradation = default_degradation(args)
    if args.schedule == "auto" and args.pfs_lr_reset:
        parser.error("--pfs_lr_reset reproduces the PFS2C2 authors' learning-rate script, which --schedule auto "
                     "replaces: drop one of them")
    args.device = resolve_device(args.device, args.gpu_ids)
    return args


def default_method(args):
    """--method auto: the recommended blind mode for a real pair (the best result this project gives,
    docs/results.md), UDALN for a simulated one (the paper reproduced, with its Wald pair)."""
    return "recommended" if getattr(args, "lr_hsi", None) else "udaln"


def default_degradation(args):
    """--degradation auto: the normalised model for a real pair (two sensors), the papers' for a simulated
    one, except for UDS2C2, always normalised: no code of it is public to be faithful to, and its GCE is
    the radiometric link that a free PSF would share the scale with (docs/methods.md, UDS2C2); and for the
    recommended mode, whose PSF is learned under the normalised model."""
    if getattr(args, "lr_hsi", None) or getattr(args, "method", None) in ("uds2c2", "recommended"):
        return "normalised"
    return "original"


def resolve_device(choice, gpu_ids="0"):
    """'auto' picks cuda:<gpu_ids> when CUDA is available, else the CPU."""
    if choice == "cpu" or (choice == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise SystemExit("--device cuda was asked for, but this PyTorch build sees no CUDA device; "
                         "install a CUDA build of torch (see README) or use --device cpu")
    return torch.device(f"cuda:{gpu_ids.split(',')[0]}")


@dataclass(frozen=True)
class RunOptions:
    """The options of one run, resolved once and frozen: the parsed command line (``get_args``) completed
    by what only the loaded pair and the machine decide (``RunOptions.resolve``: r of a real pair, the
    training mode, the threads of each stage). Nothing below it changes an option or derives a default
    again. The names are the command line's (the original UDALN names where it has them), so opt.txt
    lists them as the original does; ``record()`` gives what opt.txt, metrics.json and the checkpoint keep.
    """

    # --- the pair: a reference cube to simulate from by Wald's protocol, or a real pair
    data_name: str
    """Data set: reference cubes in ``default_datapath/data_name/``, SRF ``sp_root_path/data_name.*``."""
    default_datapath: str
    """Absolute folder holding one sub-folder of reference cubes per data set."""
    sp_root_path: str
    """Absolute folder holding the data sets' SRF tables (HSI bands x MSI bands)."""
    image_index: int
    """Which cube of the data set's folder (sorted by file name) is fused."""
    cube_key: str | None
    """Variable of the reference cube in a .mat/.h5 file (None: REF, else the only 3-D array)."""
    mask_invalid: bool
    """Leave NaN, Inf and fill values of a reference cube out of training and metrics."""
    lr_hsi: str | None
    """Absolute path of a real pair's LR-HSI (None: a pair simulated from a reference cube)."""
    hr_msi: str | None
    """Absolute path of a real pair's HR-MSI."""
    lr_hsi_key: str | None
    """Variable of the LR-HSI in a .mat/.h5 file."""
    hr_msi_key: str | None
    """Variable of the HR-MSI in a .mat/.h5 file."""
    hsi_wavelengths: str | None
    """File of the HSI band centres (nm), overriding those the image declares."""
    srf: str | None
    """File of the SRF table (C x Cm, or on its own wavelength grid in nm)."""
    srf_key: str | None
    """Variable of the SRF table in a .mat/.h5 ``srf`` file."""
    msi_sensor: str | None
    """Sensor whose band ranges build the SRF (imagery.sensors)."""
    msi_bands: str | None
    """File of MSI band ranges (lower, upper nm) that build the SRF."""
    msi_bands_select: str | None
    """The bands of ``msi_sensor`` / ``msi_bands`` the HR-MSI holds, in its order."""
    nodata: float | None
    """A value meaning no data in either image or the reference (None: the files' own)."""
    reference: str | None
    """Absolute path of an HR-HSI that scores a real pair's fusion (never seen by it)."""
    registration: str
    """What a measured shift between a real pair's images does: 'check', 'correct' or 'ignore'."""
    reduced_resolution: bool
    """Also fuse the pair degraded once more by r and score the result against the LR-HSI."""

    # --- Wald's protocol: how the simulated pair departs from the papers' noiseless one
    snr_hsi: float | None
    """SNR (dB) of white Gaussian noise added to the LR-HSI (None: no noise)."""
    snr_msi: float | None
    """SNR (dB) of white Gaussian noise added to the HR-MSI (None: no noise)."""
    msi_gain: float
    """Radiometric mismatch: every MSI band's gain."""
    msi_gamma: float
    """Radiometric mismatch: the HR-MSI is gain * MSI^gamma + offset per band."""
    msi_gain_jitter: float
    """Radiometric mismatch: per-band gains drawn in msi_gain x (1 +- this)."""
    msi_offset_jitter: float
    """Radiometric mismatch: per-band offsets drawn in +- this."""
    sim_psf_size: int
    """Side K (HR pixels) of the simulation's Gaussian PSF; 0: K = r, the papers' PSF."""
    sim_psf_shift: int
    """HR pixels by which the simulation's PSF is off each LR pixel's centre (misregistration)."""

    # --- the degradation model and the methods
    scale_factor: int
    """r, the ratio of the LR-HSI's to the HR-MSI's pixel size (a real pair's from its sizes)."""
    sigma: float
    """Standard deviation (HR pixels) of the Gaussian PSF of FWHM r: r / FWHM_TO_SIGMA."""
    degradation: str
    """'original' (the papers' free PSF) or 'normalised' (PSF summing to 1, MSI gain and offset)."""
    isCal_PSF: str
    """'Yes': the PSF is learned (blind); 'No': the known Gaussian PSF is used."""
    isCal_SRF: str
    """'Yes': the SRF is learned (blind); 'No': the known SRF is used."""
    psf_size: int
    """Side K (HR pixels) of the learned PSF, stride r; 0: K = r, the papers' disjoint r x r blocks."""
    method: str
    """'udaln', 'pfs2c2', 'uds2c2' or 'recommended' (never 'auto': resolved by ``get_args``)."""
    stages: str
    """The stages run: '123', '12' or '3' (UDALN's Table I ablation)."""
    pfs_lr_reset: bool
    """PFS2C2: the authors' learning-rate script instead of the intended linear decay."""
    gce: str
    """UDS2C2: 'Yes' for group convolution enhancement."""
    scfconv: str
    """UDS2C2: 'Yes' for SCFConv, placed by ``scf_place``."""
    scf_kernel: int
    """UDS2C2: kernel size of the upsampler's hidden layers (1: pixel-wise)."""
    scf_place: str
    """UDS2C2: SCFConv in the upsampler ('inverse') or as a per-band PSF in SpaDnet ('spatial')."""
    scf_attention: str
    """UDS2C2: SCFConv's attentions at the start, 'identity' or 'sigmoid'."""

    # --- the schedule of each stage: learning rate, epochs, epoch after which it decays linearly to 0
    schedule: str
    """'paper' (each stage's epochs and linear decay) or 'auto' (the paper's, cut short on the plateaus of the
    stage's loss: func.PlateauSchedule)."""
    lr_stage1: float
    """Stage 1 learning rate."""
    epoch_stage1: int
    """Stage 1 epochs."""
    decay_begin_epoch_stage1: int
    """Stage 1: the epoch after which the learning rate decays linearly to 0."""
    lr_stage2: float
    """Stage 2 learning rate."""
    epoch_stage2: int
    """Stage 2 epochs."""
    decay_begin_epoch_stage2: int
    """Stage 2: the epoch after which the learning rate decays linearly to 0."""
    lr_stage3: float
    """Stage 3 learning rate."""
    epoch_stage3: int
    """Stage 3 epochs."""
    decay_begin_epoch_stage3: int
    """Stage 3: the epoch after which the learning rate decays linearly to 0."""

    # --- how the run trains: device, threads, patches, checkpoints, run folder
    device: torch.device
    """The training device (cuda:<gpu_ids> or cpu)."""
    gpu_ids: str
    """The CUDA device index asked for."""
    threads: int | None
    """CPU threads asked for every stage (None: the method's measured choice per stage)."""
    stage_threads: dict = field(metadata={"recorded": False})
    """CPU threads of each stage, {1: n, 2: n, 3: n}: ``threads`` or the method's AUTO_STAGE_THREADS."""
    training_mode: str
    """'whole' (every step on the whole image, the papers' way) or 'patches' (a batch of patches)."""
    patch_size: int
    """Patch side in LR-HSI pixels in patch mode; 0 in whole-image mode."""
    patches_per_step: int
    """Patches in each step's batch in patch mode."""
    seed: int
    """Seed of torch, numpy and random (the original's is 2)."""
    eval_every: int
    """Epochs between evaluations (also at the end of each stage)."""
    checkpoint_every: float
    """Minutes between training checkpoints (training_state.pt)."""
    checkpoints_dir: str
    """Absolute folder where run folders are written."""
    overwrite: bool
    """Replace an existing run folder of the same name once the new run is complete."""
    resume: str | None
    """The folder of the interrupted run this run continues (None: a new run)."""
    batchsize: int
    """The original's option, always 1: one image pair is fused at a time."""

    @classmethod
    def resolve(cls, args, scale_factor, training_mode, patch_size):
        """The frozen options of a run: ``args`` (``get_args``, or a resumed run's options) with the pair's
        ratio ``scale_factor`` (and the PSF's sigma from it), the training mode and patch size chosen for
        the pair (fusion.patches.choose_training_mode), and each stage's CPU threads. Raises TypeError
        when ``args`` lacks an option (a namespace not made by ``get_args``)."""
        recorded = {f.name for f in fields(cls) if f.metadata.get("recorded", True)}
        values = {name: getattr(args, name) for name in recorded}
        values.update(scale_factor=int(scale_factor), sigma=int(scale_factor) / FWHM_TO_SIGMA,
                      training_mode=training_mode, patch_size=patch_size)
        values["stage_threads"] = {stage: threads_for_stage(argparse.Namespace(**values), stage)
                                   for stage in AUTO_STAGE_THREADS[values["method"]]}
        return cls(**values)

    def stage_schedule(self, stage):
        """Stage ``stage``'s schedule as func.train_stage takes it: {"lr", "epochs", "decay_begin"}."""
        return {"lr": getattr(self, f"lr_stage{stage}"), "epochs": getattr(self, f"epoch_stage{stage}"),
                "decay_begin": getattr(self, f"decay_begin_epoch_stage{stage}")}

    def record(self):
        """The options as opt.txt, metrics.json and the training checkpoint keep them: {name: value},
        every option of the command line plus ``sigma`` and ``device``."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.metadata.get("recorded", True)}
