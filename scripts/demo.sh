#!/usr/bin/env bash
# `make demo`: the main job as far as it exists today, run from the freshly installed venv.
set -euo pipefail
bin=${1:-.venv/bin}
out=runs/demo/patches
echo "== crack $("$bin/crack" --version | cut -d' ' -f2)"
"$bin/crack" info
echo
echo "== crack prepare: sample_images/ cut into 224×224 patches, labelled by their crack masks, split 3:1:1 by photo"
SECONDS=0
"$bin/crack" prepare sample_images/images --labels mask --masks sample_images/masks --split 3:1:1 --out "$out"
echo "== done in ${SECONDS} s: patches and manifest.csv are in $out"
