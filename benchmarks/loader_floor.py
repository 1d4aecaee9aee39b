"""`crack train`'s data loading against its floor: decode + resize + augment of every image, and no more.

The floor is the per-image work done in a plain loop in this process (decode, ``fit_patch`` to the
input size, painting and augmentation as the recipe asks), divided by the loader workers `crack train`
starts on its own (``--workers`` auto).  The loader is `crack train`'s real one (``train.data.make_loader``:
dataset, epoch batches, worker processes, collation) iterated for one epoch with no model.  Both see
the same images in the same process, alternately, and the medians are compared.

    python benchmarks/loader_floor.py [--data ../shared/data/ccic/train] [--images 2048] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from crackcli.data.augment import build_augment
from crackcli.data.folders import index_folder, limit_per_class
from crackcli.data.painting import synthetic_cracks_for
from crackcli.data.preprocess import fit_patch
from crackcli.io.images import read_rgb
from crackcli.model.devices import resolve_device
from crackcli.train.config import TrainConfig
from crackcli.train.data import loader_workers, make_loader
from crackcli.train.distributed import Context

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ccic" / "train"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--images", type=int, default=2048, help="images in the epoch (half of each class)")
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--augment", default="field")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    folder = index_folder(args.data)
    samples = limit_per_class(folder.samples, args.images // len(folder.classes), seed=0)
    config = TrainConfig(
        data=str(args.data), image_size=args.image_size, augment=args.augment, batch=64,
        synthetic_cracks=0.15, synthetic_stains=0.15,
    )  # fmt: skip
    device = resolve_device("cpu")
    context = Context()
    workers = loader_workers(config, device, context)
    painting = synthetic_cracks_for(0.15, folder.classes, "crack", 0.15)
    augment = build_augment(args.augment)

    def floor() -> float:
        started = time.perf_counter()
        for index, (path, label) in enumerate(samples):
            rng = np.random.default_rng((0, 0, index))
            rgb = fit_patch(read_rgb(path), args.image_size)
            if painting is not None:
                rgb, label = painting(rgb, label, rng)
            if augment is not None:
                augment(rgb, rng)
        return (time.perf_counter() - started) / max(1, workers)

    def loader() -> float:
        _, batches = make_loader(samples, config, context, device, painting, train=True)
        started = time.perf_counter()
        for batch in batches:
            torch.as_tensor(batch.images)
        return time.perf_counter() - started

    floor(), loader()  # warm-up: page cache, worker start-up code paths
    pairs = [(floor(), loader()) for _ in range(args.runs)]
    floor_s, loader_s = statistics.median(f for f, _ in pairs), statistics.median(s for _, s in pairs)
    print(
        f"{len(samples)} images of {args.data} at {args.image_size} px, augment {args.augment}, painting 0.15/0.15, "
        f"{workers} worker(s) (auto on this CPU), medians of {args.runs}"
    )
    print(
        f"floor {floor_s:.2f} s ({len(samples) / floor_s:.0f} img/s), loader {loader_s:.2f} s "
        f"({len(samples) / loader_s:.0f} img/s) = {statistics.median(s / f for f, s in pairs):.2f}× floor"
    )


if __name__ == "__main__":
    main()
