"""The floor of `crack scan`: the least a program must do to classify the same windows with the same model.

For each photo: decode it at the reduced size `crack scan` decodes it at (JPEG DCT scaling), then run
ONNX Runtime on as many windows as `crack scan` classifies, in batches of 64, with the same threads.
No cropping, resizing, heatmap, overlay or report: this is the unavoidable work, written as plainly as
possible and importing nothing of crackcli (`benchmarks/scan_vs_floor.py` times it against `crack scan`
as whole processes).

    python benchmarks/scan_floor.py MODEL --windows 3286 --size 96 --reduce 2 [--device cuda] PHOTO...

On CUDA every batch is run at the full batch size (as `crack scan` pads its short batches there, so
cuDNN's exhaustive algorithm search runs once).
"""

from __future__ import annotations

import argparse
import os

import cv2
import numpy as np
import onnxruntime as ort

REDUCED = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("photos", nargs="+")
    parser.add_argument("--windows", type=int, required=True, help="windows per photo")
    parser.add_argument("--size", type=int, required=True, help="model input side")
    parser.add_argument("--reduce", type=int, default=1, choices=sorted(REDUCED))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = parser.parse_args()

    options = ort.SessionOptions()
    options.intra_op_num_threads = len(os.sched_getaffinity(0))
    options.inter_op_num_threads = 1
    cuda = args.device == "cuda"
    providers: list = ["CPUExecutionProvider"]
    if cuda:
        providers.insert(0, ("CUDAExecutionProvider", {"cudnn_conv_algo_search": "EXHAUSTIVE"}))
    session = ort.InferenceSession(args.model, options, providers=providers)
    if cuda and session.get_providers()[0] != "CUDAExecutionProvider":
        raise SystemExit("the CUDA provider did not start: see `crack info`")
    name = session.get_inputs()[0].name
    outputs = [o.name for o in session.get_outputs() if o.name == "probs"] or None  # as crack scan asks
    batch = np.zeros((args.batch, 3, args.size, args.size), np.uint8)
    for photo in args.photos:
        pixels = cv2.imdecode(np.fromfile(photo, np.uint8), REDUCED[args.reduce])
        assert pixels is not None, photo
        for start in range(0, args.windows, args.batch):
            session.run(outputs, {name: batch if cuda else batch[: min(args.batch, args.windows - start)]})


if __name__ == "__main__":
    main()
