"""Wall time of `crack scan` on one 7000×6000 JPEG: 224 px windows at stride 112 (50% overlap).

End to end through ``ScanJob`` (decode, inference, heatmap, overlay, report written), for a stand-in
model of a given backbone and input size (random weights: speed does not depend on them), in patch and
dense mode, fp32 and int8.  In the same run, a naive loop (each window cropped, resized to 224 and sent
alone through torch-eager ResNet50) is timed on a sample of windows and scaled to the full grid.

    python benchmarks/scan_speed.py [--photo sample_images/images/synth_0100.jpg] [--image-sizes 64,96]
    python benchmarks/scan_speed.py --model models/crack-default.onnx    # a real model file instead
    python benchmarks/scan_speed.py --model MODEL --device cuda --batch 256 --naive-sample 0

Each job runs once untimed first (ONNX Runtime's session, on CUDA cuDNN's algorithm search), then
``--repeats`` times; the best is reported.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from crackcli.data.preprocess import fit_patch
from crackcli.data.tiling import crop
from crackcli.io.images import read_rgb
from crackcli.io.system import usable_cpus
from crackcli.model.backbones import IMAGENET_MEAN, IMAGENET_STD, build_model
from crackcli.model.checkpoint import save_checkpoint
from crackcli.model.export import ExportOptions, export_checkpoint
from crackcli.model.meta import ModelMeta
from crackcli.model.predictors import OnnxPredictor
from crackcli.scan.job import ScanJob
from crackcli.scan.options import ScanOptions
from crackcli.scan.windows import ScanSettings, scan_grid


def stand_in(root: Path, backbone: str, image_size: int, precision: str, calibration: Path | None) -> Path:
    meta = ModelMeta(backbone, ("crack", "no_crack"), "crack", image_size, IMAGENET_MEAN, IMAGENET_STD)
    checkpoint = root / f"{backbone}-{image_size}.pt"
    if not checkpoint.exists():
        save_checkpoint(checkpoint, meta, build_model(backbone, 2))
    return export_checkpoint(
        checkpoint, root / f"{backbone}-{image_size}-{precision}.onnx", ExportOptions(precision, calibrate=calibration)
    ).path


def calibration_folder(root: Path, photo: np.ndarray) -> Path:
    from crackcli.io.images import write_image

    for i in range(16):
        y, x = 224 * (i // 4), 224 * (i % 4)
        write_image(root / "cal" / ("crack" if i % 2 else "no_crack") / f"{i}.png", photo[y : y + 224, x : x + 224])
    return root / "cal"


def time_job(
    model: Path, photo: Path, mode: str, out: Path, repeats: int, device: str, batch: int
) -> tuple[float, dict]:
    predictor = OnnxPredictor(model, device)
    job = ScanJob(predictor, ScanOptions(patch=224, stride=112, mode=mode, batch=batch, force=True), out)
    job.run([(photo, "photo")])  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        job.run([(photo, "photo")])
        best = min(best, time.perf_counter() - start)
    return best, json.loads((out / "photo.json").read_text())


def naive_per_window_s(rgb: np.ndarray, sample: int) -> tuple[float, int]:
    model = build_model("resnet50", 2).eval()
    windows = scan_grid(rgb.shape[1], rgb.shape[0], ScanSettings(224, 112))
    picks = windows[:: max(1, len(windows) // sample)][:sample]
    with torch.inference_mode():
        model(torch.zeros(1, 3, 224, 224))
        start = time.perf_counter()
        for window in picks:
            model(torch.from_numpy(fit_patch(crop(rgb, window), 224)).permute(2, 0, 1)[None])
    return (time.perf_counter() - start) / len(picks), len(windows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", type=Path, default=Path("sample_images/images/synth_0100.jpg"))
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--image-sizes", default="64,96")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--naive-sample", type=int, default=24)
    parser.add_argument("--model", type=Path, default=None, help="time this ONNX file instead of stand-ins")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()

    rgb = read_rgb(args.photo)
    print(
        f"photo {args.photo} {rgb.shape[1]}×{rgb.shape[0]}, {usable_cpus()} CPUs, torch threads "
        f"{torch.get_num_threads()}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rows = []
        if args.model is not None:
            models = [(args.model.name, args.model)]
        else:
            calibration = calibration_folder(root, rgb)  # int8 stand-ins only
            models = [
                (
                    f"{args.backbone} input {size:>3} {precision}",
                    stand_in(root, args.backbone, size, precision, calibration if precision == "int8" else None),
                )
                for size in (int(s) for s in args.image_sizes.split(","))
                for precision in ("fp32", "int8")
            ]
        for label, model in models:
            for mode in ("patch", "dense"):
                seconds, report = time_job(model, args.photo, mode, root / "out", args.repeats, args.device, args.batch)
                timing = report["timing_s"]
                rows.append((label, mode, seconds))
                print(
                    f"{label} {mode:>5}: {seconds:6.2f} s end to end (decode {timing['decode']:.2f}, "
                    f"inference {timing['inference']:.2f}, render {timing['render']:.2f}), "
                    f"{report['summary']['windows']} windows"
                )
                print(f"  runtime: {report['runtime']}")
        if not args.naive_sample:
            return
        per_window, windows = naive_per_window_s(rgb, args.naive_sample)
        naive = per_window * windows
        print(
            f"naive torch-eager ResNet50, one window at a time: {per_window * 1000:.0f} ms/window × {windows} = "
            f"{naive:.0f} s (sampled {args.naive_sample})"
        )
        for label, mode, seconds in rows:
            print(f"  speed-up of {label} {mode} over naive: {naive / seconds:.0f}×")


if __name__ == "__main__":
    main()
