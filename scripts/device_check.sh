#!/usr/bin/env bash
# The CUDA check (issue 37): one prepared call on a lent GPU machine, within 8 minutes.
#
#   here, once:  bash scripts/device_check.sh --prepare    (scripts/device_prepare.sh if .device/ lacks the
#                pydantic wheels, plus the pytest wheels, into the git-ignored .device/whl)
#   there:       run(command="bash scripts/device_check.sh", carry=[".device"], timeout_s=540)
#   anywhere:    bash scripts/device_check.sh --dry-run    (prints what it would run, runs nothing)
#
# Steps, each under its own time limit and all within BUDGET (470 s; a step that would start with less
# than 15 s left is skipped, the summary always runs); one failing step does not stop the others:
#   1. the test suite, every test marked `cuda` and every `device` case on CUDA (SDAP_TEST_DEVICE=cuda: they
#      fail rather than skip without a GPU), the others as on a CPU machine (tests/conftest.py);
#   2. a GPU roofline: the best rate of a batched 3x3 convolution (batch 8, repeated for >= 0.2 s, CUDA
#      events) per precision (fp32 with TF32 off, as sdap runs it), then `sdap benchmark` on CUDA, each row
#      also given as a fraction of that roofline (`sdap benchmark`'s own roofline times single calls at
#      batch 1, too short for a GPU);
#   3. a short `sdap train` (the paper's 128/9 network, batch 16, patch 160) in bf16 and in fp16, validating
#      on a full-size 12 MP pair (tiled validation), and a short `sdap distill` of the shipped teacher in
#      bf16 and fp16 from a cold cache;
#   4. `sdap denoise` of two 12 MP photos on CUDA with the defaults (the one-pass student since issue 32), per image.
# Figures: $OUT (default out/device_check; the device tool brings $OUT back): summary.md (the lines a note
# quotes), summary.json, steps.tsv (each step's exit status and seconds), and each step's log and JSON.
# Environment: DEVICE (cuda), ITERS (30 steps of train and distill), BUDGET (470 s), SMALL=1 (tiny networks,
# teacher and images: to try the script on a CPU, with DEVICE=cpu), SKIP_TESTS=1.
set -uo pipefail
cd "$(dirname "$0")/.."

DRY=0
PREPARE=0
for arg in "$@"; do
    case $arg in
        --dry-run) DRY=1 ;;
        --prepare) PREPARE=1 ;;
        -h|--help) sed -n '2,/^set /p' "$0" | sed '$d'; exit 0 ;;
        *) echo "device_check.sh: unknown argument $arg (--dry-run, --prepare)" >&2; exit 2 ;;
    esac
done

if [ "$PREPARE" = 1 ]; then
    set -e
    compgen -G ".device/whl/pydantic-*.whl" > /dev/null || bash scripts/device_prepare.sh
    for pkg in pytest pluggy iniconfig packaging; do
        ver=$(python3 -m pip show "$pkg" | sed -n 's/^Version: //p')
        python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
            --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
            --platform any -d .device/whl "$pkg==$ver"
    done
    du -sh .device
    exit 0
fi

OUT=${OUT:-out/device_check}
DEVICE=${DEVICE:-cuda}
ITERS=${ITERS:-30}
BUDGET=${BUDGET:-470}
SMALL=${SMALL:-0}
WORK=${WORK:-runs/device_check}
PY=python3
if [ "$SMALL" = 1 ]; then
    NET=(--base-ch 8 --num-module 1 --batch 2 --patch 40)
    STUDENT=(--student-ch 8,8,8 --student-blocks 1,1,1 --batch 2 --patch 32 -t "$WORK/data/tiny_teacher.safetensors")
    SIDE=256; BIG=640x480; BENCH_SIZES=256; BENCH_MODELS=student; CONV="2:32x64,64x64"
else
    NET=(--base-ch 128 --num-module 9 --batch 16 --patch 160); STUDENT=(--batch 8 --patch 128)
    SIDE=512; BIG=4000x3000; BENCH_SIZES=1024,12mp; BENCH_MODELS=student,default
    CONV="8:48x256,96x256,128x256,128x512"      # batch:channels x side of the roofline's convolutions
fi
T0=$(date +%s)

# step NAME LIMIT_SECONDS COMMAND...: run it (output to $OUT/NAME.log) within what is left of BUDGET, or
# print it under --dry-run; a command '$PY -' reads the inline script that follows the call
step() {
    local name=$1 limit=$2; shift 2
    if [ "$DRY" = 1 ]; then
        printf '[%s, at most %ss] ' "$name" "$limit"; printf '%q ' "$@"
        [ "${2:-}" = - ] && printf '(inline Python, in this script)'
        printf '\n'
        return 0
    fi
    local t=$(date +%s)
    local left=$(( BUDGET - (t - T0) ))
    [ "$name" = summary ] && left=$(( left + 30 ))          # the summary always runs
    if [ "$left" -lt 15 ]; then
        printf '%s\tskipped\t0\n' "$name" >> "$OUT/steps.tsv"
        echo "== $name skipped: the ${BUDGET}s budget is spent"
        return 0
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    echo "== $name (at most ${limit}s; $(( t - T0 ))s so far)"
    timeout --foreground -k 10 "$limit" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    printf '%s\t%s\t%s\n' "$name" "$rc" "$(( $(date +%s) - t ))" >> "$OUT/steps.tsv"
    tail -n 3 "$OUT/$name.log"
    [ "$rc" = 0 ] || echo "   $name ended with exit status $rc (log: $OUT/$name.log)"
}

if [ "$DRY" = 0 ]; then
    mkdir -p "$OUT" "$WORK"
    : > "$OUT/steps.tsv"
    missing=()
    $PY -c "import pydantic" 2>/dev/null || missing+=(pydantic)
    $PY -c "import pytest" 2>/dev/null || missing+=(pytest)
    if [ ${#missing[@]} -gt 0 ]; then               # as device_train.sh: the wheels --prepare put in .device/whl
        $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
            .device/whl/*.whl || echo "no ${missing[*]}: run --prepare here first and carry .device"
        export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
    fi
    export PYTHONPATH=$PWD:${PYTHONPATH:-}
fi
export PYTHONUNBUFFERED=1
SDAP=($PY -m sdap_cli)
D=$WORK/data

step env 30 $PY - "$OUT/env.json" <<'PY'
import json, platform, sys, torch
d = {"torch": torch.__version__, "python": platform.python_version(), "cuda": torch.version.cuda,
     "gpu": None}
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    d["gpu"] = {"name": p.name, "capability": list(torch.cuda.get_device_capability(0)),
                "memory_gib": round(p.total_memory / 2**30, 1), "cudnn": torch.backends.cudnn.version(),
                "bf16_supported_with_emulation": torch.cuda.is_bf16_supported(),
                "bf16_native": torch.cuda.is_bf16_supported(including_emulation=False)}
    from sdap_cli.inference.device import pick_precision
    d["auto_precision"] = pick_precision("auto", torch.device("cuda"))
json.dump(d, open(sys.argv[1], "w"), indent=2)
print(json.dumps(d))
PY

if [ "${SKIP_TESTS:-0}" != 1 ]; then
    step tests 200 env SDAP_TEST_DEVICE=cuda $PY -m pytest -q -p no:cacheprovider --continue-on-collection-errors \
        -rfEs --junitxml="$OUT/pytest.xml"
fi

step roofline 30 $PY - "$DEVICE" "$OUT/roofline_gpu.json" "$CONV" <<'PY'
import json, sys, time, torch
from sdap_cli.inference.device import DTYPES, pick_device
dev = pick_device(sys.argv[1])                      # on CUDA: TF32 off, as sdap runs fp32
batch, shapes = sys.argv[3].split(":")
batch, shapes = int(batch), [tuple(map(int, cs.split("x"))) for cs in shapes.split(",")]
def sync():
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
rows = []
with torch.inference_mode():
    for prec in ("bf16", "fp16", "fp32"):
        for c, s in shapes:
            x = torch.randn(batch, c, s, s).to(dev, DTYPES[prec]).contiguous(memory_format=torch.channels_last)
            conv = torch.nn.Conv2d(c, c, 3, padding=1).to(dev, DTYPES[prec]).to(memory_format=torch.channels_last)
            for _ in range(3):
                conv(x)
            sync()
            n, best = 1, float("inf")
            while True:                                 # enough calls for >= 0.2 s, then the best of 3
                t = time.perf_counter()
                for _ in range(n):
                    conv(x)
                sync()
                dt = time.perf_counter() - t
                if dt >= 0.2:
                    break
                n *= 2
            for _ in range(3):
                t = time.perf_counter()
                for _ in range(n):
                    conv(x)
                sync()
                best = min(best, (time.perf_counter() - t) / n)
            rows.append({"precision": prec, "channels": c, "side": s, "batch": batch, "calls": n,
                         "gmac_per_s": round(9 * c * c * s * s * batch / best / 1e9, 1)})
            print(rows[-1])
best = {p: max(r["gmac_per_s"] for r in rows if r["precision"] == p) for p in ("bf16", "fp16", "fp32")}
json.dump({"best": best, "rows": rows}, open(sys.argv[2], "w"), indent=2)
print("roofline", best)
PY

step benchmark 75 "${SDAP[@]}" benchmark --device "$DEVICE" --model "$BENCH_MODELS" --sizes "$BENCH_SIZES" \
    --refine e --precision bf16,fp32 --warmup 2 --runs 5 --no-roofline --json "$OUT/benchmark.json"

step data 40 $PY - "$D" "$SIDE" "$BIG" "$SMALL" <<'PY'
import sys
from pathlib import Path
import cv2
import numpy as np
root, side = Path(sys.argv[1]), int(sys.argv[2])
w, h = map(int, sys.argv[3].split("x"))
rng = np.random.default_rng(0)
def photo(h, w, seed):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.random.default_rng(seed)
    base = np.stack([0.5 + 0.3 * np.sin(xx / r.uniform(5, 40) + k) * np.cos(yy / r.uniform(5, 40)) for k in range(3)], 2)
    return np.clip(base, 0, 1)
def noisy(clean):                                   # signal-dependent noise, correlated between neighbours
    n = rng.normal(0, 1, clean.shape).astype(np.float32)
    n = cv2.GaussianBlur(n, (3, 3), 0.7) * 2.0
    return np.clip(clean + n * (0.02 + 0.05 * clean), 0, 1)
def save(path, a):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), (a[..., ::-1] * 255 + 0.5).astype(np.uint8))
for i in range(8):
    save(root / "train" / f"n{i}.png", noisy(photo(side, side, i)))
clean = photo(h, w, 99)
save(root / "val" / "clean" / "big.png", clean)
save(root / "val" / "noisy" / "big.png", noisy(clean))
for i in range(2):
    save(root / "photos" / f"photo{i}.png", noisy(photo(h, w, 100 + i)))
if sys.argv[4] == "1":                              # SMALL: a tiny teacher for distill
    import torch
    from sdap_cli.inference.checkpoints import save_weights
    from sdap_cli.method.dbsnl import DBSNl
    torch.manual_seed(0)
    save_weights(root / "tiny_teacher.safetensors", DBSNl(base_ch=8, num_module=1), training={"note": "device_check"})
print("data in", root)
PY

for prec in bf16 fp16; do
    step "train_$prec" 50 "${SDAP[@]}" train -d "$D/train" -o "$WORK/train_$prec" -n "$ITERS" "${NET[@]}" \
        --precision "$prec" --device "$DEVICE" --val "$D/val" --val-every "$ITERS" --checkpoint-every 1000 \
        --workers 4 --json -q
done
for prec in bf16 fp16; do
    step "distill_$prec" 60 "${SDAP[@]}" distill -d "$D/train" -o "$WORK/distill_$prec" -n "$ITERS" "${STUDENT[@]}" \
        --precision "$prec" --device "$DEVICE" --cache "$WORK/cache_$prec" --val "$D/val" --val-every "$ITERS" \
        --checkpoint-every 1000 --workers 4 --json -q
done
step denoise 60 "${SDAP[@]}" denoise "$D/photos" -o "$WORK/denoised" --overwrite --device "$DEVICE" --json

step summary 20 $PY - "$OUT" "$WORK" <<'PY'
import csv, json, re, sys
from pathlib import Path
out, work = Path(sys.argv[1]), Path(sys.argv[2])
def load(p):                                         # the first JSON object in a file (a log: after its noise)
    try:
        text = Path(p).read_text()
        return json.JSONDecoder().raw_decode(text[text.index("{"):])[0]
    except (OSError, ValueError):
        return None
def short(d):
    return d and {k: round(v, 3) if isinstance(v, float) else v for k, v in d.items()}
s = {"env": load(out / "env.json"), "steps": [dict(zip(("step", "rc", "seconds"), l.split("\t")))
                                            for l in (out / "steps.tsv").read_text().splitlines()]}
lines = [f"# device check: {(s['env'] or {}).get('gpu') or 'no GPU'}", ""]
log = out / "tests.log"
if log.is_file():
    tail = [l for l in log.read_text().splitlines() if re.search(r"\d+ (passed|failed|error)", l)]
    s["tests"] = tail[-1] if tail else "no summary line (timed out?)"
    lines.append(f"tests: {s['tests']}")
roof = load(out / "roofline_gpu.json")
s["roofline_gmac_per_s"] = roof and roof["best"]
lines.append(f"roofline (batched 3x3 conv, GMAC/s): {s['roofline_gmac_per_s']}")
bench = load(out / "benchmark.json")
s["benchmark"] = []
for r in (bench or {}).get("rows", []):
    top = (roof or {}).get("best", {}).get(r["precision"])
    r["of_gpu_roofline"] = round(r["gmac_per_s"] / top, 3) if top and r.get("gmac_per_s") else None
    s["benchmark"].append(r)
    lines.append(f"benchmark {r['model']} {r['size']} {r['precision']}: {r['ms']:.0f} ms, {r['mpix_per_s']:.2f} MP/s, "
                 f"{r['gmac_per_s']:.0f} GMAC/s ({r['of_gpu_roofline']} of roofline), peak {r['peak_mib']:.0f} MiB, "
                 f"{r['tiles']} tiles" + (f", error {r['error']}" if r.get("error") else ""))
for kind in ("train", "distill"):
    for prec in ("bf16", "fp16"):
        name = f"{kind}_{prec}"
        res, rows = load(out / f"{name}.log"), []
        logf = work / name / "train_log.csv"
        if logf.is_file():
            rows = [r for r in csv.DictReader(logf.open()) if r.get("loss")]
        d = {"seconds": res and round(res["seconds"], 1), "best": res and short(res.get("best")),
             "teacher_val": res and short(res.get("teacher_val")),
             "last_loss": rows and round(float(rows[-1]["loss"]), 4),
             "steps_per_s": rows and round(float(rows[-1]["it_per_s"]), 2)}
        s[name] = d
        lines.append(f"{name}: {d['seconds']} s, {d['steps_per_s']} steps/s, last loss {d['last_loss']}, best {d['best']}"
                     + (f", teacher {d['teacher_val']}" if d["teacher_val"] else ""))
den = load(out / "denoise.log")
if den:
    s["denoise"] = [{"input": f["input"], "status": f["status"], "seconds": round(f["seconds"], 2),
                     "megapixels": f["megapixels"], "network": f["network"], "error": f["error"]} for f in den["files"]]
    lines.append(f"denoise ({den['device']}, {den['precision']}): " + "; ".join(
        f"{Path(f['input']).name} {f['megapixels']:.1f} MP {f['status']} {f['seconds']} s" for f in s["denoise"]))
lines.append("steps (exit status, seconds): " + ", ".join(f"{x['step']} {x['rc']} {x['seconds']}s" for x in s["steps"]))
(out / "summary.json").write_text(json.dumps(s, indent=2, default=str) + "\n")
(out / "summary.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PY
[ "$DRY" = 1 ] || echo "device check done in $(( $(date +%s) - T0 )) s; figures in $OUT/summary.md"
