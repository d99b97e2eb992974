"""reproduce.tables: the table writers, the sweep's skip-complete logic, the deep cells' folder names,
and tiny end-to-end sweeps through the local pool and submitit's local executor."""
import json
import os
import sys
import time

import numpy as np
import pytest
from conftest import ROOT, TINY_SCHEDULE

from baselines import fuse_with
from config import get_args
from data_loader import Dataset
from evaluation import evaluate
from fusion.run_folder import run_folder_name
from reproduce import tables
from reproduce.cells import Cell, cell_status, pair_digest, save_wald_pair, wald_pair
from reproduce.tables import Row, Table, best_rows, csv_text, latex, markdown

PROVENANCE = {"data_name": "toy_set", "seed": 2, "commit": "abc123", "note": "A note."}


def two_runs():
    """Two fake runs: A best in SAM, RMSE, CC; B best in ERGAS, PSNR, time; equal SSIM as printed."""
    a = {"SAM": 1.0, "ERGAS": 2.0, "PSNR": 30.0, "RMSE": 0.01, "CC": 0.99, "SSIM": 0.95001, "time": 10.0}
    b = {"SAM": 2.0, "ERGAS": 1.5, "PSNR": 35.25, "RMSE": 0.02, "CC": 0.98, "SSIM": 0.94999, "time": 5.0}
    return Table("comparison_r5", "II", "Comparison of the methods (toy_set, r = 5)", "Method", 5,
                 [Row("A", a, "/runs/a"), Row("B", b, "/runs/b")])


def test_best_rows_pick_the_lowest_or_highest_value_as_printed():
    best = best_rows(two_runs())
    assert best == {"SAM": {0}, "ERGAS": {1}, "PSNR": {1}, "RMSE": {0}, "CC": {0}, "SSIM": {0, 1}, "time": {1}}


def test_markdown_bolds_the_best_cell_of_each_column():
    text = markdown([two_runs()], PROVENANCE)
    assert text.splitlines() == [
        "# Reproduced tables: toy_set", "", "Seed 2, git commit abc123. A note.", "",
        "## Table II: Comparison of the methods (toy_set, r = 5)", "",
        "| Method | SAM | ERGAS | PSNR | RMSE | CC | SSIM | Time (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        "| A | **1.000** | 2.000 | 30.00 | **0.01000** | **0.99000** | **0.9500** | 10.00 |",
        "| B | 2.000 | **1.500** | **35.25** | 0.02000 | 0.98000 | **0.9500** | **5.00** |",
    ]


def test_csv_content_is_exact():
    assert csv_text([two_runs()], PROVENANCE) == (
        "table,r,row,SAM,ERGAS,PSNR,RMSE,CC,SSIM,time_s,best,seed,commit,seeds,SAM_spread,ERGAS_spread,"
        "PSNR_spread,RMSE_spread,CC_spread,SSIM_spread,time_s_spread\n"
        "comparison_r5,5,A,1.0,2.0,30.0,0.01,0.99,0.95001,10.0,SAM;RMSE;CC;SSIM,2,abc123,1,,,,,,,\n"
        "comparison_r5,5,B,2.0,1.5,35.25,0.02,0.98,0.94999,5.0,ERGAS;PSNR;SSIM;time,2,abc123,1,,,,,,,\n")


def test_latex_content_is_exact():
    assert latex([two_runs()], PROVENANCE) == "\n".join([
        r"% Reproduced tables: toy\_set. Seed 2, git commit abc123.",
        r"\begin{table}[htbp]", r"\centering",
        r"\caption{Comparison of the methods (toy\_set, r = 5). Seed 2, git commit abc123.}",
        r"\label{tab:comparison_r5}", r"\begin{tabular}{lrrrrrrr}", r"\hline",
        r"Method & SAM & ERGAS & PSNR & RMSE & CC & SSIM & Time (s) \\", r"\hline",
        r"A & \textbf{1.000} & 2.000 & 30.00 & \textbf{0.01000} & \textbf{0.99000} & \textbf{0.9500} & 10.00 \\",
        r"B & 2.000 & \textbf{1.500} & \textbf{35.25} & 0.02000 & 0.98000 & \textbf{0.9500} & \textbf{5.00} \\",
        r"\hline", r"\end{tabular}", r"\end{table}", ""])


def test_a_missing_cell_is_a_dash_and_never_bold():
    table = two_runs()
    table.rows.append(Row("C", {}))
    assert markdown([table], PROVENANCE).splitlines()[-1] == "| C | - | - | - | - | - | - | - |"
    assert csv_text([table], PROVENANCE).splitlines()[-1] == "comparison_r5,5,C,,,,,,,,,2,abc123,1,,,,,,,"
    assert all(2 not in rows for rows in best_rows(table).values())


def test_write_tables_records_seed_commit_and_best(tmp_path):
    paths = tables.write_tables([two_runs()], tmp_path, PROVENANCE, {"threads": 1})
    record = json.load(open(paths["json"]))
    assert (record["seed"], record["commit"], record["threads"]) == (2, "abc123", 1)
    assert record["tables"][0]["best"]["PSNR"] == ["B"] and record["tables"][0]["rows"][0]["folder"] == "/runs/a"
    assert open(paths["md"]).read() == markdown([two_runs()], PROVENANCE)


def test_a_row_over_seeds_is_their_mean_with_half_the_range_beside_it(tmp_path):
    runs = {2: {"SAM": 1.0, "PSNR": 30.0}, 3: {"SAM": 1.5, "PSNR": 31.0}, 4: {"SAM": 0.8, "PSNR": 33.5}}
    cells = []
    for seed, final in runs.items():
        folder = tmp_path / f"seed{seed}"
        folder.mkdir()
        (folder / "metrics.json").write_text(json.dumps({"final": final, "total_seconds": 10.0 * seed}))
        cells.append(deep_cell(folder))
    row = tables.row_of("UDALN (papers' model)", cells)
    psnr, sam = np.array([30.0, 31.0, 33.5]), np.array([1.0, 1.5, 0.8])
    assert row.values["PSNR"] == pytest.approx(psnr.mean()) and row.values["SAM"] == pytest.approx(sam.mean())
    assert row.spread["PSNR"] == pytest.approx(np.ptp(psnr) / 2) and row.spread["time"] == pytest.approx(10.0)
    assert (row.seeds, row.label) == (3, "UDALN (papers' model)")
    table = Table("comparison_r5", "II", "t", "Method", 5, [row])
    assert "| UDALN (papers' model) | **1.100** ±0.350 |" in markdown([table], {**PROVENANCE, "seed": "2, 3, 4"})
    assert "Seeds 2, 3, 4, git commit abc123" in markdown([table], {**PROVENANCE, "seed": "2, 3, 4"})
    (tmp_path / "seed4" / "metrics.json").unlink()
    partial = tables.row_of("UDALN", cells)
    assert partial.label == "UDALN (2 of 3 seeds)" and partial.values["PSNR"] == pytest.approx(30.5)


def test_seeds_and_degradations_give_a_cell_per_run_named_as_train_all_special_names_it(crop_data, tmp_path):
    argv = ["--default_datapath", str(crop_data), "--sp_root_path", str(crop_data), "--data_name", "crop",
            "--checkpoints_dir", str(tmp_path / "ck"), *TINY_SCHEDULE[:-2]]
    opts, train_argv, train = tables.parse(["--scales", "4", "--methods", "gsa,udaln,recommended", "--seeds", "2,3",
                                            "--degradations", "original,normalised", *argv])
    cells, layout, _ = tables.plan(opts, train_argv, train, str(tmp_path / "out"))
    comparison = dict(layout[-1][1])
    # The recommended mode has one row: it runs under the normalised model only, its default.
    assert list(comparison) == ["GSA", "UDALN (papers' model)", "UDALN (normalised model)", "Recommended mode (blind)"]
    assert [os.path.basename(c.folder) for c in comparison["Recommended mode (blind)"]] == [
        run_folder_name(get_args(argv + ["--method", "recommended", "--scale_factor", "4", "--seed", s]), "crop")
        for s in ("2", "3")]
    assert len(comparison["GSA"]) == 1  # the pair does not depend on the seed: one baseline run
    folders = [os.path.basename(c.folder) for c in comparison["UDALN (normalised model)"]]
    expected = [run_folder_name(get_args(argv + ["--scale_factor", "4", "--seed", s, "--degradation", "normalised"]),
                                "crop") for s in ("2", "3")]
    assert folders == expected and folders[1].endswith("_seed3_normalisedDegradation")
    ablation = dict(layout[0][1])
    assert list(ablation)[3] == "1+2, true PSF and SRF (papers' model)"
    assert list(ablation)[4] == "1+2 (normalised model)" and len(cells) == 1 + 2 * 2 + 3 * 2 * 2 + 2


def test_a_seed_given_twice_is_refused(capsys):
    with pytest.raises(SystemExit):
        tables.parse(["--seeds", "2,3", "--seed", "4"])
    assert "--seed cannot be passed to the cells with --seeds" in capsys.readouterr().err


# ----------------------------------------------------------------------------- skip-complete logic

def deep_cell(folder):
    return Cell("deep", "udaln", 5, "123", str(folder), ("python", "train_all_special.py", "--method", "udaln"), 1)


def age(path, minutes):
    """Set the modification times of ``path`` and its files ``minutes`` into the past."""
    past = time.time() - 60 * minutes
    for entry in [path] + [os.path.join(path, f) for f in os.listdir(path)]:
        os.utime(entry, (past, past))


def test_a_complete_folder_is_skipped_and_a_missing_one_run(tmp_path):
    cell = deep_cell(tmp_path / "run")
    assert cell_status(cell).state == "new" and cell_status(cell).command == cell.argv
    os.makedirs(cell.folder)
    (tmp_path / "run" / "metrics.json").write_text('{"final": {}}')
    status = cell_status(cell)
    assert (status.state, status.command) == ("complete", None)


def test_an_incomplete_folder_is_rerun_resumed_or_left_to_its_trainer(tmp_path):
    cell = deep_cell(tmp_path / "run")
    os.makedirs(cell.folder)
    (tmp_path / "run" / "opt.txt").write_text("options")
    assert cell_status(cell).state == "running" and cell_status(cell).command is None
    age(cell.folder, 30)
    status = cell_status(cell)
    assert (status.state, status.command) == ("rerun", cell.argv + ("--overwrite",))
    (tmp_path / "run" / "training_state.pt").write_text("checkpoint")
    age(cell.folder, 30)
    status = cell_status(cell)
    assert status.state == "resume"
    assert status.command[1:] == (os.path.join(ROOT, "train_all_special.py"), "--resume", cell.folder, "--threads", "1")
    assert cell_status(cell, busy_minutes=60).state == "running"


def test_the_hidden_folder_of_an_interrupted_overwrite_run_is_resumed(tmp_path):
    cell = deep_cell(tmp_path / "run")
    hidden = tmp_path / ".run.x1y2.incomplete"
    os.makedirs(hidden)
    (hidden / "training_state.pt").write_text("checkpoint")
    age(str(hidden), 30)
    status = cell_status(cell)
    assert (status.state, status.folder) == ("resume", str(hidden)) and status.command[3] == str(hidden)


def test_a_baseline_scored_on_another_pair_is_rerun(tmp_path):
    cell = Cell("baseline", "gsa", 5, "123", str(tmp_path / "gsa_r5"), ("python", "-m", "reproduce.cells"), 1, "aa")
    os.makedirs(cell.folder)
    (tmp_path / "gsa_r5" / "metrics.json").write_text('{"final": {}, "pair_sha256": "bb"}')
    assert cell_status(cell).state == "rerun"
    (tmp_path / "gsa_r5" / "metrics.json").write_text('{"final": {}, "pair_sha256": "aa"}')
    assert cell_status(cell).state == "complete"


def test_the_deep_cells_are_the_run_folders_of_the_same_options_by_hand(tmp_path):
    """The default table's deep cells are the folders of ``python train_all_special.py --threads 1
    --method M --scale_factor S [--stages 12|3] [--isCal_PSF No --isCal_SRF No]`` (whatever --threads)."""
    checkpoints = ["--checkpoints_dir", str(tmp_path)]
    opts, train_argv, train = tables.parse(checkpoints)
    cells, layout, pairs = tables.plan(opts, train_argv, train, str(tmp_path / "tables"))
    deep = {(c.method, c.scale, c.stages, c.variant): c.folder for c in cells if c.kind == "deep"}
    assert set(deep) == {(m, s, "123", "") for m in ("udaln", "pfs2c2", "uds2c2", "recommended") for s in (5, 8)} | {
        ("udaln", s, st, "") for s in (5, 8) for st in ("12", "3")} | {("udaln", s, "12", "known") for s in (5, 8)}
    for (method, scale, stages, variant), folder in deep.items():
        by_hand = ["--threads", "1", "--method", method, "--scale_factor", str(scale)] + (
            ["--stages", stages] if stages != "123" else []) + (
            ["--isCal_PSF", "No", "--isCal_SRF", "No"] if variant == "known" else [])
        assert folder == os.path.join(str(tmp_path), run_folder_name(get_args(by_hand + checkpoints)))
    assert [t.id for t, _ in layout] == ["ablation_r5", "ablation_r8", "comparison_r5", "comparison_r8"]
    assert [label for label, _ in layout[2][1]] == ["Bicubic", "GSA", "MTF-GLP-HS", "HySure", "FUSE", "G-SOMP+", "CSU",
                                                    "CNMF", "STEREO", "Blind-STEREO", "CSTF", "uSDN", "PFS2C2", "UDS2C2",
                                                    "UDALN", "Recommended mode (blind)"]
    assert layout[0][1][2][1][0] is layout[2][1][-2][1][0]  # Table I's 1+2+3 row is Table II's UDALN cell, run once


def test_the_saved_pair_is_the_one_the_deep_runs_simulate(crop_data, tmp_path):
    args = get_args(["--default_datapath", str(crop_data), "--sp_root_path", str(crop_data), "--data_name", "crop"])
    pair = wald_pair(args)
    digest = save_wald_pair(pair, str(tmp_path / "pair.npz"))
    item = Dataset(args)[0]
    np.testing.assert_array_equal(pair["hmsi"], item["hmsi"].numpy().transpose(1, 2, 0))
    assert digest == pair_digest(pair) and save_wald_pair(pair, str(tmp_path / "pair.npz")) == digest


def test_bad_options_are_refused_in_one_line(capsys):
    for argv, phrase in ((["--stages", "12"], "--stages cannot be passed to the cells"),
                         (["--lr_hsi", "y.tif"], "the tables need a reference cube"),
                         (["--scales", "5,x"], "--scales 5,x: give comma-separated integers >= 2"),
                         (["--methods", "udaln,foo"], "--methods: unknown foo"),
                         (["--bogus"], "unrecognized arguments: --bogus")):
        with pytest.raises(SystemExit) as exit_info:
            tables.parse(argv)
        assert exit_info.value.code == 2 and phrase in capsys.readouterr().err


# ----------------------------------------------------------------------------- end to end

def tiny_sweep(crop_data, tmp_path, *extra):
    return ["--scales", "5", "--methods", "udaln,bicubic,gsa", "--tables", "comparison", "--jobs", "1",
            "--default_datapath", str(crop_data), "--sp_root_path", str(crop_data), "--data_name", "crop",
            "--checkpoints_dir", str(tmp_path / "checkpoints"), "--device", "cpu", *TINY_SCHEDULE, *extra]


def check_tiny_tables(crop_data, tmp_path):
    out = tmp_path / "checkpoints" / "tables" / "crop"
    record = json.load(open(out / "tables.json"))
    rows = {r["label"]: r for r in record["tables"][0]["rows"]}
    assert list(rows) == ["UDALN", "Bicubic", "GSA"]
    udaln = json.load(open(os.path.join(rows["UDALN"]["folder"], "metrics.json")))
    assert rows["UDALN"]["values"] == {**udaln["final"], "time": udaln["total_seconds"]}
    # The baselines' numbers equal fusing the pair train_all_special.py simulates, scored independently.
    args = get_args(["--default_datapath", str(crop_data), "--sp_root_path", str(crop_data), "--data_name", "crop"])
    data = Dataset(args)
    y, z, x = (data[0][k].numpy().transpose(1, 2, 0).astype(np.float64) for k in ("lhsi", "hmsi", "hhsi"))
    expected = evaluate(x, fuse_with("gsa", y, z, 5, data.PSF, data.sp_matrix), 5)
    assert {k: v for k, v in rows["GSA"]["values"].items() if k != "time"} == pytest.approx(expected, rel=1e-9)
    assert os.path.exists(out / "baselines" / "gsa_r5" / "My_Out.mat")
    assert "| GSA | **" in open(out / "tables.md").read()
    return out


def test_a_tiny_sweep_runs_each_cell_once_and_resumes(crop_data, tmp_path, capsys):
    assert tables.main(tiny_sweep(crop_data, tmp_path)) == 0
    printed = capsys.readouterr().out
    for line in ("[1/3] bicubic r=5: PSNR", "[2/3] gsa r=5: PSNR", "[3/3] udaln r=5: PSNR"):
        assert line in printed
    out = check_tiny_tables(crop_data, tmp_path)
    before = os.path.getmtime(out / "baselines" / "gsa_r5" / "metrics.json")
    assert tables.main(tiny_sweep(crop_data, tmp_path)) == 0
    assert capsys.readouterr().out.count("already complete") == 3
    assert os.path.getmtime(out / "baselines" / "gsa_r5" / "metrics.json") == before


def test_a_tiny_sweep_through_submitits_local_executor(crop_data, tmp_path, capsys, monkeypatch):
    pytest.importorskip("submitit")
    monkeypatch.chdir(ROOT)  # submitit's job imports reproduce.cells from the current folder, as from the CLI
    assert tables.main(tiny_sweep(crop_data, tmp_path, "--executor", "local")) == 0
    assert "[3/3] udaln r=5: PSNR" in capsys.readouterr().out
    out = check_tiny_tables(crop_data, tmp_path)
    assert os.listdir(out / "submitit")


def test_a_failed_cell_is_reported_and_shown_as_a_dash(tmp_path, capsys):
    failing = Cell("baseline", "gsa", 5, "123", str(tmp_path / "gsa_r5"),
                   (sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"), 1, "aa")
    opts, _, _ = tables.parse(["--jobs", "1"])
    assert tables.sweep([failing], opts, str(tmp_path)) == {failing: "failed"}
    log = tmp_path / "logs" / "gsa_r5.log"
    assert f"[1/1] gsa r=5: failed (exit 3); see {log}" in capsys.readouterr().out
    assert "boom" in log.read_text()
    table = Table("comparison_r5", "II", "t", "Method", 5)
    filled = tables.build_tables([(table, [("GSA", [failing])])])
    assert filled[0].rows[0].values == {} and "| GSA | - |" in markdown(filled, PROVENANCE)
