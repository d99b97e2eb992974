"""The project's uSDN against its authors' TensorFlow code (issue #25).

tests/fixtures/usdn_tensorflow.json holds the metrics of the authors' uSDN (github.com/aicip/uSDN, run
under TensorFlow 2's compatibility layer by benchmarks/tensorflow_reference.py, which says what to install
and how to run it; TensorFlow is not needed here) on the shared case of the Octave comparison, once per
seed, with the project's uSDN beside it. Both sides stop by the authors' rule on the reference and
initialise the HR-MSI encoder for 2,000 steps. uSDN is stochastic (its initial weights), and the two
frameworks draw different ones from the same seed, so the comparison is on quality: the project's run
must be no worse than the worst of the authors' runs by more than MARGIN (PSNR in dB; SAM and ERGAS
relative), and the mean over the recorded seeds of both sides within MEAN_MARGIN.
"""
import json

import numpy as np
import pytest

from benchmarks.octave_reference import build_case
from benchmarks.tensorflow_reference import FIXTURE, PYTHON_PARAMS, python_fuse
from evaluation import evaluate

MARGIN = {"psnr_db": 1.0, "relative": 0.10}
MEAN_MARGIN = {"psnr_db": 1.0, "relative": 0.10}


@pytest.fixture(scope="module")
def reference():
    with open(FIXTURE) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def case():
    return build_case()


def test_the_fixture_is_for_this_case_and_these_parameters(reference, case):
    assert reference["python_params"] == PYTHON_PARAMS
    assert reference["case"]["shapes"] == {k: list(case[k].shape) for k in reference["case"]["shapes"]}
    np.testing.assert_allclose([case["Y"].sum(), case["Z"].sum()],
                               [reference["case"]["Y_sum"], reference["case"]["Z_sum"]], rtol=1e-10)
    assert len(reference["source"]["commit"]) == 40 and len(reference["runs"]["authors"]) >= 2


def test_the_recorded_runs_agree_on_average(reference):
    """Over the same seeds, the mean quality of the project's runs is the authors' within MEAN_MARGIN."""
    def mean(side, name):
        return np.mean([run["metrics"][name] for run in reference["runs"][side]])

    assert mean("python", "PSNR") >= mean("authors", "PSNR") - MEAN_MARGIN["psnr_db"]
    for name in ("SAM", "ERGAS"):
        assert mean("python", name) <= mean("authors", name) * (1 + MEAN_MARGIN["relative"])


def test_the_python_uSDN_is_no_worse_than_the_authors_runs(reference, case, one_torch_thread):
    ours = evaluate(case["X"], python_fuse(case, seed=0), case["r"], ssim=False)
    worst = {name: [run["metrics"][name] for run in reference["runs"]["authors"]] for name in ("PSNR", "SAM", "ERGAS")}
    assert ours["PSNR"] >= min(worst["PSNR"]) - MARGIN["psnr_db"], (ours, worst)
    for name in ("SAM", "ERGAS"):
        assert ours[name] <= max(worst[name]) * (1 + MARGIN["relative"]), (ours, worst)
