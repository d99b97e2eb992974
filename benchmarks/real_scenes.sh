#!/usr/bin/env bash
# The papers' tables on the real scenes of data/ (docs/results.md): Table I (UDALN's stage
# ablation) and Tables II-III (every method and baseline), each deep method under the papers' degradation
# model and the normalised one, one training at a time on one thread. Houston 2018 at r = 5 and 8 (the
# paper's) and 4, seeds 2 and 3; the other scenes at r = 4 and 8, seed 2. Complete cells are skipped, so
# rerunning the script resumes where it stopped; the tables are written after each scene's sweep, with '-'
# for what is not complete yet. Hours on two cores (docs/results.md gives the times).
#
#     bash benchmarks/real_scenes.sh [SCENE ...]        (default: houston18, then the other scenes)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=checkpoints/real_scenes
SCENES=("$@")
[ ${#SCENES[@]} -gt 0 ] || SCENES=(houston18 indian_pines_roi70 salinas_a cave_toy)
status=0
for scene in "${SCENES[@]}"; do
  if [ "$scene" = houston18 ]; then scales=5,8,4; seeds=2,3; else scales=4,8; seeds=2; fi
  python -m reproduce.tables --data_name "$scene" --scales "$scales" --seeds "$seeds" \
    --degradations original,normalised --jobs 1 --threads 1 \
    --checkpoints_dir "$OUT/runs" --out "$OUT/tables/$scene" || status=1
done
exit $status
