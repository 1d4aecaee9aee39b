"""Training throughput of `crack train`'s own loop: images/s and the share of step time spent waiting for data.

    python benchmarks/train_throughput.py                                   # CPU: resnet18, mobilenet_v3_small
    python benchmarks/train_throughput.py --backbones resnet50 --batch 256 --images 25600 --device cuda

Real data through the real pipeline: ``../shared/data/ccic/train`` JPEGs decoded, resized and flipped by
the loader workers, then ``Trainer.train_epoch`` (forward, loss, backward, SGD; AMP on a GPU).  Each
configuration runs ``--epochs`` epochs over ``--images`` images and reports the last one (the first pays
for cuDNN's algorithm search and the allocator).  "steady" leaves out the wait for the first batch,
when the epoch's loader processes start ("start s"); the epoch's time ends with a read of the loss, so
it includes all the device's work.  CE and IGMSDA alternate per backbone in one run, so their ratio is
measured under the same conditions.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
from pathlib import Path

import torch

from crackcli.train.config import TrainConfig
from crackcli.train.trainer import Trainer

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ccic"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA, help="a folder with train/ and val/ class folders")
    parser.add_argument("--backbones", default="resnet18,mobilenet_v3_small")
    parser.add_argument("--losses", default="ce,igmsda")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--images", type=int, default=320, help="training images per epoch")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--workers", type=int, default=None)
    return parser.parse_args()


def measure(args: argparse.Namespace, backbone: str, loss: str, project: str) -> dict:
    config = TrainConfig(
        data=str(args.data),
        backbone=backbone,
        weights="none",
        loss=loss,
        epochs=args.epochs,
        batch=args.batch,
        image_size=args.image_size,
        limit_per_class=args.images // 2,
        device=args.device,
        amp=args.amp,
        workers=args.workers,
        project=project,
    )
    trainer = Trainer(config)
    rows = [trainer.train_epoch(epoch) for epoch in range(args.epochs)]
    return {
        **rows[-1],
        "device": str(trainer.device),
        "amp": trainer.summary()["amp"],
        "workers": trainer.summary()["workers"],
    }


def main() -> None:
    args = parse_args()
    if not (args.data / "train").is_dir():
        raise SystemExit(f"{args.data}/train not found: pass --data (ccic lives in ../shared/data)")
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, threads {torch.get_num_threads()}")
    print(
        f"batch {args.batch}, {args.images} images/epoch at {args.image_size} px, last of {args.epochs} epochs reported"
    )
    columns = f"{'images/s':>9} {'steady':>9} {'data wait':>10} {'start s':>8} {'vs ce':>6}"
    print(f"{'backbone':20} {'loss':7} {columns}  device")
    with tempfile.TemporaryDirectory() as project:
        for backbone in args.backbones.split(","):
            baseline = None
            for loss in args.losses.split(","):
                row = measure(args, backbone, loss, project)
                rate = row["images_per_s"]
                steady = rate * row["seconds"] / max(row["seconds"] - row["loader_start_s"], 1e-9)
                baseline = steady if loss == "ce" else baseline
                ratio = f"{steady / baseline:.3f}" if baseline else "-"
                print(
                    f"{backbone:20} {loss:7} {rate:9.1f} {steady:9.1f} {row['data_wait']:10.1%} "
                    f"{row['loader_start_s']:8.2f} {ratio:>6}  "
                    f"{row['device']} amp {row['amp']} workers {row['workers']}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
