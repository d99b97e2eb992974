"""The image pair being fused, as the training sees it: ``Pair`` (the LR-HSI and HR-MSI tensors on the
training device, their valid-pixel masks and, for a simulated pair, the truth), a batch of its aligned
patches (``PairView``, for patch training: fusion.patches), the masked mean-L1 losses every method uses,
and the reduced-resolution protocol's pair.

Numpy cubes are H x W x C; tensors are 1 x C x H x W (a batch of B patches: B x C x P x P).
"""
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from config import FWHM_TO_SIGMA
from data_loader import DataError, support_range, to_tensor
from imagery.radiometry import block_all
from model.degradation import gaussian_psf, spatial_degrade

l1 = nn.L1Loss(reduction="mean")


def hwc(tensor):
    """1 x C x H x W tensor -> H x W x C numpy array."""
    return tensor.detach()[0].permute(1, 2, 0).cpu().numpy()


def mosaic(tensor):
    """B x C x h x w tensor -> (B h) x w x C numpy array: a batch of patches stacked along the rows, so
    that the metrics of evaluation.py (H x W x C) apply to it; one image (B = 1) is ``hwc``."""
    if tensor.shape[0] == 1:
        return hwc(tensor)
    b, c, h, w = tensor.shape
    return tensor.detach().permute(0, 2, 3, 1).reshape(b * h, w, c).cpu().numpy()


def gather_patches(image, rows, cols, height, width, factor=1):
    """Patches of one image, all at once (advanced indexing): patch b covers rows f rows[b] ..
    f (rows[b] + height) - 1 and columns f cols[b] .. f (cols[b] + width) - 1 of ``image``, f = ``factor``
    (1 on the LR grid, r for the HR footprint of an LR patch). No padding: every patch must lie inside.

    ``image``: a 1 x C x H x W tensor -> B x C x (f height) x (f width) on its device; or a numpy array
    H x W x C -> B x (f height) x (f width) x C (H x W -> B x f height x f width). ``rows``, ``cols``:
    the B origins in LR pixels, int64 CPU tensors. Raises IndexError for a patch reaching outside.
    """
    if isinstance(image, torch.Tensor):
        # One slice per patch (B of them, not a loop over pixels): each copies whole rows of every band,
        # where an element-wise gather would jump between bands a whole image apart (cache misses that
        # made steps on a 960 x 960 scene slower than on a 240 x 240 one).
        h, w = height * factor, width * factor
        if bool((rows * factor + h > image.shape[2]).any() or (cols * factor + w > image.shape[3]).any()
                or (rows < 0).any() or (cols < 0).any()):
            raise IndexError(f"a {h} x {w} patch reaches outside the {image.shape[2]} x {image.shape[3]} image")
        return torch.stack([image[0, :, f:f + h, g:g + w]
                            for f, g in zip((rows * factor).tolist(), (cols * factor).tolist())])
    r = rows.numpy()[:, None] * factor + np.arange(height * factor)
    c = cols.numpy()[:, None] * factor + np.arange(width * factor)
    return image[r[:, :, None], c[:, None, :]]


def masked_l1(a, b, mask):
    """Mean absolute difference over the valid pixels; ``mask`` is 1 x 1 x H x W (B x 1 x H x W for a batch
    of patches; 1 = valid) or None (all)."""
    if mask is None:
        return l1(a, b)
    return ((a - b).abs() * mask).sum() / (mask.sum() * a.shape[1])


@dataclass
class Pair:
    """The image pair on the training device (scaled by the rule of imagery.radiometry, no-data filled
    with 0), the valid-pixel masks, the band centres and MSI band names when known (for the figures and
    metrics.json), and, for a simulated pair, the truth that Wald's protocol gives."""
    Y: torch.Tensor                     # LR-HSI, 1 x C x h x w
    Z: torch.Tensor                     # HR-MSI, 1 x Cm x H x W
    X: np.ndarray                       # reference HR-HSI, H x W x C (None for a real pair)
    lrmsi_frommsi: np.ndarray           # true Z P (None for a real pair)
    lrmsi_fromlrhsi: np.ndarray         # true Y S (None for a real pair)
    psf: np.ndarray                     # true PSF, K x K convolution kernel; a real pair's: nominal (r x r, FWHM r)
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
    wavelengths: np.ndarray = None      # the C HSI band centres, nm, float64 (None: unknown)
    msi_band_names: list = None         # the Cm MSI band names (None: unknown)

    @classmethod
    def from_dataset(cls, dataset, index, device):
        if not 0 <= index < len(dataset):
            raise DataError(f"--image_index {index}: the data folder has {len(dataset)} cube(s) "
                            f"({', '.join(dataset.imgpath_list)})")
        return cls.from_item(dataset[index], dataset.PSF, dataset.sp_matrix, dataset.sp_range, device,
                             wavelengths=dataset.wavelengths, msi_band_names=dataset.msi_band_names)

    @classmethod
    def from_item(cls, item, psf, srf, sp_range, device, wavelengths=None, msi_band_names=None):
        """From a simulated pair: a dict of C x H x W tensors with the data_loader.Dataset keys (the HR-MSI r
        times the LR-HSI's size, which gives r); ``psf``: the simulation's convolution kernel, K x K;
        ``wavelengths``: the C band centres in nm and ``msi_band_names`` the Cm MSI band names, when known."""
        return cls(Y=item["lhsi"].unsqueeze(0).to(device), Z=item["hmsi"].unsqueeze(0).to(device),
                   X=hwc(item["hhsi"].unsqueeze(0)), lrmsi_frommsi=hwc(item["lrmsi_frommsi"].unsqueeze(0)),
                   lrmsi_fromlrhsi=hwc(item["lrmsi_fromlrhsi"].unsqueeze(0)), psf=psf, srf=srf,
                   sp_range=sp_range, scale=item["hmsi"].shape[1] // item["lhsi"].shape[1],
                   lr_valid=item.get("lr_valid"), hr_valid=item.get("hr_valid"), out_valid=item.get("out_valid"),
                   hsi_factor=item.get("factor", 1.0),
                   info=item.get("info", {}), wavelengths=wavelengths, msi_band_names=msi_band_names)

    @classmethod
    def from_real(cls, real, device):
        """From a real pair (data_loader.RealPair): no true degradations; a reference only with --reference.
        A large pair (``real.large``) keeps no second copy of its images: Y and Z are channels-last
        views of its float32 arrays (moved to ``device`` when that is not the CPU); smaller pairs get
        contiguous copies, the layout every result of the papers' sizes was computed with."""
        share = real.large
        return cls(Y=to_tensor(real.lhsi, share)[None].to(device), Z=to_tensor(real.hmsi, share)[None].to(device),
                   X=real.reference,
                   lrmsi_frommsi=None, lrmsi_fromlrhsi=None, psf=gaussian_psf(real.scale, real.scale / FWHM_TO_SIGMA),
                   srf=real.srf, sp_range=support_range(real.srf), scale=real.scale, lr_valid=real.lr_valid,
                   hr_valid=real.hr_valid, out_valid=real.out_valid, hsi_factor=real.hsi_factor, info=real.info,
                   source=real,
                   known_degradations=False, wavelengths=real.wavelengths, msi_band_names=real.msi_band_names)

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

    def patches(self, rows, cols, height, width, truth=False, weights=None):
        """The batch of B aligned patches with LR origins (``rows[b]``, ``cols[b]``), int64 CPU tensors:
        LR-HSI patches of ``height`` x ``width`` LR pixels and their exact HR footprints (r height x
        r width HR pixels from (r rows[b], r cols[b])), with their masks. ``weights``: (1 x 1 x h x w,
        1 x 1 x H x W) per-pixel loss weights (fusion.patches.PatchSampler's, the valid masks included)
        whose patches replace the masks in the losses. ``truth``: also the numpy truths and valid masks
        the checks compare with (fusion.monitor), as mosaics (``mosaic``'s layout)."""
        r = self.scale

        def tensors(image, factor):
            return None if image is None else gather_patches(image, rows, cols, height, width, factor)

        def stacked(array, factor):
            if array is None:
                return None
            patches = gather_patches(array, rows, cols, height, width, factor)
            return patches.reshape(-1, *patches.shape[2:])

        lr_mask, hr_mask = (self.lr_mask, self.hr_mask) if weights is None else weights
        view = PairView(Y=tensors(self.Y, 1), Z=tensors(self.Z, r), rows=rows, cols=cols, size=(height, width),
                        lr_mask=tensors(lr_mask, 1), hr_mask=tensors(hr_mask, r))
        if truth:
            view.X, view.lrmsi_frommsi = stacked(self.X, r), stacked(self.lrmsi_frommsi, 1)
            view.lrmsi_fromlrhsi = stacked(self.lrmsi_fromlrhsi, 1)
            view.lr_valid, view.hr_valid = stacked(self.lr_valid, 1), stacked(self.hr_valid, r)
            view.out_valid = stacked(self.out_valid, r)
        return view


@dataclass
class PairView:
    """A batch of B aligned patches of a Pair (``Pair.patches``), which a training step or the checks use
    in place of the whole pair: the same attributes and losses, on B x C x P x P tensors. The numpy
    truths and valid masks (only for the checks) are mosaics, (B P) x P x C (``mosaic``)."""
    Y: torch.Tensor                     # LR-HSI patches, B x C x P x P
    Z: torch.Tensor                     # their HR-MSI footprints, B x Cm x rP x rP
    rows: torch.Tensor                  # LR origins (row of each patch's top-left pixel), B int64, CPU
    cols: torch.Tensor                  # LR origins (column), B int64, CPU
    size: tuple                         # (P rows, P columns), LR pixels
    lr_mask: torch.Tensor = None        # B x 1 x P x P loss weights: the valid mask (1 = valid; None: all), or the sampler's
    hr_mask: torch.Tensor = None        # B x 1 x rP x rP (coverage weights times the mask, fusion.patches)
    X: np.ndarray = None                # reference mosaic, (B rP) x rP x C (None: no reference, or not asked)
    lrmsi_frommsi: np.ndarray = None    # true Z P mosaic, (B P) x P x Cm
    lrmsi_fromlrhsi: np.ndarray = None  # true Y S mosaic, (B P) x P x Cm
    lr_valid: np.ndarray = None         # (B P) x P bool
    hr_valid: np.ndarray = None         # (B rP) x rP bool
    out_valid: np.ndarray = None        # (B rP) x rP bool

    @property
    def has_reference(self):
        return self.X is not None

    def lr_patches(self, image):
        """This batch's patches of another LR-grid tensor (1 x c x h x w -> B x c x P x P), e.g. a fixed target."""
        return gather_patches(image, self.rows, self.cols, *self.size)

    def lr_l1(self, a, b):
        """Mean L1 of an LR-grid term over the valid LR pixels of the batch."""
        return masked_l1(a, b, self.lr_mask)

    def hr_l1(self, a, b):
        """Mean L1 of an HR-grid term over the valid HR pixels of the batch."""
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
                lr_valid=lr_valid, hr_valid=hr_valid, out_valid=hr_valid, known_degradations=False,
                wavelengths=pair.wavelengths, msi_band_names=pair.msi_band_names)
