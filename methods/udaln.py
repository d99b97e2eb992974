"""UDALN: J. Li, K. Zheng, J. Yao, L. Gao, D. Hong, "Deep Unsupervised Blind Hyperspectral and
Multispectral Data Fusion", IEEE GRSL 19, 2022. Algorithm 1: SpaDnet (PSF) and SpeDnet (SRF) learn the
degradations, SpeUnet the spectral inverse mapping, in three stages; X_hat = SpeUnet(Z).

Y: LR-HSI, Z: HR-MSI (tensors 1 x C x h x w and 1 x Cm x H x W; in patch mode each step's batch of
aligned patches, B x C x P x P and B x Cm x rP x rP, fusion.patches); all losses are mean L1 over the
valid pixels. UDS2C2 (methods.uds2c2) reuses these stages with its own modules.
"""
import torch

from fusion.patches import stage_sampler
from methods.common import Nets, Stage, adam, batches, degradation_nets, msi_gain
from model import SpeUnet


def udaln(args, pair):
    """UDALN's networks (SpaDnet, SpeDnet, SpeUnet) on the pair's device and Algorithm 1's stages: (Nets, [Stage])."""
    # SpeUnet first, as the original builds it: the same seed gives the same start.
    up = SpeUnet(pair.msi_channels, pair.hsi_channels).to(pair.Y.device)
    spa, spe = degradation_nets(args, pair)
    nets = Nets(spa=spa, spe=spe, up=up, msi_gain=msi_gain(args, pair, spa, spe))
    return nets, udaln_stages(args, pair, nets)


def degradation_stage(args, pair, nets):
    """Algorithm 1's stage 1 for ``nets``: learn the degradations, Loss1 = |SpeDnet(Y) - SpaDnet(Z)|, i.e.
    Z_l1 = Z_l2 (UDS2C2: Z_l1 harmonised by GCE; normalised model: Z_l2 calibrated by MSIGain; Nets.harmonise,
    Nets.calibrate). A Stage; also the recommended mode's only one (methods.recommended)."""
    sampler = stage_sampler(args, pair, 1)

    def stage1():
        batch = batches(pair, sampler)

        def degradation_loss():
            v = batch()
            return v.lr_l1(nets.predicted_msi(v.Y), nets.lr_msi(v.Z))
        return degradation_loss

    return Stage(1, [adam([nets.spa, nets.spe, nets.gce, nets.msi_gain], args.lr_stage1)], stage1, ("degradation",),
                 sampler=sampler)


def udaln_stages(args, pair, nets):
    """Algorithm 1's three stages for ``nets`` (UDALN's modules, or UDS2C2's with its GCE): a list of Stage.
    In patch mode (fusion.patches) every step of every stage trains on a fresh batch of patches."""
    Y, Z = pair.Y, pair.Z
    lr_l1 = pair.lr_l1  # mean L1 over the valid pixels of the LR grid
    stage1 = degradation_stage(args, pair, nets)
    opt_degradation = stage1.optimizers[0] if stage1.optimizers else None
    opt_inverse = adam([nets.up], args.lr_stage2)
    samplers = {n: stage_sampler(args, pair, n) for n in (2, 3)}

    def stage2():
        # Learn the spectral inverse mapping on the LR-MSI: Loss2 = |SpeUnet(Z_l2) - Y|, Z_l2 detached.
        sampler = samplers[2]
        if sampler is None:
            z_l2 = nets.lr_msi(Z).detach()
            return lambda: lr_l1(nets.up(z_l2), Y)

        def patch_loss():
            v = sampler.draw()
            # SpaDnet (and MSIGain) do not change in stage 2 and SpaDnet maps each r x r block on its own, so
            # its output on the HR patch is exactly the patch of Z_l2.
            with torch.no_grad():
                z_l2 = nets.lr_msi(v.Z)
            return v.lr_l1(nets.up(z_l2), v.Y)
        return patch_loss

    def stage3():
        # Joint fine-tuning with X = SpeUnet(Z): Loss1 + Loss2 + |SpeDnet(X) - Z| + |SpaDnet(X) - Y|.
        # Z_l2 is recomputed every epoch and not detached; the optimisers of stages 1 and 2 carry on.
        batch = batches(pair, samplers[3])

        def joint_loss():
            v = batch()
            z = nets.calibrate(v.Z)
            z_l2 = nets.lr_msi(v.Z)
            x = nets.up(z)
            return (v.lr_l1(nets.predicted_msi(v.Y), z_l2) + v.lr_l1(nets.up(z_l2), v.Y)
                    + v.hr_l1(nets.predicted_msi(x), z) + v.lr_l1(nets.spa(x), v.Y))
        return joint_loss

    return [stage1,
            Stage(2, [opt_inverse], stage2, ("inverse", "fusion"), sampler=samplers[2]),
            Stage(3, [opt_degradation, opt_inverse], stage3, ("degradation", "inverse", "fusion"),
                  sampler=samplers[3])]
