#!/usr/bin/env bash
# The degradation-model benchmark reported in docs/degradation_model.md: UDALN on the default data
# set, scale 5, full schedule, under the papers' degradation model and the normalised one, on the
# consistent pair, on an HR-MSI 1.5 times brighter and on the radiometric-mismatch simulation. Two lanes
# of one thread each (a 2-core machine); about 30 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=checkpoints/degradation
MISMATCH="--msi_gamma 0.9 --msi_gain_jitter 0.05 --msi_offset_jitter 0.02"
run() { python train_all_special.py --threads 1 --checkpoints_dir "$OUT" "$@"; }
lane_a() {
  run --degradation normalised
  run --degradation normalised --msi_gain 1.5
  run --degradation original
}
lane_b() {
  run --degradation normalised $MISMATCH
  run --degradation original $MISMATCH
  run --degradation original --msi_gain 1.5
}
lane_a & lane_b & wait
python benchmarks/report.py "$OUT"/*/
