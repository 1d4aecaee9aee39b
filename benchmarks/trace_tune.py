"""Choose the crack extractor's settings on shippable data: real concrete texture with cracks of known
pixels painted on it.

    python benchmarks/trace_tune.py [--photos 24] [--top 8]

Each tuning photo is a 4×3 mosaic of CCIC validation patches without cracks (227 px each, the only
real photos the project may learn from), with two to four jagged cracks painted across it (0.8-21 px
wide, as many thin as wide, darkened by 8-45%, faint to clear, slightly blurred) and their masks
kept.  Every combination of the grid below is run on every photo, within 112 px of its cracks (where
`crack scan`'s crack windows would be), and scored as `benchmarks/trace_eval.py` scores the real sets
(pixel F with a 2-pixel tolerance, length and width errors); the best by F are printed.  The real
sets with masks (DeepCrack, CrackForest, uav75_dev, pavement_crops) are never looked at here.
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np
from trace_eval import DATA, Tally  # beside this file: on the path when run as a script

from crackcli.data.painting import paint_crack_with_mask
from crackcli.io.images import read_rgb
from crackcli.measure.centerlines import center_lines
from crackcli.measure.extract import ExtractSettings, crack_pixels

GATE_PX = 112  # half a window: the windows called crack reach about this far from a crack

# A first round (smoothing 0 or 1 px, grow share 0.5 or 0.7, seed levels 3-5) lost with smoothing and
# with 0.5 everywhere and had its best at the corner of seed 5 and width 15; this grid goes on from there.
GRID = {
    "max_width_px": [11, 15, 21, 31],
    "seed_level": [4.0, 5.0, 6.0],
    "grow_share": [0.7, 0.85],
    "smoothing_px": [0.0],
}


def tuning_photos(count: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(grey photo, crack mask) pairs: mosaics of clean CCIC patches with painted cracks."""
    import cv2

    rng = np.random.default_rng(seed)
    patches = sorted((DATA / "ccic" / "val" / "no_crack").iterdir())
    photos = []
    for _ in range(count):
        picks = rng.choice(len(patches), 12, replace=False)
        tiles = [cv2.resize(read_rgb(patches[i]), (227, 227)) for i in picks]
        rgb = np.vstack([np.hstack(tiles[row * 4 : row * 4 + 4]) for row in range(3)])
        mask = np.zeros(rgb.shape[:2], bool)
        for _ in range(int(rng.integers(2, 5))):
            low = float(np.exp(rng.uniform(np.log(0.8), np.log(14))))  # as many hairlines as wide cracks
            rgb, painted = paint_crack_with_mask(rgb, rng, (low, low * rng.uniform(1, 1.5)), (0.08, 0.45))
            mask |= painted
        photos.append((cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), mask))
    return photos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=24)
    parser.add_argument("--top", type=int, default=8)
    args = parser.parse_args()
    import cv2

    photos = tuning_photos(args.photos)
    near = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * GATE_PX + 1, 2 * GATE_PX + 1))
    gates = [cv2.dilate(mask.astype(np.uint8), near) > 0 for _, mask in photos]
    scored = []
    for values in itertools.product(*GRID.values()):
        settings = ExtractSettings(**dict(zip(GRID, values)))
        tally = Tally()
        for (gray, mask), gate in zip(photos, gates):
            found = crack_pixels(gray, settings, gate)
            tally.add(found, mask, center_lines(found))
        scored.append((tally.f, dict(zip(GRID, values)), tally.line("")))
        print(scored[-1][1], scored[-1][2], flush=True)
    print(f"best {args.top} by F on {args.photos} tuning photos:")
    for _, values, line in sorted(scored, key=lambda item: -item[0])[: args.top]:
        print(values, line)


if __name__ == "__main__":
    main()
