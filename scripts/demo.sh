#!/usr/bin/env bash
# `make demo`: the main job as far as it exists today, run from the freshly installed venv.
set -euo pipefail
bin=${1:-.venv/bin}
echo "== crack $("$bin/crack" --version | cut -d' ' -f2): environment"
"$bin/crack" info
