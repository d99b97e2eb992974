"""A georeferenced LR-HSI / HR-MSI pair put on nested grids: the HR-MSI on the grid exactly r times finer
than the LR-HSI's, both cut to their common footprint in whole LR pixels.

Real pairs come on their own grids: different extents, pixel sizes that are not an exact integer ratio
(30 m with 10.5 m), sub-pixel offsets, sometimes different UTM zones. ``align_to_lr_grid`` takes the
LR-HSI's grid as the reference and

- reprojects the HR-MSI into the LR-HSI's CRS when the two differ;
- takes r as the ratio of the pixel sizes, rounded to the nearest integer when it lies within
  RATIO_TOLERANCE of it, and refuses it with the numbers otherwise;
- keeps the LR pixels whose whole footprint the HR-MSI covers (whole LR pixels), and logs what was cut
  of each image, in pixels and in the CRS's units;
- resamples the HR-MSI onto the grid r times finer than the kept LR pixels with GDAL's area-weighted
  average (``rasterio.warp.reproject``, ``Resampling.average``), or only crops it when its grid already
  is that grid (the same CRS, an exact ratio and an offset of whole HR pixels): nothing is interpolated
  then, and the pixels are the file's.

The LR-HSI is never resampled: its spectra are the product, only whole pixels are cut off. Transforms are
``affine.Affine`` (x = c + a col + b row, y = f + d col + e row), north-up grids only (b = d = 0).
"""
import logging
import math
from dataclasses import dataclass, replace

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from rasterio.transform import array_bounds
from rasterio.warp import Resampling, calculate_default_transform, reproject, transform_bounds

from imagery.errors import DataError

log = logging.getLogger(__name__)

# |LR pixel size / HR pixel size - r| accepted for the nearest integer r: 30 m / 10.5 m = 2.86 gives r = 3
# (the HR-MSI is then resampled to 10 m); 30 m / 12 m = 2.5 lies halfway between two ratios and is refused.
RATIO_TOLERANCE = 0.25
# Below these the HR-MSI grid already is the nested grid and is only cropped (no resampling): the pixel
# size's relative difference, and the offset of the nested grid's origin from a whole pixel of the file's grid.
EXACT_RATIO = 1e-9
EXACT_OFFSET_HR_PIXELS = 1e-6
MIN_LR_PIXELS = 2


@dataclass(frozen=True)
class Alignment:
    """What ``align_to_lr_grid`` did. ``rows``/``cols``: the LR-HSI rows and columns kept (slices);
    ``lr_transform``/``hr_transform``: the transforms of the kept LR grid and of the nested HR grid, in
    ``crs``; ``hr_shape``: the nested HR grid's rows and columns; ``r``: the ratio; ``hr_crop``: the rows and
    columns (slices) of the HR-MSI file kept when it was only cropped, None when it was resampled;
    ``reprojected``: whether its CRS differed; ``ratio``: the measured pixel-size ratio (LR / HR)."""
    rows: slice
    cols: slice
    lr_transform: Affine
    hr_transform: Affine
    crs: object
    hr_shape: tuple
    r: int
    hr_crop: tuple
    reprojected: bool
    ratio: float

    @property
    def resampled(self):
        """Whether the HR-MSI was resampled (else only cropped)."""
        return self.hr_crop is None

    def facts(self):
        """The alignment as metrics.json records it (plain numbers)."""
        return {"lr_rows": [self.rows.start, self.rows.stop], "lr_cols": [self.cols.start, self.cols.stop],
                "hr_transform": list(self.hr_transform)[:6], "pixel_size_ratio": self.ratio,
                "hr_resampled": self.resampled, "hr_reprojected": self.reprojected}


def georeferenced(image):
    """True when ``image`` (imagery.readers.Image) carries a CRS and a geotransform."""
    return image.crs is not None and image.transform is not None


def align_to_lr_grid(hsi, msi, given_r=None):
    """The pair ``hsi`` (LR-HSI) and ``msi`` (HR-MSI), imagery.readers.Image with float32 data H x W x C and a
    CRS and transform each, on nested grids: returns (hsi, msi, Alignment), the images with their data and
    transforms replaced (the HR-MSI in the LR-HSI's CRS, r h x r w, NaN where it has no data).

    ``given_r`` (--scale_factor) must equal the ratio found. Raises DataError for a rotated grid, a ratio
    that is not near an integer >= 2, or footprints that share fewer than MIN_LR_PIXELS x MIN_LR_PIXELS
    whole LR pixels; each message names both files and what was measured.
    """
    for image in (hsi, msi):
        t = image.transform
        if t.b != 0 or t.d != 0:
            raise DataError(f"{image.path}: the grid is rotated (transform {tuple(t)[:6]}); warp it to a north-up "
                            "grid first (e.g. gdalwarp)")
    reprojected = not _same_crs(hsi.crs, msi.crs)
    hr_size = _hr_pixel_size(msi, hsi.crs) if reprojected else (abs(msi.transform.a), abs(msi.transform.e))
    ratios = (abs(hsi.transform.a) / hr_size[0], abs(hsi.transform.e) / hr_size[1])
    r = _integer_ratio(ratios, hsi, msi, given_r)
    rows, cols = _common_lr_window(hsi, msi, reprojected)
    lr_transform = hsi.transform @ Affine.translation(cols.start, rows.start)
    hr_transform = lr_transform @ Affine.scale(1 / r)
    shape = (r * (rows.stop - rows.start), r * (cols.stop - cols.start))
    crop = None if reprojected else _whole_pixel_crop(msi, hr_transform, shape)
    alignment = Alignment(rows, cols, lr_transform, hr_transform, hsi.crs, shape, r, crop, reprojected,
                          float(np.mean(ratios)))
    msi_data = onto_hr_grid(msi, alignment)
    _log(hsi, msi, alignment, shape)
    hsi_data = hsi.data
    if (rows.stop - rows.start, cols.stop - cols.start) != hsi_data.shape[:2]:
        hsi_data = np.ascontiguousarray(hsi_data[rows, cols])
    return (replace(hsi, data=hsi_data, transform=lr_transform),
            replace(msi, data=msi_data, transform=hr_transform, crs=hsi.crs), alignment)


def onto_hr_grid(image, alignment):
    """The data of ``image`` (imagery.readers.Image with a CRS and transform: the HR-MSI, or an HR-HSI
    reference of the same ground) on the nested HR grid of ``alignment``: its own pixels, cropped, when its
    grid already is that grid, else GDAL's area-weighted average (H x W x C float32, NaN where it has no
    data)."""
    crop = _whole_pixel_crop(image, alignment.hr_transform, alignment.hr_shape) \
        if _same_crs(alignment.crs, image.crs) else None
    if crop is None:
        return _resample(image, alignment.crs, alignment.hr_transform, alignment.hr_shape)
    if crop == (slice(0, image.data.shape[0]), slice(0, image.data.shape[1])):
        return image.data
    return np.ascontiguousarray(image.data[crop])


def _same_crs(a, b):
    return CRS.from_user_input(a) == CRS.from_user_input(b)


def _hr_pixel_size(msi, crs):
    """The HR-MSI's pixel size (x, y) once reprojected to ``crs``, as GDAL estimates it
    (rasterio.warp.calculate_default_transform)."""
    height, width = msi.data.shape[:2]
    transform, _, _ = calculate_default_transform(msi.crs, crs, width, height,
                                                  *array_bounds(height, width, msi.transform))
    return abs(transform.a), abs(transform.e)


def _integer_ratio(ratios, hsi, msi, given_r):
    r = round(sum(ratios) / 2)
    sizes = (f"{hsi.path} (LR-HSI) has pixels of {abs(hsi.transform.a):g} x {abs(hsi.transform.e):g}, {msi.path} "
             f"(HR-MSI) of {abs(msi.transform.a):g} x {abs(msi.transform.e):g} (CRS units)")
    if r < 2 or any(abs(ratio - r) > RATIO_TOLERANCE for ratio in ratios):
        raise DataError(f"{sizes}: a ratio of {ratios[0]:.3f} along x and {ratios[1]:.3f} along y, not within "
                        f"{RATIO_TOLERANCE} of one integer r >= 2; resample the HR-MSI to 1/r of the LR pixel size "
                        "(e.g. gdalwarp -tr) for the r you want")
    if given_r is not None and given_r != r:
        raise DataError(f"{sizes}: the pixel sizes give r = {r} (a ratio of {ratios[0]:.3f}), but --scale_factor "
                        f"{given_r} was given; drop --scale_factor")
    return r


def _hr_bounds(msi, crs, reprojected):
    """The HR-MSI's footprint (left, bottom, right, top) in ``crs``."""
    height, width = msi.data.shape[:2]
    bounds = array_bounds(height, width, msi.transform)
    return transform_bounds(msi.crs, crs, *bounds, densify_pts=21) if reprojected else bounds


def _common_lr_window(hsi, msi, reprojected):
    """The LR rows and columns (slices) whose pixels lie wholly inside the HR-MSI's footprint."""
    left, bottom, right, top = _hr_bounds(msi, hsi.crs, reprojected)
    t, (height, width) = hsi.transform, hsi.data.shape[:2]
    eps = 1e-9
    xs = sorted(((left - t.c) / t.a, (right - t.c) / t.a))
    ys = sorted(((top - t.f) / t.e, (bottom - t.f) / t.e))
    cols = slice(max(0, math.ceil(xs[0] - eps)), min(width, math.floor(xs[1] + eps)))
    rows = slice(max(0, math.ceil(ys[0] - eps)), min(height, math.floor(ys[1] + eps)))
    if rows.stop - rows.start < MIN_LR_PIXELS or cols.stop - cols.start < MIN_LR_PIXELS:
        lr = _footprint(hsi.transform, height, width)
        raise DataError(f"{hsi.path} (LR-HSI, footprint {lr}) and {msi.path} (HR-MSI, footprint "
                        f"({left:.2f}, {bottom:.2f}, {right:.2f}, {top:.2f}) in the LR-HSI's CRS) share fewer than "
                        f"{MIN_LR_PIXELS} x {MIN_LR_PIXELS} whole LR pixels: give two images of the same ground")
    return rows, cols


def _footprint(transform, height, width):
    return "(" + ", ".join(f"{v:.2f}" for v in array_bounds(height, width, transform)) + ")"


def _whole_pixel_crop(image, hr_transform, shape):
    """The (rows, cols) slices of ``image`` that are the nested grid ``hr_transform`` (``shape``) when its own
    grid already is (same CRS checked by the caller, the same pixel size, origin on a whole pixel, inside
    the image), else None."""
    t = image.transform
    if abs(t.a - hr_transform.a) > EXACT_RATIO * abs(hr_transform.a) or \
            abs(t.e - hr_transform.e) > EXACT_RATIO * abs(hr_transform.e):
        return None
    col = (hr_transform.c - t.c) / t.a
    row = (hr_transform.f - t.f) / t.e
    if abs(col - round(col)) > EXACT_OFFSET_HR_PIXELS or abs(row - round(row)) > EXACT_OFFSET_HR_PIXELS:
        return None
    row, col = round(row), round(col)
    if row < 0 or col < 0 or row + shape[0] > image.data.shape[0] or col + shape[1] > image.data.shape[1]:
        return None
    return slice(row, row + shape[0]), slice(col, col + shape[1])


def _resample(msi, crs, transform, shape):
    """The HR-MSI on the grid ``transform`` (``shape`` rows x columns) in ``crs``: GDAL's area-weighted
    average of the source pixels each target pixel covers, NaN where none has data. Returns H x W x Cm
    float32."""
    source = np.moveaxis(msi.data, 2, 0)
    target = np.full((msi.data.shape[2], *shape), np.nan, dtype=np.float32)
    reproject(source, target, src_transform=msi.transform, src_crs=msi.crs, src_nodata=msi.nodata,
              dst_transform=transform, dst_crs=crs, dst_nodata=np.nan, resampling=Resampling.average)
    return np.ascontiguousarray(np.moveaxis(target, 0, 2))


def _log(hsi, msi, alignment, shape):
    height, width = hsi.data.shape[:2]
    rows, cols = alignment.rows, alignment.cols
    cut = [rows.start, height - rows.stop, cols.start, width - cols.stop]
    if any(cut):
        px, py = abs(hsi.transform.a), abs(hsi.transform.e)
        log.info("%s: kept LR rows %d-%d and columns %d-%d of %d x %d, the whole pixels the HR-MSI covers (cut "
                 "%d top, %d bottom, %d left, %d right: %g, %g, %g, %g in CRS units)", hsi.path, rows.start,
                 rows.stop - 1, cols.start, cols.stop - 1, height, width, *cut, cut[0] * py, cut[1] * py,
                 cut[2] * px, cut[3] * px)
    how = ("reprojected and resampled (area-weighted average)" if alignment.reprojected else
           "resampled (area-weighted average)" if alignment.resampled else "cropped (its grid is already nested)")
    log.info("%s: %s from %d x %d pixels of %g to %d x %d pixels of %g (r = %d, pixel-size ratio %.4f)",
             msi.path, how, *msi.data.shape[:2], abs(msi.transform.a), *shape,
             abs(alignment.hr_transform.a), alignment.r, alignment.ratio)
