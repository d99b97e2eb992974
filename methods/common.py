"""What the methods share: their networks (``Nets``, saved under the original checkpoint names), the
degradation networks SpaDnet and SpeDnet (learned, or fixed to a known PSF / SRF), one stage of a
schedule (``Stage``), its optimiser (``adam``) and what each of its steps trains on (``batches``: the
whole pair, or a fresh batch of patches in patch mode, fusion.patches)."""
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from model import SpaDnet, SpeDnet


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
    reset_each_epoch: bool = False
    sampler: object = None

    def __post_init__(self):
        # A method passes None for an optimiser whose modules are all fixed (--isCal_PSF/SRF No).
        self.optimizers = [o for o in self.optimizers if o is not None]
