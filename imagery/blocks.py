"""Row blocks: how the passes over a whole image (reading, masks, extrema, scaling, figures) bound their
temporaries to tens of MB whatever the image's size."""
import numpy as np

# Values per row block: large enough that numpy's per-call overhead stays negligible.
BLOCK_VALUES = 1 << 22


def row_blocks(shape):
    """Slices of rows that cover the first axis of an array of ``shape`` (H x W x C or H x W) in blocks
    of about BLOCK_VALUES values (at least one row), for passes over a whole image whose temporaries
    must stay small."""
    step = max(1, BLOCK_VALUES // max(1, int(np.prod(shape[1:], dtype=np.int64))))
    return [slice(top, min(top + step, shape[0])) for top in range(0, shape[0], step)]
