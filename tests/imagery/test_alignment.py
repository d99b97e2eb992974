"""imagery.alignment: a georeferenced pair on nested grids, the LR-HSI cut to whole pixels and never
resampled, the HR-MSI cropped when its grid is already nested and resampled (area-weighted) otherwise."""
import numpy as np
import pytest
from affine import Affine
from rasterio.warp import Resampling, calculate_default_transform, reproject

from imagery.alignment import RATIO_TOLERANCE, align_to_lr_grid
from imagery.errors import DataError
from imagery.readers import Image

CRS = "EPSG:32616"
LR = Affine(30.0, 0, 500000.0, 0, -30.0, 4200000.0)


def image(data, transform, crs=CRS, path="img.tif", nodata=None):
    return Image(np.asarray(data, dtype=np.float32), path, "geotiff", "float32", nodata=nodata, crs=crs,
                 transform=transform)


@pytest.fixture
def ramp():
    """A 60 x 60 x 2 HR-MSI at 10 m whose values are linear in x and y (area averages are exact on it)."""
    rows, cols = np.mgrid[0:60, 0:60].astype(np.float64)
    return np.stack([cols + 0.5, 100 + rows + 0.5], -1)


def test_an_hr_image_larger_by_whole_pixels_is_only_cropped(ramp):
    hsi = image(np.ones((10, 12, 5)), LR @ Affine.translation(2, 1))  # starts 60 m east, 30 m south of the HR
    msi = image(ramp, Affine(10.0, 0, 500000.0, 0, -10.0, 4200000.0))
    hsi2, msi2, alignment = align_to_lr_grid(hsi, msi)
    assert (alignment.r, alignment.resampled, alignment.reprojected) == (3, False, False)
    assert (alignment.rows, alignment.cols) == (slice(0, 10), slice(0, 12)) and hsi2.data is hsi.data
    assert msi2.transform == Affine(10.0, 0, 500060.0, 0, -10.0, 4199970.0)
    np.testing.assert_array_equal(msi2.data, ramp[3:33, 6:42])  # the file's own pixels


def test_a_fractional_offset_is_resampled_by_area_and_the_lr_grid_kept(ramp):
    msi = image(ramp, Affine(10.0, 0, 499995.0, 0, -10.0, 4200004.0))  # 0.5 HR pixel west, 0.4 north
    hsi = image(np.arange(20 * 20 * 5).reshape(20, 20, 5), LR)
    hsi2, msi2, alignment = align_to_lr_grid(hsi, msi)
    # The HR image covers x 499995-500595 and y 4199404-4200004: LR columns 0-18 and rows 0-18 lie wholly in it.
    assert (alignment.rows, alignment.cols, alignment.resampled) == (slice(0, 19), slice(0, 19), True)
    np.testing.assert_array_equal(hsi2.data, hsi.data[:19, :19])
    assert hsi2.transform == LR and msi2.transform == Affine(10.0, 0, 500000.0, 0, -10.0, 4200000.0)
    # Target pixel (i, j) averages the source over its 10 m cell: 0.5 source pixel along x, 0.4 along y.
    rows, cols = np.mgrid[0:57, 0:57]
    np.testing.assert_allclose(msi2.data[:, :, 0], cols + 0.5 + 0.5, atol=1e-4)
    np.testing.assert_allclose(msi2.data[:, :, 1], 100 + rows + 0.5 + 0.4, atol=1e-4)


def test_a_30_m_and_10_5_m_pair_goes_to_r_3_at_10_m(ramp):
    hsi = image(np.ones((15, 15, 5)), LR)
    msi = image(ramp, Affine(10.5, 0, 500000.0, 0, -10.5, 4200000.0))  # 630 m a side: 21 whole LR pixels
    _, msi2, alignment = align_to_lr_grid(hsi, msi)
    assert alignment.r == 3 and alignment.ratio == pytest.approx(30 / 10.5)
    assert msi2.data.shape == (45, 45, 2) and msi2.transform == Affine(10.0, 0, 500000.0, 0, -10.0, 4200000.0)
    # Target column j covers 10 j to 10 j + 10 m: the mean of the 10.5 m source values (k + 0.5) it overlaps,
    # weighted by the overlap.
    edges = np.arange(61) * 10.5
    overlap = np.clip(np.minimum(edges[1:], (np.arange(45)[:, None] + 1) * 10)
                      - np.maximum(edges[:-1], np.arange(45)[:, None] * 10), 0, None)
    expected = overlap @ (np.arange(60) + 0.5) / overlap.sum(axis=1)
    np.testing.assert_allclose(msi2.data[0, :, 0], expected, atol=0.03)


def test_an_hr_image_in_another_utm_zone_is_reprojected_to_the_lr_crs(ramp):
    msi_utm16 = image(ramp, Affine(10.0, 0, 800000.0, 0, -10.0, 4200000.0))  # near zone 16's eastern edge
    east, width, height = calculate_default_transform(CRS, "EPSG:32617", 60, 60, 800000.0, 4199400.0, 800600.0,
                                                      4200000.0, resolution=10.0)  # the same ground in zone 17
    target = np.zeros((2, height, width), np.float32)
    reproject(np.moveaxis(msi_utm16.data, 2, 0), target, src_transform=msi_utm16.transform, src_crs=CRS,
              dst_transform=east, dst_crs="EPSG:32617", dst_nodata=np.nan, resampling=Resampling.bilinear)
    msi = image(np.moveaxis(target, 0, 2), east, crs="EPSG:32617")
    hsi = image(np.ones((20, 20, 5)), Affine(30.0, 0, 800000.0, 0, -30.0, 4200000.0))
    _, msi2, alignment = align_to_lr_grid(hsi, msi)
    assert alignment.reprojected and alignment.r == 3 and msi2.crs == CRS
    assert msi2.transform.a == 10.0 and msi2.transform.c == 800000.0 + 30.0 * alignment.cols.start
    valid = np.isfinite(msi2.data[:, :, 0])
    assert valid.mean() > 0.9  # the HR footprint, rotated by the zone change, covers the kept LR pixels
    rows, cols = np.mgrid[0:msi2.data.shape[0], 0:msi2.data.shape[1]]
    expected = 3 * alignment.cols.start + cols + 0.5
    assert np.abs(msi2.data[:, :, 0] - expected)[valid].max() < 0.6  # back on the ramp within a pixel


@pytest.mark.parametrize("hr, given, phrase", [
    (Affine(12.0, 0, 500000.0, 0, -12.0, 4200000.0), None, "a ratio of 2.500 along x"),
    (Affine(30.0, 0, 500000.0, 0, -30.0, 4200000.0), None, "not within 0.25 of one integer r >= 2"),
    (Affine(10.0, 0, 500000.0, 0, -10.0, 4200000.0), 4, "the pixel sizes give r = 3"),
    (Affine(10.0, 0, 510000.0, 0, -10.0, 4200000.0), None, "share fewer than 2 x 2 whole LR pixels"),
    (Affine(10.0, 0.5, 500000.0, 0, -10.0, 4200000.0), None, "the grid is rotated"),
])
def test_pairs_that_cannot_be_nested_are_refused_with_the_numbers(ramp, hr, given, phrase):
    assert RATIO_TOLERANCE == 0.25
    with pytest.raises(DataError, match=phrase):
        align_to_lr_grid(image(np.ones((20, 20, 5)), LR, path="lr.tif"), image(ramp, hr, path="hr.tif"), given)
