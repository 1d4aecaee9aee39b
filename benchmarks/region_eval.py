"""How well `crack scan`'s regions point at the cracks of photos with crack masks.

Per set under ``--data`` (deepcrack, crackforest, uav75_dev, pavement_crops), every photo is scanned at
the scan defaults and its regions compared with the mask's crack components (8-connected, at least
``--min-pixels``):

- component recall: the share of components with at least half of their pixels inside a region box;
- pixel recall: the share of crack pixels inside a region box;
- region precision: the share of regions whose box holds at least ``--min-pixels`` crack pixels;
- crack share of region area: the share of region-box pixels within 8 px of a crack pixel (a box
  around a thin crack is mostly concrete; this says how tight it is);
- median and largest region box, as a share of the photo.

Two region rules in one run: "windows" (connected crack windows, boxes the union of whole windows, no
cap: crackcli before 2026-12) and "tiles" (what scan does now: windows' own stride × stride tiles,
groups cut at twice the window).

    python benchmarks/region_eval.py MODEL [--data ../shared/data] [--json figures.json]
    crack synth /tmp/wide/synth --count 6 --width 6000 --height 4000      # wide views, masks known
    python benchmarks/region_eval.py MODEL --data /tmp/wide --sets synth
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from crackcli.io.images import is_image_path, read_mask, read_rgb
from crackcli.model.predictors import load_predictor
from crackcli.scan.findings import crack_regions, heat_cell, region_max_side
from crackcli.scan.windows import ScanSettings, choose_mode, scan_image

SETS = ("deepcrack", "crackforest", "uav75_dev", "pavement_crops")
NEAR_PX = 8


def compare(mask: np.ndarray, boxes: list[tuple[int, int, int, int]], min_pixels: int) -> dict[str, float]:
    """Sums over one photo (divided out per set later)."""
    inside = np.zeros(mask.shape, bool)
    for x0, y0, x1, y1 in boxes:
        inside[y0:y1, x0:x1] = True
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    components = [k for k in range(1, count) if stats[k, cv2.CC_STAT_AREA] >= min_pixels]
    found = sum(inside[labels == k].mean() >= 0.5 for k in components)
    near = cv2.dilate(mask, np.ones((2 * NEAR_PX + 1, 2 * NEAR_PX + 1), np.uint8)) > 0
    held = [int(mask[y0:y1, x0:x1].sum()) >= min_pixels for x0, y0, x1, y1 in boxes]
    box_pixels = [(x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in boxes]
    near_pixels = [int(near[y0:y1, x0:x1].sum()) for x0, y0, x1, y1 in boxes]
    return {
        "components": len(components),
        "found": found,
        "crack_pixels": int(mask.sum()),
        "crack_inside": int(mask[inside].sum()),
        "regions": len(boxes),
        "holding": sum(held),
        "box_pixels": sum(box_pixels),
        "near_pixels": sum(near_pixels),
        "shares": [b / mask.size for b in box_pixels],
    }


def set_figures(rows: list[dict]) -> dict[str, float | int | None]:
    total = {key: sum(row[key] for row in rows) for key in rows[0] if key != "shares"}
    shares = [s for row in rows for s in row["shares"]]

    def ratio(a: str, b: str) -> float | None:
        return total[a] / total[b] if total[b] else None

    return {
        "photos": len(rows),
        "components": total["components"],
        "regions": total["regions"],
        "component_recall": ratio("found", "components"),
        "pixel_recall": ratio("crack_inside", "crack_pixels"),
        "region_precision": ratio("holding", "regions"),
        "crack_share_of_area": ratio("near_pixels", "box_pixels"),
        "median_region_share": float(np.median(shares)) if shares else None,
        "largest_region_share": max(shares) if shares else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    parser.add_argument("--sets", nargs="+", default=SETS, help="folders under --data with images/ and masks/")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--min-pixels", type=int, default=20)
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()

    predictor = load_predictor(args.model, "cpu")
    settings = ScanSettings.for_model(predictor.meta)
    mode = choose_mode(predictor, settings)
    crack = predictor.meta.classes.index(predictor.meta.crack_class)
    cell = heat_cell(settings.patch, settings.stride)
    rules = {
        "windows": (settings.patch, sys.maxsize),  # a window's tile is the whole window; no cap
        "tiles": (settings.stride, region_max_side(settings.patch)),
    }
    print(f"{args.model}: {settings.patch} px windows every {settings.stride} px, threshold {args.threshold}")
    results: dict[str, dict] = {}
    for name in args.sets:
        root = args.data / name
        if not (root / "masks").is_dir():
            print(f"{name}: not found under {args.data}, skipped")
            continue
        rows: dict[str, list[dict]] = {rule: [] for rule in rules}
        for photo in sorted(p for p in (root / "images").iterdir() if is_image_path(p)):
            masks = [m for m in (root / "masks").glob(f"{photo.stem}.*") if is_image_path(m)]
            if not masks:
                continue
            rgb, mask = read_rgb(photo), read_mask(masks[0]).astype(np.uint8)
            height, width = mask.shape
            scores = scan_image(predictor, rgb, (width, height), settings, mode)
            for rule, (stride, cap) in rules.items():
                regions, _ = crack_regions(
                    scores.windows, scores.probs[:, crack], args.threshold, width, height, cell, stride, cap
                )
                rows[rule].append(compare(mask, [r.bbox for r in regions], args.min_pixels))
        results[name] = {rule: set_figures(found) for rule, found in rows.items()}
        for rule, fig in results[name].items():
            print(
                f"{name:15s} {rule:8s} components {fig['components']:5d} regions {fig['regions']:5d}  "
                f"component recall {fig['component_recall']:.3f}  pixel recall {fig['pixel_recall']:.3f}  "
                f"region precision {fig['region_precision'] or 0:.3f}  crack share of area "
                f"{fig['crack_share_of_area'] or 0:.3f}  median region {fig['median_region_share'] or 0:.3f} "
                f"largest {fig['largest_region_share'] or 0:.3f} of the photo"
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
