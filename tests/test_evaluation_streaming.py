"""Tests for the streamed (tile by tile) forms of evaluation.py's metrics: ConstantBands,
StreamingMetrics and StreamingQNR give the whole-image functions' numbers."""

import re

import numpy as np
import pytest

import evaluation as ev

# The documented agreement between streamed and whole-image numbers (float64 sums in another order).
REL = 1e-9
KEYS = ["SAM", "ERGAS", "PSNR", "RMSE", "CC", "SSIM"]


@pytest.fixture
def rng():
    return np.random.default_rng(2024)


@pytest.fixture
def scene(rng):
    """A 45 x 38 x 7 reference (band 3 zeroed, an offset of 50 to stress the centred sums), a noisy
    estimate, and a mask with a no-data corner and scattered holes."""
    x_true = rng.random((45, 38, 7)) + 50.0
    x_true[:, :, 3] = 0.0
    x_pred = x_true + 0.03 * rng.standard_normal(x_true.shape)
    mask = rng.random((45, 38)) > 0.05
    mask[:9, :12] = False
    return x_true, x_pred, mask


def _tiles(shape, row_cuts, col_cuts, halo=0):
    """(tile rows, tile columns, core) triples of a grid of tiles with a ``halo`` inside the image."""
    rows = [0, *row_cuts, shape[0]]
    cols = [0, *col_cuts, shape[1]]
    out = []
    for r0, r1 in zip(rows, rows[1:]):
        for c0, c1 in zip(cols, cols[1:]):
            t0, t1 = max(r0 - halo, 0), min(r1 + halo, shape[0])
            u0, u1 = max(c0 - halo, 0), min(c1 + halo, shape[1])
            core = (slice(r0 - t0, r1 - t0), slice(c0 - u0, c1 - u0))
            out.append((slice(t0, t1), slice(u0, u1), core))
    return out


def _stream(x_true, x_pred, mask, tiles, scale=4, ssim=True, order=None):
    """Both passes over ``tiles`` (in ``order``): the streamed metrics and the ReferenceSummary."""
    order = range(len(tiles)) if order is None else order
    crop = (lambda m, rs, cs: None) if mask is None else (lambda m, rs, cs: m[rs, cs])
    first = ev.ConstantBands()
    for k in order:
        rs, cs, core = tiles[k]
        first.update(x_true[rs, cs], crop(mask, rs, cs), core)
    summary = first.result()
    sm = ev.StreamingMetrics(scale, ssim=ssim, constant=summary)
    for k in order:
        rs, cs, core = tiles[k]
        assert sm.update(x_true[rs, cs], x_pred[rs, cs], crop(mask, rs, cs), core) is sm
    return sm.result(), summary


@pytest.mark.parametrize("masked", [False, True])
def test_streamed_equals_whole_image_uneven_tiles_random_order(scene, rng, masked):
    x_true, x_pred, mask = scene
    mask = mask if masked else None
    tiles = _tiles(x_true.shape, [7, 20, 33], [15, 16], halo=ev.SSIM_HALO)
    got, summary = _stream(x_true, x_pred, mask, tiles, order=rng.permutation(len(tiles)))
    want = ev.evaluate(x_true, x_pred, 4, mask=mask)
    assert list(got) == KEYS
    assert got == pytest.approx(want, rel=REL)
    np.testing.assert_array_equal(summary.constant, [3])


def test_summary_matches_the_whole_reference(scene):
    x_true, _, mask = scene
    tiles = _tiles(x_true.shape, [11, 30], [5, 26], halo=3)
    _, summary = _stream(x_true, x_true, mask, tiles, ssim=False)
    valid = x_true[mask]
    np.testing.assert_array_equal(summary.constant, ev.constant_bands(x_true, mask))
    np.testing.assert_array_equal(summary.minimum, valid.min(axis=0))
    np.testing.assert_array_equal(summary.maximum, valid.max(axis=0))
    np.testing.assert_allclose(summary.mean, valid.mean(axis=0), rtol=1e-12)
    assert summary.count == mask.sum()


def test_one_tile_is_exactly_the_whole_image(scene):
    x_true, x_pred, mask = scene
    got, _ = _stream(x_true, x_pred, None, _tiles(x_true.shape, [], []))
    assert got == ev.evaluate(x_true, x_pred, 4)
    # With a mask only SSIM's stand-in for invalid pixels (the band means) is summed otherwise.
    got, _ = _stream(x_true, x_pred, mask, _tiles(x_true.shape, [], []))
    want = ev.evaluate(x_true, x_pred, 4, mask=mask)
    assert got["SSIM"] == pytest.approx(want.pop("SSIM"), rel=1e-14)
    assert {k: got[k] for k in want} == want


def test_ssim_of_a_thin_image_with_a_wider_halo(rng):
    # 8 rows: shorter than the 11-pixel window, so neither the whole image nor the tiles crop rows.
    x_true = rng.random((8, 50, 3))
    x_pred = x_true + 0.1 * rng.standard_normal(x_true.shape)
    got, _ = _stream(x_true, x_pred, None, _tiles(x_true.shape, [], [12, 13, 31], halo=7))
    assert got == pytest.approx(ev.evaluate(x_true, x_pred, 4), rel=REL)


def test_pixel_tiles_without_halo_and_float32(scene, rng):
    x_true, x_pred, mask = scene
    x_true, x_pred = x_true.astype(np.float32), x_pred.astype(np.float32)
    tiles = _tiles(x_true.shape, [1, 2, 40], [37])
    got, _ = _stream(x_true, x_pred, mask, tiles, scale=8, ssim=False, order=rng.permutation(len(tiles)))
    assert got == pytest.approx(ev.evaluate(x_true, x_pred, 8, ssim=False, mask=mask), rel=REL)


def test_one_pass_without_constant_bands(rng):
    x_true = rng.random((20, 24, 5))
    x_pred = x_true + 0.1 * rng.standard_normal(x_true.shape)
    sm = ev.StreamingMetrics(2)
    for rs, cs, core in _tiles(x_true.shape, [9], [3, 17]):
        sm.update(x_true[rs, cs], x_pred[rs, cs], core=core)
    assert sm.result() == pytest.approx(ev.evaluate(x_true, x_pred, 2, ssim=False), rel=REL)


def test_constant_bands_given_as_indices(scene):
    x_true, x_pred, mask = scene
    sm = ev.StreamingMetrics(4, constant=[3])
    for rs, cs, core in _tiles(x_true.shape, [22], [19]):
        sm.update(x_true[rs, cs], x_pred[rs, cs], mask[rs, cs], core)
    assert sm.result() == pytest.approx(ev.evaluate(x_true, x_pred, 4, ssim=False, mask=mask), rel=REL)


def test_wrong_constant_claim_is_refused_by_name(scene):
    x_true, x_pred, _ = scene
    sm = ev.StreamingMetrics(4)
    sm.update(x_true, x_pred)
    with pytest.raises(ValueError, match=re.escape("constant bands over the valid pixels are [3] but constant= gave []")):
        sm.result()


def test_masked_pixels_values_do_not_matter(scene):
    x_true, x_pred, mask = scene
    tiles = _tiles(x_true.shape, [20], [19], halo=ev.SSIM_HALO)
    before, _ = _stream(x_true, x_pred, mask, tiles)
    t, p = x_true.copy(), x_pred.copy()
    t[~mask], p[~mask] = 1e6, np.nan
    assert _stream(t, p, mask, tiles)[0] == before


def test_tile_without_valid_pixel_adds_nothing(scene):
    x_true, x_pred, mask = scene
    mask = mask.copy()
    mask[:, 30:] = False
    tiles = _tiles(x_true.shape, [], [30], halo=ev.SSIM_HALO)
    got, _ = _stream(x_true, x_pred, mask, tiles)
    assert got == pytest.approx(ev.evaluate(x_true, x_pred, 4, mask=mask), rel=REL)


def _fed(sm, x_true, x_pred, *tiles):
    for rs, cs in tiles:
        sm.update(x_true[rs, cs], x_pred[rs, cs])
    return sm


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda t, p: ev.StreamingMetrics(4).update(t[:10], p[:10]).update(t[10:, :, :6], p[10:, :, :6]),
         "x_true_tile has 6 bands but the first tile had 7: every tile must hold all bands"),
        (lambda t, p: ev.StreamingMetrics(4).update(t[:10], p[:10], np.ones((10, 37), dtype=bool)),
         "mask_tile has shape (10, 37) but the tile is 10 x 38 pixels"),
        (lambda t, p: ev.StreamingMetrics(4).update(t[:10], p[:10], np.ones((10, 38))),
         "mask_tile must be a boolean H x W array"),
        (lambda t, p: ev.StreamingMetrics(4).update(t[:10], p[:10, :5]),
         "x_true_tile and x_pred_tile must be non-empty 3-D (H, W, C) arrays of the same shape"),
        (lambda t, p: ev.StreamingMetrics(4).update(t[:10], p[:10], core=(slice(3, 3), slice(None))),
         "selects no pixel"),
        (lambda t, p: ev.StreamingMetrics(4, constant=[9]).update(t[:10], p[:10]),
         "constant= lists band 9 but the tiles have 7 bands"),
        (lambda t, p: ev.StreamingMetrics(4, constant=[[3]]),
         "constant must be None, the ReferenceSummary of ConstantBands().result(), or a 1-D array"),
        (lambda t, p: ev.StreamingMetrics(4, ssim=True),
         "ssim=True needs the reference's data range and band means"),
        (lambda t, p: ev.StreamingMetrics(0),
         "scale_factor must be a positive number"),
        (lambda t, p: ev.StreamingMetrics(4).result(),
         "no valid pixel was fed"),
    ],
)
def test_bad_input_raises(scene, make, message):
    x_true, x_pred, _ = scene
    with pytest.raises(ValueError, match=re.escape(message)):
        make(x_true, x_pred)


def test_ssim_halo_too_narrow_is_refused(scene):
    x_true, x_pred, _ = scene
    summary = ev.ConstantBands().update(x_true).result()
    sm = ev.StreamingMetrics(4, ssim=True, constant=summary)
    with pytest.raises(ValueError, match="the tile has a 3-pixel halo at its bottom: SSIM needs a halo of at least"):
        sm.update(x_true[:23], x_pred[:23], core=(slice(0, 20), slice(None)))


def test_tiles_other_than_the_first_pass_are_refused(scene):
    x_true, x_pred, _ = scene
    summary = ev.ConstantBands().update(x_true).result()
    sm = ev.StreamingMetrics(4, constant=summary).update(x_true[:30], x_pred[:30])
    with pytest.raises(ValueError, match="are not those of the first pass"):
        sm.result()
    with pytest.raises(ValueError, match="the tiles have 6 bands but constant= summarises a reference of 7"):
        ev.StreamingMetrics(4, constant=summary).update(x_true[:, :, :6], x_pred[:, :, :6])


def test_all_constant_reference_raises_as_evaluate(rng):
    x_true = np.zeros((12, 12, 3))
    with pytest.raises(ValueError, match="every band of x_true .all 3. is constant"):
        ev.StreamingMetrics(4).update(x_true, rng.random((12, 12, 3))).result()
    with pytest.raises(ValueError, match="no valid reference pixel was fed"):
        ev.ConstantBands().update(x_true, np.zeros((12, 12), dtype=bool)).result()


# ----------------------------------------------------------------- QNR


def _replicate(cube, r):
    return np.repeat(np.repeat(cube, r, axis=0), r, axis=1)


@pytest.fixture
def qnr_scene(rng):
    """r = 5, HR 85 x 90: LR-HSI y (17 x 18 x 5, band 2 zeroed), z_lr = y @ srf, a noisy fusion, an HR-MSI."""
    y = rng.random((17, 18, 5))
    y[:, :, 2] = 0.0
    z_lr = y @ rng.random((5, 3))
    x_hat = _replicate(y, 5) + 0.05 * rng.standard_normal((85, 90, 5))
    z = _replicate(z_lr, 5) + 0.05 * rng.standard_normal((85, 90, 3))
    mask = np.ones((85, 90), dtype=bool)
    mask[3, 50] = False
    lr_mask = np.ones((17, 18), dtype=bool)
    lr_mask[9, 2] = False
    return x_hat, y, z, z_lr, mask, lr_mask


def _qnr_tiles(sq, shape, row_cuts, col_cuts, data, order):
    x_hat, y, z, z_lr, mask, lr_mask = data
    r = sq.ratio
    rows, cols = [0, *row_cuts, shape[0]], [0, *col_cuts, shape[1]]
    cells = [(a, b, c, d) for a, b in zip(rows, rows[1:]) for c, d in zip(cols, cols[1:])]
    for k in order(len(cells)):
        r0, r1, c0, c1 = cells[k]
        hr, lr = (slice(r0, r1), slice(c0, c1)), (slice(r0 // r, r1 // r), slice(c0 // r, c1 // r))
        sq.update(x_hat[hr], y[lr], z[hr], z_lr[lr], (r0, c0), mask[hr], lr_mask[lr])
    return sq.result()


@pytest.mark.parametrize("block", [8, 10])
def test_streamed_qnr_equals_whole_image(qnr_scene, rng, block):
    sq = ev.StreamingQNR((85, 90), 5, block=block)
    assert sq.step == {8: 40, 10: 10}[block]
    cuts = [sq.step, 2 * sq.step] if block == 8 else [10, 40, 70]
    got = _qnr_tiles(sq, (85, 90), cuts, cuts[:1], qnr_scene, rng.permutation)
    want = ev.qnr(*qnr_scene[:4], block=block, mask=qnr_scene[4], lr_mask=qnr_scene[5])
    assert list(got) == ["D_lambda", "D_s", "QNR"]
    assert got == pytest.approx(want, rel=REL)
    assert want["D_s"] > 0.01


@pytest.mark.parametrize(
    "feed, message",
    [
        (lambda sq, d: sq.update(d[0][5:45, :40], d[1][1:9, :8], d[2][5:45, :40], d[3][1:9, :8], (5, 0)),
         "rows 5..44 would split a QNR block: tiles must start at multiples of 40"),
        (lambda sq, d: [sq.update(d[0][:40, :40], d[1][:8, :8], d[2][:40, :40], d[3][:8, :8], (0, 0))
                        for _ in range(2)],
         "overlaps a tile fed before"),
        (lambda sq, d: sq.update(d[0][:40, :40], d[1][:8, :8], d[2][:40, :40], d[3][:8, :8], (0, 0)).result(),
         "part(s) of the image were never fed, the first at rows 0.. and columns 40.."),
        (lambda sq, d: sq.update(d[0][:40, :40], d[1][:9, :8], d[2][:40, :40], d[3][:8, :8], (0, 0)),
         "y_tile and z_lr_tile H'/r x W'/r"),
        (lambda sq, d: sq.update(d[0][:40, :40], d[1][:8, :8, :4], d[2][:40, :40], d[3][:8, :8], (0, 0)),
         "x_hat_tile and y_tile must have the same bands"),
    ],
)
def test_streamed_qnr_bad_tiles(qnr_scene, feed, message):
    sq = ev.StreamingQNR((85, 90), 5, block=8)
    with pytest.raises(ValueError, match=re.escape(message)):
        feed(sq, qnr_scene)


@pytest.mark.parametrize(
    "args, message",
    [
        (((85, 90), 2.5), "ratio must be a positive integer"),
        (((85, 90), 2), "shape must be the fused image's (H, W), positive multiples of ratio 2"),
        (((85, 90), 5, 1), "block must be an integer of at least 2"),
    ],
)
def test_streamed_qnr_bad_arguments(args, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        ev.StreamingQNR(*args)


def test_streamed_qnr_no_valid_block(qnr_scene):
    x_hat, y, z, z_lr, _, _ = qnr_scene
    sq = ev.StreamingQNR((85, 90), 5, block=8)
    sq.update(x_hat, y, z, z_lr, (0, 0), mask_tile=np.zeros((85, 90), dtype=bool))
    with pytest.raises(ev.NoValidBlock, match="pass a smaller block"):
        sq.result()
