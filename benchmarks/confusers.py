"""What a model calls crack on synthetic photos: windows with cracks, with scratches only, with neither.

Scratches (light, smooth lines) are the confusable class the IGMSDA paper describes; a good crack model
flags crack windows and leaves scratch-only and plain windows alone.  Photos come from ``crackcli.data.synth``
(seeded), so the figures are reproducible without any data.

    python benchmarks/confusers.py MODEL [--photos 20] [--size 1120x896] [--threshold 0.5]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from crackcli.data.synth import synthesize
from crackcli.data.tiling import crop
from crackcli.model.predictors import load_predictor
from crackcli.scan.windows import ScanSettings, choose_mode, scan_image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--photos", type=int, default=20)
    parser.add_argument("--size", default="1120x896")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--modes", default="patch,dense")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    predictor = load_predictor(args.model, "cpu")
    crack = predictor.meta.classes.index(predictor.meta.crack_class)
    photos = [synthesize(width, height, seed=1000 + i, scratches=2) for i in range(args.photos)]
    print(
        f"model {args.model}, {args.photos} synthetic photos {width}×{height}, 224 px windows every 112 px, "
        f"threshold {args.threshold}"
    )
    for mode in args.modes.split(","):
        settings = ScanSettings(224, 112, mode=mode)
        groups: dict[str, list[float]] = {"crack": [], "scratch only": [], "neither": []}
        for photo in photos:
            scores = scan_image(predictor, photo.image, (width, height), settings, choose_mode(predictor, settings))
            for window, probs in zip(scores.windows, scores.probs):
                cracked, scratched = (
                    crop(photo.crack_mask, window).mean() / 255,
                    crop(photo.scratch_mask, window).mean() / 255,
                )
                if cracked >= 0.005:
                    groups["crack"].append(probs[crack])
                elif cracked == 0:
                    groups["scratch only" if scratched >= 0.005 else "neither"].append(probs[crack])
        for name, probs in groups.items():
            p = np.asarray(probs)
            print(
                f"{mode:>5} {name:>12}: {len(p):5d} windows, called crack {np.mean(p >= args.threshold):6.1%}, mean "
                f"crack prob {p.mean():.3f}"
            )


if __name__ == "__main__":
    main()
