"""Bounded memory on the real-pair input path (issue #12): float32 images held once, passes in row blocks,
scaling in place, and tensors that share the arrays for large pairs."""
import tracemalloc
import warnings

import numpy as np
import pytest
import rasterio
import torch
from affine import Affine

import data_loader as dl
import imagery.readers as readers
from config import get_args
from evaluation import constant_bands
from fusion.pair import Pair
from imagery import blocks
from imagery.radiometry import band_extrema, invalid_pixels, power_of_ten_scale, scale_in_place
from imagery.writers import write_envi, write_geotiff

R = 4
BANDS = 40
WAVELENGTHS = np.linspace(400.0, 1040.0, BANDS)  # inside WorldView-2's range
HR = Affine(20.0, 0, 499000.0, 0, -20.0, 4478000.0)
CRS = "EPSG:32616"
SMALL_BLOCK = 4096  # values per row block in these tests: many blocks even on tiny images


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setattr(blocks, "BLOCK_VALUES", SMALL_BLOCK)


def scene(tmp_path, lr_side=16, extra_columns=0):
    """An int16 LR-HSI (reflectance x 10000, no-data -9999 in one band of two pixels) and a uint16 HR-MSI
    (8 WorldView-2 bands, 0 in every band over a 4 x 4 corner) as GeoTIFFs; returns the raw arrays and
    the options that load them."""
    rng = np.random.default_rng(0)
    lr = rng.integers(200, 9000, (lr_side, lr_side, BANDS)).astype(np.int16)
    lr[1, 2, 5] = lr[3, 0, 0] = -9999
    hr = rng.integers(300, 9500, (lr_side * R, lr_side * R + extra_columns, 8)).astype(np.uint16)
    hr[:4, :4] = 0
    lr_path, hr_path = tmp_path / "lr.tif", tmp_path / "hr.tif"
    write_geotiff(str(lr_path), lr, CRS, HR @ Affine.scale(R), nodata=-9999, wavelengths=WAVELENGTHS, dtype="int16")
    write_geotiff(str(hr_path), hr, CRS, HR, dtype="uint16")
    return lr, hr, ["--lr_hsi", str(lr_path), "--hr_msi", str(hr_path), "--msi_sensor", "worldview2",
                    "--device", "cpu"]


def scaled(raw, invalid, factor):
    """The pre-issue-#12 values: a float64 copy divided by the factor, filled, then made float32."""
    out = raw.astype(np.float64) / factor
    out[invalid] = 0
    return out.astype(np.float32)


# ----------------------------------------------------------------------------- the loaded pair

def test_the_pair_is_float32_with_the_values_of_the_float64_computation(tmp_path, small_blocks):
    lr, hr, argv = scene(tmp_path, extra_columns=R - 1)  # the HR-MSI is cropped by R - 1 columns
    real = dl.load_real_pair(get_args(argv))
    for array in (real.lhsi, real.hmsi):
        assert array.dtype == np.float32 and array.flags.c_contiguous and array.flags.owndata
    lr_invalid = np.zeros(lr.shape[:2], bool)
    lr_invalid[1, 2] = lr_invalid[3, 0] = True
    hr_invalid = np.zeros((lr.shape[0] * R, lr.shape[1] * R), bool)
    hr_invalid[:4, :4] = True
    assert real.hsi_factor == real.msi_factor == 1e4
    np.testing.assert_array_equal(real.lhsi, scaled(lr, lr_invalid, 1e4))
    np.testing.assert_array_equal(real.hmsi, scaled(hr[:, :lr.shape[1] * R], hr_invalid, 1e4))
    assert real.info["hr_crop"] == [0, R - 1] and real.info["masked_hr_pixels"] == 16 + 2 * R * R


def test_the_loading_makes_no_full_size_float64_copy(tmp_path, small_blocks, monkeypatch):
    """tracemalloc sees numpy's buffers: the peak while loading and building the Pair stays within 1.5
    times the float32 images (a float64 copy of both alone would be 2 times)."""
    monkeypatch.setattr(dl, "LARGE_PAIR_VALUES", 0)  # the shared tensors of a large pair
    lr, hr, argv = scene(tmp_path, lr_side=32)
    args = get_args(argv)
    float32_bytes = (lr.size + hr.size) * 4
    tracemalloc.start()
    try:
        pair = Pair.from_real(dl.load_real_pair(args), "cpu")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert pair.Y.dtype == torch.float32
    assert peak < 1.5 * float32_bytes, f"peak {peak} bytes for {float32_bytes} bytes of float32 images"


def test_a_large_pair_shares_its_arrays_as_channels_last_tensors(tmp_path, monkeypatch):
    _, _, argv = scene(tmp_path)
    small = Pair.from_real(dl.load_real_pair(get_args(argv)), "cpu")
    assert small.Y.is_contiguous() and small.Z.is_contiguous()
    monkeypatch.setattr(dl, "LARGE_PAIR_VALUES", 0)
    real = dl.load_real_pair(get_args(argv))
    large = Pair.from_real(real, "cpu")
    for tensor, array, copy in ((large.Y, real.lhsi, small.Y), (large.Z, real.hmsi, small.Z)):
        assert tensor.data_ptr() == array.ctypes.data
        assert tensor.is_contiguous(memory_format=torch.channels_last) and not tensor.is_contiguous()
        assert torch.equal(tensor, copy)


def test_to_tensor_copies_unless_asked_to_share_a_contiguous_float32_array():
    cube = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    for share, layout in ((False, cube), (True, cube.astype(np.float64)), (True, cube[:, ::-1])):
        tensor = dl.to_tensor(layout, share)
        assert tensor.is_contiguous() and not np.shares_memory(tensor.numpy(), cube)
    shared = dl.to_tensor(cube, share=True)
    assert shared.shape == (4, 2, 3) and np.shares_memory(shared.numpy(), cube)
    assert torch.equal(shared, dl.to_tensor(cube))


def test_a_reference_is_read_as_float32_and_scaled_like_the_pair(tmp_path, small_blocks):
    lr, _, argv = scene(tmp_path)
    reference = np.random.default_rng(1).uniform(100, 9000, (lr.shape[0] * R, lr.shape[1] * R, BANDS))
    np.save(tmp_path / "reference.npy", reference)
    real = dl.load_real_pair(get_args(argv + ["--reference", str(tmp_path / "reference.npy")]))
    assert real.reference.dtype == np.float32
    expected = (reference.astype(np.float32).astype(np.float64) / 1e4).astype(np.float32)
    np.testing.assert_array_equal(real.reference, expected)


# ----------------------------------------------------------------------------- the passes in row blocks

@pytest.mark.parametrize("factor", [1e4, 1.0, 0.01, 1e-3])
def test_scale_in_place_equals_a_float64_division_rounded_once(factor, small_blocks):
    rng = np.random.default_rng(2)
    cube = (rng.uniform(-1, 1, (40, 30, 7)) * rng.choice([1e-4, 1, 3e3], (40, 30, 7))).astype(np.float32)
    invalid = rng.random((40, 30)) < 0.1
    cube[invalid, 3] = np.nan
    out = scale_in_place(cube.copy(), factor, invalid)
    np.testing.assert_array_equal(out, scaled(cube, invalid, factor))


def test_blockwise_masks_and_extrema_equal_whole_image_computations(small_blocks):
    rng = np.random.default_rng(3)
    cube = rng.uniform(0, 5000, (50, 40, 9)).astype(np.float32)
    cube[:, :, 4] = 7.0                   # constant band
    cube[:, :, 2] = 3.0
    cube[10:12, :, 2] = 1e5               # varying only over pixels the mask leaves out
    cube[2, 3, 1] = np.nan
    cube[5, 5, :] = 0.0
    cube[9, 1, 6] = -9999.0
    whole = readers.invalid_values(cube, -9999.0).any(axis=2) | np.all(cube == 0, axis=2)
    invalid = invalid_pixels(cube, -9999.0)
    np.testing.assert_array_equal(invalid, whole)
    invalid[10:12] = True
    low, high = band_extrema(cube, ~invalid)
    np.testing.assert_array_equal(low, cube[~invalid].min(axis=0))
    np.testing.assert_array_equal(high, cube[~invalid].max(axis=0))
    np.testing.assert_array_equal(dl.warn_constant_bands(cube, ~invalid, "x"), constant_bands(cube, ~invalid))
    assert dl.warn_constant_bands(cube, ~invalid, "x") == [2, 4]
    assert power_of_ten_scale(cube, ~invalid) == 1e4 and power_of_ten_scale(cube) == 1.0  # NaN: factor 1


# ----------------------------------------------------------------------------- reading as float32

def test_a_geotiff_is_read_window_by_window_into_float32(tmp_path, small_blocks):
    """A tiled file wider and taller than its 256 x 256 blocks and a striped one: every window lands in place."""
    data = np.random.default_rng(4).integers(-32768, 32767, (300, 290, 3)).astype(np.int16)
    tiled = tmp_path / "tiled.tif"
    write_geotiff(str(tiled), data, None, None, dtype="int16")
    striped = tmp_path / "striped.tif"
    with rasterio.open(striped, "w", driver="GTiff", width=290, height=300, count=3, dtype="int16",
                       blockysize=4, crs=CRS, transform=HR) as dst:
        dst.write(data.transpose(2, 0, 1))
    for path in (tiled, striped):
        image = readers.read_image(str(path), dtype=np.float32)
        assert image.dtype == "int16" and image.data.dtype == np.float32 and image.data.flags.c_contiguous
        np.testing.assert_array_equal(image.data, data)


def test_a_float64_file_is_rounded_to_float32_and_out_of_range_values_become_inf(tmp_path):
    data = np.full((4, 5, 3), 0.1)
    data[1, 1, 1] = -1e39  # a float64 fill value beyond float32's range
    np.save(tmp_path / "x.npy", data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image = readers.read_image(str(tmp_path / "x.npy"), dtype=np.float32)
    assert image.dtype == "float64" and image.data.dtype == np.float32
    assert image.data[0, 0, 0] == np.float32(0.1) and image.data[1, 1, 1] == -np.inf
    assert invalid_pixels(image.data)[1, 1]


def test_an_envi_image_is_a_private_copy_not_the_file_map(tmp_path):
    cube = np.arange(60, dtype=np.float32).reshape(4, 5, 3)
    write_envi(str(tmp_path / "x.hdr"), cube)
    image = readers.read_image(str(tmp_path / "x.hdr"), dtype=np.float32)
    assert image.data.flags.writeable and image.data.flags.owndata
    image.data *= 2
    np.testing.assert_array_equal(readers.read_image(str(tmp_path / "x.hdr")).data, cube)
