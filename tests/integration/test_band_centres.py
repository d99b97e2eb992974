"""Band centres from a reference cube file's 'wavelengths' vector to the simulated pair (data_loader.Dataset,
fusion.pair.Pair), metrics.json and the run folder's figures (true colour, SRF against wavelength)."""
import json
import logging
import os

import numpy as np
import pytest
import scipy.io
import torch
from conftest import TINY_SCHEDULE

import train_all_special
from config import get_args
from data_loader import Dataset
from fusion.pair import Pair
from imagery import quicklook as ql
from reproduce.figures import run_metadata

# 31 bands every 20 nm from 405 nm: 645, 545 and 465 nm, the bands nearest 640, 550 and 470 nm, are 12, 7, 3.
WAVELENGTHS = 405.0 + 20.0 * np.arange(31)
TRUE_COLOUR_BANDS = (12, 7, 3)
# MSI bands centred on 850 (NIR), 660 (red), 560 (green) and 480 nm (blue): red, green, blue are 1, 2, 3.
MSI_CENTRES = np.array([850.0, 660.0, 560.0, 480.0])
MSI_TRUE_COLOUR_BANDS = (1, 2, 3)


@pytest.fixture
def data_argv(tmp_path):
    """A 20 x 20 x 31 reflectance cube in data/toy/scene.mat with its 'wavelengths' and 'fwhm' vectors, and a
    4-band Gaussian SRF in srf/toy.csv; returns the options that simulate a pair from them at r = 4."""
    rng = np.random.default_rng(5)
    rows, cols = np.mgrid[0:20, 0:20] / 20
    abundances = np.stack([0.5 + 0.4 * np.sin(2 * np.pi * cols), 0.5 + 0.4 * np.cos(2 * np.pi * rows)], axis=-1)
    cube = (0.05 + 0.4 * abundances @ rng.random((2, 31))).astype(np.float32)
    (tmp_path / "data" / "toy").mkdir(parents=True)
    scipy.io.savemat(tmp_path / "data" / "toy" / "scene.mat",
                     {"REF": cube, "wavelengths": WAVELENGTHS[None, :], "fwhm": np.full((1, 31), 20.0)})
    srf = np.exp(-0.5 * ((WAVELENGTHS[:, None] - MSI_CENTRES) / 30.0) ** 2)
    srf[srf < 1e-3] = 0.0
    (tmp_path / "srf").mkdir()
    np.savetxt(tmp_path / "srf" / "toy.csv", srf, delimiter=",")
    return ["--default_datapath", str(tmp_path / "data"), "--sp_root_path", str(tmp_path / "srf"),
            "--data_name", "toy", "--scale_factor", "4", "--device", "cpu"]


def test_a_simulated_pair_carries_the_band_centres_of_its_cube_file(tmp_path, data_argv):
    data = Dataset(get_args(data_argv))
    np.testing.assert_array_equal(data.fwhm, np.full(31, 20.0))
    pair = Pair.from_dataset(data, 0, torch.device("cpu"))
    assert pair.wavelengths.dtype == np.float64
    np.testing.assert_array_equal(pair.wavelengths, WAVELENGTHS)
    assert pair.msi_band_names is None  # the SRF table has no header
    assert pair.info["wavelength_source"] == str(tmp_path / "data" / "toy" / "scene.mat")


def test_hsi_wavelengths_takes_precedence_over_the_cube_files(tmp_path, data_argv, caplog):
    path = tmp_path / "centres.txt"
    np.savetxt(path, WAVELENGTHS + 2.0)
    with caplog.at_level(logging.INFO):
        data = Dataset(get_args(data_argv + ["--hsi_wavelengths", str(path)]))
    pair = Pair.from_dataset(data, 0, torch.device("cpu"))
    np.testing.assert_array_equal(pair.wavelengths, WAVELENGTHS + 2.0)
    assert data.fwhm is None and pair.info["wavelength_source"] == str(path)
    assert "using the band centres of --hsi_wavelengths" in caplog.text


def test_the_run_folder_of_a_simulated_pair_shows_true_colour_and_records_the_band_centres(
        tmp_path, data_argv, monkeypatch):
    chosen = {"hsi": [], "msi": []}
    hsi_bands, msi_bands = ql._hsi_bands, ql._msi_bands

    def record_hsi(*args):
        chosen["hsi"].append(hsi_bands(*args))
        return chosen["hsi"][-1]

    def record_msi(*args):
        bands = msi_bands(*args)
        chosen["msi"].append(bands[0])
        return bands

    monkeypatch.setattr(ql, "_hsi_bands", record_hsi)
    monkeypatch.setattr(ql, "_msi_bands", record_msi)
    assert train_all_special.main(data_argv + TINY_SCHEDULE + ["--checkpoints_dir", str(tmp_path / "runs")]) == 0
    # quicklook.png, fig2_consistency.png and fig3_error_maps.png: every composite in true colour
    assert chosen["hsi"] and set(chosen["hsi"]) == {(TRUE_COLOUR_BANDS, True)}
    assert chosen["msi"] and set(chosen["msi"]) == {MSI_TRUE_COLOUR_BANDS}
    [folder] = (tmp_path / "runs").iterdir()
    assert {"quicklook.png", "fig3_error_maps.png", "psf_srf.png"} <= set(os.listdir(folder))
    with open(folder / "metrics.json") as f:
        metrics = json.load(f)
    np.testing.assert_array_equal(metrics["data"]["wavelengths"], WAVELENGTHS)
    np.testing.assert_array_equal(run_metadata(metrics, 31)[0], WAVELENGTHS)  # psf_srf.png redrawn in nm
