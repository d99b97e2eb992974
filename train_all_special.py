"""Unsupervised blind hyperspectral-multispectral fusion: UDALN's Algorithm 1 (Li et al., IEEE GRSL 2022)
and its successors PFS2C2 and UDS2C2.

Y: LR-HSI, Z: HR-MSI, X: HR-HSI. Degradation model Y = X P (PSF, SpaDnet), Z = X S (SRF, SpeDnet);
both paths to the LR-MSI must agree: Z_l1 = Y S = Z_l2 = Z P. Each method below builds its networks
and its three stages; ``train`` runs them; ``fuse`` does one whole run and writes its folder.

    python train_all_special.py [options]      (python train_all_special.py -h lists them)
"""
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn

from config import FWHM_TO_SIGMA, get_args, set_scale_factor, threads_for_stage
from data_loader import DataError, Dataset, gaussian_psf, load_real_pair, spatial_degrade, support_range, to_tensor
from evaluation import QNR_BLOCK, evaluate, format_metrics, qnr
from func import (RESUMABLE_OPTIONS, Interrupted, OutOfMemory, RunFolder, TrainingDiverged, TrainingSession,
                  check_memory, image_size, load_training_state, log, resume_overrides, resumed_options,
                  run_folder_name, set_seed, train_stage, tune_cpu_allocator)
from imagery.quicklook import save_quicklook
from imagery.radiometry import block_all
from imagery.writers import write_envi, write_geotiff
from model import GCE, SCFConv, SpaDnet, SpaUp, SpeDnet, SpeUnet, SpeUp

l1 = nn.L1Loss(reduction="mean")


# ----------------------------------------------------------------------------- data and networks

def hwc(tensor):
    """1 x C x H x W tensor -> H x W x C numpy array."""
    return tensor.detach()[0].permute(1, 2, 0).cpu().numpy()


def masked_l1(a, b, mask):
    """Mean absolute difference over the valid pixels; ``mask`` is 1 x 1 x H x W (1 = valid) or None (all)."""
    if mask is None:
        return l1(a, b)
    return ((a - b).abs() * mask).sum() / (mask.sum() * a.shape[1])


@dataclass
class Pair:
    """The image pair on the training device (scaled by the rule of imagery.radiometry, no-data filled
    with 0), the valid-pixel masks, and, for a simulated pair, the truth that Wald's protocol gives."""
    Y: torch.Tensor                     # LR-HSI, 1 x C x h x w
    Z: torch.Tensor                     # HR-MSI, 1 x Cm x H x W
    X: np.ndarray                       # reference HR-HSI, H x W x C (None for a real pair)
    lrmsi_frommsi: np.ndarray           # true Z P (None for a real pair)
    lrmsi_fromlrhsi: np.ndarray         # true Y S (None for a real pair)
    psf: np.ndarray                     # true PSF (r x r); for a real pair the nominal Gaussian (FWHM r)
    srf: np.ndarray                     # SRF (C x Cm, columns sum to 1): true, or the sensor's nominal one
    sp_range: np.ndarray                # support of each MSI band (Cm x 2)
    scale: int
    lr_valid: np.ndarray = None         # h x w bool, pixels trusted in LR terms (None: all)
    hr_valid: np.ndarray = None         # H x W bool, pixels trusted in HR loss terms (None: all)
    out_valid: np.ndarray = None        # H x W bool, pixels where X_hat is defined and scored (None: all)
    hsi_factor: float = 1.0             # the LR-HSI (or reference) was divided by this; X_hat is multiplied back
    info: dict = field(default_factory=dict)  # loading facts for metrics.json (masks, crop, factors, bands)
    source: object = None               # data_loader.RealPair for a real pair (metadata for the outputs)
    known_degradations: bool = True     # the true PSF and SRF are known (Wald's protocol)

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
                   sp_range=sp_range, scale=int(psf.shape[0]), lr_valid=item.get("lr_valid"),
                   hr_valid=item.get("hr_valid"), out_valid=item.get("out_valid"), hsi_factor=item.get("factor", 1.0),
                   info=item.get("info", {}))

    @classmethod
    def from_real(cls, real, device):
        """From a real pair (data_loader.RealPair): no true degradations; a reference only with --reference."""
        return cls(Y=to_tensor(real.lhsi)[None].to(device), Z=to_tensor(real.hmsi)[None].to(device), X=real.reference,
                   lrmsi_frommsi=None, lrmsi_fromlrhsi=None, psf=gaussian_psf(real.scale, real.scale / FWHM_TO_SIGMA),
                   srf=real.srf, sp_range=support_range(real.srf), scale=real.scale, lr_valid=real.lr_valid,
                   hr_valid=real.hr_valid, out_valid=real.out_valid, hsi_factor=real.hsi_factor, info=real.info,
                   source=real,
                   known_degradations=False)

    def __post_init__(self):
        def as_mask(valid, shape):
            if valid is None or bool(np.all(valid)):
                return None
            return torch.from_numpy(np.asarray(valid, dtype=np.float32)).view(1, 1, *shape).to(self.Y.device)
        self.lr_mask = as_mask(self.lr_valid, self.Y.shape[2:])
        self.hr_mask = as_mask(self.hr_valid, self.Z.shape[2:])

    @property
    def has_reference(self):
        """True when the HR-HSI reference is known (Wald's protocol, or --reference)."""
        return self.X is not None

    @property
    def hsi_channels(self):
        return self.Y.shape[1]

    @property
    def msi_channels(self):
        return self.Z.shape[1]

    def lr_l1(self, a, b):
        """Mean L1 of an LR-grid term (h x w) over the valid LR pixels."""
        return masked_l1(a, b, self.lr_mask)

    def hr_l1(self, a, b):
        """Mean L1 of an HR-grid term (H x W) over the valid HR pixels."""
        return masked_l1(a, b, self.hr_mask)


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
        """Relative Frobenius errors of the estimated PSF and SRF against the truth (simulated pairs), and
        the PSF's sum (a learned PSF summing far from 1 has absorbed a radiometric difference)."""
        psf = self.estimated_psf()
        errors = {"psf_sum": float(psf.sum())}
        if self.pair.known_degradations:
            true_psf = self.pair.psf[::-1, ::-1]  # correlation form, as SpaDnet stores it
            srf = self.estimated_srf()
            errors["psf_rel_error"] = float(np.linalg.norm(psf - true_psf) / np.linalg.norm(true_psf))
            errors["srf_rel_error"] = float(np.linalg.norm(srf - self.pair.srf) / np.linalg.norm(self.pair.srf))
        return errors

    def checks(self, watch):
        """(key in metrics.json, the original's label, truth, estimate, valid mask) of the groups in ``watch``:
        'degradation', 'inverse', 'spatial_inverse', 'fusion'. Checks against the truth need a simulated pair."""
        p, nets = self.pair, self.nets
        truth = p.has_reference
        checks = []
        if "degradation" in watch:
            z_l1_tensor = nets.spe(p.Y)
            z_l1, z_l2 = hwc(z_l1_tensor), hwc(nets.spa(p.Z))
            checks.append(("consistency", "two generated images, train", z_l2, hwc(nets.harmonise(z_l1_tensor)),
                           p.lr_valid))
            if p.lrmsi_fromlrhsi is not None:
                checks += [("srf_test", "SRF: generated lrmsifromlhsi and true lrmsifromlhsi ", p.lrmsi_fromlrhsi,
                            z_l1, p.lr_valid),
                           ("psf_test", "PSF: generated lrmsifrommsi and true lrmsifrommsi ", p.lrmsi_frommsi, z_l2,
                            p.lr_valid)]
        if "inverse" in watch:
            checks.append(("inverse_lrhsi", "generated lrhsi via SpeUnet and true lrhsi.",
                           hwc(p.Y), hwc(nets.up(nets.spa(p.Z))), p.lr_valid))
        x_hat = nets.fuse(p.Z) if {"spatial_inverse", "fusion"} & set(watch) else None
        if "spatial_inverse" in watch:
            x_spa = nets.spa_up(p.Y)
            checks.append(("pretraining_consistency", "generated hrhsi via SpaUp and via SpeUp, train",
                           hwc(x_hat), hwc(x_spa), p.hr_valid))
            if truth:
                checks.append(("spatial_inverse", "generated hrhsi via SpaUp and true hhsi", p.X, hwc(x_spa),
                               p.out_valid))
        if "fusion" in watch:
            if "degradation" in watch:
                checks += [("reprojected_lrhsi", "generated lrhsi via SpaDnet from preHHSI and true lrhsi",
                            hwc(p.Y), hwc(nets.spa(x_hat)), p.lr_valid),
                           ("reprojected_hrmsi", "generated hrMSI via SpeDnet from preHHSI and true hrMSI",
                            hwc(p.Z), hwc(nets.to_msi(x_hat)), p.out_valid)]
            if truth:
                checks.append(("fusion", "generated HHSI and true hhsi", p.X, hwc(x_hat), p.out_valid))
        return checks

    @torch.inference_mode()
    def __call__(self, watch, epoch, lr, final=False):
        """Evaluate the check groups in ``watch`` (see ``checks``); returns and keeps the latest results."""
        start = time.perf_counter()
        self.latest = {"epoch": epoch, "lr": lr, "checks": {}}
        self.labels = {}
        for key, label, truth, estimate, valid in self.checks(watch):
            diff = np.abs(truth - estimate)
            metrics = {"L1": float(np.mean(diff if valid is None else diff[valid]))}
            metrics.update(evaluate(truth, estimate, self.pair.scale, ssim=key == "fusion" and final, mask=valid))
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
            truth = "true" if self.pair.known_degradations else "nominal"
            lines += [f"estimated PSF:\n{self.estimated_psf()}", f"{truth} PSF:\n{self.pair.psf}",
                      f"estimated SRF:\n{[est_srf[s, j] for j, s in enumerate(support)]}",
                      f"{truth} SRF:\n{[self.pair.srf[s, j] for j, s in enumerate(support)]}"]
        lines.append(f"time of {title}:{seconds}\n")
        self.run.append_precision("\n".join(lines))
        self.stage_results[stage] = dict(self.latest, seconds=seconds)
        fused = self.latest["checks"].get("fusion")
        log.info("%s done in %.1f s%s", title, seconds, f": {format_metrics(fused)}" if fused else "")


# ----------------------------------------------------------------------------- quality and outputs

NO_REFERENCE_METRICS = ("PSNR", "SAM", "ERGAS")
QNR_BLOCKS = (QNR_BLOCK, QNR_BLOCK // 2, QNR_BLOCK // 4)


@torch.inference_mode()
def no_reference_quality(pair, nets, x_hat):
    """Quality without a reference. Consistency (the paper's Fig. 2 check): the fused image X_hat
    (1 x C x H x W, scaled) degraded again by the learned networks against the inputs, SpaDnet(X_hat)
    vs Y and SpeDnet(X_hat) vs Z (PSNR dB, SAM degrees, ERGAS); and the QNR indices (evaluation.qnr),
    with the HR-MSI brought to the LR grid by the learned PSF."""
    r = pair.scale
    lr_back, hr_back = nets.spa(x_hat), nets.to_msi(x_hat)
    lrhsi = evaluate(hwc(pair.Y), hwc(lr_back), r, ssim=False, mask=pair.lr_valid)
    hrmsi = evaluate(hwc(pair.Z), hwc(hr_back), r, ssim=False, mask=pair.out_valid)
    quality = {"lrhsi_consistency": {k: lrhsi[k] for k in NO_REFERENCE_METRICS},
               "hrmsi_consistency": {k: hrmsi[k] for k in NO_REFERENCE_METRICS}}
    # QNR's blocks (32 HR pixels, Alparone's toolbox) must fit in the valid part of small images.
    for block in QNR_BLOCKS:
        try:
            return {**quality, **qnr(hwc(x_hat), hwc(pair.Y), hwc(pair.Z), hwc(nets.spa(pair.Z)), block=block,
                                     mask=pair.out_valid, lr_mask=pair.lr_valid), "QNR_block": block}
        except ValueError as exc:
            if "block is entirely valid" not in str(exc):
                raise
    log.warning("QNR not computed: no %d x %d block of the image is entirely valid", QNR_BLOCKS[-1], QNR_BLOCKS[-1])
    return quality


def in_input_units(pair, x_hat):
    """X_hat (1 x C x H x W, scaled) as an H x W x C float32 array in the LR-HSI's (or reference's) units,
    holding the no-data value where the HR pixel has no data."""
    out = hwc(x_hat).astype(np.float32) * np.float32(pair.hsi_factor)
    if pair.out_valid is not None and not pair.out_valid.all():
        out[~pair.out_valid] = pair.source.nodata if pair.source is not None else np.nan
    return out


def write_georeferenced(run, pair, x_out):
    """My_Out.tif (GeoTIFF, the HR-MSI's CRS and transform) or My_Out.hdr (ENVI) when the HR-MSI came as
    one, with the HSI band centres; the run folder's My_Out.mat is written for every run."""
    real = pair.source
    if real is None:
        return None
    names = None if real.wavelengths is None else [f"{w:.2f} nm" for w in real.wavelengths]
    if real.msi.fmt == "geotiff":
        path = run.file("My_Out.tif")
        write_geotiff(path, x_out, real.msi.crs, real.msi.transform, nodata=real.nodata, band_names=names,
                      wavelengths=real.wavelengths, fwhm=real.fwhm)
    elif real.msi.fmt == "envi":
        path = run.file("My_Out.hdr")
        write_envi(path, x_out, wavelengths=real.wavelengths, fwhm=real.fwhm, nodata=real.nodata)
    else:
        return None
    return path


def reduced_resolution_pair(pair):
    """The reduced-resolution protocol's pair (Wald et al. 1997): the LR-HSI and the HR-MSI each degraded
    by r with the simulation's Gaussian PSF (size r, FWHM r), cropped at the bottom/right to a multiple
    of r; the LR-HSI becomes the reference. Masks follow: a reduced pixel is valid when its whole block is."""
    r = pair.scale
    y, z = hwc(pair.Y), hwc(pair.Z)
    h, w = (y.shape[0] // r) * r, (y.shape[1] // r) * r
    if h < r or w < r:
        raise DataError(f"--reduced_resolution: the LR-HSI is {y.shape[0]} x {y.shape[1]} pixels, too small to "
                        f"degrade by r = {r} once more; drop --reduced_resolution")
    y, z = y[:h, :w], z[:h * r, :w * r]
    psf = gaussian_psf(r, r / FWHM_TO_SIGMA)
    hr_valid = None if pair.lr_valid is None else pair.lr_valid[:h, :w]
    lr_valid = None if hr_valid is None else block_all(hr_valid, r)  # also covers the HR-MSI's blocks
    device = pair.Y.device
    return Pair(Y=to_tensor(spatial_degrade(y, psf, r))[None].to(device),
                Z=to_tensor(spatial_degrade(z, psf, r))[None].to(device), X=y.astype(np.float64),
                lrmsi_frommsi=None, lrmsi_fromlrhsi=None, psf=psf, srf=pair.srf, sp_range=pair.sp_range, scale=r,
                lr_valid=lr_valid, hr_valid=hr_valid, out_valid=hr_valid, known_degradations=False)


def reduced_resolution(args, pair, run):
    """Fuse the reduced-resolution pair with the same method and options in ``run``'s sub-folder
    reduced_resolution/ and score the result against the LR-HSI (all metrics); returns the metrics."""
    sub = RunFolder.inside(run, "reduced_resolution")
    rr = reduced_resolution_pair(pair)
    set_seed(args.seed)
    nets, _ = train(args, rr, sub)
    with torch.inference_mode():
        x_rr = hwc(nets.fuse(rr.Z))
    metrics = evaluate(rr.X, x_rr, rr.scale, mask=rr.out_valid)
    sub.save_output(x_rr * np.float32(pair.hsi_factor))
    sub.save_metrics({"final": metrics, "reference": "the LR-HSI", "degradation": "Gaussian PSF, size r, FWHM r"})
    sub.append_precision(f"reduced resolution, against the LR-HSI: {format_metrics(metrics)}")
    return metrics


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


def run_stage(args, stage, monitor, session):
    """Train one stage on its schedule (--lr_stageN, --epoch_stageN, --decay_begin_epoch_stageN); a
    stage completed before a resume is skipped, the one interrupted continues after its last epoch."""
    title = f"Stage {stage.number}"
    if not stage.optimizers:
        log.info("%s skipped: nothing to learn (every module in it is fixed)", title)
        return
    n = stage.number
    if session.completed(n):
        return
    if args.device.type == "cpu":
        torch.set_num_threads(threads_for_stage(args, n))
    loss_fn, done = session.begin_stage(n, stage.make_loss)
    train_stage(title, stage.optimizers, loss_fn,
                lr=getattr(args, f"lr_stage{n}"), epochs=getattr(args, f"epoch_stage{n}"),
                decay_begin=getattr(args, f"decay_begin_epoch_stage{n}"),
                evaluate=lambda epoch, lr, last: monitor(stage.watch, epoch, lr, final=last),
                eval_every=args.eval_every, reset_each_epoch=stage.reset_each_epoch,
                start_epoch=done, progress=session)
    monitor.close_stage(n, title, stage.watch, session.stage_seconds())
    session.end_stage(n)


# ----------------------------------------------------------------------------- the methods
# Each method builds its networks and returns them with its stages; all losses are mean L1.

def udaln(args, pair):
    """UDALN (Li et al., GRSL 2022), Algorithm 1. UDS2C2 reuses it with its own modules."""
    spa, spe = degradation_nets(args, pair)
    nets = Nets(spa=spa, spe=spe, up=SpeUnet(pair.msi_channels, pair.hsi_channels).to(pair.Y.device))
    return nets, udaln_stages(args, pair, nets)


def udaln_stages(args, pair, nets):
    Y, Z = pair.Y, pair.Z
    lr_l1, hr_l1 = pair.lr_l1, pair.hr_l1  # mean L1 over the valid pixels of each grid
    opt_degradation = adam([nets.spa, nets.spe, nets.gce], args.lr_stage1)
    opt_inverse = adam([nets.up], args.lr_stage2)

    def stage1():
        # Learn the degradations: Loss1 = |SpeDnet(Y) - SpaDnet(Z)|, i.e. Z_l1 = Z_l2 (GCE-harmonised in UDS2C2).
        return lambda: lr_l1(nets.to_msi(Y), nets.spa(Z))

    def stage2():
        # Learn the spectral inverse mapping on the LR-MSI: Loss2 = |SpeUnet(Z_l2) - Y|, Z_l2 detached.
        z_l2 = nets.spa(Z).detach()
        return lambda: lr_l1(nets.up(z_l2), Y)

    def stage3():
        # Joint fine-tuning with X = SpeUnet(Z): Loss1 + Loss2 + |SpeDnet(X) - Z| + |SpaDnet(X) - Y|.
        # Z_l2 is recomputed every epoch and not detached; the optimisers of stages 1 and 2 carry on.
        def joint_loss():
            z_l2 = nets.spa(Z)
            x = nets.up(Z)
            return lr_l1(nets.to_msi(Y), z_l2) + lr_l1(nets.up(z_l2), Y) + hr_l1(nets.to_msi(x), Z) + lr_l1(nets.spa(x), Y)
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
    lr_l1, hr_l1 = pair.lr_l1, pair.hr_l1
    opt_inverse = adam([nets.spa_up, nets.up], args.lr_stage1)
    opt_degradation = adam([nets.spa, nets.spe], args.lr_stage2)

    def stage1():
        # Pretrain the inverse modules on the original images: Loss0 = |SpaUp(Y) - SpeUp(Z)|.
        return lambda: hr_l1(nets.spa_up(Y), nets.up(Z))

    def stage2():
        # Learn the degradations (UDALN's stage 1): Loss1 = |SpeDnet(Y) - SpaDnet(Z)|.
        return lambda: lr_l1(nets.spe(Y), nets.spa(Z))

    def stage3():
        # All four modules, guided by the stage-2 LR-MSIs (detached):
        # |SpeDnet(Y) - SpaDnet(Z)| + |SpeUp(Z_l2) - Y| + |SpaUp(Z_l1) - Z| + |SpaDnet(SpeUp(Z)) - Y|.
        with torch.no_grad():
            z_l1, z_l2 = nets.spe(Y), nets.spa(Z)
        return lambda: (lr_l1(nets.spe(Y), nets.spa(Z)) + lr_l1(nets.up(z_l2), Y) + hr_l1(nets.spa_up(z_l1), Z)
                        + lr_l1(nets.spa(nets.up(Z)), Y))

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


def train(args, pair, run, session=None):
    """Build the selected method and run its stages selected by --stages. ``session`` (a
    func.TrainingSession) checkpoints the run, resumes it and stops it on SIGINT/SIGTERM; without one
    the stages just run."""
    nets, stages = METHODS[args.method](args, pair)
    monitor = Monitor(pair, nets, run)
    session = session or TrainingSession()
    session.attach(nets.checkpoints(), [o for stage in stages for o in stage.optimizers], monitor)
    with session.stop_signals():
        for stage in stages:
            if str(stage.number) in args.stages:
                run_stage(args, stage, monitor, session)
        session.finish()
    return nets, monitor


# ----------------------------------------------------------------------------- main

def load_pair(args):
    """The pair to fuse on the training device and the name of its cube: a real pair (--lr_hsi/--hr_msi,
    whose r then sets --scale_factor) or one simulated from a reference cube by Wald's protocol."""
    if args.lr_hsi:
        real = load_real_pair(args)
        set_scale_factor(args, real.scale)
        return Pair.from_real(real, args.device), None
    dataset = Dataset(args)
    cube = os.path.splitext(os.path.basename(dataset.imgpath_list[args.image_index]))[0]
    return Pair.from_dataset(dataset, args.image_index, args.device), cube


def fuse(args, anew=RESUMABLE_OPTIONS):
    """Train the selected method on the selected pair and write its run folder; returns the folder.

    With ``args.resume`` the interrupted run in that folder continues from its checkpoint with the
    checkpoint's options (of --threads, --device and --checkpoint_every, those named in ``anew`` are
    taken from ``args``). Raises DataError, OutOfMemory (before anything is written when the run
    clearly cannot fit), TrainingDiverged and func.Interrupted (SIGINT/SIGTERM; README "Run folder").
    """
    state = load_training_state(args.resume) if args.resume else None
    if state is not None:
        args = resumed_options(args, state, anew)
    if args.device.type == "cpu":
        tune_cpu_allocator()
    set_seed(args.seed)
    pair, cube = load_pair(args)
    check_memory(args.method, pair.Y.shape, pair.Z.shape, pair.scale, args.device)
    if state is None:
        run = RunFolder.create(args, run_folder_name(args, cube))
        run.write_options(args)
    else:
        run = RunFolder.resume(args.resume, state)
    log.info("run folder: %s", run.path)
    session = TrainingSession(run, args, state)
    with session.reporting(image_size(pair.Y.shape, pair.Z.shape), args.device):
        nets, monitor = train(args, pair, run, session)
        results = write_results(args, pair, nets, monitor, run, session.elapsed())
    run.complete()
    final = results.get("final") or results["no_reference"]
    log.info("%s (%.1f s) -> %s", format_metrics(final) if "final" in results else "no reference: "
             + ", ".join(f"{k} {v:.4f}" for k, v in final.items() if k in ("D_lambda", "D_s", "QNR")),
             results["total_seconds"], run.path)
    return run


def write_results(args, pair, nets, monitor, run, seconds):
    """The run folder's results: precision.txt's last lines, the modules, My_Out.mat (and My_Out.tif or
    My_Out.hdr for a georeferenced pair) in the input's units, quicklook.png, the reduced-resolution
    protocol when asked, and metrics.json last (it marks the run complete). Returns the metrics."""
    with torch.inference_mode():
        x_hat = nets.fuse(pair.Z)
        quality = no_reference_quality(pair, nets, x_hat)
    results = {"method": args.method, "data_name": args.data_name, "lr_hsi": args.lr_hsi, "hr_msi": args.hr_msi,
               "scale_factor": args.scale_factor, "stages": args.stages, "seed": args.seed}
    lines = []
    if pair.has_reference:
        results["final"] = evaluate(pair.X, hwc(x_hat), pair.scale, mask=pair.out_valid)
        lines.append(f"final: {format_metrics(results['final'])}")
    results["no_reference"] = quality
    lines.append("no reference: " + ", ".join(f"{k} {v:.4f}" for k, v in quality.items() if not isinstance(v, dict)))
    if args.reduced_resolution:
        results["reduced_resolution"] = reduced_resolution(args, pair, run)
        lines.append(f"reduced resolution (against the LR-HSI): {format_metrics(results['reduced_resolution'])}")
    results["total_seconds"] = seconds
    run.append_precision("\n".join(lines + [f"total time:{seconds}"]))
    for name, module in nets.checkpoints().items():
        run.save_module(name, module)
    x_out = in_input_units(pair, x_hat)
    run.save_output(x_out)
    write_georeferenced(run, pair, x_out)
    save_quicklook(run.file("quicklook.png"), hwc(pair.Y), hwc(pair.Z), hwc(x_hat), monitor.estimated_psf(),
                   monitor.estimated_srf(), hsi_wavelengths=None if pair.source is None else pair.source.wavelengths,
                   reference=pair.X, true_psf=pair.psf[::-1, ::-1] if pair.known_degradations else None,
                   true_srf=pair.srf if pair.known_degradations else None,
                   msi_band_names=None if pair.source is None else pair.source.msi_band_names,
                   title=os.path.basename(run.target or run.path))
    results.update({
        "stage_seconds": {s: r["seconds"] for s, r in monitor.stage_results.items()},
        "evaluation_seconds": monitor.seconds, "stage_results": monitor.stage_results,
        "estimated_psf": monitor.estimated_psf(), "true_psf" if pair.known_degradations else "nominal_psf": pair.psf,
        "estimated_srf": monitor.estimated_srf(), "true_srf" if pair.known_degradations else "nominal_srf": pair.srf,
        **monitor.degradation_errors(), "data": pair.info,
    })
    run.save_metrics(results)
    return results


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = get_args(argv)
    try:
        fuse(args, resume_overrides(argv) if args.resume else RESUMABLE_OPTIONS)
    except (DataError, TrainingDiverged, OutOfMemory) as exc:
        log.error("error: %s", exc)
        return 1
    except Interrupted as exc:
        log.error("%s: %s", exc, exc.how_to_resume())
        return exc.exit_code
    except KeyboardInterrupt:  # before training began: nothing to save
        log.error("interrupted before training began")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
