"""Shared fixtures: the project root on the import path, and a small real data set for training runs."""
import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from config import get_args  # noqa: E402
from data_loader import load_cube  # noqa: E402

# A few hundred epochs per stage: enough to beat bicubic, fast enough for the test suite.
SHORT_SCHEDULE = ["--epoch_stage1", "300", "--decay_begin_epoch_stage1", "150",
                  "--epoch_stage2", "300", "--decay_begin_epoch_stage2", "150",
                  "--epoch_stage3", "100", "--decay_begin_epoch_stage3", "50",
                  "--eval_every", "100"]


@pytest.fixture(scope="session")
def crop_data(tmp_path_factory):
    """A 40 x 40 crop of the embedded Indian Pines VNIR cube and its WorldView-2-like SRF."""
    root = tmp_path_factory.mktemp("data")
    cube = load_cube(os.path.join(ROOT, "data", "indian_pines", "indian_pines_vnir.mat"))
    os.makedirs(root / "crop")
    np.save(root / "crop" / "crop.npy", cube[50:90, 50:90].astype(np.float32))
    srf = np.loadtxt(os.path.join(ROOT, "data", "spectral_response", "indian_pines.csv"), delimiter=",")
    np.save(root / "crop.npy", srf)
    return root


def short_run_argv(data_root, checkpoints, *extra):
    """Options of a short training run on the crop."""
    return ["--default_datapath", str(data_root), "--sp_root_path", str(data_root), "--data_name", "crop",
            "--checkpoints_dir", str(checkpoints), "--device", "cpu", *SHORT_SCHEDULE, *extra]


@pytest.fixture
def short_run_args(crop_data, tmp_path):
    """get_args for a short training run on the crop, writing into tmp_path/checkpoints."""
    return lambda *extra: get_args(short_run_argv(crop_data, tmp_path / "checkpoints", *extra))
