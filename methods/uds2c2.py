"""UDS2C2: Yu et al., "Unsupervised Hyperspectral and Multispectral Image Fusion With Deep
Spectral-Spatial Collaborative Constraint", IEEE TGRS 62, 2024, doi 10.1109/TGRS.2024.3472226.
UDALN's networks and stages with group convolution enhancement (GCE, radiometric harmonisation of the
HSI-derived MSI) and SCFConv (attention dynamic convolution) in the spectral upsampler. No official code
is public: the architecture is reconstructed from the paper's description (README "Faithfulness notes").
"""
from torch import nn

from methods.common import Nets, degradation_nets, msi_gain
from methods.udaln import udaln_stages
from model import GCE, SCFConv, SpeUnet


def uds2c2(args, pair):
    """UDS2C2 (Yu et al., TGRS 2024), reconstructed from the paper: UDALN's stages with GCE harmonising
    the HSI-derived MSI (--gce) and SCFConv hidden layers in the spectral upsampler (--scfconv, --scf_kernel)."""
    device = pair.Y.device
    k = args.scf_kernel
    hidden = (lambda cin, cout: SCFConv(cin, cout, k)) if args.scfconv == "Yes" else \
        (lambda cin, cout: nn.Conv2d(cin, cout, k, padding=k // 2))
    up = SpeUnet(pair.msi_channels, pair.hsi_channels, hidden=hidden).to(device)  # first, in UDALN's order
    spa, spe = degradation_nets(args, pair)
    gce = GCE(pair.msi_channels).to(device) if args.gce == "Yes" else None
    nets = Nets(spa=spa, spe=spe, up=up, gce=gce, msi_gain=msi_gain(args, pair, spa, spe, gce))
    return nets, udaln_stages(args, pair, nets)
