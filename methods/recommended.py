"""The recommended blind mode (``--method recommended``, the default for a real pair): this project's own
pipeline, beyond the papers, for the best blind result on real scenes (docs/methods.md, "The recommended
mode"; measured in docs/results.md).

1. Learn the PSF and the SRF blind: UDALN's stage 1 (Li et al., IEEE GRSL 2022, Loss1 = |SpeDnet(Y) -
   SpaDnet(Z)|) under the normalised degradation model (docs/degradation_model.md), whose learned PSF
   matches the true one on the real scenes.
2. X_0 = MTF-GLP-HS(Y, Z) with the learned PSF as its MTF (Selva et al., IEEE JSTARS 2015; the
   project's baselines.mtf_glp_hs, HPM injection, additive where the low-pass pan is below HPM_FLOOR of its
   mean, its modulation never negative): every HSI band gets the detail of its regression on the MSI bands.
   Unlike SpeUnet(Z), the papers' inverse mapping, it keeps Y's spectra and needs no SRF.
3. X_hat = the cube nearest X_0 whose degradation by the learned PSF is Y (model.degradation.lr_consistent):
   the output agrees with the LR-HSI exactly.

Y: LR-HSI, Z: HR-MSI (tensors 1 x C x h x w and 1 x Cm x H x W, H = r h).
"""
import numpy as np
import torch
from torch import nn

from baselines.mtf_glp_hs import hpm_floors, hpm_sharpen, synthetic_pans
from fusion.pair import hwc
from fusion.patches import by_lr_rows
from imagery.errors import DataError
from methods.common import Nets, degradation_nets, msi_gain
from methods.udaln import degradation_stage
from model.degradation import lr_consistent, spatial_degrade

BICUBIC_REACH = 2  # LR pixels on each side that the bicubic interpolation of one LR pixel's block reads
# HPM divides by the low-pass pan, which is unreliable where the pan regression leaves it small: there the
# detail is injected additively (baselines.mtf_glp_hs.hpm_sharpen). The baseline guards only against
# overshoots near 0 (1 % of the band's mean |pan|); this mode uses 15 %, chosen on the real scenes' tables
# (benchmarks/recommended_floor.py, docs/methods.md: of 1-20 %, 15 % is the best or within 0.02 dB of it on
# every scene and scale).
HPM_FLOOR = 0.15


def recommended(args, pair):
    """The recommended mode's networks (SpaDnet, SpeDnet, MSIGain and the HyperSharpening step) and its one
    training stage, UDALN's stage 1: (Nets, [Stage])."""
    spa, spe = degradation_nets(args, pair)
    up = HyperSharpening(pair.scale, pair.msi_channels, pair.hsi_channels)
    nets = Nets(spa=spa, spe=spe, up=up, up_name="hypersharpening", msi_gain=msi_gain(args, pair, spa, spe))
    return nets, [degradation_stage(args, pair, nets)]


def check_recommended(args, pair):
    """Refuse options the recommended mode cannot use on ``pair``, before anything is written. Raises
    DataError."""
    if args.method != "recommended":
        return
    if args.degradation != "normalised":
        raise DataError("--method recommended learns the PSF under the normalised degradation model; drop "
                        "--degradation original (the papers' model is for the papers' methods)")
    if args.stages != "123":
        raise DataError(f"--method recommended has one training stage; drop --stages {args.stages} (UDALN's "
                        "stage ablation is --method udaln)")
    if args.psf_size and args.psf_size != pair.scale:
        raise DataError(f"--method recommended projects onto the LR-HSI with an r x r PSF; drop --psf_size "
                        f"{args.psf_size}, or use --method udaln")
    if args.isCal_PSF == "No" and np.shape(pair.psf) != (pair.scale, pair.scale):
        raise DataError(f"--method recommended projects onto the LR-HSI with an r x r PSF; the known PSF is "
                        f"{np.shape(pair.psf)[0]} pixels wide (--sim_psf_size): learn it (--isCal_PSF Yes)")


class HyperSharpening(nn.Module):
    """X_hat = P_Y(MTF-GLP-HS(Y, Z; PSF)): the hypersharpened cube (baselines.mtf_glp_hs, HPM injection)
    projected onto the cubes whose degradation by the PSF is Y (model.degradation.lr_consistent).

    ``fit`` sets, from the whole pair, the learned PSF and the regression of every HSI band on the MSI bands
    (and its HPM floors); ``forward(z, y)`` then fuses the whole image or any tile aligned to r with
    ``tile_halo`` HR pixels of margin (fusion.tiling), exactly. The computation is in float64 numpy on the
    CPU, a fraction of a second for the papers' sizes. Its state (hypersharpening.pth) is the PSF as a
    convolution kernel (r x r), the weights ((Cm + 1) x C, the constant last) and the floors (C).
    """

    reads_lr_hsi = True

    def __init__(self, scale, msi_channels, hsi_channels):
        super().__init__()
        self.scale = scale
        self.tile_halo = BICUBIC_REACH * scale
        self.in_channels, self.out_channels = msi_channels, hsi_channels  # for fusion.tiling's tile size
        self.register_buffer("psf", torch.full((scale, scale), 1.0 / scale ** 2, dtype=torch.float64))
        self.register_buffer("weights", torch.zeros(msi_channels + 1, hsi_channels, dtype=torch.float64))
        self.register_buffer("floors", torch.zeros(hsi_channels, dtype=torch.float64))

    @torch.no_grad()
    def fit(self, pair, spa):
        """Take the PSF learned by ``spa`` (SpaDnet) and fit the band regression on ``pair``'s valid LR
        pixels (fusion.pair.Pair: Y against SpaDnet(Z)). Raises DataError when no LR pixel is valid."""
        self.psf.copy_(spa.kernel.flip(0, 1).double())  # SpaDnet's correlation kernel as a convolution kernel
        y, z_lr = hwc(pair.Y).astype(np.float64), hwc(by_lr_rows(spa, pair.Z, pair.scale)).astype(np.float64)
        if pair.lr_valid is not None:
            if not pair.lr_valid.any():
                raise DataError("the recommended mode has no valid LR-HSI pixel to fit its band regression on")
            y, z_lr = y[pair.lr_valid][None], z_lr[pair.lr_valid][None]
        weights = synthetic_pans(y, z_lr)
        self.weights.copy_(torch.from_numpy(weights))
        self.floors.copy_(torch.from_numpy(hpm_floors(z_lr, weights, HPM_FLOOR)))

    @torch.no_grad()
    def forward(self, z, y):
        """z: 1 x Cm x H x W (H = r h), y: 1 x C x h x w -> X_hat 1 x C x H x W float32, on z's device."""
        r, psf = self.scale, self.psf.cpu().numpy()
        z_hr, y_lr = hwc(z).astype(np.float64), hwc(y).astype(np.float64)
        z_lr = spatial_degrade(z_hr, psf, r)
        x0 = hpm_sharpen(y_lr, z_hr, z_lr, r, self.weights.cpu().numpy(), self.floors.cpu().numpy(),
                         nonnegative=True)
        x = lr_consistent(x0, y_lr, psf, r)
        return torch.from_numpy(x.transpose(2, 0, 1)[None].astype(np.float32)).to(z.device)
