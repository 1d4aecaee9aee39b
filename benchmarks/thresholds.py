"""Operating points of a model: labelled-patch macro F and real-photo window F at each crack threshold.

A crack threshold trades patches against photos: raising it removes false alarms on clean patches
(CCIC stains and pores) and misses hairlines on photos.  This prints both figures side by side for a
range of thresholds, from one pass over each data set, so a model's whole trade-off is visible (and a
threshold for `crack scan --threshold` can be chosen on data of one's own).

    python benchmarks/thresholds.py MODEL [--val ../shared/data/ccic/val]
        [--photos ../shared/data/deepcrack ../shared/data/crackforest]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scan_eval import figures, window_scores

from crackcli.model.metrics import classification_report, confusion_matrix
from crackcli.model.predictors import load_predictor
from crackcli.scan.windows import ScanSettings
from crackcli.train.evaluate import evaluate_folder, index_eval_folder


def patch_macro_f(crack_probs: np.ndarray, is_crack: np.ndarray, threshold: float) -> tuple[float, int, int]:
    """Two-class macro F of calling a patch crack from ``threshold`` on; clean patches called crack; cracks missed."""
    said = crack_probs >= threshold
    matrix = confusion_matrix((~is_crack).astype(int), (~said).astype(int), 2)
    report = classification_report(matrix, ("crack", "clean"))
    return report["f1"], int((said & ~is_crack).sum()), int((is_crack & ~said).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument(
        "--val", type=Path, default=Path("../shared/data/ccic/val"), help="labelled patches (class folders)"
    )
    parser.add_argument(
        "--photos", type=Path, nargs="+", default=[Path("../shared/data/deepcrack"), Path("../shared/data/crackforest")]
    )
    parser.add_argument("--thresholds", default="0.35:0.70:0.025", help="start:stop:step")
    parser.add_argument("--crack-min", type=float, default=0.005)
    args = parser.parse_args()

    predictor = load_predictor(args.model, "cpu")
    crack = predictor.meta.classes.index(predictor.meta.crack_class)
    evaluation = evaluate_folder(predictor, index_eval_folder(args.val, predictor.meta.classes))
    patch_probs, is_crack = evaluation.probs[:, crack], evaluation.targets == crack

    settings = ScanSettings.for_model(predictor.meta, mode="patch")
    scored = [window_scores(predictor, root, settings) for root in args.photos]
    fractions = np.concatenate([s[0] for s in scored])
    window_probs = np.concatenate([s[1] for s in scored])

    start, stop, step = (float(v) for v in args.thresholds.split(":"))
    print(
        f"model {args.model}; patches: {args.val} ({len(is_crack)}); photos: "
        f"{', '.join(p.name for p in args.photos)} (patch mode)"
    )
    print("threshold | patch macro F | clean patches called crack | cracks missed | window P / R / F")
    for threshold in np.arange(start, stop + step / 2, step):
        f, false_alarms, misses = patch_macro_f(patch_probs, is_crack, threshold)
        w = figures(fractions, window_probs, args.crack_min, threshold)
        print(
            f"{threshold:.3f} | {f:.4f} | {false_alarms} | {misses} | {w['precision']:.3f} / {w['recall']:.3f} / "
            f"{w['f1']:.3f}"
        )


if __name__ == "__main__":
    main()
