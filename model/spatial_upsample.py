"""SpaUp: PFS2C2's spatial inverse module, from LR-HSI to HR size."""
import torch
from torch import nn

from model.degradation import gaussian_psf
from model.spatial_downsample import block_contract, block_kernel_grad, block_spread


class BlockSpread(torch.autograd.Function):
    """``block_spread`` with its backward written out (the adjoint pair of BlockPSF)."""

    @staticmethod
    def forward(ctx, values, kernel):
        ctx.save_for_backward(values, kernel)
        return block_spread(values, kernel)

    @staticmethod
    def backward(ctx, grad):
        values, kernel = ctx.saved_tensors
        grad_values = block_contract(grad, kernel) if ctx.needs_input_grad[0] else None
        grad_kernel = block_kernel_grad(grad, values) if ctx.needs_input_grad[1] else None
        return grad_values, grad_kernel


class SpaUp(nn.Module):
    """SpaUp (PFS2C2): X_spa = Y ^T K, a transposed convolution with one r x r kernel and stride r
    shared by all bands, initialised with the Gaussian PSF (size r, FWHM r) and trainable.

    ``inv_conv.weight`` (1 x 1 x r x r) and the buffer ``inv_PSF`` (r x r, the initial kernel, which the
    authors' module keeps) have the authors' names, so ``SpaUp.pth`` files load in both directions.
    """

    def __init__(self, scale, sigma):
        super().__init__()
        self.scale = scale
        initial = torch.as_tensor(gaussian_psf(scale, sigma), dtype=torch.float32)
        self.register_buffer("inv_PSF", initial.clone())
        self.inv_conv = nn.ConvTranspose2d(1, 1, scale, scale, 0, bias=False)
        with torch.no_grad():
            self.inv_conv.weight.copy_(initial.view(1, 1, scale, scale))
        self._register_load_state_dict_pre_hook(self._without_initial_kernel)

    def _without_initial_kernel(self, state_dict, prefix, *args):
        """Files written before ``inv_PSF`` was kept hold only ``inv_conv.weight``: they load as they are."""
        if prefix + "inv_conv.weight" in state_dict:
            state_dict.setdefault(prefix + "inv_PSF", self.inv_PSF)

    def forward(self, y):
        b, c, h, w = y.shape
        r = self.scale
        blocks = BlockSpread.apply(y.reshape(b * c * h, w), self.inv_conv.weight.view(r, r))
        return blocks.view(b, c, h * r, w * r)
