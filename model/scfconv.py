"""SCFConv: UDS2C2's spatial, channel and filter attention dynamic convolution, in the spectral inverse
mapping (SCFConv) or in the spatial degradation (SCFSpaDnet), --scf_place."""
import torch
from torch import nn
from torch.nn import functional as F

from config import ATTENTION_STARTS
from model.spatial_downsample import SpaDnet


def start_attentions(heads, attention_start):
    """Initialise the attention ``heads`` (nn.Linear) for --scf_attention and return the factor a
    sigmoid is multiplied by: 'identity' zeroes the heads and returns 2 (every attention 2 sigmoid(0) = 1
    exactly), 'sigmoid' keeps PyTorch's initialisation and returns 1. Raises ValueError otherwise."""
    if attention_start not in ATTENTION_STARTS:
        raise ValueError(f"attention_start must be one of {ATTENTION_STARTS}; got {attention_start!r}")
    if attention_start == "sigmoid":
        return 1.0
    with torch.no_grad():
        for head in heads:
            head.weight.zero_()
            head.bias.zero_()
    return 2.0


class SCFConv(nn.Module):
    """SCFConv (UDS2C2, in the spirit of omni-dimensional dynamic convolution):

        W_b = W * a_s(b)[k x k positions] * a_c(b)[input channels] * a_f(b)[output channels],
        y_b = W_b (*) x_b + bias,

    with the three attentions computed from the global average of the input x_b through a shared hidden
    layer. Every sample gets its own kernel; a batch is one grouped convolution.
    ``use_attention = False`` forces the attentions to 1 (the static convolution).

    ``attention_start`` (--scf_attention): 'identity' (ours) makes each attention 2 sigmoid(.) with its
    head's weights and bias at zero, so every factor is exactly 1 at the start (the layer starts as the
    static convolution and its kernel learns at the static layer's pace); 'sigmoid' is sigmoid(.) with
    PyTorch's default initialisation, as first built here: each factor starts near 1/2, the product of
    three near 1/8, which scales the kernel's output and its gradient down by about that much.
    """

    def __init__(self, in_channels, out_channels, kernel_size=3, hidden=None, attention_start="identity"):
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
        self.attention_scale = start_attentions((self.spatial, self.channel, self.filter), attention_start)
        self.use_attention = True

    def attentions(self, x):
        """Spatial (B x k x k), channel (B x Cin) and filter (B x Cout) factors, each in (0, 2) (identity
        start) or (0, 1) (sigmoid start)."""
        h = self.squeeze(x.mean(dim=(2, 3)))
        k, scale = self.kernel_size, self.attention_scale
        return (scale * torch.sigmoid(self.spatial(h)).view(-1, k, k), scale * torch.sigmoid(self.channel(h)),
                scale * torch.sigmoid(self.filter(h)))

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


class SCFSpaDnet(SpaDnet):
    """SpaDnet with SCFConv's attentions (UDS2C2 with --scf_place spatial): the dynamic convolution moved
    from the inverse mapping to the spatial degradation, as one public unofficial re-implementation of
    UDS2C2 places it. Band b of the input is degraded by its own r x r stride-r kernel

        P_b = P * a_s(m_b)            normalised to sum 1 under the normalised degradation model,
        P_b = P * a_s(m_b) * a_g(m_b) under the papers' (free) model,

    where P is SpaDnet's static PSF, m_b the band's mean over the image, a_s an r x r spatial attention
    and a_g a gain (SCFConv's channel and filter attentions, which for a single-channel kernel are one
    factor), both from one hidden layer. A kernel per band lets the PSF follow the band (optics blur
    longer wavelengths more); the attentions start at exactly 1 ('identity') or near 1/2 ('sigmoid'),
    as SCFConv's. The attention needs the whole band: ``whole_image`` tells fusion.patches.by_lr_rows
    not to split it, and methods.uds2c2 refuses patch mode and streamed output with it.
    """
    whole_image = True

    def __init__(self, scale, normalised=False, hidden=16, attention_start="identity"):
        super().__init__(scale, normalised=normalised)
        self.squeeze = nn.Sequential(nn.Linear(1, hidden), nn.ReLU())
        self.spatial = nn.Linear(hidden, scale * scale)
        self.gain = nn.Linear(hidden, 1)
        self.attention_scale = start_attentions((self.spatial, self.gain), attention_start)

    def original_state_dict(self):
        """Its whole state (PSF.pth): the original SpaDnet has no per-band PSF to hold it."""
        return self.state_dict()

    def band_kernels(self, band_means):
        """The per-band kernels P_b, N x r x r, for ``band_means`` (N values, one per band and sample)."""
        r = self.scale
        h = self.squeeze(band_means.reshape(-1, 1))
        kernels = self.correlation_kernel() * (self.attention_scale * torch.sigmoid(self.spatial(h))).view(-1, r, r)
        if self.normalised:
            return kernels / kernels.sum(dim=(1, 2), keepdim=True)
        return kernels * (self.attention_scale * torch.sigmoid(self.gain(h))).view(-1, 1, 1)

    def forward(self, x):
        b, c = x.shape[:2]
        r = self.scale
        x, (hl, wl) = self.whole_blocks(x)
        kernels = self.band_kernels(x.mean(dim=(2, 3)))
        blocks = x.reshape(b * c, hl, r, wl, r)
        return torch.einsum("nhiwj,nij->nhw", blocks, kernels).view(b, c, hl, wl)
