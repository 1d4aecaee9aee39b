"""Step time of one training step (forward, backward, SGD) under each loss, and each loss's extra memory.

    python benchmarks/loss_overhead.py                      # CPU: ResNet50, batch 8
    python benchmarks/loss_overhead.py --device cuda --batch 256

The step is set up as `crack train` sets it up (``train.device_setup``): cuDNN autotuning and
channels-last on a GPU, mixed precision as ``--amp`` picks it there (bf16 where native, else fp16 with a
gradient scaler), labels also on the host for the covariance update.  Each timed step ends with a
device synchronisation; every loss is warmed up first.

Losses are timed round-robin in one run, so drifts in clock or load hit them alike, and each is
reported as the median step time and its ratio to cross-entropy's median.  Because a whole step's
noise can exceed a cheap loss's cost, the loss's own forward and backward on fixed features
("loss ms") is timed too.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from crackcli.model.backbones import build_model
from crackcli.train.device_setup import amp_dtype_for, batch_layout, configure_backends, model_layout
from crackcli.train.losses import Progress, build_loss


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=None, help="default: 64 on a GPU, 8 on the CPU")
    parser.add_argument("--classes", type=int, default=2)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=6, help="timed steps per loss")
    parser.add_argument("--gm-samples", type=int, default=None, help="default: 64 on a GPU, 16 on the CPU")
    parser.add_argument(
        "--amp", action=argparse.BooleanOptionalAction, default=None, help="default: on a GPU, as crack train"
    )
    parser.add_argument("--losses", default="ce,isda,igmsda,gm")
    return parser.parse_args()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    args = parse_args()
    device = torch.device(args.device)
    on_gpu = device.type == "cuda"
    batch = args.batch or (64 if on_gpu else 8)
    gm_samples = args.gm_samples or (64 if on_gpu else 16)
    names = args.losses.split(",")

    torch.manual_seed(0)
    configure_backends(device)
    model = model_layout(build_model(args.backbone, args.classes).to(device), device)
    optimiser = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    amp_dtype = amp_dtype_for(device, args.amp)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    images = batch_layout(torch.randn(batch, 3, args.image_size, args.image_size, device=device), device)
    host_labels = torch.arange(batch) % args.classes
    labels = host_labels.to(device)
    progress = Progress(iteration=50, total_iterations=100, epoch=5, epochs=10)
    losses = {
        name: build_loss(name, args.classes, model.feature_dim, gm_samples=gm_samples).to(device) for name in names
    }

    def step(name: str) -> float:
        sync(device)
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            features = model.features(images)
        loss = losses[name](features, labels, model.classifier, progress, host_labels=host_labels)
        optimiser.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimiser)
        scaler.update()
        sync(device)
        return time.perf_counter() - start

    feature_batch = torch.randn(batch, model.feature_dim, device=device, requires_grad=True)

    def loss_only(name: str) -> float:
        """The loss's own forward and backward on fixed features: small, so timed without the network's noise."""
        sync(device)
        start = time.perf_counter()
        losses[name](feature_batch, labels, model.classifier, progress, host_labels=host_labels).backward()
        sync(device)
        return time.perf_counter() - start

    for name in names:  # warm-up: allocator, kernels, first estimator update
        step(name)
    times: dict[str, list[float]] = {name: [] for name in names}
    own: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(args.steps):
        for name in names:
            times[name].append(step(name))
    for _ in range(5 * args.steps):
        for name in names:
            own[name].append(loss_only(name))

    extra_memory = {}
    for name in names:
        state_bytes = sum(b.numel() * b.element_size() for b in losses[name].buffers())
        peak = None
        if on_gpu:
            torch.cuda.reset_peak_memory_stats(device)
            step(name)
            peak = torch.cuda.max_memory_allocated(device)
        extra_memory[name] = (state_bytes, peak)

    c, f = args.classes, model.feature_dim
    print(
        f"device={device} backbone={args.backbone} batch={batch} image={args.image_size} "
        f"classes={c} F={f} gm_samples={gm_samples} amp={amp_dtype} steps={args.steps}"
    )
    print(f"C*F^2 floats = {c * f * f:,} ({c * f * f * 4 / 2**20:.1f} MiB)")
    base = statistics.median(times[names[0]])
    base_peak = extra_memory[names[0]][1]
    print(
        f"{'loss':8} {'median s/step':>14} {'x ' + names[0]:>8} {'loss ms':>9} {'state MiB':>10} "
        f"{'peak MiB':>10} {'peak - ' + names[0]:>12}"
    )
    for name in names:
        median = statistics.median(times[name])
        state, peak = extra_memory[name]
        peak_text = f"{peak / 2**20:10.1f}" if peak is not None else f"{'n/a':>10}"
        delta_text = f"{(peak - base_peak) / 2**20:12.1f}" if peak is not None else f"{'n/a':>12}"
        own_ms = statistics.median(own[name]) * 1000
        print(
            f"{name:8} {median:14.4f} {median / base:8.3f} {own_ms:9.2f} {state / 2**20:10.1f} {peak_text} {delta_text}"
        )


if __name__ == "__main__":
    main()
