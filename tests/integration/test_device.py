"""Training on an accelerator: the tests ``benchmarks/gpu.py`` runs first. They use the device given with
``pytest --device DEV``, else ``cuda`` when this machine has one, and are skipped otherwise (CI has none)."""
import json

import pytest
import torch
from conftest import TINY_SCHEDULE, short_run_argv

import fusion.memory
import train_all_special


@pytest.fixture(scope="module")
def device(request):
    chosen = request.config.getoption("--device") or ("cuda" if torch.cuda.is_available() else None)
    if chosen is None:
        pytest.skip("no accelerator: give pytest --device DEV to run these on another device")
    return chosen


def run(crop_data, folder, *extra):
    """A tiny training on the crop; returns its metrics.json."""
    assert train_all_special.main(short_run_argv(crop_data, folder, *TINY_SCHEDULE, "--eval_every", "30", *extra)) == 0
    (run_folder,) = [entry for entry in folder.iterdir() if entry.is_dir()]
    with open(run_folder / "metrics.json") as f:
        return json.load(f)


def test_a_short_training_on_the_device_matches_the_cpu(crop_data, tmp_path, device):
    """The same seed and schedule on the device and on the CPU: the results agree to well under a dB (float32
    kernels differ in rounding, cuDNN in summation order)."""
    on_device = run(crop_data, tmp_path / "device", "--device", device)
    on_cpu = run(crop_data, tmp_path / "cpu", "--device", "cpu")
    assert on_device["options"]["device"].startswith(device.split(":")[0])
    assert abs(on_device["final"]["PSNR"] - on_cpu["final"]["PSNR"]) < 0.5
    assert abs(on_device["final"]["SAM"] - on_cpu["final"]["SAM"]) < 0.1


def test_the_memory_check_reads_the_device(device):
    """A small fusion fits the device; an absurd one is refused with the device named."""
    fusion.memory.check_memory("udaln", (1, 46, 48, 48), (1, 8, 240, 240), 5, device)
    with pytest.raises(fusion.memory.OutOfMemory, match=f"not enough memory on {device}"):
        fusion.memory.check_memory("udaln", (1, 200, 4000, 4000), (1, 8, 40000, 40000), 10, device)
