"""fusion.api.fuse_arrays: the command line's fusion on arrays, with the same result."""
import json

import numpy as np
import pytest
from conftest import SYNTHETIC_CUBE, TINY_SCHEDULE

import train_all_special
from config import OptionError
from data_loader import DataError, load_cube, srf_from_bands
from evaluation import evaluate
from fusion.api import fuse_arrays
from imagery.readers import read_image
from imagery.sensors import band_ranges
from model.degradation import gaussian_psf, spatial_degrade

R = 4
WAVELENGTHS = np.linspace(400.0, 2500.0, 224)[:68]
SCHEDULE = dict(epoch_stage1=40, decay_begin_epoch_stage1=20, epoch_stage2=40, decay_begin_epoch_stage2=20,
                epoch_stage3=20, decay_begin_epoch_stage3=10, threads=1, eval_every=20, device="cpu")


@pytest.fixture(scope="module")
def arrays():
    """A 32 x 32 x 68 crop of the synthetic cube as a WorldView-2 pair at r = 4, in digital numbers."""
    reference = load_cube(SYNTHETIC_CUBE)[50:82, 50:82]
    srf = srf_from_bands(WAVELENGTHS, band_ranges("worldview2"))
    lr = np.round(spatial_degrade(reference, gaussian_psf(R, R / 2.35482), R) * 10000)
    return reference, lr, np.round(reference @ srf * 10000), srf


def test_arrays_give_the_command_lines_result_bit_for_bit(arrays, tmp_path):
    reference, lr, hr, _ = arrays
    np.save(tmp_path / "pair_lr.npy", lr)
    np.save(tmp_path / "pair_hr.npy", hr)
    np.savetxt(tmp_path / "wavelengths.txt", WAVELENGTHS)
    argv = ["--lr_hsi", str(tmp_path / "pair_lr.npy"), "--hr_msi", str(tmp_path / "pair_hr.npy"),
            "--hsi_wavelengths", str(tmp_path / "wavelengths.txt"), "--msi_sensor", "worldview2",
            "--checkpoints_dir", str(tmp_path / "cli")]
    argv += [item for key, value in SCHEDULE.items() for item in (f"--{key}", str(value))]
    assert train_all_special.main(argv) == 0
    (folder,) = (tmp_path / "cli").iterdir()

    result = fuse_arrays(lr, hr, msi_sensor="worldview2", wavelengths=WAVELENGTHS, name="pair_lr",
                         run_folder=tmp_path / "api", **SCHEDULE)

    cli_image = read_image(str(folder / "My_Out.mat"), "Out", dtype=np.float32).data
    assert result.image.shape == (32, 32, 68) and np.array_equal(result.image, cli_image)
    cli_report = json.load(open(folder / "metrics.json"))
    assert result.report["no_reference"] == cli_report["no_reference"]
    assert result.report["loss_history"] == cli_report["loss_history"]
    assert result.run_folder.endswith(folder.name)  # the pair's name starts the run folder's, as a file's stem does


def test_a_reference_is_scored_and_nothing_is_kept_without_a_run_folder(arrays, tmp_path, monkeypatch):
    reference, lr, hr, srf = arrays
    monkeypatch.chdir(tmp_path)
    result = fuse_arrays(lr / 10000, hr / 10000, srf=srf, reference=reference, **SCHEDULE)
    assert result.run_folder is None and list(tmp_path.iterdir()) == []
    assert result.report["final"]["PSNR"] == pytest.approx(evaluate(reference, result.image, R)["PSNR"], rel=1e-6)
    assert result.report["options"]["degradation"] == "normalised"  # a real pair's default
    assert result.report["data"]["srf_source"] == "the srf array"


def test_bad_options_and_arrays_raise_errors_that_say_what_to_do(arrays):
    _, lr, hr, srf = arrays
    with pytest.raises(OptionError, match="unknown option 'epochs'"):
        fuse_arrays(lr, hr, srf=srf, epochs=10)
    with pytest.raises(OptionError, match="hsi_wavelengths does not apply to arrays"):
        fuse_arrays(lr, hr, srf=srf, hsi_wavelengths="w.txt")
    with pytest.raises(OptionError, match="--method: invalid choice"):
        fuse_arrays(lr, hr, srf=srf, method="udalm")
    with pytest.raises(DataError, match=r"lr_hsi: expected a non-empty real H x W x C array, got shape \(8, 8\)"):
        fuse_arrays(lr[:, :, 0], hr, srf=srf)
    with pytest.raises(DataError, match="the LR-HSI must have more bands; are --lr_hsi and --hr_msi swapped"):
        fuse_arrays(hr, lr, srf=srf)
