"""Fusion from Python arrays: the command line's run (``fusion.run.fuse``), for a notebook or a script.

    from fusion.api import fuse_arrays
    result = fuse_arrays(Y, Z, msi_sensor="sentinel2", msi_bands_select="2,3,4,8", wavelengths=centres_nm)
    result.image            # X_hat, H x W x C, in Y's units
    result.report["no_reference"]["QNR"]

The pair goes through the same checks, scaling rule, masks, training and scores as a pair read from files,
so the result equals the command line's on the same pair (tests/fusion/test_api.py checks it).
"""
import os
import tempfile
from dataclasses import dataclass

import numpy as np

from config import OptionError, get_args, options_argv
from data_loader import DataError, real_pair_from_images
from fusion.pair import Pair
from fusion.run import fuse
from fusion.run_folder import read_metrics
from imagery.readers import Image, read_image

# Options that name files, or a reference cube to simulate a pair from: the arrays replace them.
NOT_FOR_ARRAYS = ("lr_hsi", "hr_msi", "lr_hsi_key", "hr_msi_key", "hsi_wavelengths", "srf", "srf_key", "msi_bands",
                  "reference", "resume", "checkpoints_dir", "data_name", "default_datapath", "sp_root_path",
                  "image_index", "cube_key", "mask_invalid", "snr_hsi", "snr_msi", "msi_gain", "msi_gamma",
                  "msi_gain_jitter", "msi_offset_jitter", "sim_psf_size", "sim_psf_shift", "overwrite")


@dataclass
class FusionResult:
    """What ``fuse_arrays`` gives back.

    image: X_hat, H x W x C float32 in the LR-HSI's units (its scaling undone), holding ``nodata`` (NaN when
        none was given) where the HR-MSI has no data; exactly the run folder's My_Out.mat.
    report: metrics.json's content (the options, the no-reference scores, the scores against ``reference``
        under "final" when one was given, the learned PSF and SRF, the loss history, the times).
    run_folder: the run folder's path, or None when none was kept.
    """
    image: np.ndarray
    report: dict
    run_folder: str | None


def fuse_arrays(lr_hsi, hr_msi, *, srf=None, msi_sensor=None, msi_bands_select=None, wavelengths=None, fwhm=None,
                nodata=None, reference=None, name="arrays", run_folder=None, **options):
    """Fuse an LR-HSI and an HR-MSI given as arrays, as ``python train_all_special.py --lr_hsi ... --hr_msi ...``
    fuses them from files.

    lr_hsi: Y, h x w x C (rows, columns, bands), any real dtype, in its own units (reflectance, radiance or
        digital numbers: the scaling rule of imagery.radiometry applies). hr_msi: Z, H x W x Cm (or H x W for a
        pan image) with H = r h and W = r w for an integer r >= 2 (extra bottom rows and right columns are
        cropped, as for files).
    The SRF, one of: ``srf`` a C x Cm array (rows = HSI bands, columns = MSI bands); ``msi_sensor`` a sensor
        name of imagery.sensors (with ``msi_bands_select``, e.g. "blue,green,red" or "2,3,4,8"), which needs
        ``wavelengths``.
    wavelengths, fwhm: the C band centres and widths of the LR-HSI in nm. nodata: a value meaning no data in
        either image. reference: an H x W x C HR-HSI to score X_hat against (the fusion never sees it).
    name: the pair's name, which starts the run folder's name. run_folder: a folder to keep the run folder
        in (as --checkpoints_dir); None keeps none (the run is written to a temporary folder, then removed).
    options: any other option of train_all_special.py by its name: method="pfs2c2", seed=3, threads=1,
        epoch_stage3=5000, degradation="original", reduced_resolution=True, ... (docs/options.md).

    Returns a FusionResult. Raises config.OptionError (a ValueError) for a bad or unknown option,
    data_loader.DataError (a ValueError) for arrays that cannot be fused (shapes, ratio, bands, no data),
    and what fusion.run.fuse raises (OutOfMemory, TrainingDiverged, func.Interrupted).
    """
    argv = _argv(options, msi_sensor=msi_sensor, msi_bands_select=msi_bands_select, nodata=nodata)
    with tempfile.TemporaryDirectory(prefix="fusion-") as scratch:
        folder = os.path.abspath(run_folder) if run_folder is not None else scratch
        args = get_args(argv + ["--checkpoints_dir", folder], arrays=name)
        images = (_image(lr_hsi, "lr_hsi", wavelengths=wavelengths, fwhm=fwhm),
                  _image(hr_msi, "hr_msi", allow_2d=True))
        ref = _image(reference, "reference") if reference is not None else None

        def load(args):
            real = real_pair_from_images(*images, args, srf=srf, reference=ref)
            return Pair.from_real(real, args.device), None

        run = fuse(args, load=load)
        image = read_image(run.file("My_Out.mat"), "Out", dtype=np.float32).data
        report = read_metrics(run.path)
        return FusionResult(image, report, run.path if run_folder is not None else None)


def _argv(options, **named):
    """The command line of ``options`` ({option name: value}; True/False for a flag) and of the ``named``
    real-pair options (None leaves one out). Raises OptionError for an unknown option or one that names a
    file."""
    for option in options:
        if option in NOT_FOR_ARRAYS:
            raise OptionError(f"{option} does not apply to arrays: the pair, its SRF and its reference are given as "
                              "arrays (lr_hsi, hr_msi, srf, reference), and run_folder keeps the run folder")
    return options_argv({**options, **named})


def _image(array, role, wavelengths=None, fwhm=None, allow_2d=False):
    """``array`` as the imagery.readers.Image a file would give (float32, H x W x C, C-contiguous). Raises
    DataError for an array that is not a non-empty numeric 3-D (or, with ``allow_2d``, 2-D) array."""
    data = np.asarray(array)
    if data.ndim == 2 and allow_2d:
        data = data[:, :, None]
    if data.ndim != 3 or data.size == 0 or data.dtype.kind not in "iuf":
        shapes = "H x W x C or H x W" if allow_2d else "H x W x C"
        raise DataError(f"{role}: expected a non-empty real {shapes} array, got shape {data.shape} dtype "
                        f"{data.dtype}")
    return Image(data=np.array(data, dtype=np.float32, order="C"), path=f"{role} (array)", fmt="array",
                 dtype=str(data.dtype), wavelengths=None if wavelengths is None else np.asarray(wavelengths, float),
                 fwhm=None if fwhm is None else np.asarray(fwhm, float))
