"""Tests for imagery/geometry.py: the ratio of a real pair and the alignment of two GeoTIFF grids."""
import re

import pytest

from data_loader import DataError
from imagery.geometry import infer_scale


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
