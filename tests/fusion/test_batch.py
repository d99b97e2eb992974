"""fusion.batch: a table of real pairs fused each into its own run folder, resumed and skipped, summarised."""
import csv

import numpy as np
import pytest
from affine import Affine
from conftest import SYNTHETIC_CUBE, TINY_SCHEDULE

from data_loader import load_cube, srf_from_bands
from fusion import batch
from imagery.sensors import band_ranges
from imagery.writers import write_geotiff
from model.degradation import gaussian_psf, spatial_degrade

WAVELENGTHS = np.linspace(400.0, 2500.0, 224)[:68]
HR = Affine(20.0, 0, 499000.0, 0, -20.0, 4478000.0)


@pytest.fixture
def table(tmp_path):
    """Two GeoTIFF pairs (r = 4) and a third whose HR-MSI is missing, in a table with one option column."""
    srf = srf_from_bands(WAVELENGTHS, band_ranges("worldview2"))
    for name, top in (("north", 40), ("south", 80)):
        reference = load_cube(SYNTHETIC_CUBE)[top:top + 32, 40:72]
        write_geotiff(str(tmp_path / f"{name}_lr.tif"), spatial_degrade(reference, gaussian_psf(4, 4 / 2.35482), 4),
                      "EPSG:32616", HR @ Affine.scale(4), wavelengths=WAVELENGTHS)
        write_geotiff(str(tmp_path / f"{name}_hr.tif"), reference @ srf, "EPSG:32616", HR)
    path = tmp_path / "pairs.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["name", "lr_hsi", "hr_msi", "msi_sensor", "method"])
        writer.writerow(["north", "north_lr.tif", "north_hr.tif", "worldview2", "udaln"])
        writer.writerow(["south", "south_lr.tif", "south_hr.tif", "worldview2", ""])
        writer.writerow(["east", "north_lr.tif", "east_hr.tif", "worldview2", ""])
    return path


def run(table, tmp_path, capsys):
    code = batch.main([str(table), "--out", str(tmp_path / "out"), "--jobs", "2", *TINY_SCHEDULE,
                       "--eval_every", "30", "--device", "cpu"])
    with open(tmp_path / "out" / "summary.csv") as f:
        return code, {row["pair"]: row for row in csv.DictReader(f)}, capsys.readouterr().out


def test_each_pair_gets_a_run_folder_and_the_summary_says_what_failed(table, tmp_path, capsys):
    code, summary, out = run(table, tmp_path, capsys)
    assert code == 1 and "1 of 3 pairs not complete: east" in out
    assert summary["east"]["state"].startswith("refused: --hr_msi") and "file not found" in summary["east"]["state"]
    for name in ("north", "south"):
        row = summary[name]
        assert row["state"] == "complete" and 0 < float(row["QNR"]) <= 1
        assert row["run folder"].startswith(str(tmp_path / "out" / "runs" / name))
    assert summary["north"]["run folder"] != summary["south"]["run folder"]

    (tmp_path / "east_hr.tif").write_bytes((tmp_path / "north_hr.tif").read_bytes())
    code, summary, out = run(table, tmp_path, capsys)  # the complete pairs are skipped, the fixed one runs
    assert code == 0 and out.count("already complete") == 2 and summary["east"]["state"] == "complete"


@pytest.mark.parametrize("header, phrase", [
    (["name", "lr_hsi"], "missing column(s) hr_msi"),
    (["name", "lr_hsi", "hr_msi", "epochs"], "column(s) epochs are not options a pair may set"),
    (["name", "lr_hsi", "hr_msi", "checkpoints_dir"], "column(s) checkpoints_dir are not options"),
])
def test_a_bad_table_is_refused_before_anything_runs(tmp_path, header, phrase, capsys):
    path = tmp_path / "bad.csv"
    path.write_text(",".join(header) + "\n" + ",".join(["a"] * len(header)) + "\n")
    assert batch.main([str(path), "--out", str(tmp_path / "out")]) == 2
    assert phrase in capsys.readouterr().err and not (tmp_path / "out").exists()
