"""`crack prepare` speed on 7000×6000 JPEGs of real concrete texture, against the decode + encode floor.

    python benchmarks/prepare_speed.py              # 1 photo timed 3×, then a folder of 4 photos

The photo is a mosaic of real 227×227 concrete patches from ../shared/data/ccic (synthetic texture
when that folder is missing), saved as JPEG quality 90.  The floor is measured in the same run:
decoding the photo once plus encoding each of its 224×224 patches serially (PNG compression 1 or
JPEG quality 95), without writing files.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from crackcli.data.prepare import PrepareOptions, Preparer
from crackcli.data.synth import synthesize
from crackcli.data.tiling import crop, grid
from crackcli.io.images import encode_image, read_rgb, write_image

CCIC = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ccic" / "train"


def real_texture_photo(width: int, height: int, seed: int) -> np.ndarray:
    patches = sorted(CCIC.glob("*/*.jpg"))
    if not patches:
        print(f"note: {CCIC} not found; using synthetic texture")
        return synthesize(width, height, seed).image
    rng = np.random.default_rng(seed)
    tile = 227
    photo = np.empty((height, width, 3), np.uint8)
    for y in range(0, height, tile):
        for x in range(0, width, tile):
            patch = read_rgb(patches[rng.integers(len(patches))])
            photo[y : y + tile, x : x + tile] = patch[: height - y, : width - x]
    return photo


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=7000)
    parser.add_argument("--height", type=int, default=6000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--folder", type=int, default=4, help="photos in the folder run")
    parser.add_argument("--workers", type=int, default=0, help="0: usable CPUs")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="crack-prepare-bench-"))
    try:
        src = work / "src" / "concrete"
        for i in range(args.folder):
            write_image(src / f"photo{i}.jpg", real_texture_photo(args.width, args.height, seed=i), jpeg_quality=90)
        first = src / "photo0.jpg"
        image = read_rgb(first)
        windows = grid(args.width, args.height, 224, 224, "shift")

        decode = timed(lambda: read_rgb(first), args.repeats)
        png_encode = timed(lambda: [encode_image(crop(image, w), ".png") for w in windows], args.repeats)
        jpg_encode = timed(
            lambda: [encode_image(crop(image, w), ".jpg", jpeg_quality=95) for w in windows], args.repeats
        )

        def run(fmt: str, sources: list[str], out: Path) -> float:
            options = PrepareOptions(out=out, image_format=fmt, overwrite=True, workers=args.workers)
            start = time.perf_counter()
            summary = Preparer(options).run(sources)
            assert not summary.failures, summary.failures
            return time.perf_counter() - start

        png = timed(lambda: run("png", [str(first)], work / "out-png"), args.repeats)
        jpg = timed(lambda: run("jpg", [str(first)], work / "out-jpg"), args.repeats)
        folder_png = run("png", [str(src)], work / "folder-png")
        folder_jpg = run("jpg", [str(src)], work / "folder-jpg")

        print(
            f"photo {args.width}x{args.height} JPEG q90, {len(windows)} patches of 224, "
            f"workers={args.workers or 'auto'}"
        )
        print(f"floor: decode {decode:.3f} s, PNG encodes {png_encode:.3f} s, JPEG encodes {jpg_encode:.3f} s (serial)")
        print(
            f"prepare --format png: {png:.3f} s/photo = {png / (decode + png_encode):.2f}x floor (decode + PNG encodes)"
        )
        print(
            f"prepare --format jpg: {jpg:.3f} s/photo = {jpg / (decode + jpg_encode):.2f}x floor (decode + JPEG "
            "encodes)"
        )
        print(
            f"folder of {args.folder}: png {folder_png / args.folder:.3f} s/photo, jpg "
            f"{folder_jpg / args.folder:.3f} s/photo"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
