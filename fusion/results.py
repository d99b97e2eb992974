"""The fused image's quality without a reference and its output files in the input's units and
georeferencing (My_Out.mat itself is written by func.RunFolder)."""
import numpy as np
import torch

from evaluation import QNR_BLOCK, NoValidBlock, evaluate, qnr
from func import log
from fusion.pair import hwc
from imagery.writers import write_envi, write_geotiff

NO_REFERENCE_METRICS = ("PSNR", "SAM", "ERGAS")
QNR_BLOCKS = (QNR_BLOCK, QNR_BLOCK // 2, QNR_BLOCK // 4)


@torch.inference_mode()
def no_reference_quality(pair, nets, x_hat):
    """Quality without a reference. Consistency (the paper's Fig. 2 check): the fused image X_hat
    (1 x C x H x W, scaled) degraded again by the learned networks against the inputs, SpaDnet(X_hat)
    vs Y and SpeDnet(X_hat) vs Z (PSNR dB, SAM degrees, ERGAS); and the QNR indices (evaluation.qnr),
    with the HR-MSI brought to the LR grid by the learned PSF."""
    r = pair.scale
    x, y, z = hwc(x_hat), hwc(pair.Y), hwc(pair.Z)
    lrhsi = evaluate(y, hwc(nets.spa(x_hat)), r, ssim=False, mask=pair.lr_valid)
    hrmsi = evaluate(z, hwc(nets.to_msi(x_hat)), r, ssim=False, mask=pair.out_valid)
    quality = {"lrhsi_consistency": {k: lrhsi[k] for k in NO_REFERENCE_METRICS},
               "hrmsi_consistency": {k: hrmsi[k] for k in NO_REFERENCE_METRICS}}
    z_lr = hwc(nets.spa(pair.Z))
    # QNR's blocks (32 HR pixels, Alparone's toolbox) must fit in the valid part of small images.
    for block in QNR_BLOCKS:
        try:
            return {**quality, **qnr(x, y, z, z_lr, block=block, mask=pair.out_valid, lr_mask=pair.lr_valid),
                    "QNR_block": block}
        except NoValidBlock:
            continue
    log.warning("QNR not computed: no %d x %d block of the image is entirely valid", QNR_BLOCKS[-1], QNR_BLOCKS[-1])
    return quality


def in_input_units(pair, x):
    """X_hat (H x W x C, scaled) as a float32 array in the LR-HSI's (or reference's) units, holding the
    no-data value where the HR pixel has no data."""
    out = x.astype(np.float32) * np.float32(pair.hsi_factor)
    if pair.out_valid is not None and not pair.out_valid.all():
        out[~pair.out_valid] = pair.source.nodata if pair.source is not None else np.nan
    return out


def write_georeferenced(run, pair, x_out):
    """My_Out.tif (GeoTIFF, the HR-MSI's CRS and transform) or My_Out.hdr (ENVI) when the HR-MSI came as
    one, with the HSI band centres; the run folder's My_Out.mat is written for every run."""
    real = pair.source
    if real is None:
        return None
    names = None if real.wavelengths is None else [f"{w:.2f} nm" for w in real.wavelengths]
    if real.msi.fmt == "geotiff":
        path = run.file("My_Out.tif")
        write_geotiff(path, x_out, real.msi.crs, real.msi.transform, nodata=real.nodata, band_names=names,
                      wavelengths=real.wavelengths, fwhm=real.fwhm)
    elif real.msi.fmt == "envi":
        path = run.file("My_Out.hdr")
        write_envi(path, x_out, wavelengths=real.wavelengths, fwhm=real.fwhm, nodata=real.nodata)
    else:
        return None
    return path
