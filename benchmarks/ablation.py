"""The paper's ablation on our data: cross-entropy, focal, ISDA, explicit GM and IGMSDA in the small-data regime.

    python benchmarks/ablation.py losses            # 5 losses x sizes 50,200,1000 per class x seeds 0,1,2
    python benchmarks/ablation.py alpha             # IGMSDA alpha0 in 0.5,1,2.5,5,10 at 200 per class
    python benchmarks/ablation.py three-class       # no crack / crack / scratch on synthetic photos
    python benchmarks/ablation.py report            # the markdown tables of docs/RESULTS.md

Every run is a real `crack train` run (the library's Trainer) followed by `crack eval` of its best
checkpoint on a held-out test folder (ccic/val; for three-class, synthetic photos of other seeds).
Training subsets are drawn from ccic/train per seed (the same subset for every loss of one seed, so
the comparison is paired); the checkpoint is chosen on 50 images per class held out of ccic/train,
never on the test folder.  Results go to ``<out>/results.jsonl``, one line per run, and a re-run
skips the runs already there: the study can be stopped and continued.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from crackcli.io.images import is_image_path
from crackcli.model.predictors import TorchPredictor
from crackcli.train.config import TrainConfig
from crackcli.train.evaluate import evaluate_folder, index_eval_folder
from crackcli.train.trainer import Trainer

LOSSES = ("ce", "focal", "isda", "gm", "igmsda")
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", choices=("losses", "alpha", "three-class", "report"))
    parser.add_argument("--ccic", type=Path, default=SHARED / "ccic", help="folder with train/ and val/ class folders")
    parser.add_argument("--out", type=Path, default=Path("runs/ablation"))
    parser.add_argument("--losses", default=",".join(LOSSES))
    parser.add_argument("--sizes", default="50,200,1000", help="training images per class")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--alphas", default="0.5,1,2.5,5,10")
    parser.add_argument("--alpha-size", type=int, default=200, help="images per class of the alpha0 sweep")
    parser.add_argument("--backbone", default="shufflenet_v2_x0_5")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--steps", type=int, default=600, help="optimizer steps per run (epochs follow from the size)")
    parser.add_argument("--min-epochs", type=int, default=10)
    parser.add_argument("--weights", default="none", help="none (offline) or imagenet")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--holdout", type=int, default=50, help="images per class held out of ccic/train for selection")
    return parser.parse_args()


def numbers(text: str, kind: type = int) -> list:
    return [kind(part) for part in text.split(",") if part.strip()]


def class_files(root: Path) -> dict[str, list[Path]]:
    return {d.name: sorted(p for p in d.iterdir() if is_image_path(p)) for d in sorted(root.iterdir()) if d.is_dir()}


def link_study_folder(folder: Path, train: dict[str, list[Path]], val: dict[str, list[Path]]) -> Path:
    """``folder/train`` and ``folder/val`` of symbolic links to the given files, made once."""
    if (folder / "done").exists():
        return folder
    for split, files in (("train", train), ("val", val)):
        for cls, paths in files.items():
            target = folder / split / cls
            target.mkdir(parents=True, exist_ok=True)
            for path in paths:
                link = target / path.name
                if not link.exists():
                    link.symlink_to(path.resolve())
    (folder / "done").touch()
    return folder


def ccic_pool(ccic_train: Path, pool: Path, holdout: int) -> Path:
    """ccic/train's files, the last ``holdout`` of each class kept apart for choosing the checkpoint."""
    files = class_files(ccic_train)
    return link_study_folder(
        pool, {c: f[:-holdout] for c, f in files.items()}, {c: f[-holdout:] for c, f in files.items()}
    )


def epochs_for(size: int, classes: int, batch: int, steps: int, min_epochs: int) -> int:
    """Enough epochs for about ``steps`` optimizer steps, so small subsets are not under-trained."""
    return max(min_epochs, math.ceil(steps / max(1, (size * classes) // batch)))


def done_ids(results: Path) -> set[str]:
    if not results.exists():
        return set()
    return {json.loads(line)["id"] for line in results.read_text().splitlines() if line.strip()}


def run_one(args: argparse.Namespace, record: dict[str, Any], data: Path, test: Path, classes: int) -> dict[str, Any]:
    """Train one configuration, evaluate its best checkpoint on ``test``; the record of the run."""
    epochs = epochs_for(record["size"], classes, args.batch, args.steps, args.min_epochs)
    config = TrainConfig(
        data=str(data),
        backbone=args.backbone,
        weights=args.weights,
        loss=record["loss"],
        alpha0=record["alpha0"],
        epochs=epochs,
        batch=args.batch,
        lr=args.lr,
        image_size=args.image_size,
        augment="paper",
        limit_per_class=record["size"],
        device=args.device,
        workers=0,
        seed=record["seed"],
        project=str(args.out / "runs"),
        name=record["id"],
    )
    started = time.perf_counter()
    trainer = Trainer(config)
    result = trainer.fit()
    wall = time.perf_counter() - started
    report = evaluate_folder(
        TorchPredictor(result.run_dir / "best.pt", args.device), index_eval_folder(test, trainer.classes), workers=0
    ).report
    crack = report["per_class"].get("crack", {})
    return {
        **record,
        "epochs": epochs,
        "train_seconds": sum(row["seconds"] for row in result.history),
        "wall_seconds": wall,
        "best_epoch": result.best_epoch,
        "selection_f1": result.best_f1,
        "test": {key: report[key] for key in ("accuracy", "precision", "recall", "f1")},
        "test_crack": {key: crack.get(key) for key in ("precision", "recall", "f1")},
        "test_per_class": {name: figures["f1"] for name, figures in report["per_class"].items()},
        "run_dir": str(result.run_dir),
    }


def run_all(args: argparse.Namespace, records: Iterable[dict[str, Any]], data: Path, test: Path, classes: int) -> None:
    results = args.out / "results.jsonl"
    done = done_ids(results)
    todo = [r for r in records if r["id"] not in done]
    print(f"{len(todo)} runs to do ({len(done)} already in {results})", flush=True)
    for index, record in enumerate(todo, 1):
        row = run_one(args, record, data, test, classes)
        with open(results, "a") as handle:
            handle.write(json.dumps(row) + "\n")
        print(
            f"[{index}/{len(todo)}] {row['id']}: test macro F {row['test']['f1']:.4f}, "
            f"train {row['train_seconds']:.0f} s, {row['epochs']} epochs",
            flush=True,
        )


def loss_records(study: str, losses: list[str], sizes: list[int], seeds: list[int], alphas: list[float]) -> list[dict]:
    if study == "alpha":
        return [
            {
                "study": "alpha",
                "id": f"alpha-{sizes[0]}-a{alpha:g}-s{seed}",
                "loss": "igmsda",
                "size": sizes[0],
                "seed": seed,
                "alpha0": alpha,
            }
            for seed in seeds
            for alpha in alphas
        ]
    # Seed-major order: a stopped study has complete, paired seeds rather than one loss done everywhere.
    return [
        {
            "study": study,
            "id": f"{study}-{size}-{loss}-s{seed}",
            "loss": loss,
            "size": size,
            "seed": seed,
            "alpha0": 2.5,
        }
        for seed in seeds
        for size in sizes
        for loss in losses
    ]


def three_class_data(out: Path, holdout: int) -> tuple[Path, Path]:
    """Synthetic photos cut into no_crack / crack / scratch patches: a study folder (train/, and val/ with
    ``holdout`` patches per class from other photos) and a test folder cut from photos of other seeds."""
    root = out / "three-class"
    crack = [sys.executable, "-m", "crackcli"]
    for name, count, seed in (("train", 60, 0), ("test", 16, 1000)):
        photos, patches = root / f"photos-{name}", root / f"patches-{name}"
        if not (photos / "images").is_dir():
            subprocess.run(
                [
                    *crack,
                    "synth",
                    str(photos),
                    "--count",
                    str(count),
                    "--seed",
                    str(seed),
                    "--width",
                    "1024",
                    "--height",
                    "768",
                ],
                check=True,
            )
        if not (patches / "manifest.csv").exists():
            subprocess.run(
                [
                    *crack,
                    "prepare",
                    str(photos / "images"),
                    "--out",
                    str(patches),
                    "--labels",
                    "mask",
                    "--masks",
                    str(photos / "masks"),
                    "--class-mask",
                    f"scratch={photos / 'scratches'}",
                    "--size",
                    "96",
                    "--stride",
                    "64",
                    "--format",
                    "jpg",
                    "--quiet",
                    *(["--split", "4:1"] if name == "train" else []),
                ],
                check=True,
            )
    pool = root / "patches-train"
    study = link_study_folder(
        root / "study", class_files(pool / "train"), {c: f[:holdout] for c, f in class_files(pool / "val").items()}
    )
    return study, root / "patches-test"


def mean_std(values: list[float]) -> str:
    """Mean ± sample standard deviation in percent (the mean alone for one value)."""
    if not values:
        return "–"
    if len(values) == 1:
        return f"{100 * values[0]:.2f}"
    return f"{100 * statistics.mean(values):.2f} ± {100 * statistics.stdev(values):.2f}"


def report(out: Path) -> None:
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines() if line.strip()]
    for study in ("losses", "three-class"):
        subset = [r for r in rows if r["study"] == study]
        if not subset:
            continue
        ce_time = {(r["size"], r["seed"]): r["train_seconds"] for r in subset if r["loss"] == "ce"}
        ce_f1 = {(r["size"], r["seed"]): r["test"]["f1"] for r in subset if r["loss"] == "ce"}
        print(f"\n### {study}\n")
        scratch = study == "three-class"
        print(
            "| per class | loss | seeds | crack precision | crack recall | crack F | "
            + ("scratch F | " if scratch else "")
            + "macro F | macro F − CE (paired) | train time ÷ CE |"
        )
        print("|---:|---|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if scratch else ""))
        groups: dict[tuple[int, str], list[dict]] = defaultdict(list)
        for r in subset:
            groups[(r["size"], r["loss"])].append(r)
        for size, loss in sorted(groups, key=lambda k: (k[0], LOSSES.index(k[1]))):
            runs = groups[(size, loss)]
            gains = [r["test"]["f1"] - ce_f1[(size, r["seed"])] for r in runs if (size, r["seed"]) in ce_f1]
            ratios = [r["train_seconds"] / ce_time[(size, r["seed"])] for r in runs if (size, r["seed"]) in ce_time]
            ratio = f"{statistics.mean(ratios):.2f}" if ratios else "–"
            crack = [[r["test_crack"][key] for r in runs] for key in ("precision", "recall", "f1")]
            scratch_f = f"{mean_std([r['test_per_class']['scratch'] for r in runs])} | " if scratch else ""
            print(
                f"| {size} | {loss} | {len(runs)} | {mean_std(crack[0])} | {mean_std(crack[1])} | "
                f"{mean_std(crack[2])} | "
                f"{scratch_f}{mean_std([r['test']['f1'] for r in runs])} | {mean_std(gains) if gains else '–'} | "
                f"{ratio} |"
            )
    alpha = [r for r in rows if r["study"] == "alpha"]
    if alpha:
        print("\n### alpha0 (IGMSDA)\n")
        print("| α₀ | seeds | macro F | precision | recall |")
        print("|---:|---:|---:|---:|---:|")
        for value in sorted({r["alpha0"] for r in alpha}):
            runs = [r for r in alpha if r["alpha0"] == value]
            print(
                f"| {value:g} | {len(runs)} | {mean_std([r['test']['f1'] for r in runs])} | "
                f"{mean_std([r['test']['precision'] for r in runs])} | "
                f"{mean_std([r['test']['recall'] for r in runs])} |"
            )


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.study == "report":
        report(args.out)
        return
    seeds = numbers(args.seeds)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, backbone {args.backbone} at "
        f"{args.image_size} px, batch {args.batch}, ~{args.steps} steps per run, pid {os.getpid()}",
        flush=True,
    )
    if args.study == "three-class":
        train, test = three_class_data(args.out, args.holdout)
        records = loss_records("three-class", numbers(args.losses, str), [args.alpha_size], seeds, [])
        run_all(args, records, train, test, classes=3)
        return
    pool = ccic_pool(args.ccic / "train", args.out / "pool", args.holdout)
    if args.study == "alpha":
        records = loss_records("alpha", [], [args.alpha_size], seeds, numbers(args.alphas, float))
    else:
        records = loss_records("losses", numbers(args.losses, str), numbers(args.sizes), seeds, [])
    run_all(args, records, pool, args.ccic / "val", classes=2)


if __name__ == "__main__":
    main()
