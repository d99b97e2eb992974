"""Command-line options: the original UDALN option names and defaults, plus this project's.

Nothing is parsed at import time: call ``get_args(argv)``.
"""
import argparse

import torch

METHODS = ("udaln", "pfs2c2", "uds2c2")

# Per-method training schedules (learning rate, epochs, epoch at which linear decay begins).
# UDALN: the original config.py and the run folder shipped with it (S3=6e-05_15000_5000).
# PFS2C2: the authors' configuration (Jia et al., JSTARS 2025).
# UDS2C2 keeps the UDALN schedule: the paper builds on the UDALN framework.
_UDALN_SCHEDULE = {1: (1e-3, 20000, 10000), 2: (1e-3, 30000, 20000), 3: (6e-5, 15000, 5000)}
SCHEDULES = {
    "udaln": _UDALN_SCHEDULE,
    "pfs2c2": {1: (1e-3, 20000, 10000), 2: (1e-3, 30000, 20000), 3: (1e-3, 30000, 20000)},
    "uds2c2": _UDALN_SCHEDULE,
}

# FWHM of a Gaussian = 2 sqrt(2 ln 2) sigma; the PSF's FWHM equals the scale factor.
FWHM_TO_SIGMA = 2.35482


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


def build_parser():
    p = argparse.ArgumentParser(
        description="Unsupervised blind HSI-MSI fusion (UDALN, PFS2C2, UDS2C2).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)

    g = p.add_argument_group("data (original UDALN options)")
    g.add_argument("--scale_factor", type=int, default=5,
                   help="spatial ratio r between the HR-MSI and the LR-HSI (5 and 8 in the paper)")
    g.add_argument("--sp_root_path", default="data/spectral_response/",
                   help="folder holding <data_name>.xls/.csv/.txt/.npy/.mat, the SRF (HSI bands x MSI bands)")
    g.add_argument("--default_datapath", default="data/",
                   help="folder holding one sub-folder of reference cubes per data set")
    g.add_argument("--data_name", default="indian_pines",
                   help="data set: cubes in <default_datapath>/<data_name>/, SRF <sp_root_path>/<data_name>.*")
    g.add_argument("--isCal_SRF", type=_yes_no, default="Yes",
                   help="Yes: learn the SRF (blind); No: use the known SRF")
    g.add_argument("--isCal_PSF", type=_yes_no, default="Yes",
                   help="Yes: learn the PSF (blind); No: use the known Gaussian PSF")
    g.add_argument("--batchsize", type=int, default=1,
                   help="kept for compatibility with the original options; one image pair is fused at a time")
    g.add_argument("--gpu_ids", default="0", help="CUDA device index used when a GPU is available")
    g.add_argument("--checkpoints_dir", default="checkpoints", help="where run folders are written")

    g = p.add_argument_group("simulation (Wald's protocol)")
    g.add_argument("--image_index", type=int, default=0,
                   help="which cube of the data folder (sorted by file name) to fuse")
    g.add_argument("--snr_hsi", type=float, default=None,
                   help="add Gaussian noise to the LR-HSI at this SNR in dB (default: none)")
    g.add_argument("--snr_msi", type=float, default=None,
                   help="add Gaussian noise to the HR-MSI at this SNR in dB (default: none)")

    g.add_argument("--msi_gamma", type=float, default=1.0,
                   help="radiometric mismatch: the HR-MSI is gain * MSI^gamma + offset per band")
    g.add_argument("--msi_gain_jitter", type=float, default=0.0,
                   help="radiometric mismatch: per-band gains drawn uniformly in 1 +- this")
    g.add_argument("--msi_offset_jitter", type=float, default=0.0,
                   help="radiometric mismatch: per-band offsets drawn uniformly in +- this")

    g = p.add_argument_group("training schedule (default: the method's published schedule)")
    for stage in (1, 2, 3):
        g.add_argument(f"--lr_stage{stage}", type=float, default=None, help=f"stage {stage} learning rate")
        g.add_argument(f"--epoch_stage{stage}", type=int, default=None, help=f"stage {stage} epochs")
        g.add_argument(f"--decay_begin_epoch_stage{stage}", type=int, default=None,
                       help=f"stage {stage}: epoch after which the learning rate decays linearly to 0")

    g = p.add_argument_group("PFS2C2")
    g.add_argument("--pfs_lr_reset", action="store_true",
                   help="reproduce the authors' script, which resets the learning rate every epoch so "
                        "the decay never accumulates (default: the intended linear decay to 0)")

    g = p.add_argument_group("UDS2C2")
    g.add_argument("--gce", type=_yes_no, default="Yes",
                   help="group convolution enhancement: harmonise the HSI-derived MSI with the real MSI")
    g.add_argument("--scfconv", type=_yes_no, default="Yes",
                   help="SCFConv attention dynamic convolutions for the upsampler's hidden layers "
                        "(No: static convolutions of the same size)")
    g.add_argument("--scf_kernel", type=int, default=3,
                   help="kernel size of the upsampler's hidden layers (1 keeps UDALN's pixel-wise mapping)")

    g = p.add_argument_group("run")
    g.add_argument("--method", choices=METHODS, default="udaln", help="fusion method")
    g.add_argument("--stages", type=_stages, default="123",
                   help="UDALN ablation (paper Table I): 123, 12 or 3")
    g.add_argument("--seed", type=int, default=2, help="random seed (the original uses 2)")
    g.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="auto: cuda:<gpu_ids> when available, else CPU")
    g.add_argument("--threads", type=int, default=None,
                   help="CPU threads for PyTorch (default: PyTorch's choice)")
    g.add_argument("--eval_every", type=int, default=1000,
                   help="epochs between evaluations (also done at the end of each stage)")
    g.add_argument("--overwrite", action="store_true",
                   help="write into an existing run folder instead of a new suffixed one")
    return p


def get_args(argv=None):
    """Parse ``argv`` (default: sys.argv[1:]) and add the derived options ``sigma`` and ``device``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    schedule = SCHEDULES[args.method]
    for stage, (lr, epochs, decay_begin) in schedule.items():
        for name, value in ((f"lr_stage{stage}", lr), (f"epoch_stage{stage}", epochs),
                            (f"decay_begin_epoch_stage{stage}", decay_begin)):
            if getattr(args, name) is None:
                setattr(args, name, value)
        if getattr(args, f"epoch_stage{stage}") < 1:
            parser.error(f"--epoch_stage{stage} must be at least 1")
        if getattr(args, f"decay_begin_epoch_stage{stage}") < 1:
            parser.error(f"--decay_begin_epoch_stage{stage} must be at least 1")
    if args.scale_factor < 2:
        parser.error(f"--scale_factor must be at least 2 (got {args.scale_factor}): "
                     "it is the ratio of the HR-MSI to the LR-HSI pixel size")
    if args.scf_kernel < 1 or args.scf_kernel % 2 == 0:
        parser.error(f"--scf_kernel must be a positive odd number (got {args.scf_kernel})")
    if args.eval_every < 1:
        parser.error("--eval_every must be at least 1")
    args.sigma = args.scale_factor / FWHM_TO_SIGMA
    args.device = resolve_device(args.device, args.gpu_ids)
    return args


def resolve_device(choice, gpu_ids="0"):
    """'auto' picks cuda:<gpu_ids> when CUDA is available, else the CPU."""
    if choice == "cpu" or (choice == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise SystemExit("--device cuda was asked for, but this PyTorch build sees no CUDA device; "
                         "install a CUDA build of torch (see README) or use --device cpu")
    return torch.device(f"cuda:{gpu_ids.split(',')[0]}")
