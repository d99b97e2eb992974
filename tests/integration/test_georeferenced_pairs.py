"""Georeferenced pairs as delivered: different extents, fractional offsets, another UTM zone, a 30 m /
10.5 m ratio, and a misregistration the georeference does not show. Each is fused end to end; the output's
grid is checked against hand-computed transforms."""
import json
import logging
import re

import numpy as np
import pytest
import rasterio
import scipy.ndimage as ndi
from affine import Affine
from conftest import SYNTHETIC_CUBE, TINY_SCHEDULE, emit_l2a, prisma_l2d, sentinel2_safe
from rasterio.warp import Resampling, calculate_default_transform, reproject

import train_all_special
from data_loader import load_cube, srf_from_bands
from imagery.sensors import band_ranges
from imagery.writers import write_geotiff
from model.degradation import gaussian_psf, spatial_degrade

R = 3
WAVELENGTHS = np.linspace(400.0, 2500.0, 224)[:68]
CRS = "EPSG:32616"
ORIGIN = (800000.0, 4200000.0)  # near the eastern edge of UTM zone 16
HR10 = Affine(10.0, 0, ORIGIN[0], 0, -10.0, ORIGIN[1])
TINY = TINY_SCHEDULE + ["--eval_every", "30", "--device", "cpu"]


@pytest.fixture(scope="module")
def ground():
    """A 108 x 108 x 68 crop of the synthetic cube as 10 m ground truth, and its WorldView-2 MSI."""
    reference = load_cube(SYNTHETIC_CUBE)[10:118, 10:118]
    return reference, reference @ srf_from_bands(WAVELENGTHS, band_ranges("worldview2"))


def lr_hsi(ground, folder, rows=slice(12, 96), cols=slice(12, 96)):
    """The LR-HSI (r = 3, Gaussian PSF) of the ground's pixels ``rows`` x ``cols``, a GeoTIFF at 30 m."""
    reference, _ = ground
    lr = spatial_degrade(reference[rows, cols], gaussian_psf(R, R / 2.35482), R)
    path = str(folder / "lr.tif")
    write_geotiff(path, lr, CRS, HR10 @ Affine.translation(cols.start, rows.start) @ Affine.scale(R),
                  wavelengths=WAVELENGTHS)
    return path


def fuse(tmp_path, lr, hr, *extra):
    argv = ["--lr_hsi", lr, "--hr_msi", hr, "--msi_sensor", "worldview2", *TINY,
            "--checkpoints_dir", str(tmp_path / "runs"), *extra]
    assert train_all_special.main(argv) == 0
    (run,) = (tmp_path / "runs").iterdir()
    with rasterio.open(run / "My_Out.tif") as out:
        return out.crs, out.transform, out.shape, json.load(open(run / "metrics.json"))


def test_a_larger_hr_image_offset_by_whole_pixels_fuses_exactly_as_the_cut_pair(ground, tmp_path):
    reference, msi = ground
    lr = lr_hsi(ground, tmp_path)
    write_geotiff(str(tmp_path / "hr.tif"), msi, CRS, HR10)  # 108 x 108, 12 pixels more on every side
    crs, transform, shape, metrics = fuse(tmp_path / "a", lr, str(tmp_path / "hr.tif"))
    assert crs == CRS and shape == (84, 84) and transform == HR10 @ Affine.translation(12, 12)
    assert metrics["data"]["alignment"]["hr_resampled"] is False
    write_geotiff(str(tmp_path / "hr_cut.tif"), msi[12:96, 12:96], CRS, HR10 @ Affine.translation(12, 12))
    *_, cut = fuse(tmp_path / "b", lr, str(tmp_path / "hr_cut.tif"))
    assert metrics["no_reference"] == cut["no_reference"] and metrics["loss_history"] == cut["loss_history"]


def warped(msi, transform, crs, shape, source=HR10):
    """The MSI resampled (area-weighted) onto another grid, as a second sensor would deliver it."""
    target = np.full((msi.shape[2], *shape), np.nan, np.float32)
    reproject(np.moveaxis(msi.astype(np.float32), 2, 0), target, src_transform=source, src_crs=CRS,
              dst_transform=transform, dst_crs=crs, dst_nodata=np.nan, resampling=Resampling.average)
    return np.moveaxis(target, 0, 2)


@pytest.mark.parametrize("case", ["fractional offset", "another UTM zone", "30 m / 10.5 m"])
def test_pairs_on_other_grids_are_fused_on_the_lr_grid(ground, tmp_path, case):
    _, msi = ground
    lr = lr_hsi(ground, tmp_path)
    if case == "fractional offset":  # 0.5 HR pixel east and 0.3 south of the 10 m grid
        grid, crs, shape = HR10 @ Affine.translation(0.5, 0.3), CRS, (107, 107)
        kept = (slice(0, 28), slice(0, 28))  # every LR pixel but none lies wholly inside
    elif case == "30 m / 10.5 m":
        grid, crs, shape = Affine(10.5, 0, ORIGIN[0] + 105.0, 0, -10.5, ORIGIN[1] - 105.0), CRS, (90, 90)
        kept = (slice(0, 28), slice(0, 28))
    else:
        grid, width, height = calculate_default_transform(CRS, "EPSG:32617", 108, 108, ORIGIN[0],
                                                          ORIGIN[1] - 1080, ORIGIN[0] + 1080, ORIGIN[1],
                                                          resolution=10.0)
        crs, shape, kept = "EPSG:32617", (height, width), None
    write_geotiff(str(tmp_path / "hr.tif"), warped(msi, grid, crs, shape), crs, grid, nodata=float("nan"))
    out_crs, transform, out_shape, metrics = fuse(tmp_path, lr, str(tmp_path / "hr.tif"))
    alignment = metrics["data"]["alignment"]
    rows, cols = slice(*alignment["lr_rows"]), slice(*alignment["lr_cols"])
    assert out_crs == CRS and alignment["hr_resampled"] and metrics["scale_factor"] == R
    # The output is on the grid r times finer than the kept LR pixels: LR origin 120 m in, 30 m pixels.
    assert transform == HR10 @ Affine.translation(12 + R * cols.start, 12 + R * rows.start)
    assert out_shape == (R * (rows.stop - rows.start), R * (cols.stop - cols.start))
    if kept is not None:
        assert (rows, cols) == kept
    assert np.hypot(*metrics["data"]["registration_shift_lr_pixels"]) < 0.2


def test_a_misregistration_the_georeference_hides_is_measured_and_refused_or_corrected(ground, tmp_path, caplog):
    _, msi = ground
    lr = lr_hsi(ground, tmp_path)
    small = ndi.shift(msi[12:96, 12:96], (1.5, 0, 0), order=1, mode="nearest")  # 0.5 LR pixel down
    write_geotiff(str(tmp_path / "hr_small.tif"), small, CRS, HR10 @ Affine.translation(12, 12))
    caplog.set_level(logging.INFO)
    *_, metrics = fuse(tmp_path / "small", lr, str(tmp_path / "hr_small.tif"))
    np.testing.assert_allclose(metrics["data"]["registration_shift_lr_pixels"], (0.5, 0.0), atol=0.1)
    assert "more than 0.2 LR pixel; --registration correct resamples the HR-MSI" in caplog.text

    large = ndi.shift(msi[12:96, 12:96], (0, -4.5, 0), order=1, mode="nearest")  # 1.5 LR pixels left
    write_geotiff(str(tmp_path / "hr_large.tif"), large, CRS, HR10 @ Affine.translation(12, 12))
    argv = ["--lr_hsi", lr, "--hr_msi", str(tmp_path / "hr_large.tif"), "--msi_sensor", "worldview2", *TINY,
            "--checkpoints_dir", str(tmp_path / "refused")]
    caplog.clear()
    assert train_all_special.main(argv) == 1
    (refusal,) = [record.getMessage() for record in caplog.records if record.levelno == logging.ERROR]
    down, right = map(float, re.search(r"lies ([-+][\d.]+) LR pixels down and ([-+][\d.]+) right", refusal).groups())
    np.testing.assert_allclose((down, right), (0.0, -1.5), atol=0.1)
    assert "more than 1 LR pixel" in refusal and "--registration correct" in refusal
    *_, corrected = fuse(tmp_path / "corrected", lr, str(tmp_path / "hr_large.tif"), "--registration", "correct")
    np.testing.assert_allclose(corrected["data"]["registration_shift_lr_pixels"], (0.0, -1.5), atol=0.1)


def test_an_enmap_l2a_product_with_a_sentinel2_image_as_delivered(ground, tmp_path):
    """README's EnMAP + Sentinel-2 command: the L2A spectral image beside its METADATA.XML (band centres,
    gains, two bad bands), and a Sentinel-2 L2A .SAFE folder covering more ground; no gdalwarp step."""
    reference, _ = ground
    product = "ENMAP01-____L2A-DT0000001867_20220724T104526Z_008_V010302_20230628T165614Z"
    lr = spatial_degrade(reference[12:96, 12:96], gaussian_psf(R, R / 2.35482), R)
    stored = np.round(lr * 10000).astype(np.int16)
    stored[:, :, [9, 50]] = -32768
    image = tmp_path / f"{product}-SPECTRAL_IMAGE.TIF"
    write_geotiff(str(image), stored, CRS, HR10 @ Affine.translation(12, 12) @ Affine.scale(R), nodata=-32768,
                  dtype="int16")
    bands = "".join(f'<bandID number="{b + 1}"><wavelengthCenterOfBand>{w:.3f}</wavelengthCenterOfBand>'
                    f"<FWHMOfBand>9.0</FWHMOfBand><GainOfBand>0.0001</GainOfBand><OffsetOfBand>0</OffsetOfBand>"
                    "</bandID>" for b, w in enumerate(WAVELENGTHS))
    good = ",".join(str(b) for b in range(1, 69) if b not in (10, 51))
    (tmp_path / f"{product}-METADATA.XML").write_text(
        f"<level_X><specific><bandCharacterisation>{bands}</bandCharacterisation><vnirProductQuality>"
        f"<expectedChannelsList>{good}</expectedChannelsList></vnirProductQuality></specific></level_X>")
    s2 = srf_from_bands(WAVELENGTHS, band_ranges("sentinel2", "B2,B3,B4,B8"))
    safe = sentinel2_safe(tmp_path, reference @ s2, HR10, crs=CRS)  # the L2A .SAFE folder, 10 m bands
    crs, transform, shape, metrics = fuse(tmp_path, str(image), safe, "--msi_sensor", "sentinel2",
                                          "--msi_bands_select", "B2,B3,B4,B8")
    assert metrics["data"]["dropped_bands"] == [10, 51] and shape == (84, 84)
    assert transform == HR10 @ Affine.translation(12, 12) and crs == CRS
    assert np.hypot(*metrics["data"]["registration_shift_lr_pixels"]) < 0.2


def test_a_prisma_l2d_product_fuses_its_hyperspectral_image_with_its_own_panchromatic_one(ground, tmp_path):
    """One .he5 file as both images: the 30 m VNIR + SWIR cubes as the LR-HSI, the 5 m panchromatic cube as
    the HR image (r = 6), on the grid the product's corners give."""
    reference, _ = ground
    lr = spatial_degrade(reference, gaussian_psf(6, 6 / 2.35482), 6)
    pan = (reference @ srf_from_bands(WAVELENGTHS, band_ranges("prisma_pan")))[:, :, 0]
    product = prisma_l2d(tmp_path, lr, WAVELENGTHS, (ORIGIN[0] + 15.0, ORIGIN[1] - 15.0), pan=pan, flagged=(7,),
                         epsg=32616)
    crs, transform, shape, metrics = fuse(tmp_path, product, product, "--msi_sensor", "prisma_pan")
    assert crs == CRS and shape == (108, 108) and metrics["scale_factor"] == 6
    assert transform == Affine(5.0, 0, ORIGIN[0], 0, -5.0, ORIGIN[1])
    assert metrics["data"]["dropped_bands"] == [8]
    assert np.hypot(*metrics["data"]["registration_shift_lr_pixels"]) < 0.2


def test_an_emit_l2a_file_fuses_on_its_map_grid(ground, tmp_path):
    """An EMIT L2A file (geographic map grid, the instrument image placed by its GLT, two bad bands) with an
    HR-MSI GeoTIFF of the same ground at a third of its pixel size."""
    reference, msi = ground
    lr = spatial_degrade(reference, gaussian_psf(R, R / 2.35482), R)
    rows, cols = np.mgrid[0:36, 0:36]
    good = np.ones(68)
    good[[20, 40]] = 0
    emit = emit_l2a(tmp_path, lr[::-1], WAVELENGTHS, cols + 1, 36 - rows, (-95.0, 3e-4, 0, 30.0, 0, -3e-4), good)
    hr_grid = Affine(1e-4, 0, -95.0, 0, -1e-4, 30.0)
    write_geotiff(str(tmp_path / "hr.tif"), msi, "EPSG:4326", hr_grid)
    crs, transform, shape, metrics = fuse(tmp_path, emit, str(tmp_path / "hr.tif"))
    assert crs == "EPSG:4326" and shape == (108, 108) and transform.almost_equals(hr_grid)
    assert metrics["data"]["dropped_bands"] == [21, 41] and metrics["data"]["alignment"]["hr_resampled"] is False
    assert np.hypot(*metrics["data"]["registration_shift_lr_pixels"]) < 0.2


def test_a_reference_is_placed_on_the_grid_the_pair_was_fused_on(ground, tmp_path):
    """--reference with an aligned pair: a georeferenced reference is cut like the HR-MSI (here 12 pixels off
    its top and left), one without georeference is refused rather than scored against the wrong pixels, and
    bands the LR-HSI drops are dropped from it too."""
    from config import get_args
    from data_loader import DataError, load_real_pair

    reference, msi = ground
    lr = lr_hsi(ground, tmp_path)
    write_geotiff(str(tmp_path / "hr.tif"), msi, CRS, HR10)
    write_geotiff(str(tmp_path / "ref.tif"), reference, CRS, HR10)
    argv = ["--lr_hsi", lr, "--hr_msi", str(tmp_path / "hr.tif"), "--msi_sensor", "worldview2", "--device", "cpu"]
    pair = load_real_pair(get_args(argv + ["--reference", str(tmp_path / "ref.tif")]))
    np.testing.assert_array_equal(pair.reference, reference[12:96, 12:96].astype(np.float32))
    np.save(tmp_path / "ref.npy", reference)
    with pytest.raises(DataError, match="the reference has no georeference, but the HR-MSI was cut at the top or"):
        load_real_pair(get_args(argv + ["--reference", str(tmp_path / "ref.npy")]))

    stored = spatial_degrade(reference[12:96, 12:96], gaussian_psf(R, R / 2.35482), R)
    stored[:, :, 7] = np.nan  # a band without data
    write_geotiff(str(tmp_path / "lr_bad.tif"), stored, CRS, HR10 @ Affine.translation(12, 12) @ Affine.scale(R),
                  wavelengths=WAVELENGTHS)
    argv[1] = str(tmp_path / "lr_bad.tif")
    pair = load_real_pair(get_args(argv + ["--reference", str(tmp_path / "ref.tif")]))
    assert pair.reference.shape == (84, 84, 67) and pair.info["dropped_bands"] == [8]
    np.testing.assert_array_equal(pair.reference, np.delete(reference[12:96, 12:96], 7, axis=2).astype(np.float32))
