"""Tests for imagery/quicklook.py (the quick-look figure and its band choice)."""
import os
import subprocess
import sys

import numpy as np
import pytest

from imagery import quicklook as ql

# Imported here so the first figure test does not pay for loading matplotlib.
image = pytest.importorskip("matplotlib.image")

# AVIRIS-like grid: 400-2500 nm every 10 nm; 640, 550 and 470 nm are bands 24, 15 and 7.
AVIRIS_NM = np.arange(400.0, 2501.0, 10.0)


@pytest.fixture
def pair(rng):
    """LR-HSI 8x6x10 (r = 5), HR-MSI 40x30x3, fused 40x30x10, PSF 5x5, SRF 10x3, wavelengths."""
    wavelengths = np.linspace(420.0, 900.0, 10)
    srf = np.exp(-0.5 * ((wavelengths[:, None] - np.array([470.0, 550.0, 650.0])) / 40.0) ** 2)
    srf /= srf.sum(axis=0)
    fused = rng.random((40, 30, 10))
    lr = fused.reshape(8, 5, 6, 5, 10).mean(axis=(1, 3))
    return lr, fused @ srf, fused, np.full((5, 5), 1 / 25), srf, wavelengths


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def test_composite_bands_true_colour_on_aviris_grid():
    assert ql.composite_bands(AVIRIS_NM) == (24, 15, 7)
    assert ql.composite_bands(AVIRIS_NM + 3.0, n_bands=AVIRIS_NM.size) == (24, 15, 7)


def test_composite_bands_spread_when_not_covered():
    swir = np.arange(1000.0, 2501.0, 10.0)
    # 1000 + 1500 * (5/6, 1/2, 1/6) = 2250, 1750, 1250 nm
    assert ql.composite_bands(swir) == (125, 75, 25)
    assert ql._hsi_bands(swir, None)[1] is False
    assert ql._hsi_bands(AVIRIS_NM, None)[1] is True


def test_composite_bands_without_wavelengths():
    # round(6 * (5/6, 1/2, 1/6)) = (5, 3, 1)
    assert ql.composite_bands(None, n_bands=7) == (5, 3, 1)
    assert ql.composite_bands(None, n_bands=1) == (0, 0, 0)
    with pytest.raises(ValueError, match="needs the band wavelengths or the number of bands"):
        ql.composite_bands(None)
    with pytest.raises(ValueError, match="3 wavelengths given for 4 bands"):
        ql.composite_bands([450.0, 550.0, 650.0], n_bands=4)


def test_msi_bands_from_srf_centres():
    wavelengths = np.array([450.0, 500.0, 550.0, 600.0, 650.0, 800.0])
    # MSI bands: NIR (800), red (650), green (550 / 600 equally), blue (450 / 500 equally)
    srf = np.array([[0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 1, 0], [0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0]],
                   dtype=float)
    bands, note = ql._msi_bands(4, wavelengths, srf)
    assert bands == (1, 2, 3)
    assert note == "centres 650/575/475 nm"
    assert ql._msi_bands(4, None, srf)[0] == (2, 1, 0)
    assert ql._msi_bands(1, None, None)[0] == (0, 0, 0)


def test_stretch_percentiles_and_nodata():
    img = np.stack([np.arange(100.0), 2 * np.arange(100.0), np.full(100, 5.0)], axis=1).reshape(10, 10, 3)
    img[0, 0, 0] = np.nan
    out = ql._stretch(img)
    finite = np.arange(1.0, 100.0)
    lo, hi = np.percentile(finite, [2, 98])
    np.testing.assert_allclose(out[..., 0].ravel()[1:], np.clip((finite - lo) / (hi - lo), 0, 1))
    assert out[0, 0, 0] == 0.0  # no-data black
    np.testing.assert_array_equal(out[..., 2], 0.5)  # no spread: mid-grey
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_save_quicklook_writes_png_of_expected_size(tmp_path, pair):
    lr, msi, fused, psf, srf, wavelengths = pair
    path = str(tmp_path / "quicklook.png")
    returned = ql.save_quicklook(path, lr, msi, fused, psf, srf + 0.01, hsi_wavelengths=wavelengths,
                                 reference=fused, true_psf=psf, true_srf=srf,
                                 msi_band_names=["blue", "green", "red"], title="test run")
    assert returned == path
    png = image.imread(path)
    # 4 columns (with a reference) x 2 rows of 400-pixel panels
    assert png.shape[:2] == (2 * 400, 4 * 400)
    assert os.listdir(tmp_path) == ["quicklook.png"]  # no temporary file left behind


def test_save_quicklook_minimal(tmp_path, pair):
    lr, msi, fused, psf, srf, _ = pair
    fused = fused.copy()
    fused[:4] = np.nan
    path = ql.save_quicklook(tmp_path / "q.png", lr, msi[:, :, 0], fused, psf, srf[:, :1])
    assert image.imread(path).shape[:2] == (800, 3 * 400)


def test_save_quicklook_shape_errors(tmp_path, pair):
    lr, msi, fused, psf, srf, wavelengths = pair
    with pytest.raises(ValueError, match=r"fused must be H x W x C = 40 x 30 \(as hr_msi\) x 10"):
        ql.save_quicklook(tmp_path / "q.png", lr, msi, fused[:, :, :9], psf, srf)
    with pytest.raises(ValueError, match=r"srf must be C x Cm = 10 x 3"):
        ql.save_quicklook(tmp_path / "q.png", lr, msi, fused, psf, srf.T)
    with pytest.raises(ValueError, match="hsi_wavelengths must hold 10 finite values"):
        ql.save_quicklook(tmp_path / "q.png", lr, msi, fused, psf, srf, hsi_wavelengths=wavelengths[:5])
    assert os.listdir(tmp_path) == []


def test_import_does_not_load_matplotlib():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    code = "import sys; import imagery.quicklook; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
