"""GCE: UDS2C2's group convolution enhancement (radiometric harmonisation between the two sensors)."""
import torch
from torch import nn


class GCE(nn.Module):
    """GCE (UDS2C2): per MSI band, u = g * a + b (grouped 1x1 convolution: gain and offset), then
    out = u + K (*) u (grouped 3x3 residual convolution).

    Applied to the HSI-derived LR-MSI (and to SpeDnet's output in Loss3) so that the two sensors'
    radiometry can differ without the learned PSF and SRF absorbing the mismatch. It starts as the
    identity (g = 1, b = 0, K = 0): on radiometrically consistent data it changes nothing at first.
    """

    def __init__(self, channels):
        super().__init__()
        self.gain = nn.Conv2d(channels, channels, 1, groups=channels)
        self.residual = nn.Conv2d(channels, channels, 3, padding=1, groups=channels, padding_mode="replicate")
        with torch.no_grad():
            self.gain.weight.fill_(1.0)
            self.gain.bias.zero_()
            self.residual.weight.zero_()
            self.residual.bias.zero_()

    def forward(self, x):
        u = self.gain(x)
        return u + self.residual(u)
