"""The fusion methods, one module per paper: ``methods.udaln`` (UDALN, Li et al., GRSL 2022),
``methods.pfs2c2`` (PFS2C2, Jia et al., JSTARS 2025) and ``methods.uds2c2`` (UDS2C2, Yu et al., TGRS 2024,
reconstructed), with what they share in ``methods.common``, and ``methods.recommended``, the project's
recommended blind mode (UDALN's stage 1, then MTF-GLP-HS with the learned PSF). Each method is a builder
``method(options, pair) -> (nets, stages)`` (``options``: config.RunOptions): it makes its networks (``common.Nets``) on the pair's device and
returns them with its three stages (``common.Stage``: optimisers, loss factory, checks to monitor), which
fusion.run.train runs in order. ``METHODS`` maps each ``--method`` name to its builder;
``check_options`` refuses, before anything is written, options that cannot run on the pair.
"""
from methods.common import check_psf_size
from methods.pfs2c2 import pfs2c2
from methods.recommended import check_recommended, recommended
from methods.udaln import udaln
from methods.uds2c2 import check_scf_place, uds2c2

METHODS = {"udaln": udaln, "pfs2c2": pfs2c2, "uds2c2": uds2c2, "recommended": recommended}


def check_options(args, pair, streamed):
    """Refuse options the pair or the run cannot use (``streamed``: the output is written tile by tile),
    before anything is written. Raises DataError."""
    check_psf_size(args, pair, streamed)
    check_scf_place(args, pair, streamed)
    check_recommended(args, pair)
