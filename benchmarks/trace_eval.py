"""How well `crack scan --trace` finds and measures cracks, against the photo sets with crack masks.

    python benchmarks/trace_eval.py MODEL [--tracer learned|classical|FILE]
        [--sets deepcrack,crackforest,uav75_dev,pavement_crops] [--whole] [--speed-runs 5]

A set may be named with a part: ``deepcrack:select`` is a third of its source photos (chosen by a hash
of the name, crops of one photo together), ``deepcrack:report`` the other two thirds, so that settings
chosen on one part are reported on the other.

Each set's photos are scanned as `crack scan --trace` would (the model's windows and stride, threshold
0.5), and the traced crack pixels (``<name>_cracks.png``) and centre lines (widths as the report gives
them) are compared with the set's masks:

- pixel precision / recall / F with a 2-pixel tolerance (a found pixel counts when a mask pixel lies
  within 2 px of it, a mask pixel when a found one does: the usual protocol for crack maps);
- length: per photo, |traced length − the mask's centre-line length| / the mask's, median over the
  photos whose mask holds at least 50 px of crack;
- width: at every centre-line pixel of the mask with a traced centre-line pixel within 2 px, the
  traced width there against the mask's, median |difference| in px; the mask's width both as twice its
  distance transform (2·d, the usual definition) and as area per length (what the trace reports); and
  the median signed difference against the latter (whether traces read wide or narrow).

``--tracer`` picks the extractor as `crack scan --tracer` does.  ``--whole`` also runs it on every
photo whole, without the classifier, to show what the windows gain or cost.  ``--speed-runs N`` times
a 7000×6000 photo with about 9% crack windows as whole
`crack scan` processes with and without ``--trace``, alternately, after a warm-up; medians.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import cv2
import numpy as np

from crackcli.io.images import read_gray, read_mask
from crackcli.measure.centerlines import CenterLine, center_lines
from crackcli.measure.profile_widths import with_profile_widths
from crackcli.model.predictors import OnnxPredictor
from crackcli.scan.job import ScanJob
from crackcli.scan.options import ScanOptions
from crackcli.scan.traces import DEFAULT_EXTRACTOR, PhotoTraces, open_extractor

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SETS = ("deepcrack", "crackforest", "uav75_dev", "pavement_crops")
TOLERANCE = 2
MIN_LENGTH = 50.0
SPEED_PHOTO = Path("sample_images/images/synth_0100.jpg")
PARTS = ("select", "report")
SELECT_ONE_IN = 3  # a third of a set's source photos choose settings, the other two thirds report


def disc(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def pixel_matches(found: np.ndarray, truth: np.ndarray) -> tuple[int, int, int, int]:
    """Found pixels within TOLERANCE of a crack pixel, found pixels, crack pixels within TOLERANCE of a
    found one, crack pixels."""
    near_truth = cv2.dilate(truth.astype(np.uint8), disc(TOLERANCE)) > 0
    near_found = cv2.dilate(found.astype(np.uint8), disc(TOLERANCE)) > 0
    return int((found & near_truth).sum()), int(found.sum()), int((truth & near_found).sum()), int(truth.sum())


class Tally:
    """Pixel matches, length errors and width errors over a set."""

    def __init__(self) -> None:
        self.matched_found = self.found = self.matched_truth = self.truth = 0
        self.length_errors: list[float] = []
        self.length_ratios: list[float] = []  # traced length / the mask's: whether traces run long or short
        self.width_errors_area: list[np.ndarray] = []
        self.width_errors_2d: list[np.ndarray] = []

    def add(self, found: np.ndarray, truth: np.ndarray, found_lines: list[CenterLine]) -> None:
        matched_found, found_count, matched_truth, truth_count = pixel_matches(found, truth)
        self.matched_found += matched_found
        self.found += found_count
        self.matched_truth += matched_truth
        self.truth += truth_count
        truth_lines = center_lines(truth)
        truth_length = sum(line.length_px for line in truth_lines)
        if truth_length >= MIN_LENGTH:
            found_length = sum(line.length_px for line in found_lines)
            self.length_errors.append(abs(found_length - truth_length) / truth_length)
            self.length_ratios.append(found_length / truth_length)
        self._widths(truth, truth_lines, found_lines)

    def _widths(self, truth: np.ndarray, truth_lines: list[CenterLine], found_lines: list[CenterLine]) -> None:
        if not truth_lines or not found_lines:
            return
        shape = truth.shape
        found_at = np.concatenate([line.pixels for line in found_lines])
        found_widths = np.concatenate([line.widths_px for line in found_lines])
        # the nearest traced centre-line pixel of every pixel, and how far it is
        skeleton = np.full(shape, 255, np.uint8)
        skeleton[found_at[:, 1], found_at[:, 0]] = 0
        distance, label = cv2.distanceTransformWithLabels(
            skeleton, cv2.DIST_L2, cv2.DIST_MASK_5, labelType=cv2.DIST_LABEL_PIXEL
        )
        width_of_label = np.zeros(int(label.max()) + 1, np.float32)
        width_of_label[label[found_at[:, 1], found_at[:, 0]]] = found_widths
        truth_at = np.concatenate([line.pixels for line in truth_lines])
        truth_area_widths = np.concatenate([line.widths_px for line in truth_lines])
        inside = cv2.distanceTransform(truth.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        truth_2d = 2 * inside[truth_at[:, 1], truth_at[:, 0]]
        close = distance[truth_at[:, 1], truth_at[:, 0]] <= TOLERANCE
        traced = width_of_label[label[truth_at[:, 1], truth_at[:, 0]]]
        self.width_errors_area.append((traced - truth_area_widths)[close])  # signed: traced wider > 0
        self.width_errors_2d.append((traced - truth_2d)[close])

    @property
    def f(self) -> float:
        precision, recall = self.matched_found / max(self.found, 1), self.matched_truth / max(self.truth, 1)
        return 2 * precision * recall / max(precision + recall, 1e-9)

    def line(self, name: str) -> str:
        precision = self.matched_found / max(self.found, 1)
        recall = self.matched_truth / max(self.truth, 1)
        f = self.f
        length = statistics.median(self.length_errors) if self.length_errors else float("nan")
        ratio = statistics.median(self.length_ratios) if self.length_ratios else float("nan")
        area = np.concatenate(self.width_errors_area) if self.width_errors_area else np.zeros(0)
        twice = np.concatenate(self.width_errors_2d) if self.width_errors_2d else np.zeros(0)
        width_area = float(np.median(np.abs(area))) if area.size else float("nan")
        width_2d = float(np.median(np.abs(twice))) if twice.size else float("nan")
        bias = float(np.median(area)) if area.size else float("nan")
        return (
            f"{name:28} P {precision:.3f}  R {recall:.3f}  F {f:.3f}  length error {length:6.1%} "
            f"({len(self.length_errors)} photos, traced/mask {ratio:.2f})  "
            f"width error {width_area:.2f} px (area/length), {width_2d:.2f} px (2·d), {area.size} px compared, "
            f"traced {bias:+.2f} px wider at the median"
        )


def source_photo(stem: str) -> str:
    """The photo a picture was cut from: DeepCrack's ``11215-4`` and ``11215-6`` are crops of one, as are
    `uav75_dev`'s ``DSC00560`` and ``DSC00560b``."""
    return re.sub(r"(-\d+|(?<=\d)[a-z])$", "", stem)


def in_part(stem: str, part: str | None) -> bool:
    """Whether a picture belongs to ``part`` of its set: ``select`` holds the source photos whose name
    hashes to 0 mod SELECT_ONE_IN (crops of one photo together), ``report`` the rest, None all."""
    if part is None:
        return True
    chosen = zlib.crc32(source_photo(stem).encode()) % SELECT_ONE_IN == 0
    return chosen if part == "select" else not chosen


def photos_of(root: Path, part: str | None = None) -> list[tuple[Path, Path]]:
    pairs = []
    masks = {p.stem: p for p in (root / "masks").iterdir()}
    for image in sorted((root / "images").iterdir()):
        if image.stem in masks and in_part(image.stem, part):
            pairs.append((image, masks[image.stem]))
    return pairs


def set_and_part(spec: str) -> tuple[str, str | None]:
    """``deepcrack`` → the whole set; ``deepcrack:select`` or ``deepcrack:report`` → one part of it."""
    name, _, part = spec.partition(":")
    if part not in ("", *PARTS):
        raise SystemExit(f"{spec}: the part after ':' must be one of {', '.join(PARTS)}")
    return name, part or None


def truth_mask(path: Path, shape: tuple[int, int]) -> np.ndarray:
    mask = read_mask(path)
    if mask.shape != shape:  # a few sets store masks at another size
        mask = cv2.resize(mask.astype(np.uint8), shape[::-1], interpolation=cv2.INTER_NEAREST) > 0
    return mask


class RecordingJob(ScanJob):
    """A scan job that keeps each photo's traces: its crack pixels and centre lines, widths as reported."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.traced: dict[Path, PhotoTraces] = {}

    def _trace(self, path: Path, *args, **kwargs) -> PhotoTraces:  # type: ignore[no-untyped-def]
        self.traced[path] = super()._trace(path, *args, **kwargs)
        return self.traced[path]


def evaluate_set(
    model: Path, tracer: str, root: Path, whole: bool, part: str | None = None
) -> tuple[Tally, Tally | None, float]:
    pairs = photos_of(root, part)
    scanned, alone = Tally(), Tally() if whole else None
    with tempfile.TemporaryDirectory() as out:
        options = ScanOptions(trace=True, tracer=tracer, overlay=False, force=True)
        job = RecordingJob(OnnxPredictor(model, "cpu"), options, Path(out))
        started = time.perf_counter()
        result = job.run([(image, image.stem) for image, _ in pairs])
        seconds = time.perf_counter() - started
        if result.failed:
            raise SystemExit(f"{root}: {result.failed} photos failed to scan")
        for image, mask in pairs:
            traced = job.traced[image]
            truth = truth_mask(mask, traced.mask.shape)
            scanned.add(traced.mask, truth, traced.lines)
            if alone is not None and job.extractor is not None:  # the scan's own extractor, on the whole photo
                gray = read_gray(image)
                everywhere, core = job.extractor.crack_pixels(gray, np.ones(gray.shape, bool))
                lines = with_profile_widths(gray, center_lines(everywhere, core=core))
                alone.add(everywhere, truth, lines)
    return scanned, alone, seconds / max(len(pairs), 1)


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def speed(model: Path, tracer: str, runs: int) -> None:
    with tempfile.TemporaryDirectory() as out:
        base = [sys.executable, "-m", "crackcli", "scan", str(SPEED_PHOTO), "--model", str(model), "--force"]
        plain = [*base, "--out", f"{out}/plain", "--quiet"]
        traced = [*base, "--out", f"{out}/traced", "--quiet", "--trace", "--tracer", tracer]
        timed(plain), timed(traced)
        pairs = [(timed(plain), timed(traced)) for _ in range(runs)]
    without, with_trace = statistics.median(p for p, _ in pairs), statistics.median(t for _, t in pairs)
    ratio = statistics.median(t / p for p, t in pairs)
    print(
        f"speed: {SPEED_PHOTO} (7000×6000), crack scan {without:.2f} s, with --trace {with_trace:.2f} s: "
        f"{ratio:.2f}× ({runs} alternating runs, medians)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("--tracer", default=DEFAULT_EXTRACTOR, help="learned, classical or a tracer file")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--whole", action="store_true", help="also trace every photo whole, without windows")
    parser.add_argument("--speed-runs", type=int, default=0)
    args = parser.parse_args()
    print(f"model {args.model}; tolerance {TOLERANCE} px; extractor {open_extractor(args.tracer).record()}")
    for spec in args.sets.split(","):
        name, part = set_and_part(spec)
        scanned, alone, per_photo = evaluate_set(args.model, args.tracer, args.data / name, args.whole, part)
        print(scanned.line(f"{spec} (scan --trace)") + f"  {per_photo:.2f} s/photo", flush=True)
        if alone is not None:
            print(alone.line(f"{spec} (whole photo)"), flush=True)
    if args.speed_runs:
        speed(args.model, args.tracer, args.speed_runs)


if __name__ == "__main__":
    main()
