#!/usr/bin/env bash
# Rebuild the shipped default model from ../shared/data/ccic: train, strip the training state, export.
#   bash scripts/default_model.sh [OUT]   (default OUT: runs/default-model; copy the two files to models/ yourself)
# About 22 minutes on a 2-core CPU (24 epochs of ~55 s). The epoch is chosen on ccic/val; the temperature
# is 0.8, fitted on the field selection sets (the one fitted on ccic/val made field photos' scores sure
# and wrong), as the model card says.
set -euo pipefail
bin=${BIN:-.venv/bin}
out=${1:-runs/default-model}
data=${CCIC:-../shared/data/ccic}
mkdir -p "$out"
"$bin/crack" train "$data" --backbone shufflenet_v2_x0_5 --weights none --image-size 96 --epochs 24 \
  --milestones 16,21 --augment field --synthetic-cracks 0.15 --synthetic-stains 0.15 --ema 0.998 --min-filter 3 --workers 1 \
  --seed 0 --project "$out" --name run --quiet
run=$(ls -d "$out"/run* | sort -V | tail -1)
"$bin/python" -c 'import sys; from pathlib import Path; from crackcli.model.checkpoint import save_release; save_release(Path(sys.argv[1]), Path(sys.argv[2]), temperature=0.8)' \
  "$run/best.pt" "$out/crack-default.pt"
"$bin/crack" export "$out/crack-default.pt" --out "$out/crack-default.onnx" --force
"$bin/crack" eval "$out/crack-default.onnx" "$data/val"
