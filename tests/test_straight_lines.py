"""The straight-line check of `crack scan`: ruled lines (joints, paint edges) taken out of crack windows,
cracks left alone."""

import json

import cv2
import numpy as np
import pytest
from helpers import write_photo

from crackcli.data.painting import paint_crack_with_mask
from crackcli.scan.api import ScanOptions, scan_photos
from crackcli.scan.straight_lines import LineCheck, checked_probs, erase_lines, line_segments


def surface(seed: int, side: int = 96) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(150 + rng.normal(0, 6, (side, side, 1)) + rng.normal(0, 2, (side, side, 3)), 0, 255).astype(np.uint8)


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

    erased, which = erase_lines(planes(rgb)[None])
    assert which.tolist() == [0]
    line = erased[0, :, 10:86, x + seed % 4 // 2].astype(float)
    assert abs(line.mean() - 150) < 12  # the surface's level where the line was
    assert (erased[0, :, :, :10] == planes(rgb)[:, :, :10]).all() or x < 16  # the rest untouched


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
    after = checked_probs(predictor, batch, before.copy(), LineCheck(crack=0, threshold=0.5))
    assert after[0, 0] < 0.5  # the joint taken out, nothing left to call crack
    assert (after[1:] == before[1:]).all()
    np.testing.assert_allclose(after.sum(axis=1), 1, atol=1e-6)


def test_scan_reports_whether_it_checked_lines_and_redoes_reports_made_otherwise(crack_model, tmp_path):
    _, model, _ = crack_model
    photo = write_photo(tmp_path / "photos" / "wall.jpg", 192, 128)
    out = tmp_path / "out"
    scan_photos([str(photo)], ScanOptions(model=model, out=out, patch=64))
    assert json.loads((out / "wall.json").read_text())["line_check"] is True
    again = scan_photos([str(photo)], ScanOptions(model=model, out=out, patch=64, line_check=False))
    assert again.scanned == 1 and again.kept == 0
    assert json.loads((out / "wall.json").read_text())["line_check"] is False
