#!/usr/bin/env bash
# The UDS2C2 ablation reported in docs/methods.md ("UDS2C2: the reconstruction and its ablation"): UDS2C2's
# variants on the default data set under the normalised degradation model, full schedule, seed 2; the
# default (GCE, no SCFConv) and the SCFConv-in-SpaDnet variant at r = 8 and on the radiometric
# mismatch; the default on an HR-MSI 1.5 times brighter. The comparison's UDALN and PFS2C2 runs are
# benchmarks/degradation.sh's and `python train_all_special.py [--method pfs2c2] --degradation
# original|normalised [--scale_factor 8 | mismatch options]`. Two lanes of one thread each (a 2-core
# machine); about 80 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=checkpoints/uds2c2_ablation
MISMATCH="--msi_gamma 0.9 --msi_gain_jitter 0.05 --msi_offset_jitter 0.02"
run() { python train_all_special.py --threads 1 --checkpoints_dir "$OUT" --method uds2c2 "$@"; }
lane_a() {
  run                                                     # the default: GCE, pixel-wise SpeUnet
  run --scfconv yes --scf_place inverse --scf_kernel 3
  run --scfconv yes --scf_place inverse --scf_kernel 1
  run --scfconv yes --scf_place spatial
  run --scfconv yes --scf_place inverse --scf_kernel 3 --scf_attention sigmoid
}
lane_b() {
  run --scale_factor 8
  run --scfconv yes --scf_place spatial --scale_factor 8
  run $MISMATCH
  run --scfconv yes --scf_place spatial $MISMATCH
  run --msi_gain 1.5
}
lane_a & lane_b & wait
python benchmarks/report.py "$OUT"/*/
