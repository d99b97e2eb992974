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
    # spectra t = (1, 0), p = (0, 2) and t = (0, 1), p = (3, 0); both bands vary
    x_true = np.array([[[1.0, 0.0], [0.0, 1.0]]])
    x_pred = np.array([[[0.0, 2.0], [3.0, 0.0]]])
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
    ramp = np.arange(9.0).reshape(3, 3)
    # band 1 and 2 vary but their peak is 0 (values <= 0)
    x_true = _as_cube([ramp, -ramp, -ramp])
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
    # band 1: t=(1, 3) mean 2, err=(0, 2):  MSE 2 -> 2 / 2^2 = 0.5
    x_true = _as_cube([[[1.0, 3.0]], [[1.0, 3.0]]])
    x_pred = _as_cube([[[0.0, 4.0]], [[1.0, 1.0]]])
    expected = (100 / 4) * np.sqrt((0.25 + 0.5) / 2)
    assert ev.compute_ergas(x_true, x_pred, 4) == pytest.approx(expected, rel=1e-12)


def test_ergas_matches_upstream_and_scales(cube_pair):
    x_true, x_pred = cube_pair
    e4 = ev.compute_ergas(x_true, x_pred, 4)
    assert e4 == pytest.approx(_ergas_upstream_loop(x_true, x_pred, 4), rel=1e-12)
    assert ev.compute_ergas(x_true, x_pred, 8) == pytest.approx(e4 / 2, rel=1e-12)
    assert ev.compute_ergas(x_true, x_pred, 1) == pytest.approx(4 * e4, rel=1e-12)


def test_ergas_zero_mean_band_is_finite():
    # band 0 varies with mean 0 (signed data); band 1 has mean 1
    x_true = _as_cube([[[-1.0, 1.0], [1.0, -1.0]], [[0.5, 1.5], [1.5, 0.5]]])
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
    x_true = _as_cube([np.full((3, 3), 0.1), varying, varying])
    x_pred = _as_cube([varying, np.full((3, 3), 0.1), varying])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = ev.compute_cc(x_true, x_pred)
    # constant reference band: left out; constant estimate -> 0; identical -> 1
    assert value == pytest.approx((0.0 + 1.0) / 2)


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


def test_ssim_hand_computed_11x11(rng):
    # An 11 x 11 image keeps only its centre pixel after the 5-pixel border, and the 11 x 11
    # Gaussian window centred there covers the image exactly (no reflection).
    x_true = rng.random((11, 11, 2))
    x_pred = x_true + 0.1 * rng.standard_normal((11, 11, 2))
    taps = np.exp(-0.5 * np.arange(-5, 6) ** 2 / 1.5**2)
    weights = np.outer(taps, taps) / taps.sum() ** 2
    data_range = x_true.max() - x_true.min()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    per_band = []
    for b in range(2):
        t, p = x_true[:, :, b], x_pred[:, :, b]
        mt, mp = np.sum(weights * t), np.sum(weights * p)
        vt = np.sum(weights * t * t) - mt * mt
        vp = np.sum(weights * p * p) - mp * mp
        cov = np.sum(weights * t * p) - mt * mp
        per_band.append(
            (2 * mt * mp + c1) * (2 * cov + c2) / ((mt**2 + mp**2 + c1) * (vt + vp + c2))
        )
    assert ev.compute_ssim(x_true, x_pred) == pytest.approx(np.mean(per_band), rel=1e-9)


def test_ssim_constant_reference_raises():
    with pytest.raises(ValueError, match="every band of x_true .* is constant"):
        ev.compute_ssim(np.ones((12, 12, 2)), np.full((12, 12, 2), 0.5))


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


def test_no_warnings_on_zero_pixels_and_bands():
    x_true = np.zeros((12, 12, 3))
    x_true[6:, :, 0] = 1.0  # one varying band; zero pixels and two zero bands
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        metrics = ev.evaluate(x_true, x_true.copy(), 4)
    assert metrics == {
        "SAM": 0.0,
        "ERGAS": 0.0,
        "PSNR": 100.0,
        "RMSE": 0.0,
        "CC": 1.0,
        "SSIM": 1.0,
    }


@pytest.mark.parametrize("func", METRIC_FUNCS)
def test_all_zero_reference_raises(func):
    zeros = np.zeros((4, 4, 3))
    with pytest.raises(ValueError, match=r"every band of x_true \(all 3\) is constant"):
        func(zeros, zeros.copy())


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


# ----------------------------------------------------------------- masks and constant bands


@pytest.fixture
def water_bands(rng):
    """A 30x30x40 reference whose last two bands are zeroed, and an estimate with noise everywhere."""
    x_true = rng.random((30, 30, 40))
    x_true[:, :, 38:] = 0.0
    x_pred = x_true + 0.05 * rng.standard_normal(x_true.shape)
    return x_true, x_pred


@pytest.fixture
def framed(rng):
    """A 40x40x12 reference with an 8-pixel zero frame, an estimate that fills the frame, the mask."""
    x_true = rng.random((40, 40, 12)) + 0.5
    mask = np.zeros((40, 40), dtype=bool)
    mask[8:-8, 8:-8] = True
    x_true[~mask] = 0.0
    x_pred = x_true + 0.05 * rng.standard_normal(x_true.shape)
    x_pred[~mask] += rng.random((int((~mask).sum()), 12))
    return x_true, x_pred, mask


def test_constant_bands(rng):
    x_true = rng.random((6, 7, 5))
    x_true[:, :, 1] = 0.0
    x_true[:, :, 3] = 0.3
    x_true[2:, :, 4] = 0.7  # constant over rows 2.. only
    np.testing.assert_array_equal(ev.constant_bands(x_true), [1, 3])
    mask = np.zeros((6, 7), dtype=bool)
    mask[2:] = True
    got = ev.constant_bands(x_true, mask)
    np.testing.assert_array_equal(got, [1, 3, 4])
    assert got.dtype.kind == "i"


def test_zero_bands_are_left_out(water_bands):
    x_true, x_pred = water_bands
    np.testing.assert_array_equal(ev.constant_bands(x_true), [38, 39])
    got = ev.evaluate(x_true, x_pred, 4)
    want = ev.evaluate(x_true[:, :, :38].copy(), x_pred[:, :, :38].copy(), 4)
    assert got == pytest.approx(want, rel=1e-12)
    # With the zero bands counted, ERGAS_EPS would blow ERGAS up by orders of magnitude.
    assert got["ERGAS"] < 10


def test_sam_drops_constant_bands_from_spectra(rng):
    x_true = rng.random((5, 5, 4))
    x_true[:, :, 2] = 0.0
    x_pred = x_true + 0.05 * rng.standard_normal(x_true.shape)
    x_pred[:, :, 2] = 100.0  # would dominate every angle if it were kept
    keep = [0, 1, 3]
    t, p = x_true[:, :, keep].reshape(-1, 3), x_pred[:, :, keep].reshape(-1, 3)
    cos = (t * p).sum(1) / (np.linalg.norm(t, axis=1) * np.linalg.norm(p, axis=1) + 1e-7)
    assert ev.compute_sam(x_true, x_pred) == pytest.approx(
        np.degrees(np.arccos(cos)).mean(), rel=1e-12
    )


@pytest.mark.parametrize("name", ["SAM", "ERGAS", "PSNR", "RMSE", "CC"])
def test_mask_equals_valid_pixels_alone(framed, name):
    x_true, x_pred, mask = framed
    inner = (slice(8, -8), slice(8, -8))
    got = ev.evaluate(x_true, x_pred, 4, mask=mask)[name]
    want = ev.evaluate(x_true[inner].copy(), x_pred[inner].copy(), 4, ssim=False)[name]
    assert got == pytest.approx(want, rel=1e-12)
    # The zero frame against a noisy estimate is far off; it must not count.
    assert got != pytest.approx(ev.evaluate(x_true, x_pred, 4, ssim=False)[name], rel=1e-3)


def test_compute_functions_take_the_mask(framed):
    x_true, x_pred, mask = framed
    metrics = ev.evaluate(x_true, x_pred, 4, mask=mask)
    assert metrics["SAM"] == ev.compute_sam(x_true, x_pred, mask=mask)
    assert metrics["ERGAS"] == ev.compute_ergas(x_true, x_pred, 4, mask=mask)
    assert metrics["PSNR"] == ev.compute_psnr(x_true, x_pred, mask=mask)
    assert metrics["RMSE"] == ev.compute_rmse(x_true, x_pred, mask=mask)
    assert metrics["CC"] == ev.compute_cc(x_true, x_pred, mask=mask)
    assert metrics["SSIM"] == ev.compute_ssim(x_true, x_pred, mask=mask)


def test_masked_ssim_matches_skimage_on_filled_images(framed):
    structural_similarity = pytest.importorskip("skimage.metrics").structural_similarity
    x_true, x_pred, mask = framed
    fill = x_true[mask].mean(axis=0)
    t = np.where(mask[:, :, None], x_true, fill)
    p = np.where(mask[:, :, None], x_pred, fill)
    data_range = x_true[mask].max() - x_true[mask].min()
    _, ssim_map = structural_similarity(
        t, p, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
        data_range=data_range, channel_axis=2, full=True,
    )
    inside = mask[5:-5, 5:-5]
    want = ssim_map[5:-5, 5:-5][inside].mean()
    assert ev.compute_ssim(x_true, x_pred, mask=mask) == pytest.approx(want, abs=1e-6)


@pytest.mark.parametrize("garbage", [1e6, np.nan, -3.0])
def test_masked_pixels_values_do_not_matter(framed, garbage):
    x_true, x_pred, mask = framed
    before = ev.evaluate(x_true, x_pred, 4, mask=mask)
    t, p = x_true.copy(), x_pred.copy()
    t[~mask] = garbage
    p[~mask] = -garbage
    assert ev.evaluate(t, p, 4, mask=mask) == before


def test_all_true_mask_is_no_mask(cube_pair):
    x_true, x_pred = cube_pair
    mask = np.ones(x_true.shape[:2], dtype=bool)
    assert ev.evaluate(x_true, x_pred, 4, mask=mask) == ev.evaluate(x_true, x_pred, 4)


@pytest.mark.parametrize(
    "mask, message",
    [
        (np.ones((20, 20), dtype=np.uint8), "must be a boolean H x W array"),
        (np.ones((20, 19), dtype=bool), "has shape (20, 19) but the image is 20 x 20"),
        (np.zeros((20, 20), dtype=bool), "marks no pixel as valid"),
    ],
)
def test_bad_mask_raises(cube_pair, mask, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        ev.evaluate(*cube_pair, 4, mask=mask)


def test_band_constant_over_valid_pixels_is_left_out(framed):
    x_true, x_pred, mask = framed
    x_true = x_true.copy()
    x_true[mask, 5] = 0.25  # constant inside, 0 in the frame
    np.testing.assert_array_equal(ev.constant_bands(x_true, mask), [5])
    keep = [b for b in range(12) if b != 5]
    got = ev.compute_rmse(x_true, x_pred, mask=mask)
    want = np.sqrt(np.mean((x_true[mask][:, keep] - x_pred[mask][:, keep]) ** 2))
    assert got == pytest.approx(want, rel=1e-12)


def test_ssim_needs_a_valid_pixel_inside_the_border(rng):
    x_true = rng.random((20, 20, 2))
    mask = np.zeros((20, 20), dtype=bool)
    mask[:4] = True
    assert ev.evaluate(x_true, x_true, 4, ssim=False, mask=mask)["SAM"] == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="no valid pixel lies inside it"):
        ev.compute_ssim(x_true, x_true, mask=mask)


# ----------------------------------------------------------------- UIQI and QNR


def _q_loop(a, b, block):
    """Wang-Bovik Q of two 2-D bands over non-overlapping blocks, with plain loops."""
    values = []
    for r0 in range(0, a.shape[0] - block + 1, block):
        for c0 in range(0, a.shape[1] - block + 1, block):
            x = [float(v) for v in a[r0:r0 + block, c0:c0 + block].ravel()]
            y = [float(v) for v in b[r0:r0 + block, c0:c0 + block].ravel()]
            n = len(x)
            mx, my = sum(x) / n, sum(y) / n
            vx = sum((v - mx) ** 2 for v in x) / (n - 1)
            vy = sum((v - my) ** 2 for v in y) / (n - 1)
            cxy = sum((u - mx) * (v - my) for u, v in zip(x, y)) / (n - 1)
            values.append(4 * cxy * mx * my / ((vx + vy) * (mx**2 + my**2)))
    return sum(values) / len(values)


def test_uiqi_hand_computed_4x4():
    a = np.array([[1.0, 2, 3, 4], [2, 3, 4, 5], [1, 1, 2, 2], [0, 1, 0, 1]])
    b = np.array([[1.0, 2, 2, 4], [3, 3, 4, 4], [1, 0, 2, 3], [1, 1, 0, 0]])
    # 16 pixels: means 2 and 1.9375; worked with plain loops in _q_loop
    q = ev.uiqi(a, b, 4)
    assert q.shape == (1, 1)
    assert q[0, 0] == pytest.approx(_q_loop(a, b, 4), rel=1e-12)
    assert ev.uiqi(a, b, 2)[0, 0] == pytest.approx(_q_loop(a, b, 2), rel=1e-12)
    assert ev.uiqi(a, a, 4)[0, 0] == pytest.approx(1.0, rel=1e-12)


def test_uiqi_all_pairs(rng):
    a = rng.random((10, 9, 3))
    b = rng.random((10, 9, 2)) + a[:, :, :2]
    q = ev.uiqi(a, b, 3)
    assert q.shape == (3, 2)
    for i in range(3):
        for j in range(2):
            assert q[i, j] == pytest.approx(_q_loop(a[:, :, i], b[:, :, j], 3), rel=1e-10)


def test_uiqi_degenerate_blocks():
    const_a, const_b = np.full((2, 2), 0.1), np.full((2, 2), 0.3)
    # two constant blocks: the luminance term 2 mu_a mu_b / (mu_a^2 + mu_b^2)
    assert ev.uiqi(const_a, const_b, 2)[0, 0] == pytest.approx(2 * 0.03 / (0.01 + 0.09))
    zeros = np.zeros((2, 2))
    assert ev.uiqi(zeros, zeros, 2)[0, 0] == 1.0
    # one constant block against a varying one: covariance 0
    assert ev.uiqi(const_a, np.array([[0.0, 1.0], [2.0, 3.0]]), 2)[0, 0] == 0.0


def test_uiqi_mask_skips_blocks_with_invalid_pixels(rng):
    a = rng.random((8, 8))
    b = a + 0.3 * rng.random((8, 8))
    mask = np.ones((8, 8), dtype=bool)
    mask[1, 6] = False  # block (0, 1)
    want = np.mean([_q_loop(a[r:r + 4, c:c + 4], b[r:r + 4, c:c + 4], 4)
                    for r, c in [(0, 0), (4, 0), (4, 4)]])
    assert ev.uiqi(a, b, 4, mask=mask)[0, 0] == pytest.approx(want, rel=1e-12)
    a[1, 6], b[1, 6] = 1e6, np.nan
    assert ev.uiqi(a, b, 4, mask=mask)[0, 0] == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"block": 1}, "block must be an integer of at least 2"),
        ({"block": 9}, "smaller than one 9 x 9 block"),
        ({"block": 4, "mask": np.arange(64).reshape(8, 8) % 4 != 0}, "no 4 x 4 block is entirely valid"),
    ],
)
def test_uiqi_errors(rng, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        ev.uiqi(rng.random((8, 8)), rng.random((8, 8)), **kwargs)


def _replicate(cube, r):
    return np.repeat(np.repeat(cube, r, axis=0), r, axis=1)


@pytest.fixture
def qnr_pair(rng):
    """LR-HSI y (12x12x5), z_lr = y @ srf, and their exact pixel-replicated HR versions (r = 4)."""
    y = rng.random((12, 12, 5))
    srf = rng.random((5, 3))
    z_lr = y @ srf
    return _replicate(y, 4), y, _replicate(z_lr, 4), z_lr


def test_qnr_is_one_when_relationships_hold(qnr_pair):
    x_hat, y, z, z_lr = qnr_pair
    # HR blocks of 16 pixels hold exactly the replicated LR blocks of 4: every Q is kept.
    result = ev.qnr(x_hat, y, z, z_lr, block=16)
    assert list(result) == ["D_lambda", "D_s", "QNR"]
    assert result["D_lambda"] == pytest.approx(0.0, abs=1e-12)
    assert result["D_s"] == pytest.approx(0.0, abs=1e-12)
    assert result["QNR"] == pytest.approx(1.0, abs=1e-12)


def test_qnr_decreases_with_noise(qnr_pair, rng):
    x_hat, y, z, z_lr = qnr_pair
    noise = rng.standard_normal(x_hat.shape)
    values = [ev.qnr(x_hat + s * noise, y, z, z_lr, block=16) for s in (0.0, 0.02, 0.2)]
    qnrs = [v["QNR"] for v in values]
    assert qnrs[0] > qnrs[1] > qnrs[2]
    assert values[2]["D_lambda"] > values[1]["D_lambda"] > 0
    assert values[2]["D_s"] > values[1]["D_s"] > 0


def test_qnr_matches_definition(qnr_pair, rng):
    x_hat, y, z, z_lr = qnr_pair
    x_hat = x_hat + 0.1 * rng.standard_normal(x_hat.shape)
    c, cm = y.shape[2], z.shape[2]
    d_lambda = sum(
        abs(_q_loop(x_hat[:, :, i], x_hat[:, :, j], 16) - _q_loop(y[:, :, i], y[:, :, j], 4))
        for i in range(c) for j in range(c) if i != j
    ) / (c * (c - 1))
    d_s = sum(
        abs(_q_loop(x_hat[:, :, i], z[:, :, k], 16) - _q_loop(y[:, :, i], z_lr[:, :, k], 4))
        for i in range(c) for k in range(cm)
    ) / (c * cm)
    got = ev.qnr(x_hat, y, z, z_lr, block=16)
    assert got["D_lambda"] == pytest.approx(d_lambda, rel=1e-10)
    assert got["D_s"] == pytest.approx(d_s, rel=1e-10)
    assert got["QNR"] == pytest.approx((1 - d_lambda) * (1 - d_s), rel=1e-10)


def test_qnr_leaves_out_constant_bands_and_masked_blocks(qnr_pair, rng):
    x_hat, y, z, z_lr = qnr_pair
    x_hat = x_hat + 0.05 * rng.standard_normal(x_hat.shape)
    want = ev.qnr(x_hat, y, z, z_lr, block=16)
    zero = np.zeros(y.shape[:2] + (1,))
    with_zero_band = ev.qnr(
        np.concatenate([x_hat, _replicate(zero, 4) + 0.1], axis=2),
        np.concatenate([y, zero], axis=2), z, z_lr, block=16,
    )
    assert with_zero_band == pytest.approx(want, rel=1e-12)
    # Garbage in pixels outside the valid blocks changes nothing.
    mask = np.ones(x_hat.shape[:2], dtype=bool)
    mask[:16, :16] = False
    lr_mask = np.ones(y.shape[:2], dtype=bool)
    lr_mask[:4, :4] = False
    clean = ev.qnr(x_hat, y, z, z_lr, block=16, mask=mask, lr_mask=lr_mask)
    x_bad, y_bad = x_hat.copy(), y.copy()
    x_bad[~mask], y_bad[~lr_mask] = 1e6, np.nan
    assert ev.qnr(x_bad, y_bad, z, z_lr, block=16, mask=mask, lr_mask=lr_mask) == clean


def test_qnr_shape_errors(qnr_pair):
    x_hat, y, z, z_lr = qnr_pair
    with pytest.raises(ValueError, match="integer multiple r of y"):
        ev.qnr(x_hat[:46], y, z[:46], z_lr)
    with pytest.raises(ValueError, match="x_hat has 5 bands but y has 4"):
        ev.qnr(x_hat, y[:, :, :4], z, z_lr)
    with pytest.raises(ValueError, match="D_lambda needs at least 2"):
        ev.qnr(x_hat, np.concatenate([y[:, :, :1], 0 * y[:, :, 1:]], axis=2), z, z_lr, block=16)
