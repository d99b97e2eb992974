"""reproduce.classification: scores against scikit-learn, the split, the ground truth's alignment with a
cropped cube, the statistics over several seeds, the command on a tiny synthetic run folder, and a tiny
real GeoTIFF pair whose HR image has a no-data patch over labelled pixels."""
import argparse
import csv
import json
import re
import warnings

import numpy as np
import pytest
import scipy.io
from affine import Affine
from sklearn.metrics import accuracy_score, balanced_accuracy_score, cohen_kappa_score
from sklearn.metrics import confusion_matrix as sk_confusion_matrix
from sklearn.metrics import recall_score

from config import get_args
from data_loader import DataError
from imagery.writers import write_geotiff
from reproduce import classification as cl

CROP = {"top": 1, "bottom": 1, "left": 0, "right": 1}  # what crop_to_multiple removes from 22 x 21 at r = 5


@pytest.fixture
def rng():
    return np.random.default_rng(7)


@pytest.fixture
def few_trees(monkeypatch):
    monkeypatch.setattr(cl, "RF_TREES", 20)


def class_spectra(gt, bands, seed=1):
    """An H x W x bands cube whose spectrum is a fixed random vector per label: the labels, as spectra."""
    spectra = np.random.default_rng(seed).uniform(0.1, 0.9, (int(gt.max()) + 1, bands))
    return spectra[gt]


# ----------------------------------------------------------------------------- scores

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scores_equal_scikit_learn_on_random_labels(seed):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(1, 7, 500)
    y_pred = np.where(rng.random(500) < 0.6, y_true, rng.integers(1, 9, 500))  # 7, 8: predicted, never true
    scores = cl.accuracy_scores(y_true, y_pred)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns that y_pred has classes y_true lacks
        assert scores["AA"] == pytest.approx(balanced_accuracy_score(y_true, y_pred), abs=1e-12)
    assert scores["OA"] == pytest.approx(accuracy_score(y_true, y_pred), abs=1e-12)
    assert scores["kappa"] == pytest.approx(cohen_kappa_score(y_true, y_pred), abs=1e-12)
    present = np.unique(y_true)
    expected = recall_score(y_true, y_pred, labels=present, average=None)
    assert list(scores["per_class"]) == present.tolist()
    np.testing.assert_allclose(list(scores["per_class"].values()), expected, atol=1e-12)
    assert scores["classes"] == list(range(1, 9))
    np.testing.assert_array_equal(scores["confusion_matrix"], sk_confusion_matrix(y_true, y_pred))


def test_confusion_matrix_refuses_a_label_outside_the_given_ones():
    with pytest.raises(ValueError, match=r"labels \[5\] are not in \[1, 2, 3\]"):
        cl.confusion_matrix([1, 2, 5], [1, 2, 3], labels=[1, 2, 3])


def test_perfect_agreement_gives_one_and_a_single_class_leaves_kappa_undefined():
    perfect = cl.accuracy_scores([1, 2, 2, 3], [1, 2, 2, 3])
    assert (perfect["OA"], perfect["AA"], perfect["kappa"]) == (1.0, 1.0, 1.0)
    assert np.isnan(cl.accuracy_scores([4, 4], [4, 4])["kappa"])


# ----------------------------------------------------------------------------- split

def test_split_is_stratified_disjoint_and_the_same_for_the_same_seed():
    labels = np.repeat([1, 2, 3], [200, 120, 80])
    train, test = cl.stratified_split(labels, 0.1, seed=3)
    assert np.bincount(labels[train]).tolist() == [0, 20, 12, 8]
    assert np.intersect1d(train, test).size == 0 and np.union1d(train, test).tolist() == list(range(400))
    again, _ = cl.stratified_split(labels, 0.1, seed=3)
    other, _ = cl.stratified_split(labels, 0.1, seed=4)
    np.testing.assert_array_equal(train, again)
    assert not np.array_equal(train, other)


def test_split_refuses_a_class_of_one_pixel():
    with pytest.raises(DataError, match=r"^gt\.mat: cannot split 5 labelled pixels of 2 classes"):
        cl.stratified_split(np.array([1, 1, 1, 1, 2]), 0.5, source="gt.mat")


# ----------------------------------------------------------------------------- ground truth

def test_aligned_ground_truth_classifies_a_cube_of_its_labels_perfectly_and_a_shifted_one_does_not(rng, few_trees):
    full_gt = rng.integers(0, 5, (22, 21))  # the cube file's grid; 0 = unlabelled
    top, bottom, left, right = offsets = cl.crop_offsets({"crop": CROP})
    cube = class_spectra(full_gt, 6)[top:22 - bottom, left:21 - right]  # the cropped cube the run fused
    for gt, perfect in ((full_gt, True), (np.roll(full_gt, 1, axis=0), False), (np.roll(full_gt, 1, axis=1), False)):
        aligned = cl.align_ground_truth(gt, offsets, cube.shape, "gt.mat")
        indices, labels, _ = cl.labelled_pixels(aligned, None, "gt.mat")
        train, test = cl.stratified_split(labels, 0.3, seed=0)
        scores = cl.classify(cube.reshape(-1, 6)[indices], labels, train, test)
        for name in cl.CLASSIFIERS:
            assert (scores[name]["OA"] == 1.0) == perfect
            if not perfect:
                assert scores[name]["OA"] < 0.6


def test_crop_offsets_of_a_simulated_and_a_real_pair():
    assert cl.crop_offsets({"crop": CROP}) == (1, 1, 0, 1)
    assert cl.crop_offsets({"hr_crop": [3, 2]}) == (0, 3, 0, 2)
    assert cl.crop_offsets({}) == (0, 0, 0, 0)


def test_ground_truth_of_another_size_is_refused():
    with pytest.raises(DataError, match=r"^gt\.mat: the ground truth is 20 x 21 pixels, but the fused image is "
                                        r"20 x 20"):
        cl.align_ground_truth(np.zeros((20, 21), int), (1, 1, 0, 1), (20, 20), "gt.mat")


def test_ground_truth_with_fractional_or_negative_labels_is_refused(tmp_path):
    path = tmp_path / "gt.mat"
    gt = np.ones((4, 5))
    gt[2, 3] = 1.5
    gt[3, 0] = -1
    scipy.io.savemat(path, {"y": gt})
    with pytest.raises(DataError, match=re.escape(f"{path}: 2 ground-truth values are not non-negative integers, "
                                                  "the first at (row, column) = (2, 3)")):
        cl.read_ground_truth(str(path))


def test_default_ground_truth_is_the_houston_pairs_labels_on_its_rgb_grid():
    gt = cl.read_ground_truth(cl.DEFAULT_GT)
    assert gt.shape == (512, 512)
    assert np.bincount(gt.ravel())[1:].tolist() == [2568, 10344, 2736, 68, 23320, 7596, 9644, 143, 5242, 2745,
                                                    4483, 27296]


# ----------------------------------------------------------------------------- run folders

def test_options_from_opt_txt_strings_give_the_same_arguments_as_typed_ones(tmp_path):
    typed = {"scale_factor": 8, "mask_invalid": True, "nodata": -9999.0, "snr_hsi": None, "isCal_SRF": "No",
             "device": "cuda:0", "resume": "/gone", "msi_gamma": 0.9}
    as_text = {k: str(v) for k, v in typed.items()}
    expected = ["--isCal_SRF=No", "--mask_invalid", "--msi_gamma=0.9", "--nodata=-9999.0", "--scale_factor=8",
                "--device=cpu"]
    assert sorted(cl.options_argv(typed)) == sorted(cl.options_argv(as_text)) == sorted(expected)


@pytest.fixture
def simulated_runs(tmp_path, rng):
    """A 22 x 21 cube of 3 class spectra (r = 5 crops it to 20 x 20), its label map, and run folders:
    'exact' holds the reference as its output, 'other' was fused at r = 2 (another pair)."""
    gt = rng.integers(0, 4, (22, 21))
    gt[0, :3] = [1, 2, 3]
    (tmp_path / "data" / "toy").mkdir(parents=True)
    (tmp_path / "srf").mkdir()
    np.save(tmp_path / "data" / "toy" / "scene.npy", class_spectra(gt, 10))
    np.save(tmp_path / "srf" / "toy.npy", np.kron(np.eye(3), np.ones((4, 1)))[:10])
    scipy.io.savemat(tmp_path / "gt.mat", {"y": gt.astype(np.uint8)})

    def run(name, *extra, out=None, crop=CROP):
        argv = ["--default_datapath", str(tmp_path / "data"), "--sp_root_path", str(tmp_path / "srf"),
                "--data_name", "toy", "--device", "cpu", *extra]
        options = {k: str(v) if k == "device" else v for k, v in vars(get_args(argv)).items()}
        folder = tmp_path / "checkpoints" / name
        folder.mkdir(parents=True)
        (folder / "metrics.json").write_text(json.dumps({"method": "udaln", "options": options,
                                                          "data": {"crop": crop}}))
        if out is not None:
            scipy.io.savemat(folder / "My_Out.mat", {"Out": out.astype(np.float32)})
        return str(folder)

    reference = class_spectra(gt, 10)[1:21, 0:20]
    other = run("other", "--scale_factor", "2", crop=dict(CROP, top=0, bottom=0))
    return tmp_path, gt, run("exact", out=reference), other


def test_command_scores_every_image_of_a_run_folder(simulated_runs, few_trees):
    tmp_path, gt, exact, _ = simulated_runs
    output = tmp_path / "out"
    assert cl.main([exact, "--gt", str(tmp_path / "gt.mat"), "--train_fraction", "0.2", "--seeds", "1,2",
                    "--output", str(output)]) == 0
    results = json.loads((output / "classification.json").read_text())
    names = [image["name"] for image in results["images"]]
    assert names == ["bicubic", "HR-MSI", "HR-MSI + bicubic", "udaln (exact)", "reference"]
    assert [image["bands"] for image in results["images"]] == [10, 3, 13, 10, 10]
    labels = gt[1:21, 0:20]
    labels = labels[labels > 0]
    assert results["labelled_pixels"] == labels.size and results["masked_labelled_pixels"] == 0
    assert results["train_pixels"] + results["test_pixels"] == labels.size
    assert results["classes"] == {str(c): int((labels == c).sum()) for c in (1, 2, 3)}
    assert [split["seed"] for split in results["splits"]] == [1, 2] == results["protocol"]["seeds"]
    for image in results["images"][3:]:
        assert [seed["seed"] for seed in image["seeds"]] == [1, 2]
        for name in cl.CLASSIFIERS:
            assert image["mean"][name] == {"OA": 1.0, "AA": 1.0, "kappa": 1.0}
            assert image["std"][name] == {"OA": 0.0, "AA": 0.0, "kappa": 0.0}
            assert all(seed[name]["per_class"] == {"1": 1.0, "2": 1.0, "3": 1.0} for seed in image["seeds"])
    assert results["distinct_spectra"] == {"of": "reference", "count": 3}
    with open(output / "classification.csv") as f:
        rows = list(csv.DictReader(f))
    assert [row["image"] for row in rows] == names
    assert float(rows[1]["rf_OA_mean"]) == pytest.approx(results["images"][1]["mean"]["rf"]["OA"], abs=1e-6)
    assert float(rows[1]["svm_kappa_std"]) == pytest.approx(results["images"][1]["std"]["svm"]["kappa"], abs=1e-6)
    table = (output / "classification.md").read_text()
    assert ("| udaln (exact) | 100.00 ± 0.00 | 100.00 ± 0.00 | 1.0000 ± 0.0000 | 100.00 ± 0.00 | 100.00 ± 0.00 | "
            "1.0000 ± 0.0000 |") in table
    assert "- bicubic: the LR-HSI upsampled by baselines.bicubic (the HSI upsampled)" in table
    assert "Note: The reference holds only 3 distinct spectra over the labelled pixels of 3 classes" in table


def test_one_seed_has_no_standard_deviation(simulated_runs, few_trees):
    tmp_path, _, exact, _ = simulated_runs
    output = tmp_path / "out"
    assert cl.main([exact, "--gt", str(tmp_path / "gt.mat"), "--seeds", "4", "--output", str(output)]) == 0
    results = json.loads((output / "classification.json").read_text())
    assert results["protocol"]["seeds"] == [4]
    assert all(std is None for image in results["images"] for name in cl.CLASSIFIERS
               for std in image["std"][name].values())
    with open(output / "classification.csv") as f:
        assert {row["rf_OA_std"] for row in csv.DictReader(f)} == {""}
    table = (output / "classification.md").read_text()
    assert "| udaln (exact) | 100.00 | 100.00 | 1.0000 | 100.00 | 100.00 | 1.0000 |" in table
    assert "±" not in table


@pytest.mark.parametrize("text", ["0,x", "1,1", "-1", ""])
def test_bad_seed_lists_are_refused(text):
    with pytest.raises(argparse.ArgumentTypeError):
        cl.seed_list(text)


def test_runs_of_different_pairs_are_refused(simulated_runs):
    tmp_path, _, exact, other = simulated_runs
    with pytest.raises(DataError, match=f"^{re.escape(other)} fused another pair than {re.escape(exact)}"):
        cl.evaluate_runs([exact, other], str(tmp_path / "gt.mat"))


def test_a_run_whose_recorded_crop_differs_from_its_data_now_is_refused(simulated_runs):
    tmp_path, _, exact, _ = simulated_runs
    path = tmp_path / "checkpoints" / "exact" / "metrics.json"
    metrics = json.loads(path.read_text())
    metrics["data"]["crop"]["top"] = 0
    path.write_text(json.dumps(metrics))
    with pytest.raises(DataError, match=re.escape(f"{exact}: metrics.json records the crop [0, 1, 0, 1] (top, bottom, "
                                                  "left, right), but its options now give [1, 1, 0, 1]")):
        cl.evaluate_runs([exact], str(tmp_path / "gt.mat"))


def test_a_folder_without_metrics_is_refused(tmp_path):
    with pytest.raises(DataError, match=f"^{re.escape(str(tmp_path))}: no metrics.json, so not a finished run folder"):
        cl.load_run(str(tmp_path))


# ----------------------------------------------------------------------------- a real pair with a no-data patch

R = 4
WAVELENGTHS = np.linspace(420.0, 1000.0, 16)
HR = Affine(0.5, 0, 272000.0, 0, -0.5, 3290000.0)
PATCH = (slice(10, 18), slice(20, 29))  # the HR image's black (no-data) patch, rows and columns
LR_GAP = (7, 2)  # an LR-HSI pixel without data (0 in every band): HR rows 28-31, columns 8-11


@pytest.fixture
def real_pair_run(tmp_path):
    """A tiny real GeoTIFF pair like the Houston one: an LR-HSI of 10 x 10 pixels and 16 bands, an RGB
    HR image of 42 x 41 pixels (r = 4; loading crops 2 rows and 1 column, the run's hr_crop) with a
    zero (no-data) patch, one LR-HSI pixel of zeros, and labels on the RGB image's 42 x 41 grid with
    class 4 only under the patch. Noisy class spectra, so that the scores vary with the seed; the run
    folder's output is the noise-free class spectra. Returns (tmp_path, labels, run folder)."""
    rng = np.random.default_rng(5)
    gt = rng.integers(0, 4, (42, 41))
    gt[PATCH] = rng.choice([1, 4], size=gt[PATCH].shape)
    spectra = class_spectra(gt, WAVELENGTHS.size)
    noisy = np.clip(spectra + rng.normal(0, 0.08, spectra.shape), 0.02, 0.98)
    lr = noisy[:40, :40].reshape(10, R, 10, R, -1).mean(axis=(1, 3))
    lr[LR_GAP] = 0
    rgb = np.clip(class_spectra(gt, 3, seed=2) + rng.normal(0, 0.08, (42, 41, 3)), 0.02, 0.98)
    rgb[PATCH] = 0
    lr_path, hr_path, gt_path = (str(tmp_path / name) for name in ("lr.tif", "rgb.tif", "labels.tif"))
    write_geotiff(lr_path, lr, "EPSG:26915", HR @ Affine.scale(R), wavelengths=WAVELENGTHS)
    write_geotiff(hr_path, rgb, "EPSG:26915", HR, nodata=0, band_names=["red", "green", "blue"])
    write_geotiff(gt_path, gt[:, :, None], "EPSG:26915", HR, dtype="uint8")
    argv = ["--lr_hsi", lr_path, "--hr_msi", hr_path, "--msi_sensor", "worldview2", "--msi_bands_select",
            "red,green,blue", "--device", "cpu"]
    options = {k: str(v) if k == "device" else v for k, v in vars(get_args(argv)).items()}
    folder = tmp_path / "checkpoints" / "run"
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({"method": "udaln", "options": options,
                                                      "data": {"hr_crop": [2, 1]}}))
    scipy.io.savemat(folder / "My_Out.mat", {"Out": spectra[:40, :40].astype(np.float32)})
    return tmp_path, gt, str(folder)


def test_the_no_data_patch_of_a_real_pair_is_left_out_and_its_labels_with_it(real_pair_run, few_trees):
    tmp_path, gt, folder = real_pair_run
    results = cl.evaluate_runs([folder], str(tmp_path / "labels.tif"), seeds=(0,))
    assert results["protocol"]["crop_top_bottom_left_right"] == [0, 2, 0, 1]  # the run's hr_crop
    labels = gt[:40, :40].copy()  # the labels under the fused image
    no_data = np.zeros(labels.shape, bool)
    no_data[PATCH] = True
    no_data[LR_GAP[0] * R:(LR_GAP[0] + 1) * R, LR_GAP[1] * R:(LR_GAP[1] + 1) * R] = True
    assert (labels[no_data] > 0).sum() > 50 and (labels[PATCH] == 4).any()
    kept = labels[~no_data & (labels > 0)]
    assert results["labelled_pixels"] == kept.size
    assert results["masked_labelled_pixels"] == (labels[no_data] > 0).sum()
    assert results["classes"] == {c: int((kept == c).sum()) for c in (1, 2, 3)}  # class 4 lies only in the patch
    assert [(image["name"], image["bands"]) for image in results["images"]] == [
        ("bicubic", 16), ("HR-MSI", 3), ("HR-MSI + bicubic", 19), ("udaln (run)", 16)]
    assert results["distinct_spectra"]["of"] == "HR-MSI" and results["note"] is None
    # The labels line up with the cropped pair: the noise-free class spectra classify perfectly.
    assert results["images"][3]["mean"]["svm"] == {"OA": 1.0, "AA": 1.0, "kappa": 1.0}


def test_mean_and_std_over_seeds_are_those_of_the_per_seed_scores(real_pair_run, few_trees, tmp_path):
    _, _, folder = real_pair_run
    seeds = (0, 1, 2)
    results = cl.evaluate_runs([folder], str(tmp_path / "labels.tif"), train_fraction=0.2, seeds=seeds)
    paths = cl.write_tables(results, str(tmp_path / "out"))
    assert [split["seed"] for split in results["splits"]] == list(seeds)
    with open(paths[1]) as f:
        rows = {row["image"]: row for row in csv.DictReader(f)}
    table = open(paths[0]).read()
    spread = False
    for image in results["images"]:
        assert [seed["seed"] for seed in image["seeds"]] == list(seeds)
        cells = []
        for name, score in cl.TABLE_COLUMNS:
            values = np.array([seed[name][score] for seed in image["seeds"]])
            mean, std = values.mean(), np.sqrt(((values - values.mean()) ** 2).sum() / (values.size - 1))
            assert image["mean"][name][score] == pytest.approx(mean, abs=1e-12)
            assert image["std"][name][score] == pytest.approx(std, abs=1e-12)
            assert float(rows[image["name"]][f"{name}_{score}_mean"]) == pytest.approx(mean, abs=1e-6)
            assert float(rows[image["name"]][f"{name}_{score}_std"]) == pytest.approx(std, abs=1e-6)
            scale, digits = (1, 4) if score == "kappa" else (100, 2)
            cells.append(f"{scale * mean:.{digits}f} ± {scale * std:.{digits}f}")
            spread |= std > 0
        assert f"| {image['name']} | " + " | ".join(cells) + " |" in table
    assert spread  # the seeds give different scores, so the test compares real spreads
