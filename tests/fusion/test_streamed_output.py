"""Streamed output of whole scenes: MATLAB v7.3 and windowed GeoTIFF writers, their memory, the quick-look
composite collected per tile, and fusion.results.fuse_and_write (whole images as before, large ones tile by
tile with the same files' content and the same scores)."""
import os
import tracemalloc
from types import SimpleNamespace

import h5py
import numpy as np
import pytest
import rasterio
import scipy.io
import torch
from affine import Affine

import fusion.results as results
import fusion.run_folder
import imagery.quicklook as quicklook
import imagery.writers as writers
from config import get_args
from evaluation import evaluate
from fusion.pair import Pair, hwc
from fusion.run_folder import RunFolder
from imagery.readers import read_image
from methods import METHODS

R, H_LR, W_LR, C, CM = 3, 23, 19, 12, 4
SP_RANGE = np.array([[0, 2], [3, 5], [6, 8], [9, 11]])
CRS = "EPSG:32650"
TRANSFORM = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4400000.0)
WAVELENGTHS = np.linspace(420.0, 680.0, C)


def tile_origins(height, width, side):
    return [(top, left) for top in range(0, height, side) for left in range(0, width, side)]


def write_tiles(writer, cube, side):
    with writer as out:
        for top, left in tile_origins(*cube.shape[:2], side):
            out.write(top, left, cube[top:top + side, left:left + side])


# ----------------------------------------------------------------------------- writers

def test_v73_output_loads_back_as_h_w_c_with_the_matlab_userblock(tmp_path):
    cube = np.random.default_rng(0).random((37, 29, 5), dtype=np.float32)
    path = str(tmp_path / "My_Out.mat")
    write_tiles(writers.Mat73Writer(path, "Out", cube.shape, chunk=16), cube, 16)
    with open(path, "rb") as f:
        header = f.read(128)
    assert header.startswith(b"MATLAB 7.3 MAT-file, Platform: ")
    assert header[116:124] == bytes(8) and header[124:128] == b"\x00\x02IM"
    with h5py.File(path, "r") as f:
        assert f.userblock_size == 512
        dset = f["Out"]
        assert dset.shape == (5, 29, 37)  # MATLAB's column-major H x W x C, as HDF5 sees it
        assert dset.attrs["MATLAB_class"] == b"single"
        assert np.array_equal(dset[()].transpose(2, 1, 0), cube)
    image = read_image(path)
    assert image.fmt == "mat73"
    assert np.array_equal(image.data, cube)
    assert os.listdir(tmp_path) == ["My_Out.mat"]


def test_windowed_geotiff_equals_the_whole_array_write(tmp_path):
    cube = np.random.default_rng(1).random((37, 29, 5), dtype=np.float32)
    cube[:3, :4] = -9999
    meta = dict(nodata=-9999, band_names=[f"b{i}" for i in range(5)], wavelengths=WAVELENGTHS[:5],
                fwhm=np.full(5, 10.0))
    whole, windowed = str(tmp_path / "whole.tif"), str(tmp_path / "windowed.tif")
    writers.write_geotiff(whole, cube, CRS, TRANSFORM, **meta)
    write_tiles(writers.GeoTIFFWriter(windowed, 37, 29, 5, CRS, TRANSFORM, block=16, **meta), cube, 16)
    with rasterio.open(whole) as a, rasterio.open(windowed) as b:
        assert np.array_equal(a.read(), b.read())
        assert np.array_equal(b.read().transpose(1, 2, 0), cube)
        assert (a.crs, a.transform, a.nodata, a.descriptions) == (b.crs, b.transform, b.nodata, b.descriptions)
        assert [a.tags(i) for i in range(1, 6)] == [b.tags(i) for i in range(1, 6)]
        assert b.block_shapes[0] == (16, 16)


@pytest.mark.parametrize("kind", ["mat73", "geotiff"])
def test_streamed_writer_memory_is_a_small_multiple_of_the_tile(tmp_path, kind):
    side, bands = 64, 16
    height = width = 8 * side  # the cube is 64 tiles
    tile_bytes = side * side * bands * 4
    path = str(tmp_path / ("out.mat" if kind == "mat73" else "out.tif"))
    writer = writers.Mat73Writer(path, "Out", (height, width, bands), chunk=side) if kind == "mat73" else \
        writers.GeoTIFFWriter(path, height, width, bands, None, None, block=side)
    tile = np.ones((side, side, bands), dtype=np.float32)
    tracemalloc.start()
    try:
        with writer as out:
            for top, left in tile_origins(height, width, side):
                out.write(top, left, tile * (top + left))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * tile_bytes  # the cube is 64 tile_bytes
    assert read_image(path).data[side * 3 + 1, side * 5 + 2, 7] == side * 8


@pytest.mark.parametrize("kind", ["mat73", "geotiff"])
def test_an_interrupted_write_leaves_no_file(tmp_path, kind):
    path = str(tmp_path / "out")
    writer = writers.Mat73Writer(path, "Out", (8, 8, 2)) if kind == "mat73" else \
        writers.GeoTIFFWriter(path, 8, 8, 2, None, None, block=16)
    with pytest.raises(RuntimeError, match="stopped"):
        with writer as out:
            out.write(0, 0, np.zeros((4, 8, 2), dtype=np.float32))
            raise RuntimeError("stopped")
    assert os.listdir(tmp_path) == []


def test_a_tile_outside_the_cube_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"at row 6, column 0 does not fit a 8 x 8 x 2 cube"):
        with writers.Mat73Writer(str(tmp_path / "o.mat"), "Out", (8, 8, 2)) as out:
            out.write(6, 0, np.zeros((4, 8, 2), dtype=np.float32))


def test_save_output_writes_v73_above_the_v5_limit(tmp_path, monkeypatch):
    cube = np.arange(4 * 3 * 2, dtype=np.float32).reshape(4, 3, 2)
    RunFolder(str(tmp_path)).save_output(cube)
    assert np.array_equal(scipy.io.loadmat(str(tmp_path / "My_Out.mat"))["Out"], cube)
    monkeypatch.setattr(fusion.run_folder, "MAT_V5_MAX_BYTES", cube.nbytes - 1)
    RunFolder(str(tmp_path)).save_output(cube)
    assert h5py.is_hdf5(str(tmp_path / "My_Out.mat"))
    assert np.array_equal(read_image(str(tmp_path / "My_Out.mat")).data, cube)


def test_composite_collected_per_tile_equals_the_subsampled_composite(monkeypatch):
    monkeypatch.setattr(quicklook, "MAX_DISPLAY_PIXELS", 10)
    cube = np.random.default_rng(2).random((37, 29, C), dtype=np.float32)
    collector = quicklook.CompositeCollector(37, 29, C, WAVELENGTHS)
    assert collector.step == 4
    for top, left in tile_origins(37, 29, 7):
        collector.add(top, left, cube[top:top + 7, left:left + 7])
    bands = list(quicklook.composite_bands(WAVELENGTHS))
    assert np.array_equal(collector.image, cube[::4, ::4][:, :, bands])


# ----------------------------------------------------------------------------- fuse_and_write

def make_pair(source=None):
    """A simulated-like pair with a reference and a no-data corner (3 x 2 LR pixels)."""
    rng = np.random.default_rng(3)
    height, width = H_LR * R, W_LR * R
    x = rng.random((height, width, C), dtype=np.float32)
    srf = np.zeros((C, CM))
    for j, (a, b) in enumerate(SP_RANGE):
        srf[a:b + 1, j] = 1.0 / (b - a + 1)
    valid = np.ones((height, width), dtype=bool)
    valid[:3 * R, :2 * R] = False
    lr_valid = valid.reshape(H_LR, R, W_LR, R).all(axis=(1, 3))
    z = (x @ srf.astype(np.float32)) * valid[:, :, None]
    y = x.reshape(H_LR, R, W_LR, R, C).mean(axis=(1, 3)) * lr_valid[:, :, None]

    def tensor(a):
        return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None]
    return Pair(Y=tensor(y), Z=tensor(z), X=x, lrmsi_frommsi=None, lrmsi_fromlrhsi=None,
                psf=np.full((R, R), 1.0 / R ** 2), srf=srf, sp_range=SP_RANGE, scale=R, lr_valid=lr_valid,
                hr_valid=valid, out_valid=valid, hsi_factor=10.0, source=source, known_degradations=source is None)


@pytest.fixture(scope="module")
def uds2c2_nets():
    """UDS2C2's networks (SCFConv 3 x 3, GCE with a non-zero 3 x 3 residual, so tiles need context)."""
    torch.manual_seed(0)
    argv = ["--method", "uds2c2", "--scfconv", "yes", "--scf_kernel", "3", "--device", "cpu"]
    nets, _ = METHODS["uds2c2"](get_args(argv), make_pair())
    with torch.no_grad():
        nets.gce.residual.weight.normal_(0.0, 0.2)
    return nets


def test_small_scene_writes_v5_and_scores_exactly_as_before(tmp_path, uds2c2_nets):
    pair, nets = make_pair(), uds2c2_nets
    assert not results.streams(pair)
    fused = results.fuse_and_write(RunFolder(str(tmp_path)), pair, nets, pair.hsi_factor)
    # The computation of every earlier version, written out independently.
    with torch.inference_mode():
        x_hat = nets.fuse(pair.Z, pair.Y)
        quality = results.no_reference_quality(pair, nets, x_hat)
    x = hwc(x_hat)
    expected = x.astype(np.float32) * np.float32(pair.hsi_factor)
    expected[~pair.out_valid] = np.nan
    with open(tmp_path / "My_Out.mat", "rb") as f:
        assert f.read(19) == b"MATLAB 5.0 MAT-file"
    out = scipy.io.loadmat(str(tmp_path / "My_Out.mat"))["Out"]
    assert out.dtype == np.float32 and np.array_equal(out, expected, equal_nan=True)
    assert fused.final == evaluate(pair.X, x, R, mask=pair.out_valid)
    assert fused.quality == quality
    assert np.array_equal(fused.image, x)
    assert sorted(os.listdir(tmp_path)) == ["My_Out.mat"]


@pytest.fixture(scope="module")
def recommended_nets():
    """The recommended mode's networks with a PSF that is not the box (its HyperSharpening reads Y's tiles)."""
    torch.manual_seed(0)
    nets, _ = METHODS["recommended"](get_args(["--method", "recommended", "--device", "cpu"]), make_pair())
    with torch.no_grad():
        nets.spa.psf_logits.normal_(0.0, 0.5)
    return nets


@pytest.mark.parametrize("method_nets", ["uds2c2_nets", "recommended_nets"])
def test_streamed_scene_gives_the_same_file_content_and_scores(tmp_path, method_nets, monkeypatch, request):
    pair, nets = make_pair(), request.getfixturevalue(method_nets)
    os.makedirs(tmp_path / "whole")
    os.makedirs(tmp_path / "tiled")
    whole = results.fuse_and_write(RunFolder(str(tmp_path / "whole")), pair, nets, pair.hsi_factor)
    monkeypatch.setattr(results, "STREAM_OUTPUT_BYTES", 0)
    monkeypatch.setattr(quicklook, "MAX_DISPLAY_PIXELS", 20)
    assert results.streams(pair)
    tiled = results.fuse_and_write(RunFolder(str(tmp_path / "tiled")), pair, nets, pair.hsi_factor, side=48)
    expected = scipy.io.loadmat(str(tmp_path / "whole" / "My_Out.mat"))["Out"]
    with h5py.File(tmp_path / "tiled" / "My_Out.mat", "r") as f:
        out = f["Out"][()].transpose(2, 1, 0)
    assert np.array_equal(np.isnan(out), ~pair.out_valid[:, :, None].repeat(C, axis=2))
    assert np.allclose(out, expected, rtol=0, atol=1e-5, equal_nan=True)  # values about 10: float32 rounding
    for key, value in whole.final.items():
        assert tiled.final[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key
    assert tiled.quality.keys() == whole.quality.keys()
    for group in ("lrhsi_consistency", "hrmsi_consistency"):
        for key, value in whole.quality[group].items():
            assert tiled.quality[group][key] == pytest.approx(value, rel=1e-6), (group, key)
    for key in ("D_lambda", "D_s", "QNR"):
        assert tiled.quality[key] == pytest.approx(whole.quality[key], rel=1e-6), key
    assert tiled.quality["QNR_block"] == whole.quality["QNR_block"] == 32
    collector = tiled.image
    assert np.allclose(collector.image, whole.image[::collector.step, ::collector.step][:, :, list(collector.bands)],
                       rtol=0, atol=1e-6)


@pytest.mark.parametrize("fmt", ["geotiff", "sentinel2_safe", "prisma_l2d"])
def test_streamed_geotiff_pair_writes_my_out_tif_by_windows(tmp_path, uds2c2_nets, monkeypatch, fmt):
    """A whole scene whose HR image is georeferenced, a GeoTIFF or a product read with its CRS (a Sentinel-2
    .SAFE folder, a PRISMA panchromatic image), gets My_Out.tif, streamed or not."""
    source = SimpleNamespace(msi=SimpleNamespace(fmt=fmt, crs=CRS, transform=TRANSFORM), nodata=-9999.0,
                             wavelengths=WAVELENGTHS, fwhm=np.full(C, 10.0), msi_band_names=None)
    pair, nets = make_pair(source), uds2c2_nets
    os.makedirs(tmp_path / "whole")
    os.makedirs(tmp_path / "tiled")
    results.fuse_and_write(RunFolder(str(tmp_path / "whole")), pair, nets, pair.hsi_factor)
    monkeypatch.setattr(results, "STREAM_OUTPUT_BYTES", 0)
    results.fuse_and_write(RunFolder(str(tmp_path / "tiled")), pair, nets, pair.hsi_factor, side=48)
    assert sorted(os.listdir(tmp_path / "whole")) == ["My_Out.mat", "My_Out.tif"]
    assert os.listdir(tmp_path / "tiled") == ["My_Out.tif"]
    with rasterio.open(tmp_path / "whole" / "My_Out.tif") as a, rasterio.open(tmp_path / "tiled" / "My_Out.tif") as b:
        assert (a.crs, a.transform, a.nodata, a.descriptions) == (b.crs, b.transform, b.nodata, b.descriptions)
        assert [a.tags(i) for i in range(1, C + 1)] == [b.tags(i) for i in range(1, C + 1)]
        assert b.block_shapes[0] == (48, 48)
        tiled = b.read()
        assert np.allclose(tiled, a.read(), rtol=0, atol=1e-5)
        assert (tiled[:, ~pair.out_valid] == -9999).all()


def test_streamed_reduced_resolution_output_keeps_the_plain_values(tmp_path, uds2c2_nets, monkeypatch):
    pair, nets = make_pair(), uds2c2_nets
    monkeypatch.setattr(results, "STREAM_OUTPUT_BYTES", 0)
    fused = results.fuse_and_write(RunFolder(str(tmp_path)), pair, nets, 2.0, fill_nodata=False,
                                   no_reference=False, composite=False, side=48)
    assert fused.quality is None and fused.image is None
    with torch.inference_mode():
        x = hwc(nets.fuse(pair.Z, pair.Y))
    out = read_image(str(tmp_path / "My_Out.mat")).data
    assert not np.isnan(out).any()
    assert np.allclose(out, x * 2.0, rtol=0, atol=1e-6)
    assert fused.final["PSNR"] == pytest.approx(evaluate(pair.X, x, R, mask=pair.out_valid)["PSNR"], rel=1e-6)


def test_an_hr_image_without_a_crs_gets_no_georeferenced_copy():
    plain = SimpleNamespace(msi=SimpleNamespace(fmt="mat", crs=None, transform=None))
    envi = SimpleNamespace(msi=SimpleNamespace(fmt="envi", crs=None, transform=None))
    assert results.georeferenced_format(plain) is None and results.georeferenced_format(None) is None
    assert results.georeferenced_format(envi) == "envi"
