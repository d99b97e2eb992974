"""The radiometric link between the two sensors: UDS2C2's group convolution enhancement (GCE) and the MSI
gain of the normalised degradation model (MSIGain)."""
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

    def start_gain(self, gain):
        """Set the per-band gain g (a tensor of Cm values), offset 0."""
        with torch.no_grad():
            self.gain.weight.copy_(gain.view(-1, 1, 1, 1))
            self.gain.bias.zero_()

    def forward(self, x):
        u = self.gain(x)
        return u + self.residual(u)


class MSIGain(nn.Module):
    """The normalised degradation model's link between the two sensors (--degradation normalised): per MSI
    band, Z = g (X S + c), with gain g = exp(log_gain) > 0 and offset c in the HSI's units.

    The forward maps an MSI into the HSI's radiometry, z / g - c; the methods train and fuse
    on the calibrated MSI, so a gain between the sensors changes nothing after it: with the gain learned as
    its logarithm and the offset in HSI units, Adam's steps are the same whatever the MSI's scale.
    ``to_sensor`` is the inverse, X S -> Z. It starts as the identity (g = 1, c = 0)."""

    def __init__(self, channels):
        super().__init__()
        self.log_gain = nn.Parameter(torch.zeros(channels))
        self.offset = nn.Parameter(torch.zeros(channels))

    def start_gain(self, gain):
        """Set the per-band gain g (a tensor of Cm positive values), offset 0."""
        with torch.no_grad():
            self.log_gain.copy_(gain.log())
            self.offset.zero_()

    def forward(self, z):
        """z / g - c: an MSI (B x Cm x H x W, the MSI sensor's units) in the HSI's radiometry."""
        shape = (1, -1, 1, 1)
        return torch.addcmul(-self.offset.view(shape), z, torch.exp(-self.log_gain).view(shape))

    def to_sensor(self, x):
        """g (x + c): an HSI-derived MSI (B x Cm x H x W) in the MSI sensor's units."""
        shape = (1, -1, 1, 1)
        return (x + self.offset.view(shape)) * torch.exp(self.log_gain).view(shape)
