"""Unsupervised blind hyperspectral-multispectral fusion: UDALN's Algorithm 1 (Li et al., IEEE GRSL 2022)
and its successors PFS2C2 and UDS2C2.

Y: LR-HSI, Z: HR-MSI, X: HR-HSI. Degradation model Y = X P (PSF, SpaDnet), Z = X S (SRF, SpeDnet);
both paths to the LR-MSI must agree: Z_l1 = Y S = Z_l2 = Z P. Each method below builds its networks
and its three stages; ``train`` runs them; ``fuse`` does one whole run and writes its folder.

    python train_all_special.py [options]      (python train_all_special.py -h lists them)
"""
import logging
import sys
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from config import get_args
from data_loader import DataError, Dataset
from evaluation import evaluate, format_metrics
from func import RunFolder, TrainingDiverged, log, set_seed, train_stage, tune_cpu_allocator
from model import GCE, SCFConv, SpaDnet, SpaUp, SpeDnet, SpeUnet, SpeUp

l1 = nn.L1Loss(reduction="mean")


# ----------------------------------------------------------------------------- data and networks

def hwc(tensor):
    """1 x C x H x W tensor -> H x W x C numpy array."""
    return tensor.detach()[0].permute(1, 2, 0).cpu().numpy()


@dataclass
class Pair:
    """The image pair on the training device, and the truth that simulation gives for evaluation."""
    Y: torch.Tensor                     # LR-HSI, 1 x C x h x w
    Z: torch.Tensor                     # HR-MSI, 1 x Cm x H x W
    X: np.ndarray                       # reference HR-HSI, H x W x C
    lrmsi_frommsi: np.ndarray           # true Z P
    lrmsi_fromlrhsi: np.ndarray         # true Y S
    psf: np.ndarray                     # true PSF (r x r)
    srf: np.ndarray                     # true SRF (C x Cm), columns sum to 1
    sp_range: np.ndarray                # support of each MSI band (Cm x 2)
    scale: int

    @classmethod
    def from_dataset(cls, dataset, index, device):
        if not 0 <= index < len(dataset):
            raise DataError(f"--image_index {index}: the data folder has {len(dataset)} cube(s) "
                            f"({', '.join(dataset.imgpath_list)})")
        return cls.from_item(dataset[index], dataset.PSF, dataset.sp_matrix, dataset.sp_range, device)

    @classmethod
    def from_item(cls, item, psf, srf, sp_range, device):
        """From a simulated pair: a dict of C x H x W tensors with the data_loader.Dataset keys."""
        return cls(Y=item["lhsi"].unsqueeze(0).to(device), Z=item["hmsi"].unsqueeze(0).to(device),
                   X=hwc(item["hhsi"].unsqueeze(0)), lrmsi_frommsi=hwc(item["lrmsi_frommsi"].unsqueeze(0)),
                   lrmsi_fromlrhsi=hwc(item["lrmsi_fromlrhsi"].unsqueeze(0)), psf=psf, srf=srf,
                   sp_range=sp_range, scale=int(psf.shape[0]))

    @property
    def hsi_channels(self):
        return self.Y.shape[1]

    @property
    def msi_channels(self):
        return self.Z.shape[1]


@dataclass
class Nets:
    """The networks of one method, saved under the original checkpoint names."""
    spa: nn.Module                      # SpaDnet -> PSF.pth
    spe: nn.Module                      # SpeDnet -> convolution_hr2msi.pth
    up: nn.Module                       # spectral inverse mapping -> <up_name>.pth
    up_name: str = "spectral_upsample"  # SpeUnet's file name; PFS2C2 saves SpeUp.pth
    spa_up: nn.Module = None            # PFS2C2's SpaUp -> SpaUp.pth
    gce: nn.Module = None               # UDS2C2's GCE -> GCE.pth

    def checkpoints(self):
        named = {"PSF": self.spa, "convolution_hr2msi": self.spe, self.up_name: self.up, "SpaUp": self.spa_up,
                 "GCE": self.gce}
        return {name: module for name, module in named.items() if module is not None}

    def harmonise(self, msi):
        """An HSI-derived MSI in the MSI sensor's radiometry: GCE(msi) when there is a GCE, else msi."""
        return msi if self.gce is None else self.gce(msi)

    def to_msi(self, x):
        """SpeDnet(x), harmonised."""
        return self.harmonise(self.spe(x))

    def fuse(self, Z):
        """X_hat = SpeUnet(Z)."""
        return self.up(Z)


def degradation_nets(args, pair):
    """SpaDnet and SpeDnet, learned (blind) or fixed to the known PSF / SRF (--isCal_PSF/--isCal_SRF No)."""
    known_psf = args.isCal_PSF == "No"
    known_srf = args.isCal_SRF == "No"
    spa = SpaDnet(pair.scale, known_psf=pair.psf if known_psf else None, trainable=not known_psf)
    spe = SpeDnet(pair.sp_range, pair.hsi_channels, known_srf=pair.srf if known_srf else None,
                  trainable=not known_srf)
    return spa.to(pair.Y.device), spe.to(pair.Y.device)


def adam(modules, lr):
    """One Adam over the trainable parameters of ``modules`` (None when there are none)."""
    params = [p for m in modules if m is not None for p in m.parameters() if p.requires_grad]
    return torch.optim.Adam(params, lr=lr) if params else None


# ----------------------------------------------------------------------------- monitoring

class Monitor:
    """The diagnostics the original logs, computed every --eval_every epochs and at each stage's end.

    Each check compares a network output with its simulated truth; the latest of each stage is
    written to precision.txt in the original's wording and returned for metrics.json.
    """

    def __init__(self, pair, nets, run):
        self.pair, self.nets, self.run = pair, nets, run
        self.latest = {}
        self.labels = {}
        self.stage_results = {}
        self.seconds = 0.0  # time spent evaluating, reported in metrics.json

    def estimated_psf(self):
        return self.nets.spa.kernel.cpu().numpy()

    def estimated_srf(self):
        return self.nets.spe.srf().detach().cpu().numpy()

    def degradation_errors(self):
        """Relative Frobenius errors of the estimated PSF and SRF against the truth."""
        true_psf = self.pair.psf[::-1, ::-1]  # correlation form, as SpaDnet stores it
        psf, srf = self.estimated_psf(), self.estimated_srf()
        return {"psf_rel_error": float(np.linalg.norm(psf - true_psf) / np.linalg.norm(true_psf)),
                "srf_rel_error": float(np.linalg.norm(srf - self.pair.srf) / np.linalg.norm(self.pair.srf)),
                "psf_sum": float(psf.sum())}

    @torch.inference_mode()
    def __call__(self, watch, epoch, lr, final=False):
        """Evaluate the check groups in ``watch``: 'degradation', 'inverse', 'spatial_inverse', 'fusion'."""
        start = time.perf_counter()
        p, nets = self.pair, self.nets
        checks = []  # (key in metrics.json, the original's label, truth, estimate)
        if "degradation" in watch:
            z_l1_tensor = nets.spe(p.Y)
            z_l1, z_l2 = hwc(z_l1_tensor), hwc(nets.spa(p.Z))
            checks += [("consistency", "two generated images, train", z_l2, hwc(nets.harmonise(z_l1_tensor))),
                       ("srf_test", "SRF: generated lrmsifromlhsi and true lrmsifromlhsi ", p.lrmsi_fromlrhsi, z_l1),
                       ("psf_test", "PSF: generated lrmsifrommsi and true lrmsifrommsi ", p.lrmsi_frommsi, z_l2)]
        if "inverse" in watch:
            checks.append(("inverse_lrhsi", "generated lrhsi via SpeUnet and true lrhsi.",
                           hwc(p.Y), hwc(nets.up(nets.spa(p.Z)))))
        x_hat = nets.fuse(p.Z) if {"spatial_inverse", "fusion"} & set(watch) else None
        if "spatial_inverse" in watch:
            x_spa = nets.spa_up(p.Y)
            checks += [("pretraining_consistency", "generated hrhsi via SpaUp and via SpeUp, train",
                        hwc(x_hat), hwc(x_spa)),
                       ("spatial_inverse", "generated hrhsi via SpaUp and true hhsi", p.X, hwc(x_spa))]
        if "fusion" in watch:
            if "degradation" in watch:
                checks += [("reprojected_lrhsi", "generated lrhsi via SpaDnet from preHHSI and true lrhsi",
                            hwc(p.Y), hwc(nets.spa(x_hat))),
                           ("reprojected_hrmsi", "generated hrMSI via SpeDnet from preHHSI and true hrMSI",
                            hwc(p.Z), hwc(nets.to_msi(x_hat)))]
            checks.append(("fusion", "generated HHSI and true hhsi", p.X, hwc(x_hat)))
        self.latest = {"epoch": epoch, "lr": lr, "checks": {}}
        self.labels = {}
        for key, label, truth, estimate in checks:
            metrics = {"L1": float(np.mean(np.abs(truth - estimate)))}
            metrics.update(evaluate(truth, estimate, p.scale, ssim=key == "fusion" and final))
            self.latest["checks"][key] = metrics
            self.labels[key] = label
        if "degradation" in watch:
            self.latest.update(self.degradation_errors())
        self.seconds += time.perf_counter() - start
        return self.latest

    def close_stage(self, stage, title, watch, seconds):
        """Write the stage's final diagnostics to precision.txt and keep them for metrics.json."""
        lines = [f"results in {title}"]
        for key, m in self.latest["checks"].items():
            values = ", ".join(f"{k.lower() if k != 'CC' else k}:{v}" for k, v in m.items())
            lines.append(f"{self.labels[key]} epoch:{self.latest['epoch']} lr:{self.latest['lr']}\ntest:{values}")
        if "degradation" in watch:
            est_srf = self.estimated_srf()
            support = [slice(first, last + 1) for first, last in self.pair.sp_range]
            lines += [f"estimated PSF:\n{self.estimated_psf()}", f"true PSF:\n{self.pair.psf}",
                      f"estimated SRF:\n{[est_srf[s, j] for j, s in enumerate(support)]}",
                      f"true SRF:\n{[self.pair.srf[s, j] for j, s in enumerate(support)]}"]
        lines.append(f"time of {title}:{seconds}\n")
        self.run.append_precision("\n".join(lines))
        self.stage_results[stage] = dict(self.latest, seconds=seconds)
        fused = self.latest["checks"].get("fusion")
        log.info("%s done in %.1f s%s", title, seconds, f": {format_metrics(fused)}" if fused else "")


@dataclass
class Stage:
    """One stage of a method: its number (which selects --lr_stageN etc.), the optimisers it steps, a
    factory that prepares the stage and returns its loss function, and the checks to monitor."""
    number: int
    optimizers: list
    make_loss: Callable[[], Callable[[], torch.Tensor]]
    watch: tuple
    reset_each_epoch: bool = False

    def __post_init__(self):
        # A method passes None for an optimiser whose modules are all fixed (--isCal_PSF/SRF No).
        self.optimizers = [o for o in self.optimizers if o is not None]


def run_stage(args, stage, monitor):
    """Train one stage on its schedule (--lr_stageN, --epoch_stageN, --decay_begin_epoch_stageN)."""
    title = f"Stage {stage.number}"
    if not stage.optimizers:
        log.info("%s skipped: nothing to learn (every module in it is fixed)", title)
        return
    start = time.perf_counter()
    n = stage.number
    train_stage(title, stage.optimizers, stage.make_loss(),
                lr=getattr(args, f"lr_stage{n}"), epochs=getattr(args, f"epoch_stage{n}"),
                decay_begin=getattr(args, f"decay_begin_epoch_stage{n}"),
                evaluate=lambda epoch, lr, last: monitor(stage.watch, epoch, lr, final=last),
                eval_every=args.eval_every, reset_each_epoch=stage.reset_each_epoch)
    monitor.close_stage(n, title, stage.watch, time.perf_counter() - start)


# ----------------------------------------------------------------------------- the methods
# Each method builds its networks and returns them with its stages; all losses are mean L1.

def udaln(args, pair):
    """UDALN (Li et al., GRSL 2022), Algorithm 1. UDS2C2 reuses it with its own modules."""
    spa, spe = degradation_nets(args, pair)
    nets = Nets(spa=spa, spe=spe, up=SpeUnet(pair.msi_channels, pair.hsi_channels).to(pair.Y.device))
    return nets, udaln_stages(args, pair, nets)


def udaln_stages(args, pair, nets):
    Y, Z = pair.Y, pair.Z
    opt_degradation = adam([nets.spa, nets.spe, nets.gce], args.lr_stage1)
    opt_inverse = adam([nets.up], args.lr_stage2)

    def stage1():
        # Learn the degradations: Loss1 = |SpeDnet(Y) - SpaDnet(Z)|, i.e. Z_l1 = Z_l2 (GCE-harmonised in UDS2C2).
        return lambda: l1(nets.to_msi(Y), nets.spa(Z))

    def stage2():
        # Learn the spectral inverse mapping on the LR-MSI: Loss2 = |SpeUnet(Z_l2) - Y|, Z_l2 detached.
        z_l2 = nets.spa(Z).detach()
        return lambda: l1(nets.up(z_l2), Y)

    def stage3():
        # Joint fine-tuning with X = SpeUnet(Z): Loss1 + Loss2 + |SpeDnet(X) - Z| + |SpaDnet(X) - Y|.
        # Z_l2 is recomputed every epoch and not detached; the optimisers of stages 1 and 2 carry on.
        def joint_loss():
            z_l2 = nets.spa(Z)
            x = nets.up(Z)
            return l1(nets.to_msi(Y), z_l2) + l1(nets.up(z_l2), Y) + l1(nets.to_msi(x), Z) + l1(nets.spa(x), Y)
        return joint_loss

    return [Stage(1, [opt_degradation], stage1, ("degradation",)),
            Stage(2, [opt_inverse], stage2, ("inverse", "fusion")),
            Stage(3, [opt_degradation, opt_inverse], stage3, ("degradation", "inverse", "fusion"))]


def pfs2c2(args, pair):
    """PFS2C2 (Jia et al., JSTARS 2025): pretrained inverse modules, degradation learning, then joint
    optimisation guided by the pretrained parameters."""
    spa, spe = degradation_nets(args, pair)
    device = pair.Y.device
    nets = Nets(spa=spa, spe=spe, up=SpeUp(pair.msi_channels, pair.hsi_channels).to(device), up_name="SpeUp",
                spa_up=SpaUp(pair.scale, args.sigma).to(device))
    Y, Z = pair.Y, pair.Z
    opt_inverse = adam([nets.spa_up, nets.up], args.lr_stage1)
    opt_degradation = adam([nets.spa, nets.spe], args.lr_stage2)

    def stage1():
        # Pretrain the inverse modules on the original images: Loss0 = |SpaUp(Y) - SpeUp(Z)|.
        return lambda: l1(nets.spa_up(Y), nets.up(Z))

    def stage2():
        # Learn the degradations (UDALN's stage 1): Loss1 = |SpeDnet(Y) - SpaDnet(Z)|.
        return lambda: l1(nets.spe(Y), nets.spa(Z))

    def stage3():
        # All four modules, guided by the stage-2 LR-MSIs (detached):
        # |SpeDnet(Y) - SpaDnet(Z)| + |SpeUp(Z_l2) - Y| + |SpaUp(Z_l1) - Z| + |SpaDnet(SpeUp(Z)) - Y|.
        with torch.no_grad():
            z_l1, z_l2 = nets.spe(Y), nets.spa(Z)
        return lambda: (l1(nets.spe(Y), nets.spa(Z)) + l1(nets.up(z_l2), Y) + l1(nets.spa_up(z_l1), Z)
                        + l1(nets.spa(nets.up(Z)), Y))

    reset = args.pfs_lr_reset
    return nets, [
        Stage(1, [opt_inverse], stage1, ("spatial_inverse", "fusion"), reset),
        Stage(2, [opt_degradation], stage2, ("degradation",), reset),
        Stage(3, [opt_inverse, opt_degradation], stage3,
              ("degradation", "inverse", "spatial_inverse", "fusion"), reset)]


def uds2c2(args, pair):
    """UDS2C2 (Yu et al., TGRS 2024), reconstructed from the paper: UDALN's stages with GCE harmonising
    the HSI-derived MSI (--gce) and SCFConv hidden layers in the spectral upsampler (--scfconv, --scf_kernel)."""
    spa, spe = degradation_nets(args, pair)
    device = pair.Y.device
    k = args.scf_kernel
    hidden = (lambda cin, cout: SCFConv(cin, cout, k)) if args.scfconv == "Yes" else \
        (lambda cin, cout: nn.Conv2d(cin, cout, k, padding=k // 2))
    nets = Nets(spa=spa, spe=spe, up=SpeUnet(pair.msi_channels, pair.hsi_channels, hidden=hidden).to(device),
                gce=GCE(pair.msi_channels).to(device) if args.gce == "Yes" else None)
    return nets, udaln_stages(args, pair, nets)


METHODS = {"udaln": udaln, "pfs2c2": pfs2c2, "uds2c2": uds2c2}


def train(args, pair, run):
    """Build the selected method and run its stages selected by --stages."""
    nets, stages = METHODS[args.method](args, pair)
    monitor = Monitor(pair, nets, run)
    for stage in stages:
        if str(stage.number) in args.stages:
            run_stage(args, stage, monitor)
    return nets, monitor


# ----------------------------------------------------------------------------- main

def fuse(args):
    """Train the selected method on the selected image and write its run folder; returns the folder."""
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device.type == "cpu":
        tune_cpu_allocator()
    set_seed(args.seed)
    dataset = Dataset(args)
    pair = Pair.from_dataset(dataset, args.image_index, args.device)
    run = RunFolder.create(args)
    run.write_options(args)
    log.info("run folder: %s", run.path)
    start = time.perf_counter()
    try:
        nets, monitor = train(args, pair, run)
    except TrainingDiverged as exc:
        run.append_precision(f"aborted: {exc}")
        raise
    with torch.inference_mode():
        x_hat = hwc(nets.fuse(pair.Z))
    seconds = time.perf_counter() - start
    final = evaluate(pair.X, x_hat, pair.scale)
    run.append_precision(f"final: {format_metrics(final)}\ntotal time:{seconds}")
    for name, module in nets.checkpoints().items():
        run.save_module(name, module)
    run.save_output(x_hat)
    run.save_metrics({
        "method": args.method, "data_name": args.data_name, "scale_factor": args.scale_factor,
        "stages": args.stages, "final": final, "total_seconds": seconds,
        "stage_seconds": {s: r["seconds"] for s, r in monitor.stage_results.items()},
        "evaluation_seconds": monitor.seconds,
        "stage_results": monitor.stage_results,
        "estimated_psf": monitor.estimated_psf(), "true_psf": pair.psf,
        "estimated_srf": monitor.estimated_srf(), "true_srf": pair.srf,
        **monitor.degradation_errors(),
    })
    log.info("final: %s (%.1f s) -> %s", format_metrics(final), seconds, run.path)
    return run


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = get_args(argv)
    try:
        fuse(args)
    except (DataError, TrainingDiverged) as exc:
        log.error("error: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
