"""Geometry of a real LR-HSI / HR-MSI pair without georeferencing: the scale ratio r from the image sizes
and the HR crop (a georeferenced pair is put on nested grids by imagery.alignment first)."""
from imagery.errors import DataError

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
