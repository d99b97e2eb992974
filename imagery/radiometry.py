"""The radiometric scaling rule and the no-data masks, shared by the simulated and the real-pair paths.

Scaling rule (one factor per image): real images come as reflectance in [0, 1], reflectance x 10000
integers, or radiance. Each image is divided by the power of ten 10^k that brings the largest
magnitude over its valid pixels into (0.1, 1]. One factor per image keeps every spectrum's shape;
a power of ten keeps two images in the same units at the same level (so the learned PSF has no gain
to absorb), and makes the rule exact under unit changes by powers of ten: a cube and the same cube
x 10000 are fused identically. The fused image is multiplied back by the LR-HSI's factor, so it comes
out in the LR-HSI's units. The embedded default (maximum 0.91) has the factor 1.

Validity: a pixel is left out of every loss and metric when any of its values is NaN, Inf or a fill
value (magnitude above ``imagery.readers.FILL_MAGNITUDE``, 1e30), when any band holds the declared no-data
value (a no-data value of 0 is only taken when every band is 0, since 0 is a valid reflectance), or
when it is 0 in every band (the frame of delivered scenes).

Memory: the passes over a whole image (``invalid_pixels``, ``band_extrema``, ``power_of_ten_scale``,
``scale_in_place``) go through it in row blocks (``imagery.blocks.row_blocks``), so their
temporaries stay at tens of MB whatever the image's size; ``scale_in_place`` changes the image itself.
"""
import math

import numpy as np

from imagery.blocks import row_blocks
from imagery.readers import invalid_values


def invalid_pixels(cube, nodata=None):
    """H x W bool, True where the pixel of the H x W x C ``cube`` carries no data (see the module docstring)."""
    cube = np.asarray(cube)
    nodata = None if nodata == 0 else nodata
    invalid = np.empty(cube.shape[:2], dtype=bool)
    for rows in row_blocks(cube.shape):
        block = cube[rows]
        # 0 in every band also marks a pixel (NaN != 0, so NaN pixels are already covered).
        invalid[rows] = invalid_values(block, nodata).any(axis=2) | ~(block != 0).any(axis=2)
    return invalid


# Fill values that files leave undeclared (no no-data value in their metadata): GDAL and ENVI's -9999 and
# int16's -32768 / -32767. A pixel whose every band holds one same negative value is taken as filled too.
UNDECLARED_FILL_VALUES = (-9999.0, -32768.0, -32767.0)


def undeclared_fill(cube):
    """H x W x C bool, True where a value of the H x W x C ``cube`` is a fill value a file left undeclared:
    one of UNDECLARED_FILL_VALUES, or a value of a pixel whose every band (at least 2) holds the same
    negative value. For files that declare no no-data value (a declared one is taken as it is)."""
    cube = np.asarray(cube)
    fill = np.zeros(cube.shape, dtype=bool)
    for rows in row_blocks(cube.shape):
        block = cube[rows]
        found = np.isin(block, UNDECLARED_FILL_VALUES)
        if cube.shape[2] > 1:
            constant = (block[:, :, :1] < 0) & (block == block[:, :, :1]).all(axis=2, keepdims=True)
            found |= constant
        fill[rows] = found
    return fill


def empty_bands(cube, nodata=None):
    """C bool, True for the bands of the H x W x C ``cube`` that hold no data in any pixel (NaN, Inf, a fill
    value or ``nodata`` everywhere; 0 counts as data here)."""
    cube = np.asarray(cube)
    empty = np.ones(cube.shape[2], dtype=bool)
    for rows in row_blocks(cube.shape):
        empty &= invalid_values(cube[rows], None if nodata == 0 else nodata).all(axis=(0, 1))
    return empty


def band_extrema(cube, valid=None):
    """Per-band minimum and maximum of the H x W x C ``cube`` over the valid pixels (``valid``: H x W
    bool, default every pixel), as two float64 vectors of C values in the cube's units. A NaN among
    the values counted gives NaN for its band; without a valid pixel the minima are +Inf and the
    maxima -Inf."""
    cube = np.asarray(cube)
    bands = cube.shape[2]
    low, high = np.full(bands, np.inf), np.full(bands, -np.inf)
    for rows in row_blocks(cube.shape):
        values = cube[rows].reshape(-1, bands) if valid is None else cube[rows][valid[rows]]
        if values.size:
            np.minimum(low, values.min(axis=0), out=low)
            np.maximum(high, values.max(axis=0), out=high)
    return low, high


def power_of_ten_scale(cube, valid=None):
    """The scaling rule's factor 10^k, with max |cube| over valid pixels / 10^k in (0.1, 1].

    ``cube`` is H x W x C in any units and any numeric dtype (float32 values give the factor of the
    same values in float64), ``valid`` an H x W bool mask (default: every pixel). Returns 1.0 for an
    image without valid non-zero values (or with NaN among them). Divide by the factor to scale;
    multiply to restore.
    """
    low, high = band_extrema(cube, valid)
    peak = float(np.max(np.abs(np.concatenate([low, high]))))
    if not math.isfinite(peak) or peak == 0.0:
        return 1.0
    exponent = math.ceil(math.log10(peak))
    if peak / 10.0 ** exponent > 1.0:  # guard against log10 rounding at exact powers of ten
        exponent += 1
    return 10.0 ** exponent


def block_all(valid, r):
    """h x w bool: True where every HR pixel of the r x r block is valid (``valid`` is H x W, H = r h).

    An LR value computed from HR pixels (the learned PSF covers the whole block) is only trusted when
    the whole block is valid. Trailing rows/columns beyond a multiple of r are dropped, as SpaDnet does.
    """
    h, w = valid.shape[0] // r, valid.shape[1] // r
    return valid[:h * r, :w * r].reshape(h, r, w, r).all(axis=(1, 3))


def replicate(valid_lr, r):
    """H x W bool: each LR pixel's flag repeated over its r x r block (the HR pixels it covers)."""
    return np.repeat(np.repeat(valid_lr, r, axis=0), r, axis=1)


def scale_in_place(cube, factor, invalid=None, value=0.0):
    """Divide the H x W x C float ``cube`` by the scaling rule's ``factor`` and set its invalid pixels
    (``invalid``: H x W bool, or None) to ``value``, in place, block by block; returns ``cube``.

    Each value is divided in float64 and rounded once to the cube's dtype: a float32 cube holds
    exactly ``float32(float64(x) / factor)``, the value that dividing a float64 copy and converting it
    to float32 later gives. Invalid pixels are filled first, so their NaN or fill values are never divided.
    """
    for rows in row_blocks(cube.shape):
        block = cube[rows]
        if invalid is not None:
            block[invalid[rows]] = value
        if factor != 1.0:
            block[...] = block.astype(np.float64) / factor
    return cube


def fill_invalid(cube, invalid, value=0.0):
    """A float copy of the H x W x C ``cube`` whose invalid pixels (H x W bool) hold ``value``: masked
    pixels then carry no NaN or fill value into the networks (their loss terms are masked anyway)."""
    out = np.array(cube, dtype=np.float64)
    out[invalid] = value
    return out
