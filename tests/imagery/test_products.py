"""imagery.products: delivered products' metadata read beside their images (EnMAP L2A)."""
import numpy as np
import pytest
from affine import Affine

from conftest import sentinel2_safe

from imagery.errors import DataError
from imagery.readers import read_image
from imagery.writers import write_geotiff

PRODUCT = "ENMAP01-____L2A-DT0000001867_20220724T104526Z_008_V010302_20230628T165614Z"
CENTRES = np.linspace(420.0, 2400.0, 12)
BAD = (3, 9)  # 1-based, as the product counts


def enmap_product(folder, reflectance, bad=BAD, bands=None):
    """An EnMAP L2A product in its documented layout: ``<id>-SPECTRAL_IMAGE.TIF`` (int16, reflectance x 10000,
    no-data -32768, the bad bands filled with it) and ``<id>-METADATA.XML`` (the band characterisation and
    the expected channel lists)."""
    stored = np.round(reflectance * 10000).astype(np.int16)
    for band in bad:
        stored[:, :, band - 1] = -32768
    image = folder / f"{PRODUCT}-SPECTRAL_IMAGE.TIF"
    write_geotiff(str(image), stored, "EPSG:32633", Affine(30.0, 0, 368000.0, 0, -30.0, 5810000.0),
                  nodata=-32768, dtype="int16")
    count = stored.shape[2] if bands is None else bands
    entries = "".join(f'<bandID number="{b + 1}"><wavelengthCenterOfBand>{CENTRES[b]:.3f}</wavelengthCenterOfBand>'
                      f"<FWHMOfBand>{6.5 + b:.2f}</FWHMOfBand><GainOfBand>0.0001</GainOfBand>"
                      "<OffsetOfBand>0</OffsetOfBand></bandID>" for b in range(count))
    expected = [b for b in range(1, count + 1) if b not in bad]
    (folder / f"{PRODUCT}-METADATA.XML").write_text(
        f"<level_X><specific><bandCharacterisation>{entries}</bandCharacterisation>"
        f"<vnirProductQuality><expectedChannelsList>{','.join(map(str, expected[:5]))}</expectedChannelsList>"
        f"</vnirProductQuality><swirProductQuality><expectedChannelsList>{','.join(map(str, expected[5:]))}"
        "</expectedChannelsList></swirProductQuality></specific></level_X>")
    return str(image)


def test_an_enmap_l2a_image_gets_its_centres_widths_reflectance_and_bad_bands(tmp_path):
    reflectance = np.random.default_rng(0).uniform(0.01, 0.6, (6, 5, 12))
    image = read_image(enmap_product(tmp_path, reflectance), dtype=np.float32)
    np.testing.assert_allclose(image.wavelengths, CENTRES, atol=1e-3)
    np.testing.assert_allclose(image.fwhm, 6.5 + np.arange(12))
    good = [b for b in range(12) if b + 1 not in BAD]
    np.testing.assert_allclose(image.data[:, :, good], reflectance[:, :, good], atol=5e-5)  # stored x 1e-4
    assert np.isnan(image.data[:, :, [b - 1 for b in BAD]]).all()


def test_enmap_metadata_for_another_band_count_is_refused(tmp_path):
    path = enmap_product(tmp_path, np.full((4, 4, 12), 0.2), bands=10)
    with pytest.raises(DataError, match="describes 10 bands, the spectral image beside it has 12"):
        read_image(path)


def test_a_sentinel2_l2a_safe_folder_gives_its_10_m_bands_as_reflectance(tmp_path):
    reflectance = np.random.default_rng(1).uniform(0.02, 0.5, (8, 9, 4))
    transform = Affine(10.0, 0, 368000.0, 0, -10.0, 5810000.0)
    image = read_image(sentinel2_safe(tmp_path, reflectance, transform), dtype=np.float32)
    assert image.band_names == ["B2", "B3", "B4", "B8"] and image.transform == transform
    assert image.crs == "EPSG:32633" and np.isnan(image.data[0, 0]).all()  # 0 = no data
    np.testing.assert_allclose(image.data[1:], reflectance[1:], atol=5e-5)  # (stored - 1000) / 10000
