"""Shared fixtures: the project root on the import path, and a small real data set for training runs."""
import os
import signal
import sys

import numpy as np
import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from config import get_args  # noqa: E402
from data_loader import load_cube, simulate_pair  # noqa: E402
from model.degradation import gaussian_psf, spatial_degrade  # noqa: E402

# The synthetic class-mean cube (17 distinct spectra laid out like Indian Pines, 145 x 145 x 68, and its
# WorldView-2-like SRF): a small, fast regression fixture that ranks no method (fixtures/README.md).
SYNTHETIC = os.path.join(ROOT, "tests", "fixtures", "synthetic_class_mean")
SYNTHETIC_CUBE = os.path.join(SYNTHETIC, "indian_pines_class_mean.mat")
SYNTHETIC_SRF = os.path.join(SYNTHETIC, "indian_pines_class_mean.csv")
SYNTHETIC_GT = os.path.join(SYNTHETIC, "indian_pines_gt.mat")

# A few hundred epochs per stage: enough to beat bicubic, fast enough for the test suite.
SHORT_SCHEDULE = ["--epoch_stage1", "300", "--decay_begin_epoch_stage1", "150",
                  "--epoch_stage2", "300", "--decay_begin_epoch_stage2", "150",
                  "--epoch_stage3", "100", "--decay_begin_epoch_stage3", "50",
                  "--eval_every", "100"]
# Fewer epochs still, on one thread: for tests of what a run writes, not of how well it fuses.
TINY_SCHEDULE = ["--epoch_stage1", "60", "--decay_begin_epoch_stage1", "30", "--epoch_stage2", "60",
                 "--decay_begin_epoch_stage2", "30", "--epoch_stage3", "30", "--decay_begin_epoch_stage3", "15",
                 "--threads", "1"]


def pytest_addoption(parser):
    parser.addoption("--device", default=None,
                     help="the device of tests/integration/test_device.py (default: cuda when there is one, "
                          "else those tests are skipped)")


@pytest.fixture(scope="session")
def crop_data(tmp_path_factory):
    """A 40 x 40 crop of the synthetic class-mean cube and its WorldView-2-like SRF."""
    root = tmp_path_factory.mktemp("data")
    cube = load_cube(SYNTHETIC_CUBE)
    os.makedirs(root / "crop")
    np.save(root / "crop" / "crop.npy", cube[50:90, 50:90].astype(np.float32))
    srf = np.loadtxt(SYNTHETIC_SRF, delimiter=",")
    np.save(root / "crop.npy", srf)
    return root


def short_run_argv(data_root, checkpoints, *extra):
    """Options of a short training run on the crop."""
    return ["--default_datapath", str(data_root), "--sp_root_path", str(data_root), "--data_name", "crop",
            "--checkpoints_dir", str(checkpoints), "--device", "cpu", *SHORT_SCHEDULE, *extra]


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch on one thread for the rest of the test module, restored after: small training steps (uSDN's)
    lose more to thread synchronisation than they gain, above all on a shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def default_signal_handlers():
    """SIGINT and SIGTERM handled as by a Python started in a terminal (KeyboardInterrupt, termination),
    for a test that sends them: a pytest launched with them ignored (``nohup pytest ... &`` from a script
    ignores SIGINT) would pass that on to the run, which rightly keeps an ignored signal ignored. The
    previous handlers are restored afterwards."""
    previous = {signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler),
                signal.SIGTERM: signal.signal(signal.SIGTERM, signal.SIG_DFL)}
    yield
    for signum, handler in previous.items():
        signal.signal(signum, signal.SIG_DFL if handler is None else handler)


@pytest.fixture
def short_run_args(crop_data, tmp_path):
    """get_args for a short training run on the crop, writing into tmp_path/checkpoints."""
    return lambda *extra: get_args(short_run_argv(crop_data, tmp_path / "checkpoints", *extra))


def synthetic_wald_pair(rows, cols, r=5):
    """A crop (``rows``, ``cols``: slices) of the synthetic class-mean cube, its WorldView-2-like SRF, the Gaussian PSF
    of FWHM r and the Wald pair they give: (cube, pair dict of data_loader.simulate_pair, r, psf, srf)."""
    cube = load_cube(SYNTHETIC_CUBE)[rows, cols]
    srf = np.loadtxt(SYNTHETIC_SRF, delimiter=",")
    psf = gaussian_psf(r, r / 2.35482)
    return cube, simulate_pair(cube, srf, psf, r), r, psf, srf


def low_rank_case(seed=3, size=20, r=4, bands=16, msi_bands=4, rank=3):
    """A smooth cube with a bright rectangle whose spectra are mixtures of ``rank`` random spectra, a
    block SRF (each MSI band the mean of adjacent HSI bands), a Gaussian PSF of FWHM r, its exact pair:
    (x, y, z, r, psf, srf)."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:size, 0:size] / size
    abundances = np.stack([0.5 + 0.4 * np.sin(2 * np.pi * cols + 1), 0.5 + 0.4 * np.cos(2 * np.pi * rows),
                           0.3 + 0.5 * rows * cols], axis=-1)[..., :rank]
    abundances[5:12, 6:15, 0] += 0.5
    x = abundances @ rng.random((rank, bands))
    srf = np.kron(np.eye(msi_bands), np.ones((bands // msi_bands, 1))) / (bands // msi_bands)
    psf = gaussian_psf(r, r / 2.35482)
    return x, spatial_degrade(x, psf, r), x @ srf, r, psf, srf


def sentinel2_safe(folder, reflectance, transform, offset=-1000, crs="EPSG:32633", resolution="10m"):
    """A Sentinel-2 L2A .SAFE folder in its documented layout, with the bands of one ``resolution`` as lossless
    JPEG 2000 (the four 10 m bands B02, B03, B04, B08, or the nine 20 m ones B02-B07, B8A, B11, B12; stored =
    reflectance x 10000 - offset; 0 = no data) and the MTD_MSIL2A.xml quantification and offsets."""
    import rasterio

    names = {"10m": ("B02", "B03", "B04", "B08"),
             "20m": ("B02", "B03", "B04", "B05", "B06", "B07", "B8A", "B11", "B12")}[resolution]
    safe = folder / "S2B_MSIL2A_20230705T101559_N0509_R065_T33UUU_20230705T131406.SAFE"
    bands = safe / "GRANULE" / "L2A_T33UUU_A033070_20230705T101602" / "IMG_DATA" / f"R{resolution}"
    bands.mkdir(parents=True)
    for k, band in enumerate(names):
        stored = np.round(reflectance[:, :, k] * 10000 - offset).astype(np.uint16)
        stored[0, 0] = 0
        with rasterio.open(bands / f"T33UUU_20230705T101559_{band}_{resolution}.jp2", "w", driver="JP2OpenJPEG",
                           width=stored.shape[1], height=stored.shape[0], count=1, dtype="uint16", crs=crs,
                           transform=transform, QUALITY=100, REVERSIBLE="YES") as ds:
            ds.write(stored, 1)
    offsets = "".join(f'<BOA_ADD_OFFSET band_id="{b}">{offset}</BOA_ADD_OFFSET>' for b in range(13))
    (safe / "MTD_MSIL2A.xml").write_text(
        '<n1:Level-2A_User_Product xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-2A.xsd">'
        "<n1:General_Info><Product_Image_Characteristics><QUANTIFICATION_VALUES_LIST>"
        '<BOA_QUANTIFICATION_VALUE unit="none">10000</BOA_QUANTIFICATION_VALUE></QUANTIFICATION_VALUES_LIST>'
        f"<BOA_ADD_OFFSET_VALUES_LIST>{offsets}</BOA_ADD_OFFSET_VALUES_LIST></Product_Image_Characteristics>"
        "</n1:General_Info></n1:Level-2A_User_Product>")
    return str(safe)


PRISMA_L2D = "PRS_L2D_STD_20230705101559_20230705101603_0001.he5"


def prisma_l2d(folder, hsi, wavelengths, ul_centre, pan=None, vnir_bands=None, flagged=(), scale=(0.0, 1.2),
               epsg=32633, level="L2D"):
    """A PRISMA product in the L2D layout (HDF-EOS5): ``hsi`` (H x W x C reflectance, bands of increasing
    ``wavelengths``) split into VNIR_Cube (the first ``vnir_bands``) and SWIR_Cube, each stored (rows, bands,
    columns) in decreasing wavelength with one undelivered channel (centre 0) among them; ``flagged``: band
    indices flagged unusable; ``pan`` (6H x 6W) the panchromatic Cube; DN = (value - min) / (max - min) x
    65535, 0 in every band for a pixel that is NaN; ``ul_centre``: the (easting, northing) of the upper-left
    pixel's centre, 30 m pixels."""
    import h5py

    rows, cols, bands = hsi.shape
    vnir_bands = bands // 2 if vnir_bands is None else vnir_bands
    low, high = scale
    dn = np.round((np.nan_to_num(hsi, nan=low) - low) / (high - low) * 65535).astype(np.uint16)
    dn[np.isnan(hsi).any(axis=2)] = 0
    path = folder / PRISMA_L2D
    with h5py.File(path, "w") as f:
        swath = f"HDFEOS/SWATHS/PRS_{level}_HCO/Data Fields"
        for name, infix, part in (("VNIR", "Vnir", slice(0, vnir_bands)), ("SWIR", "Swir", slice(vnir_bands, bands))):
            order = np.arange(bands)[part][::-1]  # decreasing wavelength, as delivered
            cube = np.concatenate([np.zeros((rows, 1, cols), np.uint16), np.moveaxis(dn[:, :, order], 2, 1)], axis=1)
            f[f"{swath}/{name}_Cube"] = cube
            f.attrs[f"List_Cw_{infix}"] = np.concatenate([[0.0], wavelengths[order]]).astype(np.float32)
            f.attrs[f"List_Fwhm_{infix}"] = np.concatenate([[0.0], 10.0 + order]).astype(np.float32)
            f.attrs[f"List_Cw_{infix}_Flags"] = np.array([0] + [0 if b in flagged else 1 for b in order], np.int8)
            f.attrs[f"L2Scale{infix}Min"], f.attrs[f"L2Scale{infix}Max"] = low, high
        if pan is not None:
            stored = np.round((np.nan_to_num(pan, nan=low) - low) / (high - low) * 65535).astype(np.uint16)
            stored[np.isnan(pan)] = 0
            f[f"HDFEOS/SWATHS/PRS_{level}_PCO/Data Fields/Cube"] = stored
            f.attrs["L2ScalePanMin"], f.attrs["L2ScalePanMax"] = low, high
        f.attrs["Epsg_Code"] = np.int32(epsg)
        f.attrs["Product_ULcorner_easting"], f.attrs["Product_ULcorner_northing"] = ul_centre
        f.attrs["Product_LRcorner_easting"] = ul_centre[0] + 30.0 * (cols - 1)
        f.attrs["Product_LRcorner_northing"] = ul_centre[1] - 30.0 * (rows - 1)
    return str(path)


def emit_l2a(folder, instrument, wavelengths, glt_x, glt_y, geotransform, good=None, fill=-9999.0):
    """An EMIT L2A reflectance file in its NetCDF-4 layout (written with h5py): ``instrument`` (downtrack x
    crosstrack x bands, NaN written as the fill value), the band parameters, the 1-based GLT and the map
    grid's ``geotransform`` (GDAL order) in EPSG:4326."""
    import h5py
    from rasterio.crs import CRS

    path = folder / "EMIT_L2A_RFL_001_20230316T045133_2307503_005.nc"
    with h5py.File(path, "w") as f:
        f["reflectance"] = np.where(np.isnan(instrument), fill, instrument).astype(np.float32)
        f["reflectance"].attrs["_FillValue"] = np.float32(fill)
        f["sensor_band_parameters/wavelengths"] = np.asarray(wavelengths, np.float32)
        f["sensor_band_parameters/fwhm"] = np.full(len(wavelengths), 8.5, np.float32)
        f["sensor_band_parameters/good_wavelengths"] = (np.ones(len(wavelengths)) if good is None else good).astype(np.uint8)
        f["location/glt_x"], f["location/glt_y"] = glt_x.astype(np.int32), glt_y.astype(np.int32)
        f.attrs["geotransform"] = np.asarray(geotransform, np.float64)
        f.attrs["spatial_ref"] = CRS.from_epsg(4326).to_wkt()
    return str(path)
