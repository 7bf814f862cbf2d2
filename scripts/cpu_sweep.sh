#!/usr/bin/env bash
# Training-per-CPU-hour sweep (issue 7, item 2): one factor at a time against the DBSNl 48/5 baseline
# (batch 8, patch 120, lr 3e-4, constant; runs/curve_48_5). Each run gets 1 thread and MINUTES of wall
# time (default 32), two runs side by side on a 2-core machine, and is stopped by SIGTERM (state saved).
# Usage: bash scripts/cpu_sweep.sh ROUND [DATA_DIR]   (ROUND: lr | batchpatch)
# As run for the model card (weights/README.md): `MINUTES=32 bash scripts/cpu_sweep.sh lr`, then
# `MINUTES=50 bash scripts/cpu_sweep.sh batchpatch`, whose batch-4
# run was stopped by hand (SIGTERM) at 27 minutes.
# Then:  python scripts/training_curves.py runs/curve_48_5 runs/sweep_* --out docs/training-curves.png
set -euo pipefail
ROUND=${1:?round: lr or batchpatch}
D=${2:-../shared/data}
MIN=${MINUTES:-32}
S=$D/sidd_medium_crops_yilmazdoga/Noisy_Images
common=(-d "$S" -d "$S" -d "$S" -d "$S" -d "$D/dnd_patches_cbdnet" -d "$D/nam_cc15_mcwnnm"
        --val "$D/sidd_val_blocks/p1y2z3_SDAP" --schedule constant -n 100000 --checkpoint-every 100000
        --threads 1 --workers 0 --seed 0 -q)
one() {  # NAME then its own flags
  local name=$1; shift
  timeout -s TERM "$((MIN * 60))" sdap train "${common[@]}" -o "runs/sweep_$name" "$@" \
    > "runs/sweep_$name.log" 2>&1 || true
}
case $ROUND in
  lr)         one lr1e-4 --base-ch 48 --num-module 5 --batch 8 --patch 120 --lr 1e-4 --val-every 150 &
              one lr1e-3 --base-ch 48 --num-module 5 --batch 8 --patch 120 --lr 1e-3 --val-every 150 ;;
  batchpatch) one b4     --base-ch 48 --num-module 5 --batch 4 --patch 120 --lr 3e-4 --val-every 300 &
              one p80    --base-ch 48 --num-module 5 --batch 8 --patch 80  --lr 3e-4 --val-every 300 ;;
  *) echo "unknown round $ROUND" >&2; exit 2 ;;
esac
wait
