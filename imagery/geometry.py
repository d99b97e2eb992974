"""Geometry of a real LR-HSI / HR-MSI pair: the scale ratio r, the HR crop, and GeoTIFF alignment."""
import math

from imagery.errors import DataError

ALIGNMENT_TOLERANCE_HR_PIXELS = 0.5  # upper-left corners may differ by at most half an HR pixel
PIXEL_SIZE_TOLERANCE = 0.01          # relative tolerance on (LR pixel size) / (HR pixel size) = r
RESAMPLE_HINT = ("resample one image so that the HR-MSI grid is exactly r times finer than the LR-HSI "
                 "grid (e.g. gdalwarp -tr <LR pixel size / r> ... on the HR-MSI) and crop both to the "
                 "same extent")


def infer_scale(lr_shape, hr_shape, lr_path, hr_path, given=None):
    """The integer ratio r between the HR-MSI and the LR-HSI grids, and the HR-MSI rows/columns to keep.

    ``lr_shape`` (h, w, ...) and ``hr_shape`` (H, W, ...) are the images' shapes. r = H // h must equal
    W // w and be at least 2; an HR-MSI larger than r h x r w by fewer than r rows/columns is cropped
    at the bottom and the right (the upper-left corner, the georeferencing origin, stays), which is
    what a stride-r PSF ignores anyway. ``given`` (--scale_factor) must equal the inferred r.

    Returns (r, (H_kept, W_kept)). Raises DataError naming both files, their shapes and the ratio found.
    """
    h, w = lr_shape[:2]
    big_h, big_w = hr_shape[:2]
    shapes = (f"{lr_path} (LR-HSI) is {h} x {w} pixels, {hr_path} (HR-MSI) is {big_h} x {big_w} pixels")
    if big_h < h or big_w < w:
        raise DataError(f"{shapes}: the HR-MSI is smaller than the LR-HSI; are --lr_hsi and --hr_msi swapped?")
    r_rows, r_cols = big_h // h, big_w // w
    exact = (big_h - r_rows * h) < r_rows and (big_w - r_cols * w) < r_cols  # fewer than r extra: cropped
    if r_rows != r_cols or r_rows < 2 or not exact:
        raise DataError(f"{shapes}: the size ratios are {big_h / h:.3f} (rows) and {big_w / w:.3f} "
                        f"(columns); they must be the same integer r >= 2: {RESAMPLE_HINT}")
    r = r_rows
    if given is not None and given != r:
        raise DataError(f"{shapes}: the ratio is {r}, but --scale_factor {given} was given; drop "
                        f"--scale_factor or {RESAMPLE_HINT}")
    return r, (h * r, w * r)


def check_alignment(lr_transform, hr_transform, r, lr_path, hr_path, lr_crs=None, hr_crs=None):
    """Refuse a georeferenced pair whose grids are not nested: same CRS, LR pixel size = r x HR pixel
    size (within 1 %), upper-left corners within half an HR pixel.

    Transforms are ``affine.Affine`` (rasterio): x = c + a col + b row, y = f + d col + e row; rotated
    grids (b, d != 0) are refused. Raises DataError with the offset in HR pixels.
    """
    if lr_crs is not None and hr_crs is not None and lr_crs != hr_crs:
        raise DataError(f"{lr_path} and {hr_path}: different coordinate reference systems ({lr_crs} and "
                        f"{hr_crs}); reproject one (e.g. gdalwarp -t_srs) so both use the same CRS")
    for transform, path in ((lr_transform, lr_path), (hr_transform, hr_path)):
        if transform.b != 0 or transform.d != 0:
            raise DataError(f"{path}: the grid is rotated (transform {tuple(transform)[:6]}); warp it to a "
                            "north-up grid first (gdalwarp)")
    for axis, lr_size, hr_size in (("x", lr_transform.a, hr_transform.a), ("y", lr_transform.e, hr_transform.e)):
        ratio = lr_size / hr_size
        if not math.isclose(ratio, r, rel_tol=PIXEL_SIZE_TOLERANCE):
            raise DataError(f"{lr_path} and {hr_path}: the pixel sizes along {axis} are {abs(lr_size):g} and "
                            f"{abs(hr_size):g}, a ratio of {ratio:.4f}, but the image sizes give r = {r}: "
                            f"{RESAMPLE_HINT}")
    dx = (lr_transform.c - hr_transform.c) / hr_transform.a + 0.0  # + 0.0: no "-0.00" in messages
    dy = (lr_transform.f - hr_transform.f) / hr_transform.e + 0.0
    if max(abs(dx), abs(dy)) > ALIGNMENT_TOLERANCE_HR_PIXELS:
        raise DataError(f"{lr_path} and {hr_path}: the upper-left corners differ by {dx:+.2f} HR pixels in x "
                        f"(columns) and {dy:+.2f} in y (rows); they must agree within "
                        f"{ALIGNMENT_TOLERANCE_HR_PIXELS} HR pixel: {RESAMPLE_HINT}")
    return dx, dy
