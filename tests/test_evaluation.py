"""Tests for evaluation.py (hyperspectral image-quality metrics)."""

import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import evaluation as ev  # noqa: E402

METRIC_FUNCS = [
    ev.compute_sam,
    ev.compute_psnr,
    ev.compute_cc,
    ev.compute_rmse,
    ev.compute_ssim,
    lambda t, p: ev.compute_ergas(t, p, 4),
    lambda t, p: ev.evaluate(t, p, 4),
]


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def cube_pair(rng):
    """A 20x20x4 reference in [0, 1) and a noisy estimate of it."""
    x_true = rng.random((20, 20, 4))
    x_pred = x_true + 0.05 * rng.standard_normal((20, 20, 4))
    return x_true, x_pred


def _as_cube(bands):
    """Build an H x W x C cube from a list of H x W bands."""
    return np.stack([np.asarray(b, dtype=np.float64) for b in bands], axis=2)


# ----------------------------------------------------------------- SAM


def test_sam_hand_computed():
    # Pixel 1: t=(1,0), p=(1,1): cos = 1 / (1*sqrt(2) + 1e-7)  (~45 deg)
    # Pixel 2: t=(0,1), p=(1,0): cos = 0 -> 90 deg
    x_true = np.array([[[1.0, 0.0], [0.0, 1.0]]])  # 1x2x2
    x_pred = np.array([[[1.0, 1.0], [1.0, 0.0]]])
    angle1 = np.degrees(np.arccos(1.0 / (1.0 * np.sqrt(2.0) + 1e-7)))
    expected = (angle1 + 90.0) / 2
    assert ev.compute_sam(x_true, x_pred) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(67.5, abs=1e-4)


def test_sam_identical_is_exactly_zero(cube_pair):
    x_true, _ = cube_pair
    value = ev.compute_sam(x_true, x_true.copy())
    assert value == 0.0


def test_sam_orthogonal_is_90():
    x_true = _as_cube([np.ones((3, 3)), np.zeros((3, 3))])
    x_pred = _as_cube([np.zeros((3, 3)), 2 * np.ones((3, 3))])
    assert ev.compute_sam(x_true, x_pred) == pytest.approx(90.0, abs=1e-12)


def test_sam_scaled_spectra_near_zero(rng):
    x_true = rng.random((4, 4, 6)) + 1.0
    x_pred = 2.5 * x_true
    # Only the upstream 1e-7 keeps this from being 0: cos = 2.5 n^2 / (2.5 n^2 + 1e-7).
    n2 = np.sum(x_true**2, axis=2)
    expected = np.degrees(np.arccos(2.5 * n2 / (2.5 * n2 + 1e-7))).mean()
    value = ev.compute_sam(x_true, x_pred)
    assert value == pytest.approx(expected, rel=1e-3, abs=1e-9)
    assert value < 0.01


def test_sam_zero_pixels_defined():
    # pixel 0: both zero -> 0 deg; pixel 1: only the estimate zero -> 90 deg;
    # pixel 2: only the reference zero -> 90 deg; pixel 3: identical -> 0 deg.
    x_true = np.array([[[0.0, 0.0], [1.0, 2.0], [0.0, 0.0], [3.0, 1.0]]])
    x_pred = np.array([[[0.0, 0.0], [0.0, 0.0], [1.0, 1.0], [3.0, 1.0]]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = ev.compute_sam(x_true, x_pred)
    assert value == pytest.approx((0.0 + 90.0 + 90.0 + 0.0) / 4, abs=1e-12)


def test_sam_matches_upstream_on_random(cube_pair):
    x_true, x_pred = cube_pair
    t = x_true.reshape(-1, 4)
    p = x_pred.reshape(-1, 4)
    cos = (t * p).sum(1) / (np.linalg.norm(t, 2, 1) * np.linalg.norm(p, 2, 1) + 1e-7)
    expected = np.mean(np.arccos(cos) * 180 / np.pi)
    assert ev.compute_sam(x_true, x_pred) == pytest.approx(expected, rel=1e-12)


# ----------------------------------------------------------------- PSNR


def test_psnr_hand_computed():
    # band 0: t=(1, 0.5), p=(0.9, 0.5): peak 1, MSE (0.1^2 + 0) / 2 = 0.005
    # band 1: t=(2, 1),   p=(2, 0):     peak 2, MSE (0 + 1^2) / 2 = 0.5
    x_true = _as_cube([[[1.0, 0.5]], [[2.0, 1.0]]])
    x_pred = _as_cube([[[0.9, 0.5]], [[2.0, 0.0]]])
    expected = (10 * np.log10(1.0**2 / 0.005) + 10 * np.log10(2.0**2 / 0.5)) / 2
    assert ev.compute_psnr(x_true, x_pred) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx((23.0103 + 9.0309) / 2, abs=1e-4)


def test_psnr_matches_band_loop(cube_pair):
    x_true, x_pred = cube_pair
    per_band = []
    for b in range(x_true.shape[2]):
        t, p = x_true[:, :, b], x_pred[:, :, b]
        per_band.append(10 * np.log10(t.max() ** 2 / np.mean((t - p) ** 2)))
    assert ev.compute_psnr(x_true, x_pred) == pytest.approx(np.mean(per_band), rel=1e-12)


def test_psnr_perfect_and_degenerate_bands_hit_cap():
    x_true = _as_cube([np.full((3, 3), 0.7), np.zeros((3, 3)), np.zeros((3, 3))])
    x_pred = x_true.copy()
    x_pred[0, 0, 2] = 0.1  # zero-peak reference band with an error
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = ev.compute_psnr(x_true, x_pred)
        perfect = ev.compute_psnr(x_true, x_true)
    # perfect band: +cap; zero-peak perfect band: +cap; zero-peak erroneous band: -cap
    assert value == pytest.approx((100.0 + 100.0 - 100.0) / 3)
    assert perfect == ev.PSNR_CAP_DB == 100.0


# ----------------------------------------------------------------- ERGAS


def _ergas_upstream_loop(x_true, x_pred, scale_factor):
    err = x_true - x_pred
    total = 0.0
    for i in range(x_true.shape[2]):
        total += np.mean(err[:, :, i] ** 2 / np.mean(x_true[:, :, i]) ** 2)
    return (100 / scale_factor) * np.sqrt(total / x_true.shape[2])


def test_ergas_hand_computed():
    # band 0: t=(1, 3) mean 2, err=(1, -1): MSE 1 -> 1 / 2^2 = 0.25
    # band 1: t=(2, 2) mean 2, err=(0, 2):  MSE 2 -> 2 / 2^2 = 0.5
    x_true = _as_cube([[[1.0, 3.0]], [[2.0, 2.0]]])
    x_pred = _as_cube([[[0.0, 4.0]], [[2.0, 0.0]]])
    expected = (100 / 4) * np.sqrt((0.25 + 0.5) / 2)
    assert ev.compute_ergas(x_true, x_pred, 4) == pytest.approx(expected, rel=1e-12)


def test_ergas_matches_upstream_and_scales(cube_pair):
    x_true, x_pred = cube_pair
    e4 = ev.compute_ergas(x_true, x_pred, 4)
    assert e4 == pytest.approx(_ergas_upstream_loop(x_true, x_pred, 4), rel=1e-12)
    assert ev.compute_ergas(x_true, x_pred, 8) == pytest.approx(e4 / 2, rel=1e-12)
    assert ev.compute_ergas(x_true, x_pred, 1) == pytest.approx(4 * e4, rel=1e-12)


def test_ergas_zero_band_is_finite():
    x_true = _as_cube([np.zeros((2, 2)), np.ones((2, 2))])
    x_pred = x_true + 0.001
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = ev.compute_ergas(x_true, x_pred, 2)
        perfect = ev.compute_ergas(x_true, x_true, 2)
    expected = (100 / 2) * np.sqrt((0.001**2 / 1e-12 + 0.001**2 / 1.0) / 2)
    assert value == pytest.approx(expected, rel=1e-9)
    assert perfect == 0.0


@pytest.mark.parametrize("bad", [0, -2, float("nan"), "x"])
def test_ergas_rejects_bad_scale(cube_pair, bad):
    x_true, x_pred = cube_pair
    with pytest.raises(ValueError, match="scale_factor"):
        ev.compute_ergas(x_true, x_pred, bad)


# ----------------------------------------------------------------- CC


def test_cc_hand_computed():
    # band 0: t=(1,2,3), p=(1,3,2): centred (-1,0,1), (-1,1,0): 1 / sqrt(2*2) = 0.5
    # band 1: t=(1,2,3), p=(3,2,1): -1
    x_true = _as_cube([[[1.0, 2.0, 3.0]], [[1.0, 2.0, 3.0]]])
    x_pred = _as_cube([[[1.0, 3.0, 2.0]], [[3.0, 2.0, 1.0]]])
    assert ev.compute_cc(x_true, x_pred) == pytest.approx((0.5 - 1.0) / 2, rel=1e-12)


def test_cc_matches_corrcoef_loop(cube_pair):
    x_true, x_pred = cube_pair
    expected = np.mean(
        [
            np.corrcoef(x_true[:, :, b].ravel(), x_pred[:, :, b].ravel())[0, 1]
            for b in range(x_true.shape[2])
        ]
    )
    assert ev.compute_cc(x_true, x_pred) == pytest.approx(expected, rel=1e-12)


def test_cc_constant_bands(rng):
    varying = rng.random((3, 3))
    # 0.1 does not survive mean() exactly, so this checks constancy detection.
    x_true = _as_cube([np.full((3, 3), 0.1), np.full((3, 3), 0.1), np.full((3, 3), 0.1), varying])
    x_pred = _as_cube([np.full((3, 3), 0.1), np.full((3, 3), 0.2), varying, np.full((3, 3), 0.5)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = ev.compute_cc(x_true, x_pred)
    # equal constants -> 1; different constants -> 0; one constant -> 0 (twice)
    assert value == pytest.approx((1.0 + 0.0 + 0.0 + 0.0) / 4)


# ----------------------------------------------------------------- RMSE


def test_rmse_hand_computed():
    # errors (1, -1, 2, 0) -> sqrt((1 + 1 + 4 + 0) / 4)
    x_true = np.array([[[1.0, 1.0], [2.0, 0.0]]])
    x_pred = np.array([[[0.0, 2.0], [0.0, 0.0]]])
    assert ev.compute_rmse(x_true, x_pred) == pytest.approx(np.sqrt(6.0 / 4), rel=1e-12)


def test_rmse_matches_direct(cube_pair):
    x_true, x_pred = cube_pair
    expected = np.sqrt(np.sum((x_true - x_pred) ** 2) / x_true.size)
    assert ev.compute_rmse(x_true, x_pred) == pytest.approx(expected, rel=1e-12)


# ----------------------------------------------------------------- SSIM


@pytest.mark.parametrize("shape", [(12, 12, 2), (5, 4, 2)])
def test_ssim_hand_computed_constant_images(shape):
    # Constant images have zero local variance, so with L = 1:
    # SSIM = (2*1*0.5 + C1) * C2 / ((1 + 0.25 + C1) * C2), C1 = (0.01*1)^2
    x_true = np.ones(shape)
    x_pred = np.full(shape, 0.5)
    c1 = (0.01 * 1.0) ** 2
    expected = (2 * 1.0 * 0.5 + c1) / (1.0**2 + 0.5**2 + c1)
    assert ev.compute_ssim(x_true, x_pred, data_range=1.0) == pytest.approx(expected, rel=1e-9)
    # x_true is constant, so the default data range falls back to 1.0
    assert ev.compute_ssim(x_true, x_pred) == pytest.approx(expected, rel=1e-9)


def test_ssim_matches_skimage(cube_pair):
    structural_similarity = pytest.importorskip("skimage.metrics").structural_similarity
    x_true, x_pred = cube_pair

    def reference(data_range):
        return structural_similarity(
            x_true,
            x_pred,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=data_range,
            channel_axis=2,
        )

    default_range = x_true.max() - x_true.min()
    assert ev.compute_ssim(x_true, x_pred) == pytest.approx(reference(default_range), abs=1e-6)
    assert ev.compute_ssim(x_true, x_pred, data_range=2.0) == pytest.approx(
        reference(2.0), abs=1e-6
    )


def test_ssim_identical_is_one(cube_pair):
    x_true, _ = cube_pair
    assert ev.compute_ssim(x_true, x_true.copy()) == pytest.approx(1.0, abs=1e-12)


def test_ssim_rejects_bad_data_range(cube_pair):
    x_true, x_pred = cube_pair
    with pytest.raises(ValueError, match="data_range"):
        ev.compute_ssim(x_true, x_pred, data_range=0.0)


# ----------------------------------------------------------------- general


def test_no_warnings_on_all_zero_cubes():
    zeros = np.zeros((4, 4, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        metrics = ev.evaluate(zeros, zeros.copy(), 4)
    assert metrics == {
        "SAM": 0.0,
        "ERGAS": 0.0,
        "PSNR": 100.0,
        "RMSE": 0.0,
        "CC": 1.0,
        "SSIM": 1.0,
    }


def test_float32_inputs_are_computed_in_float64(cube_pair):
    x_true, x_pred = (a.astype(np.float32) for a in cube_pair)
    got = ev.evaluate(x_true, x_pred, 4)
    want = ev.evaluate(x_true.astype(np.float64), x_pred.astype(np.float64), 4)
    assert got == want


def test_inputs_not_modified(cube_pair):
    x_true, x_pred = cube_pair
    before = (x_true.copy(), x_pred.copy())
    ev.evaluate(x_true, x_pred, 4)
    np.testing.assert_array_equal(x_true, before[0])
    np.testing.assert_array_equal(x_pred, before[1])


def test_evaluate_keys_and_values(cube_pair):
    x_true, x_pred = cube_pair
    metrics = ev.evaluate(x_true, x_pred, 4)
    assert list(metrics) == ["SAM", "ERGAS", "PSNR", "RMSE", "CC", "SSIM"]
    assert all(type(v) is float for v in metrics.values())
    assert metrics["SAM"] == ev.compute_sam(x_true, x_pred)
    assert metrics["ERGAS"] == ev.compute_ergas(x_true, x_pred, 4)
    assert metrics["PSNR"] == ev.compute_psnr(x_true, x_pred)
    assert metrics["RMSE"] == ev.compute_rmse(x_true, x_pred)
    assert metrics["CC"] == ev.compute_cc(x_true, x_pred)
    assert metrics["SSIM"] == ev.compute_ssim(x_true, x_pred)


def test_format_metrics():
    metrics = {
        "SAM": 1.23449,
        "ERGAS": 0.5671,
        "PSNR": 40.1234,
        "RMSE": 0.0031234,
        "CC": 0.99912,
        "SSIM": 0.98761,
    }
    assert (
        ev.format_metrics(metrics)
        == "SAM 1.234  ERGAS 0.567  PSNR 40.12  RMSE 0.00312  CC 0.9991  SSIM 0.9876"
    )


def test_format_metrics_of_evaluate(cube_pair):
    line = ev.format_metrics(ev.evaluate(*cube_pair, 4))
    assert re.fullmatch(
        r"SAM \S+  ERGAS \S+  PSNR \S+  RMSE \S+  CC \S+  SSIM \S+", line
    )


@pytest.mark.parametrize("func", METRIC_FUNCS)
def test_shape_mismatch_raises(func, rng):
    x_true = rng.random((4, 5, 3))
    x_pred = rng.random((4, 5, 2))
    with pytest.raises(ValueError, match=re.escape("(4, 5, 3)")) as info:
        func(x_true, x_pred)
    assert "(4, 5, 2)" in str(info.value)


@pytest.mark.parametrize("func", METRIC_FUNCS)
def test_non_3d_raises(func, rng):
    x_true = rng.random((4, 5))
    x_pred = rng.random((4, 5))
    with pytest.raises(ValueError, match=re.escape("(4, 5)")):
        func(x_true, x_pred)
