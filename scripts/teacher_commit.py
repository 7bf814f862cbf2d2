"""Close one leg of the cross-session teacher run (issue 26; training/README.md).

    python scripts/teacher_commit.py [RUN]        # RUN: the leg's run folder, default runs/teacher_leg

Stop the leg first (``kill -TERM`` its process: `sdap train` then saves ``RUN/last.safetensors``). This
writes the leg's last weights (the weight average, as validated) as float16 safetensors, without optimizer
state, to ``training/teacher_96_7/latest.safetensors``, and appends the leg to ``training/teacher_96_7/LOG.md``:
its start weights, steps, learning rate, seed and every validation it made (the 65 pairs of
``sidd_val_scoredvi/val``, PD-2 and PD-2 + E, SDAP convention). The next leg starts from these weights
(``scripts/teacher_leg.sh``).
"""

from __future__ import annotations

import csv
import datetime as dt
import sys
from pathlib import Path

import torch
import yaml

from sdap_cli.inference.checkpoints import load_weights, save_weights
from sdap_cli.training.distill import file_hash

ROOT = Path(__file__).resolve().parents[1]
HOME = ROOT / "training" / "teacher_96_7"
HEADER = ("| leg | closed | started from | steps | lr | seed | validations (step: PD-2 / PD-2 + E, dB) | "
          "weights (SHA-256, first 12) |\n|---|---|---|---|---|---|---|---|\n")


def main(run: Path) -> None:
    last = run / "last.safetensors"
    if not last.is_file():
        raise SystemExit(f"{last}: no weights; stop the leg with kill -TERM first")
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    rows = list(csv.DictReader(open(run / "train_log.csv")))
    loaded = load_weights(last)
    steps = loaded.metadata.get("training", {}).get("iterations") or int(rows[-1]["step"])
    log = HOME / "LOG.md"
    text = log.read_text() if log.is_file() else ""
    leg = sum(1 for line in text.splitlines() if line.startswith("| ") and line[2:3].isdigit()) + 1
    init = Path(cfg.get("init") or "none")
    out = save_weights(HOME / "latest.safetensors", loaded.model, dtype=torch.float16, training={
        "leg": leg, "steps_this_leg": steps, "init": init.name,
        "init_sha256": file_hash(init) if init.is_file() else None,
        "config": {k: cfg.get(k) for k in ("data", "patch", "batch", "lr", "schedule", "warmup", "ema", "seed")}})
    vals = "; ".join(f"{int(r['step'])}: {float(r['val_psnr']):.2f} / {float(r['val_psnr_e']):.2f}"
                     for r in rows if r.get("val_psnr_e"))
    lr = f"{cfg['lr']:g} {cfg['schedule']}, warm-up {cfg.get('warmup', 0)}, ema {cfg.get('ema', 0)}"
    line = (f"| {leg} | {dt.date.today()} | {init.name} | {steps} | {lr} | {cfg['seed']} | {vals or 'none'} | "
            f"{file_hash(out)[:12]} |\n")
    if "| leg |" not in text:
        text += ("\n" if text else "") + HEADER
    lines = text.splitlines(keepends=True)
    rows = [i for i, t in enumerate(lines) if t.startswith("| ") and t[2:3].isdigit()] or [len(lines) - 1]
    lines.insert(rows[-1] + 1, line)                        # under the table's last row, above the notes
    log.write_text("".join(lines))
    print(f"wrote {out} and leg {leg} of {log}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "runs" / "teacher_leg")
