"""uSDN (baselines/usdn.py): the networks against a layer-by-layer computation, the objectives against
their formulas, the stopping rules, a mixture the model holds against bicubic, and the parameter checks."""
import numpy as np
import pytest
import torch

from baselines import fuse_with, usdn
from evaluation import evaluate
from imagery.errors import DataError
from model.degradation import gaussian_psf, spatial_degrade

R = 4
# Few steps, so that each training takes seconds; the defaults are the authors' (module docstring).
FAST = {"init_steps": 1000, "max_steps": 4000, "patience": 20}
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def mixture_case():
    """A 32 x 32 x 24 cube of mixtures of 4 endmembers whose abundances change every 2 pixels (finer than
    r = 4, so bicubic cannot resolve them), its LR-HSI by a Gaussian PSF and a 4-band HR-MSI (block SRF)."""
    rng = np.random.default_rng(0)
    abundances = rng.dirichlet(np.full(4, 0.3), (16, 16)).repeat(2, 0).repeat(2, 1)
    x = abundances @ rng.uniform(0.05, 0.95, (4, 24))
    srf = np.kron(np.eye(4), np.full((6, 1), 1 / 6))
    psf = gaussian_psf(R, R / 2.35482)
    return x, spatial_degrade(x, psf, R), x @ srf, psf, srf


def layer_by_layer(stack, a, x):
    """The authors' dense stack as their graph computes it: one layer at a time, concatenating."""
    features = torch.cat([x, stack.first(a)], dim=1)
    for layer in stack.stacked:
        features = torch.cat([features, layer(features)], dim=1)
    return stack.out(features)


@pytest.mark.parametrize("projected", [False, True])
def test_the_encoder_equals_the_layer_by_layer_network(projected):
    """The encoder composes its linear layers into one affine map; its representation and the gradients
    of its parameters equal those of the network computed layer by layer, with u^(1/b) as a power."""
    torch.manual_seed(0)
    srf = torch.rand(10, 3) if projected else None
    encoder = usdn.DirichletEncoder(10, 5, projection=srf)
    for module in encoder.modules():
        if isinstance(module, torch.nn.Linear):
            torch.nn.init.uniform_(module.bias, -0.5, 0.5)
    x = torch.randn(50, 10)
    a = x if srf is None else x @ srf
    u = torch.sigmoid(layer_by_layer(encoder.uniform, a, x))
    b = torch.nn.functional.softplus(layer_by_layer(encoder.beta, a, a))
    v = u ** (1 / b)
    expected = torch.stack([v[:, k] * torch.prod(1 - v[:, :k], dim=1) for k in range(5)], dim=1)
    ours = encoder(x)
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-6)
    gradients = [torch.autograd.grad(s.pow(2).sum(), list(encoder.parameters())) for s in (ours, expected)]
    for g_ours, g_expected in zip(*gradients):
        torch.testing.assert_close(g_ours, g_expected, rtol=1e-4, atol=1e-6)


def test_stick_breaking_gives_sparse_dirichlet_representations():
    v = torch.rand(100, 12)
    s = usdn.stick_breaking(v)
    assert (s >= 0).all()
    torch.testing.assert_close(s.sum(dim=1), 1 - torch.prod(1 - v, dim=1))


def test_the_objectives_follow_their_formulas():
    rng = np.random.default_rng(2)
    s = rng.dirichlet(np.ones(4), 30)
    a, b = rng.random((30, 4)), rng.random((30, 4))
    decoder = usdn.SharedDecoder(4, 6)
    torch.nn.init.normal_(decoder.w1), torch.nn.init.normal_(decoder.w2)
    mean = torch.rand(1, 6)
    endmembers = (decoder.w1 @ decoder.w2 + mean).detach().double().numpy()
    t = torch.from_numpy
    assert usdn.sparsity(t(s)).item() == pytest.approx(np.mean(-s * np.log(s + 1e-8)), rel=1e-9)
    assert usdn.volume(decoder, mean).item() == pytest.approx(np.mean(endmembers.T @ endmembers), rel=1e-5)
    cosines = (a * b).sum(0) / np.sqrt((a ** 2).sum(0) * (b ** 2).sum(0))
    assert usdn.angle(t(a), t(b)).item() == pytest.approx(np.arccos(cosines).mean() / 3.1416, rel=1e-6)
    assert usdn.squared_error(t(a), t(b)).item() == pytest.approx(((a - b) ** 2).sum(0).mean())


def test_the_authors_scores_are_band_angles_and_rmse_on_the_0_255_scale():
    target = np.array([[0.2, 0.5], [0.4, 0.5]])
    estimate = np.array([[0.4, 1.5], [0.2, 0.5]])  # band 2 clipped to (1, 0.5)
    rmse, degrees = usdn.band_angle_and_rmse(estimate, target)
    assert rmse == pytest.approx(255 * np.sqrt((0.2 ** 2 * 2 + 0.5 ** 2) / 4))
    first = np.degrees(np.arccos(0.16 / (np.hypot(0.2, 0.4) * np.hypot(0.4, 0.2))))
    second = np.degrees(np.arccos(0.75 / (np.hypot(0.5, 0.5) * np.hypot(1, 0.5))))
    assert degrees == pytest.approx((first + second) / 2 * np.pi / 3.14159)


@pytest.fixture(scope="module")
def plateau_run(mixture_case, one_torch_thread):
    x, y, z, psf, srf = mixture_case
    history = []
    return usdn.fuse(y, z, R, psf, srf, reference=x, history=history, **FAST), history


def test_on_a_mixture_it_far_exceeds_bicubic(mixture_case, plateau_run):
    x, y, z, psf, srf = mixture_case
    ours = evaluate(x, plateau_run[0], R, ssim=False)["PSNR"]
    assert ours > evaluate(x, fuse_with("bicubic", y, z, R, psf, srf), R, ssim=False)["PSNR"] + 5


def test_the_plateau_rule_keeps_the_best_check_and_stops_after_its_patience(mixture_case, plateau_run):
    """The image returned is the check with the lowest HR-MSI RMSE, and the training ended ``patience``
    checks after it (or at max_steps). The LR-HSI network stopped at the first check within 1.5 degrees."""
    x, _, z, _, srf = mixture_case
    fused, history = plateau_run
    lr, hr = [c for c in history if c["stage"] == "lr_hsi"], [c for c in history if c["stage"] == "hr_msi"]
    assert lr[-1]["degrees"] <= usdn.TOLERANCE and all(c["degrees"] > usdn.TOLERANCE for c in lr[:-1])
    best = min(hr, key=lambda c: c["msi_rmse"])
    rmse, _ = usdn.band_angle_and_rmse((fused @ srf).reshape(-1, 4), z.reshape(-1, 4))
    assert rmse == pytest.approx(best["msi_rmse"], rel=1e-5)
    patience_over = hr[-1]["step"] - best["step"] == FAST["patience"] * usdn.HR_CHECK_EVERY
    assert patience_over or hr[-1]["step"] == FAST["max_steps"]


def test_the_reference_rule_stops_when_both_scores_worsen_and_keeps_the_last_state(mixture_case):
    x, y, z, psf, srf = mixture_case
    history = []
    fused = usdn.fuse(y, z, R, psf, srf, stop="reference", reference=x, history=history, **FAST)
    hr = [c for c in history if c["stage"] == "hr_msi"]
    if hr[-1]["step"] < FAST["max_steps"]:
        assert hr[-2]["degrees"] / hr[-1]["degrees"] < usdn.WORSE and hr[-2]["rmse"] / hr[-1]["rmse"] < usdn.WORSE
    rmse, degrees = usdn.band_angle_and_rmse(fused.reshape(-1, 24), x.reshape(-1, 24))
    assert (rmse, degrees) == pytest.approx((hr[-1]["rmse"], hr[-1]["degrees"]), rel=1e-5)


def test_an_lr_network_that_misses_its_tolerance_is_an_error(mixture_case):
    _, y, z, psf, srf = mixture_case
    with pytest.raises(DataError, match=r"within .* degrees after 50 steps, not the 0.001 .* raise tolerance"):
        usdn.fuse(y, z, R, psf, srf, tolerance=0.001, max_steps=50)


def test_bad_parameters_are_refused(mixture_case):
    x, y, z, psf, srf = mixture_case
    with pytest.raises(DataError, match="stop = 'oracle' must be one of plateau, reference"):
        usdn.fuse(y, z, R, psf, srf, stop="oracle")
    with pytest.raises(DataError, match=r"reference X must be 32 x 32 x 24 \(stop='reference' needs it\); got None"):
        usdn.fuse(y, z, R, psf, srf, stop="reference")
    with pytest.raises(DataError, match="tolerance = -1 must be a positive number of degrees"):
        usdn.fuse(y, z, R, psf, srf, tolerance=-1)


def test_a_loss_that_becomes_nan_stops_the_training_with_an_error():
    weight = torch.nn.Parameter(torch.ones(1))
    with pytest.raises(FloatingPointError, match="a training loss became nan; try another seed"):
        usdn._descend(torch.optim.Adam([weight]), weight * float("nan"))
