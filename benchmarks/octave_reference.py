"""Run the authors' MATLAB implementations of the classical baselines under GNU Octave on one small
shared case and write their metrics as the fixture ``tests/fixtures/octave_baselines.json``, which
``tests/baselines/test_octave_reference.py`` checks the Python versions (``baselines/``) against (issue #13).

Not part of CI: it needs GNU Octave and the authors' code, neither of which the project ships.

What to install (Debian/Ubuntu, as root; Octave 7.3 was used)::

    apt-get install --no-install-recommends octave octave-image octave-signal octave-statistics liboctave-dev

Where the authors' code comes from (kept outside the repository; the default paths are below, each
one an option)::

    git clone --filter=blob:none https://github.com/magamig/hif-benchmarking /tmp/octave_ref/hif  # --hif_benchmarking
    git -C /tmp/octave_ref/hif checkout ef23570447a2d4c7244edd11f58f06a1ba82cd5b
    git clone https://github.com/alfaiate/HySure /tmp/octave_ref/hysure                # --hysure
    git -C /tmp/octave_ref/hysure checkout 8652a5838b95c29ca056f7921f8ac58def6bbaf7
    git clone https://github.com/renweidian/CSTF /tmp/octave_ref/cstf2019              # --cstf
    git -C /tmp/octave_ref/cstf2019 checkout 3e33be69788c0d5de30c1dffc64b2f372699b2ee
    git clone https://github.com/marhar19/HSR_via_tensor_decomposition /tmp/octave_ref/stereo  # --stereo
    git -C /tmp/octave_ref/stereo checkout ad25244bae03caebb8dd304d9354d006ec54ab3b
    git clone https://github.com/lanha/SupResPALM /tmp/octave_ref/csu                 # --csu
    git -C /tmp/octave_ref/csu checkout ffdb249a807b8090e54e03fdbecf36345403b1dd
    git clone https://github.com/spidermanJie/hyperspectral_unmixing_project /tmp/octave_ref/unmixing
    git -C /tmp/octave_ref/unmixing checkout 17e0641a4a87e9b46aa11f8033136afb1bc3fbb6
    cp /tmp/octave_ref/unmixing/unmixing_overview/include/{VCA,hinge,sisal,soft,soft_neg,sunsal}.m /tmp/octave_ref/csu/sisal/

``hif-benchmarking`` (M. Magalhaes, KU Leuven 2022; large, of which only methods/ and
auxiliary/globals/ are used) holds the HSMSFusionToolbox of N. Yokoya,
C. Grohnfeldt and J. Chanussot (IEEE GRSM 5(2), 2017): GSA_wrapper, MTF_GLP_wrapper (GLP-HS),
CNMF_fusion (Yokoya's CNMF, 2015), FUSE_wrapper. CSTF's K-SVD needs the MEX files of its
ImprovedDL/private folder, and CSU's simplex projection its reproject_simplex_mex_fast.cpp; this script compiles
them with Octave's ``mkoctfile`` when they are missing. CSU's SISAL and SUNSAL come from J. Bioucas-Dias'
unmixing_overview package, of which the copy its compile.m downloads is the one cloned above.

How to run (about 2 minutes on one core; add ``--methods`` to run a subset)::

    python benchmarks/octave_reference.py [--methods gsa,mtf_glp_hs,cnmf,hysure,cstf,stereo,blind_stereo,csu,gsomp]
        [--work /tmp/octave_reference]

Each method runs in its own Octave process (``benchmarks/octave/run_reference.m``, this project's
driver) in two modes: ``authors`` (their functions, given the true SRF and PSF wherever their
interface takes them, with their own interpolators, degradations and random initialisations) and
``project`` (in addition the spatial operators the project replaced, the random VCA initialisation
and the random scan order of CSTF's K-SVD are the project's: ``benchmarks/octave/project_operators/``).
``benchmarks/octave/compat/`` gives Octave 7 the MATLAB behaviour the authors' code relies on. Metrics are computed
here with ``evaluation.evaluate`` for both sides, so the definitions are the same. The fused cubes
stay in the work folder. FUSE is not run: see ``NOT_RUN``; STEREO and Blind-STEREO run in the project mode
only: see ``PROJECT_ONLY``.
"""
import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import scipy.io

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from baselines import cnmf, cstf, csu, fuse_with, gsomp, stereo, unmixing  # noqa: E402
from baselines.fuse_sylvester import principal_directions  # noqa: E402
from baselines.operators import degradation_matrices  # noqa: E402
from data_loader import load_cube, simulate_pair  # noqa: E402
from evaluation import evaluate  # noqa: E402
from model.degradation import gaussian_psf

FIXTURE = os.path.join(ROOT, "tests", "fixtures", "octave_baselines.json")
OCTAVE_DIR = os.path.join(ROOT, "benchmarks", "octave")
MODES = ("authors", "project")

# The shared case: a 60 x 60 crop of the synthetic class-mean test fixture (12 of its 17 distinct spectra), r = 5, the
# Gaussian PSF of FWHM r and the WorldView-2-like SRF of the simulations (Wald's protocol).
CASE = {
    "cube": "tests/fixtures/synthetic_class_mean/indian_pines_class_mean.mat",
    "rows": [20, 80],
    "cols": [20, 80],
    "r": 5,
    "psf": "model.degradation.gaussian_psf(5, 5 / 2.35482): 5 x 5, FWHM r",
    "srf": "tests/fixtures/synthetic_class_mean/indian_pines_class_mean.csv",
    "simulation": "data_loader.simulate_pair (Y = block blur and decimation by the PSF, Z = X @ srf), no noise",
}

HIF = {"repository": "https://github.com/magamig/hif-benchmarking",
       "commit": "ef23570447a2d4c7244edd11f58f06a1ba82cd5b", "option": "hif_benchmarking"}
STEREO_SOURCE = {"repository": "https://github.com/marhar19/HSR_via_tensor_decomposition",
                 "commit": "ad25244bae03caebb8dd304d9354d006ec54ab3b", "option": "stereo"}
SOURCES = {
    "gsa": {**HIF, "paths": ["methods/GSA/GSA_wrapper.m", "methods/GSA/GSA.m"],
            "origin": "HSMSFusionToolbox (Yokoya et al. 2017), GSA of Aiazzi et al. 2007 adapted to HS-MS fusion",
            "call": "GSA_wrapper(Y, Z)"},
    "mtf_glp_hs": {**HIF, "paths": ["methods/GLP/MTF_GLP_wrapper.m", "methods/GLP/MTF_GLP.m"],
                   "origin": "HSMSFusionToolbox (Yokoya et al. 2017), GLP-HS: MTF-GLP with regression injection "
                             "and least-squares synthetic pans (mode 2)",
                   "call": "MTF_GLP_wrapper(Y, Z)"},
    "cnmf": {**HIF, "paths": ["methods/CNMF/CNMF_fusion.m", "methods/CNMF/CNMF_init.m", "methods/CNMF/CNMF_ite.m"],
             "origin": "N. Yokoya's CNMF_fusion (2015/01/14), as in the HSMSFusionToolbox",
             "call": "CNMF_fusion(Y, Z) with estR returning the true SRF"},
    "hysure": {"repository": "https://github.com/alfaiate/HySure",
               "commit": "8652a5838b95c29ca056f7921f8ac58def6bbaf7", "option": "hysure",
               "paths": ["src/data_fusion.m"], "origin": "M. Simoes' HySure",
               "call": "data_fusion(Y, Z, r, srf', B, 10, 'VCA', 5e-4, 1) (demo_pavia_hs_ms.m's parameters, "
                       "true SRF and PSF)"},
    "cstf": {"repository": "https://github.com/renweidian/CSTF",
             "commit": "3e33be69788c0d5de30c1dffc64b2f372699b2ee", "option": "cstf",
             "paths": ["CSTF_FUS.m", "sparse_tucker2.m", "DIC_CG.m", "DIC_CG1.m", "ImprovedDL/trainD.m"],
             "origin": "R. Dian's CSTF, first published version (2019: K-SVD spatial dictionaries, 15 outer "
                       "iterations); the 2020 revisions of CSTF_FUS.m use SVD dictionaries and 3 iterations",
             "call": "CSTF_FUS(Y, Z, srf', BW, BH, r, par, 1, X) with demo.m's par (lambda 1e-5, 9 spectral atoms, "
                     "spatial atoms min(240, size)) and the true separable PSF"},
    "stereo": {**STEREO_SOURCE, "paths": ["algorithms/STEREO.m", "functions/khatri_rao.m"],
               "origin": "C. I. Kanatsoulis' STEREO (TSP 2018), demo_for_STEREO.m's parameters",
               "call": "STEREO(Y, Z, P1, P2, srf', 2, 1, A, B, C, C_tilde): one iteration, lambda 1, from the "
                       "Python side's TenRec factors and separable operators"},
    "blind_stereo": {**STEREO_SOURCE, "paths": ["algorithms/Blind_STEREO.m", "functions/khatri_rao.m"],
                     "origin": "C. I. Kanatsoulis' Blind-STEREO (TSP 2018, Section V), Demo_for_Blind_STEREO.m's "
                               "parameters",
                     "call": "Blind_STEREO(Y, Z, srf', 4, A, B, A_lr, B_lr, C_tilde, 1): three iterations, lambda "
                             "1, from the Python side's Blind TenRec factors"},
    "gsomp": {**HIF, "paths": ["methods/GSOMP/superResolution2.m", "methods/GSOMP/superResolution.m"],
              "origin": "N. Akhtar's G-SOMP+ (ECCV 2014) as distributed in hif-benchmarking: superResolution2.m, "
                        "its superResolution.m taking the image pair as arguments",
              "call": "superResolution2(struct('spams', 0, 'L', 20, 'gamma', 0.99), Y, Z, srf', 10) with the "
                      "Python side's dictionary as Phi.mat, patches of 10 x 10 (the code then runs with L = 68, "
                      "the number of bands)"},
    "csu": {"repository": "https://github.com/lanha/SupResPALM", "commit": "ffdb249a807b8090e54e03fdbecf36345403b1dd",
            "option": "csu", "paths": ["SupResPALM.m", "include/hyperSpatialDown.m",
                                       "reproject_simplex/reproject_simplex_mex_fast.cpp"],
            "origin": "C. Lanaras' SupResPALM (CSU, ICCV 2015), with J. Bioucas-Dias' sisal.m and sunsal.m "
                      "(unmixing_overview, as its compile.m fetches them)",
            "call": "SupResPALM(Y, Z, X, srf', 10, H) (demoSupResPALM.m's p = 10); as published its spatial "
                    "degradation is the r x r box average"},
}
NOT_RUN = {
    "fuse": "The authors' FUSE (Q. Wei, via the HSMSFusionToolbox's FUSE_wrapper) calls SylvesterFusion, which "
            "the only public copy found (magamig/hif-benchmarking methods/FUSE/func_global/SylvesterFusion.p) "
            "ships as MATLAB P-code: encrypted, and GNU Octave cannot run P-code. Public fragments of the GPL "
            ".m versions (FastAuxMat.m, FastFusion.m) lack their helpers PPlus/PMinus, so the solver could not "
            "be assembled from the authors' code.",
}
# G-SOMP+'s patch side in the comparison: the authors' code drops what lies beyond the last whole patch, and
# the demo's 8 does not divide the case's 60 pixels.
GSOMP_PATCH = 10
# G-SOMP+ with the authors' effective L: their code overwrites L = 20 with the number of bands (68 here;
# baselines/gsomp.py).
# The Python call compared with each reference: MTF-GLP-HS with the toolbox's injection (the module's
# default is HPM, Selva et al.'s paper); CNMF with the authors' number of endmembers, max(min(30, C),
# VD) with VD as their vd.m counts it on this noiseless case (rounding-level eigenvalues included,
# which cnmf.virtual_dimensionality leaves out: its default gives 30), as the Octave run reports.
PYTHON_PARAMS = {"gsa": {}, "mtf_glp_hs": {"injection": "regression"}, "cnmf": {"n_endmembers": 34}, "hysure": {},
                 "cstf": {}, "stereo": {}, "blind_stereo": {}, "csu": {},
                 "gsomp": {"patch": GSOMP_PATCH, "atoms_per_step": 68}}
DEFAULT_SOURCES = {"hif_benchmarking": "/tmp/octave_ref/hif", "hysure": "/tmp/octave_ref/hysure",
                   "cstf": "/tmp/octave_ref/cstf2019", "stereo": "/tmp/octave_ref/stereo", "csu": "/tmp/octave_ref/csu"}
# Methods whose authors' code cannot run as published here: their 'authors' mode is recorded with the reason.
PROJECT_ONLY = {
    **{method: "The demos initialise with Tensorlab's cpd (tensorlab.net), which is distributed only after "
               "registration and is not installed; the authors' algorithm runs from the Python side's initial "
               "factors (project mode), so the CPD initialisation itself is not compared."
       for method in ("stereo", "blind_stereo")},
    "gsomp": "The authors learn the dictionary with SPAMS' mexTrainDL, which is not built for Octave here (and "
             "without it their code loads a dictionary learned for their demo image); G-SOMP+ runs on the Python "
             "side's dictionary (project mode), so the dictionary learning itself is not compared.",
}
METRIC_DIGITS = 6


def build_case(root=ROOT):
    """The shared case: dict with X (60 x 60 x 68 reference), Y (12 x 12 x 68 LR-HSI), Z (60 x 60 x 8
    HR-MSI), r (5), psf (5 x 5), srf (68 x 8), all float64 (reflectance as stored in the fixture).

    Rebuilt identically by the test (a few ms). Raises DataError if the fixture is missing.
    """
    rows, cols, r = slice(*CASE["rows"]), slice(*CASE["cols"]), CASE["r"]
    cube = load_cube(os.path.join(root, CASE["cube"]))[rows, cols].astype(np.float64)
    srf = np.loadtxt(os.path.join(root, CASE["srf"]), delimiter=",")
    psf = gaussian_psf(r, r / 2.35482)
    pair = simulate_pair(cube, srf, psf, r)
    return {"X": cube, "Y": pair["lhsi"], "Z": pair["hmsi"], "r": r, "psf": psf, "srf": srf}


def case_description(case):
    """CASE plus the shapes and checksums (sums of Y and Z) that let the test confirm it rebuilt the case."""
    return {**CASE, "shapes": {k: list(case[k].shape) for k in ("X", "Y", "Z", "psf", "srf")},
            "Y_sum": float(case["Y"].sum()), "Z_sum": float(case["Z"].sum())}


def initial_endmembers(case):
    """The endmember matrices the Python versions start from, handed to the Octave side in project mode
    (C x K each): CNMF's successive-projection pure pixels (all C of them, in the order chosen: the
    authors' code takes the first M), HySure's 10 principal directions, CSTF's VCA spectral dictionary
    (seed 0, as ``cstf.fuse``'s default), CSU's VCA endmembers and their FCLS abundances (h x w x p maps)."""
    y = case["Y"]
    pixels = np.maximum(y, 0).reshape(-1, y.shape[2]).T
    count = min(y.shape[2], pixels.shape[1])
    hsi = y.reshape(-1, y.shape[2]).T
    csu_endmembers = unmixing.vca(hsi, csu.ENDMEMBERS, np.random.default_rng(0))
    return {
        "endmembers_csu": csu_endmembers,
        "abundances_csu": unmixing.fcls(csu_endmembers, hsi).T.reshape(y.shape[0], y.shape[1], -1),
        "endmembers_cnmf": pixels[:, cnmf.successive_projection(pixels, count)],
        "endmembers_hysure": principal_directions(y, 10, "HySure")[0],
        "endmembers_cstf": unmixing.vca(y.reshape(-1, y.shape[2]).T, min(cstf.SPECTRAL_ATOMS, y.shape[2]),
                                    np.random.default_rng(0)),
    }


def initial_factors(case):
    """The factors the Python STEREO and Blind-STEREO start from (TenRec and Blind TenRec with the default
    rank, CPD iterations and seed 0, as their ``fuse`` computes them) and STEREO's separable operators P1,
    P2 (stereo_* in the case file), and G-SOMP+'s learned dictionary (seed 0) and patch side, handed to the
    Octave side."""
    y, z, r = case["Y"], case["Z"], case["r"]
    P1, P2 = degradation_matrices(case["psf"], r, z.shape[0], z.shape[1])
    rank = stereo.default_rank(y)
    A, B, C, C_tilde = stereo.ten_rec(y, z, P1, P2, rank, stereo.CPD_ITERS, 0)
    _, _, A_lr, B_lr, _ = stereo.blind_ten_rec(z, r, rank, stereo.CPD_ITERS, 0)
    return {"gsomp_dictionary": gsomp.learn_dictionary(y.reshape(-1, y.shape[2]).T, gsomp.ATOMS),
            "gsomp_patch": float(GSOMP_PATCH),
            "stereo_P1": P1, "stereo_P2": P2, "stereo_A": A, "stereo_B": B, "stereo_C": C, "stereo_C_tilde": C_tilde,
            "stereo_A_lr": A_lr, "stereo_B_lr": B_lr}


def python_fuse(method, case):
    """The Python baseline's output for the case, with PYTHON_PARAMS[method]."""
    return fuse_with(method, case["Y"], case["Z"], case["r"], case["psf"], case["srf"], **PYTHON_PARAMS[method])


def rounded_metrics(x_true, x_hat, r):
    return {k: round(float(v), METRIC_DIGITS) for k, v in evaluate(x_true, x_hat, r).items()}


def compile_cstf_mex(source_dir, octave):
    """Compile CSTF's K-SVD MEX files (ImprovedDL/private/make.m) with Octave if ompmex is missing."""
    private = os.path.join(source_dir, "ImprovedDL", "private")
    if not os.path.exists(os.path.join(private, "ompmex.mex")):
        subprocess.run([octave, "--no-gui", "--quiet", "--no-window-system", "--eval", "make"], cwd=private,
                       check=True, capture_output=True, text=True)


def compile_csu_mex(source_dir):
    """Compile CSU's simplex projection (reproject_simplex/reproject_simplex_mex_fast.cpp, OpenMP) with Octave's
    mkoctfile if it is missing, as the authors' compile.m does with MATLAB's mex."""
    folder = os.path.join(source_dir, "reproject_simplex")
    if not os.path.exists(os.path.join(folder, "reproject_simplex_mex_fast.mex")):
        subprocess.run(["mkoctfile", "--mex", "reproject_simplex_mex_fast.cpp"], cwd=folder, check=True,
                       capture_output=True, text=True, env={**os.environ, "CXXFLAGS": "-fopenmp -O2",
                                                            "LDFLAGS": "-fopenmp"})


def run_octave(octave, case_file, out_file, method, mode, source_dir, timeout):
    """One Octave process: run_reference.m for (method, mode); returns the output cube (H x W x C float64)
    and a dict with seconds, octave_version and (CNMF) endmembers."""
    command = (f"addpath('{OCTAVE_DIR}'); run_reference('{case_file}', '{out_file}', '{method}', '{mode}', "
               f"'{source_dir}')")
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([octave, "--no-gui", "--quiet", "--no-window-system", "--eval", command], env=env,
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0 or not os.path.exists(out_file):
        raise RuntimeError(f"Octave failed on {method} ({mode}), exit status {done.returncode}:\n"
                           f"{done.stderr[-3000:] or done.stdout[-3000:]}")
    result = scipy.io.loadmat(out_file)
    endmembers = float(result["endmembers"].squeeze())
    info = {"seconds": round(float(result["seconds"].squeeze()), 2), "octave_version": str(result["octave_version"][0])}
    if np.isfinite(endmembers):
        info["endmembers"] = int(endmembers)
    return result["Xhat"].astype(np.float64), info


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=",".join(SOURCES))
    parser.add_argument("--modes", default=",".join(MODES))
    for option, default in DEFAULT_SOURCES.items():
        parser.add_argument(f"--{option}", default=default, help=f"root of the authors' code (default {default})")
    parser.add_argument("--work", default="/tmp/octave_reference", help="folder for the case and the fused cubes")
    parser.add_argument("--octave", default="octave", help="the Octave executable")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per Octave run")
    parser.add_argument("--output", default=FIXTURE, help="the fixture to write (merged with an existing one)")
    return parser.parse_args(argv)


def main(argv=None):
    opts = parse(argv)
    methods = opts.methods.split(",")
    modes = opts.modes.split(",")
    unknown = sorted(set(methods) - set(SOURCES)) + sorted(set(modes) - set(MODES))
    if unknown:
        sys.exit(f"unknown method or mode: {', '.join(unknown)} (methods: {', '.join(SOURCES)}; modes: "
                 f"{', '.join(MODES)})")
    octave = shutil.which(opts.octave)
    if octave is None:
        sys.exit(f"{opts.octave}: GNU Octave not found; install it (see this file's docstring) or pass --octave")
    os.makedirs(opts.work, exist_ok=True)
    case = build_case()
    case_file = os.path.join(opts.work, "case.mat")
    scipy.io.savemat(case_file, {**{k: case[k] for k in ("X", "Y", "Z", "psf", "srf")}, "r": float(case["r"]),
                                 **initial_endmembers(case), **initial_factors(case)})
    fixture = {}
    if os.path.exists(opts.output):
        with open(opts.output) as f:
            fixture = json.load(f)
    fixture["case"] = case_description(case)
    fixture.setdefault("methods", {})
    fixture["not_run"] = NOT_RUN
    for method in methods:
        source = SOURCES[method]
        source_dir = getattr(opts, source["option"])
        if method == "cstf":
            compile_cstf_mex(source_dir, octave)
        if method == "csu":
            compile_csu_mex(source_dir)
        start = time.perf_counter()
        ours = python_fuse(method, case)
        python_seconds = time.perf_counter() - start
        entry = {"source": {k: v for k, v in source.items() if k != "option"},
                 "python_params": PYTHON_PARAMS[method],
                 "python": {"metrics": rounded_metrics(case["X"], ours, case["r"]),
                            "seconds": round(python_seconds, 2)},
                 **{mode: fixture["methods"].get(method, {}).get(mode) for mode in MODES}}
        for mode in modes:
            if mode == "authors" and method in PROJECT_ONLY:
                entry[mode] = {"not_run": PROJECT_ONLY[method]}
                continue
            out_file = os.path.join(opts.work, f"{method}_{mode}.mat")
            if os.path.exists(out_file):
                os.remove(out_file)
            x_hat, info = run_octave(octave, case_file, out_file, method, mode, source_dir, opts.timeout)
            fixture["octave_version"] = info.pop("octave_version")
            expected = PYTHON_PARAMS[method].get("n_endmembers")
            if mode == "project" and expected is not None and info["endmembers"] != expected:
                sys.exit(f"CNMF: the authors' code chose {info['endmembers']} endmembers, PYTHON_PARAMS says "
                         f"{expected}; set PYTHON_PARAMS['cnmf']['n_endmembers'] to {info['endmembers']}")
            entry[mode] = {"metrics": rounded_metrics(case["X"], x_hat, case["r"]), **info,
                           "max_abs_diff_to_python": float(np.abs(x_hat - ours).max())}
            print(json.dumps({"method": method, "mode": mode, **entry[mode]}), flush=True)
        fixture["methods"][method] = entry
    fixture["generated"] = datetime.date.today().isoformat()
    fixture["command"] = "python benchmarks/octave_reference.py"
    os.makedirs(os.path.dirname(opts.output), exist_ok=True)
    with open(opts.output, "w") as f:
        json.dump(fixture, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
