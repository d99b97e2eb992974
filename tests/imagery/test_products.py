"""imagery.products: delivered products read as downloaded (EnMAP L2A, Sentinel-2 L2A, PRISMA L2D, EMIT L2A)."""
import numpy as np
import pytest
from affine import Affine

from conftest import emit_l2a, prisma_l2d, sentinel2_safe

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


def test_a_sentinel2_l2a_safe_folder_gives_its_20_m_bands_when_asked(tmp_path):
    reflectance = np.random.default_rng(5).uniform(0.02, 0.5, (6, 7, 9))
    transform = Affine(20.0, 0, 368000.0, 0, -20.0, 5810000.0)
    safe = sentinel2_safe(tmp_path, reflectance, transform, resolution="20m")
    image = read_image(safe, key="20m", role="HR-MSI", dtype=np.float32)
    assert image.band_names == ["B2", "B3", "B4", "B5", "B6", "B7", "B8A", "B11", "B12"]
    assert image.transform == transform
    np.testing.assert_allclose(image.data[1:, 1:], reflectance[1:, 1:], atol=5e-5)  # stored to 1e-4
    with pytest.raises(DataError, match=r"0 files GRANULE/\*/IMG_DATA/R10m/\*_B02_10m.jp2, expected one"):
        read_image(safe, role="HR-MSI")
    with pytest.raises(DataError, match="--hr_msi_key 60m names no resolution .* give 10m"):
        read_image(safe, key="60m", role="HR-MSI")



PRISMA_CENTRES = np.linspace(410.0, 2480.0, 10)


def test_a_prisma_l2d_hyperspectral_image_gets_its_bands_reflectance_frame_and_grid(tmp_path):
    rng = np.random.default_rng(2)
    hsi = rng.uniform(0.02, 0.9, (5, 7, 10))
    hsi[0, 0] = np.nan  # the no-data frame: DN 0 in every band of both cubes
    path = prisma_l2d(tmp_path, hsi, PRISMA_CENTRES, (368015.0, 5810985.0), vnir_bands=4, flagged=(5,))
    image = read_image(path, role="LR-HSI", dtype=np.float32)
    assert image.fmt == "prisma_l2d" and image.crs == "EPSG:32633"
    np.testing.assert_allclose(image.wavelengths, PRISMA_CENTRES, rtol=1e-6)  # VNIR then SWIR, increasing
    np.testing.assert_allclose(image.fwhm, 10.0 + np.arange(10))
    # The corners are pixel centres: the grid starts half a 30 m pixel up and left of them.
    assert image.transform == Affine(30.0, 0, 368000.0, 0, -30.0, 5811000.0)
    usable = [b for b in range(10) if b != 5]
    valid = ~np.isnan(hsi).any(axis=2)
    np.testing.assert_allclose(image.data[valid][:, usable], hsi[valid][:, usable], atol=1.2 / 65535)
    assert np.isnan(image.data[0, 0]).all() and np.isnan(image.data[:, :, 5]).all()


def test_a_prisma_l2d_file_as_hr_msi_gives_its_panchromatic_image_on_the_hyperspectral_footprint(tmp_path):
    rng = np.random.default_rng(3)
    pan = rng.uniform(0.05, 0.7, (30, 42))
    path = prisma_l2d(tmp_path, rng.uniform(0.1, 0.5, (5, 7, 10)), PRISMA_CENTRES, (368015.0, 5810985.0), pan=pan)
    image = read_image(path, role="HR-MSI", allow_2d=True, dtype=np.float32)
    assert image.data.shape == (30, 42, 1) and image.band_names == ["pan"]
    assert image.transform == Affine(5.0, 0, 368000.0, 0, -5.0, 5811000.0)
    np.testing.assert_allclose(image.data[:, :, 0], pan, atol=1.2 / 65535)


def test_a_prisma_product_in_sensor_geometry_is_refused(tmp_path):
    path = prisma_l2d(tmp_path, np.full((4, 4, 10), 0.3), PRISMA_CENTRES, (368015.0, 5810985.0), level="L2C")
    with pytest.raises(DataError, match="not a PRISMA Level-2D product .*PRS_L2C_HCO.*order the L2D product"):
        read_image(path)


def test_an_emit_l2a_file_is_put_on_its_map_grid_by_its_glt(tmp_path):
    rng = np.random.default_rng(4)
    instrument = rng.uniform(0.01, 0.6, (6, 5, 8))
    instrument[2, 3, 1] = np.nan  # written as the fill value -9999
    glt_x, glt_y = np.zeros(36, int), np.zeros(36, int)  # the 30 instrument pixels spread over a 4 x 9 map grid
    cells = rng.permutation(36)[:30]
    glt_y[cells], glt_x[cells] = np.divmod(np.arange(30), 5)
    glt_x[cells] += 1
    glt_y[cells] += 1
    glt_x, glt_y = glt_x.reshape(4, 9), glt_y.reshape(4, 9)
    good = np.array([1, 1, 1, 0, 1, 1, 1, 1])
    geotransform = (-118.5, 0.000542, 0.0, 34.25, 0.0, -0.000542)
    image = read_image(emit_l2a(tmp_path, instrument, np.linspace(380, 2500, 8), glt_x, glt_y, geotransform, good),
                       dtype=np.float32)
    assert image.fmt == "emit_l2a" and image.crs.to_epsg() == 4326 and image.data.shape == (4, 9, 8)
    assert image.transform == Affine.from_gdal(*geotransform)
    filled = glt_x > 0
    expected = np.full((4, 9, 8), np.nan)
    expected[filled] = instrument[glt_y[filled] - 1, glt_x[filled] - 1]
    expected[:, :, 3] = np.nan
    np.testing.assert_array_equal(np.isnan(image.data), np.isnan(expected))
    np.testing.assert_allclose(image.data[~np.isnan(expected)], expected[~np.isnan(expected)], rtol=1e-6)


def test_an_emit_glt_pointing_outside_the_instrument_image_is_refused(tmp_path):
    glt = np.full((2, 2), 7)
    path = emit_l2a(tmp_path, np.full((3, 3, 4), 0.2), np.linspace(400, 900, 4), glt, glt, (0, 1, 0, 0, 0, -1))
    with pytest.raises(DataError, match="the GLT points outside the 3 x 3 instrument image"):
        read_image(path)
