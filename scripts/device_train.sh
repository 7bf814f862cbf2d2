#!/usr/bin/env bash
# One command that trains SDAP weights on a lent GPU within one device call (at most 10 minutes).
#
# Run on the GPU machine from the repo root, after scripts/device_prepare.sh here and with .device
# carried:  bash scripts/device_train.sh
# Environment (defaults: the paper's network and stage-1 recipe): MINUTES (training wall time, 7),
# BASE_CH (128), NUM_MODULE (9), BATCH (16), PATCH (160), LR (1e-4), INIT (weights to start from).
# A 40-step probe measures steps per second; the cosine schedule is then planned to end inside the
# budget, and `timeout` sends SIGTERM (sdap train saves and exits cleanly) if it runs over. Everything
# that comes back lands in $OUT: the weights (last and best, 16-bit safetensors), the training log,
# (last is missing if the timeout stopped it; best is the best-validated step so far)
# and `sdap evaluate` JSONs of the 5 SIDD validation blocks (PD-2 + E) for the new and the shipped
# weights. Nothing here is specific to the GPU: on a CPU it runs too (slowly), which is how it was tested.
set -euo pipefail
OUT=${OUT:-out/device}
mkdir -p "$OUT"
if compgen -G ".device/whl/*.whl" > /dev/null && ! python3 -c "import pydantic" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .device/whl/*.whl
    export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-} PYTHONUNBUFFERED=1
D=.device/data
MINUTES=${MINUTES:-7} BASE_CH=${BASE_CH:-128} NUM_MODULE=${NUM_MODULE:-9}
BATCH=${BATCH:-16} PATCH=${PATCH:-160} LR=${LR:-1e-4}
# the crops 4x as often as DND and CC15, as for the shipped weights (weights/README.md)
DATA=(-d $D/sidd_crops -d $D/sidd_crops -d $D/sidd_crops -d $D/sidd_crops -d $D/dnd -d $D/cc15)
NET=(--base-ch "$BASE_CH" --num-module "$NUM_MODULE" --batch "$BATCH" --patch "$PATCH" --lr "$LR")
INIT_ARGS=(); [ -n "${INIT:-}" ] && INIT_ARGS=(--init "$INIT")
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu')" | tee "$OUT/env.txt"

probe=$(mktemp -d)
python3 -m sdap_cli train "${DATA[@]}" "${NET[@]}" "${INIT_ARGS[@]}" -o "$probe" -n 40 --val-every 1000 \
    --checkpoint-every 1000 --workers 4 -q
rate=$(python3 -c "import csv,sys; r=list(csv.DictReader(open(sys.argv[1]))); print(r[-1]['it_per_s'])" "$probe/train_log.csv")
# 80 % of the budget at the probed rate; the rest pays for start-up and 5 validations
iters=$(python3 -c "import sys; print(max(100, int(float(sys.argv[1]) * float(sys.argv[2]) * 60 * 0.8) // 100 * 100))" "$rate" "$MINUTES")
echo "probe: $rate steps/s -> $iters steps in $MINUTES min" | tee -a "$OUT/env.txt"

val_every=$(( iters / 5 ))
# --foreground: only sdap gets the SIGTERM (it saves state and stops cleanly; its loader workers follow)
timeout --foreground -s TERM $(( MINUTES * 60 + 90 )) python3 -m sdap_cli train "${DATA[@]}" "${NET[@]}" "${INIT_ARGS[@]}" \
    -o runs/device --schedule cosine -n "$iters" --val $D/val --val-every "$val_every" \
    --checkpoint-every "$val_every" --workers 4 -q || echo "training ended with $?" | tee -a "$OUT/env.txt"
cp runs/device/last.safetensors runs/device/best.safetensors runs/device/train_log.csv "$OUT/" 2>/dev/null || true
for w in runs/device/last.safetensors runs/device/best.safetensors weights/sdap_default.safetensors; do
    [ -f "$w" ] || continue
    name=$(basename "$(dirname "$w")")_$(basename "$w" .safetensors)
    python3 -m sdap_cli evaluate --data-dir $D/val -w "$w" --model teacher --json "$OUT/eval_$name.json" -q \
        || echo "evaluate $w failed" | tee -a "$OUT/env.txt"
done
python3 - "$OUT" <<'PY'
import json, pathlib, sys
for p in sorted(pathlib.Path(sys.argv[1]).glob("eval_*.json")):
    s = json.loads(p.read_text())["summary"]
    print(f"{p.name}: PSNR {s['psnr']['mean']:.2f} dB, SSIM {s['ssim']['mean']:.4f}")
PY
