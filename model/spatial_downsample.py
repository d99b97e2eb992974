"""SpaDnet: the learned point spread function (PSF), Y = X P."""
import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from model.degradation import psf_padding

# A learned PSF larger than r (--psf_size) starts as the r x r box of the papers' start with this share of
# its mass spread evenly over the whole K x K support: the start is the K = r start up to 5 %, and under the
# normalised model every tap's softmax weight is positive, so the taps outside the block can grow.
WIDE_PSF_START_SPREAD = 0.05


def block_contract(blocks, kernel):
    """y[n, v] = sum_ij blocks[n, i, v, j] k[i, j]; ``blocks`` is an image viewed as (B*C*H/r, r, W/r, r).

    A stride-r r x r correlation on blocks that do not overlap; the loop runs over the r kernel rows only.
    """
    out = torch.matmul(blocks[:, 0], kernel[0])
    for i in range(1, kernel.shape[0]):
        out = out.add_(torch.matmul(blocks[:, i], kernel[i]))
    return out


def block_spread(values, kernel):
    """blocks[n, i, v, j] = y[n, v] k[i, j]: the adjoint of ``block_contract`` (a stride-r transposed convolution)."""
    n, v = values.shape
    r = kernel.shape[0]
    return values.view(n, 1, v, 1) * kernel.view(1, r, 1, r)


def block_kernel_grad(blocks, values):
    """sum_nv blocks[n, i, v, j] y[n, v]: the kernel gradient of both block operations."""
    n, r, v, _ = blocks.shape
    return torch.matmul(values.view(n, 1, 1, v), blocks).sum(0).view(r, r)


class BlockPSF(torch.autograd.Function):
    """``block_contract`` with its backward written out: the generic strided convolution (and einsum)
    backward is 2-3x slower for this case."""

    @staticmethod
    def forward(ctx, blocks, kernel):
        ctx.save_for_backward(blocks, kernel)
        return block_contract(blocks, kernel)

    @staticmethod
    def backward(ctx, grad):
        blocks, kernel = ctx.saved_tensors
        grad_blocks = block_spread(grad, kernel) if ctx.needs_input_grad[0] else None
        grad_kernel = block_kernel_grad(blocks, grad) if ctx.needs_input_grad[1] else None
        return grad_blocks, grad_kernel


def start_psf(size, r):
    """SpaDnet's initial PSF, size x size (correlation form, sums to 1): the papers' 'mean_space' start
    1/r^2 on the LR pixel's r x r block, and for size > r mixed with the uniform 1/size^2 by
    WIDE_PSF_START_SPREAD."""
    box = np.zeros((size, size))
    before = psf_padding(size, r)[0]
    box[before:before + r, before:before + r] = 1.0 / r ** 2
    if size == r:
        return box
    return (1 - WIDE_PSF_START_SPREAD) * box + WIDE_PSF_START_SPREAD / size ** 2


def logits_of(kernel):
    """Logits whose softmax is ``kernel`` (positive, summing to 1), the largest 0; zero taps get a logit
    far below the others (their weight underflows to 0 in float32)."""
    logits = torch.log(kernel.clamp_min(torch.finfo(kernel.dtype).tiny))
    return logits - logits.max()


class SpaDnet(nn.Module):
    """SpaDnet (paper eq. 4): every band is blurred by one shared K x K kernel with stride r, Y = X P.

    The kernel is a correlation kernel (``torch.nn.Conv2d`` convention). Its size K (``size``,
    --psf_size) is r by default, the papers' setting: each LR pixel is a weighted sum of its own r x r
    block. K > r lets the PSF reach ``model.degradation.psf_padding(K, r)`` HR pixels beyond the block (real
    optics blur wider than a pixel, and the two images may be off by a sub-pixel shift), the image's
    edges replicated at its borders.

    As published (``normalised`` False) the kernel is the free parameter ``psf.weight`` (1 x 1 x K x K),
    the original's name, so ``PSF.pth`` files load in both directions; learned (``trainable=True``) it
    starts at 1/r^2 on the block, the original's 'mean_space' initialisation (``start_psf``).
    ``normalised`` (--degradation normalised) learns ``psf_logits`` (K x K) instead and uses their
    softmax: positive and summing to 1, so the PSF moves energy between pixels but cannot scale the
    image (the sensors' gain is left to methods.common's MSI gain); the logits start at log(start_psf),
    all zero for K = r. Either way ``original_state_dict`` gives the kernel as ``psf.weight`` (PSF.pth),
    which a normalised SpaDnet also loads (as logits log(kernel)). With ``known_psf`` (a convolution
    kernel, see data_loader; its own size) and ``trainable=False`` it is the fixed known PSF of
    ``--isCal_PSF No``.
    """

    def __init__(self, scale, known_psf=None, trainable=True, normalised=False, size=None):
        super().__init__()
        self.scale = scale
        self.size = scale if size is None else size
        if known_psf is not None:
            self.size = np.asarray(known_psf).shape[0]
        self.padding = psf_padding(self.size, scale)
        self.normalised = normalised and trainable and known_psf is None
        start = torch.as_tensor(start_psf(self.size, scale), dtype=torch.float32)
        if self.normalised:
            self.psf_logits = nn.Parameter(logits_of(start))
            self._register_load_state_dict_pre_hook(self._from_kernel)
            return
        k = self.size
        self.psf = nn.Conv2d(1, 1, k, scale, 0, bias=False)
        with torch.no_grad():
            if known_psf is None:
                self.psf.weight.copy_(start.view(1, 1, k, k))
            else:
                kernel = torch.as_tensor(known_psf, dtype=torch.float32).flip(0, 1)
                self.psf.weight.copy_(kernel.view(1, 1, k, k))
        self.psf.weight.requires_grad_(trainable)

    def correlation_kernel(self):
        """The PSF in use, K x K (correlation convention), with its gradient."""
        k = self.size
        if self.normalised:
            return torch.softmax(self.psf_logits.reshape(-1), dim=0).view(k, k)
        return self.psf.weight.view(k, k)

    def original_state_dict(self):
        """The state as the original SpaDnet holds it, {'psf.weight': 1 x 1 x K x K correlation kernel}: what
        PSF.pth stores, for the original code, MATLAB users and ``load_state_dict`` of either model."""
        return {"psf.weight": self.kernel.view(1, 1, self.size, self.size).clone()}

    def _from_kernel(self, state_dict, prefix, *args):
        """A normalised SpaDnet loading a kernel (PSF.pth, ``original_state_dict``): logits log(kernel), so a
        kernel of the papers' model that does not sum to 1 is divided by its sum."""
        key = prefix + "psf.weight"
        if key in state_dict and prefix + "psf_logits" not in state_dict:
            state_dict[prefix + "psf_logits"] = logits_of(state_dict.pop(key).reshape(self.size, self.size))

    @property
    def kernel(self):
        """The current PSF as a K x K correlation kernel (detached)."""
        return self.correlation_kernel().detach()

    @property
    def context_rows(self):
        """LR rows above and below an LR row that its PSF windows read (0 for K = r): what
        fusion.patches.by_lr_rows adds around each band of rows."""
        return math.ceil(max(self.padding) / self.scale)

    def whole_blocks(self, x):
        """x (B x C x H x W) without the trailing rows and columns that fill no r x r block, as a stride-r
        convolution drops them, and the LR size (h, w)."""
        r = self.scale
        hl, wl = x.shape[2] // r, x.shape[3] // r
        return x[:, :, :hl * r, :wl * r], (hl, wl)

    def forward(self, x):
        b, c = x.shape[:2]
        r = self.scale
        x, (hl, wl) = self.whole_blocks(x)
        if self.size == r:
            blocks = x.reshape(b * c * hl, r, wl, r)
            return BlockPSF.apply(blocks, self.correlation_kernel()).view(b, c, hl, wl)
        before, after = self.padding
        padded = F.pad(x.reshape(b * c, 1, hl * r, wl * r), (before, after, before, after), mode="replicate")
        kernel = self.correlation_kernel().view(1, 1, self.size, self.size)
        return F.conv2d(padded, kernel, stride=r).view(b, c, hl, wl)
