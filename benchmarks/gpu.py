"""The GPU measurements in one short run, one JSON line per figure.

    python benchmarks/gpu.py [--device cuda] [--scene_side 2400] [--out gpu_work] [--tiny]

In order, each in its own child process with its own time limit (a figure that fails or runs out of time
gives a line with "error", and the run goes on):
1. ``cuda_tests``: the tests that exercise the device (tests/integration/test_device.py: a short training
   on the device against the CPU, resuming a device checkpoint, the device's memory check);
2. ``speed``: ``benchmarks/speed.py --device D`` at the UDALN paper's size (240 x 240 x 46, r = 5) for
   UDALN, PFS2C2 and UDS2C2: milliseconds per training step of each stage;
3. ``default_run``: ``train_all_special.py --device D`` with no other option (the embedded Houston 2018
   crop, UDALN's full schedule), timed end to end, with its PSNR and SAM;
4. ``scene``: ``benchmarks/scale.py --sides S --device D``, a synthetic S x S whole scene in patch mode
   (--scene_side, default 2400: 166 bands, r = 3), its peak memory and seconds per step.

``--tiny`` shrinks every figure (the tests on the device asked for, a 20 x 20 speed case, a few epochs per
stage, a 48 x 48 scene) so that the script itself is tested on the CPU in CI (tests/benchmarks/
test_gpu_script.py); its figures then measure nothing. Run it where a GPU is at hand and put the figures in
README with the card's name. Work files go to --out (default gpu_work/, ignored by git).
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METHODS = ("udaln", "pfs2c2", "uds2c2")
# A few epochs per stage: the --tiny default run.
TINY_SCHEDULE = ["--epoch_stage1", "4", "--decay_begin_epoch_stage1", "2", "--epoch_stage2", "4",
                 "--decay_begin_epoch_stage2", "2", "--epoch_stage3", "2", "--decay_begin_epoch_stage3", "1",
                 "--eval_every", "2"]


def child(argv, timeout):
    """Run ``argv`` (a Python script and its options) in a child process from the project root: (exit status,
    stdout, stderr, seconds); status None when it ran out of ``timeout`` seconds."""
    start = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        return None, exc.stdout or "", exc.stderr or "", time.perf_counter() - start
    return done.returncode, done.stdout, done.stderr, time.perf_counter() - start


def json_lines(text):
    """The JSON objects printed one per line in ``text`` (other lines skipped)."""
    found = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
    return found


def failure(figure, status, stderr, seconds):
    why = "timed out" if status is None else f"exit status {status}"
    return {"figure": figure, "error": f"{why}: {stderr.strip()[-500:]}", "seconds": round(seconds, 1)}


def cuda_tests(opts):
    status, out, err, seconds = child(["-m", "pytest", "tests/integration/test_device.py", "-q", "-p",
                                       "no:cacheprovider", f"--device={opts.device}"], opts.timeout)
    counts = {}
    summary = out.strip().splitlines()[-1] if out.strip() else ""
    for token in summary.split(","):
        parts = token.strip().split()
        if len(parts) >= 2 and parts[0].isdigit():
            counts[parts[1].rstrip("s")] = int(parts[0])
    line = {"figure": "cuda_tests", "device": opts.device, **counts, "seconds": round(seconds, 1)}
    if status != 0:
        line["error"] = (out + err).strip()[-500:]
    return [line]


def speed(opts):
    size = ["--size", "20", "--bands", "12", "--steps", "2", "--warmup", "1"] if opts.tiny else []
    lines = []
    for method in METHODS:
        status, out, err, seconds = child(["benchmarks/speed.py", "--device", opts.device, "--method", method,
                                           *size], opts.timeout)
        found = json_lines(out)
        lines.append({"figure": "speed", "method": method, **found[-1]} if status == 0 and found
                     else {**failure("speed", status, err, seconds), "method": method})
    return lines


def default_run(opts):
    folder = os.path.join(opts.out, "default_run")
    extra = TINY_SCHEDULE + ["--threads", "1"] if opts.tiny else []
    status, out, err, seconds = child(["train_all_special.py", "--device", opts.device, "--checkpoints_dir", folder,
                                       "--overwrite", *extra], opts.timeout)
    if status != 0:
        return [failure("default_run", status, err, seconds)]
    (run,) = [entry.path for entry in os.scandir(folder) if entry.is_dir() and not entry.name.startswith(".")]
    with open(os.path.join(run, "metrics.json")) as f:
        metrics = json.load(f)
    final = metrics["final"]
    return [{"figure": "default_run", "device": opts.device, "wall_seconds": round(seconds, 1),
             "total_seconds": metrics.get("total_seconds"), "stage_seconds": metrics.get("stage_seconds"),
             "PSNR": final.get("PSNR"), "SAM": final.get("SAM")}]


def scene(opts):
    side = 48 if opts.tiny else opts.scene_side
    steps = ["--steps", "2"] if opts.tiny else []
    status, out, err, seconds = child(["benchmarks/scale.py", "--sides", str(side), "--threads", "1" if opts.tiny
                                       else str(os.cpu_count() or 1), "--work_dir", os.path.join(opts.out, "scene"),
                                       *steps, "--device", opts.device], opts.timeout)
    found = json_lines(out)
    if status != 0 or not found:
        return [failure("scene", status, err, seconds)]
    return [{"figure": "scene", "device": opts.device, **found[-1]}]


FIGURES = (("cuda_tests", cuda_tests), ("speed", speed), ("default_run", default_run), ("scene", scene))


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="the device to measure (default cuda)")
    parser.add_argument("--scene_side", type=int, default=2400, help="HR side of the whole scene (a multiple of 3)")
    parser.add_argument("--out", default=os.path.join(ROOT, "gpu_work"), help="folder for the runs' files")
    parser.add_argument("--timeout", type=int, default=300, help="seconds allowed per child process")
    parser.add_argument("--figures", default=",".join(name for name, _ in FIGURES),
                        help="which figures, comma-separated (default: all)")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes and schedules: test the script on the CPU")
    opts = parser.parse_args(argv)
    unknown = set(opts.figures.split(",")) - {name for name, _ in FIGURES}
    if unknown:
        parser.error(f"unknown figures {sorted(unknown)}; known: {', '.join(name for name, _ in FIGURES)}")
    return opts


def main(argv=None):
    opts = parse(argv)
    os.makedirs(opts.out, exist_ok=True)
    failed = False
    for name, figure in FIGURES:
        if name in opts.figures.split(","):
            for line in figure(opts):
                failed |= "error" in line
                print(json.dumps(line), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
