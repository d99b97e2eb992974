"""Tests for imagery/radiometry.py: the scaling rule and the no-data masks."""
import numpy as np
import pytest

from imagery.radiometry import block_all, fill_invalid, invalid_pixels, power_of_ten_scale, replicate


@pytest.fixture
def cube():
    return np.random.default_rng(0).uniform(0.05, 0.9, (6, 8, 5))


@pytest.mark.parametrize("peak, factor", [(0.91, 1.0), (1.0, 1.0), (1.2, 10.0), (0.05, 0.1), (9102.0, 1e4),
                                          (10000.0, 1e4), (10001.0, 1e5), (350.0, 1e3)])
def test_the_factor_brings_the_peak_into_a_tenth_to_one(peak, factor):
    data = np.array([[[peak / 3, -peak / 4, peak]]])
    assert power_of_ten_scale(data) == factor
    assert 0.1 < peak / power_of_ten_scale(data) <= 1.0


def test_the_rule_is_exact_under_powers_of_ten(cube):
    """A cube and the same cube x 10000 (raw reflectance units) scale to the same values."""
    for k in (-3, 2, 4, 6):
        raw = cube * 10.0 ** k
        np.testing.assert_allclose(raw / power_of_ten_scale(raw), cube / power_of_ten_scale(cube), rtol=1e-12)


def test_the_factor_ignores_invalid_pixels(cube):
    data = cube.copy()
    data[0, 0] = 5000.0
    valid = ~invalid_pixels(data, nodata=5000.0)
    assert power_of_ten_scale(data, valid) == 1.0
    assert power_of_ten_scale(np.zeros((2, 2, 3))) == 1.0


def test_invalid_pixels_cover_every_kind_of_no_data(cube):
    data = cube.copy()
    data[0, 0, 2] = np.nan       # any band non-finite
    data[0, 1] = 0.0             # 0 in every band: a scene frame
    data[1, 0, 4] = -3.4e38      # float32 fill value
    data[1, 1, 0] = -9999.0      # declared no-data value in one band
    data[2, 2, 1] = 0.0          # a single 0 is a valid reflectance
    invalid = invalid_pixels(data, nodata=-9999.0)
    expected = np.zeros((6, 8), dtype=bool)
    expected[0, 0] = expected[0, 1] = expected[1, 0] = expected[1, 1] = True
    np.testing.assert_array_equal(invalid, expected)


def test_a_no_data_value_of_zero_only_marks_pixels_zero_in_every_band(cube):
    data = cube.copy()
    data[3, 3, 0] = 0.0
    assert not invalid_pixels(data, nodata=0.0)[3, 3]


def test_block_all_and_replicate_are_the_lr_and_hr_views_of_a_mask():
    valid = np.ones((6, 9), dtype=bool)
    valid[4, 7] = False
    valid = np.pad(valid, ((0, 1), (0, 2)), constant_values=False)  # trailing rows/columns are dropped
    lr = block_all(valid, 3)
    np.testing.assert_array_equal(lr, [[True, True, True], [True, True, False]])
    np.testing.assert_array_equal(replicate(lr, 3), np.kron(lr, np.ones((3, 3))).astype(bool))


def test_fill_invalid_replaces_whole_pixels_and_keeps_the_input(cube):
    invalid = np.zeros(cube.shape[:2], dtype=bool)
    invalid[2, 3] = True
    data = cube.copy()
    data[2, 3] = np.nan
    filled = fill_invalid(data, invalid)
    assert np.all(filled[2, 3] == 0) and np.isnan(data[2, 3]).all()
    np.testing.assert_array_equal(filled[~invalid], cube[~invalid])
