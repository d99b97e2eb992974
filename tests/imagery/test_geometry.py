"""Tests for imagery/geometry.py: the ratio of a real pair and the alignment of two GeoTIFF grids."""
import re

import pytest
from affine import Affine

from data_loader import DataError
from imagery.geometry import check_alignment, infer_scale


@pytest.mark.parametrize("lr, hr, r, kept", [
    ((29, 29, 68), (145, 145, 8), 5, (145, 145)),
    ((16, 20, 166), (48, 60, 8), 3, (48, 60)),
    ((16, 20, 166), (50, 62, 8), 3, (48, 60)),     # 2 extra rows/columns: cropped at the bottom/right
    ((10, 10, 50), (40, 40), 4, (40, 40)),         # a pan image given as H x W
])
def test_infer_scale_finds_r_and_the_rows_to_keep(lr, hr, r, kept):
    assert infer_scale(lr, hr, "y.tif", "z.tif") == (r, kept)


@pytest.mark.parametrize("lr, hr, given, phrase", [
    ((16, 20, 166), (48, 80, 8), None, "ratios are 3.000 (rows) and 4.000 (columns)"),
    ((16, 20, 166), (48, 66, 8), None, "ratios are 3.000 (rows) and 3.300 (columns)"),
    ((16, 16, 166), (16, 16, 8), None, "integer r >= 2"),
    ((48, 48, 8), (16, 16, 166), None, "swapped"),
    ((16, 16, 166), (48, 48, 8), 4, "the ratio is 3, but --scale_factor 4"),
])
def test_infer_scale_errors_name_both_files_their_shapes_and_the_fix(lr, hr, given, phrase):
    with pytest.raises(DataError) as info:
        infer_scale(lr, hr, "lr.tif", "hr.tif", given)
    message = str(info.value)
    assert re.search(re.escape(phrase), message)
    assert "lr.tif (LR-HSI) is" in message and "hr.tif (HR-MSI) is" in message
    assert "swapped" in phrase or "gdalwarp" in message or "--scale_factor" in message


HR = Affine(10.0, 0, 500000.0, 0, -10.0, 4200000.0)


def test_nested_grids_are_accepted_within_half_an_hr_pixel():
    lr = Affine(30.0, 0, 500004.0, 0, -30.0, 4200000.0)  # 0.4 HR pixel east
    dx, dy = check_alignment(lr, HR, 3, "lr.tif", "hr.tif", "EPSG:32616", "EPSG:32616")
    assert dx == pytest.approx(0.4) and dy == 0


@pytest.mark.parametrize("lr, crs, phrase", [
    (Affine(30.0, 0, 500012.0, 0, -30.0, 4200000.0), "EPSG:32616", "differ by +1.20 HR pixels in x"),
    (Affine(30.0, 0, 500000.0, 0, -30.0, 4199990.0), "EPSG:32616", "+1.00 in y"),
    (Affine(40.0, 0, 500000.0, 0, -40.0, 4200000.0), "EPSG:32616", "a ratio of 4.0000, but the image sizes give r = 3"),
    (Affine(30.0, 0, 500000.0, 0, -30.0, 4200000.0), "EPSG:32617", "different coordinate reference systems"),
    (Affine(30.0, 1.0, 500000.0, 0, -30.0, 4200000.0), "EPSG:32616", "rotated"),
])
def test_misaligned_grids_are_refused_with_the_offset(lr, crs, phrase):
    with pytest.raises(DataError, match=re.escape(phrase)):
        check_alignment(lr, HR, 3, "lr.tif", "hr.tif", crs, "EPSG:32616")
