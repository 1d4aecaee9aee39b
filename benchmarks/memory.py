"""Peak memory of `crack scan` and `crack prepare` on one very large photo, and memory over a long folder.

    python benchmarks/memory.py                        # 100 MP photo; 1,000 photos of 1600×1200
    python benchmarks/memory.py --megapixels 50 --photos 200

Each command runs as a child process; its resident set size (RSS) and high-water mark (VmHWM) are
read from /proc every 20 ms, and the peak is the highest VmHWM seen.  For the folder, RSS is
recorded as the photo count grows (reports or patches on disk): flat memory means the last and the
first tenth of the job use about the same.  Photos are generated (noise over a gradient with dark
lines, JPEG quality 90), so the figures do not depend on the shared data.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

MODEL = Path(__file__).resolve().parents[1] / "models" / "crack-default.onnx"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--megapixels", type=float, default=100.0)
    parser.add_argument("--photos", type=int, default=1000, help="photos in the long folder")
    parser.add_argument("--model", type=Path, default=MODEL)
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    return parser.parse_args()


def write_photo(path: Path, width: int, height: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    # Built in bands so that making a 100 MP photo does not itself need several copies of it.
    image = np.empty((height, width, 3), np.uint8)
    band = 1024
    for top in range(0, height, band):
        rows = min(band, height - top)
        gradient = np.linspace(90, 170, width, dtype=np.float32)[None, :, None]
        noise = rng.normal(0, 12, (rows, width, 1)).astype(np.float32)
        image[top : top + rows] = np.clip(gradient + noise, 0, 255).astype(np.uint8)
    for _ in range(8):
        x0, y0, x1, y1 = (int(v) for v in rng.integers(0, [width, height, width, height]))
        cv2.line(image, (x0, y0), (x1, y1), (40, 40, 40), int(rng.integers(2, 8)))
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    path.parent.mkdir(parents=True, exist_ok=True)
    data.tofile(path)


def memory_mib(pid: int) -> tuple[float, float] | None:
    """(VmRSS, VmHWM) of a live process: its resident set now and at its highest so far."""
    try:
        fields = dict(
            line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
        )
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024
    except (OSError, KeyError, ValueError):
        return None


def run_measured(
    command: list[str], progress: Callable[[], int] | None = None
) -> tuple[float, float, list[tuple[int, float]]]:
    """(wall s, peak RSS MiB, [(progress count, RSS MiB)]) of ``crack command``.

    The peak is the child's own high-water mark (VmHWM), read until it exits; not ``ru_maxrss``, which
    Linux seeds with the parent's figure at fork (this script holds a 100 MP photo while making it).
    """
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "crackcli", *command], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    samples: list[tuple[int, float]] = []
    peak = 0.0
    while proc.poll() is None:
        memory = memory_mib(proc.pid)
        if memory is not None:
            peak = max(peak, memory[1])
            if progress is not None:
                samples.append((progress(), memory[0]))
        time.sleep(0.02)
    wall = time.perf_counter() - started
    stderr = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if proc.returncode != 0:
        raise SystemExit(f"crack {' '.join(command[:2])} failed ({proc.returncode}): {stderr[-2000:]}")
    return wall, peak, samples


def flatness(samples: list[tuple[int, float]], total: int) -> str:
    """RSS in the first and the last tenth of the job, and the growth per 100 photos between them."""
    first = [rss for count, rss in samples if 0 < count <= total // 10]
    last = [rss for count, rss in samples if count >= total - total // 10]
    if not first or not last:
        return "too few samples"
    start, end = float(np.median(first)), float(np.median(last))
    return (
        f"RSS {start:.0f} MiB after the first tenth, "
        f"{end:.0f} MiB in the last: {100 * (end - start) / (0.8 * total):+.1f} MiB per 100 photos"
    )


def main() -> None:
    args = parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="crack-memory-"))
    try:
        width = int(round((args.megapixels * 1e6 * 4 / 3) ** 0.5))
        height = int(round(args.megapixels * 1e6 / width))
        big = work / "big" / "photo.jpg"
        write_photo(big, width, height, seed=0)
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, model {args.model.name}")
        print(f"one photo: {width}×{height} ({width * height / 1e6:.0f} MP, {big.stat().st_size / 2**20:.0f} MiB JPEG)")
        for name, command in (
            ("scan", ["scan", str(big), "--model", str(args.model), "--out", str(work / "scan-big"), "--quiet"]),
            (
                "scan --mode dense",
                [
                    "scan",
                    str(big),
                    "--model",
                    str(args.model),
                    "--mode",
                    "dense",
                    "--out",
                    str(work / "scan-big-dense"),
                    "--quiet",
                ],
            ),
            ("prepare", ["prepare", str(big), "--labels", "none", "--out", str(work / "prepare-big"), "--quiet"]),
        ):
            wall, peak, _ = run_measured(command)
            print(f"  crack {name:18} peak RSS {peak:7.0f} MiB  wall {wall:6.1f} s")

        folder = work / "folder"
        distinct = 20
        for index in range(distinct):
            write_photo(folder / f"p{index:04d}.jpg", 1600, 1200, seed=index + 1)
        for index in range(distinct, args.photos):  # hard links: a long folder without a long wait to write it
            os.link(folder / f"p{index % distinct:04d}.jpg", folder / f"p{index:04d}.jpg")
        print(f"folder: {args.photos} photos of 1600×1200")
        scan_out, prepare_out = work / "scan-folder", work / "prepare-folder"

        def reports() -> int:
            return sum(1 for _ in scan_out.glob("*.json")) if scan_out.exists() else 0

        def patched() -> int:  # photos done: prepare writes each photo's patches before the next one's
            return len({p.name.split("_x")[0] for p in prepare_out.glob("*.png")}) if prepare_out.exists() else 0

        for name, command, progress in (
            ("scan", ["scan", str(folder), "--model", str(args.model), "--out", str(scan_out), "--quiet"], reports),
            ("prepare", ["prepare", str(folder), "--labels", "none", "--out", str(prepare_out), "--quiet"], patched),
        ):
            wall, peak, samples = run_measured(command, progress)
            print(
                f"  crack {name:8} peak RSS {peak:7.0f} MiB  wall {wall:6.1f} s  ({args.photos / wall:.1f} photos/s); "
                f"{flatness(samples, args.photos)}"
            )
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
