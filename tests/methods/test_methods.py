"""The method builders (methods/): the networks they build and the order in which they draw their
initial weights."""
import pytest
import torch
from torch import nn

from config import get_args
from data_loader import Dataset
from func import set_seed
from fusion.pair import Pair
from imagery.errors import DataError
from methods import METHODS, check_options
from model.spectral_upsample import LEAKY_SLOPE, widths


def original_speunet_draws(msi_channels, hsi_channels, attention=False):
    """The state the originals' spectral upsamplers start from after seeding: their layers built in
    their constructors' order with PyTorch's default initialisation (UDALN: the 1x1 convolutions;
    PFS2C2: the attention's two linear layers before the last convolution)."""
    sizes = widths(msi_channels, hsi_channels)
    layers = []
    for cin, cout in zip(sizes[:-2], sizes[1:-1]):
        layers += [nn.Conv2d(cin, cout, 1), nn.LeakyReLU(LEAKY_SLOPE)]
    if attention:
        width = sizes[-2]
        layers.append(nn.Sequential(nn.Linear(width, width // 2), nn.Linear(width // 2, width)))
    layers.append(nn.Conv2d(sizes[-2], sizes[-1], 1))
    return [p.detach() for layer in layers for p in layer.parameters()]


@pytest.mark.parametrize("method, attention", [("udaln", False), ("pfs2c2", True)])
def test_the_seed_gives_the_originals_initial_inverse_mapping(crop_data, method, attention):
    # The originals build the spectral upsampler first, right after seeding; SpaDnet's Conv2d draws random
    # numbers too, so building it first would shift every initial weight of the upsampler.
    args = get_args(["--default_datapath", str(crop_data), "--sp_root_path", str(crop_data), "--data_name",
                     "crop", "--device", "cpu", "--method", method])
    pair = Pair.from_dataset(Dataset(args), 0, args.device)
    set_seed(args.seed)
    nets, _ = METHODS[method](args, pair)
    set_seed(args.seed)
    expected = original_speunet_draws(pair.msi_channels, pair.hsi_channels, attention)
    got = [p.detach() for p in nets.up.parameters()]
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, rtol=0, atol=0)


def test_a_psf_wider_than_r_is_refused_where_patches_or_tiles_would_cut_it():
    # A real pair's r is known only once its files are read: --psf_size is checked against it then.
    class Scaled:
        scale = 3

    wide = get_args(["--scale_factor", "3", "--psf_size", "7", "--training_mode", "whole"])
    check_options(wide, Scaled, streamed=False)
    with pytest.raises(DataError, match="a scene this large .* cuts the image on those blocks; drop --psf_size"):
        check_options(wide, Scaled, streamed=True)
    wide.training_mode = "patches"
    with pytest.raises(DataError, match="patch training cuts the image"):
        check_options(wide, Scaled, streamed=False)
    small = get_args(["--scale_factor", "2", "--psf_size", "2"])
    with pytest.raises(DataError, match="--psf_size 2 is smaller than the pair's scale factor r = 3"):
        check_options(small, Scaled, streamed=False)
