"""The paper's premise as users meet it: fine-tune a model on a few labelled photos of their own structure.

For each N (photos to learn from) and seed, ``uav75_dev`` photos are split by source photo (``DSC00560.jpg``,
``DSC00560b.jpg`` and ``DSC00560c.jpg`` are crops of one drone photo and land on one side): N photos are
labelled with ``crack prepare --labels mask`` and fine-tune MODEL with ``crack train --weights MODEL``
(once per loss), the other photos are scanned.  With ``--joint-class`` each loss also fine-tunes a
three-class model whose patches label formwork joints (``joints/`` masks, ``crack prepare --class-mask
joint=...``) as a class of their own; its windows are called crack by their crack score alone.  Printed:
window F (224 px windows every 224 px, threshold 0.5) and the share of joint-only windows called crack,
per N and fine-tune, mean and spread over seeds, next to MODEL itself on the same test photos.

    python benchmarks/few_shot.py MODEL.pt [--sizes 5,10,25,40] [--losses ce,isda,igmsda] [--seeds 0,1,2]
        [--epochs 12] [--joint-class] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from field_eval import set_figures
from scan_eval import window_scores

from crackcli.model.predictors import load_predictor
from crackcli.scan.windows import ScanSettings


def source_photo(path: Path) -> str:
    """The drone photo a crop comes from: its name without a trailing letter (DSC00560c -> DSC00560)."""
    return re.sub(r"[a-z]$", "", path.stem)


def split_photos(photos: list[Path], size: int, seed: int) -> tuple[list[Path], list[Path]]:
    """``size`` photos to learn from (whole source photos only, in a seeded order) and the rest to test on."""
    groups: dict[str, list[Path]] = {}
    for photo in photos:
        groups.setdefault(source_photo(photo), []).append(photo)
    order = sorted(groups)
    np.random.default_rng(seed).shuffle(order)
    learn: list[Path] = []
    for name in order:
        if len(learn) + len(groups[name]) <= size:
            learn += groups[name]
        if len(learn) == size:
            break
    return learn, [p for p in photos if p not in learn]


def photo_set(root: Path, photos: list[Path], data: Path) -> Path:
    """A folder laid out like ``data`` (images/, masks/, joints/) holding only ``photos``, by links."""
    for sub in ("images", "masks", "joints"):
        (root / sub).mkdir(parents=True)
    for photo in photos:
        (root / "images" / photo.name).symlink_to(photo.resolve())
        for sub in ("masks", "joints"):
            for mask in (data / sub).glob(f"{photo.stem}.*"):
                (root / sub / mask.name).symlink_to(mask.resolve())
    return root


def test_figures(model: Path, test_root: Path) -> dict:
    predictor = load_predictor(model, "cpu")
    settings = ScanSettings.for_model(predictor.meta, stride=224)
    fractions, scores, _ = window_scores(predictor, test_root, settings, "joints")
    return set_figures(fractions, scores, 0.005, 0.5)


JOINTS = "+joints"  # the name of a fine-tune whose patches label joints as a class of their own


def fine_tune(model: Path, learn_root: Path, name: str, seed: int, epochs: int, work: Path) -> Path:
    """``crack prepare`` the learning photos, ``crack train`` from ``model`` with the loss ``name`` starts
    with (joints labelled when it ends with JOINTS); the run's best checkpoint."""
    crack = [sys.executable, "-m", "crackcli"]
    joints = name.endswith(JOINTS)
    loss = name.removesuffix(JOINTS)
    patches = work / ("patches" + JOINTS if joints else "patches")
    if not patches.exists():
        labels = ["--class-mask", f"joint={learn_root / 'joints'}"] if joints else []
        subprocess.run(
            [*crack, "prepare", str(learn_root / "images"), "--out", str(patches), "--labels", "mask"]
            + ["--masks", str(learn_root / "masks"), *labels, "--stride", "112", "--quiet"],
            check=True,
        )
    subprocess.run(
        [*crack, "train", str(patches), "--weights", str(model), "--backbone", "shufflenet_v2_x0_5"]
        + ["--image-size", "96", "--epochs", str(epochs), "--lr", "0.003", "--batch", "32", "--augment", "field"]
        + ["--loss", loss, "--seed", str(seed), "--workers", "0", "--quiet"]
        + ["--project", str(work / "runs"), "--name", name],
        check=True,
    )
    return work / "runs" / name / "best.pt"


def run_line(row: dict, losses: list[str]) -> str:
    """One split's window F and joint-only windows called crack (none where its test photos hold none)."""
    parts = []
    for key in ["none", *losses]:
        joints = row[key]["joints_called_crack"]
        parts.append(f"{key} F {row[key]['f1']:.3f}" + (f" joints {joints:.2f}" if joints is not None else ""))
    return ", ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="a crack checkpoint (.pt) to fine-tune")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/uav75_dev"))
    parser.add_argument("--sizes", default="5,10,25,40")
    parser.add_argument("--losses", default="ce,isda,igmsda")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--joint-class", action="store_true", help="also fine-tune with joints labelled, per loss")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    photos = sorted((args.data / "images").glob("*.jpg"))
    losses = args.losses.split(",")
    if args.joint_class:
        losses += [loss + JOINTS for loss in losses]
    results: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            for seed in (int(s) for s in args.seeds.split(",")):
                learn, test = split_photos(photos, size, seed)
                work = Path(tmp) / f"n{size}-s{seed}"
                test_root = photo_set(work / "test", test, args.data)
                learn_root = photo_set(work / "learn", learn, args.data)
                row = {"n": len(learn), "seed": seed, "test_photos": len(test)}
                row["none"] = test_figures(args.model, test_root)
                for loss in losses:
                    row[loss] = test_figures(
                        fine_tune(args.model, learn_root, loss, seed, args.epochs, work), test_root
                    )
                results.append(row)
                print(f"N={row['n']} seed {seed} ({len(test)} test photos): " + run_line(row, losses), flush=True)
    print(f"\nwindow F on the other photos (224 px windows every 224 px), mean ± sd over seeds {args.seeds}")
    print(f"{'N':>3} " + " ".join(f"{k:>15}" for k in ["none", *losses]) + "   joint-only windows called crack")
    for size in sorted({r["n"] for r in results}):
        rows = [r for r in results if r["n"] == size]

        def cell(key: str, figure: str, rows: list[dict] = rows) -> str:
            values = [r[key][figure] for r in rows if r[key][figure] is not None]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            return f"{statistics.mean(values):.3f} ± {spread:.3f}"

        print(
            f"{size:>3} "
            + " ".join(f"{cell(k, 'f1'):>15}" for k in ["none", *losses])
            + "   "
            + ", ".join(f"{k} {cell(k, 'joints_called_crack')}" for k in ["none", *losses])
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
