"""How a model does on real field photos it never trained on: the figures that decide the default model.

Per photo set with crack masks under ``--data`` (deepcrack, crackforest, uav75_dev, pavement_crops),
at the scan defaults (the model's window every half window) and at stride 224 (windows that do not
overlap): window precision / recall / F, the share of joint-only windows called crack (sets with a
``joints/`` folder), the median crack score of crack and of clean windows and the expected calibration
error (10 equal-width bins of the crack score).  Then the macro F on ``ccic/val`` and the time of
``crack scan`` on one 7000×6000 photo (whole process, median).  Windows are labelled as in
``scan_eval.py``: crack at ≥ ``--crack-min`` of crack pixels, clean at none, ignored in between; a
joint-only window is clean with ≥ ``--crack-min`` of joint pixels.

    python benchmarks/field_eval.py MODEL [--data ../shared/data] [--json figures.json] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scan_eval import figures, window_scores

from crackcli.model.predictors import load_predictor
from crackcli.scan.straight_lines import LineCheck
from crackcli.scan.windows import ScanSettings
from crackcli.train.evaluate import evaluate_folder, index_eval_folder

SETS = ("deepcrack", "crackforest", "uav75_dev", "pavement_crops")
TARGETS = "F ≥ 0.85 per set at stride 224; joints ≤ 5%; ccic/val F ≥ 0.997; medians ≥ 0.9 / ≤ 0.1; ECE ≤ 0.05"


def calibration_error(truth: np.ndarray, scores: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error of crack scores against crack truth: the window-weighted mean gap
    between the mean score and the crack share in equal-width score bins."""
    which = np.minimum((scores * bins).astype(int), bins - 1)
    gap = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            gap += inside.sum() * abs(scores[inside].mean() - truth[inside].mean())
    return gap / max(1, len(scores))


def set_figures(
    fractions: np.ndarray, scores: np.ndarray, crack_min: float, threshold: float
) -> dict[str, float | int | None]:
    """Window figures of one set; ``fractions`` is (windows,) crack fractions or (windows, 2) with joints."""
    cracked = fractions if fractions.ndim == 1 else fractions[:, 0]
    out: dict[str, float | int | None] = dict(figures(cracked, scores, crack_min, threshold))
    kept = (cracked == 0) | (cracked >= crack_min)
    truth = cracked >= crack_min
    out["median_crack_score"] = float(np.median(scores[truth])) if truth.any() else None
    out["median_clean_score"] = float(np.median(scores[cracked == 0])) if (cracked == 0).any() else None
    out["ece"] = calibration_error(truth[kept].astype(float), scores[kept])
    if fractions.ndim == 2:
        joint_only = (cracked == 0) & (fractions[:, 1] >= crack_min)
        out["joint_windows"] = int(joint_only.sum())
        out["joints_called_crack"] = float((scores[joint_only] >= threshold).mean()) if joint_only.any() else None
    return out


def scan_seconds(model: Path, photo: Path, runs: int) -> float:
    """Median seconds of a whole ``crack scan PHOTO`` process (after one warm-up run)."""
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "crackcli", "scan", str(photo), "--model", str(model)]
        command += ["--out", tmp, "--force", "--quiet"]
        times = []
        for _ in range(runs + 1):
            start = time.perf_counter()
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
            times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def show(value: float | int | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--crack-min", type=float, default=0.005)
    parser.add_argument("--photo", type=Path, default=Path("sample_images/images/synth_0100.jpg"))
    parser.add_argument("--runs", type=int, default=5, help="whole-process scans timed (0: no timing)")
    parser.add_argument("--no-ccic", action="store_true", help="skip the ccic/val evaluation")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument("--no-line-check", action="store_true", help="score windows as scans with --no-line-check do")
    args = parser.parse_args()

    predictor = load_predictor(args.model, "cpu")
    meta = predictor.meta
    strides = {"defaults": None, "stride 224": 224}
    check = None if args.no_line_check else LineCheck(meta.classes.index(meta.crack_class), args.threshold)
    print(f"model {args.model}: {meta.backbone}, {meta.image_size} px input, {meta.patch_size} px windows")
    print(f"threshold {args.threshold}; line check {'off' if check is None else 'on'}; targets: {TARGETS}")
    print(
        f"{'set':<15} {'windows':<9} {'windows':>8} {'crack':>6} {'P':>6} {'R':>6} {'F':>6} {'joints':>7} "
        f"{'med crack':>9} {'med clean':>9} {'ECE':>6}"
    )
    results: dict[str, dict] = {
        "model": str(args.model),
        "threshold": args.threshold,
        "line_check": check is not None,
        "sets": {},
    }
    for name in args.sets.split(","):
        root = args.data / name
        extra = "joints" if (root / "joints").is_dir() else None
        for label, stride in strides.items():
            settings = ScanSettings.for_model(meta, stride=stride, line_check=check)
            fractions, scores, _ = window_scores(predictor, root, settings, extra)
            r = set_figures(fractions, scores, args.crack_min, args.threshold)
            results["sets"].setdefault(name, {})[label] = r
            print(
                f"{name:<15} {label:<9} {r['windows']:>8} {r['crack_windows']:>6} {show(r['precision']):>6} "
                f"{show(r['recall']):>6} {show(r['f1']):>6} {show(r.get('joints_called_crack')):>7} "
                f"{show(r['median_crack_score']):>9} {show(r['median_clean_score']):>9} {show(r['ece']):>6}"
            )
    if not args.no_ccic:
        evaluation = evaluate_folder(predictor, index_eval_folder(args.data / "ccic" / "val", meta.classes))
        results["ccic_val_macro_f1"] = evaluation.report["f1"]
        print(f"ccic/val macro F {evaluation.report['f1']:.4f}")
    if args.runs and args.model.suffix == ".onnx":
        seconds = scan_seconds(args.model, args.photo, args.runs)
        results["scan_seconds"] = seconds
        print(f"crack scan {args.photo.name} (whole process, median of {args.runs}): {seconds:.2f} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
