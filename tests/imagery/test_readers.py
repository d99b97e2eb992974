"""Tests for imagery/readers.py and imagery/writers.py, and data_loader.load_cube / read_cube on top of them."""

import os
import re

import h5py
import numpy as np
import pytest
import rasterio
import scipy.io
import spectral.io.envi as envi
from affine import Affine
from rasterio.crs import CRS

import data_loader as dl
from data_loader import DataError
from imagery import readers, writers
from imagery.readers import check_wavelength_units, invalid_values, read_image, read_mat_arrays, read_wavelengths


def raises_data_error(path, phrase):
    """pytest.raises for a DataError whose message names ``path`` and matches ``phrase``."""
    return pytest.raises(DataError, match=f"(?s)(?=.*{re.escape(str(path))}).*{phrase}")


def write_matlab_v73(path, **arrays):
    """A MAT-file as MATLAB -v7.3 writes it: the MATLAB header text in a 512-byte userblock, each
    variable stored column-major (so HDF5 holds the transpose) with a MATLAB_class attribute."""
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, array in arrays.items():
            dset = f.create_dataset(name, data=np.ascontiguousarray(np.asarray(array).T))
            dset.attrs["MATLAB_class"] = np.bytes_("double")
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Thu Feb 29 12:00:00 2024 HDF5 schema 1.00 ."
    with open(path, "r+b") as f:
        f.write(header.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM")


@pytest.fixture
def rng():
    return np.random.default_rng(7)


@pytest.fixture
def cube(rng):
    """6 x 5 x 4 float32 cube: H, W and C all differ, so any axis mix-up changes the shape."""
    return rng.random((6, 5, 4)).astype(np.float32)


WL_NM = np.array([450.0, 550.5, 650.25, 850.0])
FWHM_NM = np.array([10.0, 12.5, 15.0, 20.0])


# ----------------------------------------------------------------------------- ENVI

def test_envi_round_trip_in_nm_with_fwhm_nodata_and_band_names(tmp_path, cube):
    hdr = tmp_path / "scene.hdr"
    writers.write_envi(str(hdr), cube, wavelengths=WL_NM, fwhm=FWHM_NM, nodata=-9999, band_names=["b1", "b2", "b3", "b4"])
    assert sorted(os.listdir(tmp_path)) == ["scene.hdr", "scene.img"]  # no temporary files left
    header = envi.read_envi_header(str(hdr))
    assert header["wavelength units"] == "Nanometers" and header["data type"] == "4"  # float32
    for path in (hdr, tmp_path / "scene.img"):  # the header or the data file
        image = read_image(str(path))
        assert image.fmt == "envi" and image.dtype == "float32"
        assert image.data.dtype == np.float64 and image.data.shape == (6, 5, 4)
        np.testing.assert_array_equal(image.data, cube.astype(np.float64))
        np.testing.assert_array_equal(image.wavelengths, WL_NM)
        np.testing.assert_array_equal(image.fwhm, FWHM_NM)
        assert image.nodata == -9999 and image.band_names == ["b1", "b2", "b3", "b4"]


def test_envi_declared_micrometres_are_converted_and_raw_integers_kept(tmp_path, rng):
    raw = rng.integers(0, 60000, (4, 3, 4)).astype(np.uint16)
    hdr = tmp_path / "scene.hdr"
    envi.save_image(str(hdr), raw, dtype=np.uint16, interleave="bil", byteorder="big", ext="",
                    metadata={"wavelength": list(WL_NM / 1000), "fwhm": list(FWHM_NM / 1000),
                              "wavelength units": "Micrometers", "reflectance scale factor": 10000})
    image = read_image(str(tmp_path / "scene"))  # data file without extension, next to scene.hdr
    assert image.dtype == "uint16"
    np.testing.assert_array_equal(image.data, raw)  # no scale factor applied, byte order handled
    np.testing.assert_allclose(image.wavelengths, WL_NM, rtol=1e-12)
    np.testing.assert_allclose(image.fwhm, FWHM_NM, rtol=1e-12)


def test_envi_undeclared_micrometres_are_refused(tmp_path, cube):
    hdr = tmp_path / "scene.hdr"
    envi.save_image(str(hdr), cube, metadata={"wavelength": list(WL_NM / 1000)})
    with raises_data_error(hdr, r"looks like micrometres; give nanometres \(multiply by 1000\)"):
        read_image(str(hdr))


def test_envi_truncated_data_file(tmp_path, cube):
    hdr = tmp_path / "scene.hdr"
    writers.write_envi(str(hdr), cube)
    data = tmp_path / "scene.img"
    data.write_bytes(data.read_bytes()[:100])
    with raises_data_error(data, r"has 100 bytes but its header.*describes 480.*truncated"):
        read_image(str(hdr))


def test_envi_data_file_without_header(tmp_path):
    path = tmp_path / "scene.dat"
    path.write_bytes(b"\0" * 64)
    with raises_data_error(path, r"without its header.*scene\.hdr"):
        read_image(str(path))


def test_envi_header_that_is_not_envi(tmp_path):
    path = tmp_path / "scene.hdr"
    path.write_text("not a header\n")
    with raises_data_error(path, "not a readable ENVI header"):
        read_image(str(path))


# ----------------------------------------------------------------------------- GeoTIFF

def test_geotiff_round_trip_with_crs_transform_nodata_descriptions_and_wavelengths(tmp_path, cube):
    path = tmp_path / "scene.tif"
    transform = Affine(30.0, 0.0, 500000.0, 0.0, -30.0, 4200000.0)
    writers.write_geotiff(str(path), cube, "EPSG:32616", transform, nodata=-9999,
                          band_names=["blue", "green", "red", "nir"], wavelengths=WL_NM, fwhm=FWHM_NM)
    assert os.listdir(tmp_path) == ["scene.tif"]
    with rasterio.open(path) as ds:
        assert ds.profile["tiled"] and ds.profile["compress"] == "deflate" and ds.dtypes[0] == "float32"
        assert ds.tags(2) == {"wavelength": "550.5", "fwhm": "12.5", "wavelength_units": "nm"}
    image = read_image(str(path))
    assert image.fmt == "geotiff" and image.dtype == "float32"
    np.testing.assert_array_equal(image.data, cube.astype(np.float64))
    assert image.crs == CRS.from_epsg(32616) and image.transform == transform and image.nodata == -9999
    assert image.band_names == ["blue", "green", "red", "nir"]
    np.testing.assert_array_equal(image.wavelengths, WL_NM)
    np.testing.assert_array_equal(image.fwhm, FWHM_NM)


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_geotiff_wavelengths_from_gdal_envi_domain_in_micrometres(tmp_path, cube):
    path = tmp_path / "scene.tif"
    with rasterio.open(path, "w", driver="GTiff", width=5, height=6, count=4, dtype="float32") as dst:
        dst.write(cube.transpose(2, 0, 1))
        dst.update_tags(ns="ENVI", wavelength="{0.45, 0.5505, 0.65025, 0.85}", wavelength_units="Micrometers")
    image = read_image(str(path))
    np.testing.assert_allclose(image.wavelengths, WL_NM, rtol=1e-12)
    assert image.fwhm is None and image.band_names is None and image.crs is None


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_geotiff_wavelengths_from_gdal_imagery_domain(tmp_path, cube):
    path = tmp_path / "scene.tif"
    with rasterio.open(path, "w", driver="GTiff", width=5, height=6, count=4, dtype="float32") as dst:
        dst.write(cube.transpose(2, 0, 1))
        for b, (w, f) in enumerate(zip(WL_NM, FWHM_NM), 1):
            dst.update_tags(b, ns="IMAGERY", CENTRAL_WAVELENGTH_UM=str(w / 1000), FWHM_UM=str(f / 1000))
    image = read_image(str(path))
    np.testing.assert_allclose(image.wavelengths, WL_NM, rtol=1e-12)
    np.testing.assert_allclose(image.fwhm, FWHM_NM, rtol=1e-12)


def test_geotiff_truncated(tmp_path, cube):
    path = tmp_path / "scene.tif"
    writers.write_geotiff(str(path), np.tile(cube, (20, 20, 1)), None, None)
    path.write_bytes(path.read_bytes()[:300])
    with raises_data_error(path, "not a readable GeoTIFF"):
        read_image(str(path))


# ----------------------------------------------------------------------------- MATLAB, HDF5, npy

def test_v73_written_by_matlab_is_transposed_back(tmp_path, rng):
    data = rng.random((6, 5, 4))
    path = tmp_path / "scene.mat"
    write_matlab_v73(path, hsi=data, wl=WL_NM[None, :])
    with h5py.File(path, "r") as f:
        assert f["hsi"].shape == (4, 5, 6)
    image = read_image(str(path))
    assert image.fmt == "mat73" and image.dtype == "float64"
    np.testing.assert_array_equal(image.data, data)
    arrays = read_mat_arrays(str(path))
    np.testing.assert_array_equal(arrays["hsi"], data)
    assert arrays["wl"].shape == (1, 4)


@pytest.mark.parametrize("name", ["scene.mat", "scene.h5"])
def test_hdf5_written_by_h5py_is_read_in_stored_order(tmp_path, rng, name):
    data = rng.random((6, 5, 4)).astype(np.float32)
    path = tmp_path / name
    with h5py.File(path, "w") as f:
        f.create_dataset("cube", data=data)
        f.create_dataset("meta/wavelengths", data=WL_NM)
    image = read_image(str(path))
    assert image.fmt == "hdf5" and image.dtype == "float32" and image.data.shape == (6, 5, 4)
    np.testing.assert_array_equal(image.data, data)
    arrays = read_mat_arrays(str(path))
    assert set(arrays) == {"cube", "meta/wavelengths"}
    np.testing.assert_array_equal(arrays["cube"], data)


def test_v5_ref_and_single_cube(tmp_path, rng):
    ref, other = rng.random((6, 5, 4)), rng.random((6, 5, 4))
    path = tmp_path / "ref.mat"
    scipy.io.savemat(path, {"REF": ref, "other": other})
    image = read_image(str(path))
    assert image.fmt == "mat"
    np.testing.assert_array_equal(image.data, ref)
    np.testing.assert_array_equal(read_image(str(path), key="other").data, other)
    single = tmp_path / "single.mat"
    scipy.io.savemat(single, {"paviaU": ref.astype(np.uint16), "wl": WL_NM[None, :]})
    image = read_image(str(single))
    assert image.dtype == "uint16"
    np.testing.assert_array_equal(image.data, ref.astype(np.uint16))


def test_npy(tmp_path, cube):
    path = tmp_path / "scene.npy"
    np.save(path, cube)
    image = read_image(str(path))
    assert image.fmt == "npy" and image.dtype == "float32" and image.wavelengths is None
    np.testing.assert_array_equal(image.data, cube)


def test_pan_image_accepted_only_with_allow_2d(tmp_path, rng):
    pan = rng.random((8, 7))
    path = tmp_path / "pan.npy"
    np.save(path, pan)
    image = read_image(str(path), role="HR-MSI", allow_2d=True)
    assert image.data.shape == (8, 7, 1)
    np.testing.assert_array_equal(image.data[:, :, 0], pan)
    with raises_data_error(path, r"expected an H x W x C array.*for the HR-MSI, got shape \(8, 7\).*H x W x 1"):
        read_image(str(path), role="HR-MSI")


def test_pan_in_mat_is_chosen_and_vectors_ignored(tmp_path, rng):
    pan = rng.random((8, 7))
    path = tmp_path / "pan.mat"
    scipy.io.savemat(path, {"pan": pan, "wl": np.array([[650.0, 700.0, 750.0]]), "col": np.ones((8, 1))})
    np.testing.assert_array_equal(read_image(str(path), allow_2d=True).data[:, :, 0], pan)
    with raises_data_error(path, r"no 3-D numeric array \(the HR-MSI\).*'col'.*'pan' \(8 x 7 double\).*'wl'"):
        read_image(str(path), role="HR-MSI")


@pytest.mark.parametrize("writer", ["v5", "v73"])
def test_vector_next_to_the_cube_is_not_a_candidate(tmp_path, rng, writer):
    data = rng.random((6, 5, 4))
    path = tmp_path / "scene.mat"
    arrays = {"hsi": data, "wavelength": WL_NM[None, :], "fwhm": FWHM_NM[:, None]}
    if writer == "v5":
        scipy.io.savemat(path, arrays)
    else:
        write_matlab_v73(path, **arrays)
    np.testing.assert_array_equal(read_image(str(path), allow_2d=True).data, data)


@pytest.mark.parametrize("writer", ["v5", "v73"])
@pytest.mark.parametrize("name", ["wavelengths", "wavelength"])
def test_mat_band_centres_and_fwhm_beside_the_cube_are_read(tmp_path, rng, writer, name):
    data = rng.random((6, 5, 4))
    path = tmp_path / "scene.mat"
    arrays = {"REF": data, name: WL_NM[None, :], "fwhm": FWHM_NM[:, None], "bands": np.arange(3.0, 7.0)[None, :]}
    if writer == "v5":
        scipy.io.savemat(path, arrays)
    else:
        write_matlab_v73(path, **arrays)
    image = read_image(str(path))
    assert image.wavelengths.dtype == np.float64 and image.wavelengths.shape == (4,)
    np.testing.assert_array_equal(image.wavelengths, WL_NM)
    np.testing.assert_array_equal(image.fwhm, FWHM_NM)
    cube = dl.read_cube(str(path))
    np.testing.assert_array_equal(cube.data, data)
    np.testing.assert_array_equal(cube.wavelengths, WL_NM)


def test_hdf5_band_centres_are_those_beside_the_image_in_its_group(tmp_path, rng):
    data = rng.random((6, 5, 4))
    path = tmp_path / "scene.h5"
    with h5py.File(path, "w") as f:
        f["scene/data"], f["scene/wavelengths"] = data, WL_NM
        f["wavelengths"] = WL_NM[:3]  # another image's, not this one's
    image = read_image(str(path), key="scene/data")
    np.testing.assert_array_equal(image.wavelengths, WL_NM)
    assert image.fwhm is None and image.fmt == "hdf5"


@pytest.mark.parametrize("arrays, phrase", [
    ({"wavelengths": WL_NM[None, :3]}, r"'wavelengths' holds 3 values but the reference cube 'REF' has 4 bands; "
                                       r"store one band centre \(nm\) per band, in band order, or rename the variable"),
    ({"wavelength": WL_NM, "fwhm": FWHM_NM[:2]}, r"'fwhm' holds 2 values but the reference cube 'REF' has 4 bands; "
                                                 r"store one FWHM \(nm\) per band"),
    ({"wavelengths": np.stack([WL_NM, FWHM_NM])}, r"'wavelengths' \(2 x 4 double\) is not a numeric vector; store "
                                                   r"one band centre \(nm\) per band of the reference cube 'REF' as a "
                                                   r"1 x 4 vector"),
    ({"wavelengths": WL_NM / 1000}, r"looks like micrometres; give nanometres"),
    ({"wavelengths": WL_NM[::-1]}, r"band centres must increase strictly"),
])
def test_mat_band_centres_that_do_not_fit_the_cube_are_refused(tmp_path, rng, arrays, phrase):
    path = tmp_path / "scene.mat"
    scipy.io.savemat(path, {"REF": rng.random((6, 5, 4)), **arrays})
    with raises_data_error(path, phrase):
        dl.load_cube(str(path))


def test_mat_band_centres_of_a_channels_first_cube_say_so(tmp_path, rng):
    path = tmp_path / "scene.mat"
    scipy.io.savemat(path, {"REF": rng.random((4, 6, 5)), "wavelengths": WL_NM})
    with raises_data_error(path, r"'wavelengths' holds 4 values but the reference cube 'REF' has 5 bands.*"
                                 r"read as 4 x 6 x 5 \(H x W x C\).*looks channels-first"):
        dl.load_cube(str(path))


# ----------------------------------------------------------------------------- errors

def test_ambiguous_variables_name_the_key_option_and_that_fix_works(tmp_path, rng):
    a, b = rng.random((6, 5, 4)), rng.random((3, 2, 4))
    path = tmp_path / "pair.mat"
    scipy.io.savemat(path, {"a": a, "b": b})
    with raises_data_error(path, r"several 3-D arrays \('a', 'b'\), cannot tell which is the LR-HSI; "
                                 r"pass --lr_hsi_key NAME.*'a' \(6 x 5 x 4 double\), 'b' \(3 x 2 x 4 double\)"):
        read_image(str(path), role="LR-HSI", key_option="--lr_hsi_key")
    np.testing.assert_array_equal(read_image(str(path), key="b", key_option="--lr_hsi_key").data, b)


def test_missing_key_lists_variables_and_names_the_option(tmp_path, rng):
    path = tmp_path / "scene.mat"
    write_matlab_v73(path, hsi=rng.random((6, 5, 4)))
    with raises_data_error(path, r"no variable 'REF' \(given with --hr_msi_key\); the file has: 'hsi' \(6 x 5 x 4 double\)"):
        read_image(str(path), key="REF", key_option="--hr_msi_key")


def test_key_for_a_format_without_variables(tmp_path, cube):
    path = tmp_path / "scene.npy"
    np.save(path, cube)
    with raises_data_error(path, "--lr_hsi_key REF names a variable.*drop --lr_hsi_key"):
        read_image(str(path), key="REF", key_option="--lr_hsi_key")


def test_matlab_char_and_logical_variables_are_not_candidates(tmp_path, rng):
    data = rng.random((6, 5, 4))
    path = tmp_path / "scene.mat"
    write_matlab_v73(path, cube=data)
    with h5py.File(path, "r+") as f:
        name = f.create_dataset("sensor", data=np.array([[ord(c)] for c in "AVIRIS"], dtype=np.uint16))
        name.attrs["MATLAB_class"] = np.bytes_("char")
        mask = f.create_dataset("mask", data=np.ones((4, 5, 6), dtype=np.uint8))
        mask.attrs["MATLAB_class"] = np.bytes_("logical")
    np.testing.assert_array_equal(read_image(str(path)).data, data)
    assert read_mat_arrays(str(path))["sensor"].tolist() == ["AVIRIS"]


def test_text_renamed_mat(tmp_path):
    path = tmp_path / "notes.mat"
    path.write_text("band,wavelength\n1,450\n" * 20)
    with raises_data_error(path, "not a readable MATLAB file"):
        read_image(str(path))
    with raises_data_error(path, "not a readable MATLAB file"):
        read_mat_arrays(str(path))


def test_text_renamed_h5(tmp_path):
    path = tmp_path / "notes.h5"
    path.write_text("not hdf5\n" * 20)
    with raises_data_error(path, "not a readable HDF5 file"):
        read_image(str(path))


@pytest.mark.parametrize("name", ["v73.mat", "v5.mat", "scene.npy"])
def test_truncated_files(tmp_path, rng, name):
    path = tmp_path / name
    data = rng.random((20, 20, 8))
    if name == "v73.mat":
        write_matlab_v73(path, REF=data)
        phrase = r"not a readable MATLAB v7\.3 \(HDF5\) file.*truncated"
    elif name == "v5.mat":
        scipy.io.savemat(path, {"REF": data})
        phrase = "not a readable MATLAB file"
    else:
        np.save(path, data)
        phrase = r"not a readable \.npy file"
    path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])
    with raises_data_error(path, phrase):
        read_image(str(path))


def test_unknown_extension_lists_supported_formats(tmp_path):
    path = tmp_path / "scene.jp2"
    path.write_bytes(b"\0" * 8)
    with raises_data_error(path, r"unknown image format '\.jp2'; supported formats: MATLAB.*ENVI.*GeoTIFF"):
        read_image(str(path))


def test_missing_file_names_role(tmp_path):
    with raises_data_error(tmp_path / "x.npy", "LR-HSI file not found"):
        read_image(str(tmp_path / "x.npy"), role="LR-HSI")


@pytest.mark.parametrize("array, phrase", [
    (np.zeros((0, 5, 4)), r"is empty \(shape \(0, 5, 4\)\)"),
    (np.array([["a", "b"], ["c", "d"]]), "not a real numeric array"),
    (np.ones((3, 3, 2), dtype=complex), "not a real numeric array"),
    (np.ones((3, 3, 2), dtype=bool), "not a real numeric array"),
    (np.ones((2, 3, 3, 2)), r"got shape \(2, 3, 3, 2\)"),
])
def test_bad_arrays(tmp_path, array, phrase):
    path = tmp_path / "bad.npy"
    np.save(path, array)
    with raises_data_error(path, phrase):
        read_image(str(path), allow_2d=True)


def test_pickled_npy_is_refused(tmp_path):
    path = tmp_path / "objects.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with raises_data_error(path, r"not a readable \.npy file"):
        read_image(str(path))


# ----------------------------------------------------------------------------- invalid values

def test_invalid_values_nan_inf_nodata_and_fill():
    data = np.full((2, 3, 2), 0.5)
    data[0, 0, 0] = np.nan
    data[0, 1, 1] = -np.inf
    data[1, 0, 0] = -9999
    data[1, 2, 1] = np.float32(-3.4e38)
    expected = np.zeros(data.shape, dtype=bool)
    expected[0, 0, 0] = expected[0, 1, 1] = expected[1, 0, 0] = expected[1, 2, 1] = True
    np.testing.assert_array_equal(invalid_values(data, nodata=-9999), expected)
    expected[1, 0, 0] = False  # without the declared nodata, -9999 is a value
    np.testing.assert_array_equal(invalid_values(data), expected)
    assert readers.FILL_MAGNITUDE == 1e30


def test_invalid_values_nodata_rounded_to_float32():
    data = np.array([0.1, 0.2], dtype=np.float32).astype(np.float64)[None, None, :]
    np.testing.assert_array_equal(invalid_values(data, nodata=0.1)[0, 0], [True, False])


# ----------------------------------------------------------------------------- wavelengths

def test_read_wavelengths_header_semicolons_decimal_commas_and_fwhm(tmp_path):
    path = tmp_path / "bands.csv"
    path.write_text("# exported\ncentre;fwhm\n450;10\n550,5;12,5\n650,25;15\n850;20\n")
    centres, fwhm = read_wavelengths(str(path), 4)
    np.testing.assert_array_equal(centres, WL_NM)
    np.testing.assert_array_equal(fwhm, FWHM_NM)


@pytest.mark.parametrize("text", ["450\n550.5\n650.25\n850\n", "450, 550.5, 650.25, 850\n",
                                  "wavelength\tfwhm\n450\t10\n550.5\t10\n650.25\t10\n850\t10\n"])
def test_read_wavelengths_text_layouts(tmp_path, text):
    path = tmp_path / "bands.txt"
    path.write_text(text)
    centres, fwhm = read_wavelengths(str(path), 4)
    np.testing.assert_array_equal(centres, WL_NM)
    assert fwhm is None or np.all(fwhm == 10)


def test_read_wavelengths_npy_and_mat(tmp_path, rng):
    np.save(tmp_path / "wl.npy", np.stack([WL_NM, FWHM_NM], axis=1))
    centres, fwhm = read_wavelengths(str(tmp_path / "wl.npy"), 4)
    np.testing.assert_array_equal(fwhm, FWHM_NM)
    scipy.io.savemat(tmp_path / "wl.mat", {"wavelength": WL_NM[None, :], "cube": rng.random((3, 3, 4)),
                                           "other": np.arange(3.0)})
    centres, fwhm = read_wavelengths(str(tmp_path / "wl.mat"), 4)
    np.testing.assert_array_equal(centres, WL_NM)
    assert fwhm is None


def test_read_wavelengths_wrong_length(tmp_path):
    path = tmp_path / "bands.txt"
    path.write_text("450\n550\n650\n")
    with raises_data_error(path, "3 wavelengths for an image of 4 bands"):
        read_wavelengths(str(path), 4)


def test_read_wavelengths_micrometres(tmp_path):
    path = tmp_path / "bands.txt"
    path.write_text("0.45\n0.55\n0.65\n0.85\n")
    with raises_data_error(path, r"looks like micrometres; give nanometres \(multiply by 1000\)"):
        read_wavelengths(str(path), 4)


def test_read_wavelengths_non_numeric_line(tmp_path):
    path = tmp_path / "bands.txt"
    path.write_text("wavelength\n450\nn/a\n650\n")
    with raises_data_error(path, "line 3 is not numeric"):
        read_wavelengths(str(path), 3)


@pytest.mark.parametrize("values, phrase", [
    ([450, np.nan, 650], "band 1 is nan"),
    ([450, 650, 640], r"increase strictly, but band 2 \(640\) is not above band 1 \(650\)"),
])
def test_check_wavelength_units_refuses(values, phrase):
    with pytest.raises(DataError, match=f"^src.txt: .*{phrase}"):
        check_wavelength_units(values, "src.txt")


def test_check_wavelength_units_returns_float64_nm():
    out = check_wavelength_units([400, 500], "x")
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [400.0, 500.0])


# ----------------------------------------------------------------------------- load_cube

def test_load_cube_refuses_fill_and_nodata_with_count_kinds_and_first_index(tmp_path, cube):
    cube[1, 2, 3] = -9999
    cube[4, 0, 1] = -9999
    cube[5, 4, 0] = np.float32(-3.4e38)
    hdr = tmp_path / "scene.hdr"
    writers.write_envi(str(hdr), cube, nodata=-9999)
    with raises_data_error(hdr, r"has 3 invalid values \(1 fill values of magnitude above 1e\+30, 2 equal to the "
                                r"no-data value -9999\), the first at index \(h, w, c\) = \(1, 2, 3\) \(value -9999\); "
                                r"fill or remove them, give --nodata V for an undeclared fill value, or pass "
                                r"--mask_invalid"):
        dl.load_cube(str(hdr))
    # a given nodata replaces the declared one
    with raises_data_error(hdr, r"has 1 invalid value \(1 fill values.*\(5, 4, 0\)"):
        dl.load_cube(str(hdr), nodata=-1)


def test_load_cube_mask_invalid_returns_nan_there(tmp_path, cube):
    data = cube.astype(np.float64)
    data[0, 1, 2] = np.nan
    data[3, 3, 0] = -9999
    path = tmp_path / "scene.npy"
    np.save(path, data)
    out = dl.load_cube(str(path), nodata=-9999, mask_invalid=True)
    invalid = np.isnan(out)
    assert np.argwhere(invalid).tolist() == [[0, 1, 2], [3, 3, 0]]
    np.testing.assert_array_equal(out[~invalid], data[~invalid])


def test_load_cube_key_option_is_cube_key(tmp_path, rng):
    path = tmp_path / "two.mat"
    scipy.io.savemat(path, {"a": rng.random((3, 3, 2)), "b": rng.random((3, 3, 2))})
    with raises_data_error(path, "reference cube; pass --cube_key NAME"):
        dl.load_cube(str(path))


# ----------------------------------------------------------------------------- writers

@pytest.mark.parametrize("fmt", ["geotiff", "envi"])
def test_interrupted_write_leaves_the_earlier_file_and_no_temporary(tmp_path, cube, monkeypatch, fmt):
    path = tmp_path / ("scene.tif" if fmt == "geotiff" else "scene.hdr")

    def write(data):
        if fmt == "geotiff":
            writers.write_geotiff(str(path), data, None, None)
        else:
            writers.write_envi(str(path), data)

    write(cube)
    before = sorted(os.listdir(tmp_path))

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(writers.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write(cube + 1)
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == before
    np.testing.assert_array_equal(read_image(str(path)).data, cube)


def test_writers_check_lengths_and_envi_path(tmp_path, cube):
    with pytest.raises(ValueError, match="wavelengths has 3 entries for a cube of 4 bands"):
        writers.write_geotiff(str(tmp_path / "x.tif"), cube, None, None, wavelengths=[1, 2, 3])
    with pytest.raises(ValueError, match="must be the header, ending in .hdr"):
        writers.write_envi(str(tmp_path / "x.img"), cube)
    with pytest.raises(ValueError, match="cannot contain"):
        writers.write_envi(str(tmp_path / "x.hdr"), cube, band_names=["a,b", "c", "d", "e"])
    assert os.listdir(tmp_path) == []


def test_band_centres_are_read_from_gdal_band_descriptions(tmp_path):
    """GDAL band descriptions holding one centre with its unit ("420.0 nm", "Band 2 (0.665 um)")."""
    path = str(tmp_path / "described.tif")
    writers.write_geotiff(path, np.ones((4, 4, 4)), "EPSG:32616", Affine(30.0, 0, 0, 0, -30.0, 0),
                  band_names=["420.0 nm", "Band 2 (0.665 um)", "B8A 865nm", "1.61 microns"])
    np.testing.assert_allclose(read_image(path).wavelengths, [420.0, 665.0, 865.0, 1610.0])
    writers.write_geotiff(path, np.ones((4, 4, 2)), "EPSG:32616", Affine(30.0, 0, 0, 0, -30.0, 0), band_names=["red", "nir"])
    assert read_image(path).wavelengths is None  # names without a centre are not guessed at


def test_envi_georeferencing_round_trips_and_gdal_reads_it(tmp_path):
    transform = Affine(30.0, 0, 500010.0, 0, -30.0, 4200000.0)
    path = str(tmp_path / "geo.hdr")
    writers.write_envi(path, np.ones((4, 5, 3)), crs="EPSG:32616", transform=transform)
    with rasterio.open(str(tmp_path / "geo.img")) as ds:  # GDAL's ENVI driver, an independent reader
        assert ds.crs == CRS.from_epsg(32616) and ds.transform == transform
    image = read_image(path)
    assert image.crs == CRS.from_epsg(32616) and image.transform == transform


def test_an_envi_map_info_of_a_geographic_grid_is_in_degrees(tmp_path):
    """An EMIT-like grid in EPSG:4326: the header says degrees, not metres, and GDAL and our reader agree."""
    transform = Affine(3e-4, 0, -95.0, 0, -3e-4, 30.0)
    path = str(tmp_path / "geographic.hdr")
    writers.write_envi(path, np.ones((4, 5, 3)), crs="EPSG:4326", transform=transform)
    assert "units=Degrees" in (tmp_path / "geographic.hdr").read_text()
    with rasterio.open(str(tmp_path / "geographic.img")) as ds:
        assert ds.crs == CRS.from_epsg(4326) and ds.transform.almost_equals(transform)
    assert read_image(path).transform.almost_equals(transform)


def test_an_envi_utm_map_info_without_wkt_gives_the_utm_crs(tmp_path):
    writers.write_envi(str(tmp_path / "utm.hdr"), np.ones((4, 5, 3)))
    header = tmp_path / "utm.hdr"
    header.write_text(header.read_text() + "map info = {UTM, 2, 2, 368030.0, 5809970.0, 30.0, 30.0, 33, North, "
                                           "WGS-84, units=Meters}\n")
    image = read_image(str(header))
    assert image.crs == CRS.from_epsg(32633) and image.transform == Affine(30.0, 0, 368000.0, 0, -30.0, 5810000.0)
