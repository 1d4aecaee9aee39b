"""A small learned crack extractor against the classical one, on real photos it never saw.

The learned one is a three-level U-Net on grey pixels (``crackcli.model.tracer_net``: ``--widths``
channels, ``--fold 2`` to fold 2×2 pixels into channels), trained here from random
initialisation on pictures whose crack masks the project makes itself: CCIC's clean training patches
(CC BY 4.0) and procedural asphalt, with cracks painted by ``paint_crack_with_mask`` (0.8-14 px wide,
faint to clear) and, on a share of them, the painted look-alikes of ``paint_confuser`` (joints, road
markings, grids, edges, tyre marks, stains) left unmarked.  Its threshold is chosen on painted
validation pictures.  Of the weights after several training lengths, the one with the best pixel F
on the selection sets (uav75_dev, pavement_crops, and a third of DeepCrack's and CrackForest's source
photos: ``trace_eval.in_part``) is chosen; it and the classical extractor then run on the other two
thirds of DeepCrack and CrackForest, whole (no classifier windows), scored as
`benchmarks/trace_eval.py` scores traces: pixel P/R/F with a 2 px tolerance, length error, width
error; then the time per megapixel of each.

    python benchmarks/trace_learned.py [--steps 1000] [--checkpoints 40,250,500,1000] [--widths 16,32,64]
        [--fold 1] [--train 4000] [--out runs/trace_learned] [--seed 0] [--export models/crack-tracer.onnx]

The weights are saved in ``--out`` (one file per widths and steps) and reused by a later run;
``--export`` writes the chosen ones as the tracer file `crack scan --trace` runs.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.nn import functional as F
from trace_eval import DATA, Tally, photos_of, pixel_matches, set_and_part, truth_mask

from crackcli.data.painting import asphalt, paint_confuser, paint_crack_with_mask
from crackcli.io.images import read_gray, read_rgb
from crackcli.measure.centerlines import center_lines
from crackcli.measure.extract import ExtractSettings, confident_pixels, crack_pixels
from crackcli.model.tracer_net import TinyUNet, export_tracer, standardise

SIDE = 128  # training pictures, px
# The checkpoint is chosen on these: the drone and pavement sets and a third of DeepCrack's and
# CrackForest's source photos (thin cracks on concrete and asphalt, which the first two lack) ...
SELECTION = ("uav75_dev", "pavement_crops", "deepcrack:select", "crackforest:select")
REPORTED = ("deepcrack:report", "crackforest:report")  # ... and reported on the other two thirds
MIN_COMPONENT = 20  # px: learned detections smaller than this (bounding side) are dropped, as the classical


def painted_pictures(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` grey (SIDE, SIDE) pictures and their crack masks."""
    rng = np.random.default_rng(seed)
    patches = sorted((DATA / "ccic" / "train" / "no_crack").iterdir())
    grays = np.empty((count, SIDE, SIDE), np.uint8)
    masks = np.zeros((count, SIDE, SIDE), bool)
    for index in range(count):
        if rng.random() < 0.3:
            rgb = asphalt(SIDE, rng)
        else:
            patch = read_rgb(patches[int(rng.integers(len(patches)))])
            crop = int(rng.integers(96, min(patch.shape[:2]) + 1))
            y, x = (int(rng.integers(0, side - crop + 1)) for side in patch.shape[:2])
            rgb = cv2.resize(patch[y : y + crop, x : x + crop], (SIDE, SIDE), interpolation=cv2.INTER_AREA)
        if rng.random() < 0.35:  # a look-alike first, so a crack painted after it stays visible
            rgb = paint_confuser(rgb, rng)
        if rng.random() < 0.75:
            for _ in range(int(rng.integers(1, 4))):
                low = float(np.exp(rng.uniform(np.log(0.8), np.log(10))))
                rgb, painted = paint_crack_with_mask(rgb, rng, (low, low * rng.uniform(1, 1.5)), (0.08, 0.45))
                masks[index] |= painted
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
        gray = gray * rng.uniform(0.6, 1.3) + rng.uniform(-30, 30) + rng.normal(0, rng.uniform(0, 4), gray.shape)
        grays[index] = np.clip(gray, 0, 255).astype(np.uint8)
    return grays, masks


def _batch(grays: np.ndarray, masks: np.ndarray, picks: np.ndarray, rng: np.random.Generator):
    images, targets = [], []
    for i in picks:
        gray, mask = grays[i], masks[i]
        turns = int(rng.integers(4))  # the eight flips and quarter turns
        gray, mask = np.rot90(gray, turns), np.rot90(mask, turns)
        if rng.random() < 0.5:
            gray, mask = gray[:, ::-1], mask[:, ::-1]
        images.append(standardise(torch.from_numpy(np.ascontiguousarray(gray))[None, None])[0])
        targets.append(torch.from_numpy(np.ascontiguousarray(mask))[None].float())
    return torch.stack(images), torch.stack(targets)


def train(
    grays: np.ndarray,
    masks: np.ndarray,
    steps: int,
    keep_at: set[int],
    widths: tuple[int, int, int],
    fold: int = 1,
    seed: int = 0,
) -> dict[int, dict[str, torch.Tensor]]:
    """Adam on the painted pictures (batches of 16) for ``steps`` steps, learning rate on a cosine; the
    weights after each step count in ``keep_at``.  Counted in steps, not time, so a busy machine gives
    the same weights."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = TinyUNet(widths, fold)
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-3)
    kept, started = {}, time.perf_counter()
    for step in range(1, steps + 1):
        for group in optimiser.param_groups:
            group["lr"] = 2e-3 * 0.5 * (1 + np.cos(np.pi * (step - 1) / steps))
        images, targets = _batch(grays, masks, rng.integers(0, len(grays), 16), rng)
        logits = model(images)
        probs = torch.sigmoid(logits)
        # Cracks are a few percent of the pixels: BCE weighted towards them, plus a soft Dice term.
        bce = F.binary_cross_entropy_with_logits(logits, targets, pos_weight=torch.tensor(5.0))
        dice = 1 - (2 * (probs * targets).sum() + 1) / (probs.sum() + targets.sum() + 1)
        loss = bce + dice
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step in keep_at:
            kept[step] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if step % 100 == 0:
            print(f"  step {step}  loss {loss.item():.3f}  {(time.perf_counter() - started) / 60:.1f} min", flush=True)
    return kept


@torch.inference_mode()
def crack_probabilities(model: TinyUNet, gray: np.ndarray) -> np.ndarray:
    height, width = gray.shape
    step = model.size_multiple
    padded = cv2.copyMakeBorder(gray, 0, -height % step, 0, -width % step, cv2.BORDER_REFLECT)
    return torch.sigmoid(model(standardise(torch.from_numpy(padded)[None, None])))[0, 0, :height, :width].numpy()


def thresholded(probs: np.ndarray, threshold: float) -> np.ndarray:
    """Pixels at ``threshold`` or more, in groups at least MIN_COMPONENT long (as `crack scan` keeps them)."""
    return confident_pixels(probs, threshold, MIN_COMPONENT)


def learned_mask(model: TinyUNet, gray: np.ndarray, threshold: float) -> np.ndarray:
    return thresholded(crack_probabilities(model, gray), threshold)


def choose_threshold(model: TinyUNet, grays: np.ndarray, masks: np.ndarray) -> float:
    """The threshold with the best pixel F (2 px tolerance) on painted validation pictures."""
    best = (0.0, 0.5)
    probabilities = [crack_probabilities(model, gray) for gray in grays]
    for threshold in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
        totals = np.zeros(4)
        for probs, mask in zip(probabilities, masks):
            totals += pixel_matches(thresholded(probs, threshold), mask)
        precision, recall = totals[0] / max(totals[1], 1), totals[2] / max(totals[3], 1)
        f = 2 * precision * recall / max(precision + recall, 1e-9)
        best = max(best, (f, threshold))
    print(f"  threshold {best[1]}: painted validation F {best[0]:.3f} (the best of 0.3-0.8)")
    return best[1]


def evaluate(model: TinyUNet, threshold: float, names: list[str], classical: bool) -> dict[str, float]:
    """Pixel F of the learned extractor per set (printed with the rest of its figures); with
    ``classical``, the classical extractor's figures on the same photos too."""
    scores = {}
    learned_s = classical_s = megapixels = 0.0
    for name in names:
        learned, plain = Tally(), Tally()
        folder, part = set_and_part(name)
        for image, mask_path in photos_of(DATA / folder, part):
            gray = read_gray(image)
            truth = truth_mask(mask_path, gray.shape)
            megapixels += gray.size / 1e6
            started = time.perf_counter()
            found = learned_mask(model, gray, threshold)
            learned.add(found, truth, center_lines(found))
            learned_s += time.perf_counter() - started
            if classical:
                started = time.perf_counter()
                found = crack_pixels(gray, ExtractSettings())
                plain.add(found, truth, center_lines(found))
                classical_s += time.perf_counter() - started
        print(learned.line(f"{name} learned"), flush=True)
        if classical:
            print(plain.line(f"{name} classical"), flush=True)
        scores[name] = learned.f
    if classical:
        print(
            f"time per megapixel, whole photos, with the scoring: learned {1000 * learned_s / megapixels:.0f} ms "
            f"(PyTorch, {torch.get_num_threads()} threads), classical {1000 * classical_s / megapixels:.0f} ms"
        )
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000, help="training steps (batches of 16)")
    parser.add_argument("--checkpoints", default="40,250,500,1000", help="steps whose weights are candidates")
    parser.add_argument("--train", type=int, default=4000, help="painted training pictures")
    parser.add_argument("--widths", default="16,32,64", help="channels of the U-Net's three levels")
    parser.add_argument("--fold", type=int, default=1, help="2: pixels folded into channels, a quarter of the work")
    parser.add_argument("--out", type=Path, default=Path("runs/trace_learned"))
    parser.add_argument("--seed", type=int, default=0, help="training pictures (seed 2·s) and weights")
    parser.add_argument("--export", type=Path, help="write the chosen weights as a tracer file (crack-tracer.onnx)")
    parser.add_argument(
        "--width-threshold", type=float, help="probability of the pixels widths are measured from (trace_widths.py)"
    )
    parser.add_argument(
        "--min-length",
        type=int,
        default=MIN_COMPONENT,
        help="px: the shortest crack the exported file keeps (checkpoints are chosen at MIN_COMPONENT)",
    )
    args = parser.parse_args()
    low, middle, high = (int(w) for w in args.widths.split(","))
    widths = (low, middle, high)
    keep_at = {int(step) for step in args.checkpoints.split(",")}

    suffix = (f"_fold{args.fold}" if args.fold > 1 else "") + (f"_seed{args.seed}" if args.seed else "")
    weights = args.out / f"tracer_{low}_{middle}_{high}_{args.steps}{suffix}.pt"
    if weights.exists():
        kept = torch.load(weights, weights_only=True)
        print(f"weights {weights} (trained by an earlier run)")
    else:
        started = time.perf_counter()
        grays, masks = painted_pictures(args.train, seed=2 * args.seed)  # even: never the validation seed
        print(f"{args.train} painted training pictures in {time.perf_counter() - started:.0f} s", flush=True)
        kept = train(grays, masks, args.steps, keep_at, widths, args.fold, args.seed)
        args.out.mkdir(parents=True, exist_ok=True)
        torch.save(kept, weights)
    val_grays, val_masks = painted_pictures(300, seed=1)

    # Which checkpoint: the best mean F on the selection sets; the figures to quote come from the others.
    candidates = []
    for step in sorted(kept):
        model = TinyUNet(widths, args.fold)
        model.load_state_dict(kept[step])
        model.eval()
        print(f"step {step}:")
        threshold = choose_threshold(model, val_grays, val_masks)
        scores = evaluate(model, threshold, list(SELECTION), classical=False)
        candidates.append((float(np.mean(list(scores.values()))), step, threshold, model))
    score, step, threshold, model = max(candidates, key=lambda c: c[0])
    print(f"chosen: step {step}, threshold {threshold} (mean F {score:.3f} on {', '.join(SELECTION)})")
    evaluate(model, threshold, list(REPORTED), classical=True)
    if args.export:
        training = {
            "data": "CCIC train no_crack patches (CC BY 4.0) and procedural asphalt, cracks painted with their masks",
            "pictures": args.train,
            "seed": args.seed,
            "steps": step,
            "selected_on": list(SELECTION),
            "selection_pixel_f": round(score, 4),
            "recipe": "benchmarks/trace_learned.py",
        }
        export_tracer(model, args.export, threshold, args.min_length, training, width_threshold=args.width_threshold)
        print(f"tracer file {args.export}")


if __name__ == "__main__":
    main()
