"""Export a bootstrap checkpoint (scripts/train_default_weights.py) to the shipped fp16 safetensors.

Usage: python scripts/export_weights.py RUN_DIR/last.pt weights/sdap_default.safetensors   (or best.pt)
"""

import json
import sys

import torch

from sdap_cli.inference.checkpoints import arch_from_state_dict, save_weights
from sdap_cli.method.dbsnl import DBSNl

ck = torch.load(sys.argv[1], map_location="cpu", weights_only=False)
log = torch.load(str(sys.argv[1]).replace("best.pt", "last.pt"), map_location="cpu", weights_only=False)
sd = ck["model"]
net = DBSNl(**arch_from_state_dict(sd))
net.load_state_dict(sd)
summary = {
    "trainer": "scripts/train_default_weights.py (RSG p=5 + cyclic L1, bf16 autocast, Adam, cosine lr 3e-4 -> 1e-5)",
    "data": "noisy only: 8 SIDD-Medium crops (x4 weight), 33 DND crops, 15 CC15 noisy (shared/data)",
    "patch": 120, "batch": 8, "iterations": ck["it"], "iterations_run": log["it"],
    "validation": "5 SIDD validation blocks (p1y2z3/SDAP), uint8 PSNR",
    "val": ck.get("val") or log["log"][-1], "hardware": "2-core AMD EPYC CPU (no GPU)",
}
save_weights(sys.argv[2], net, training=summary, dtype=torch.bfloat16)  # trained under bf16 autocast
print(json.dumps(summary, indent=1))
