"""Time a tracer file's network alone in ONNX Runtime: milliseconds per megapixel of grey crop.

    python benchmarks/tracer_speed.py TRACER.onnx [MORE.onnx ...] [--side 1024] [--repeats 4]

Each file runs on random uint8 crops of ``--side``² pixels (one crop at a time, as `crack scan --trace`
runs its tiles, but whole: no tiling), after one warm-up run; the median of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from crackcli.io.system import usable_cpus
from crackcli.model import tracers
from crackcli.model.tracers import OnnxTracer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tracers", type=Path, nargs="+")
    parser.add_argument("--side", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=4)
    args = parser.parse_args()
    tracers.TILE_PX = args.side  # one run per crop: the network's own time
    gray = np.random.default_rng(0).integers(0, 256, (args.side, args.side), dtype=np.uint8)
    megapixels = args.side**2 / 1e6
    for path in args.tracers:
        tracer = OnnxTracer(path, "cpu")
        tracer.probabilities(gray)
        times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            tracer.probabilities(gray)
            times.append(time.perf_counter() - started)
        architecture = tracer.info.training().get("architecture", "?")
        print(
            f"{path} ({architecture}): {1000 * statistics.median(times) / megapixels:.0f} ms/MP "
            f"({args.side}² crops, {usable_cpus()} threads, median of {args.repeats})"
        )


if __name__ == "__main__":
    main()
