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
"""
import math

import numpy as np

from imagery.readers import invalid_values


def invalid_pixels(cube, nodata=None):
    """H x W bool, True where the pixel of the H x W x C ``cube`` carries no data (see the module docstring)."""
    cube = np.asarray(cube)
    invalid = invalid_values(cube, None if nodata == 0 else nodata).any(axis=2)
    invalid |= ~(cube != 0).any(axis=2)  # 0 in every band (NaN != 0, so NaN pixels are already covered)
    return invalid


def power_of_ten_scale(cube, valid=None):
    """The scaling rule's factor 10^k, with max |cube| over valid pixels / 10^k in (0.1, 1].

    ``cube`` is H x W x C in any units, ``valid`` an H x W bool mask (default: every pixel). Returns
    1.0 for an image without valid non-zero values. Divide by the factor to scale; multiply to restore.
    """
    values = np.asarray(cube) if valid is None else np.asarray(cube)[valid]
    peak = float(np.max(np.abs(values))) if values.size else 0.0
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


def fill_invalid(cube, invalid, value=0.0):
    """A float copy of the H x W x C ``cube`` whose invalid pixels (H x W bool) hold ``value``: masked
    pixels then carry no NaN or fill value into the networks (their loss terms are masked anyway)."""
    out = np.array(cube, dtype=np.float64)
    out[invalid] = value
    return out
