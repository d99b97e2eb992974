"""Tiled inference (fusion.tiling): equal to the whole-image forward for every method, the halo derived
from the layers, the global pooling means fixed to the whole image's, and the tile grid and size."""
import numpy as np
import pytest
import torch
from torch import nn

from config import get_args
from fusion.pair import Pair
from fusion.tiling import (ACTIVATION_COPIES, TiledForward, TilingError, choose_tile_side, forward_tiled,
                           global_pooling_modules, network_halo, tile_grid)
from methods import METHODS
from model import SCFConv, SpeUnet

R, H_LR, W_LR, C, CM = 3, 13, 11, 12, 4
SP_RANGE = np.array([[0, 2], [3, 5], [6, 8], [9, 11]])


def make_pair(height, width):
    """A Pair whose HR-MSI is ``height`` x ``width`` random pixels (the LR-HSI only sizes the networks)."""
    rng = np.random.default_rng(1)
    srf = np.zeros((C, CM))
    for j, (a, b) in enumerate(SP_RANGE):
        srf[a:b + 1, j] = 1.0 / (b - a + 1)
    z = torch.from_numpy(rng.random((1, CM, height, width), dtype=np.float32))
    y = torch.from_numpy(rng.random((1, C, height // R, width // R), dtype=np.float32))
    return Pair(Y=y, Z=z, X=None, lrmsi_frommsi=None, lrmsi_fromlrhsi=None, psf=np.full((R, R), 1.0 / R ** 2),
                srf=srf, sp_range=SP_RANGE, scale=R, known_degradations=False)


def method_nets(method, pair, *options):
    torch.manual_seed(0)
    argv = ["--method", method, "--scfconv", "yes", "--scf_kernel", "3", "--device", "cpu", *options]
    nets, _ = METHODS[method](get_args(argv), pair)
    return nets


@pytest.fixture(scope="module")
def odd_pair():
    return make_pair(37, 29)


@pytest.mark.parametrize("method, degradation", [("udaln", "original"), ("pfs2c2", "original"),
                                                 ("uds2c2", "original"), ("udaln", "normalised")])
def test_tiled_equals_whole_image_for_each_method(method, degradation, odd_pair):
    nets = method_nets(method, odd_pair, "--degradation", degradation)
    if degradation == "normalised":  # the MSI gain calibrates Z before SpeUnet
        with torch.no_grad():
            nets.msi_gain.log_gain.copy_(torch.linspace(-0.3, 0.4, CM))
            nets.msi_gain.offset.copy_(torch.linspace(0.05, -0.02, CM))
    with torch.inference_mode():
        whole = nets.fuse(odd_pair.Z, odd_pair.Y)
    network = nets.inverse_network()
    tiler = TiledForward(network, odd_pair.Z, side=8)
    assert len(tiler) == 5 * 4  # 37 x 29 in tiles of 8: smaller tiles at the bottom and right borders
    tiled = forward_tiled(network, odd_pair.Z, side=8)
    assert tiled.shape == whole.shape
    assert torch.allclose(tiled, whole, rtol=0, atol=1e-6)


def test_halo_is_derived_from_the_layers(odd_pair):
    assert network_halo(method_nets("udaln", odd_pair).up) == 0
    assert network_halo(method_nets("pfs2c2", odd_pair).up) == 0
    # widths(4, 12): 4 -> 8 -> 12, one hidden SCFConv of 3 x 3; UDS2C2's GCE (one 3 x 3 layer) reaches 1.
    nets = method_nets("uds2c2", odd_pair)
    assert network_halo(nets.up) == 1
    assert network_halo(nets.gce) == 1
    assert network_halo(SpeUnet(4, 24, hidden=lambda a, b: SCFConv(a, b, 5))) == 2 * 2  # 4 -> 8 -> 16 -> 24, k = 5
    assert network_halo(nn.Sequential(nn.Conv2d(1, 1, 3, padding=2, dilation=2), nn.Conv2d(1, 1, 1))) == 2
    assert network_halo(None) == 0


def test_without_the_halo_3x3_layers_differ_at_tile_borders():
    torch.manual_seed(0)
    net = SpeUnet(4, 24, hidden=lambda a, b: SCFConv(a, b, 3))  # 4 -> 8 -> 16 -> 24: two 3 x 3 layers
    z = torch.rand(1, 4, 27, 23)
    with torch.inference_mode():
        whole = net(z)
    tiler = TiledForward(net, z, side=8)
    assert tiler.halo == 2
    with_halo = forward_tiled(net, z, side=8)
    assert torch.allclose(with_halo, whole, rtol=0, atol=1e-6)
    tiler.halo = 0
    without = torch.zeros_like(whole)
    for part in tiler:
        without[:, :, part.tile.rows, part.tile.cols] = part.core
    error = (without - whole).abs()
    assert error.max() > 1e-3
    # Only the tiles' inner borders are wrong: the pixels two or more from every inner tile edge are exact.
    inner = torch.ones(27, 23, dtype=torch.bool)
    for edge in (8, 16, 24):
        inner[max(edge - 2, 0):edge + 2, :] = False
        inner[:, max(edge - 2, 0):edge + 2] = False
    assert error[0][:, inner].max() <= 1e-6


@pytest.mark.parametrize("method", ["pfs2c2", "uds2c2"])
def test_global_means_are_the_whole_image_means(method, odd_pair):
    nets = method_nets(method, odd_pair)
    modules = global_pooling_modules(nets.up)
    assert modules
    seen = []
    handles = [m.register_forward_pre_hook(lambda m, args: seen.append(args[0].mean(dim=(2, 3)))) for m in modules]
    with torch.inference_mode():
        nets.fuse(odd_pair.Z, odd_pair.Y)
    for h in handles:
        h.remove()
    means = TiledForward(nets.up, odd_pair.Z, side=8).global_means()
    assert len(means) == len(seen)
    for mean, expected in zip(means, seen):
        assert torch.allclose(mean, expected, rtol=1e-6, atol=1e-7)
    # A tile's own mean is not the image's: tiles computed on their own differ from the whole image.
    with torch.inference_mode():
        whole = nets.fuse(odd_pair.Z, odd_pair.Y)
        alone = nets.up(odd_pair.Z[:, :, :8, :8])
    assert (alone - whole[:, :, :8, :8]).abs().max() > 1e-4


def test_an_unknown_global_pooling_is_refused():
    net = nn.Sequential(nn.Conv2d(2, 2, 1), nn.AdaptiveAvgPool2d(1))
    with pytest.raises(TilingError, match="spatial mean outside the known global pooling modules"):
        forward_tiled(net, torch.rand(1, 2, 9, 9), side=4)


def test_a_strided_layer_is_refused():
    with pytest.raises(TilingError, match=r"layer 0 has stride \(2, 2\)"):
        network_halo(nn.Sequential(nn.Conv2d(2, 2, 3, stride=2)))


def test_tiles_cover_the_image_once():
    count = np.zeros((37, 29), dtype=int)
    for tile, cell in tile_grid(37, 29, 8):
        count[tile.rows, tile.cols] += 1
        assert cell is None
    assert (count == 1).all()


def test_cells_come_whole_and_are_flagged_by_their_last_tile():
    grid = tile_grid(37, 29, 8, group=16)
    count = np.zeros((37, 29), dtype=int)
    done = np.zeros((37, 29), dtype=int)
    for tile, cell in grid:
        count[tile.rows, tile.cols] += 1
        if cell is not None:
            # Every tile of the cell came before or is this one.
            assert (count[cell.rows, cell.cols] == 1).all()
            assert cell.top % 16 == 0 and cell.left % 16 == 0
            done[cell.rows, cell.cols] += 1
    assert (count == 1).all() and (done == 1).all()
    # A side that is a multiple of the group: each tile is its own cell.
    assert all(cell == tile for tile, cell in tile_grid(37, 29, 16, group=8))
    with pytest.raises(TilingError, match="multiple or a divisor"):
        tile_grid(37, 29, 12, group=8)


def test_tile_side_fits_the_memory_budget_and_the_alignment():
    net = SpeUnet(8, 166)
    per_pixel = 4 * ACTIVATION_COPIES * 166
    side = choose_tile_side(net, 3000, 3000, align=48, margin=5, memory=256 * 2 ** 20)
    assert side % 48 == 0
    assert (side + 10) ** 2 * per_pixel <= 256 * 2 ** 20 < (side + 48 + 10) ** 2 * per_pixel
    assert choose_tile_side(net, 100, 70, align=3) == 102  # no larger than the image needs
    # A group larger than the fitting side: the side divides it.
    side = choose_tile_side(net, 3000, 3000, align=48, memory=256 * 2 ** 20, group=480)
    assert side == 96 and 480 % side == 0
    with pytest.raises(TilingError, match="positive multiple of 3"):
        TiledForward(net, torch.rand(1, 8, 9, 9), align=3, side=4)


def test_the_lr_grid_of_an_aligned_tile():
    tile = tile_grid(12, 9, 6)[1][0]
    assert tile.lr(3) == (slice(0, 2), slice(2, 3))
    with pytest.raises(TilingError, match="not aligned"):
        tile.lr(4)
