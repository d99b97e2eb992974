"""benchmarks/gpu.py, the one-run GPU measurement, run on the CPU with --tiny so that it cannot rot: every
figure prints its JSON line without an error."""
import json

from benchmarks import gpu


def test_the_gpu_script_prints_every_figure(tmp_path, capsys):
    assert gpu.main(["--tiny", "--device", "cpu", "--out", str(tmp_path)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [line["figure"] for line in lines] == ["cuda_tests", "speed", "speed", "speed", "default_run", "scene"]
    assert not any("error" in line for line in lines)
    assert lines[0]["passed"] == 2 and lines[0]["device"] == "cpu"
    assert [line["method"] for line in lines[1:4]] == ["udaln", "pfs2c2", "uds2c2"]
    assert all(line["s3_ms"] > 0 for line in lines[1:4])
    assert lines[4]["total_seconds"] > 0 and lines[4]["PSNR"] is not None
    assert lines[5]["hr_side"] == 48 and lines[5]["seconds_per_step"]["3"] > 0
