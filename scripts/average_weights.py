"""Average the weights of several checkpoints of one network (a "model soup" / SWA of snapshots).

Usage: python scripts/average_weights.py OUT.safetensors IN1.safetensors IN2.safetensors [...]

Every input must be the same network (kind and architecture); the output holds the element-wise mean
w = (1/N) sum_i w_i, computed in float32 and stored in bfloat16 (what bf16-trained networks use), with
the sources and their SHA-256 in its ``training`` metadata. Checkpoints of one run (or of runs that
started from the same weights) lie in one basin, where the mean of their weights is itself a good
network; unrelated networks give noise.
"""

import json
import sys
from pathlib import Path

import torch

from sdap_cli.inference.checkpoints import load_weights, save_weights
from sdap_cli.training.distill import file_hash


def main(out: str, sources: list[str]) -> None:
    if len(sources) < 2:
        raise SystemExit("give OUT and at least two input weights files")
    loaded = [load_weights(s) for s in sources]
    first = loaded[0].model
    for s, lw in zip(sources, loaded):
        if lw.model.kind != first.kind or lw.model.arch != first.arch:
            raise SystemExit(f"{s}: {lw.model.kind} {lw.model.arch} differs from {sources[0]}'s {first.arch}")
    sds = [lw.model.state_dict() for lw in loaded]
    first.load_state_dict({k: torch.stack([sd[k].float() for sd in sds]).mean(0) for k in sds[0]})
    meta = {"averaged": [{"file": Path(s).name, "sha256": file_hash(s),
                          "iterations": lw.metadata.get("training", {}).get("iterations")}
                         for s, lw in zip(sources, loaded)]}
    save_weights(out, first, training=meta, input_scale=loaded[0].input_scale, dtype=torch.bfloat16)
    print(json.dumps(meta, indent=1))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
