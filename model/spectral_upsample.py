"""SpeUnet: the spectral inverse mapping from MSI to HSI bands."""
import math

from torch import nn
from torch.nn import functional as F

LEAKY_SLOPE = 0.2


def pointwise(conv, x):
    """A 1x1 convolution as one matrix product over the pixels (B x Cin x HW), channels-first."""
    b, c, h, w = x.shape
    weight = conv.weight.view(conv.out_channels, c)
    x = x.reshape(b, c, h * w)
    if b == 1:  # one fused GEMM + bias
        out = conv.bias.unsqueeze(1).addmm(weight, x[0]).unsqueeze(0)
    else:
        out = weight.matmul(x) + conv.bias.view(1, -1, 1)
    return out.view(b, conv.out_channels, h, w)


def widths(msi_channels, hsi_channels):
    """Layer widths Cm, 2Cm, ..., 2^n Cm with n = floor(log2(C / Cm)), then C."""
    n = int(math.floor(math.log2(hsi_channels / msi_channels)))
    return [msi_channels * 2 ** i for i in range(n + 1)] + [hsi_channels]


class SpeUnet(nn.Module):
    """SpeUnet (paper Fig. 1): X = f(Z), pixel-wise 1x1 convolutions Cm -> 2Cm -> ... -> 2^n Cm -> C,
    each followed by LeakyReLU(0.2), the last one too.

    ``sequential`` holds the layers with the original's names, so ``spectral_upsample.pth`` files
    load in both directions; PyTorch's default initialisation, as in the original.

    ``hidden(cin, cout)`` builds the hidden layers (default: the 1x1 convolutions; UDS2C2 passes SCFConv);
    ``before_last(width)``, when given, a layer inserted before the last convolution (PFS2C2's attention).
    The layers are built in order, so a seed gives the original's initial weights.
    """

    def __init__(self, msi_channels, hsi_channels, hidden=None, before_last=None):
        super().__init__()
        hidden = hidden or (lambda cin, cout: nn.Conv2d(cin, cout, kernel_size=1))
        sizes = widths(msi_channels, hsi_channels)
        layers = []
        for cin, cout in zip(sizes[:-2], sizes[1:-1]):
            layers += [hidden(cin, cout), nn.LeakyReLU(LEAKY_SLOPE)]
        if before_last is not None:
            layers.append(before_last(sizes[-2]))
        layers.append(nn.Conv2d(sizes[-2], sizes[-1], kernel_size=1))
        self.sequential = nn.Sequential(*layers)

    def forward(self, x):
        for layer in self.sequential:
            is_pointwise = isinstance(layer, nn.Conv2d) and layer.kernel_size == (1, 1)
            x = pointwise(layer, x) if is_pointwise else layer(x)
        return F.leaky_relu(x, LEAKY_SLOPE)


class SpectralAttention(nn.Module):
    """Squeeze-and-excitation over bands: x * sigmoid(W2 relu(W1 mean_hw(x))), W1 halving the width."""

    def __init__(self, channels, reduction=2):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(channels, channels // reduction), nn.ReLU(),
                                nn.Linear(channels // reduction, channels), nn.Sigmoid())

    def forward(self, x):
        weights = self.fc(x.mean(dim=(2, 3)))
        return x * weights[:, :, None, None]


class SpeUp(SpeUnet):
    """SpeUp (PFS2C2): SpeUnet with a spectral attention inserted before its last 1x1 convolution,
    at the position the authors' code gives it (so their parameter names load), built before that
    convolution as theirs is (so a seed gives their initial weights)."""

    def __init__(self, msi_channels, hsi_channels):
        super().__init__(msi_channels, hsi_channels, before_last=SpectralAttention)
