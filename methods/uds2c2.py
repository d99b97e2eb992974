"""UDS2C2: Yu et al., "Unsupervised Hyperspectral and Multispectral Image Fusion With Deep
Spectral-Spatial Collaborative Constraint", IEEE TGRS 62, 2024, doi 10.1109/TGRS.2024.3472226.
UDALN's networks and stages with group convolution enhancement (GCE, radiometric harmonisation of the
HSI-derived MSI) and SCFConv (attention dynamic convolution), in the spectral upsampler or in the spatial
degradation (--scf_place). No official code is public: the architecture is reconstructed from the paper's
abstract (docs/methods.md: "Faithfulness notes", and the ablation under "UDS2C2").
"""
from torch import nn

from imagery.errors import DataError
from methods.common import Nets, degradation_nets, msi_gain, normalised, piecewise_run
from methods.udaln import udaln_stages
from model import GCE, SCFConv, SCFSpaDnet, SpeUnet


def uds2c2(args, pair):
    """UDS2C2 (Yu et al., TGRS 2024), reconstructed: UDALN's stages with GCE harmonising the HSI-derived
    MSI (--gce) and SCFConv (--scfconv) as the spectral upsampler's hidden layers (--scf_place inverse,
    kernel --scf_kernel) or as a per-band dynamic PSF (--scf_place spatial, model.SCFSpaDnet), its
    attentions started by --scf_attention."""
    device = pair.Y.device
    up = SpeUnet(pair.msi_channels, pair.hsi_channels, hidden=upsampler_layers(args)).to(device)  # first, as UDALN
    dynamic_psf = None
    if scfconv_place(args) == "spatial":
        dynamic_psf = SCFSpaDnet(pair.scale, normalised=normalised(args), attention_start=args.scf_attention)
    spa, spe = degradation_nets(args, pair, dynamic_psf)
    gce = GCE(pair.msi_channels).to(device) if args.gce == "Yes" else None
    nets = Nets(spa=spa, spe=spe, up=up, gce=gce, msi_gain=msi_gain(args, pair, spa, spe, gce))
    return nets, udaln_stages(args, pair, nets)


def scfconv_place(args):
    """Where the run puts SCFConv: 'inverse', 'spatial' (--scf_place), or None without it (--scfconv No)."""
    return args.scf_place if args.scfconv == "Yes" else None


def upsampler_layers(args):
    """The builder of SpeUnet's hidden layers: SCFConv of size --scf_kernel with SCFConv in the inverse
    mapping, else static convolutions of that size."""
    k = args.scf_kernel
    if scfconv_place(args) == "inverse":
        return lambda cin, cout: SCFConv(cin, cout, k, attention_start=args.scf_attention)
    return lambda cin, cout: nn.Conv2d(cin, cout, k, padding=k // 2)


def check_scf_place(args, pair, streamed):
    """Refuse what --scf_place spatial cannot do exactly: its per-band PSF needs each band's mean over the
    whole image, which patch training (one patch at a time) and streamed output (tile by tile) do not see.
    Raises DataError."""
    why = piecewise_run(args, streamed)
    if args.method == "uds2c2" and scfconv_place(args) == "spatial" and why:
        raise DataError(f"--scf_place spatial computes each band's PSF from the band's mean over the whole "
                        f"image, which {why} does not see; use --scf_place inverse, or a smaller scene "
                        "(--training_mode whole)")
