"""benchmarks/real_pair_example.py's reuse of finished run folders (--run_folders)."""
import argparse
import json

import pytest

from benchmarks import real_pair_example


def test_run_folders_are_method_folder_pairs():
    assert real_pair_example.run_folder_list("udaln=/a/b, uds2c2=c") == {"udaln": "/a/b", "uds2c2": "c"}
    with pytest.raises(argparse.ArgumentTypeError, match="give method=FOLDER pairs"):
        real_pair_example.run_folder_list("udaln")


def test_a_finished_run_is_taken_with_its_own_time_and_an_unfinished_one_refused(tmp_path):
    (tmp_path / "metrics.json").write_text(json.dumps({"total_seconds": 5321.5}))
    assert real_pair_example.finished_run(str(tmp_path)) == {"folder": str(tmp_path), "seconds": 5321.5,
                                                             "peak_rss_mib": None}
    with pytest.raises(SystemExit, match="no metrics.json, the run is not finished"):
        real_pair_example.finished_run(str(tmp_path / "other"))


def test_a_run_folder_of_a_method_not_asked_for_is_refused(capsys):
    with pytest.raises(SystemExit):
        real_pair_example.main(["--methods", "udaln", "--run_folders", "uds2c2=somewhere"])
    assert "--run_folders names uds2c2, not among --methods udaln" in capsys.readouterr().err
