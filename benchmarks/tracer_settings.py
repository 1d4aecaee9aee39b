"""Set how a tracer file's probabilities become crack pixels, without touching its weights.

    python benchmarks/tracer_settings.py models/crack-tracer.onnx [--threshold 0.6] [--min-length 70]
        [--width-threshold 0.8] [--max-fill 0.25] [--why "chosen on the selection sets, docs/BENCHMARKS.md"]

The file's metadata says from which probability a pixel is crack (``threshold``), the shortest crack
kept (``min_length_px``), the largest share of its bounding square a crack may fill (``max_fill``) and
from which probability widths start (``width_threshold``); these were
chosen after training, on the selection sets, so they can change while the weights stay.  The file is
rewritten in place (atomically), its training summary keeps a line saying what changed and why, and it
is checked as `crack scan` checks it before the new file is written.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from crackcli.errors import CrackError
from crackcli.io.atomic import atomic_write_bytes
from crackcli.model.onnx_files import set_properties
from crackcli.model.tracer_files import load_tracer_checked, tracer_properties


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tracer", type=Path)
    parser.add_argument("--threshold", type=float)
    parser.add_argument("--min-length", type=int)
    parser.add_argument("--width-threshold", type=float)
    parser.add_argument("--max-fill", type=float, help="0-1; 'inf': no limit")
    parser.add_argument("--why", default="", help="recorded in the file's training summary")
    args = parser.parse_args()

    try:
        model, info = load_tracer_checked(args.tracer)
    except CrackError as exc:
        raise SystemExit(str(exc)) from None
    threshold = info.threshold if args.threshold is None else args.threshold
    min_length = info.min_length_px if args.min_length is None else args.min_length
    width_threshold = info.width_threshold if args.width_threshold is None else args.width_threshold
    max_fill = info.max_fill if args.max_fill is None else args.max_fill
    training = info.training()
    change = f"threshold {threshold:g}, width_threshold {width_threshold:g}, min_length_px {min_length}"
    change += f", max_fill {max_fill:g}"
    training["settings"] = f"{change}{': ' + args.why if args.why else ''}"
    set_properties(
        model,
        tracer_properties(
            threshold, min_length, info.size_multiple, info.context_px, training, width_threshold, max_fill
        ),
    )
    data = model.SerializeToString()
    try:  # the new file passes the scan's checks before it replaces the old
        load_tracer_checked(args.tracer, data)
    except CrackError as exc:
        raise SystemExit(f"{exc} (nothing written)") from None
    atomic_write_bytes(args.tracer, data)
    print(f"{args.tracer}: {change}; training summary {json.dumps(training, sort_keys=True)}")


if __name__ == "__main__":
    main()
