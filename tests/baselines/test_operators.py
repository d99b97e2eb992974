"""baselines.operators: the degradation operators against independent computations, their adjoints,
the bicubic floor against PyTorch, and the input checks' messages."""
import numpy as np
import pytest
import scipy.signal
import torch
import torch.nn.functional as F

from baselines import operators as op
from data_loader import DataError
from model.degradation import gaussian_psf, spatial_degrade


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def random_psf(rng, r):
    psf = rng.random((r, r))
    return psf / psf.sum()


@pytest.mark.parametrize("r", [2, 3, 5])
def test_blur_decimate_equals_convolve2d_valid_subsampled_and_spatial_degrade(rng, r):
    cube = rng.random((4 * r, 3 * r, 2))
    psf = random_psf(rng, r)  # not symmetric: catches a missing flip
    expected = np.stack([scipy.signal.convolve2d(cube[:, :, k], psf, "valid")[::r, ::r] for k in range(2)], axis=2)
    np.testing.assert_allclose(op.blur_decimate(cube, psf, r), expected, rtol=0, atol=1e-14)
    np.testing.assert_allclose(op.blur_decimate(cube, psf, r), spatial_degrade(cube, psf, r), rtol=0, atol=1e-14)
    np.testing.assert_allclose(op.blur_decimate(cube[:, :, 0], psf, r), expected[:, :, 0], rtol=0, atol=1e-14)


@pytest.mark.parametrize("r", [2, 3, 5])
def test_adjoints_satisfy_the_inner_product_identity(rng, r):
    x, y = rng.random((4 * r, 3 * r, 3)), rng.random((4, 3, 3))
    psf = random_psf(rng, r)
    assert np.vdot(op.blur_decimate(x, psf, r), y) == pytest.approx(np.vdot(x, op.blur_decimate_adjoint(y, psf, r)))
    assert np.vdot(op.decimate(x, r), y) == pytest.approx(np.vdot(x, op.zero_fill(y, r)))
    otf = op.psf_otf(psf, x.shape[:2])
    x2 = rng.random(x.shape)
    assert np.vdot(op.fft_blur(x, otf), x2) == pytest.approx(np.vdot(x, op.fft_blur_adjoint(x2, otf)))


@pytest.mark.parametrize("r", [2, 4, 5])
def test_fft_blur_then_decimate_equals_the_block_operator(rng, r):
    x = rng.random((5 * r, 4 * r, 3))
    psf = random_psf(rng, r)
    via_fft = op.decimate(op.fft_blur(x, op.psf_otf(psf, x.shape[:2])), r)
    np.testing.assert_allclose(via_fft, spatial_degrade(x, psf, r), rtol=0, atol=1e-13)


@pytest.mark.parametrize("r", [3, 5, 8])
def test_degradation_matrices_reproduce_the_gaussian_degradation(rng, r):
    x = rng.random((3 * r, 2 * r, 4))
    psf = gaussian_psf(r, r / 2.35482)
    d_rows, d_cols = op.degradation_matrices(psf, r, *x.shape[:2])
    assert d_rows.shape == (3, 3 * r) and d_cols.shape == (2, 2 * r)
    separable = np.einsum("ap,pqk,bq->abk", d_rows, x, d_cols)
    np.testing.assert_allclose(separable, spatial_degrade(x, psf, r), rtol=0, atol=1e-14)


def test_degradation_matrices_refuse_a_non_separable_psf(rng):
    with pytest.raises(DataError, match="not separable"):
        op.degradation_matrices(random_psf(rng, 3), 3, 6, 6)


@pytest.mark.parametrize("r,shape", [(2, (5, 7)), (3, (4, 4)), (5, (6, 3)), (8, (2, 5))])
def test_bicubic_upsample_equals_torch_interpolate(rng, r, shape):
    y = rng.random(shape + (3,))
    expected = F.interpolate(torch.from_numpy(y.transpose(2, 0, 1))[None], scale_factor=r, mode="bicubic",
                             align_corners=False)[0].numpy().transpose(1, 2, 0)
    np.testing.assert_allclose(op.bicubic_upsample(y, r), expected, rtol=0, atol=1e-13)
    np.testing.assert_allclose(op.bicubic_matrix(shape[0], r).sum(axis=1), 1.0, rtol=0, atol=1e-14)


# ----------------------------------------------------------------------------- input checks

@pytest.fixture
def args(rng):
    r, c, cm = 2, 5, 3
    srf = rng.random((c, cm))
    return dict(Y=rng.random((3, 4, c)), Z=rng.random((6, 8, cm)), r=r, psf=np.full((r, r), 0.25),
                srf=srf / srf.sum(axis=0))


def test_check_inputs_returns_float64_arrays(args):
    Y, Z, r, psf, srf = op.check_inputs(**{**args, "Y": args["Y"].astype(np.float32)})
    assert Y.dtype == Z.dtype == psf.dtype == srf.dtype == np.float64 and r == 2


@pytest.mark.parametrize("change,phrase", [
    (lambda a: {"Y": a["Z"], "Z": a["Y"]}, "are Y and Z swapped"),
    (lambda a: {"Z": a["Z"][:5]}, "crop Z"),
    (lambda a: {"r": 2.0}, "integer >= 1"),
    (lambda a: {"r": True}, "integer >= 1"),
    (lambda a: {"Y": a["Y"][:, :, 0]}, "must have 3 dimensions"),
    (lambda a: {"Y": "cube"}, "numeric array"),
    (lambda a: {"Y": np.where(a["Y"] > 0.5, np.nan, a["Y"])}, "NaN or Inf"),
    (lambda a: {"psf": np.full((3, 3), 1 / 9)}, "r x r = 2 x 2 kernel"),
    (lambda a: {"psf": np.ones((2, 2))}, "normalise it"),
    (lambda a: {"srf": a["srf"][:4]}, "rows = HSI bands"),
    (lambda a: {"srf": a["srf"] * 2}, "columns sum to .* not 1; normalise them"),
    (lambda a: {"srf": a["srf"] - a["srf"].mean()}, "negative values"),
])
def test_check_inputs_refuses_bad_arguments_with_the_fix(args, change, phrase):
    with pytest.raises(DataError, match=phrase) as info:
        op.check_inputs(**{**args, **change(args)}, method="GSA")
    assert str(info.value).startswith("GSA: ")
