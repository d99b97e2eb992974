"""imagery.sensors: the band tables of the HR sensors users pair most, each with its source."""
import numpy as np
import pytest

from imagery.sensors import SENSORS, sensor_bands, srf_from_sensor


@pytest.mark.parametrize("name", sorted(SENSORS))
def test_every_table_has_a_source_and_ordered_ranges_inside_the_optical_domain(name):
    sensor = SENSORS[name]
    assert sensor.source and sensor.bands
    for band, low, high in sensor.bands:
        assert band and 350 <= low < high <= 2500


@pytest.mark.parametrize("name, band, low, high", [
    ("planetscope_superdove", "rededge", 697, 713), ("planetscope_superdove", "coastal_blue", 431, 452),
    ("pleiades", "nir", 740, 940), ("pleiades_pan", "pan", 470, 830), ("worldview3_pan", "pan", 450, 800),
    ("landsat9_oli", "swir2", 2100, 2300), ("rgb_camera", "green", 500, 600),
])
def test_published_ranges(name, band, low, high):
    assert dict((b, (lo, hi)) for b, lo, hi in sensor_bands(name, None))[band] == (low, high)


def test_a_superdove_srf_on_a_400_to_1000_nm_hsi_has_one_column_per_band_summing_to_1():
    wavelengths = np.arange(400.0, 1001.0, 5.0)
    srf, names = srf_from_sensor(sensor_bands("planetscope_superdove", None), wavelengths, None, source="test")
    assert srf.shape == (wavelengths.size, 8) and names[6] == "rededge"
    np.testing.assert_allclose(srf.sum(axis=0), 1.0)
    assert wavelengths[np.argmax(srf[:, 6])] == 705.0  # the red-edge band peaks at its centre
