#!/usr/bin/env bash
# `make demo`: scan a sample photo with the shipped default model, from the freshly installed venv.
set -euo pipefail
bin=${1:-.venv/bin}
photo=sample_images/images/synth_0001.jpg
out=runs/demo
echo "== crack $("$bin/crack" --version | cut -d' ' -f2), default model: $("$bin/crack" info --json | "$bin/python" -c 'import json,sys; print(json.load(sys.stdin)["default_model"])')"
echo "== crack scan $photo  (--force: a re-run of the demo replaces its own outputs in $out)"
SECONDS=0
"$bin/crack" scan "$photo" --out "$out" --force
report="$out/$(basename "${photo%.*}").json"
"$bin/python" - "$report" <<'PY'
import json, sys

report = json.load(open(sys.argv[1]))
summary = report["summary"]
print(f"== {summary['crack_windows']} of {summary['windows']} windows ({summary['crack_fraction']:.0%}) look cracked, "
      f"{len(summary['regions'])} crack regions, highest crack probability {summary['max_crack_prob']:.2f}")
for name, path in report["outputs"].items():
    print(f"   {name}: {path}")
PY
echo "== done in ${SECONDS} s; try: $bin/crack scan YOUR_PHOTOS/ --out runs/scan/mine"
