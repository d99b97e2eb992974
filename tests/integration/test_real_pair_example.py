"""The shipped real pair (data/real_pair_example/): the Houston 2018 LR-HSI and the real RGB image of the same
ground, read as docs/real_pairs.md reads them."""
import os

import numpy as np
import pytest
import rasterio
from conftest import ROOT

from config import get_args
from data_loader import load_real_pair

EXAMPLE = os.path.join(ROOT, "data", "real_pair_example")
LR_HSI = os.path.join(EXAMPLE, "houston18_lr_hsi.tif")
HR_RGB = os.path.join(EXAMPLE, "houston18_hr_rgb.tif")
LABELS = os.path.join(ROOT, "data", "ground_truth", "houston18_labels.tif")


@pytest.fixture(scope="module")
def pair():
    return load_real_pair(get_args(["--lr_hsi", LR_HSI, "--hr_msi", HR_RGB, "--msi_sensor", "worldview2",
                                    "--msi_bands_select", "red,green,blue", "--device", "cpu"]))


def test_the_pair_is_read_with_its_band_centres_ratio_and_no_data_patch(pair):
    assert pair.scale == 4 and pair.lhsi.shape == (128, 128, 48) and pair.hmsi.shape == (512, 512, 3)
    np.testing.assert_allclose(pair.wavelengths, np.linspace(380.0, 1050.0, 48), atol=0.005)
    with rasterio.open(HR_RGB) as rgb:
        black = (rgb.read() == 0).all(axis=0)
    assert black.sum() == 5065
    np.testing.assert_array_equal(~pair.out_valid, black)
    assert pair.lr_valid.sum() == 128 * 128 - 355  # LR pixels whose 4 x 4 block touches the patch are left out


def test_the_files_share_a_georeference_nested_at_ratio_4():
    with rasterio.open(LR_HSI) as hsi, rasterio.open(HR_RGB) as rgb, rasterio.open(LABELS) as labels:
        assert hsi.crs == rgb.crs == labels.crs and hsi.crs.to_epsg() == 26915
        assert (hsi.transform.c, hsi.transform.f) == (rgb.transform.c, rgb.transform.f)
        assert hsi.transform.a == 4 * rgb.transform.a and labels.transform == rgb.transform
        assert hsi.nodata == 0 and rgb.nodata == 0 and hsi.dtypes[0] == "uint16" and rgb.dtypes[0] == "uint8"
