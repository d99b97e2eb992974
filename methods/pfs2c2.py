"""PFS2C2: Jia et al., "Spectral-Spatial Collaborative Pretraining Framework with Multi-Constraint
Cooperation for Hyperspectral-Multispectral Image Fusion", IEEE JSTARS 2025, doi 10.1109/JSTARS.2025.3562278.
Pretrained spatial (SpaUp) and spectral (SpeUp, with spectral attention) inverse modules, then degradation
learning, then joint optimisation; the authors' stages and schedule (README "Faithfulness notes" on
their learning-rate reset, ``--pfs_lr_reset``).

Y: LR-HSI, Z: HR-MSI (tensors 1 x C x h x w and 1 x Cm x H x W); all losses are mean L1 over the valid pixels.
"""
import torch

from methods.common import Nets, Stage, adam, degradation_nets
from model import SpaUp, SpeUp


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
