"""Window-level precision / recall / F of a model scanning real photos with crack masks.

Each window of the scan grid is labelled from the mask: crack if its crack-pixel fraction is at least
``--crack-min`` (0.005), no crack if it has no crack pixel, otherwise ignored (too little to call).
The datasets (``../shared/data/deepcrack`` and ``crackforest``: images/ and masks/ named alike) are for
evaluation only.

    python benchmarks/scan_eval.py MODEL [--data ../shared/data/deepcrack ../shared/data/crackforest]
        [--modes patch,dense]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from crackcli.data.tiling import crop
from crackcli.io.images import is_image_path, read_mask, read_rgb
from crackcli.model.predictors import Predictor, load_predictor
from crackcli.scan.windows import ScanSettings, choose_mode, scan_image


def window_scores(
    predictor: Predictor, root: Path, settings: ScanSettings, extra_masks: str | None = None
) -> tuple[np.ndarray, np.ndarray, int]:
    """Crack-pixel fraction and crack probability of every window of every photo under ``root``.

    With ``extra_masks`` (a folder beside ``masks/``, e.g. ``joints``), the fractions come back as an
    (windows, 2) array: crack fraction, then that folder's fraction (0 where a photo has no such mask).
    """
    mode = choose_mode(predictor, settings)
    crack = predictor.meta.classes.index(predictor.meta.crack_class)
    fractions, probs = [], []
    photos = sorted(p for p in (root / "images").iterdir() if is_image_path(p))
    for photo in photos:
        mask = mask_of(root, "masks", photo.stem)
        if mask is None:
            continue
        rgb = read_rgb(photo)
        scores = scan_image(predictor, rgb, (rgb.shape[1], rgb.shape[0]), settings, mode)
        cracked = [crop(mask, window).mean() for window in scores.windows]
        if extra_masks is None:
            fractions += cracked
        else:
            other = mask_of(root, extra_masks, photo.stem)
            other = np.zeros_like(mask) if other is None else other
            fractions += [(c, crop(other, window).mean()) for c, window in zip(cracked, scores.windows)]
        probs.append(scores.probs[:, crack])
    return np.asarray(fractions), np.concatenate(probs), len(photos)


def mask_of(root: Path, folder: str, stem: str) -> np.ndarray | None:
    """The mask (uint8, 0/1) of photo ``stem`` in ``root/folder``, if there is one."""
    found = [m for m in (root / folder).glob(f"{stem}.*") if is_image_path(m)] if (root / folder).is_dir() else []
    return read_mask(found[0]).astype(np.uint8) if found else None


def figures(fractions: np.ndarray, probs: np.ndarray, crack_min: float, threshold: float) -> dict[str, float]:
    """Window-level precision / recall / F; windows with a little crack (below ``crack_min``) are ignored."""
    kept = (fractions == 0) | (fractions >= crack_min)
    truth, said = fractions[kept] >= crack_min, probs[kept] >= threshold
    tp, fp, fn = int((truth & said).sum()), int((said & ~truth).sum()), int((truth & ~said).sum())
    precision, recall = tp / max(1, tp + fp), tp / max(1, tp + fn)
    return {
        "windows": int(kept.sum()),
        "crack_windows": int(truth.sum()),
        "ignored": int((~kept).sum()),
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / max(1e-12, precision + recall),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument(
        "--data", type=Path, nargs="+", default=[Path("../shared/data/deepcrack"), Path("../shared/data/crackforest")]
    )
    parser.add_argument("--patch", type=int, default=None, help="window side (default: the model's patch size)")
    parser.add_argument("--stride", type=int, default=None, help="default: half a window")
    parser.add_argument("--modes", default="patch,dense", help="modes to evaluate; with two, their agreement too")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--crack-min", type=float, default=0.005)
    args = parser.parse_args()
    predictor = load_predictor(args.model, "cpu")
    modes = args.modes.split(",")
    # The windows crack scan would use: the model's patch size and half a window of stride unless given.
    settings = {m: ScanSettings.for_model(predictor.meta, args.patch, args.stride, mode=m) for m in modes}
    window = settings[modes[0]]
    print(f"model {args.model}, {window.patch} px windows every {window.stride} px, threshold {args.threshold}")
    pooled: dict[str, list] = {mode: [[], []] for mode in modes}
    for root in args.data:
        probs = {}
        for mode in modes:
            started = time.perf_counter()
            fractions, probs[mode], photos = window_scores(predictor, root, settings[mode])
            pooled[mode][0].append(fractions)
            pooled[mode][1].append(probs[mode])
            r = figures(fractions, probs[mode], args.crack_min, args.threshold)
            print(
                f"{root.name} {mode}: {photos} photos, {r['windows']} windows ({r['crack_windows']} crack, "
                f"{r['ignored']} ignored): "
                f"precision {r['precision']:.3f} recall {r['recall']:.3f} F {r['f1']:.3f} "
                f"({time.perf_counter() - started:.0f} s)"
            )
        if len(modes) == 2:
            a, b = (probs[m] for m in modes)
            same = ((a >= args.threshold) == (b >= args.threshold)).mean()
            print(
                f"{root.name}: {modes[0]} and {modes[1]} decide alike on {same:.1%} of windows, mean |Δ crack prob| "
                f"{np.abs(a - b).mean():.3f}"
            )
    if len(args.data) > 1:
        for mode in modes:
            r = figures(
                np.concatenate(pooled[mode][0]), np.concatenate(pooled[mode][1]), args.crack_min, args.threshold
            )
            print(
                f"all {mode}: {r['windows']} windows: precision {r['precision']:.3f} recall {r['recall']:.3f} F "
                f"{r['f1']:.3f}"
            )


if __name__ == "__main__":
    main()
