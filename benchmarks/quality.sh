#!/usr/bin/env bash
# The quality benchmark reported in docs/synthetic_results.md: every method at scale 5 and 8 on the default data set
# with its full schedule, then the radiometric-mismatch case for UDALN and UDS2C2 with and without
# GCE, UDALN + GCE alone, and UDS2C2 with pixel-wise (k = 1) SCFConv. Runs in parallel lanes of one
# thread each (a 2-core machine); about 80 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
MISMATCH="--msi_gamma 0.9 --msi_gain_jitter 0.05 --msi_offset_jitter 0.02"
run() { python train_all_special.py --threads 1 "$@"; }
lane_a() {
  run --method pfs2c2
  run --method uds2c2
  run --checkpoints_dir checkpoints/mismatch $MISMATCH
  run --checkpoints_dir checkpoints/mismatch_nogce --method uds2c2 --gce no $MISMATCH
}
lane_b() {
  run --scale_factor 8
  run --method pfs2c2 --scale_factor 8
  run --method uds2c2 --scale_factor 8
  run --checkpoints_dir checkpoints/mismatch --method uds2c2 $MISMATCH
}
lane_c() {
  run --checkpoints_dir checkpoints/mismatch_udaln_gce --method uds2c2 --scfconv no --scf_kernel 1 $MISMATCH
  run --checkpoints_dir checkpoints/k1 --method uds2c2 --scf_kernel 1
}
lane_a & lane_b & lane_c & wait
python benchmarks/report.py checkpoints/*/ checkpoints/*/*/
