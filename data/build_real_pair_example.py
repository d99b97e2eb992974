"""Build the real-pair example from the embedded Indian Pines cube: two GeoTIFFs shaped like delivered
products, fused by README's "Fuse your own pair" command.

    python data/build_real_pair_example.py

Writes data/real_pair_example/:
- indian_pines_lr_hsi.tif: the LR-HSI, 29 x 29 pixels of 100 m, 68 bands, reflectance x 10000 as int16,
  band centres (nm) and FWHM in the band metadata, no-data value -9999;
- indian_pines_hr_msi.tif: the HR-MSI, 145 x 145 pixels of 20 m, 8 WorldView-2 bands, reflectance x
  10000 as uint16, no-data value 0.
The reference (the embedded cube, data/indian_pines/indian_pines_vnir.mat) is not in the folder: the
fusion does not see it; pass it with --reference to score the result.

How the pair differs from the Wald simulation of the embedded default (so that the example exercises
what a real pair brings): the HR-MSI is made with rectangular band responses over the WorldView-2 band
ranges, while the fusion is told only the sensor's name (--msi_sensor worldview2, which gives Gaussian
responses over the same ranges): the SRF is known only approximately; the LR-HSI is blurred by a
Gaussian PSF (FWHM r) that the fusion does not know; both are quantised to integers; a corner of
3 x 3 LR pixels (15 x 15 HR pixels) is a swath edge without data in both images.

Georeference (documented, approximate): UTM zone 16N (EPSG:32616), upper-left corner at easting
499000 m, northing 4478000 m, near the Indian Pines test site (NW Indiana); AVIRIS's 20 m pixels for
the HR-MSI, r = 5.
"""
import os
import sys

import numpy as np
from affine import Affine

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from data_loader import gaussian_psf, load_cube, spatial_degrade, srf_from_bands  # noqa: E402
from imagery.sensors import band_ranges, sensor_bands  # noqa: E402
from imagery.writers import write_geotiff  # noqa: E402

SCALE = 5
HR_PIXEL_M = 20.0
UPPER_LEFT = (499000.0, 4478000.0)
CRS = "EPSG:32616"
REFLECTANCE_SCALE = 10000
HSI_NODATA, MSI_NODATA = -9999, 0
NODATA_CORNER_LR = 3
# AVIRIS band centres for this scene: evenly spaced over 400-2500 nm, 224 channels; the cube keeps 68.
AVIRIS_WAVELENGTHS = np.linspace(400.0, 2500.0, 224)[:68]
AVIRIS_FWHM = np.full(68, 10.0)


def build(out_dir):
    reference = load_cube(os.path.join(ROOT, "data", "indian_pines", "indian_pines_vnir.mat"))
    bands = sensor_bands("worldview2")
    srf = srf_from_bands(AVIRIS_WAVELENGTHS, band_ranges("worldview2"), shape="rect")
    lr = spatial_degrade(reference, gaussian_psf(SCALE, SCALE / 2.35482), SCALE)
    hr = reference @ srf
    lr_int = np.round(lr * REFLECTANCE_SCALE).astype(np.int16)
    hr_int = np.round(hr * REFLECTANCE_SCALE).astype(np.uint16)
    lr_int[:NODATA_CORNER_LR, :NODATA_CORNER_LR] = HSI_NODATA
    hr_int[:NODATA_CORNER_LR * SCALE, :NODATA_CORNER_LR * SCALE] = MSI_NODATA
    hr_transform = Affine(HR_PIXEL_M, 0, UPPER_LEFT[0], 0, -HR_PIXEL_M, UPPER_LEFT[1])
    lr_transform = hr_transform @ Affine.scale(SCALE)
    os.makedirs(out_dir, exist_ok=True)
    write_geotiff(os.path.join(out_dir, "indian_pines_lr_hsi.tif"), lr_int, CRS, lr_transform, nodata=HSI_NODATA,
                  band_names=[f"{w:.1f} nm" for w in AVIRIS_WAVELENGTHS], wavelengths=AVIRIS_WAVELENGTHS,
                  fwhm=AVIRIS_FWHM, dtype="int16")
    write_geotiff(os.path.join(out_dir, "indian_pines_hr_msi.tif"), hr_int, CRS, hr_transform, nodata=MSI_NODATA,
                  band_names=[name for name, _, _ in bands], dtype="uint16")


if __name__ == "__main__":
    build(os.path.join(ROOT, "data", "real_pair_example"))
