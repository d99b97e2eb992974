"""The original UDALN code's structure, for the 'before' figure of the speed benchmark.

One single-channel strided convolution per HSI band for the PSF, one 1x1 convolution per MSI band
(over its support, divided by the weight sum) for the SRF, and SpeUnet as an nn.Sequential of
Conv2d layers. Same parameters and results as model/, within float rounding (tests/model/test_model.py
checks the vectorised modules against per-band computations).
"""
import torch
from torch import nn
from torch.nn import functional as F

from model import SpeUnet


class PerBandSpaDnet(nn.Module):
    def __init__(self, scale):
        super().__init__()
        self.psf = nn.Conv2d(1, 1, scale, scale, 0, bias=False)
        nn.init.constant_(self.psf.weight, 1.0 / scale ** 2)

    @property
    def kernel(self):
        return self.psf.weight.detach()[0, 0]

    def forward(self, x):
        return torch.cat([self.psf(x[:, i:i + 1]) for i in range(x.shape[1])], 1)


class PerBandSpeDnet(nn.Module):
    def __init__(self, spectral_downsampler):
        super().__init__()
        self.sp_range = spectral_downsampler.sp_range
        self.layers = nn.ModuleList()
        for j, (first, last) in enumerate(self.sp_range):
            conv = nn.Conv2d(last - first + 1, 1, 1, bias=False)
            with torch.no_grad():
                conv.weight.view(-1).copy_(spectral_downsampler.weight[first:last + 1, j])
            self.layers.append(conv)
        self.register_buffer("mask", spectral_downsampler.mask.clone())

    def srf(self):
        weight = torch.zeros_like(self.mask)
        for j, ((first, last), conv) in enumerate(zip(self.sp_range, self.layers)):
            weight[first:last + 1, j] = conv.weight.detach().view(-1)
        return weight / weight.sum(0, keepdim=True)

    def forward(self, x):
        return torch.cat([conv(x[:, first:last + 1]) / conv.weight.detach().sum()
                          for (first, last), conv in zip(self.sp_range, self.layers)], 1)


class SequentialSpeUnet(SpeUnet):
    def forward(self, x):
        return F.leaky_relu(self.sequential(x), 0.2)


def per_band_nets(nets):
    """Replace UDALN's networks by their per-band equivalents (same initial parameters)."""
    up = SequentialSpeUnet(nets.up.sequential[0].in_channels, nets.up.sequential[-1].out_channels)
    up.load_state_dict(nets.up.state_dict())
    nets.spa = PerBandSpaDnet(nets.spa.scale)
    nets.spe = PerBandSpeDnet(nets.spe)
    nets.up = up
    return nets
