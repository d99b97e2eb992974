"""UDALN: J. Li, K. Zheng, J. Yao, L. Gao, D. Hong, "Deep Unsupervised Blind Hyperspectral and
Multispectral Data Fusion", IEEE GRSL 19, 2022. Algorithm 1: SpaDnet (PSF) and SpeDnet (SRF) learn the
degradations, SpeUnet the spectral inverse mapping, in three stages; X_hat = SpeUnet(Z).

Y: LR-HSI, Z: HR-MSI (tensors 1 x C x h x w and 1 x Cm x H x W); all losses are mean L1 over the valid
pixels. UDS2C2 (methods.uds2c2) reuses these stages with its own modules.
"""
from methods.common import Nets, Stage, adam, degradation_nets
from model import SpeUnet


def udaln(args, pair):
    """UDALN's networks (SpaDnet, SpeDnet, SpeUnet) on the pair's device and Algorithm 1's stages: (Nets, [Stage])."""
    spa, spe = degradation_nets(args, pair)
    nets = Nets(spa=spa, spe=spe, up=SpeUnet(pair.msi_channels, pair.hsi_channels).to(pair.Y.device))
    return nets, udaln_stages(args, pair, nets)


def udaln_stages(args, pair, nets):
    """Algorithm 1's three stages for ``nets`` (UDALN's modules, or UDS2C2's with its GCE): a list of Stage."""
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
