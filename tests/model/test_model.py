"""The networks against straightforward per-band computations (the original code's structure)."""
import numpy as np
import pytest
import scipy.signal
import scipy.special
import torch
import torch.nn.functional as F

from data_loader import srf_from_bands, support_range
from fusion.patches import by_lr_rows
from model import GCE, MSIGain, SCFConv, SCFSpaDnet, SpaDnet, SpaUp, SpeDnet, SpeUnet, SpeUp
from model.degradation import gaussian_psf, lr_consistent, simulation_psf, spatial_degrade, spectral_degrade
from model.spectral_downsample import gaussian_support_weights
from model.spectral_upsample import widths


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def srf():
    """12 HSI bands, 3 MSI bands with overlapping contiguous supports."""
    return srf_from_bands(np.linspace(400, 700, 12), [(400, 500), (480, 600), (580, 700)], shape="gaussian")


def chw(cube):
    return torch.from_numpy(cube.transpose(2, 0, 1).copy()).float().unsqueeze(0)


def per_band_psf(x, weight, r):
    """The original SpaDnet: one single-channel strided convolution per band."""
    return torch.cat([F.conv2d(x[:, i:i + 1], weight, stride=r) for i in range(x.shape[1])], 1)


def per_band_srf(x, weights, sp_range):
    """The original SpeDnet: per MSI band a 1x1 convolution over its support, divided by the
    weight sum taken without gradient."""
    outs = []
    for w, (first, last) in zip(weights, sp_range):
        out = F.conv2d(x[:, first:last + 1], w.view(1, -1, 1, 1))
        outs.append(out / w.detach().sum())
    return torch.cat(outs, 1)


def test_spadnet_shape_and_initialisation():
    net = SpaDnet(5)
    assert net(torch.rand(2, 7, 20, 30)).shape == (2, 7, 4, 6)
    assert torch.allclose(net.kernel, torch.full((5, 5), 1 / 25))


def test_normalised_spadnet_is_a_positive_kernel_summing_to_one():
    torch.manual_seed(0)
    net = SpaDnet(4, normalised=True).double()
    assert [name for name, _ in net.named_parameters()] == ["psf_logits"]
    assert torch.allclose(net.kernel, torch.full((4, 4), 1 / 16, dtype=torch.float64))  # the original's start
    with torch.no_grad():
        net.psf_logits.normal_(0, 3)
    kernel = net.kernel
    assert kernel.min() > 0 and float(kernel.sum()) == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(kernel.numpy().ravel(), scipy.special.softmax(net.psf_logits.detach().numpy().ravel()))
    x = torch.rand(2, 3, 12, 8, dtype=torch.float64)
    torch.testing.assert_close(net(x), per_band_psf(x, kernel.view(1, 1, 4, 4), 4))
    # A constant image keeps its level: the PSF cannot carry a gain.
    torch.testing.assert_close(net(torch.full((1, 2, 8, 8), 0.7, dtype=torch.float64)),
                               torch.full((1, 2, 2, 2), 0.7, dtype=torch.float64))
    net(x).sum().backward()
    logits = net.psf_logits.detach().clone().requires_grad_()  # the same map written with torch's own ops
    per_band_psf(x, torch.softmax(logits.view(-1), 0).view(1, 1, 4, 4), 4).sum().backward()
    torch.testing.assert_close(net.psf_logits.grad, logits.grad)


@pytest.mark.parametrize("normalised", [False, True])
def test_spadnet_saves_its_kernel_in_the_originals_layout_and_loads_it_back_in_either_model(normalised):
    torch.manual_seed(1)
    trained = SpaDnet(4, normalised=normalised)
    with torch.no_grad():
        next(trained.parameters()).uniform_(0.1, 1.0)
    state = trained.original_state_dict()
    assert list(state) == ["psf.weight"] and state["psf.weight"].shape == (1, 1, 4, 4)  # the original's PSF.pth
    torch.testing.assert_close(state["psf.weight"].view(4, 4), trained.kernel)
    for model in (False, True):
        loaded = SpaDnet(4, normalised=model)
        loaded.load_state_dict(state)
        # The normalised model holds kernels that sum to 1: the papers' free kernel is divided by its sum.
        expected = trained.kernel / trained.kernel.sum() if model and not normalised else trained.kernel
        torch.testing.assert_close(loaded.kernel, expected, rtol=1e-6, atol=1e-8)
    resumed = SpaDnet(4, normalised=normalised)  # a training checkpoint keeps the parameters as they are
    resumed.load_state_dict(trained.state_dict())
    assert torch.equal(resumed.kernel, trained.kernel)


def test_lr_consistent_is_the_orthogonal_projection_onto_the_cubes_that_degrade_to_y(rng):
    r, psf = 3, rng.random((3, 3))
    psf /= psf.sum()
    x0, y = rng.random((6, 9, 2)), rng.random((2, 3, 2))
    x = lr_consistent(x0, y, psf, r)
    np.testing.assert_allclose(spatial_degrade(x, psf, r), y, atol=1e-12)
    # Independently: the minimum-norm correction through the dense matrix of the degradation (per band).
    operator = np.stack([spatial_degrade(e.reshape(6, 9, 1), psf, r).ravel() for e in np.eye(54)], axis=1)
    for band in range(2):
        correction = np.linalg.pinv(operator) @ (y[..., band].ravel() - operator @ x0[..., band].ravel())
        np.testing.assert_allclose(x[..., band].ravel(), x0[..., band].ravel() + correction, atol=1e-12)
    np.testing.assert_allclose(lr_consistent(x, y, psf, r), x, atol=1e-12)  # a projection: idempotent
    with pytest.raises(ValueError, match="needs an r x r PSF"):
        lr_consistent(x0, y, np.full((5, 5), 1 / 25), r)


def test_normalised_spadnet_with_a_known_psf_keeps_it_fixed():
    psf = gaussian_psf(5, 5 / 2.35482)
    net = SpaDnet(5, known_psf=psf, trainable=False, normalised=True)
    assert not net.normalised and not any(p.requires_grad for p in net.parameters())
    np.testing.assert_allclose(net.kernel.numpy(), psf[::-1, ::-1], rtol=1e-6)


def test_msi_gain_calibrates_an_msi_into_the_hsi_radiometry_and_back():
    # Z = g (X S + c): calibrate gives z / g - c, to_sensor its inverse; the identity at the start.
    z = torch.rand(2, 3, 5, 4, dtype=torch.float64)
    link = MSIGain(3).double()
    torch.testing.assert_close(link(z), z)
    gain, offset = torch.tensor([1.5, 0.9, 1.1], dtype=torch.float64), torch.tensor([0.0, 0.02, -0.01],
                                                                                    dtype=torch.float64)
    link.start_gain(gain)
    with torch.no_grad():
        link.offset.copy_(offset)
    torch.testing.assert_close(link(z), z / gain.view(1, 3, 1, 1) - offset.view(1, 3, 1, 1))
    torch.testing.assert_close(link.to_sensor(link(z)), z)
    torch.testing.assert_close(link.log_gain, gain.log())
    assert set(link.state_dict()) == {"log_gain", "offset"}
    # GCE keeps its own layers and names (GCE.pth files), and can start at a gain too.
    gce = GCE(3)
    assert set(gce.state_dict()) == {"gain.weight", "gain.bias", "residual.weight", "residual.bias"}
    gce.start_gain(gain.float())
    torch.testing.assert_close(gce(z.float()), (z * gain.view(1, 3, 1, 1)).float())


def test_spadnet_with_known_gaussian_equals_spatial_degrade(rng):
    cube = rng.random((30, 25, 6))
    psf = gaussian_psf(5, 5 / 2.35482)
    net = SpaDnet(5, known_psf=psf, trainable=False).double()
    got = net(chw(cube).double())[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(got, spatial_degrade(cube, psf, 5), rtol=1e-6, atol=1e-7)
    assert not any(p.requires_grad for p in net.parameters())


def test_spadnet_known_psf_is_a_convolution_kernel(rng):
    """A non-symmetric known PSF is applied as a convolution, like spatial_degrade."""
    cube, psf = rng.random((8, 8, 2)), rng.random((4, 4))
    got = SpaDnet(4, known_psf=psf, trainable=False).double()(chw(cube).double())[0].permute(1, 2, 0)
    np.testing.assert_allclose(got.numpy(), spatial_degrade(cube, psf, 4), rtol=1e-6)


def test_spadnet_forward_and_gradients_equal_per_band_convolutions():
    torch.manual_seed(0)
    x = torch.rand(2, 5, 23, 21, dtype=torch.float64, requires_grad=True)
    net = SpaDnet(4).double()
    torch.nn.init.normal_(net.psf.weight)
    grad_out = torch.rand(2, 5, 5, 5, dtype=torch.float64)
    out = net(x)
    out.backward(grad_out)
    got_x, got_w = x.grad.clone(), net.psf.weight.grad.clone()
    x.grad, net.psf.weight.grad = None, None
    ref = per_band_psf(x, net.psf.weight, 4)
    ref.backward(grad_out)
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(got_x, x.grad)
    torch.testing.assert_close(got_w, net.psf.weight.grad)


@pytest.mark.parametrize("normalised", [False, True])
def test_a_psf_wider_than_r_equals_spatial_degrade_with_edges_replicated(rng, normalised):
    # --psf_size 7 at r = 3: each LR pixel reads a 7 x 7 window, 2 HR pixels beyond its block on every
    # side; against scipy's convolution of the edge-padded band (model.degradation.spatial_degrade's definition).
    torch.manual_seed(0)
    net = SpaDnet(3, normalised=normalised, size=7).double()
    with torch.no_grad():
        (net.psf_logits if normalised else net.psf.weight).normal_()
    cube = rng.random((20, 17, 3)).astype(np.float32).astype(np.float64)  # chw gives float32
    kernel = net.kernel.numpy()
    got = net(chw(cube).double())[0].permute(1, 2, 0).detach().numpy()
    padded = np.pad(cube[:18, :15], [(2, 2), (2, 2), (0, 0)], mode="edge")
    expected = np.stack([scipy.signal.correlate2d(padded[..., b], kernel, "valid")[::3, ::3] for b in range(3)], -1)
    assert got.shape == (6, 5, 3)
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    np.testing.assert_allclose(got, spatial_degrade(cube, kernel[::-1, ::-1], 3), rtol=1e-10)
    # The analytic gradients (the image's and the kernel's) agree with finite differences.
    x = chw(cube[:9, :9, :1]).double().requires_grad_()
    assert torch.autograd.gradcheck(net, (x,))
    params = dict(net.named_parameters())
    assert torch.autograd.gradcheck(
        lambda *values: torch.func.functional_call(net, dict(zip(params, values)), (x.detach(),)),
        tuple(p.detach().clone().requires_grad_() for p in params.values()))


@pytest.mark.parametrize("normalised", [False, True])
def test_a_psf_wider_than_r_starts_as_the_papers_box(normalised):
    wide, box = SpaDnet(3, normalised=normalised, size=7).kernel.double(), SpaDnet(3, normalised=normalised).kernel
    assert float(wide.sum()) == pytest.approx(1.0, abs=1e-6) and wide.min() > 0
    assert float(wide[2:5, 2:5].sum()) == pytest.approx(0.95 + 0.05 * 9 / 49, abs=1e-6)  # 95 % as the r x r start
    torch.testing.assert_close(box, torch.full((3, 3), 1 / 9))
    if normalised:
        assert torch.equal(SpaDnet(3, normalised=True).psf_logits, torch.zeros(3, 3))  # K = r: as before


def test_a_known_psf_wider_than_r_is_used_at_its_own_size(rng):
    psf = simulation_psf(3, 3 / 2.35482, size=5, shift=1)
    net = SpaDnet(3, known_psf=psf, trainable=False).double()
    assert net.size == 7 and net.padding == (2, 2)
    cube = rng.random((15, 12, 2))
    np.testing.assert_allclose(net(chw(cube).double())[0].permute(1, 2, 0).numpy(), spatial_degrade(cube, psf, 3),
                               rtol=1e-6)


def test_by_lr_rows_with_a_wide_psf_equals_the_whole_image(rng):
    net = SpaDnet(3, normalised=True, size=8).double()
    with torch.no_grad():
        net.psf_logits.normal_()
    x = chw(rng.random((31, 20, 2))).double()
    assert net.context_rows == 1
    for rows in (1, 2, 4):
        torch.testing.assert_close(by_lr_rows(net, x, 3, rows=rows), net(x))
    # A callable around SpaDnet (Nets.lr_msi) is told its context.
    torch.testing.assert_close(by_lr_rows(lambda z: 2 * net(z), x, 3, rows=2, context=net.context_rows), 2 * net(x))


def test_spednet_initialisation_is_the_original_gaussian(srf):
    sp_range = support_range(srf)
    net = SpeDnet(sp_range, 12)
    for j, (first, last) in enumerate(sp_range):
        n = last - first + 1
        t = (n - 1) / 2
        h = np.exp(-(np.arange(-t, t + 1) ** 2) / (2 * 3.5 ** 2))
        np.testing.assert_allclose(net.weight[first:last + 1, j].detach().numpy(), h / h.sum(), rtol=1e-6)
        assert torch.all(net.weight[:first, j] == 0) and torch.all(net.weight[last + 1:, j] == 0)
    np.testing.assert_allclose(gaussian_support_weights(1), [1.0])


def test_spednet_with_known_srf_equals_spectral_degrade(rng, srf):
    cube = rng.random((6, 7, 12))
    net = SpeDnet(support_range(srf), 12, known_srf=srf, trainable=False).double()
    got = net(chw(cube).double())[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(got, spectral_degrade(cube, srf), rtol=1e-6)
    assert not net.weight.requires_grad


def test_spednet_forward_and_gradients_equal_the_original_per_band_layers(srf):
    torch.manual_seed(0)
    sp_range = support_range(srf)
    net = SpeDnet(sp_range, 12).double()
    with torch.no_grad():
        net.weight.add_(0.1 * torch.rand_like(net.weight) * net.mask)
    x = torch.rand(2, 12, 4, 5, dtype=torch.float64)
    grad_out = torch.rand(2, 3, 4, 5, dtype=torch.float64)
    out = net(x)
    out.backward(grad_out)
    weights = [net.weight[first:last + 1, j].detach().clone().requires_grad_() for j, (first, last) in enumerate(sp_range)]
    ref = per_band_srf(x, weights, sp_range)
    ref.backward(grad_out)
    torch.testing.assert_close(out, ref)
    for j, (first, last) in enumerate(sp_range):
        torch.testing.assert_close(net.weight.grad[first:last + 1, j], weights[j].grad)
    assert torch.all(net.weight.grad[net.mask == 0] == 0), "no gradient outside the supports"


def test_spednet_loads_the_original_checkpoint_layout(srf):
    sp_range = support_range(srf)
    original = {f"conv2d_list.{j}.weight": torch.rand(1, last - first + 1, 1, 1)
                for j, (first, last) in enumerate(sp_range)}
    net = SpeDnet(sp_range, 12)
    net.load_state_dict(dict(original))
    for j, (first, last) in enumerate(sp_range):
        torch.testing.assert_close(net.weight[first:last + 1, j], original[f"conv2d_list.{j}.weight"].view(-1))


def test_speunet_widths_follow_the_paper():
    assert widths(8, 68) == [8, 16, 32, 64, 68]   # floor(log2(8.5)) = 3
    assert widths(8, 46) == [8, 16, 32, 46]       # floor(log2(5.75)) = 2
    assert widths(4, 8) == [4, 8, 8]


def test_speunet_equals_the_original_convolution_stack():
    torch.manual_seed(0)
    net = SpeUnet(8, 46)
    convs = [m for m in net.sequential if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == \
        [(8, 16, (1, 1)), (16, 32, (1, 1)), (32, 46, (1, 1))]
    for batch in (1, 3):
        z = torch.rand(batch, 8, 9, 11)
        ref = z
        for conv in convs:
            ref = F.leaky_relu(F.conv2d(ref, conv.weight, conv.bias), 0.2)
        torch.testing.assert_close(net(z), ref, rtol=1e-5, atol=1e-6)


def test_checkpoints_round_trip(tmp_path, srf):
    for make in (lambda: SpaDnet(3), lambda: SpeDnet(support_range(srf), 12), lambda: SpeUnet(3, 12)):
        a, b = make(), make()
        with torch.no_grad():
            for p in a.parameters():
                p.add_(torch.rand_like(p))
        torch.save(a.state_dict(), tmp_path / "m.pth")
        b.load_state_dict(torch.load(tmp_path / "m.pth"))
        for pa, pb in zip(a.state_dict().values(), b.state_dict().values()):
            torch.testing.assert_close(pa, pb)


# ----------------------------------------------------------------------------- PFS2C2

def test_spaup_starts_from_the_gaussian_psf_and_maps_to_hr_size():
    net = SpaUp(5, 5 / 2.35482)
    np.testing.assert_allclose(net.inv_conv.weight[0, 0].detach().numpy(), gaussian_psf(5, 5 / 2.35482), rtol=1e-6)
    assert net.inv_conv.weight.requires_grad
    assert net(torch.rand(2, 6, 4, 3)).shape == (2, 6, 20, 15)


def test_spaup_forward_and_gradients_equal_per_band_transposed_convolutions():
    torch.manual_seed(0)
    net = SpaUp(4, 1.0).double()
    torch.nn.init.normal_(net.inv_conv.weight)
    y = torch.rand(2, 3, 5, 6, dtype=torch.float64, requires_grad=True)
    grad_out = torch.rand(2, 3, 20, 24, dtype=torch.float64)
    out = net(y)
    out.backward(grad_out)
    got_y, got_w = y.grad.clone(), net.inv_conv.weight.grad.clone()
    y.grad, net.inv_conv.weight.grad = None, None
    ref = torch.cat([F.conv_transpose2d(y[:, i:i + 1], net.inv_conv.weight, stride=4) for i in range(3)], 1)
    ref.backward(grad_out)
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(got_y, y.grad)
    torch.testing.assert_close(got_w, net.inv_conv.weight.grad)


def test_spaup_files_load_both_ways_with_the_authors_layout():
    # The authors' module (matrix_dot_lr2hr) keeps the initial kernel as a buffer next to the weight.
    ours = SpaUp(5, 5 / 2.35482)
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == {"inv_PSF": (5, 5),
                                                                          "inv_conv.weight": (1, 1, 5, 5)}
    np.testing.assert_allclose(ours.inv_PSF.numpy(), gaussian_psf(5, 5 / 2.35482), rtol=1e-6)
    authors = {"inv_PSF": torch.rand(5, 5), "inv_conv.weight": torch.rand(1, 1, 5, 5)}
    ours.load_state_dict(authors)
    torch.testing.assert_close(ours.inv_conv.weight, authors["inv_conv.weight"])
    torch.testing.assert_close(ours.inv_PSF, authors["inv_PSF"])
    earlier = SpaUp(5, 1.0)
    earlier.load_state_dict({"inv_conv.weight": authors["inv_conv.weight"]})  # our files before the buffer
    torch.testing.assert_close(earlier.inv_conv.weight, authors["inv_conv.weight"])


def test_speup_inserts_the_spectral_attention_before_the_last_convolution():
    torch.manual_seed(0)
    net = SpeUp(8, 46)
    kinds = [type(m).__name__ for m in net.sequential]
    assert kinds == ["Conv2d", "LeakyReLU", "Conv2d", "LeakyReLU", "SpectralAttention", "Conv2d"]
    attention = net.sequential[4]
    x = torch.rand(2, 32, 5, 5)
    weights = attention.fc(x.mean(dim=(2, 3)))
    torch.testing.assert_close(attention(x), x * weights[:, :, None, None])
    assert attention(x).shape == x.shape
    z = torch.rand(1, 8, 6, 6)
    before = net(z)
    with torch.no_grad():
        attention.fc[2].bias.add_(1.0)
    assert not torch.allclose(net(z), before), "the attention must change the result"


# ----------------------------------------------------------------------------- UDS2C2

def test_scfconv_output_shape_and_per_sample_kernels():
    torch.manual_seed(0)
    conv = SCFConv(8, 16, 3, attention_start="sigmoid")
    x = torch.rand(3, 8, 7, 9)
    assert conv(x).shape == (3, 16, 7, 9)
    kernels = conv.kernels(x)
    assert kernels.shape == (3, 16, 8, 3, 3)
    assert not torch.allclose(kernels[0], kernels[1])
    # The batch is handled per sample: each output equals that sample run alone.
    for b in range(3):
        torch.testing.assert_close(conv(x)[b:b + 1], conv(x[b:b + 1]), rtol=1e-5, atol=1e-6)


def test_scfconv_with_attentions_at_one_is_the_static_convolution():
    torch.manual_seed(0)
    conv = SCFConv(4, 6, 3)
    conv.use_attention = False
    x = torch.rand(2, 4, 8, 8)
    torch.testing.assert_close(conv(x), F.conv2d(x, conv.weight, conv.bias, padding=1), rtol=1e-5, atol=1e-6)


def test_scfconv_identity_start_is_exactly_the_static_convolution_and_learns_its_attentions():
    torch.manual_seed(0)
    conv = SCFConv(4, 6, 3)
    x = torch.rand(2, 4, 8, 8)
    for factor in conv.attentions(x):
        assert torch.equal(factor, torch.ones_like(factor))
    torch.testing.assert_close(conv(x), F.conv2d(x, conv.weight, conv.bias, padding=1), rtol=1e-5, atol=1e-6)
    conv(x).square().sum().backward()  # the heads start at zero but receive a gradient
    for head in (conv.spatial, conv.channel, conv.filter):
        assert head.weight.grad.abs().sum() > 0 and head.bias.grad.abs().sum() > 0


def test_scfconv_sigmoid_start_scales_the_kernel_by_about_an_eighth():
    torch.manual_seed(0)
    conv = SCFConv(8, 16, 3, attention_start="sigmoid")
    x = torch.rand(4, 8, 6, 6)
    ratio = (conv.kernels(x) / conv.weight.unsqueeze(0)).mean().detach()
    assert 0.08 < float(ratio) < 0.18
    with pytest.raises(ValueError, match="attention_start must be one of"):
        SCFConv(8, 16, 3, attention_start="one")


def test_scfconv_attention_factors_multiply_the_static_kernel():
    torch.manual_seed(0)
    conv = SCFConv(4, 6, 3, attention_start="sigmoid")
    x = torch.rand(1, 4, 5, 5)
    spatial, channel, filters = conv.attentions(x)
    expected = conv.weight * filters[0].view(6, 1, 1, 1) * channel[0].view(1, 4, 1, 1) * spatial[0].view(1, 1, 3, 3)
    torch.testing.assert_close(conv.kernels(x)[0], expected)
    torch.testing.assert_close(conv(x), F.conv2d(x, expected, conv.bias, padding=1), rtol=1e-5, atol=1e-6)


def test_speunet_with_scfconv_hidden_layers():
    net = SpeUnet(8, 46, hidden=lambda cin, cout: SCFConv(cin, cout, 3))
    assert [type(m).__name__ for m in net.sequential] == ["SCFConv", "LeakyReLU", "SCFConv", "LeakyReLU", "Conv2d"]
    assert net(torch.rand(1, 8, 6, 6)).shape == (1, 46, 6, 6)


def perturbed(net, std=0.5):
    """``net`` with every attention head moved off its zero start."""
    with torch.no_grad():
        for head in (net.squeeze[0], net.spatial, net.gain):
            head.weight.normal_(0, std)
            head.bias.normal_(0, std)
    return net


@pytest.mark.parametrize("normalised", [False, True])
def test_scf_spadnet_starts_as_spadnet(normalised):
    torch.manual_seed(0)
    x = torch.rand(2, 5, 15, 20)
    dynamic, static = SCFSpaDnet(5, normalised=normalised), SpaDnet(5, normalised=normalised)
    torch.testing.assert_close(dynamic(x), static(x))


@pytest.mark.parametrize("normalised", [False, True])
def test_scf_spadnet_degrades_each_band_by_its_own_kernel(normalised):
    torch.manual_seed(0)
    net = perturbed(SCFSpaDnet(3, normalised=normalised)).double()
    x = torch.rand(2, 4, 9, 12, dtype=torch.float64) * torch.arange(1, 5, dtype=torch.float64).view(1, 4, 1, 1)
    r = 3
    h = torch.relu(net.squeeze[0](x.mean(dim=(2, 3)).reshape(-1, 1)))
    expected = []
    for n, band in enumerate(x.reshape(-1, 1, 9, 12)):  # the formula, band by band
        kernel = net.kernel * 2 * torch.sigmoid(net.spatial(h[n])).view(r, r)
        kernel = kernel / kernel.sum() if normalised else kernel * 2 * torch.sigmoid(net.gain(h[n]))
        expected.append(F.conv2d(band[None], kernel.view(1, 1, r, r), stride=r))
    torch.testing.assert_close(net(x), torch.cat(expected).view(2, 4, 3, 4))
    kernels = net.band_kernels(x.mean(dim=(2, 3)))
    assert not torch.allclose(kernels[0], kernels[1])
    if normalised:
        torch.testing.assert_close(kernels.sum(dim=(1, 2)), torch.ones(8, dtype=torch.float64))
    # by_lr_rows must not split it: each band's kernel comes from its mean over the whole image.
    assert torch.equal(by_lr_rows(net, x[:1], r, rows=1), net(x[:1]))


def test_gce_is_the_identity_at_initialisation():
    x = torch.rand(2, 8, 9, 7)
    torch.testing.assert_close(GCE(8)(x), x)


def test_gce_learns_a_per_band_gain_and_offset():
    torch.manual_seed(0)
    gain = torch.tensor([0.95, 1.05, 1.02]).view(1, 3, 1, 1)
    offset = torch.tensor([0.01, -0.02, 0.03]).view(1, 3, 1, 1)
    x = torch.rand(1, 3, 16, 16)
    target = gain * x + offset
    gce = GCE(3)
    opt = torch.optim.Adam(gce.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1 - step / 1000)
    for _ in range(1000):
        opt.zero_grad()
        loss = (gce(x) - target).abs().mean()
        loss.backward()
        opt.step()
        scheduler.step()
    assert loss.item() < 1e-3
    probe = torch.rand(1, 3, 16, 16)
    torch.testing.assert_close(gce(probe), gain * probe + offset, rtol=0, atol=0.01)
