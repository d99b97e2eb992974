"""The image pair being fused, as the training sees it: ``Pair`` (the LR-HSI and HR-MSI tensors on the
training device, their valid-pixel masks and, for a simulated pair, the truth), the masked mean-L1
losses every method uses, and the reduced-resolution protocol's pair.

Numpy cubes are H x W x C; tensors are 1 x C x H x W.
"""
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from config import FWHM_TO_SIGMA
from data_loader import DataError, gaussian_psf, spatial_degrade, support_range, to_tensor
from imagery.radiometry import block_all

l1 = nn.L1Loss(reduction="mean")


def hwc(tensor):
    """1 x C x H x W tensor -> H x W x C numpy array."""
    return tensor.detach()[0].permute(1, 2, 0).cpu().numpy()


def masked_l1(a, b, mask):
    """Mean absolute difference over the valid pixels; ``mask`` is 1 x 1 x H x W (1 = valid) or None (all)."""
    if mask is None:
        return l1(a, b)
    return ((a - b).abs() * mask).sum() / (mask.sum() * a.shape[1])


@dataclass
class Pair:
    """The image pair on the training device (scaled by the rule of imagery.radiometry, no-data filled
    with 0), the valid-pixel masks, and, for a simulated pair, the truth that Wald's protocol gives."""
    Y: torch.Tensor                     # LR-HSI, 1 x C x h x w
    Z: torch.Tensor                     # HR-MSI, 1 x Cm x H x W
    X: np.ndarray                       # reference HR-HSI, H x W x C (None for a real pair)
    lrmsi_frommsi: np.ndarray           # true Z P (None for a real pair)
    lrmsi_fromlrhsi: np.ndarray         # true Y S (None for a real pair)
    psf: np.ndarray                     # true PSF (r x r); for a real pair the nominal Gaussian (FWHM r)
    srf: np.ndarray                     # SRF (C x Cm, columns sum to 1): true, or the sensor's nominal one
    sp_range: np.ndarray                # support of each MSI band (Cm x 2)
    scale: int
    lr_valid: np.ndarray = None         # h x w bool, pixels trusted in LR terms (None: all)
    hr_valid: np.ndarray = None         # H x W bool, pixels trusted in HR loss terms (None: all)
    out_valid: np.ndarray = None        # H x W bool, pixels where X_hat is defined and scored (None: all)
    hsi_factor: float = 1.0             # the LR-HSI (or reference) was divided by this; X_hat is multiplied back
    info: dict = field(default_factory=dict)  # loading facts for metrics.json (masks, crop, factors, bands)
    source: object = None               # data_loader.RealPair for a real pair (metadata for the outputs)
    known_degradations: bool = True     # the true PSF and SRF are known (Wald's protocol)

    @classmethod
    def from_dataset(cls, dataset, index, device):
        if not 0 <= index < len(dataset):
            raise DataError(f"--image_index {index}: the data folder has {len(dataset)} cube(s) "
                            f"({', '.join(dataset.imgpath_list)})")
        return cls.from_item(dataset[index], dataset.PSF, dataset.sp_matrix, dataset.sp_range, device)

    @classmethod
    def from_item(cls, item, psf, srf, sp_range, device):
        """From a simulated pair: a dict of C x H x W tensors with the data_loader.Dataset keys."""
        return cls(Y=item["lhsi"].unsqueeze(0).to(device), Z=item["hmsi"].unsqueeze(0).to(device),
                   X=hwc(item["hhsi"].unsqueeze(0)), lrmsi_frommsi=hwc(item["lrmsi_frommsi"].unsqueeze(0)),
                   lrmsi_fromlrhsi=hwc(item["lrmsi_fromlrhsi"].unsqueeze(0)), psf=psf, srf=srf,
                   sp_range=sp_range, scale=int(psf.shape[0]), lr_valid=item.get("lr_valid"),
                   hr_valid=item.get("hr_valid"), out_valid=item.get("out_valid"), hsi_factor=item.get("factor", 1.0),
                   info=item.get("info", {}))

    @classmethod
    def from_real(cls, real, device):
        """From a real pair (data_loader.RealPair): no true degradations; a reference only with --reference."""
        return cls(Y=to_tensor(real.lhsi)[None].to(device), Z=to_tensor(real.hmsi)[None].to(device), X=real.reference,
                   lrmsi_frommsi=None, lrmsi_fromlrhsi=None, psf=gaussian_psf(real.scale, real.scale / FWHM_TO_SIGMA),
                   srf=real.srf, sp_range=support_range(real.srf), scale=real.scale, lr_valid=real.lr_valid,
                   hr_valid=real.hr_valid, out_valid=real.out_valid, hsi_factor=real.hsi_factor, info=real.info,
                   source=real,
                   known_degradations=False)

    def __post_init__(self):
        def as_mask(valid, shape):
            if valid is None or bool(np.all(valid)):
                return None
            return torch.from_numpy(np.asarray(valid, dtype=np.float32)).view(1, 1, *shape).to(self.Y.device)
        self.lr_mask = as_mask(self.lr_valid, self.Y.shape[2:])
        self.hr_mask = as_mask(self.hr_valid, self.Z.shape[2:])

    @property
    def has_reference(self):
        """True when the HR-HSI reference is known (Wald's protocol, or --reference)."""
        return self.X is not None

    @property
    def hsi_channels(self):
        return self.Y.shape[1]

    @property
    def msi_channels(self):
        return self.Z.shape[1]

    def lr_l1(self, a, b):
        """Mean L1 of an LR-grid term (h x w) over the valid LR pixels."""
        return masked_l1(a, b, self.lr_mask)

    def hr_l1(self, a, b):
        """Mean L1 of an HR-grid term (H x W) over the valid HR pixels."""
        return masked_l1(a, b, self.hr_mask)


def reduced_resolution_pair(pair):
    """The reduced-resolution protocol's pair (Wald et al. 1997): the LR-HSI and the HR-MSI each degraded
    by r with the simulation's Gaussian PSF (size r, FWHM r), cropped at the bottom/right to a multiple
    of r; the LR-HSI becomes the reference. Masks follow: a reduced pixel is valid when its whole block is."""
    r = pair.scale
    y, z = hwc(pair.Y), hwc(pair.Z)
    h, w = (y.shape[0] // r) * r, (y.shape[1] // r) * r
    if h < r or w < r:
        raise DataError(f"--reduced_resolution: the LR-HSI is {y.shape[0]} x {y.shape[1]} pixels, too small to "
                        f"degrade by r = {r} once more; drop --reduced_resolution")
    y, z = y[:h, :w], z[:h * r, :w * r]
    psf = gaussian_psf(r, r / FWHM_TO_SIGMA)
    hr_valid = None if pair.lr_valid is None else pair.lr_valid[:h, :w]
    lr_valid = None if hr_valid is None else block_all(hr_valid, r)  # also covers the HR-MSI's blocks
    device = pair.Y.device
    return Pair(Y=to_tensor(spatial_degrade(y, psf, r))[None].to(device),
                Z=to_tensor(spatial_degrade(z, psf, r))[None].to(device), X=y.astype(np.float64),
                lrmsi_frommsi=None, lrmsi_fromlrhsi=None, psf=psf, srf=pair.srf, sp_range=pair.sp_range, scale=r,
                lr_valid=lr_valid, hr_valid=hr_valid, out_valid=hr_valid, known_degradations=False)
