"""Choose the crack extractor's settings on shippable data: real concrete texture with cracks of known
pixels painted on it.

    python benchmarks/trace_tune.py [--photos 24] [--top 8]
    python benchmarks/trace_tune.py --sets uav75_dev,pavement_crops     # the real model-selection sets

Each tuning photo is a 4×3 mosaic of CCIC validation patches without cracks (227 px each, the only
real photos the project may learn from) or, with ``--asphalt``, every other photo of procedural asphalt
tiles, with two to four jagged cracks painted across it (0.8-21 px
wide, as many thin as wide, darkened by 8-45%, faint to clear, slightly blurred) and their masks
kept.  Every combination of the grid below is run on every photo, within 112 px of its cracks (where
`crack scan`'s crack windows would be), and scored as `benchmarks/trace_eval.py` scores the real sets
(pixel F with a 2-pixel tolerance, length and width errors); the best by F are printed.  With
``--sets``, real photo sets with masks are used instead, ranked by their mean F: only `uav75_dev` and
`pavement_crops`, which the data's licences leave for model selection, so that DeepCrack and
CrackForest stay unseen for reporting.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
from trace_eval import DATA, Tally, photos_of, truth_mask  # beside this file: on the path as a script

from crackcli.data.painting import asphalt, paint_crack_with_mask
from crackcli.io.images import read_gray, read_rgb
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


def tuning_photos(count: int, with_asphalt: bool = False, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(grey photo, crack mask) pairs: mosaics of clean CCIC patches or of asphalt, with painted cracks."""
    import cv2

    rng = np.random.default_rng(seed)
    patches = sorted((DATA / "ccic" / "val" / "no_crack").iterdir())
    photos = []
    for index in range(count):
        if with_asphalt and index % 2:  # every other photo a road: procedural asphalt, coarse to fine
            tiles = [asphalt(227, rng) for _ in range(12)]
        else:
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


def real_photos(root: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """(grey photo, crack mask) pairs of a real set with masks."""
    pairs = []
    for image, mask in photos_of(root):
        gray = read_gray(image)
        pairs.append((gray, truth_mask(mask, gray.shape)))
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=24)
    parser.add_argument("--top", type=int, default=8)
    parser.add_argument("--asphalt", action="store_true", help="every other tuning photo of procedural asphalt")
    parser.add_argument("--sets", default=None, help="real selection sets instead (uav75_dev, pavement_crops)")
    args = parser.parse_args()
    import cv2

    if args.sets:
        groups = {name: real_photos(DATA / name) for name in args.sets.split(",")}
    else:
        groups = {"painted": tuning_photos(args.photos, args.asphalt)}
    near = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * GATE_PX + 1, 2 * GATE_PX + 1))
    scored = []
    for values in itertools.product(*GRID.values()):
        settings = ExtractSettings(**dict(zip(GRID, values)))
        tallies = []
        for photos in groups.values():
            tally = Tally()
            for gray, mask in photos:
                found = crack_pixels(gray, settings, cv2.dilate(mask.astype(np.uint8), near) > 0)
                tally.add(found, mask, center_lines(found))
            tallies.append(tally)
        mean_f = float(np.mean([t.f for t in tallies]))
        text = "  ".join(t.line(name) for name, t in zip(groups, tallies))
        scored.append((mean_f, dict(zip(GRID, values)), text))
        print(scored[-1][1], f"mean F {mean_f:.3f}", text, flush=True)
    print(f"best {args.top} by F on {', '.join(groups)}:")
    for _, values, line in sorted(scored, key=lambda item: -item[0])[: args.top]:
        print(values, line)


if __name__ == "__main__":
    main()
