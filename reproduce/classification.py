"""Classification of fused images: the UDS2C2 paper's evaluation on real data (issue #13).

Yu et al., "Unsupervised Hyperspectral and Multispectral Image Fusion With Deep Spectral-Spatial
Collaborative Constraint", IEEE TGRS 62, 2024 (doi 10.1109/TGRS.2024.3472226), judge fusion on real
data by how well the fused image classifies. The paper does not publish its classifier settings; the
protocol here is the usual one of the hyperspectral literature, with every choice stated:

* Images scored, all on the HR grid (H x W x bands, rows, columns, bands): the LR-HSI upsampled by
  ``baselines.bicubic`` (row "bicubic": this is the HSI upsampled, the spectral floor), the HR-MSI
  (for the Houston pair, the RGB image alone), the two stacked band after band ("HR-MSI + bicubic":
  feature-level stacking, no fusion), each run folder's fused image (``My_Out.mat``, variable 'Out',
  divided by the run's radiometric factor to the pair's scale) and, when the pair has one, the
  reference (Wald's simulation, or a real pair's --reference).
* Pixels: the labelled pixels of the ground truth (label 0 = unlabelled) where every image is defined
  (``scored_mask``: the pair's valid-pixel masks, which leave out the no-data pixels of either input,
  such as the black patch of the Houston RGB image). Features: each pixel's spectrum, nothing spatial.
* Split: ``sklearn.model_selection.train_test_split``, stratified by class, ``train_fraction`` of the
  labelled pixels (default 10 %, about that share of each class) for training, the rest for testing,
  ``random_state`` = seed; one split per seed (default seeds 0 to 4), the same for every image.
  Classes with fewer than ``MIN_CLASS_PIXELS`` labelled pixels cannot be split and are left out
  (named in the outputs).
* Classifiers, hyperparameters fixed (no search), so every image is scored by the same models:
  SVM = StandardScaler then ``sklearn.svm.SVC`` with an RBF kernel, C = 100, gamma = 'scale' (on the
  standardised features 1 / bands); RF = ``sklearn.ensemble.RandomForestClassifier``, 200 trees,
  sqrt(bands) features per split, random_state = seed. The SVM is deterministic: its spread over the
  seeds is the split's alone.
* Scores from the confusion matrix (``confusion_matrix``): overall accuracy OA, per-class accuracy
  (each class's recall, the producer's accuracy), average accuracy AA (their mean) and Cohen's kappa
  (J. Cohen, "A coefficient of agreement for nominal scales", Educ. Psychol. Meas. 20, 1960), for
  each seed; the tables give their mean and sample standard deviation (ddof = 1) over the seeds.

The pair is rebuilt exactly as the run saw it: the run's options (metrics.json "options", else
opt.txt, whose relative paths are taken from the current folder) go through ``config.get_args`` and
``fusion.run.load_pair``. Every run folder given must come from the same pair. The ground truth
lies on the grid of the reference cube file (simulated pair) or of the HR-MSI file (real pair); the
crop recorded in the run's metrics.json "data" (``crop``: top, bottom, left, right rows/columns
removed from the cube; ``hr_crop``: rows and columns removed at the bottom and right of the HR-MSI)
aligns it with the fused image.

A class-mean image (such as the synthetic test fixture, 17 distinct spectra, one per class of its
ground truth) classifies almost perfectly whatever the method, as long as the class spectra stay
apart. The outputs say so whenever the reference (or, without one, the HR-MSI) holds no more distinct
spectra than classes.

    python -m reproduce.classification [--gt FILE] [--gt_key NAME] [--train_fraction F]
                                       [--seeds 0,1,2,3,4] [--output DIR] RUN_FOLDER ...

writes ``classification.md`` and ``classification.csv`` (rows: images; mean and standard deviation
over the seeds of SVM and RF OA, AA, kappa) and ``classification.json`` (the protocol, class counts,
each seed's split and, per image and seed, the scores, per-class accuracies and confusion matrices)
into ``--output``. Bad input raises ``data_loader.DataError``; the command prints it and exits with 1.
"""
import argparse
import csv
import json
import logging
import os
import sys
from dataclasses import dataclass

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from baselines import bicubic
from config import ROOT, build_parser, get_args
from data_loader import DataError
from fusion.pair import hwc
from fusion.run import load_pair
from imagery.readers import read_image

log = logging.getLogger(__name__)

# The land-cover labels of the Houston 2018 real pair, on its RGB image's grid (data/README.md).
DEFAULT_GT = os.path.join(ROOT, "data", "ground_truth", "houston18_labels.tif")
DEFAULT_TRAIN_FRACTION = 0.1
DEFAULT_SEED = 0
DEFAULT_SEEDS = (0, 1, 2, 3, 4)
DEFAULT_OUTPUT = "classification_results"
SVM_C = 100.0
SVM_GAMMA = "scale"
RF_TREES = 200
# A stratified split needs at least one pixel of a class on each side.
MIN_CLASS_PIXELS = 2
CLASSIFIERS = ("svm", "rf")
SCORES = ("OA", "AA", "kappa")
# Options that do not change the pair, or that get_args would check against files that may be gone.
IGNORED_OPTIONS = {"device", "gpu_ids", "threads", "resume", "overwrite", "checkpoints_dir", "checkpoint_every"}
NOTE_CLASS_MEANS = ("The {what} holds only {distinct} distinct spectra over the labelled pixels of {classes} "
                    "classes: the scene is a class-mean (piecewise-constant) image, as the synthetic class-mean "
                    "test fixture is (tests/fixtures/README.md). The reference therefore classifies almost "
                    "perfectly, and the scores rank how well each image keeps the class spectra apart, not how it "
                    "would classify real, variable pixels.")


# ----------------------------------------------------------------------------- scores

def confusion_matrix(y_true, y_pred, labels=None):
    """The confusion matrix of two label vectors (N each): ``cm[i, j]`` = number of pixels of class
    ``labels[i]`` predicted as ``labels[j]`` (rows true, columns predicted, as scikit-learn's).

    ``labels``: the sorted class labels (default: every label in either vector). Returns
    (labels, cm) with cm int64, K x K. Raises ValueError for vectors of different lengths or a label
    missing from ``labels``.
    """
    y_true, y_pred = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has {y_true.size} labels and y_pred {y_pred.size}; give one prediction per pixel")
    labels = np.unique(np.concatenate([y_true, y_pred])) if labels is None else np.asarray(labels)
    true_index, pred_index = np.searchsorted(labels, y_true), np.searchsorted(labels, y_pred)
    for vector, index in ((y_true, true_index), (y_pred, pred_index)):
        index = np.minimum(index, labels.size - 1)
        if vector.size and not np.array_equal(labels[index], vector):
            unknown = sorted(set(vector.tolist()) - set(labels.tolist()))
            raise ValueError(f"labels {unknown} are not in {labels.tolist()}")
    k = labels.size
    cm = np.bincount(true_index * k + pred_index, minlength=k * k).reshape(k, k)
    return labels, cm


def accuracy_scores(y_true, y_pred):
    """OA, AA, Cohen's kappa and per-class accuracies of predicted labels, from the confusion matrix.

    y_true, y_pred: N labels each. Returns a dict: ``OA`` (correct / N), ``per_class`` ({label:
    recall = correct of that class / its pixels}, for the classes of y_true), ``AA`` (mean of
    per_class), ``kappa`` ((OA - pe) / (1 - pe), pe = sum_k true_k pred_k / N^2, the chance
    agreement; NaN when pe = 1, where kappa is undefined), ``classes`` and ``confusion_matrix``
    (rows true, columns predicted). All fractions in [0, 1] (kappa in [-1, 1]). These equal
    scikit-learn's accuracy_score, balanced_accuracy_score and cohen_kappa_score.
    """
    labels, cm = confusion_matrix(y_true, y_pred)
    total = cm.sum()
    support, predicted, correct = cm.sum(axis=1), cm.sum(axis=0), np.diag(cm)
    present = support > 0
    recall = correct[present] / support[present]
    oa = correct.sum() / total
    chance = float(support @ predicted) / float(total) ** 2
    kappa = (oa - chance) / (1.0 - chance) if chance < 1.0 else float("nan")
    return {"OA": float(oa), "AA": float(recall.mean()), "kappa": float(kappa),
            "per_class": {int(label): float(value) for label, value in zip(labels[present], recall)},
            "classes": labels.tolist(), "confusion_matrix": cm.tolist()}


# ----------------------------------------------------------------------------- split and classifiers

def stratified_split(labels, train_fraction=DEFAULT_TRAIN_FRACTION, seed=DEFAULT_SEED, source="the ground truth"):
    """Indices (sorted) of the training and test pixels of ``labels`` (N class labels): scikit-learn's
    ``train_test_split`` stratified by class, ``train_fraction`` (0 < f < 1) of the pixels for
    training, ``random_state`` = ``seed``; the same seed gives the same split.

    Raises DataError (naming ``source``) when the split is impossible: a class with fewer than 2
    pixels, or fewer training or test pixels than classes.
    """
    labels = np.asarray(labels).ravel()
    if not 0.0 < train_fraction < 1.0:
        raise DataError(f"{source}: the training fraction must be between 0 and 1 (got {train_fraction})")
    try:
        train, test = train_test_split(np.arange(labels.size), train_size=train_fraction, random_state=seed,
                                       stratify=labels)
    except ValueError as exc:
        raise DataError(f"{source}: cannot split {labels.size} labelled pixels of {np.unique(labels).size} classes "
                        f"into training ({train_fraction:g}) and test pixels with every class on both sides "
                        f"({exc}); use a larger labelled area or another --train_fraction") from None
    return np.sort(train), np.sort(test)


def classifiers(seed=DEFAULT_SEED):
    """The two classifiers, untrained: {'svm': StandardScaler + RBF SVC (C = SVM_C, gamma = SVM_GAMMA),
    'rf': random forest of RF_TREES trees, sqrt(features) per split, random_state = seed}."""
    return {"svm": make_pipeline(StandardScaler(), SVC(kernel="rbf", C=SVM_C, gamma=SVM_GAMMA)),
            "rf": RandomForestClassifier(n_estimators=RF_TREES, max_features="sqrt", random_state=seed, n_jobs=1)}


def classify(features, labels, train, test, seed=DEFAULT_SEED):
    """Train each classifier of ``classifiers(seed)`` on ``features[train]`` (N x bands, one spectrum
    per pixel) with ``labels[train]`` and score it on the test pixels: {'svm': accuracy_scores, 'rf': ...}."""
    scores = {}
    for name, model in classifiers(seed).items():
        model.fit(features[train], labels[train])
        scores[name] = accuracy_scores(labels[test], model.predict(features[test]))
    return scores


def seed_statistics(per_seed):
    """Mean and sample standard deviation (ddof = 1) over the seeds of each classifier's scores.

    per_seed: one ``classify`` result per seed ({'svm': accuracy_scores, 'rf': ...}). Returns
    (mean, std), each {'svm': {'OA': ..., 'AA': ..., 'kappa': ...}, 'rf': {...}} of fractions; every
    standard deviation is None for a single seed, where it is undefined.
    """
    mean, std = {}, {}
    for name in CLASSIFIERS:
        values = {score: np.array([scores[name][score] for scores in per_seed]) for score in SCORES}
        mean[name] = {score: float(v.mean()) for score, v in values.items()}
        std[name] = {score: float(v.std(ddof=1)) if v.size > 1 else None for score, v in values.items()}
    return mean, std


# ----------------------------------------------------------------------------- ground truth

def read_ground_truth(path, key=None):
    """A label map (H x W int64, 0 = unlabelled, classes 1, 2, ...) from any format of
    ``imagery.readers.read_image`` (in a .mat/.h5 file: the variable ``key``, else the only 2-D array).

    Raises DataError naming the file when it is missing or unreadable, has more than one band, or holds
    values that are not non-negative integers.
    """
    image = read_image(path, key=key, role="ground truth", key_option="--gt_key", allow_2d=True)
    data = image.data
    if data.shape[2] != 1:
        raise DataError(f"{path}: the ground truth has {data.shape[2]} bands; give an H x W label map "
                        "(0 = unlabelled, classes 1, 2, ...)")
    data = data[:, :, 0]
    bad = ~np.isfinite(data) | (data < 0) | (data != np.round(data))
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise DataError(f"{path}: {int(bad.sum())} ground-truth values are not non-negative integers, the first at "
                        f"(row, column) = {first}; labels must be 0 (unlabelled) or a class number 1, 2, ...")
    return data.astype(np.int64)


def crop_offsets(data):
    """(top, bottom, left, right) rows/columns removed from the ground truth's grid, from a run's
    metrics.json "data": ``crop`` (simulated pair) or ``hr_crop`` (real pair, bottom and right only);
    (0, 0, 0, 0) when neither is recorded."""
    if "crop" in data:
        crop = data["crop"]
        return tuple(int(crop[k]) for k in ("top", "bottom", "left", "right"))
    if "hr_crop" in data:
        rows, cols = data["hr_crop"]
        return 0, int(rows), 0, int(cols)
    return 0, 0, 0, 0


def align_ground_truth(gt, offsets, shape, gt_path):
    """The part of the label map ``gt`` (H0 x W0, on the cube's or HR-MSI file's grid) under the fused
    image of ``shape`` (H, W): ``gt[top:H0 - bottom, left:W0 - right]`` for ``offsets`` = (top, bottom,
    left, right), see ``crop_offsets``.

    Raises DataError naming ``gt_path`` when the sizes do not fit (H0 != top + H + bottom, or the same
    for the columns).
    """
    top, bottom, left, right = offsets
    rows, cols = shape[:2]
    expected = (top + rows + bottom, left + cols + right)
    if tuple(gt.shape) != expected:
        raise DataError(f"{gt_path}: the ground truth is {gt.shape[0]} x {gt.shape[1]} pixels, but the fused image is "
                        f"{rows} x {cols} after removing {list(offsets)} rows/columns (top, bottom, left, right) "
                        f"from a {expected[0]} x {expected[1]} grid; give the label map of the same scene on the "
                        "reference cube's (or the HR-MSI's) grid")
    return gt[top:top + rows, left:left + cols]


# ----------------------------------------------------------------------------- run folders

@dataclass
class Run:
    """A finished run folder: its path, the name of its table row, its metrics.json and parsed options."""
    folder: str
    name: str
    metrics: dict
    args: argparse.Namespace


def _recorded_options(folder):
    """The run's options as a dict: metrics.json "options", else the lines of opt.txt (strings)."""
    path = os.path.join(folder, "metrics.json")
    if not os.path.isfile(path):
        raise DataError(f"{folder}: no metrics.json, so not a finished run folder; give the folder of a completed "
                        "run (resume an interrupted one with train_all_special.py --resume)")
    try:
        with open(path) as f:
            metrics = json.load(f)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable ({exc}); the run folder is damaged, fuse again") from None
    options = metrics.get("options")
    if options is None:
        opt_path = os.path.join(folder, "opt.txt")
        if not os.path.isfile(opt_path):
            raise DataError(f"{folder}: neither metrics.json 'options' nor opt.txt records the run's options; "
                            "the pair it fused cannot be rebuilt")
        with open(opt_path) as f:
            pairs = (line.split(": ", 1) for line in f.read().splitlines() if ": " in line)
            options = {key.strip(): value.strip() for key, value in pairs}
    return metrics, options


def options_argv(options):
    """Command-line arguments of train_all_special that rebuild a run's pair from its recorded options
    (a dict from metrics.json, typed, or from opt.txt, strings), on the CPU."""
    defaults = vars(build_parser().parse_args([]))
    argv = []
    for dest, default in defaults.items():
        value = options.get(dest)
        if dest in IGNORED_OPTIONS or value is None or value == "None":
            continue
        if default is False:
            if value in (True, "True"):
                argv.append(f"--{dest}")
        else:
            argv.append(f"--{dest}={value}")
    return argv + ["--device=cpu"]


def load_run(folder):
    """The ``Run`` of a finished run folder; raises DataError when it is not one or its options no
    longer parse (e.g. a data file it names is gone)."""
    metrics, options = _recorded_options(folder)
    try:
        args = get_args(options_argv(options))
    except SystemExit:
        raise DataError(f"{folder}: the run's recorded options are refused (message above); the files it "
                        "used must be where they were when it ran") from None
    method = metrics.get("method", options.get("method", "udaln"))
    return Run(folder, f"{method} ({os.path.basename(os.path.normpath(folder))})", metrics, args)


def _same_pair(first, other):
    return (first.Y.shape == other.Y.shape and first.Z.shape == other.Z.shape
            and bool((first.Y == other.Y).all()) and bool((first.Z == other.Z).all()))


def load_runs_pair(runs):
    """The pair every run fused (``fusion.pair.Pair`` via ``fusion.run.load_pair``), checked to be
    the same for all, and the crop offsets of the ground truth (``crop_offsets``).

    Raises DataError when two runs fused different pairs, or a run's recorded crop differs from the
    one its options give now (the data changed since it ran)."""
    pair, offsets = None, None
    for run in runs:
        this, _ = load_pair(run.args)
        recorded = crop_offsets(run.metrics.get("data") or {})
        rebuilt = crop_offsets(this.info)
        if run.metrics.get("data") and recorded != rebuilt:
            raise DataError(f"{run.folder}: metrics.json records the crop {list(recorded)} (top, bottom, left, right), "
                            f"but its options now give {list(rebuilt)}; the data changed since the run, fuse again")
        if pair is None:
            pair, offsets, first = this, rebuilt, run
        elif not _same_pair(pair, this):
            raise DataError(f"{run.folder} fused another pair than {first.folder} (other data, scale, noise or "
                            "crop); classify each pair's runs in a separate call")
    return pair, offsets


def fused_image(run, pair):
    """The run's My_Out.mat 'Out' (H x W x C, in the input's units) divided by the pair's radiometric
    factor, float64; DataError when missing or not the pair's size."""
    path = os.path.join(run.folder, "My_Out.mat")
    out = read_image(path, key="Out", role="fused image", key_option="the variable 'Out'").data
    expected = (*pair.Z.shape[2:], pair.Y.shape[1])
    if out.shape != expected:
        raise DataError(f"{path}: the fused image is {' x '.join(map(str, out.shape))}, but the pair of the run's "
                        f"options gives {' x '.join(map(str, expected))}; the run folder does not match its options")
    return out / pair.hsi_factor


def images_to_score(pair, runs):
    """The images to classify, in table order, one at a time: yields (row name, what it is, H x W x bands
    float64 on the HR grid, in the pair's scaled units) for bicubic (the LR-HSI upsampled by
    ``baselines.bicubic``), the HR-MSI, the HR-MSI's bands followed by bicubic's, each run's fused
    image and, when the pair has one, the reference."""
    z = hwc(pair.Z).astype(np.float64)
    upsampled = bicubic.fuse(hwc(pair.Y).astype(np.float64), z, pair.scale, pair.psf, pair.srf)
    yield "bicubic", "the LR-HSI upsampled by baselines.bicubic (the HSI upsampled)", upsampled
    yield "HR-MSI", "the HR-MSI's bands alone", z
    yield ("HR-MSI + bicubic", "the HR-MSI's bands stacked with the bicubic-upsampled LR-HSI's (no fusion)",
           np.concatenate([z, upsampled], axis=2))
    for run in runs:
        yield run.name, os.path.abspath(run.folder), fused_image(run, pair)
    if pair.X is not None:
        yield "reference", "the reference HR-HSI", np.asarray(pair.X, dtype=np.float64)


def scored_mask(pair):
    """H x W bool, True where every image scored is defined, or None when all pixels are: the fused
    image's (``out_valid``: the HR-MSI, and a reference where given, have data) and the inputs'
    (``hr_valid``: the LR-HSI pixel above has data too, so that bicubic is not made of fill values)."""
    masks = [mask for mask in (pair.out_valid, pair.hr_valid) if mask is not None]
    return np.logical_and.reduce(masks) if masks else None


def labelled_pixels(gt, valid, gt_path):
    """Row-major indices of the pixels that are labelled (gt > 0) and valid (H x W bool, or None for
    all), without the classes too small to split; returns (indices, labels, {class: pixels} left out)."""
    mask = gt > 0 if valid is None else (gt > 0) & valid
    labels = gt[mask]
    classes, counts = np.unique(labels, return_counts=True)
    small = {int(c): int(n) for c, n in zip(classes, counts) if n < MIN_CLASS_PIXELS}
    if small:
        log.warning("%s: class(es) %s have fewer than %d labelled pixels in the scored area and are left out",
                    gt_path, sorted(small), MIN_CLASS_PIXELS)
        mask &= ~np.isin(gt, list(small))
    indices = np.flatnonzero(mask)
    if np.unique(gt.ravel()[indices]).size < 2:
        raise DataError(f"{gt_path}: fewer than 2 classes with labelled pixels under the fused image; "
                        "classification needs at least 2 (is it the ground truth of this scene?)")
    return indices, gt.ravel()[indices], small


def distinct_spectra(cube, indices):
    """The number of distinct spectra among the pixels ``indices`` (row-major) of an H x W x C cube."""
    return int(np.unique(cube.reshape(-1, cube.shape[2])[indices], axis=0).shape[0])


# ----------------------------------------------------------------------------- the evaluation

def pixel_features(name, source, cube, indices):
    """The spectra (N x bands) of the pixels ``indices`` (row-major) of an H x W x bands cube; DataError
    (naming the image) when one of them holds NaN or Inf."""
    features = cube.reshape(-1, cube.shape[2])[indices]
    bad = ~np.isfinite(features).all(axis=1)
    if bad.any():
        raise DataError(f"{source}: {name} has NaN or Inf values at {int(bad.sum())} labelled pixels; it cannot "
                        "be classified there")
    return features


def evaluate_runs(folders, gt_path=DEFAULT_GT, gt_key=None, train_fraction=DEFAULT_TRAIN_FRACTION,
                  seeds=DEFAULT_SEEDS):
    """Classify every image of ``images_to_score`` for the run folders' common pair, once per seed of
    ``seeds`` (each seed its own split and random forest); returns the results dict written to
    classification.json: the protocol, the labelled pixels per class, each seed's split, the note, and
    per image its name, source, bands, "mean" and "std" (``seed_statistics``) and "seeds" (per seed:
    seed, SVM and RF ``accuracy_scores``). Raises DataError for bad runs or ground truth."""
    runs = [load_run(folder) for folder in folders]
    pair, offsets = load_runs_pair(runs)
    gt = align_ground_truth(read_ground_truth(gt_path, gt_key), offsets, pair.Z.shape[2:], gt_path)
    valid = scored_mask(pair)
    indices, labels, left_out = labelled_pixels(gt, valid, gt_path)
    splits = [(seed, *stratified_split(labels, train_fraction, seed, source=gt_path)) for seed in seeds]
    classes = np.unique(labels)
    kind = ("reference", pair.X) if pair.X is not None else ("HR-MSI", hwc(pair.Z))
    distinct = distinct_spectra(np.asarray(kind[1]), indices)
    note = (NOTE_CLASS_MEANS.format(what=kind[0], distinct=distinct, classes=classes.size)
            if distinct <= classes.size + 1 else None)

    def per_class(part):
        return {int(c): int((labels[part] == c).sum()) for c in classes}

    results = {
        "protocol": {
            "paper": "Yu et al., IEEE TGRS 62, 2024, doi 10.1109/TGRS.2024.3472226 (real-data evaluation by "
                     "classification); classifier settings are this project's, the paper gives none",
            "ground_truth": os.path.abspath(gt_path), "crop_top_bottom_left_right": list(offsets),
            "train_fraction": train_fraction, "seeds": [int(seed) for seed in seeds],
            "split": "sklearn train_test_split, stratified by class, random_state = the seed; one split per seed, "
                     "the same for every image",
            "svm": f"StandardScaler + SVC(kernel='rbf', C={SVM_C:g}, gamma='{SVM_GAMMA}'), fixed, no search",
            "rf": f"RandomForestClassifier(n_estimators={RF_TREES}, max_features='sqrt', random_state=the seed), "
                  "fixed",
            "scores": "OA, AA (mean per-class recall), Cohen's kappa, per-class recall; fractions in [0, 1]",
            "statistics": "mean and sample standard deviation (ddof = 1) over the seeds",
        },
        "classes": per_class(slice(None)),
        "classes_left_out": left_out,
        "labelled_pixels": int(labels.size),
        "masked_labelled_pixels": 0 if valid is None else int(((gt > 0) & ~valid).sum()),
        "train_pixels": int(splits[0][1].size), "test_pixels": int(splits[0][2].size),
        "splits": [{"seed": int(seed), "train": per_class(train), "test": per_class(test)}
                   for seed, train, test in splits],
        "distinct_spectra": {"of": kind[0], "count": distinct},
        "note": note,
        "images": [],
    }
    for name, source, cube in images_to_score(pair, runs):
        features = pixel_features(name, source, cube, indices)
        log.info("classifying %s (%d bands) with seeds %s", name, cube.shape[2], ",".join(map(str, seeds)))
        per_seed = [{"seed": int(seed), **classify(features, labels, train, test, seed)}
                    for seed, train, test in splits]
        mean, std = seed_statistics(per_seed)
        results["images"].append({"name": name, "source": source, "bands": int(cube.shape[2]),
                                  "mean": mean, "std": std, "seeds": per_seed})
    return results


TABLE_COLUMNS = [(c, s) for c in CLASSIFIERS for s in SCORES]


def table_cell(mean, std, score):
    """A Markdown cell of one score over the seeds: OA and AA in % (2 decimals), kappa as a fraction
    (4 decimals), the mean followed by '± standard deviation' unless ``std`` is None (one seed)."""
    scale, digits = (1.0, 4) if score == "kappa" else (100.0, 2)
    text = f"{scale * mean:.{digits}f}"
    return text if std is None else f"{text} ± {scale * std:.{digits}f}"


def write_tables(results, output):
    """classification.md (mean ± standard deviation over the seeds; OA and AA in %, kappa as a
    fraction), classification.csv (means and standard deviations as fractions, the standard deviation
    empty for one seed) and classification.json (everything, per seed) into the folder ``output``
    (created); returns the three paths."""
    os.makedirs(output, exist_ok=True)
    paths = [os.path.join(output, f"classification.{ext}") for ext in ("md", "csv", "json")]
    protocol = results["protocol"]
    seeds = protocol["seeds"]
    header = "| image | " + " | ".join(f"{c.upper()} {s}{' (%)' if s != 'kappa' else ''}"
                                       for c, s in TABLE_COLUMNS) + " |"
    spread = ("mean ± sample standard deviation over the seeds" if len(seeds) > 1
              else "a single seed, so no standard deviation")
    lines = ["# Classification of the fused images (UDS2C2's real-data evaluation)", "",
             f"Ground truth {protocol['ground_truth']}: {len(results['classes'])} classes, "
             f"{results['labelled_pixels']} labelled pixels under the fused image where every image has data "
             f"({results['masked_labelled_pixels']} labelled no-data pixels left out), {results['train_pixels']} "
             f"for training ({protocol['train_fraction']:g}, stratified by class), {results['test_pixels']} for "
             f"testing. Seeds {', '.join(map(str, seeds))} (split and random forest): {spread}. "
             f"SVM: {protocol['svm']}. RF: {protocol['rf']}.", "",
             header, "|---" * (len(TABLE_COLUMNS) + 1) + "|"]
    for image in results["images"]:
        cells = [table_cell(image["mean"][c][s], image["std"][c][s], s) for c, s in TABLE_COLUMNS]
        lines.append(f"| {image['name']} | " + " | ".join(cells) + " |")
    lines += ["", "Images:"] + [f"- {image['name']}: {image['source']}" for image in results["images"]]
    if results["classes_left_out"]:
        lines += ["", f"Classes left out (fewer than {MIN_CLASS_PIXELS} labelled pixels): "
                      f"{results['classes_left_out']}."]
    if results["note"]:
        lines += ["", f"Note: {results['note']}"]
    with open(paths[0], "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(paths[1], "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "source"] + [f"{c}_{s}_{stat}" for c, s in TABLE_COLUMNS for stat in ("mean", "std")])
        for image in results["images"]:
            values = [(image["mean"][c][s], image["std"][c][s]) for c, s in TABLE_COLUMNS]
            writer.writerow([image["name"], image["source"]]
                            + [f"{v:.6f}" if v is not None else "" for stats in values for v in stats])
    with open(paths[2], "w") as f:
        json.dump(results, f, indent=2)
    return paths


def _fraction(text):
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, e.g. 0.1 for 10 % per class (got {text})")
    return value


def seed_list(text):
    """The seeds of ``--seeds``: comma-separated distinct integers in [0, 2^32) (scikit-learn's
    random_state range), e.g. '0,1,2,3,4', as a tuple in the order given."""
    try:
        seeds = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"give comma-separated integers, e.g. 0,1,2,3,4 (got {text!r})") from None
    if len(set(seeds)) != len(seeds) or not all(0 <= seed < 2 ** 32 for seed in seeds):
        raise argparse.ArgumentTypeError(f"give distinct integers from 0 to 2^32 - 1, e.g. 0,1,2,3,4 (got {text!r})")
    return seeds


def build_arg_parser():
    p = argparse.ArgumentParser(prog="python -m reproduce.classification",
                                description="Classify the fused images of run folders (and the bicubic, HR-MSI, "
                                            "HR-MSI + bicubic and reference images of their pair) with an SVM and "
                                            "a random forest over several seeds; write OA, AA and kappa tables.")
    p.add_argument("runs", nargs="+", metavar="RUN_FOLDER", help="finished run folders of the same pair")
    p.add_argument("--gt", default=DEFAULT_GT, metavar="FILE",
                   help="label map on the reference cube's (or HR-MSI's) grid, 0 = unlabelled "
                        "(default: the labels of the Houston 2018 real pair)")
    p.add_argument("--gt_key", default=None, metavar="NAME",
                   help="variable of the label map in a .mat/.h5 file (default: the only 2-D array)")
    p.add_argument("--train_fraction", type=_fraction, default=DEFAULT_TRAIN_FRACTION,
                   help="share of the labelled pixels used for training, stratified by class (default: %(default)s)")
    p.add_argument("--seeds", type=seed_list, default=DEFAULT_SEEDS, metavar="LIST",
                   help="seeds of the splits and random forests, comma-separated; the tables give the mean and "
                        "standard deviation over them (default: 0,1,2,3,4)")
    p.add_argument("--output", default=DEFAULT_OUTPUT, metavar="DIR",
                   help="folder for classification.md/.csv/.json (default: %(default)s in the current folder)")
    return p


def main(argv=None):
    """The command line; returns the exit code (0 done, 1 bad input)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = build_arg_parser().parse_args(argv)
    try:
        results = evaluate_runs(args.runs, args.gt, args.gt_key, args.train_fraction, args.seeds)
    except DataError as exc:
        log.error("error: %s", exc)
        return 1
    for path in write_tables(results, args.output):
        log.info("wrote %s", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
