"""Each stage's loss, as the methods build it (``Stage.make_loss``), against its formula written out here
from the networks' outputs: the sub-networks called one by one, the reductions done by hand.

UDALN: Li et al., "Deep Unsupervised Blind Hyperspectral and Multispectral Data Fusion", IEEE GRSL 19,
2022, Algorithm 1, and the authors' train_all_special.py (JiaxinLiCAS/UDALN_GRSL), whose loss1 ... loss4
the formulas below name. PFS2C2: Jia et al., IEEE JSTARS 2025, doi 10.1109/JSTARS.2025.3562278, its three
stages and the authors' train.py (Welcome-to-LISA/PFS2C2: loss0 ... loss5). UDS2C2: Yu et al., IEEE TGRS
62, 2024, reconstructed from its abstract (README "UDS2C2"): UDALN's losses with GCE harmonising every
HSI-derived MSI. The papers' equation numbers are not quoted: their text is not in this repository; the
losses are those of Algorithm 1 (UDALN) and of the authors' code, which the README's "Faithfulness notes"
say this implementation follows.

Notation: Y the LR-HSI, Z the HR-MSI, SpaD the spatial degradation (PSF), SpeD the spectral one (SRF),
SpeU the spectral inverse mapping (UDALN's SpeUnet, PFS2C2's SpeUp), SpaU PFS2C2's spatial inverse module,
H UDS2C2's GCE (the identity without it), Cal the normalised degradation model's calibration of an MSI,
Z / g - c per band (README "Degradation model"; the identity under the papers' model and with a GCE).
|a - b| is the mean absolute difference over the bands and the valid pixels (weighted, in patch mode,
by the sampler's coverage weights, fusion.patches).

Every case starts from the networks moved off their initial states (so that GCE, the MSI gain, the
attentions are not the identity), builds the stage's loss, then moves what the stage trains once more,
as its optimiser steps would: terms the stage fixes when it begins (detached targets) must keep their
values, the others must follow. The gradients are compared too, so a missing or extra ``detach``
shows.
"""
from collections import namedtuple

import numpy as np
import pytest
import torch

from config import get_args
from data_loader import simulate_pair, to_tensor
from fusion.pair import Pair
from imagery.spectral_response import support_range
from methods import METHODS, check_options
from model.degradation import gaussian_psf

R = 2            # HR pixels per LR pixel
HR = 8           # HR-MSI side: the LR-HSI is 4 x 4
HSI_BANDS = 8
PATCH = ("--training_mode", "patches", "--patch_size", "2", "--patches_per_step", "3")
# Each MSI band: a Gaussian-like response over a contiguous, overlapping range of the 8 HSI bands.
SUPPORTS = [(0, 3), (2, 5), (4, 7)]
VALUE_TOLERANCE = {"rtol": 1e-6, "atol": 1e-7}
GRADIENT_TOLERANCE = {"rtol": 1e-5, "atol": 1e-6}

Batch = namedtuple("Batch", "Y Z lr_weight hr_weight origins size")


def tiny_srf():
    srf = np.zeros((HSI_BANDS, len(SUPPORTS)))
    for band, (first, last) in enumerate(SUPPORTS):
        srf[first:last + 1, band] = np.exp(-0.5 * (np.arange(last - first + 1) - (last - first) / 2) ** 2)
    return srf / srf.sum(axis=0)


def tiny_pair(nodata):
    """A Wald pair of a random 8 x 8 x 8 cube (r = 2, 3 MSI bands) whose MSI sensor is 1.5 times brighter
    with an offset, so that the normalised model's calibration has something to do. ``nodata``: one LR
    pixel and its HR block, and one more HR pixel, are invalid."""
    reference = np.random.default_rng(5).random((HR, HR, HSI_BANDS))
    srf, psf = tiny_srf(), gaussian_psf(R, R / 2.35482)
    item = {k: to_tensor(v) for k, v in simulate_pair(reference, srf, psf, R, lambda m: 1.5 * m + 0.02).items()}
    if nodata:
        lr_valid = np.ones((HR // R, HR // R), dtype=bool)
        lr_valid[1, 2] = False
        hr_valid = np.kron(lr_valid, np.ones((R, R), dtype=bool))
        hr_valid[6, 1] = False
        item.update(lr_valid=lr_valid, hr_valid=hr_valid, out_valid=hr_valid)
    return Pair.from_item(item, psf, srf, support_range(srf), torch.device("cpu"))


def build(method, options, mode):
    """The method's networks and stages on the tiny pair, as train_all_special.fuse and train build them."""
    args = get_args(["--device", "cpu", "--scale_factor", str(R), "--method", method, *options,
                     *(PATCH if mode == "patches" else ())])
    pair = tiny_pair(nodata=mode != "whole")
    check_options(args, pair, streamed=False)
    torch.manual_seed(0)
    nets, stages = METHODS[method](args, pair)
    return pair, nets, {stage.number: stage for stage in stages}


def nudge(parameters, seed):
    """Move each parameter by a random step: networks as after some training, none at its initial state."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in parameters:
            p.add_(0.05 * torch.randn(p.shape, generator=generator))


def trainable(modules):
    """The parameters the optimisers may change (a known PSF or SRF is fixed)."""
    return [p for m in modules for p in m.parameters() if p.requires_grad]


def trained_by(stage):
    """The parameters the stage's optimisers step."""
    return [p for optimizer in stage.optimizers for group in optimizer.param_groups for p in group["params"]]


def mean_l1(a, b, weight):
    """Mean |a - b| over every band of every pixel, each pixel weighted by ``weight`` (B x 1 x H x W: the
    valid mask, or the patch sampler's weights; None: every pixel counts once)."""
    difference = (a - b).abs()
    if weight is None:
        return difference.sum() / difference.numel()
    weight = weight.expand_as(difference)
    return (difference * weight).sum() / weight.sum()


def calibrated(nets, msi):
    """Cal(Z) = Z / g - c per MSI band (g = exp(log_gain), c = offset) under the normalised model without
    GCE; the MSI itself otherwise."""
    if nets.msi_gain is None:
        return msi
    g = torch.exp(nets.msi_gain.log_gain).view(1, -1, 1, 1)
    return msi / g - nets.msi_gain.offset.view(1, -1, 1, 1)


def harmonised(nets, msi):
    """H(m): GCE(m) with UDS2C2's GCE, else m."""
    return msi if nets.gce is None else nets.gce(msi)


def lr_msi(nets, z):
    """Z_l2 = Cal(SpaD(Z)): the LR-MSI degraded from the HR-MSI."""
    return calibrated(nets, nets.spa(z))


def lr_patches(image, batch):
    """The batch's patches of a whole-image LR-grid tensor (the image itself in whole-image mode)."""
    if batch.origins is None:
        return image
    (p, q) = batch.size
    return torch.stack([image[0, :, i:i + p, j:j + q] for i, j in batch.origins])


def whole_image(pair):
    """What a whole-image step trains on: the pair, each pixel weighted by its boolean valid mask (1 x 1 x
    H x W; None where every pixel is valid)."""
    def weight(valid):
        if valid is None or valid.all():
            return None
        return torch.from_numpy(valid.astype(np.float32))[None, None]
    return Batch(pair.Y, pair.Z, weight(pair.lr_valid), weight(pair.hr_valid), None, None)


def drawn_batch(stage):
    """The batch a patch-mode loss trained on: its stage's first (its sampler is seeded, so redrawing
    after a reset gives it again)."""
    sampler = stage.sampler
    assert sampler.draws == 1  # one batch per step
    sampler.reset()
    v = sampler.draw()
    return Batch(v.Y, v.Z, v.lr_mask, v.hr_mask, list(zip(v.rows.tolist(), v.cols.tolist())), v.size)


def gradients(loss, parameters):
    """d loss / d p for each parameter, zero where the loss does not depend on it."""
    grads = torch.autograd.grad(loss, parameters, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for g, p in zip(grads, parameters)]


def check_stage(method, options, mode, number, formula):
    """Build ``method`` with ``options`` in ``mode`` ('whole', 'nodata': whole image with invalid pixels,
    'patches': patch training, with invalid pixels), nudge every network, build stage ``number``'s loss
    (whose fixed targets, ``start``, are taken from the networks as they are then), nudge what the stage
    trains, and compare the stage's loss and its gradients with ``formula(nets, batch, start)``."""
    pair, nets, stages = build(method, options, mode)
    stage = stages[number]
    everything = trainable(nets.checkpoints().values())
    nudge(everything, seed=1)
    with torch.no_grad():
        start = {"z_l1": nets.spe(pair.Y), "z_l2": lr_msi(nets, pair.Z)}
    loss = stage.make_loss()
    nudge(trained_by(stage), seed=2)

    got = loss()
    batch = drawn_batch(stage) if mode == "patches" else whole_image(pair)
    expected = formula(nets, batch, start)
    torch.testing.assert_close(got, expected, **VALUE_TOLERANCE)
    for g, e in zip(gradients(got, everything), gradients(expected, everything)):
        torch.testing.assert_close(g, e, **GRADIENT_TOLERANCE)


MODES = ("whole", "nodata", "patches")
# Options whose networks cannot be cut into patches (a PSF wider than r, SCFConv's per-band PSF) are
# refused in patch mode (methods.check_options): whole-image modes only.
WHOLE_ONLY = ("whole", "nodata")


def cases(configurations):
    return [pytest.param(options, mode, id=f"{name}-{mode}")
            for name, options, modes in configurations for mode in modes]


BOTH_MODELS = [
    ("original", ("--degradation", "original"), MODES),
    ("normalised", ("--degradation", "normalised"), MODES),
    ("original-wide-psf", ("--degradation", "original", "--psf_size", "3"), WHOLE_ONLY),
    ("normalised-wide-psf", ("--degradation", "normalised", "--psf_size", "3"), WHOLE_ONLY),
]
UDS2C2_OPTIONS = [
    ("normalised-gce", ("--degradation", "normalised", "--gce", "yes"), MODES),
    ("normalised-no-gce", ("--degradation", "normalised", "--gce", "no"), MODES),
    ("original-gce", ("--degradation", "original", "--gce", "yes"), MODES),
    ("original-no-gce", ("--degradation", "original", "--gce", "no"), MODES),
    ("scfconv-inverse", ("--degradation", "normalised", "--scfconv", "yes", "--scf_place", "inverse",
                         "--scf_kernel", "3", "--scf_attention", "sigmoid"), MODES),
    ("scfconv-spatial-normalised", ("--degradation", "normalised", "--scfconv", "yes", "--scf_place",
                                    "spatial", "--scf_attention", "sigmoid"), WHOLE_ONLY),
    ("scfconv-spatial-original", ("--degradation", "original", "--gce", "no", "--scfconv", "yes",
                                  "--scf_place", "spatial"), WHOLE_ONLY),
]


# ----------------------------------------------------------------------------- UDALN (and UDS2C2)

def consistency(nets, batch, start):
    """Loss1 = |H(SpeD(Y)) - Cal(SpaD(Z))|: the two paths to the LR-MSI agree."""
    return mean_l1(harmonised(nets, nets.spe(batch.Y)), lr_msi(nets, batch.Z), batch.lr_weight)


def inverse_on_the_stage_start_lr_msi(nets, batch, start):
    """Loss2 = |SpeU(Z_l2*) - Y|, Z_l2* = Cal(SpaD(Z)) as stage 2 begins, detached."""
    return mean_l1(nets.up(lr_patches(start["z_l2"], batch)), batch.Y, batch.lr_weight)


def joint(nets, batch, start):
    """Loss1 + Loss2 + Loss3 + Loss4 with X = SpeU(Cal(Z)) and Z_l2 = Cal(SpaD(Z)) recomputed, not
    detached: |H(SpeD(Y)) - Z_l2| + |SpeU(Z_l2) - Y| + |H(SpeD(X)) - Cal(Z)| + |SpaD(X) - Y|."""
    z = calibrated(nets, batch.Z)
    z_l2 = lr_msi(nets, batch.Z)
    x = nets.up(z)
    return (mean_l1(harmonised(nets, nets.spe(batch.Y)), z_l2, batch.lr_weight)
            + mean_l1(nets.up(z_l2), batch.Y, batch.lr_weight)
            + mean_l1(harmonised(nets, nets.spe(x)), z, batch.hr_weight)
            + mean_l1(nets.spa(x), batch.Y, batch.lr_weight))


@pytest.mark.parametrize("options, mode", cases(BOTH_MODELS))
def test_udaln_stage_1_loss_is_the_l1_between_the_two_lr_msis(options, mode):
    """UDALN, Algorithm 1, stage 1 (the original's loss1 = L1Loss(SpeDnet(Y), SpaDnet(Z))):
    Loss1 = |SpeD(Y) - SpaD(Z)|; under the normalised model |SpeD(Y) - Cal(SpaD(Z))|."""
    check_stage("udaln", options, mode, 1, consistency)


@pytest.mark.parametrize("options, mode", cases(BOTH_MODELS))
def test_udaln_stage_2_loss_maps_the_detached_lr_msi_back_to_the_lr_hsi(options, mode):
    """UDALN, Algorithm 1, stage 2 (the original's loss2 = L1Loss(SpeUnet(Z_l2), Y), Z_l2 = SpaDnet(Z)
    of stage 1, clone().detach()): Loss2 = |SpeU(Z_l2*) - Y| with Z_l2* fixed when the stage begins; in
    patch mode each batch's patches of it (SpaD maps each r x r block on its own)."""
    check_stage("udaln", options, mode, 2, inverse_on_the_stage_start_lr_msi)


@pytest.mark.parametrize("options, mode", cases(BOTH_MODELS))
def test_udaln_stage_3_loss_is_the_sum_of_the_four_l1_terms(options, mode):
    """UDALN, Algorithm 1, stage 3 (the original's loss = loss1 + loss2 + loss3 + loss4, with
    X = SpeUnet(Z), loss3 = L1Loss(SpeDnet(X), Z), loss4 = L1Loss(SpaDnet(X), Y), and SpaDnet(Z)
    recomputed every epoch, not detached):
    |SpeD(Y) - Z_l2| + |SpeU(Z_l2) - Y| + |SpeD(X) - Cal(Z)| + |SpaD(X) - Y|, Z_l2 = Cal(SpaD(Z)),
    X = SpeU(Cal(Z))."""
    check_stage("udaln", options, mode, 3, joint)


@pytest.mark.parametrize("options, mode", cases(UDS2C2_OPTIONS))
def test_uds2c2_stage_1_loss_compares_the_harmonised_hsi_derived_lr_msi(options, mode):
    """UDS2C2 (reconstructed) stage 1: UDALN's Loss1 with GCE on the HSI-derived LR-MSI,
    |H(SpeD(Y)) - Cal(SpaD(Z))| (Cal the identity with GCE, which plays the MSI gain's part); SCFConv
    changes only the networks (in SpaD with --scf_place spatial)."""
    check_stage("uds2c2", options, mode, 1, consistency)


@pytest.mark.parametrize("options, mode", cases(UDS2C2_OPTIONS))
def test_uds2c2_stage_2_loss_is_udalns(options, mode):
    """UDS2C2 stage 2: UDALN's Loss2, |SpeU(Z_l2*) - Y| with Z_l2* = Cal(SpaD(Z)) fixed when the stage
    begins (no GCE: nothing HSI-derived is compared with an MSI)."""
    check_stage("uds2c2", options, mode, 2, inverse_on_the_stage_start_lr_msi)


@pytest.mark.parametrize("options, mode", cases(UDS2C2_OPTIONS))
def test_uds2c2_stage_3_loss_harmonises_both_hsi_derived_msis(options, mode):
    """UDS2C2 stage 3: UDALN's four terms with GCE on both HSI-derived MSIs (README "Faithfulness notes":
    in the consistency term and on SpeDnet's output in Loss3):
    |H(SpeD(Y)) - Z_l2| + |SpeU(Z_l2) - Y| + |H(SpeD(X)) - Cal(Z)| + |SpaD(X) - Y|."""
    check_stage("uds2c2", options, mode, 3, joint)


# ----------------------------------------------------------------------------- PFS2C2

def pretraining(nets, batch, start):
    """Loss0 = |SpaU(Y) - SpeU(Cal(Z))|."""
    return mean_l1(nets.spa_up(batch.Y), nets.up(calibrated(nets, batch.Z)), batch.hr_weight)


def degradation(nets, batch, start):
    """Loss1 = |SpeD(Y) - Cal(SpaD(Z))| (no GCE in PFS2C2)."""
    return mean_l1(nets.spe(batch.Y), lr_msi(nets, batch.Z), batch.lr_weight)


def guided(nets, batch, start):
    """|SpeD(Y) - Cal(SpaD(Z))| + |SpeU(Z_l2*) - Y| + |SpaU(Z_l1*) - Cal(Z)| + |SpaD(SpeU(Cal(Z))) - Y|
    with Z_l1* = SpeD(Y) and Z_l2* = Cal(SpaD(Z)) fixed when the stage begins."""
    z = calibrated(nets, batch.Z)
    return (mean_l1(nets.spe(batch.Y), lr_msi(nets, batch.Z), batch.lr_weight)
            + mean_l1(nets.up(lr_patches(start["z_l2"], batch)), batch.Y, batch.lr_weight)
            + mean_l1(nets.spa_up(lr_patches(start["z_l1"], batch)), z, batch.hr_weight)
            + mean_l1(nets.spa(nets.up(z)), batch.Y, batch.lr_weight))


@pytest.mark.parametrize("options, mode", cases(BOTH_MODELS))
def test_pfs2c2_stage_1_loss_pretrains_the_two_inverse_modules_against_each_other(options, mode):
    """PFS2C2, stage 1 (pretraining the inverse modules on the original images; the authors' loss0 =
    L1Loss(Spatial_up_net(Y), Spectral_up_net(Z))): Loss0 = |SpaU(Y) - SpeU(Cal(Z))| on the HR grid."""
    check_stage("pfs2c2", options, mode, 1, pretraining)


@pytest.mark.parametrize("options, mode", cases(BOTH_MODELS))
def test_pfs2c2_stage_2_loss_is_the_l1_between_the_two_lr_msis(options, mode):
    """PFS2C2, stage 2 (degradation learning, UDALN's stage 1; the authors' loss1 =
    L1Loss(Spectral_down_net(Y), Spatial_down_net(Z))): |SpeD(Y) - Cal(SpaD(Z))|."""
    check_stage("pfs2c2", options, mode, 2, degradation)


@pytest.mark.parametrize("options, mode", cases(BOTH_MODELS))
def test_pfs2c2_stage_3_loss_is_guided_by_the_stage_start_lr_msis(options, mode):
    """PFS2C2, stage 3 (joint optimisation guided by the stage-2 LR-MSIs; the authors' loss2 + loss3 +
    loss4 + loss5, the last back-propagated on its own, which sums the gradients the same way):
    |SpeD(Y) - SpaD(Z)| + |SpeU(Z_l2*) - Y| + |SpaU(Z_l1*) - Z| + |SpaD(SpeU(Z)) - Y|, Z_l1* = SpeD(Y)
    and Z_l2* = SpaD(Z) detached (the authors' clone().detach()), Z calibrated under the normalised model."""
    check_stage("pfs2c2", options, mode, 3, guided)
