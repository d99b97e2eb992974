"""imagery.registration: the shift between a real pair's images, measured from the pixels."""
import numpy as np
import pytest
import scipy.ndimage as ndi
from conftest import SYNTHETIC_CUBE

from data_loader import load_cube, srf_from_bands
from imagery.errors import DataError
from imagery.registration import WARN_LR_PIXELS, check_registration, measure_shift, shift_hr_msi
from imagery.sensors import band_ranges
from model.degradation import gaussian_psf, spatial_degrade

R = 4
WAVELENGTHS = np.linspace(400.0, 2500.0, 224)[:68]


@pytest.fixture(scope="module")
def scene():
    reference = load_cube(SYNTHETIC_CUBE)[20:116, 20:116]
    srf = srf_from_bands(WAVELENGTHS, band_ranges("worldview2"))
    return spatial_degrade(reference, gaussian_psf(R, R / 2.35482), R), reference @ srf, srf


@pytest.mark.parametrize("hr_shift", [(0, 0), (2, 0), (0, -3), (1.5, 2.5), (-6, 3)])
def test_a_known_shift_is_recovered_within_a_tenth_of_an_lr_pixel(scene, hr_shift):
    lr, hr, srf = scene
    moved = ndi.shift(hr, (*hr_shift, 0), order=1, mode="nearest")
    measured = measure_shift(lr, moved, srf, R)
    np.testing.assert_allclose(measured, np.array(hr_shift) / R, atol=0.1)


def test_the_correction_moves_the_hr_msi_back(scene):
    lr, hr, srf = scene
    moved = ndi.shift(hr, (6, -3, 0), order=1, mode="nearest")
    back = shift_hr_msi(moved, measure_shift(lr, moved, srf, R), R)
    invalid = np.isnan(back[:, :, 0])
    assert invalid.mean() < 0.1  # only the strip the shift uncovers
    residual = measure_shift(lr, np.where(invalid[..., None], 0, back), srf, R, hr_invalid=invalid)
    assert np.hypot(*residual) < WARN_LR_PIXELS  # registered, by the same measure


def test_no_data_is_left_out_of_the_measure(scene):
    lr, hr, srf = scene
    moved = ndi.shift(hr, (2, 0, 0), order=1, mode="nearest")
    hr_invalid = np.zeros(hr.shape[:2], bool)
    hr_invalid[10:40, 10:40] = True
    moved[hr_invalid] = -9999.0
    np.testing.assert_allclose(measure_shift(lr, moved, srf, R, hr_invalid=hr_invalid), (0.5, 0), atol=0.1)


def test_the_thresholds(caplog):
    assert check_registration((0.1, 0.1), "check", "y.tif", "z.tif") is False
    assert check_registration((0.5, 0.0), "check", "y.tif", "z.tif") is False
    assert "more than 0.2 LR pixel; --registration correct resamples" in caplog.text
    assert check_registration((0.5, 0.0), "correct", "y.tif", "z.tif") is True
    assert check_registration((3.0, 0.0), "ignore", "y.tif", "z.tif") is False
    with pytest.raises(DataError, match=r"z.tif \(HR-MSI\) lies \+3.00 LR pixels down .* --registration correct"):
        check_registration((3.0, 0.0), "check", "y.tif", "z.tif")
    assert check_registration(None, "check", "y.tif", "z.tif") is False


def test_images_that_do_not_correlate_are_not_measured(caplog):
    rng = np.random.default_rng(0)
    assert measure_shift(rng.random((16, 16, 40)), rng.random((64, 64, 8)), np.eye(40)[:, :8], R) is None
    assert "do not correlate (phase-correlation error 0.9" in caplog.text
