"""Bootstrap training of the shipped default weights (narrow DBSNl 48/5), run before `sdap train` existed.

Usage: python scripts/train_default_weights.py REPO_ROOT DATA_ROOT OUT_DIR TOTAL_ITERATIONS
  e.g. python scripts/train_default_weights.py . ../shared/data runs/default 10000

The shipped weights came from: steps 1-5000 with TOTAL_ITERATIONS 10000, then (killed and restarted
with the same OUT_DIR) TOTAL_ITERATIONS 7300, which shortened the cosine schedule so that it ended in
the session's time: the learning rate stepped from 1.55e-4 down to 7.5e-5 at step 5001 and reached 1e-5
at 7300.
Resumable: re-running with the same OUT_DIR continues from OUT_DIR/last.pt. Uses sdap_cli.core
(DBSNl, sdap_loss = RSG p=5 + cyclic L1, PD-2/E validation). Data: noisy images only: the 8 SIDD
crops (listed 4 times, so sampled 4x as often), 33 DND crops and the 15 CC15 noisy images; validation
on the 5 SIDD validation blocks. Export the best checkpoint with scripts/export_weights.py.
"""
# bootstrap training of default weights (narrow DBSNl), resumable; uses sdap_cli.core
import glob
import json
import math
import os
import sys
import time

import cv2
import numpy as np
import torch

sys.path.insert(0, sys.argv[1])
from sdap_cli.method.dbsnl import DBSNl
from sdap_cli.method.pd import pd_down, pd_up
from sdap_cli.training.trainer import sdap_loss

torch.set_num_threads(2)
D = sys.argv[2]; OUT = sys.argv[3]; os.makedirs(OUT, exist_ok=True)
base_ch, nm, bs, ps, lr, total = 48, 5, 8, 120, 3e-4, int(sys.argv[4])
def rd(p): return cv2.cvtColor(cv2.imread(p, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
sidd = sorted(glob.glob(D + "/sidd_medium_crops_yilmazdoga/Noisy_Images/*.png"))
dnd = sorted(glob.glob(D + "/dnd_patches_cbdnet/*.png"))
cc = sorted(glob.glob(D + "/nam_cc15_mcwnnm/*/*_real.png"))
imgs = [rd(p) for p in sidd] * 4 + [rd(p) for p in dnd] + [rd(p) for p in cc]
print(len(sidd), len(dnd), len(cc), len(imgs), flush=True)
val_n = [rd(p) for p in sorted(glob.glob(D + "/sidd_val_blocks/p1y2z3_SDAP/SIDD_noisy/*.png"))]
val_c = [rd(p) for p in sorted(glob.glob(D + "/sidd_val_blocks/p1y2z3_SDAP/SIDD_clean/*.png"))]
torch.manual_seed(0); rng = np.random.default_rng(0)
model = DBSNl(base_ch=base_ch, num_module=nm).to(memory_format=torch.channels_last)
opt = torch.optim.Adam(model.parameters(), lr=lr)
it0 = 0; best = -1; log = []
ck = OUT + "/last.pt"
if os.path.exists(ck):
    s = torch.load(ck, weights_only=False)
    model.load_state_dict(s["model"]); opt.load_state_dict(s["opt"]); it0 = s["it"]; best = s["best"]; log = s["log"]
    rng = s["rng"]; torch.set_rng_state(s["trng"])
def batch():
    out = np.empty((bs, ps, ps, 3), np.uint8)
    for i in range(bs):
        im = imgs[rng.integers(len(imgs))]
        y = rng.integers(im.shape[0] - ps + 1); x = rng.integers(im.shape[1] - ps + 1)
        c = im[y:y+ps, x:x+ps]
        if rng.random() < .5: c = c[:, ::-1]
        if rng.random() < .5: c = c[::-1]
        if rng.random() < .5: c = c.transpose(1, 0, 2)
        out[i] = c
    return torch.from_numpy(out).permute(0, 3, 1, 2).float() / 255
def psnr(a, b): return 10 * math.log10(255**2 / np.mean((a.astype(np.float64) - b) ** 2))
@torch.inference_mode()
def validate():
    model.eval(); r = {"pd2": [], "e": []}
    for n, c in zip(val_n, val_c):
        x = torch.from_numpy(n).permute(2, 0, 1)[None].float() / 255
        with torch.autocast("cpu", torch.bfloat16):
            o = pd_up(model(pd_down(x, 2)), 2).float()
            e = model(o).float()
        for k, v in (("pd2", o), ("e", e)):
            u = (v.clamp(0, 1)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            r[k].append(psnr(u, c))
    model.train(); return {k: float(np.mean(v)) for k, v in r.items()}
t0 = time.time(); tl = 0
for it in range(it0 + 1, total + 1):
    cur = 1e-5 + 0.5 * (lr - 1e-5) * (1 + math.cos(math.pi * it / total))
    for g in opt.param_groups: g["lr"] = cur
    loss = sdap_loss(model, batch(), 5, precision="bf16")
    opt.zero_grad(set_to_none=True); loss.backward(); opt.step(); tl += loss.item()
    if it % 250 == 0 or it == total:
        v = validate(); el = time.time() - t0
        log.append({"it": it, "loss": tl / 250, "time": el, **v}); tl = 0
        score = max(v.values())
        if score > best:
            best = score; torch.save({"model": model.state_dict(), "it": it, "val": v}, OUT + "/best.pt")
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "it": it, "best": best, "log": log,
                    "rng": rng, "trng": torch.get_rng_state()}, ck + ".tmp"); os.replace(ck + ".tmp", ck)
        print(json.dumps(log[-1]), flush=True)
