#!/usr/bin/env bash
# Prepare what a lent GPU machine needs for scripts/device_train.sh (run here, in the repo root).
#
# The GPU machine has torch, typer, rich, imageio, opencv, safetensors, pyyaml and scikit-image but no
# pydantic, no network, and not ../shared. This copies the noisy training images and the 5 SIDD
# validation blocks into .device/data and the pydantic wheels (Python 3.12, manylinux) into
# .device/whl; .device/ is ignored through .git/info/exclude, so it never lands in git. Then, with
# the device tool:   run(command="bash scripts/device_train.sh", carry=[".device"], timeout_s=600)
set -euo pipefail
DATA=${1:-../shared/data}
mkdir -p .device/data .device/whl
grep -qx '/.device/' .git/info/exclude 2>/dev/null || echo '/.device/' >> .git/info/exclude
cp -r "$DATA/sidd_medium_crops_yilmazdoga/Noisy_Images" .device/data/sidd_crops
cp -r "$DATA/dnd_patches_cbdnet" .device/data/dnd
mkdir -p .device/data/cc15 && cp "$DATA"/nam_cc15_mcwnnm/*/*_real.png .device/data/cc15/
cp -r "$DATA/sidd_val_blocks/p1y2z3_SDAP" .device/data/val
for pkg in pydantic pydantic-core annotated-types typing-inspection; do
    ver=$(python3 -m pip show "$pkg" | sed -n 's/^Version: //p')
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .device/whl "$pkg==$ver"
done
du -sh .device
