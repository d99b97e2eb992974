"""SCFConv: UDS2C2's spatial, channel and filter attention dynamic convolution."""
import torch
from torch import nn
from torch.nn import functional as F


class SCFConv(nn.Module):
    """SCFConv (UDS2C2, in the spirit of omni-dimensional dynamic convolution):

        W_b = W * a_s(b)[k x k positions] * a_c(b)[input channels] * a_f(b)[output channels],
        y_b = W_b (*) x_b + bias,

    with the three attentions (sigmoids) computed from the global average of the input x_b through a
    shared hidden layer. Every sample gets its own kernel; a batch is one grouped convolution.
    ``use_attention = False`` forces the attentions to 1 (the static convolution).
    """

    def __init__(self, in_channels, out_channels, kernel_size=3, hidden=None):
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels))
        reference = nn.Conv2d(in_channels, out_channels, kernel_size)  # PyTorch's default initialisation
        with torch.no_grad():
            self.weight.copy_(reference.weight)
            self.bias.copy_(reference.bias)
        hidden = hidden or max(in_channels // 4, 16)
        self.squeeze = nn.Sequential(nn.Linear(in_channels, hidden), nn.ReLU())
        self.spatial = nn.Linear(hidden, kernel_size * kernel_size)
        self.channel = nn.Linear(hidden, in_channels)
        self.filter = nn.Linear(hidden, out_channels)
        self.use_attention = True

    def attentions(self, x):
        """Spatial (B x k x k), channel (B x Cin) and filter (B x Cout) factors, each in (0, 1)."""
        h = self.squeeze(x.mean(dim=(2, 3)))
        k = self.kernel_size
        return (torch.sigmoid(self.spatial(h)).view(-1, k, k), torch.sigmoid(self.channel(h)),
                torch.sigmoid(self.filter(h)))

    def kernels(self, x):
        """The per-sample kernels, B x Cout x Cin x k x k."""
        if not self.use_attention:
            return self.weight.unsqueeze(0).expand(x.shape[0], -1, -1, -1, -1)
        spatial, channel, filters = self.attentions(x)
        return (self.weight.unsqueeze(0) * filters[:, :, None, None, None]
                * channel[:, None, :, None, None] * spatial[:, None, None, :, :])

    def forward(self, x):
        b, c, h, w = x.shape
        kernels = self.kernels(x).reshape(b * self.out_channels, c, self.kernel_size, self.kernel_size)
        out = F.conv2d(x.reshape(1, b * c, h, w), kernels, self.bias.repeat(b),
                       padding=self.kernel_size // 2, groups=b)
        return out.view(b, self.out_channels, h, w)
