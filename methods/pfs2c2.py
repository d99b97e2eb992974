"""PFS2C2: Jia et al., "Spectral-Spatial Collaborative Pretraining Framework with Multi-Constraint
Cooperation for Hyperspectral-Multispectral Image Fusion", IEEE JSTARS 2025, doi 10.1109/JSTARS.2025.3562278.
Pretrained spatial (SpaUp) and spectral (SpeUp, with spectral attention) inverse modules, then degradation
learning, then joint optimisation; the authors' stages and schedule (docs/methods.md, "Faithfulness notes" on
their learning-rate reset, ``--pfs_lr_reset``).

Y: LR-HSI, Z: HR-MSI (tensors 1 x C x h x w and 1 x Cm x H x W; in patch mode each step's batch of
aligned patches, B x C x P x P and B x Cm x rP x rP, fusion.patches); all losses are mean L1 over the
valid pixels.
"""
import torch

from fusion.patches import by_lr_rows, stage_sampler
from methods.common import Nets, Stage, adam, batches, degradation_nets, msi_gain
from model import SpaUp, SpeUp


def pfs2c2(args, pair):
    """PFS2C2 (Jia et al., JSTARS 2025): pretrained inverse modules, degradation learning, then joint
    optimisation guided by the pretrained parameters."""
    device = pair.Y.device
    up = SpeUp(pair.msi_channels, pair.hsi_channels).to(device)  # first, as the authors': same seed, same start
    spa, spe = degradation_nets(args, pair)
    nets = Nets(spa=spa, spe=spe, up=up, up_name="SpeUp", spa_up=SpaUp(pair.scale, args.sigma).to(device),
                msi_gain=msi_gain(args, pair, spa, spe))
    Y, Z = pair.Y, pair.Z
    lr_l1, hr_l1 = pair.lr_l1, pair.hr_l1
    script = args.pfs_lr_reset
    # The rates the optimisers are created with matter only with the authors' script (func.stage_lr), which
    # keeps them until a stage's decay begins; it creates the inverse modules' with lr_stage2 and the
    # degradations' with lr_stage1, the other way round from the stages that train them.
    opt_inverse = adam([nets.spa_up, nets.up], args.lr_stage2 if script else args.lr_stage1)
    opt_degradation = adam([nets.spa, nets.spe, nets.msi_gain], args.lr_stage1 if script else args.lr_stage2)
    samplers = {n: stage_sampler(args, pair, n) for n in (1, 2, 3)}

    def stage1():
        # Pretrain the inverse modules on the original images: Loss0 = |SpaUp(Y) - SpeUp(Z)|.
        batch = batches(pair, samplers[1])

        def pretraining_loss():
            v = batch()
            return v.hr_l1(nets.spa_up(v.Y), nets.fuse(v.Z, v.Y))
        return pretraining_loss

    def stage2():
        # Learn the degradations (UDALN's stage 1): Loss1 = |SpeDnet(Y) - SpaDnet(Z)| (Z_l2 calibrated by the
        # normalised model's MSIGain, Nets.calibrate; the published model has none).
        batch = batches(pair, samplers[2])

        def degradation_loss():
            v = batch()
            return v.lr_l1(nets.spe(v.Y), nets.lr_msi(v.Z))
        return degradation_loss

    def stage3():
        # All four modules, guided by the stage-2 LR-MSIs (detached):
        # |SpeDnet(Y) - SpaDnet(Z)| + |SpeUp(Z_l2) - Y| + |SpaUp(Z_l1) - Z| + |SpaDnet(SpeUp(Z)) - Y|.
        sampler = samplers[3]
        if sampler is None:
            with torch.no_grad():
                z_l1, z_l2 = nets.spe(Y), nets.lr_msi(Z)

            def joint_loss():
                z = nets.calibrate(Z)
                return (lr_l1(nets.spe(Y), nets.lr_msi(Z)) + lr_l1(nets.up(z_l2), Y) + hr_l1(nets.spa_up(z_l1), z)
                        + lr_l1(nets.spa(nets.up(z)), Y))
            return joint_loss
        # Patch mode: the fixed targets are computed once, over the whole LR grid (a band of LR rows at a
        # time, so memory stays bounded), then each batch takes its patches of them. Both networks map
        # pixels (SpeDnet) and LR-pixel windows (SpaDnet) on their own, so these are exactly the targets of
        # whole-image training, from the networks as they are when stage 3 begins (a resumed run calls
        # this with those states loaded); one LR-sized pass, instead of two more forward passes a step
        # through frozen copies.
        with torch.no_grad():
            z_l1 = by_lr_rows(nets.spe, Y, 1)
            z_l2 = by_lr_rows(nets.lr_msi, Z, pair.scale, context=nets.spa.context_rows)

        def patch_loss():
            v = sampler.draw()
            t1, t2 = v.lr_patches(z_l1), v.lr_patches(z_l2)
            z = nets.calibrate(v.Z)
            return (v.lr_l1(nets.spe(v.Y), nets.lr_msi(v.Z)) + v.lr_l1(nets.up(t2), v.Y) + v.hr_l1(nets.spa_up(t1), z)
                    + v.lr_l1(nets.spa(nets.up(z)), v.Y))
        return patch_loss

    return nets, [
        Stage(1, [opt_inverse], stage1, ("spatial_inverse", "fusion"), script, samplers[1]),
        Stage(2, [opt_degradation], stage2, ("degradation",), script, samplers[2]),
        Stage(3, [opt_inverse, opt_degradation], stage3,
              ("degradation", "inverse", "spatial_inverse", "fusion"), script, samplers[3])]
