"""SpeDnet: the learned spectral response function (SRF), Z = X S."""
import numpy as np
import torch
from torch import nn

SRF_INIT_SIGMA = 3.5  # bands; the original's 'Gaussian' initialisation of each support


def gaussian_support_weights(length, sigma=SRF_INIT_SIGMA):
    """The original initial weights over a support of ``length`` bands: a centred Gaussian,
    values below eps * max zeroed, normalised to sum to 1."""
    half = (length - 1) / 2.0
    y = np.arange(length) - half
    h = np.exp(-(y * y) / (2.0 * sigma * sigma))
    h[h < np.finfo(h.dtype).eps * h.max()] = 0
    return h / h.sum()


class SpeDnet(nn.Module):
    """SpeDnet (paper eq. 6): MSI band j = sum_k w_kj x_k / sum_k w_kj over the contiguous SRF support of band j.

    All MSI bands are one masked matrix product: ``weight`` is C x Cm and is zero outside each band's
    support (``mask``). As in the original, the normalising sum is taken without gradient, so no
    gradient flows through the denominator. ``known_srf`` with ``trainable=False`` gives the fixed
    known SRF of ``--isCal_SRF No``.
    """

    def __init__(self, sp_range, hsi_channels, known_srf=None, trainable=True):
        super().__init__()
        sp_range = np.asarray(sp_range, dtype=int)
        msi_channels = sp_range.shape[0]
        mask = np.zeros((hsi_channels, msi_channels), dtype=np.float32)
        weight = np.zeros((hsi_channels, msi_channels), dtype=np.float64)
        for j, (first, last) in enumerate(sp_range):  # once, at construction
            mask[first:last + 1, j] = 1
            weight[first:last + 1, j] = gaussian_support_weights(last - first + 1)
        if known_srf is not None:
            weight = np.asarray(known_srf, dtype=np.float64) * mask
        self.sp_range = sp_range
        self.register_buffer("mask", torch.from_numpy(mask))
        self.weight = nn.Parameter(torch.from_numpy(weight.astype(np.float32)), requires_grad=trainable)
        self._register_load_state_dict_pre_hook(self._from_original_layout)

    def srf(self, detach_norm=True):
        """The SRF in use, C x Cm, each column summing to 1."""
        w = self.weight * self.mask
        norm = w.sum(dim=0, keepdim=True)
        return w / (norm.detach() if detach_norm else norm)

    def forward(self, x):
        b, c, h, w = x.shape
        srf_t = self.srf().t()
        if b == 1:  # a plain GEMM: the broadcast batched matmul's backward is 2-3x slower
            return torch.mm(srf_t, x.reshape(c, h * w)).view(1, -1, h, w)
        return torch.matmul(srf_t, x.reshape(b, c, h * w)).view(b, -1, h, w)

    def _from_original_layout(self, state_dict, prefix, *args):
        """Accept the original's ``convolution_hr2msi.pth`` (one 1 x len x 1 x 1 conv per MSI band)."""
        keys = [f"{prefix}conv2d_list.{j}.weight" for j in range(len(self.sp_range))]
        if all(k in state_dict for k in keys):
            weight = torch.zeros_like(self.weight)
            for j, (key, (first, last)) in enumerate(zip(keys, self.sp_range)):
                weight[first:last + 1, j] = state_dict.pop(key).reshape(-1)
            state_dict[prefix + "weight"] = weight
            state_dict.setdefault(prefix + "mask", self.mask)
