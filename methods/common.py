"""What the methods share: their networks (``Nets``, saved under the original checkpoint names), the
degradation networks SpaDnet and SpeDnet (learned, or fixed to a known PSF / SRF), the normalised
degradation model's MSI gain (``msi_gain``, docs/degradation_model.md), one stage of a
schedule (``Stage``), its optimiser (``adam``) and what each of its steps trains on (``batches``: the
whole pair, or a fresh batch of patches in patch mode, fusion.patches)."""
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from fusion.patches import by_lr_rows
from imagery.errors import DataError
from model import MSIGain, SpaDnet, SpeDnet


@dataclass
class Nets:
    """The networks of one method, saved under the original checkpoint names."""
    spa: nn.Module                      # SpaDnet -> PSF.pth
    spe: nn.Module                      # SpeDnet -> convolution_hr2msi.pth
    up: nn.Module                       # inverse mapping -> <up_name>.pth
    up_name: str = "spectral_upsample"  # SpeUnet's file name; PFS2C2 saves SpeUp.pth, the recommended mode
    #                                     hypersharpening.pth
    spa_up: nn.Module = None            # PFS2C2's SpaUp -> SpaUp.pth
    gce: nn.Module = None               # UDS2C2's GCE -> GCE.pth
    msi_gain: nn.Module = None          # --degradation normalised without a GCE: MSIGain -> MSI_gain.pth

    def checkpoints(self):
        named = {"PSF": self.spa, "convolution_hr2msi": self.spe, self.up_name: self.up, "SpaUp": self.spa_up,
                 "GCE": self.gce, "MSI_gain": self.msi_gain}
        return {name: module for name, module in named.items() if module is not None}

    def harmonise(self, msi):
        """An HSI-derived MSI as the methods compare it with the MSI: GCE(msi) when there is a GCE, else msi."""
        return msi if self.gce is None else self.gce(msi)

    def calibrate(self, msi):
        """An MSI (the HR-MSI or one degraded from it) as the methods use it: in the HSI's radiometry,
        MSIGain(msi), under the normalised degradation model; else msi as it is (the papers' models)."""
        return msi if self.msi_gain is None else self.msi_gain(msi)

    def lr_msi(self, z):
        """Z_l2 = SpaDnet(z), calibrated: the LR-MSI degraded from an MSI, as the losses use it."""
        return self.calibrate(self.spa(z))

    def predicted_msi(self, x):
        """SpeDnet(x), harmonised: the MSI that the HSI x predicts, as the losses compare it with the
        calibrated MSI."""
        return self.harmonise(self.spe(x))

    def to_msi(self, x):
        """SpeDnet(x) in the MSI sensor's units: harmonised by GCE, or through MSIGain's inverse."""
        msi = self.predicted_msi(x)
        return msi if self.msi_gain is None else self.msi_gain.to_sensor(msi)

    @property
    def reads_lr_hsi(self):
        """Whether X_hat is computed from Y as well as Z (the recommended mode), not from Z alone (the papers)."""
        return getattr(self.up, "reads_lr_hsi", False)

    def inverse_network(self):
        """The module computing X_hat (for tiled inference): SpeUnet, after MSIGain when there is one, from Z;
        the recommended mode's HyperSharpening from Z and Y (``reads_lr_hsi``)."""
        if self.reads_lr_hsi or self.msi_gain is None:
            return self.up
        return nn.Sequential(self.msi_gain, self.up)

    def prepare(self, pair):
        """Set what the inverse mapping takes from the whole pair once training is over (the recommended
        mode's learned PSF and band regression, methods.recommended); nothing for the papers' networks."""
        if hasattr(self.up, "fit"):
            self.up.fit(pair, self.spa)

    def fuse(self, Z, Y):
        """X_hat from the HR-MSI Z and the LR-HSI Y: SpeUnet(Z) (of the calibrated Z under the normalised
        degradation model; as the papers define it, Y is not used), or the recommended mode's
        HyperSharpening(Z, Y)."""
        if self.reads_lr_hsi:
            return self.up(Z, Y)
        return self.up(self.calibrate(Z))


def degradation_nets(args, pair, spa=None):
    """SpaDnet and SpeDnet, learned (blind) or fixed to the known PSF / SRF (--isCal_PSF/--isCal_SRF No);
    with --degradation normalised the learned PSF sums to 1 (model.SpaDnet). ``spa``: a method's own
    spatial degradation network (UDS2C2's SCFSpaDnet) instead of SpaDnet. The learned PSF is
    --psf_size pixels a side (r when 0)."""
    known_psf = args.isCal_PSF == "No"
    known_srf = args.isCal_SRF == "No"
    if spa is None:
        spa = SpaDnet(pair.scale, known_psf=pair.psf if known_psf else None, trainable=not known_psf,
                      normalised=normalised(args), size=args.psf_size or None)
    spe = SpeDnet(pair.sp_range, pair.hsi_channels, known_srf=pair.srf if known_srf else None,
                  trainable=not known_srf)
    return spa.to(pair.Y.device), spe.to(pair.Y.device)


def check_psf_size(args, pair, streamed):
    """Refuse a --psf_size that the pair or the run cannot use: smaller than the pair's r (a real pair's r
    is known only now), or larger than r with patch training or streamed output, whose patches and tiles
    are cut on the r x r blocks and do not carry the rows and columns such a PSF reads beyond them.
    Raises DataError."""
    size = args.psf_size
    if not size:
        return
    if size < pair.scale:
        raise DataError(f"--psf_size {size} is smaller than the pair's scale factor r = {pair.scale}: give at "
                        f"least {pair.scale}, or 0 for r")
    why = piecewise_run(args, streamed)
    if size > pair.scale and why:
        raise DataError(f"--psf_size {size} reads HR pixels beyond each LR pixel's {pair.scale} x {pair.scale} "
                        f"block, and {why} cuts the image on those blocks; drop --psf_size, or fuse a smaller "
                        "scene (--training_mode whole)")


def piecewise_run(args, streamed):
    """What makes the run see the image one piece at a time ('patch training', or streamed output for a
    scene this large), for the refusals of options that need the whole image; None for neither."""
    if args.training_mode == "patches":
        return "patch training"
    return "a scene this large (its output is streamed)" if streamed else None


def normalised(args):
    """Whether the run uses the normalised degradation model (--degradation; 'auto' is resolved by config)."""
    return args.degradation == "normalised"


def msi_gain(args, pair, spa, spe, gce=None):
    """The per-band MSI gain and offset of the normalised degradation model (model.MSIGain), or None:
    under the papers' model, or when the method's GCE plays that part (its gain then starts where
    MSIGain's would, ``match_band_means``)."""
    if not normalised(args):
        return None
    link = MSIGain(pair.msi_channels).to(pair.Y.device) if gce is None else gce
    match_band_means(link, pair, spa, spe)
    return None if gce is not None else link


def match_band_means(link, pair, spa, spe):
    """Start ``link``'s gain (MSIGain's, or GCE's first layer) at the ratio of the band means of the two
    LR-MSIs that the initial degradations give, mean(SpaDnet(Z)) / mean(SpeDnet(Y)) over the valid LR
    pixels, with offset 0 (a band whose ratio is not a positive number keeps gain 1). Loss1 then starts
    with the two sensors' levels matched, which Adam's steps of lr_stage1 would take hundreds of epochs
    to reach (a gain of 1.5 at 1e-3 a step); on a radiometrically consistent pair the gains start near 1,
    and an MSI k times brighter starts at k times those gains."""
    with torch.no_grad():
        weight = 1.0 if pair.lr_mask is None else pair.lr_mask
        msi_level = (by_lr_rows(spa, pair.Z, pair.scale) * weight).sum(dim=(0, 2, 3))
        hsi_level = (by_lr_rows(spe, pair.Y, 1) * weight).sum(dim=(0, 2, 3))
        ratio = msi_level / hsi_level
        link.start_gain(torch.where(torch.isfinite(ratio) & (ratio > 0), ratio, torch.ones_like(ratio)))


def adam(modules, lr):
    """One Adam over the trainable parameters of ``modules`` (None when there are none)."""
    params = [p for m in modules if m is not None for p in m.parameters() if p.requires_grad]
    return torch.optim.Adam(params, lr=lr) if params else None


def batches(pair, sampler):
    """What each step of a stage trains on: a function returning the whole ``pair`` every time
    (whole-image mode, ``sampler`` None) or ``sampler.draw``, a fresh batch of patches (a
    fusion.pair.PairView, same attributes and losses) each call."""
    return (lambda: pair) if sampler is None else sampler.draw


@dataclass
class Stage:
    """One stage of a method: its number (which selects --lr_stageN etc.), the optimisers it steps, a
    factory that prepares the stage and returns its loss function, the checks to monitor, and in patch
    mode the stage's fusion.patches.PatchSampler (its loss draws one batch a step; the training
    checkpoint keeps its state)."""
    number: int
    optimizers: list
    make_loss: Callable[[], Callable[[], torch.Tensor]]
    watch: tuple
    authors_lr_script: bool = False  # PFS2C2's --pfs_lr_reset: func.stage_lr
    sampler: object = None

    def __post_init__(self):
        # A method passes None for an optimiser whose modules are all fixed (--isCal_PSF/SRF No).
        self.optimizers = [o for o in self.optimizers if o is not None]
