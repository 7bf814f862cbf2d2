#!/usr/bin/env bash
# One leg of the cross-session teacher run (issue 26; training/README.md). Start it in the background at the
# start of a session:   nohup bash scripts/teacher_leg.sh > runs/teacher_leg.out 2>&1 &
# It continues from the latest committed weights (training/teacher_96_7/latest.safetensors; the shared
# 4,750-step head start before the first commit) with --init and the warm-up of leg.yaml, since no optimizer
# state is committed, and runs until stopped (SIGTERM or Ctrl-C saves last.safetensors). Before the session
# ends: kill -TERM the leg, then python scripts/teacher_commit.py (fp16 latest.safetensors, a row of LOG.md).
set -euo pipefail
cd "$(dirname "$0")/.."
T=training/teacher_96_7
INIT=${INIT:-$T/latest.safetensors}
[ -f "$INIT" ] || INIT=../shared/checkpoints/dbsnl_96_7_sidd512_4750.safetensors
RUN=${RUN:-runs/teacher_leg}
if [ -e "$RUN/state.pt" ]; then      # a leg of this session that was stopped: go on with it, exactly
  exec nice -n ${NICE:-10} sdap train --config "$RUN/config.yaml" --resume "$@"
fi
LEGS=$(grep -c '^| [0-9]' $T/LOG.md 2>/dev/null || true)
SEED=${SEED:-$(( ${LEGS:-0} + 10 ))}     # a new seed each leg, so new crops
mkdir -p "$RUN"
echo "$INIT" > "$RUN/init.txt"
exec nice -n ${NICE:-10} sdap train --config $T/leg.yaml --init "$INIT" -o "$RUN" --seed "$SEED" \
  --val ../shared/data/sidd_val_scoredvi/val "$@"
