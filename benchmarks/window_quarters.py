"""Each window also read as its quarters: does a second, finer reading find the thin cracks of wide views?

A 224 px window shrunk to 96 px leaves a 1-2 px crack under a pixel wide.  Here every window of the
stride-224 grid is also scored through the windows of half its side (every quarter window, the line
check on at both scales), and its crack score is combined with theirs by one of several rules.  Window
labels and figures as ``field_eval.py``; sets with a ``joints/`` folder also give the share of
joint-only windows called crack.

    python benchmarks/window_quarters.py MODEL [--sets uav75_dev,pavement_crops] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
from field_eval import set_figures, show
from scan_eval import mask_of

from crackcli.data.tiling import crop
from crackcli.io.images import is_image_path, read_rgb
from crackcli.model.predictors import load_predictor
from crackcli.scan.straight_lines import LineCheck
from crackcli.scan.windows import ScanSettings, scan_image

# How a window's own score w and its quarters' scores q (highest first) give its crack score.
RULES: dict[str, Callable[[float, np.ndarray], float]] = {
    "window alone": lambda w, q: w,
    "highest quarter": lambda w, q: max(w, q[0]),
    "second quarter": lambda w, q: max(w, q[1]),
    "highest quarter where the window scores >= 0.3": lambda w, q: max(w, q[0]) if w >= 0.3 else w,
    "mean of window and highest quarter": lambda w, q: (w + q[0]) / 2,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--sets", default="uav75_dev,pavement_crops")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--crack-min", type=float, default=0.005)
    args = parser.parse_args()

    predictor = load_predictor(args.model, "cpu")
    meta = predictor.meta
    crack = meta.classes.index(meta.crack_class)
    check = LineCheck(crack, args.threshold)
    whole = ScanSettings.for_model(meta, stride=meta.patch_size, line_check=check)
    quarters = ScanSettings.for_model(meta, patch=meta.patch_size // 2, line_check=check)
    print(f"model {args.model}: {meta.patch_size} px windows every {meta.patch_size} px, and their quarters")
    for name in args.sets.split(","):
        root = args.data / name
        fractions, scores = [], []
        for photo in sorted(p for p in (root / "images").iterdir() if is_image_path(p)):
            rgb = read_rgb(photo)
            mask = mask_of(root, "masks", photo.stem)
            if mask is None:
                continue
            joints = mask_of(root, "joints", photo.stem)
            size = (rgb.shape[1], rgb.shape[0])
            own = scan_image(predictor, rgb, size, whole, "patch")
            parts = scan_image(predictor, rgb, size, quarters, "patch")
            boxes = np.array([w.box for w in parts.windows])
            for window, score in zip(own.windows, own.probs[:, crack].tolist(), strict=True):
                x0, y0, x1, y1 = window.box
                inside = (boxes[:, 0] >= x0) & (boxes[:, 1] >= y0) & (boxes[:, 2] <= x1) & (boxes[:, 3] <= y1)
                q = np.sort(parts.probs[inside, crack])[::-1] if inside.sum() >= 2 else np.array([score, score])
                fractions.append((crop(mask, window).mean(), 0.0 if joints is None else crop(joints, window).mean()))
                scores.append([rule(score, q) for rule in RULES.values()])
        table = np.array(fractions)
        labelled = table if (root / "joints").is_dir() else table[:, 0]
        for column, rule in enumerate(RULES):
            r = set_figures(labelled, np.array(scores)[:, column], args.crack_min, args.threshold)
            print(
                f"{name:<15} {rule:<48} P {show(r['precision'])} R {show(r['recall'])} F {show(r['f1'])} "
                f"joints {show(r.get('joints_called_crack'))} median crack / clean "
                f"{show(r['median_crack_score'])} / {show(r['median_clean_score'])} ECE {show(r['ece'])}"
            )


if __name__ == "__main__":
    main()
