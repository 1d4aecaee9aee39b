"""`crack scan` against its floor, as whole processes: one large photo, and a folder of them.

The floor (`benchmarks/scan_floor.py`) decodes each photo at the size scan decodes it and runs ONNX
Runtime on the same number of windows with the same model and threads: the unavoidable work.  Both
run as the command a user would type, alternately (floor, scan, floor, scan …) after a warm-up of
each, so a drifting machine affects both alike; the figures are medians, the ratio is the median of
the per-pair ratios.  Then, in process, the CPU side of the scan alone: the same job with a predictor
that costs nothing, which is what a GPU would leave, with one and more photos per stage (``--workers``),
without the line check (whose work follows the real model's decisions).

    python benchmarks/scan_vs_floor.py [--model models/crack-default.onnx]
        [--photo sample_images/images/synth_0100.jpg] [--folder 12] [--runs 5] [--device cuda --batch 256]
        [--no-line-check]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from crackcli.io.images import read_header
from crackcli.model.predictors import OnnxPredictor
from crackcli.scan.job import ScanJob
from crackcli.scan.options import ScanOptions
from crackcli.scan.windows import ScanSettings, decode_reduction, scan_grid

FLOOR = Path(__file__).with_name("scan_floor.py")


class FreePredictor:
    """The model's metadata with inference that costs nothing: what is left is the scan's CPU side."""

    def __init__(self, real: OnnxPredictor) -> None:
        self.meta, self.source, self.dense, self.scan_mode = real.meta, real.source, False, "patch"
        self.on_gpu = True  # what a GPU would leave: the CPU side
        self.fallback = None

    def predict(self, batch: np.ndarray) -> np.ndarray:
        probs = np.zeros((len(batch), len(self.meta.classes)), np.float32)
        probs[:, 0] = 1.0
        return probs

    def logit_map(self, image: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def describe(self) -> str:
        return "free predictor"

    def ready(self) -> None:
        pass


# As installed for users, with compiled bytecode: a development shell that sets PYTHONDONTWRITEBYTECODE
# would have every run compile crackcli's own modules again (about 50 ms the floor never pays).
AS_INSTALLED = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=AS_INSTALLED)
    return time.perf_counter() - start


def compare(floor: list[str], scan: list[str], runs: int) -> tuple[float, float, float]:
    """Median floor seconds, median scan seconds, median of the per-pair ratios scan / floor."""
    timed(floor), timed(scan)  # warm-up: page cache, first-run costs
    pairs = [(timed(floor), timed(scan)) for _ in range(runs)]
    return (
        statistics.median(f for f, _ in pairs),
        statistics.median(s for _, s in pairs),
        statistics.median(s / f for f, s in pairs),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models/crack-default.onnx"))
    parser.add_argument("--photo", type=Path, default=Path("sample_images/images/synth_0100.jpg"))
    parser.add_argument("--folder", type=int, default=12, help="photos in the folder case (copies of --photo)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="for both the floor and the scan")
    parser.add_argument("--batch", type=int, default=64, help="windows per inference call, both")
    parser.add_argument("--workers", default="1,2", help="photos per stage of the CPU-side runs, comma-separated")
    parser.add_argument("--no-line-check", action="store_true", help="scan as `crack scan --no-line-check` does")
    args = parser.parse_args()

    predictor = OnnxPredictor(args.model, "cpu")
    settings = ScanSettings.for_model(predictor.meta)
    width, height = read_header(args.photo).size
    windows = len(scan_grid(width, height, settings))
    reduce = decode_reduction(predictor, settings)
    print(
        f"model {args.model} ({predictor.meta.backbone}, {predictor.meta.image_size} px input); photo {args.photo} "
        f"{width}×{height}: {windows} windows of {settings.patch} px every {settings.stride} px, "
        f"decoded at 1/{reduce}; "
        f"{len(os.sched_getaffinity(0))} CPUs; medians of {args.runs} whole-process runs"
    )
    floor_args = ["--windows", str(windows), "--size", str(predictor.meta.image_size), "--reduce", str(reduce)]
    floor_args += ["--device", args.device, "--batch", str(args.batch)]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        for index in range(args.folder):
            os.link(args.photo, folder / f"p{index:02d}{args.photo.suffix}")
        photos = sorted(str(p) for p in folder.iterdir())
        cases = {
            "one photo": ([str(args.photo)], [str(args.photo)]),
            f"folder of {args.folder}": (photos, [str(folder)]),
        }
        for name, (floor_inputs, scan_inputs) in cases.items():
            floor = [sys.executable, str(FLOOR), str(args.model), *floor_inputs, *floor_args]
            scan = [sys.executable, "-m", "crackcli", "scan", *scan_inputs, "--model", str(args.model)]
            scan += ["--out", str(Path(tmp) / "out"), "--force", "--quiet", "--device", args.device]
            scan += ["--batch", str(args.batch)] + (["--no-line-check"] if args.no_line_check else [])
            floor_s, scan_s, ratio = compare(floor, scan, args.runs)
            per = len(floor_inputs)
            print(
                f"{name}: floor {floor_s:.2f} s ({floor_s / per:.2f} s/photo), crack scan {scan_s:.2f} s "
                f"({scan_s / per:.2f} s/photo, {per / scan_s:.1f} photos/s) = {ratio:.2f}× floor"
            )

        for workers in (int(w) for w in args.workers.split(",")):
            # Without the line check: with every window called crack it would search the whole photo, while
            # its real share follows the model's decisions (it is in the whole-process figures above).
            options = ScanOptions(force=True, workers=workers, line_check=False)
            job = ScanJob(FreePredictor(predictor), options, Path(tmp) / "free")  # type: ignore[arg-type]
            job.run([(Path(photos[0]), "warm-up")])
            start = time.perf_counter()
            job.run([(Path(p), Path(p).stem) for p in photos])
            per_photo = (time.perf_counter() - start) / len(photos)
            print(
                f"CPU side with a predictor that costs nothing, {workers} photo(s) per stage: "
                f"{per_photo:.2f} s/photo over the folder (pipelined)"
            )


if __name__ == "__main__":
    main()
