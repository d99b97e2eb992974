"""SpaDnet: the learned point spread function (PSF), Y = X P."""
import torch
from torch import nn


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


class SpaDnet(nn.Module):
    """SpaDnet (paper eq. 4): every band is blurred by one shared r x r kernel with stride r.

    The kernel is a correlation kernel (``torch.nn.Conv2d`` convention). As published (``normalised``
    False) it is the free parameter ``psf.weight`` (1 x 1 x r x r), the original's name, so ``PSF.pth``
    files load in both directions; learned (``trainable=True``) it starts at 1/r^2, the original's
    'mean_space' initialisation. ``normalised`` (--degradation normalised) learns ``psf_logits`` (r x r)
    instead and uses their softmax: positive and summing to 1, so the PSF moves energy between pixels
    but cannot scale the image (the sensors' gain is left to methods.common's MSI gain); all-zero logits
    give the same 1/r^2 start. With ``known_psf`` (a convolution kernel, see data_loader) and
    ``trainable=False`` it is the fixed known PSF of ``--isCal_PSF No``.
    """

    def __init__(self, scale, known_psf=None, trainable=True, normalised=False):
        super().__init__()
        self.scale = scale
        self.normalised = normalised and trainable and known_psf is None
        if self.normalised:
            self.psf_logits = nn.Parameter(torch.zeros(scale, scale))
            return
        self.psf = nn.Conv2d(1, 1, scale, scale, 0, bias=False)
        with torch.no_grad():
            if known_psf is None:
                self.psf.weight.fill_(1.0 / scale ** 2)
            else:
                kernel = torch.as_tensor(known_psf, dtype=torch.float32).flip(0, 1)
                self.psf.weight.copy_(kernel.view(1, 1, scale, scale))
        self.psf.weight.requires_grad_(trainable)

    def correlation_kernel(self):
        """The PSF in use, r x r (correlation convention), with its gradient."""
        r = self.scale
        if self.normalised:
            return torch.softmax(self.psf_logits.reshape(-1), dim=0).view(r, r)
        return self.psf.weight.view(r, r)

    @property
    def kernel(self):
        """The current PSF as an r x r correlation kernel (detached)."""
        return self.correlation_kernel().detach()

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
        blocks = x.reshape(b * c * hl, r, wl, r)
        return BlockPSF.apply(blocks, self.correlation_kernel()).view(b, c, hl, wl)
