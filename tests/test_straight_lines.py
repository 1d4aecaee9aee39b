"""The straight-line check of `crack scan`: ruled lines (joints, paint edges) taken out of crack windows,
cracks left alone."""

import csv
import json
import threading
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import write_photo

from crackcli.data.painting import paint_crack_with_mask
from crackcli.data.tiling import Window
from crackcli.io.images import write_image
from crackcli.model.meta import ModelMeta
from crackcli.scan.api import ScanOptions, scan_photos
from crackcli.scan.job import ScanJob
from crackcli.scan.patches import patch_probs
from crackcli.scan.straight_lines import (
    LineCheck,
    LineSearch,
    PhotoLines,
    checked_probs,
    line_segments,
    tile_medians,
    without_lines,
)


def surface(seed: int, side: int = 96, width: int | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (side, width or side)
    return np.clip(150 + rng.normal(0, 6, (*shape, 1)) + rng.normal(0, 2, (*shape, 3)), 0, 255).astype(np.uint8)


def planes(rgb: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rgb.transpose(2, 0, 1))


@pytest.mark.parametrize("seed", range(6))
def test_a_ruled_line_is_found_and_painted_out(seed):
    rgb = surface(seed)
    x = 20 + 9 * seed
    colour = (90, 90, 90) if seed % 2 else (215, 215, 215)  # a dark groove, or a light ridge
    cv2.line(rgb, (x, 0), (x + seed % 4, 95), colour, 2)
    segments = line_segments(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    assert len(segments)
    assert all(abs((s[0] + s[2]) / 2 - (x + (seed % 4) / 2)) < 3 for s in segments)
    assert all(np.hypot(s[2] - s[0], s[3] - s[1]) >= 72 for s in segments)

    erased = without_lines(rgb, segments)
    line = erased[:, 10:86, x + seed % 4 // 2].astype(float)
    assert abs(line.mean() - 150) < 12  # the surface's level where the line was
    assert (erased[:, :, :10] == planes(rgb)[:, :, :10]).all() or x < 16  # the rest untouched


@pytest.mark.parametrize("seed", range(10))
def test_a_wandering_crack_is_not_a_ruled_line(seed):
    rgb, mask = paint_crack_with_mask(surface(seed), np.random.default_rng(seed), (3.0, 6.0), (0.5, 0.7))
    assert mask.sum() > 100
    assert len(line_segments(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))) == 0


class DarkLinePredictor:
    """Crack probability from how dark a window's darkest column or row is against the window: a stand-in
    classifier that, like the default model, calls any thin dark line crack."""

    def predict(self, batch: np.ndarray) -> np.ndarray:
        gray = batch.astype(np.float32).mean(axis=1)
        darkest = np.minimum(gray.mean(axis=1).min(axis=1), gray.mean(axis=2).min(axis=1))
        crack = np.clip((gray.mean(axis=(1, 2)) - darkest) / 20, 0, 1)
        return np.stack([crack, 1 - crack], axis=1).astype(np.float32)


def test_only_windows_called_crack_are_checked_and_only_lowered():
    ruled, faint, clean = surface(1), surface(2), surface(3)
    cv2.line(ruled, (40, 0), (40, 95), (60, 60, 60), 2)
    cv2.line(faint, (40, 0), (40, 95), (146, 146, 146), 2)  # under the threshold: left as it is
    batch = np.stack([planes(ruled), planes(faint), planes(clean)])
    predictor = DarkLinePredictor()
    before = predictor.predict(batch)
    assert before[0, 0] >= 0.9 and before[1, 0] < 0.5
    fetched = []

    def inputs(chosen: np.ndarray) -> np.ndarray:
        fetched.extend(chosen.tolist())
        return batch[chosen]

    after = checked_probs(predictor, before.copy(), LineCheck(crack=0, threshold=0.5), inputs)
    assert fetched == [0]  # only the window called crack looked at again
    assert after[0, 0] < 0.5  # the joint taken out, nothing left to call crack
    assert (after[1:] == before[1:]).all()
    np.testing.assert_allclose(after.sum(axis=1), 1, atol=1e-6)


def test_medians_from_the_histograms_are_numpys():
    rng = np.random.default_rng(0)
    tiles = [rng.integers(0, rng.integers(1, 257), rng.integers(1, 500)).astype(np.uint8) for _ in range(300)]
    tiles += [np.full(7, 9, np.uint8), np.array([0, 255], np.uint8)]
    median, deviation = tile_medians(np.stack([np.bincount(tile, minlength=256) for tile in tiles]))
    for tile, m, d in zip(tiles, median, deviation, strict=True):
        assert m == np.median(tile.astype(float))
        assert d == np.median(np.abs(tile - m))


class DarkPixelPredictor:
    """Crack probability from the number of clearly dark pixels in a window: calls crack a window holding
    any piece of a dark line, however short."""

    meta = ModelMeta("stand-in", ("crack", "no_crack"), "crack", 96, (0.5,) * 3, (0.25,) * 3, patch_size=96)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        dark = (batch.astype(np.float32).mean(axis=1) < 110).sum(axis=(1, 2))
        crack = np.clip(dark / 20, 0, 1)
        return np.stack([crack, 1 - crack], axis=1).astype(np.float32)


def lines_near(
    planes: np.ndarray, origins: np.ndarray, called: np.ndarray, side: int, ready: Callable[[int], None]
) -> PhotoLines:
    """The photo's lines near the windows ``called``, searched with every window already scored."""
    with LineSearch(planes, origins, side, ready) as search:
        every = np.arange(len(origins))
        search.scored(every, np.isin(every, called))
        return search.lines()


def photo_with_joint() -> np.ndarray:
    """A 200×300 surface crossed by a ruled dark joint from (0, 100) to (299, 199)."""
    rgb = surface(4, 200, 300)
    cv2.line(rgb, (0, 100), (299, 199), (70, 70, 70), 2)
    return rgb


# Windows of 96 px: the joint crosses the first whole, only the bottom left corner of the second (about
# 35 px of it), and misses the third.
WINDOWS = [Window(0, 60, 96), Window(120, 56, 96), Window(204, 0, 96)]


def gray_window(rgb: np.ndarray, window: Window) -> np.ndarray:
    x0, y0, x1, y1 = window.box
    return cv2.cvtColor(np.ascontiguousarray(rgb[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY)


def test_a_joint_only_crossing_a_windows_corner_is_found_from_the_photo_around_it():
    rgb = photo_with_joint()
    assert len(line_segments(gray_window(rgb, WINDOWS[0])))
    assert len(line_segments(gray_window(rgb, WINDOWS[1]))) == 0  # too short to be a line within the window
    origins = np.array([(w.x, w.y) for w in WINDOWS], np.float64)
    waited: list[int] = []
    lines = lines_near(planes(rgb), origins, np.array([0, 1]), 96, waited.append)
    assert max(waited) == 200  # the rows below the windows (half a window) were made before being read
    waited.clear()
    lines_near(planes(rgb), origins, np.array([2]), 96, waited.append)
    assert waited == [144]  # a window at the top: 96 rows and half a window below, no more
    piece = lines.through(1)
    assert len(piece)
    assert 25 < max(np.hypot(s[2] - s[0], s[3] - s[1]) for s in piece) < 50
    assert all(abs(y - (100 + 99 / 299 * (x + 120)) + 56) < 3 for s in piece for x, y in (s[:2], s[2:]))
    assert len(lines.through(2)) == 0


def photo_with_joints() -> tuple[np.ndarray, np.ndarray]:
    """A 480×480 surface with three joints far apart, and the origins of its 96 px windows every 48 px."""
    rgb = surface(5, 480, 480)
    for start, end in [((0, 40), (200, 90)), ((300, 10), (330, 200)), ((20, 300), (470, 420))]:
        cv2.line(rgb, start, end, (70, 70, 70), 2)
    origins = np.array([(x, y) for y in range(0, 385, 48) for x in range(0, 385, 48)], np.float64)
    return rgb, origins


@pytest.mark.parametrize("seed", range(4))
def test_lines_searched_while_windows_are_scored_are_those_searched_after_the_last(seed):
    rgb, origins = photo_with_joints()
    rng = np.random.default_rng(seed)
    called = rng.random(len(origins)) < 0.3
    at_once = lines_near(planes(rgb), origins, np.flatnonzero(called), 96, lambda rows: None)
    assert len(at_once.segments)
    order = rng.permutation(len(origins)) if seed % 2 else np.arange(len(origins))
    with LineSearch(planes(rgb), origins, 96, lambda rows: None) as search:
        step = int(rng.integers(1, 20))
        for start in range(0, len(order), step):
            chunk = order[start : start + step]
            search.scored(chunk, called[chunk])
        found = search.lines()
    assert sorted(map(tuple, found.segments.tolist())) == sorted(map(tuple, at_once.segments.tolist()))
    for window in range(len(origins)):
        assert sorted(map(tuple, found.through(window).tolist())) == sorted(
            map(tuple, at_once.through(window).tolist())
        )


def test_a_stretch_is_searched_before_the_windows_below_it_are_scored():
    rgb, origins = photo_with_joints()
    searched = threading.Event()
    with LineSearch(planes(rgb), origins, 96, lambda rows: searched.set()) as search:
        top_row = np.flatnonzero(origins[:, 1] == 0)
        search.scored(top_row, origins[top_row, 0] == 96)  # one window called crack at the top
        assert not searched.is_set()  # the windows of the next rows could still join its stretch
        for y in (48, 96, 144, 192):
            row = np.flatnonzero(origins[:, 1] == y)
            search.scored(row, np.zeros(len(row), bool))
        assert searched.wait(10)  # out of reach of every window left: looked at now, on its own thread
        rest = np.flatnonzero(origins[:, 1] > 192)
        search.scored(rest, np.zeros(len(rest), bool))
        lines = search.lines()
    assert len(lines.through(int(np.flatnonzero((origins == (96, 0)).all(axis=1))[0])))


def test_the_scan_paints_out_a_joint_where_it_only_crosses_a_corner():
    rgb = photo_with_joint()
    predictor = DarkPixelPredictor()
    before, unchecked = patch_probs(predictor, rgb, (300, 200), WINDOWS, 8)
    assert before[:, 0].tolist() == [1, 1, 0] and not unchecked.any()
    after, cleared = patch_probs(predictor, rgb, (300, 200), WINDOWS, 8, check=LineCheck(0, 0.5))
    assert after[0, 0] < 0.5 and after[1, 0] < 0.5
    assert after[2, 0] == 0
    assert cleared.tolist() == [True, True, False]
    np.testing.assert_allclose(after.sum(axis=1), 1, atol=1e-6)


class DarkPixelScanner(DarkPixelPredictor):
    """The stand-in as a scan job's predictor (CPU, patch mode)."""

    dense, scan_mode, on_gpu, fallback = False, "patch", False, None

    def __init__(self, source: Path) -> None:
        self.source = source

    def describe(self) -> str:
        return "dark pixels"

    def ready(self) -> None:
        pass


def test_reports_and_the_job_table_name_the_windows_the_check_cleared(tmp_path):
    photo = tmp_path / "joint.png"
    write_image(photo, photo_with_joint())
    (tmp_path / "stand-in.onnx").write_bytes(b"hashed only")
    out = tmp_path / "out"
    options = ScanOptions(out=out, patch=96, stride=48, overlay=False)
    ScanJob(DarkPixelScanner(tmp_path / "stand-in.onnx"), options, out).run([(photo, "joint")])  # type: ignore[arg-type]
    report = json.loads((out / "joint.json").read_text())
    cleared = [w for w in report["windows"] if w.get("line_check_cleared")]
    assert cleared and all(w["probs"][0] < 0.5 for w in cleared)
    assert report["summary"]["line_check_cleared"] == len(cleared)
    assert report["summary"]["crack_windows"] == 0  # the joint was all the stand-in saw
    with (out / "summary.csv").open(newline="") as table:
        assert [row["line_check_cleared"] for row in csv.DictReader(table)] == [str(len(cleared))]

    unchecked = ScanOptions(out=out, patch=96, stride=48, overlay=False, line_check=False)
    ScanJob(DarkPixelScanner(tmp_path / "stand-in.onnx"), unchecked, out).run([(photo, "joint")])  # type: ignore[arg-type]
    report = json.loads((out / "joint.json").read_text())
    assert report["summary"]["line_check_cleared"] is None
    assert report["summary"]["crack_windows"] == len(cleared)
    assert not any("line_check_cleared" in w for w in report["windows"])


def test_scan_reports_whether_it_checked_lines_and_redoes_reports_made_otherwise(crack_model, tmp_path):
    _, model, _ = crack_model
    photo = write_photo(tmp_path / "photos" / "wall.jpg", 192, 128)
    out = tmp_path / "out"
    scan_photos([str(photo)], ScanOptions(model=model, out=out, patch=64))
    assert json.loads((out / "wall.json").read_text())["line_check"] is True
    again = scan_photos([str(photo)], ScanOptions(model=model, out=out, patch=64, line_check=False))
    assert again.scanned == 1 and again.kept == 0
    assert json.loads((out / "wall.json").read_text())["line_check"] is False
