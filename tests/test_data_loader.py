"""Tests for data_loader.py: degradation model, SRF handling, cube/SRF readers, the Dataset."""

import re
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
import scipy.signal
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from conftest import SYNTHETIC_CUBE  # noqa: E402

import data_loader as dl  # noqa: E402
from model import degradation  # noqa: E402
from config import get_args  # noqa: E402
from data_loader import DataError  # noqa: E402

# The true PSF for scale 5, sigma = 5 / 2.35482, as printed by the original UDALN run (MATLAB fspecial).
MATLAB_PSF_5_ROWS = np.array([
    [0.02481711, 0.03461351, 0.03867323, 0.03461351, 0.02481711],
    [0.03461351, 0.04827698, 0.05393925, 0.04827698, 0.03461351],
    [0.03867323, 0.05393925, 0.06026562, 0.05393925, 0.03867323],
])
MATLAB_PSF_5 = np.vstack([MATLAB_PSF_5_ROWS, MATLAB_PSF_5_ROWS[1::-1]])


# ----------------------------------------------------------------------------- helpers

def write_v73(path, name, array):
    """Write ``array`` (numpy order) as variable ``name`` of a MATLAB v7.3 (HDF5) MAT-file.

    MATLAB stores column-major, so HDF5 holds the transposed array; the 512-byte userblock starts
    with the 128-byte MATLAB header (116 bytes text, 8 bytes subsystem offset, version, endian).
    """
    with h5py.File(path, "w", userblock_size=512) as f:
        dset = f.create_dataset(name, data=np.ascontiguousarray(np.asarray(array).T))
        dset.attrs["MATLAB_class"] = np.bytes_("double")
    text = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Thu Feb 29 12:00:00 2024 HDF5 schema 1.00 ."
    header = text.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM"
    assert len(header) == 128
    with open(path, "r+b") as f:
        f.write(header)


def write_v5(path, **arrays):
    scipy.io.savemat(path, arrays)


def write_srf_csv(path, srf):
    np.savetxt(path, srf, delimiter=",", fmt="%.10f",
               header="rows = HSI bands, columns = MSI bands\nsynthetic SRF, written by the tests")


def convolve_reference(cube, psf, r):
    """Independent spatial degradation: per-band 2-D convolution ('valid'), then keep every r-th pixel."""
    return np.stack([scipy.signal.convolve2d(cube[:, :, c], psf, mode="valid")[::r, ::r]
                     for c in range(cube.shape[2])], axis=2)


def fspecial_gaussian(size, sigma):
    """MATLAB's fspecial('gaussian', size, sigma) transcribed step by step."""
    p = (size - 1) / 2.0
    x, y = np.meshgrid(np.arange(-p, p + 1), np.arange(-p, p + 1))
    h = np.exp(-(x * x + y * y) / (2 * sigma * sigma))
    h[h < np.finfo(float).eps * h.max()] = 0
    return h / h.sum()


def contiguous_srf(rng, bands=12, supports=((0, 4), (3, 8), (7, 11))):
    """Random positive SRF (bands x len(supports)), zero outside each inclusive support."""
    srf = np.zeros((bands, len(supports)))
    for j, (lo, hi) in enumerate(supports):
        srf[lo:hi + 1, j] = rng.uniform(0.2, 1.0, hi - lo + 1)
    return srf


def make_data_root(tmp_path, cubes, srf, data_name="toy", srf_ext=".csv"):
    """Data folder ``tmp_path/data/<data_name>/`` holding ``cubes`` ({file name: array}, written as
    .npy or v5 .mat under key REF) and ``tmp_path/srf/<data_name><srf_ext>``; returns the CLI arguments."""
    folder = tmp_path / "data" / data_name
    folder.mkdir(parents=True)
    for name, cube in cubes.items():
        if name.endswith(".npy"):
            np.save(folder / name, cube)
        else:
            write_v5(folder / name, REF=cube)
    srf_dir = tmp_path / "srf"
    srf_dir.mkdir()
    if srf is not None:
        srf_path = srf_dir / (data_name + srf_ext)
        if srf_ext == ".npy":
            np.save(srf_path, srf)
        else:
            write_srf_csv(srf_path, srf)
    return ["--default_datapath", str(tmp_path / "data"), "--sp_root_path", str(srf_dir),
            "--data_name", data_name, "--device", "cpu"]


def raises_data_error(path, phrase):
    """pytest.raises for a DataError whose message names ``path`` and contains ``phrase``."""
    return pytest.raises(DataError, match=f"(?s)(?=.*{re.escape(str(path))}).*{phrase}")


# ----------------------------------------------------------------------------- fixtures

@pytest.fixture
def rng():
    return np.random.default_rng(20240229)


@pytest.fixture
def cube(rng):
    """23 x 27 x 12 reference in [0, 1): neither side is a multiple of 5."""
    return rng.random((23, 27, 12))


@pytest.fixture
def srf(rng):
    return contiguous_srf(rng)


@pytest.fixture
def toy_args(tmp_path, cube, srf):
    return make_data_root(tmp_path, {"scene.npy": cube}, srf)


# ----------------------------------------------------------------------------- gaussian_psf

@pytest.mark.parametrize("size, sigma", [(5, 5 / 2.35482), (8, 8 / 2.35482), (4, 1.3), (3, 0.7)])
def test_gaussian_psf_matches_independent_fspecial_formula(size, sigma):
    np.testing.assert_allclose(degradation.gaussian_psf(size, sigma), fspecial_gaussian(size, sigma),
                               rtol=0, atol=1e-15)


@pytest.mark.parametrize("size, sigma", [(5, 5 / 2.35482), (8, 8 / 2.35482), (4, 1.3)])
def test_gaussian_psf_sums_to_one_and_is_symmetric(size, sigma):
    h = degradation.gaussian_psf(size, sigma)
    assert h.shape == (size, size)
    assert h.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(h, h.T, atol=1e-17)
    np.testing.assert_allclose(h, h[::-1, :], atol=1e-17)
    np.testing.assert_allclose(h, h[:, ::-1], atol=1e-17)
    assert np.unravel_index(h.argmax(), h.shape) == ((size - 1) // 2, (size - 1) // 2)


def test_gaussian_psf_reproduces_matlab_numbers_of_the_original_run():
    np.testing.assert_allclose(degradation.gaussian_psf(5, 5 / 2.35482), MATLAB_PSF_5, rtol=0, atol=1e-8)


def test_gaussian_psf_zeroes_values_below_eps_times_max():
    h = degradation.gaussian_psf(21, 0.5)
    raw = np.exp(-(10.0 ** 2 + 10.0 ** 2) / (2 * 0.5 ** 2))
    assert raw > 0  # the corner is representable ...
    assert h[0, 0] == 0 and h[-1, -1] == 0 and h[0, -1] == 0  # ... but below eps * max, so zeroed
    assert h[10, 10] > 0
    assert h.sum() == pytest.approx(1.0)


# ----------------------------------------------------------------------------- spatial_degrade

@pytest.mark.parametrize("r, shape", [(5, (20, 25, 3)), (5, (23, 27, 3)), (4, (16, 12, 2)),
                                      (4, (18, 15, 2)), (2, (7, 9, 4))])
def test_spatial_degrade_equals_convolve2d_valid_subsampled_for_gaussian_psf(rng, r, shape):
    cube = rng.random(shape)
    psf = degradation.gaussian_psf(r, r / 2.35482)
    out = degradation.spatial_degrade(cube, psf, r)
    assert out.shape == (shape[0] // r, shape[1] // r, shape[2])
    np.testing.assert_allclose(out, convolve_reference(cube, psf, r), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("r, shape", [(5, (20, 25, 3)), (5, (23, 27, 3)), (3, (9, 12, 2)), (3, (10, 14, 2))])
def test_spatial_degrade_is_a_convolution_for_a_non_symmetric_kernel(rng, r, shape):
    cube = rng.random(shape)
    psf = rng.random((r, r))
    psf /= psf.sum()
    out = degradation.spatial_degrade(cube, psf, r)
    np.testing.assert_allclose(out, convolve_reference(cube, psf, r), rtol=1e-12, atol=1e-14)
    # The reference is discriminating: correlation (the flipped kernel) gives a different answer.
    assert not np.allclose(out, convolve_reference(cube, psf[::-1, ::-1], r))


def test_spatial_degrade_rejects_a_psf_smaller_than_the_scale_or_not_square(rng):
    with pytest.raises(ValueError, match="smaller than the scale factor 5"):
        degradation.spatial_degrade(rng.random((10, 10, 2)), np.ones((3, 3)) / 9, 5)
    with pytest.raises(ValueError, match="square K x K"):
        degradation.spatial_degrade(rng.random((10, 10, 2)), np.ones((5, 6)) / 30, 5)


@pytest.mark.parametrize("size, shape", [(5, (19, 16, 2)), (7, (18, 21, 2)), (4, (12, 12, 1)), (8, (20, 13, 2))])
def test_a_psf_wider_than_r_reads_beyond_the_block_with_the_edges_replicated(rng, size, shape):
    # K x K windows every r = 3 pixels from (3 a - (K - 3) // 2, 3 b - (K - 3) // 2), the cube's edge pixels
    # repeated beyond its borders; against scipy's convolution, one band at a time.
    r, cube, psf = 3, rng.random(shape), rng.random((size, size))
    before, after = degradation.psf_padding(size, r)
    assert (before, after) == ((size - r) // 2, size - r - (size - r) // 2)
    h, w = shape[0] // r * r, shape[1] // r * r
    padded = np.pad(cube[:h, :w], [(before, after), (before, after), (0, 0)], mode="edge")
    expected = np.stack([scipy.signal.convolve2d(padded[..., b], psf, "valid")[::r, ::r] for b in range(shape[2])], -1)
    out = degradation.spatial_degrade(cube, psf, r)
    assert out.shape == (shape[0] // r, shape[1] // r, shape[2])
    np.testing.assert_allclose(out, expected, rtol=1e-12)


def test_the_simulations_shifted_psf_is_the_gaussian_moved_by_the_shift():
    r, sigma = 3, 3 / 2.35482
    assert np.array_equal(degradation.simulation_psf(r, sigma), degradation.gaussian_psf(3, sigma))  # the papers' PSF
    for shift in (1, -1, 2):
        psf = degradation.simulation_psf(r, sigma, size=5, shift=shift)
        assert psf.shape == (5 + 2 * abs(shift),) * 2 and psf.sum() == pytest.approx(1.0)
        # Where the LR pixel reads (correlation form): the Gaussian's centre of mass, HR pixels from the
        # block's centre, is the shift along both axes.
        reads = psf[::-1, ::-1]
        offsets = np.arange(psf.shape[0]) - degradation.psf_padding(psf.shape[0], r)[0] - (r - 1) / 2
        assert reads.sum(1) @ offsets == pytest.approx(shift) and reads.sum(0) @ offsets == pytest.approx(shift)
        nonzero = np.argwhere(reads > 0)
        assert nonzero.max(0) - nonzero.min(0) == pytest.approx([4, 4])  # still the 5 x 5 Gaussian
    with pytest.raises(ValueError, match="smaller than the scale factor 3"):
        degradation.simulation_psf(r, sigma, size=2)


def test_on_support_places_a_psf_on_the_footprint_a_wider_one_shares():
    # An r x r PSF on a 7 x 7 support at r = 3 is the centre block: both read the same 3 x 3 block there.
    box = np.full((3, 3), 1 / 9)
    placed = degradation.on_support(box, 7, 3)
    assert placed.sum() == pytest.approx(1.0) and np.array_equal(placed[2:5, 2:5], box)
    cube = np.random.default_rng(1).random((15, 12, 2))
    np.testing.assert_allclose(degradation.spatial_degrade(cube, placed, 3), degradation.spatial_degrade(cube, box, 3), rtol=1e-12)
    # 4 x 4 at r = 3 reads one pixel after the block, 6 x 6 one before and two after: offset 1.
    assert np.array_equal(degradation.on_support(np.ones((4, 4)), 6, 3)[1:5, 1:5], np.ones((4, 4)))


def test_a_simulation_with_a_shifted_psf_degrades_the_lr_hsi_with_it(tmp_path):
    args = get_args(["--scale_factor", "3", "--sim_psf_size", "5", "--sim_psf_shift", "1"])
    data = dl.Dataset(args)
    assert data.PSF.shape == (7, 7)
    np.testing.assert_array_equal(data.PSF, degradation.simulation_psf(3, args.sigma, 5, 1))
    item = data[0]
    reference = item["hhsi"].numpy().transpose(1, 2, 0).astype(np.float64)
    np.testing.assert_allclose(item["lhsi"].numpy().transpose(1, 2, 0), degradation.spatial_degrade(reference, data.PSF, 3),
                               rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- crop_to_multiple

def test_crop_to_multiple_follows_upstream_split_rule():
    img = np.arange(13 * 17 * 2).reshape(13, 17, 2)
    out = dl.crop_to_multiple(img, 5)
    # upstream: img[int(rh/2):h-(rh-int(rh/2)), int(rw/2):w-(rw-int(rw/2))], rh = 3, rw = 2
    np.testing.assert_array_equal(out, img[1:11, 1:16])
    assert out.shape == (10, 15, 2)


@pytest.mark.parametrize("h, w, r", [(23, 27, 5), (9, 9, 4), (31, 8, 8), (14, 19, 3)])
def test_crop_to_multiple_generic_sizes(h, w, r):
    img = np.arange(h * w).reshape(h, w, 1)
    rh, rw = h % r, w % r
    expected = img[int(rh / 2):h - (rh - int(rh / 2)), int(rw / 2):w - (rw - int(rw / 2))]
    out = dl.crop_to_multiple(img, r)
    np.testing.assert_array_equal(out, expected)
    assert out.shape[0] % r == 0 and out.shape[1] % r == 0


def test_crop_to_multiple_leaves_multiple_sizes_unchanged(rng):
    img = rng.random((20, 15, 3))
    np.testing.assert_array_equal(dl.crop_to_multiple(img, 5), img)


# ----------------------------------------------------------------------------- spectral model

def test_spectral_degrade_equals_explicit_band_sum(rng, cube, srf):
    srf = dl.normalise_srf(srf)
    out = degradation.spectral_degrade(cube, srf)
    expected = np.zeros(cube.shape[:2] + (srf.shape[1],))
    for m in range(srf.shape[1]):
        for c in range(srf.shape[0]):
            expected[:, :, m] += cube[:, :, c] * srf[c, m]
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(out, np.einsum("hwc,cm->hwm", cube, srf), rtol=1e-12)


def test_normalise_srf_columns_sum_to_one(srf):
    out = dl.normalise_srf(srf)
    np.testing.assert_allclose(out.sum(axis=0), 1.0, rtol=1e-12)
    np.testing.assert_allclose(out, srf / srf.sum(axis=0), rtol=1e-12)


def test_validate_srf_returns_normalised_copy(srf):
    out = dl.validate_srf(srf, 12, "x.csv")
    np.testing.assert_allclose(out.sum(axis=0), 1.0, rtol=1e-12)
    np.testing.assert_allclose(out, srf / srf.sum(axis=0), rtol=1e-12)


def test_support_range_matches_first_and_last_positive_row(rng):
    srf = contiguous_srf(rng, bands=20, supports=((0, 0), (2, 9), (5, 19), (19, 19), (0, 19)))
    expected = np.array([[np.where(srf[:, j] > 0)[0][0], np.where(srf[:, j] > 0)[0][-1]]
                         for j in range(srf.shape[1])])
    np.testing.assert_array_equal(dl.support_range(srf), expected)
    np.testing.assert_array_equal(expected, [[0, 0], [2, 9], [5, 19], [19, 19], [0, 19]])


WAVELENGTHS = np.linspace(400.0, 1000.0, 61)  # 10 nm steps
BANDS = [(450, 510), (510, 580), (630, 690), (770, 895)]


@pytest.mark.parametrize("shape", ["rect", "gaussian"])
def test_srf_from_bands_columns_sum_to_one_and_supports_are_contiguous(shape):
    srf = dl.srf_from_bands(WAVELENGTHS, BANDS, shape=shape)
    assert srf.shape == (61, 4)
    assert np.all(srf >= 0)
    np.testing.assert_allclose(srf.sum(axis=0), 1.0, rtol=1e-12)
    for j in range(srf.shape[1]):
        rows = np.flatnonzero(srf[:, j] > 0)
        np.testing.assert_array_equal(rows, np.arange(rows[0], rows[-1] + 1))
    dl.validate_srf(srf, 61, "generated")  # accepted by the loader's own checks


def test_srf_from_bands_rect_is_uniform_over_band_centres_inside_the_band():
    srf = dl.srf_from_bands(WAVELENGTHS, BANDS, shape="rect")
    for j, (lo, hi) in enumerate(BANDS):
        inside = (WAVELENGTHS >= lo) & (WAVELENGTHS <= hi)
        np.testing.assert_allclose(srf[:, j], inside / inside.sum(), rtol=1e-12)


def test_srf_from_bands_gaussian_peaks_at_band_centre_within_one_fwhm():
    srf = dl.srf_from_bands(WAVELENGTHS, BANDS, shape="gaussian")
    for j, (lo, hi) in enumerate(BANDS):
        centre, fwhm = (lo + hi) / 2, hi - lo
        sigma = fwhm / 2.35482
        kept = np.abs(WAVELENGTHS - centre) <= fwhm
        expected = np.where(kept, np.exp(-0.5 * ((WAVELENGTHS - centre) / sigma) ** 2), 0.0)
        np.testing.assert_allclose(srf[:, j], expected / expected.sum(), rtol=1e-12)
        assert abs(WAVELENGTHS[srf[:, j].argmax()] - centre) <= 5.0


def test_srf_from_bands_band_without_hsi_centre_raises():
    with pytest.raises(ValueError, match=r"\[1\].*no HSI band centre"):
        dl.srf_from_bands(WAVELENGTHS, [(450, 510), (401, 409)], shape="rect")


def test_srf_from_bands_rejects_bad_band_pairs_and_shape():
    with pytest.raises(ValueError, match="low < high"):
        dl.srf_from_bands(WAVELENGTHS, [(510, 450)])
    with pytest.raises(ValueError, match="shape"):
        dl.srf_from_bands(WAVELENGTHS, BANDS, shape="triangle")


# ----------------------------------------------------------------------------- load_cube

def test_load_cube_matlab_v5_with_ref_key(tmp_path, rng):
    cube = rng.random((7, 5, 3))
    path = tmp_path / "scene.mat"
    write_v5(path, REF=cube, other=rng.random((7, 5, 3)), label=np.array([[1.0, 2.0]]))
    out = dl.load_cube(str(path))
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, cube)


def test_load_cube_single_3d_array_under_another_name(tmp_path, rng):
    cube = rng.random((7, 5, 3)).astype(np.float32)
    path = tmp_path / "scene.mat"
    write_v5(path, paviaU=cube, wavelengths=np.linspace(400, 900, 3))
    out = dl.load_cube(str(path))
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, cube.astype(np.float64))


def test_load_cube_explicit_key(tmp_path, rng):
    a, b = rng.random((7, 5, 3)), rng.random((6, 4, 3))
    path = tmp_path / "scene.mat"
    write_v5(path, REF=a, Ori_H=b)
    np.testing.assert_array_equal(dl.load_cube(str(path), key="Ori_H"), b)
    np.testing.assert_array_equal(dl.load_cube(str(path)), a)


def test_load_cube_explicit_key_missing_names_file_and_variables(tmp_path, rng):
    path = tmp_path / "scene.mat"
    write_v5(path, REF=rng.random((7, 5, 3)))
    with raises_data_error(path, "no variable 'Ori_H'.*REF"):
        dl.load_cube(str(path), key="Ori_H")


def test_load_cube_matlab_v73_transposes_back_to_h_w_c(tmp_path, rng):
    cube = rng.random((7, 5, 3))
    path = tmp_path / "scene_v73.mat"
    write_v73(path, "REF", cube)
    # the file really is a v7.3 MAT-file: MATLAB header in the userblock, HDF5 behind it
    raw = path.read_bytes()
    assert raw.startswith(b"MATLAB 7.3 MAT-file") and raw[126:128] == b"IM"
    assert h5py.is_hdf5(path)
    with h5py.File(path, "r") as f:
        assert f["REF"].shape == (3, 5, 7)
    with pytest.raises(NotImplementedError):
        scipy.io.loadmat(str(path))  # scipy cannot read it: the HDF5 path must be taken
    out = dl.load_cube(str(path))
    assert out.shape == (7, 5, 3)
    np.testing.assert_array_equal(out, cube)


def test_load_cube_matlab_v73_single_cube_under_other_name(tmp_path, rng):
    cube = rng.random((6, 9, 4))
    path = tmp_path / "scene_v73.mat"
    write_v73(path, "hsi", cube)
    np.testing.assert_array_equal(dl.load_cube(str(path)), cube)


def test_load_cube_npy(tmp_path, rng):
    cube = rng.random((7, 5, 3))
    path = tmp_path / "scene.npy"
    np.save(path, cube)
    np.testing.assert_array_equal(dl.load_cube(str(path)), cube)


def test_load_cube_npy_not_3d_raises(tmp_path, rng):
    path = tmp_path / "flat.npy"
    np.save(path, rng.random((7, 5)))
    with raises_data_error(path, r"expected an H x W x C array"):
        dl.load_cube(str(path))


def test_load_cube_missing_file_raises(tmp_path):
    path = tmp_path / "nowhere.mat"
    with raises_data_error(path, "cube file not found"):
        dl.load_cube(str(path))


def test_load_cube_unknown_extension_raises(tmp_path):
    path = tmp_path / "scene.xyz"
    path.write_bytes(b"\x00" * 16)
    with raises_data_error(path, "unknown image format '.xyz'.*GeoTIFF"):
        dl.load_cube(str(path))


def test_load_cube_unreadable_mat_raises(tmp_path):
    path = tmp_path / "broken.mat"
    path.write_bytes(b"this is not a MAT-file at all" * 10)
    with raises_data_error(path, "not a readable MATLAB file"):
        dl.load_cube(str(path))


def test_load_cube_mat_without_3d_array_lists_variables(tmp_path, rng):
    path = tmp_path / "no_cube.mat"
    write_v5(path, gt=rng.random((7, 5)), wl=np.arange(3.0))
    with raises_data_error(path, r"no 3-D numeric array.*variables.*'gt'.*'wl'"):
        dl.load_cube(str(path))


def test_load_cube_mat_with_two_3d_arrays_and_no_ref_is_ambiguous(tmp_path, rng):
    path = tmp_path / "two_cubes.mat"
    write_v5(path, a=rng.random((7, 5, 3)), b=rng.random((7, 5, 3)))
    with raises_data_error(path, r"several 3-D arrays.*cannot tell which"):
        dl.load_cube(str(path))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("fmt", ["npy", "v5", "v73"])
def test_load_cube_rejects_nan_and_inf(tmp_path, rng, bad, fmt):
    cube = rng.random((7, 5, 3))
    cube[2, 4, 1] = bad
    path = tmp_path / ("scene.npy" if fmt == "npy" else "scene.mat")
    if fmt == "npy":
        np.save(path, cube)
    elif fmt == "v5":
        write_v5(path, REF=cube)
    else:
        write_v73(path, "REF", cube)
    with raises_data_error(path, r"1 invalid value \(1 NaN or Inf\).*\(2, 4, 1\)"):
        dl.load_cube(str(path))


# ----------------------------------------------------------------------------- load_srf / find_srf_file

def test_load_srf_shipped_houston18_xls():
    srf = dl.load_srf(str(ROOT / "data" / "spectral_response" / "houston18.xls")).response
    assert srf.shape == (46, 8)
    assert srf.dtype == np.float64
    assert np.all(np.isfinite(srf)) and np.all(srf >= 0)
    assert np.all(srf.sum(axis=0) > 0)


def test_load_srf_csv_with_comment_header(tmp_path, srf):
    path = tmp_path / "toy.csv"
    write_srf_csv(path, srf)
    assert path.read_text().startswith("#")
    np.testing.assert_allclose(dl.load_srf(str(path)).response, srf, rtol=0, atol=1e-10)


def test_load_srf_whitespace_txt(tmp_path, srf):
    path = tmp_path / "toy.txt"
    np.savetxt(path, srf, fmt="%.12f", header="HSI bands x MSI bands, whitespace separated")
    np.testing.assert_allclose(dl.load_srf(str(path)).response, srf, rtol=0, atol=1e-12)


def test_load_srf_single_column_txt_is_2d(tmp_path, rng):
    column = rng.random((5, 1))
    path = tmp_path / "one.txt"
    np.savetxt(path, column)
    out = dl.load_srf(str(path)).response
    assert out.shape == (5, 1)
    np.testing.assert_allclose(out, column)


def test_load_srf_npy(tmp_path, srf):
    path = tmp_path / "toy.npy"
    np.save(path, srf)
    np.testing.assert_array_equal(dl.load_srf(str(path)).response, srf)


def test_load_srf_mat_v5(tmp_path, srf):
    path = tmp_path / "toy.mat"
    write_v5(path, R=srf)
    np.testing.assert_array_equal(dl.load_srf(str(path)).response, srf)


def test_load_srf_mat_v73_transposes_back(tmp_path, srf):
    path = tmp_path / "toy.mat"
    write_v73(path, "R", srf)
    out = dl.load_srf(str(path)).response
    assert out.shape == srf.shape
    np.testing.assert_array_equal(out, srf)


def test_load_srf_missing_file_raises(tmp_path):
    path = tmp_path / "missing.csv"
    with raises_data_error(path, "spectral response file not found"):
        dl.load_srf(str(path))


def test_load_srf_non_numeric_csv_raises(tmp_path):
    path = tmp_path / "words.csv"
    path.write_text("a,b\nc,d\n")
    with raises_data_error(path, "line 2, column 1 holds 'c', which is not a number"):
        dl.load_srf(str(path))


def test_find_srf_file_returns_the_single_candidate(tmp_path, srf):
    write_srf_csv(tmp_path / "toy.csv", srf)
    np.save(tmp_path / "other.npy", srf)
    assert dl.find_srf_file(str(tmp_path), "toy") == str(tmp_path / "toy.csv")


def test_find_srf_file_none_names_the_path(tmp_path):
    with raises_data_error(tmp_path / "toy", "no spectral response file"):
        dl.find_srf_file(str(tmp_path), "toy")


def test_find_srf_file_two_candidates_raises(tmp_path, srf):
    write_srf_csv(tmp_path / "toy.csv", srf)
    np.save(tmp_path / "toy.npy", srf)
    with raises_data_error(tmp_path, "several spectral response files"):
        dl.find_srf_file(str(tmp_path), "toy")


# ----------------------------------------------------------------------------- Dataset

def test_dataset_items_have_expected_keys_shapes_and_dtype(toy_args):
    data = dl.Dataset(get_args(toy_args))
    assert len(data) == 1
    item = data[0]
    assert set(item) == {"lhsi", "hmsi", "hhsi", "lrmsi_frommsi", "lrmsi_fromlrhsi",
                         "factor", "hr_valid", "lr_valid", "out_valid", "info"}
    assert item["factor"] == 1.0 and item["hr_valid"] is None  # in [0, 1] and no no-data pixel
    assert item["info"]["crop"] == {"top": 1, "bottom": 2, "left": 1, "right": 1}
    # 23 x 27 cropped to 20 x 25 for r = 5
    expected = {"hhsi": (12, 20, 25), "lhsi": (12, 4, 5), "hmsi": (3, 20, 25),
                "lrmsi_frommsi": (3, 4, 5), "lrmsi_fromlrhsi": (3, 4, 5)}
    for key, shape in expected.items():
        assert isinstance(item[key], torch.Tensor)
        assert item[key].dtype == torch.float32
        assert tuple(item[key].shape) == shape, key


def test_dataset_simulates_walds_protocol_from_cropped_cube(toy_args, cube, srf):
    data = dl.Dataset(get_args(toy_args))
    item = {k: v.numpy().transpose(1, 2, 0).astype(np.float64) for k, v in data[0].items()
            if isinstance(v, torch.Tensor)}
    cropped = cube[1:21, 1:26]  # rh = 3 -> rows 1:21, rw = 2 -> cols 1:26
    psf = fspecial_gaussian(5, 5 / 2.35482)
    srf_n = srf / srf.sum(axis=0)
    np.testing.assert_allclose(item["hhsi"], cropped, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(item["lhsi"], convolve_reference(cropped, psf, 5), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(item["hmsi"], np.einsum("hwc,cm->hwm", cropped, srf_n), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(item["lrmsi_frommsi"], item["lrmsi_fromlrhsi"], rtol=0, atol=1e-5)


def test_dataset_attributes(toy_args, srf):
    data = dl.Dataset(get_args(toy_args))
    assert data.hsi_channel == 12 and data.msi_channel == 3
    assert data.sp_matrix.shape == (12, 3)
    np.testing.assert_allclose(data.sp_matrix.sum(axis=0), 1.0, rtol=1e-12)
    np.testing.assert_allclose(data.sp_matrix, srf / srf.sum(axis=0), rtol=1e-9)
    np.testing.assert_array_equal(data.sp_range, [[0, 4], [3, 8], [7, 11]])
    np.testing.assert_allclose(data.PSF, MATLAB_PSF_5, rtol=0, atol=1e-8)


def test_dataset_scale_factor_changes_crop_and_psf(tmp_path, cube, srf):
    args = make_data_root(tmp_path, {"scene.npy": cube}, srf)
    data = dl.Dataset(get_args(args + ["--scale_factor", "4"]))
    assert data.PSF.shape == (4, 4)
    assert tuple(data[0]["hhsi"].shape) == (12, 20, 24)
    assert tuple(data[0]["lhsi"].shape) == (12, 5, 6)
    np.testing.assert_allclose(data[0]["hhsi"].numpy().transpose(1, 2, 0), cube[1:21, 1:25], rtol=1e-6)


def test_dataset_loads_every_cube_sorted_by_name(tmp_path, rng, srf):
    cubes = {"c_scene.npy": rng.random((15, 10, 12)), "a_scene.mat": rng.random((10, 20, 12)),
             "b_scene.npy": rng.random((12, 11, 12))}
    args = make_data_root(tmp_path, cubes, srf)
    (tmp_path / "data" / "toy" / "notes.txt").write_text("not a cube")
    data = dl.Dataset(get_args(args))
    names = ["a_scene.mat", "b_scene.npy", "c_scene.npy"]
    assert [Path(p).name for p in data.imgpath_list] == names
    assert len(data) == 3
    for item, name in zip(data, names):
        expected = dl.crop_to_multiple(cubes[name], 5).transpose(2, 0, 1)
        np.testing.assert_allclose(item["hhsi"].numpy(), expected, rtol=1e-6)


def test_dataset_reads_matlab_v73_cube(tmp_path, rng, srf):
    cube = rng.random((10, 15, 12))
    args = make_data_root(tmp_path, {}, srf)
    write_v73(tmp_path / "data" / "toy" / "scene.mat", "REF", cube)
    data = dl.Dataset(get_args(args))
    np.testing.assert_allclose(data[0]["hhsi"].numpy(), cube.transpose(2, 0, 1), rtol=1e-6)


@pytest.fixture
def noise_args(tmp_path, rng, srf):
    """150 x 150 x 12 cube: 30 x 30 LR-HSI pixels per band, enough for a stable SNR estimate."""
    return make_data_root(tmp_path, {"scene.npy": rng.random((150, 150, 12))}, srf)


def measured_snr_db(signal, noisy):
    """Per-band 10 log10(mean signal^2 / mean noise^2), averaged over bands (C x H x W arrays)."""
    noise = noisy - signal
    per_band = 10 * np.log10(np.mean(signal ** 2, axis=(1, 2)) / np.mean(noise ** 2, axis=(1, 2)))
    return per_band.mean()


def test_dataset_snr_hsi_adds_noise_at_requested_level_to_lhsi_only(noise_args):
    clean = dl.Dataset(get_args(noise_args))[0]
    noisy = dl.Dataset(get_args(noise_args + ["--snr_hsi", "30"]))[0]
    assert not torch.equal(noisy["lhsi"], clean["lhsi"])
    for key in ("hmsi", "hhsi", "lrmsi_frommsi"):
        assert torch.equal(noisy[key], clean[key]), key
    snr = measured_snr_db(clean["lhsi"].double().numpy(), noisy["lhsi"].double().numpy())
    assert abs(snr - 30) < 0.5


def test_dataset_snr_msi_adds_noise_to_hmsi_only(noise_args):
    clean = dl.Dataset(get_args(noise_args))[0]
    noisy = dl.Dataset(get_args(noise_args + ["--snr_msi", "35"]))[0]
    assert torch.equal(noisy["lhsi"], clean["lhsi"])
    assert not torch.equal(noisy["hmsi"], clean["hmsi"])
    snr = measured_snr_db(clean["hmsi"].double().numpy(), noisy["hmsi"].double().numpy())
    assert abs(snr - 35) < 0.5


def test_dataset_noise_is_reproducible_for_a_seed(noise_args):
    first = dl.Dataset(get_args(noise_args + ["--snr_hsi", "30", "--seed", "7"]))[0]
    again = dl.Dataset(get_args(noise_args + ["--snr_hsi", "30", "--seed", "7"]))[0]
    other = dl.Dataset(get_args(noise_args + ["--snr_hsi", "30", "--seed", "8"]))[0]
    assert torch.equal(first["lhsi"], again["lhsi"])
    assert not torch.equal(first["lhsi"], other["lhsi"])


@pytest.mark.parametrize("r", [5, 8])
def test_dataset_embedded_default_is_the_houston_crop_at_the_papers_scales(monkeypatch, r):
    monkeypatch.chdir(ROOT)
    data = dl.Dataset(get_args(["--scale_factor", str(r)]))
    assert len(data) == 1
    assert data.hsi_channel == 46 and data.msi_channel == 8
    item = data[0]
    assert item["info"]["crop"] == {"top": 0, "bottom": 0, "left": 0, "right": 0}
    assert tuple(item["hhsi"].shape) == (46, 120, 120)
    assert tuple(item["lhsi"].shape) == (46, 120 // r, 120 // r)
    assert tuple(item["hmsi"].shape) == (8, 120, 120)
    np.testing.assert_allclose(data.sp_matrix.sum(axis=0), 1.0, rtol=1e-9)
    torch.testing.assert_close(item["lrmsi_frommsi"], item["lrmsi_fromlrhsi"], rtol=0, atol=1e-5)


@pytest.mark.parametrize("name, distinct_share", [("houston18", 1.0), ("indian_pines_roi70", 1.0),
                                                   ("cave_toy", 1.0), ("salinas_a", 0.65)])
def test_embedded_scenes_are_sensor_pixels_not_class_means(name, distinct_share):
    """A real scene has about as many distinct spectra as pixels (Salinas-A: neighbours duplicated by the
    product's nearest-neighbour resampling, 4798 of 7138); the synthetic class-mean cube has 17."""
    mat = scipy.io.loadmat(ROOT / "data" / name / f"{name}.mat")
    cube = mat["REF"]
    spectra = cube.reshape(-1, cube.shape[2])
    assert len(np.unique(spectra, axis=0)) >= distinct_share * len(spectra)
    assert cube.dtype == np.float32 and cube.max() == 1 and cube.min() >= 0  # data/README.md: peak 1
    assert mat["wavelengths"].size == cube.shape[2] and np.all(np.diff(mat["wavelengths"].ravel()) > 0)


def test_synthetic_fixture_is_the_class_mean_cube():
    spectra = dl.load_cube(SYNTHETIC_CUBE).reshape(-1, 68)
    assert len(np.unique(spectra, axis=0)) == 17


def test_houston_srf_fits_the_contests_bands_3_to_48():
    """houston18.xls's responses, placed on the contest's 48 band centres (380-1050 nm), land closest to
    WorldView-2's band centres when its 46 rows are bands 3-48, as data/houston18 keeps them."""
    sys.path.insert(0, str(ROOT / "data"))
    from build_real_scenes import houston_band_fit
    srf = dl.load_srf(str(ROOT / "data" / "spectral_response" / "houston18.xls")).response
    fit = houston_band_fit(srf)
    assert min(fit, key=fit.get) == 3 and fit[3] < 10 < fit[2]
    bands = scipy.io.loadmat(ROOT / "data" / "houston18" / "houston18.mat")["bands"].ravel()
    assert bands.tolist() == list(range(3, 49))


# ----------------------------------------------------------------------------- bad input

def test_dataset_missing_data_folder(tmp_path, srf):
    args = make_data_root(tmp_path, {}, srf)
    args[args.index("--data_name") + 1] = "absent"
    with raises_data_error(tmp_path / "data" / "absent", "data folder not found"):
        dl.Dataset(get_args(args))


def test_dataset_folder_without_cube(tmp_path, srf):
    args = make_data_root(tmp_path, {}, srf)
    (tmp_path / "data" / "toy" / "readme.txt").write_text("no cube here")
    with raises_data_error(tmp_path / "data" / "toy", r"no cube file"):
        dl.Dataset(get_args(args))


def test_dataset_missing_srf_file(tmp_path, cube):
    args = make_data_root(tmp_path, {"scene.npy": cube}, None)
    with raises_data_error(tmp_path / "srf" / "toy", "no spectral response file"):
        dl.Dataset(get_args(args))


def test_dataset_srf_rows_differ_from_hsi_bands(tmp_path, cube, rng):
    srf = contiguous_srf(rng, bands=10, supports=((0, 4), (5, 9)))
    args = make_data_root(tmp_path, {"scene.npy": cube}, srf)
    with raises_data_error(tmp_path / "srf" / "toy.csv", "10 rows but the HSI cube has 12 bands"):
        dl.Dataset(get_args(args))


def test_dataset_transposed_srf_gets_a_hint(tmp_path, cube, srf):
    args = make_data_root(tmp_path, {"scene.npy": cube}, srf.T)
    with raises_data_error(tmp_path / "srf" / "toy.csv", "transposed"):
        dl.Dataset(get_args(args))


def test_dataset_msi_not_fewer_bands_than_hsi(tmp_path, rng):
    args = make_data_root(tmp_path, {"scene.npy": rng.random((10, 10, 3))}, np.eye(3) + 0.1)
    with raises_data_error(tmp_path / "srf" / "toy.csv", "fewer bands than the HSI"):
        dl.Dataset(get_args(args))


def test_dataset_negative_srf_value(tmp_path, cube, srf):
    srf[6, 1] = -0.25
    args = make_data_root(tmp_path, {"scene.npy": cube}, srf)
    with raises_data_error(tmp_path / "srf" / "toy.csv", r"negative SRF value -0\.25 at HSI band 6, MSI band 1"):
        dl.Dataset(get_args(args))


def test_dataset_all_zero_srf_column(tmp_path, cube, srf):
    srf[:, 2] = 0
    args = make_data_root(tmp_path, {"scene.npy": cube}, srf)
    with raises_data_error(tmp_path / "srf" / "toy.csv", r"column\(s\) \[2\] are all zero"):
        dl.Dataset(get_args(args))


def test_dataset_non_contiguous_srf_support(tmp_path, cube, srf):
    srf[5, 1] = 0  # support of band 1 was 3..8
    args = make_data_root(tmp_path, {"scene.npy": cube}, srf)
    with raises_data_error(tmp_path / "srf" / "toy.csv", r"MSI band 1 is not contiguous.*SpeDnet"):
        dl.Dataset(get_args(args))


def test_dataset_nan_in_srf(tmp_path, cube, srf):
    srf[2, 0] = np.nan
    args = make_data_root(tmp_path, {"scene.npy": cube}, srf, srf_ext=".npy")
    with raises_data_error(tmp_path / "srf" / "toy.npy", "NaN or Inf"):
        dl.Dataset(get_args(args))


@pytest.mark.parametrize("srf_case, phrase", [
    ("rows", "rows but the HSI cube has"),
    ("cols", "fewer bands than the HSI"),
    ("negative", "negative SRF value"),
    ("zero", "all zero"),
    ("gap", "not contiguous.*SpeDnet"),
    ("ndim", "2-D table"),
])
def test_validate_srf_errors_name_the_path(srf, srf_case, phrase):
    bad = srf.copy()
    if srf_case == "rows":
        bad = bad[:10]
    elif srf_case == "cols":
        bad = np.ones((12, 12))
    elif srf_case == "negative":
        bad[0, 0] = -1
    elif srf_case == "zero":
        bad[:, 0] = 0
    elif srf_case == "gap":
        bad[5, 1] = 0
    else:
        bad = bad[:, :, None]
    with raises_data_error("/some/where/toy.csv", phrase):
        dl.validate_srf(bad, 12, "/some/where/toy.csv")


def test_dataset_cube_smaller_than_scale_factor(tmp_path, rng, srf):
    args = make_data_root(tmp_path, {"thin.npy": rng.random((4, 30, 12))}, srf)
    with raises_data_error(tmp_path / "data" / "toy" / "thin.npy", "4 x 30 pixels.*smaller than 2 x 2 .* factor 5"):
        dl.Dataset(get_args(args))


def test_dataset_refuses_a_one_pixel_lr_image(tmp_path, rng, srf):
    """--scale_factor 145 on a 145 x 145 cube would train on a 1 x 1 LR-HSI (it ran for 136 s)."""
    args = make_data_root(tmp_path, {"scene.npy": rng.random((145, 145, 12))}, srf)
    with raises_data_error(tmp_path / "data" / "toy" / "scene.npy", "smaller than 2 x 2"):
        dl.Dataset(get_args(args + ["--scale_factor", "145"]))


def test_dataset_cubes_with_different_band_counts(tmp_path, rng, srf):
    cubes = {"a.npy": rng.random((10, 10, 12)), "b.npy": rng.random((10, 10, 11))}
    args = make_data_root(tmp_path, cubes, srf)
    data = dl.Dataset(get_args(args))  # only the selected cube is read when the data set is built
    with raises_data_error(tmp_path / "data" / "toy" / "b.npy", "11 bands.*12"):
        data[1]


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("name", ["scene.npy", "scene.mat"])
def test_dataset_rejects_cube_with_nan_or_inf(tmp_path, cube, srf, bad, name):
    cube[3, 7, 2] = bad
    args = make_data_root(tmp_path, {name: cube}, srf)
    with raises_data_error(tmp_path / "data" / "toy" / name, r"NaN or Inf.*\(3, 7, 2\)"):
        dl.Dataset(get_args(args))


def test_dataset_mat_without_cube_names_file(tmp_path, rng, srf):
    args = make_data_root(tmp_path, {}, srf)
    path = tmp_path / "data" / "toy" / "labels.mat"
    write_v5(path, gt=rng.random((10, 10)))
    with raises_data_error(path, r"no 3-D numeric array.*'gt'"):
        dl.Dataset(get_args(args))


@pytest.mark.parametrize("value", ["1", "0", "-3"])
def test_get_args_rejects_scale_factor_below_two(capsys, value):
    with pytest.raises(SystemExit) as exc:
        get_args(["--scale_factor", value, "--device", "cpu"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "scale_factor" in err and "at least 2" in err


# ----------------------------------------------------------------------------- radiometric mismatch

def test_radiometric_mismatch_is_gain_times_power_plus_offset(rng):
    msi = rng.random((6, 5, 3))
    got = dl.radiometric_mismatch(msi, gamma=0.9, gain_jitter=0.05, offset_jitter=0.02,
                                  rng=np.random.default_rng(7))
    draws = np.random.default_rng(7)
    gain, offset = 1 + 0.05 * draws.uniform(-1, 1, 3), 0.02 * draws.uniform(-1, 1, 3)
    np.testing.assert_allclose(got, gain * msi ** 0.9 + offset)
    assert np.all(np.abs(gain - 1) <= 0.05) and np.all(np.abs(offset) <= 0.02)


def test_dataset_mismatch_changes_only_the_msi_and_keeps_its_lr_version_consistent(tmp_path, cube, srf):
    argv = make_data_root(tmp_path, {"scene.npy": cube}, srf)
    plain = dl.Dataset(get_args(argv))[0]
    mismatched = dl.Dataset(get_args(argv + ["--msi_gamma", "0.9", "--msi_gain_jitter", "0.05",
                                             "--msi_offset_jitter", "0.02"]))[0]
    for key in ("lhsi", "hhsi", "lrmsi_fromlrhsi"):
        torch.testing.assert_close(plain[key], mismatched[key])
    assert not torch.allclose(plain["hmsi"], mismatched["hmsi"])
    hmsi = mismatched["hmsi"].permute(1, 2, 0).double().numpy()
    expected = degradation.spatial_degrade(hmsi, degradation.gaussian_psf(5, 5 / 2.35482), 5)
    np.testing.assert_allclose(mismatched["lrmsi_frommsi"].permute(1, 2, 0).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_a_label_map_beside_the_cube_is_not_read_when_the_cube_is_selected(tmp_path, rng, srf):
    """A ground-truth .mat (2-D label map) next to the cube used to break the run even when
    --image_index selected the cube: only the selected file is read."""
    args = make_data_root(tmp_path, {"a_gt.mat": rng.integers(0, 16, (10, 10)).astype(np.uint8),
                                     "scene.npy": rng.random((10, 10, 12))}, srf)
    data = dl.Dataset(get_args(args + ["--image_index", "1"]))
    assert data.hsi_channel == 12 and len(data) == 2
    with raises_data_error(tmp_path / "data" / "toy" / "a_gt.mat", "3-D"):
        data[0]


def test_a_reference_cube_with_an_undeclared_fill_block_is_refused_or_masked(tmp_path):
    """An 8 x 8 block of -9999 in a .mat reference cube: refused by default (it was fused as data and scored
    -66.95 dB), masked with --mask_invalid."""
    cube = np.random.default_rng(0).random((16, 16, 5))
    cube[4:12, 4:12] = -9999.0
    path = str(tmp_path / "cube.mat")
    scipy.io.savemat(path, {"REF": cube})
    with pytest.raises(DataError, match=r"320 invalid values \(320 undeclared fill values .*\(value -9999\)"):
        dl.load_cube(path)
    masked = dl.load_cube(path, mask_invalid=True)
    assert np.isnan(masked[4:12, 4:12]).all() and np.isfinite(masked).sum() == 16 * 16 * 5 - 320
