"""Run the authors' uSDN (TensorFlow 1 code, under TensorFlow 2's compatibility layer) and the project's
``baselines.usdn`` on the shared case of benchmarks/octave_reference.py, and write their metrics as the
fixture ``tests/fixtures/usdn_tensorflow.json``, which tests/baselines/test_tensorflow_reference.py checks
the project's uSDN against (issue #25).

Not part of CI: it needs TensorFlow and the authors' code, neither of which the project ships. Set-up (a
separate environment, so that TensorFlow's numpy pin does not touch the project's)::

    python -m venv /tmp/tfenv && /tmp/tfenv/bin/pip install tensorflow-cpu==2.18.0 scipy
    git clone https://github.com/aicip/uSDN /tmp/usdn
    git -C /tmp/usdn checkout d5ea85a5c48b310297403fd2429f18c0a87593bf

How to run (about 10 minutes on one core)::

    python benchmarks/tensorflow_reference.py [--tf_python /tmp/tfenv/bin/python] [--usdn /tmp/usdn]
        [--seeds 0,1] [--work /tmp/usdn_reference]

Both sides use the authors' stopping rule on the reference (``stop="reference"``), so that what is compared
is the algorithm, 2,000 steps of the HR-MSI encoder's initialisation instead of 15,000 (``init_num``, an
argument of their ``train``) and at most 8,000 steps in all instead of 500,000 (``maxiter``), so that the
test can run the project's side in seconds. (The authors' loop adds graph operations at every check, so
that its steps slow down as it runs: a run their rule does not stop takes hours.) Both are
stochastic (their initial weights), so each side runs once per seed and the fixture keeps every run's
metrics; the test holds the project's seed-0 run to the spread of the authors' runs.
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import time

import numpy as np
import scipy.io

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from benchmarks.octave_reference import build_case, case_description, rounded_metrics  # noqa: E402

FIXTURE = os.path.join(ROOT, "tests", "fixtures", "usdn_tensorflow.json")
DRIVER = os.path.join(ROOT, "benchmarks", "tensorflow", "run_usdn.py")
SOURCE = {"repository": "https://github.com/aicip/uSDN", "commit": "d5ea85a5c48b310297403fd2429f18c0a87593bf",
          "paths": ["pbAuto_uSDN.py", "utils.py", "uSDN.py"]}
INIT_STEPS = 2000
MAX_STEPS = 8000
PYTHON_PARAMS = {"stop": "reference", "init_steps": INIT_STEPS, "max_steps": MAX_STEPS}


def python_fuse(case, seed):
    """The project's uSDN on the case, as the fixture compares it (PYTHON_PARAMS, the reference given)."""
    from baselines import usdn

    return usdn.fuse(case["Y"], case["Z"], case["r"], case["psf"], case["srf"], reference=case["X"], seed=seed,
                     **PYTHON_PARAMS)


def authors_fuse(case, seed, opts):
    """The authors' uSDN on the case (benchmarks/tensorflow/run_usdn.py in the TensorFlow environment):
    (fused cube, seconds)."""
    os.makedirs(opts.work, exist_ok=True)
    pair = os.path.join(opts.work, "case.mat")
    # hyperLRI is read by their readData and not used.
    scipy.io.savemat(pair, {"hyperLR": case["Y"], "multiHR": case["Z"], "hyperHR": case["X"],
                            "hyperLRI": np.zeros_like(case["X"]), "srf": case["srf"].T})
    out = os.path.join(opts.work, f"authors_seed{seed}.npz")
    subprocess.run([opts.tf_python, DRIVER, opts.usdn, pair, out, "--seed", str(seed), "--init_steps",
                    str(INIT_STEPS), "--max_steps", str(MAX_STEPS), "--work", opts.work],
                   check=True, stderr=subprocess.DEVNULL)
    with np.load(out) as result:
        return result["fused"].astype(np.float64), float(result["seconds"])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tf_python", default="/tmp/tfenv/bin/python", help="a Python with TensorFlow 2")
    parser.add_argument("--usdn", default="/tmp/usdn", help="the authors' repository at the commit above")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--work", default="/tmp/usdn_reference")
    opts = parser.parse_args(argv)
    case = build_case()
    runs = {"authors": [], "python": []}
    for seed in map(int, opts.seeds.split(",")):
        fused, seconds = authors_fuse(case, seed, opts)
        runs["authors"].append({"seed": seed, "metrics": rounded_metrics(case["X"], fused, case["r"]),
                                "seconds": round(seconds, 1)})
        start = time.time()
        fused = python_fuse(case, seed)
        runs["python"].append({"seed": seed, "metrics": rounded_metrics(case["X"], fused, case["r"]),
                               "seconds": round(time.time() - start, 1)})
        print(seed, runs["authors"][-1], runs["python"][-1], flush=True)
    version = subprocess.run([opts.tf_python, "-c", "import tensorflow; print(tensorflow.__version__)"], check=True,
                             capture_output=True, text=True).stdout.strip()
    fixture = {"case": case_description(case), "source": SOURCE, "python_params": PYTHON_PARAMS, "runs": runs,
               "tensorflow_version": version, "generated": datetime.date.today().isoformat(),
               "command": "python benchmarks/tensorflow_reference.py"}
    with open(FIXTURE, "w") as f:
        json.dump(fixture, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
