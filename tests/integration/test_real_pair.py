"""Real pairs end to end (--lr_hsi/--hr_msi): georeferenced outputs in the input's units, no-data
masks, the scaling rule, the reduced-resolution protocol, and the errors a user meets."""
import json
import os

import numpy as np
import pytest
import rasterio
import scipy.io
import scipy.signal
import torch
from affine import Affine
from conftest import SYNTHETIC_CUBE, TINY_SCHEDULE

import fusion.run
import train_all_special
from config import get_args
from data_loader import load_cube, srf_from_bands
from evaluation import evaluate
from fusion.pair import Pair, reduced_resolution_pair
from imagery.readers import read_image
from imagery.sensors import band_ranges, sensor_bands
from imagery.writers import write_envi, write_geotiff
from model.degradation import gaussian_psf, spatial_degrade

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
R = 4
WAVELENGTHS = np.linspace(400.0, 2500.0, 224)[:68]
HR = Affine(20.0, 0, 499000.0, 0, -20.0, 4478000.0)
CRS = "EPSG:32616"
TINY = TINY_SCHEDULE + ["--eval_every", "30", "--device", "cpu"]


@pytest.fixture(scope="module")
def scene():
    """A 40 x 40 x 68 crop of the synthetic class-mean cube, its LR-HSI (r = 4, Gaussian PSF) and WorldView-2 HR-MSI."""
    reference = load_cube(SYNTHETIC_CUBE)[50:90, 50:90]
    srf = srf_from_bands(WAVELENGTHS, band_ranges("worldview2"))
    return reference, spatial_degrade(reference, gaussian_psf(R, R / 2.35482), R), reference @ srf


def geotiff_pair(folder, lr, hr, lr_nodata=None, hr_nodata=None, dtype="float32"):
    os.makedirs(folder, exist_ok=True)
    lr_path, hr_path = os.path.join(folder, "scene_lr.tif"), os.path.join(folder, "scene_hr.tif")
    write_geotiff(lr_path, lr, CRS, HR @ Affine.scale(R), nodata=lr_nodata, wavelengths=WAVELENGTHS, dtype=dtype)
    write_geotiff(hr_path, hr, CRS, HR, nodata=hr_nodata, dtype=dtype)
    return ["--lr_hsi", lr_path, "--hr_msi", hr_path, "--msi_sensor", "worldview2"]


def fuse(tmp_path, pair_argv, *extra):
    args = get_args(pair_argv + TINY + ["--checkpoints_dir", str(tmp_path / "checkpoints"), *extra])
    run = fusion.run.fuse(args)
    return run, json.load(open(run.file("metrics.json")))


@pytest.mark.parametrize("method", ["udaln", "pfs2c2", "uds2c2"])
def test_a_geotiff_pair_gives_a_georeferenced_output_in_the_input_units(tmp_path, scene, method):
    reference, lr, hr = scene
    argv = geotiff_pair(tmp_path / "pair", np.round(lr * 10000), np.round(hr * 10000), lr_nodata=-9999,
                        dtype="int16")
    np.save(tmp_path / "reference.npy", reference)
    run, metrics = fuse(tmp_path, argv, "--method", method, "--reference", str(tmp_path / "reference.npy"))
    assert os.path.basename(run.path).startswith(("scene_lr_4_", f"{method}_scene_lr_4_"))
    out = read_image(run.file("My_Out.tif"))
    assert out.data.shape == (40, 40, 68) and out.crs == CRS and out.transform == HR
    assert out.nodata == -9999 and np.allclose(out.wavelengths, WAVELENGTHS)
    mat = scipy.io.loadmat(run.file("My_Out.mat"))["Out"]
    np.testing.assert_array_equal(out.data, mat)
    assert metrics["data"]["hsi_factor"] == 10000 and metrics["scale_factor"] == R
    # In the LR-HSI's units (reflectance x 10000): the fused image's level is the reference's to a factor
    # well under 2 (a tiny schedule leaves level errors; a units error would be a factor 10000).
    assert 0.5 < mat.mean() / (reference.mean() * 10000) < 2
    assert {"D_lambda", "D_s", "QNR", "lrhsi_consistency", "hrmsi_consistency"} <= set(metrics["no_reference"])
    assert 0 < metrics["no_reference"]["QNR"] <= 1
    # The reported score is that of the written output (back in reflectance) against the reference.
    scored = evaluate(reference, mat.astype(np.float64) / 10000, R)
    assert metrics["final"]["PSNR"] == pytest.approx(scored["PSNR"], abs=1e-3)
    assert metrics["final"]["SAM"] == pytest.approx(scored["SAM"], abs=1e-3)
    assert os.path.isfile(run.file("quicklook.png"))
    # A real pair is fused under the normalised degradation model by default (docs/degradation_model.md).
    assert metrics["options"]["degradation"] == "normalised" and metrics["psf_sum"] == pytest.approx(1, abs=1e-5)
    link = "GCE.pth" if method == "uds2c2" else "MSI_gain.pth"
    assert os.path.isfile(run.file(link))


def test_garbage_in_masked_pixels_does_not_change_the_result(tmp_path, scene):
    """An HR-MSI corner marked no-data (value -9999 in one band) holds garbage in its other bands."""
    _, lr, hr = scene
    outputs = []
    for garbage in (0.0, 1e6):
        dirty = hr.copy()
        dirty[:8, :8, 0] = -9999
        dirty[:8, :8, 1:] = garbage
        run, metrics = fuse(tmp_path / str(garbage), geotiff_pair(tmp_path / str(garbage), lr, dirty, hr_nodata=-9999))
        outputs.append(scipy.io.loadmat(run.file("My_Out.mat"))["Out"])
        assert metrics["data"]["masked_hr_pixels"] == 64 and metrics["data"]["masked_lr_pixels"] == 4
    np.testing.assert_array_equal(outputs[0], outputs[1])
    assert np.isnan(outputs[0][:8, :8]).all() and np.isfinite(outputs[0][8:]).all()


def test_the_output_comes_back_in_the_input_units_whatever_the_scale(tmp_path, scene):
    _, lr, hr = scene
    run1, _ = fuse(tmp_path / "a", geotiff_pair(tmp_path / "a", lr, hr))
    run2, _ = fuse(tmp_path / "b", geotiff_pair(tmp_path / "b", lr * 10000, hr * 10000))
    out1 = scipy.io.loadmat(run1.file("My_Out.mat"))["Out"]
    out2 = scipy.io.loadmat(run2.file("My_Out.mat"))["Out"]
    np.testing.assert_allclose(out2 / 10000, out1, rtol=1e-4, atol=1e-6)


def test_an_envi_pair_gives_an_envi_output_with_wavelengths(tmp_path, scene):
    _, lr, hr = scene
    lr_path, hr_path = str(tmp_path / "lr.hdr"), str(tmp_path / "hr.hdr")
    write_envi(lr_path, lr, wavelengths=WAVELENGTHS)
    write_envi(hr_path, hr)
    run, metrics = fuse(tmp_path, ["--lr_hsi", lr_path, "--hr_msi", hr_path, "--msi_sensor", "worldview2"])
    out = read_image(run.file("My_Out.hdr"))
    assert out.data.shape == (40, 40, 68) and np.allclose(out.wavelengths, WAVELENGTHS)
    assert "final" not in metrics  # no reference given: only the no-reference indices
    assert "no reference: D_lambda" in open(run.file("precision.txt")).read()


def test_the_reduced_resolution_pair_is_both_inputs_degraded_once_more(scene):
    """Known answer: the reduced pair equals an independent per-band convolve2d('valid')[::r, ::r] of the
    inputs cropped at the bottom/right to a multiple of r (10 x 10 LR pixels -> 8 x 8 at r = 4)."""
    _, lr, hr = scene
    pair = Pair(Y=torch.from_numpy(lr.transpose(2, 0, 1)[None].astype(np.float32)),
                Z=torch.from_numpy(hr.transpose(2, 0, 1)[None].astype(np.float32)), X=None,
                lrmsi_frommsi=None, lrmsi_fromlrhsi=None, psf=None, srf=None, sp_range=None,
                scale=R, known_degradations=False)
    reduced = reduced_resolution_pair(pair)
    psf = gaussian_psf(R, R / 2.35482)

    def degrade(cube):
        return np.stack([scipy.signal.convolve2d(cube[:, :, c], psf, "valid")[::R, ::R]
                         for c in range(cube.shape[2])], axis=2)
    y = lr.astype(np.float32).astype(np.float64)[:8, :8]
    np.testing.assert_allclose(reduced.Y[0].numpy().transpose(1, 2, 0), degrade(y), rtol=1e-5)
    np.testing.assert_allclose(reduced.Z[0].numpy().transpose(1, 2, 0),
                               degrade(hr.astype(np.float32).astype(np.float64)[:32, :32]), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(reduced.X, y, rtol=1e-7)


def test_the_reduced_resolution_score_is_that_of_its_output_against_the_lr_hsi(tmp_path, scene):
    _, lr, hr = scene
    run, metrics = fuse(tmp_path, geotiff_pair(tmp_path / "pair", lr, hr), "--reduced_resolution")
    out = scipy.io.loadmat(os.path.join(run.path, "reduced_resolution", "My_Out.mat"))["Out"]
    expected = evaluate(lr.astype(np.float32).astype(np.float64)[:8, :8], out.astype(np.float64), R)
    for key, value in expected.items():
        assert metrics["reduced_resolution"][key] == pytest.approx(value, rel=1e-4)


# ----------------------------------------------------------------------------- what a user gets wrong

def bad_run(tmp_path, caplog, argv):
    caplog.clear()
    assert train_all_special.main(argv + TINY + ["--checkpoints_dir", str(tmp_path / "ck")]) == 1
    assert not os.path.exists(tmp_path / "ck") or not os.listdir(tmp_path / "ck")
    return caplog.text


def test_swapped_images_are_named(tmp_path, scene, caplog):
    _, lr, hr = scene
    argv = geotiff_pair(tmp_path, lr, hr)
    argv[1], argv[3] = argv[3], argv[1]
    assert "are --lr_hsi and --hr_msi swapped?" in bad_run(tmp_path, caplog, argv)


def test_a_non_integer_ratio_names_both_files_and_the_fix(tmp_path, scene, caplog):
    _, lr, hr = scene
    np.save(tmp_path / "lr.npy", lr[:9])
    np.save(tmp_path / "hr.npy", hr)
    text = bad_run(tmp_path, caplog, ["--lr_hsi", str(tmp_path / "lr.npy"), "--hr_msi", str(tmp_path / "hr.npy"),
                                      "--msi_sensor", "worldview2"])
    assert "lr.npy (LR-HSI) is 9 x 10 pixels" in text and "gdalwarp" in text


def test_geotiffs_whose_pixel_sizes_are_not_near_an_integer_ratio_are_refused(tmp_path, scene, caplog):
    _, lr, hr = scene
    argv = geotiff_pair(tmp_path, lr, hr)
    write_geotiff(argv[1], lr, CRS, Affine(50.0, 0, 499000.0, 0, -50.0, 4478000.0), wavelengths=WAVELENGTHS)
    assert "a ratio of 2.500 along x and 2.500 along y, not within 0.25 of one integer" in bad_run(tmp_path, caplog,
                                                                                                  argv)


@pytest.mark.parametrize("change, phrase", [
    (["--msi_sensor", "worldview2"], "LR-HSI band centres are unknown"),
    ([], "no spectral response given for the HR-MSI"),
    (["--msi_sensor", "quickbird9"], "worldview2"),
])
def test_srf_sources(tmp_path, scene, caplog, change, phrase):
    _, lr, hr = scene
    np.save(tmp_path / "lr.npy", lr)
    np.save(tmp_path / "hr.npy", hr)
    argv = ["--lr_hsi", str(tmp_path / "lr.npy"), "--hr_msi", str(tmp_path / "hr.npy")] + change
    assert phrase in bad_run(tmp_path, caplog, argv)


def test_a_band_outside_the_hsi_range_is_listed(tmp_path, scene, caplog):
    _, lr, hr = scene
    bands = tmp_path / "bands.csv"
    bands.write_text("name,low,high\n" + "\n".join(f"b{i},{lo},{hi}" for i, (_, lo, hi) in
                                                 enumerate(sensor_bands("worldview2")[:7])) + "\nswir,1500,1700\n")
    argv = geotiff_pair(tmp_path, lr, hr)[:4] + ["--msi_bands", str(bands)]
    text = bad_run(tmp_path, caplog, argv)
    assert "swir" in text and "--msi_bands_select" in text


@pytest.mark.parametrize("values, phrase", [
    (np.linspace(400, 1000, 60), "60"),                 # a table of another length
    (np.linspace(0.4, 1.03, 68), "micrometres"),        # units in micrometres
])
def test_bad_wavelength_tables(tmp_path, scene, caplog, values, phrase):
    _, lr, hr = scene
    np.save(tmp_path / "lr.npy", lr)
    np.save(tmp_path / "hr.npy", hr)
    np.savetxt(tmp_path / "wl.txt", values)
    text = bad_run(tmp_path, caplog, ["--lr_hsi", str(tmp_path / "lr.npy"), "--hr_msi", str(tmp_path / "hr.npy"),
                                      "--msi_sensor", "worldview2", "--hsi_wavelengths", str(tmp_path / "wl.txt")])
    assert "wl.txt" in text and phrase in text


def test_an_image_smaller_than_a_qnr_block_still_completes(tmp_path, scene):
    """A 32 x 32 HR block does not fit a 28 x 28 pair: QNR falls back to a smaller block instead of the
    run failing after training (it used to end in "smaller than one 32 x 32 block")."""
    _, lr, hr = scene
    run, metrics = fuse(tmp_path, geotiff_pair(tmp_path / "pair", lr[:7, :7], hr[:28, :28]))
    assert metrics["no_reference"]["QNR_block"] == 16 and 0 < metrics["no_reference"]["QNR"] <= 1


def test_bands_without_any_data_are_dropped_and_the_rest_fused(tmp_path, scene, caplog):
    """EnMAP L2A delivers its bad bands filled with the no-data value: they are dropped and reported, and a
    pixel is no-data only where the remaining bands say so."""
    _, lr, hr = scene
    lr = np.round(lr * 10000)
    lr[:, :, [5, 40]] = -32768
    argv = geotiff_pair(tmp_path / "pair", lr, np.round(hr * 10000), lr_nodata=-32768, dtype="int16")
    caplog.set_level("WARNING")
    run, metrics = fuse(tmp_path, argv)
    assert "bands 6, 41 (1-based) hold no data anywhere and are dropped; 66 bands are fused" in caplog.text
    assert metrics["data"]["dropped_bands"] == [6, 41] and metrics["data"]["masked_lr_pixels"] == 0
    with rasterio.open(run.file("My_Out.tif")) as out:
        assert out.count == 66
        np.testing.assert_allclose([float(out.tags(b)["wavelength"]) for b in (5, 6)], WAVELENGTHS[[4, 6]])


def test_an_undeclared_fill_value_in_a_real_pair_is_masked_with_a_warning(tmp_path, scene, caplog):
    """A file that declares no no-data value but holds -9999 (or one negative value in every band) in
    some pixels: those pixels are masked and the user is told, instead of being fused as radiance."""
    _, lr, hr = scene
    hr = np.round(hr * 10000)
    hr[8:16, 8:16] = -9999  # an 8 x 8 block, every band
    argv = geotiff_pair(tmp_path / "pair", np.round(lr * 10000), hr)
    caplog.set_level("WARNING")
    run, metrics = fuse(tmp_path, argv)
    assert "64 pixels hold an undeclared fill value (-9999 at pixel (8, 8)" in caplog.text
    assert metrics["data"]["masked_hr_pixels"] >= 64
    with rasterio.open(run.file("My_Out.tif")) as out:
        assert np.isnan(out.read(1)[8:16, 8:16]).all()  # no-data in the output too (the LR-HSI declares none)


def test_a_georeferenced_envi_pair_is_aligned_and_its_output_carries_the_grid(tmp_path, scene):
    """ENVI map info and coordinate system string are read, and written back for the grid fused on: GDAL's
    ENVI driver reads the output's CRS and transform as the HR grid used."""
    _, lr, hr = scene
    lr_path, hr_path = str(tmp_path / "lr.hdr"), str(tmp_path / "hr.hdr")
    write_envi(lr_path, lr[1:], wavelengths=WAVELENGTHS, crs=CRS, transform=HR @ Affine.translation(0, 4) @
               Affine.scale(R))  # the LR-HSI starts one LR row lower: the HR-MSI covers more ground
    write_envi(hr_path, hr, crs=CRS, transform=HR)
    run, metrics = fuse(tmp_path, ["--lr_hsi", lr_path, "--hr_msi", hr_path, "--msi_sensor", "worldview2"])
    assert metrics["data"]["alignment"]["hr_resampled"] is False
    with rasterio.open(run.file("My_Out.img")) as out:
        assert out.crs == CRS and out.transform == HR @ Affine.translation(0, 4) and out.shape == (36, 40)
