"""Window-level precision / recall / F of a model scanning real photos with crack masks.

Each window of the scan grid is labelled from the mask: crack if its crack-pixel fraction is at least
``--crack-min`` (0.005), no crack if it has no crack pixel, otherwise ignored (too little to call).
The datasets (``../shared/data/deepcrack`` and ``crackforest``: images/ and masks/ named alike) are for
evaluation only.

    python benchmarks/scan_eval.py MODEL [--data ../shared/data/deepcrack ../shared/data/crackforest]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from crackcli.imageio import is_image_path, read_mask, read_rgb
from crackcli.inference import load_predictor
from crackcli.scan import ScanSettings, choose_mode, scan_image
from crackcli.tiling import crop


def evaluate(model: Path, root: Path, settings: ScanSettings, crack_min: float, threshold: float) -> dict[str, float]:
    predictor = load_predictor(model, "cpu")
    mode = choose_mode(predictor, settings)
    crack = predictor.meta.classes.index(predictor.meta.crack_class)
    tp = fp = fn = tn = ignored = 0
    started = time.perf_counter()
    photos = sorted(p for p in (root / "images").iterdir() if is_image_path(p))
    for photo in photos:
        masks = [m for m in (root / "masks").glob(f"{photo.stem}.*") if is_image_path(m)]
        if not masks:
            continue
        rgb, mask = read_rgb(photo), read_mask(masks[0])
        scores = scan_image(predictor, rgb, (rgb.shape[1], rgb.shape[0]), settings, mode)
        for window, probs in zip(scores.windows, scores.probs):
            fraction = crop(mask.astype(np.uint8), window).mean()
            if 0 < fraction < crack_min:
                ignored += 1
                continue
            truth, said = fraction >= crack_min, probs[crack] >= threshold
            tp += truth and said
            fp += said and not truth
            fn += truth and not said
            tn += not truth and not said
    precision = tp / max(1, tp + fp)
    recall = tp / max(1, tp + fn)
    return {
        "photos": len(photos), "windows": tp + fp + fn + tn, "crack_windows": tp + fn, "ignored": ignored,
        "precision": precision, "recall": recall, "f1": 2 * precision * recall / max(1e-12, precision + recall),
        "seconds": time.perf_counter() - started, "mode": mode,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--data", type=Path, nargs="+", default=[Path("../shared/data/deepcrack"), Path("../shared/data/crackforest")])
    parser.add_argument("--patch", type=int, default=None, help="window side (default: the model's patch size)")
    parser.add_argument("--stride", type=int, default=None, help="default: half a window")
    parser.add_argument("--mode", default="patch")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--crack-min", type=float, default=0.005)
    args = parser.parse_args()
    patch = args.patch or load_predictor(args.model, "cpu").meta.patch_size
    settings = ScanSettings(patch, args.stride or patch // 2, mode=args.mode)
    print(f"model {args.model}, {patch} px windows every {settings.stride} px, {args.mode} mode, threshold {args.threshold}")
    for root in args.data:
        r = evaluate(args.model, root, settings, args.crack_min, args.threshold)
        print(
            f"{root.name}: {r['photos']} photos, {r['windows']} windows ({r['crack_windows']} crack, {r['ignored']} ignored): "
            f"precision {r['precision']:.3f} recall {r['recall']:.3f} F {r['f1']:.3f} ({r['seconds']:.0f} s)"
        )


if __name__ == "__main__":
    main()
