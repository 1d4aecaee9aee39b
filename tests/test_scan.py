import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import texture_photo
from typer.testing import CliRunner

from crackcli.cli import app
from crackcli.data.tiling import Window
from crackcli.io.images import read_rgb, write_image
from crackcli.model.predictors import OnnxPredictor
from crackcli.scan import windows as scan_module
from crackcli.scan.findings import crack_heatmap, crack_regions
from crackcli.scan.overlay import viewing_pixels, viewing_size
from crackcli.scan.windows import ScanSettings, logit_map_tiled, scan_grid, scan_image

runner = CliRunner()
CRACK_ROW = 200
REPORT_KEYS = {
    "image",
    "width",
    "height",
    "model",
    "classes",
    "crack_class",
    "patch",
    "stride",
    "windows",
    "summary",
    "outputs",
    "timing_s",
}


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """A photo with a horizontal crack at CRACK_ROW and one without, as JPEG files."""
    root = tmp_path_factory.mktemp("photos")
    write_image(root / "cracked.jpg", texture_photo(384, 320, seed=3, crack_rows=(CRACK_ROW,)), jpeg_quality=95)
    write_image(root / "clean.jpg", texture_photo(320, 256, seed=4), jpeg_quality=95)
    return root


def scan_args(model, out, *extra):
    return ["scan", "--model", str(model), "--patch", "64", "--stride", "32", "--out", str(out), *extra]


def crack_probs_by_distance(report):
    """Crack probabilities of windows crossed by the crack line and of windows far from it."""
    crossed, far = [], []
    for window in report["windows"]:
        top, bottom = window["y"], window["y"] + window["size"]
        if top + 8 <= CRACK_ROW <= bottom - 8:
            crossed.append(window["probs"][0])
        elif top > CRACK_ROW + 16 or bottom < CRACK_ROW - 16:
            far.append(window["probs"][0])
    return np.array(crossed), np.array(far)


def test_a_known_crack_gets_high_probability_and_the_rest_low(crack_model, photos, tmp_path):
    _, model, _ = crack_model
    result = runner.invoke(app, scan_args(model, tmp_path, str(photos / "cracked.jpg"), "--json"))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["mode"] == "patch"
    crossed, far = crack_probs_by_distance(report)
    assert len(crossed) >= 10 and len(far) >= 40
    # Ranking (the share of crossed/far pairs ordered right) and levels on either side of 0.5.
    assert (crossed[:, None] > far[None, :]).mean() >= 0.95
    assert crossed.mean() > 0.5 and np.median(far) < 0.5
    # The crack runs across the photo: regions about two windows wide follow it, together covering it.
    regions = report["summary"]["regions"]
    assert all(
        r["bbox"][2] - r["bbox"][0] <= 2 * 64 + 32 and r["bbox"][1] <= CRACK_ROW <= r["bbox"][3] for r in regions[:3]
    )
    assert sum(r["bbox"][2] - r["bbox"][0] for r in regions if r["bbox"][1] <= CRACK_ROW <= r["bbox"][3]) > 300


def test_report_schema_outputs_and_summary_csv(crack_model, photos, tmp_path):
    _, model, _ = crack_model
    result = runner.invoke(app, scan_args(model, tmp_path, str(photos)))
    assert result.exit_code == 0, result.output
    reports = {p.name: json.loads(p.read_text()) for p in tmp_path.glob("*.json")}
    assert set(reports) == {"cracked.json", "clean.json"}
    report = reports["cracked.json"]
    assert (
        REPORT_KEYS <= set(report) and report["classes"] == ["crack", "no_crack"] and report["crack_class"] == "crack"
    )
    assert len(report["windows"]) == len(scan_grid(384, 320, ScanSettings(64, 32)))
    assert all(abs(sum(w["probs"]) - 1) < 1e-3 and w["size"] == 64 for w in report["windows"])
    summary = report["summary"]
    counts = {"windows", "crack_windows", "crack_fraction", "line_check_cleared"}
    assert set(summary) == counts | {"max_crack_prob", "regions"}
    assert summary["line_check_cleared"] == sum(bool(w.get("line_check_cleared")) for w in report["windows"])
    assert sum(r["windows"] for r in summary["regions"]) == summary["crack_windows"] > 0
    for region in summary["regions"]:
        x0, y0, x1, y1 = region["bbox"]
        assert 0 <= x0 < x1 <= 384 and 0 <= y0 < y1 <= 320 and region["max_prob"] >= 0.5
    overlay = read_rgb(tmp_path / "cracked_overlay.jpg")
    assert overlay.shape == (320, 384, 3)
    heat = read_rgb(tmp_path / "cracked_heatmap.png")
    assert heat.shape[:2] == (320 // 8, 384 // 8)
    rows = (tmp_path / "summary.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[0].startswith("image,status")
    assert reports["clean.json"]["summary"]["crack_windows"] <= 1


def test_paths_from_stdin_and_json_lines_on_stdout(crack_model, photos, tmp_path):
    _, model, _ = crack_model
    listing = f"{photos / 'cracked.jpg'}\n\n{photos / 'clean.jpg'}\n"
    result = runner.invoke(app, scan_args(model, tmp_path, "-", "--json"), input=listing)
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert [json.loads(line)["image"] for line in lines] == [str(photos / "cracked.jpg"), str(photos / "clean.jpg")]


def test_shards_cover_every_input_exactly_once(crack_model, tmp_path):
    _, model, _ = crack_model
    for i in range(5):
        write_image(tmp_path / "in" / f"p{i}.png", texture_photo(96, 96, seed=i))
    seen = []
    for shard in range(3):
        result = runner.invoke(
            app, scan_args(model, tmp_path / "out", str(tmp_path / "in"), "--json", "--shard", f"{shard}/3")
        )
        assert result.exit_code == 0, result.output
        seen += [json.loads(line)["image"] for line in result.stdout.splitlines()]
        assert (tmp_path / "out" / f"summary-{shard}-of-3.csv").exists()
    assert sorted(seen) == sorted(str(tmp_path / "in" / f"p{i}.png") for i in range(5))
    bad = runner.invoke(app, scan_args(model, tmp_path / "out", str(tmp_path / "in"), "--shard", "3/3"))
    assert bad.exit_code == 2 and "--shard" in bad.stderr


def test_exit_codes_corrupt_photos_and_fail_on_crack(crack_model, photos, tmp_path):
    _, model, _ = crack_model
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "corrupt.jpg").write_bytes(os.urandom(500))
    truncated = (photos / "clean.jpg").read_bytes()
    (tmp_path / "in" / "truncated.jpg").write_bytes(truncated[: len(truncated) // 3])
    good = str(photos / "cracked.jpg")
    result = runner.invoke(
        app, scan_args(model, tmp_path / "a", str(tmp_path / "in" / "corrupt.jpg"), good, "missing.jpg", "--json")
    )
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "corrupt.jpg" in result.stderr and "missing.jpg" in result.stderr
    # Every input gets a JSON line, the failed ones with their error; all are rows of summary.csv.
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    corrupt = str(tmp_path / "in" / "corrupt.jpg")
    assert sorted(line["image"] for line in lines) == sorted([corrupt, good, "missing.jpg"])
    assert all(("error" in line) == (line["image"] != good) for line in lines)
    with open(tmp_path / "a" / "summary.csv", newline="") as handle:
        rows = {row["image"]: row for row in csv.DictReader(handle)}
    assert rows["missing.jpg"]["status"] == "failed" and "missing.jpg" in rows["missing.jpg"]["error"]
    assert rows[corrupt]["status"] == "failed" and rows[good]["status"] == "scanned"
    assert runner.invoke(app, scan_args(model, tmp_path / "b", good, "--fail-on-crack")).exit_code == 3
    assert (
        runner.invoke(
            app, scan_args(model, tmp_path / "c", str(photos / "clean.jpg"), "--fail-on-crack", "--threshold", "0.999")
        ).exit_code
        == 0
    )
    assert runner.invoke(app, scan_args(model, tmp_path / "d", good, "--mode", "fast")).exit_code == 2
    assert (
        runner.invoke(app, scan_args(model, tmp_path / "e", str(tmp_path / "empty-folder-that-is-missing"))).exit_code
        == 1
    )


def test_a_rerun_keeps_finished_reports_and_force_redoes_them(crack_model, photos, tmp_path):
    _, model, _ = crack_model
    args = scan_args(model, tmp_path, str(photos / "clean.jpg"))
    assert runner.invoke(app, args).exit_code == 0
    report = tmp_path / "clean.json"
    report.write_text(json.dumps({**json.loads(report.read_text()), "marked": True}))
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "1 kept" in again.stderr and '"marked"' in report.read_text()
    assert runner.invoke(app, [*args, "--force"]).exit_code == 0 and '"marked"' not in report.read_text()


def test_fail_on_crack_sees_a_photo_replaced_under_the_same_name(crack_model, photos, tmp_path):
    _, model, _ = crack_model
    photo = tmp_path / "in" / "site.jpg"
    photo.parent.mkdir()
    photo.write_bytes((photos / "clean.jpg").read_bytes())
    args = scan_args(model, tmp_path / "out", str(photo), "--fail-on-crack")
    assert runner.invoke(app, args).exit_code == 0
    photo.write_bytes((photos / "cracked.jpg").read_bytes())
    again = runner.invoke(app, args)
    assert again.exit_code == 3, again.output
    assert "scanning 1 photo again" in again.stderr


@pytest.mark.parametrize("size", [128, 200])
def test_dense_mode_equals_patch_mode_when_a_window_is_the_whole_photo(crack_model, size):
    """No neighbours to see: dense windows must then be exactly the patch result (resize, cells, weights)."""
    _, model, _ = crack_model
    predictor = OnnxPredictor(model, "cpu")
    photo = texture_photo(size, size, seed=5, crack_rows=(size // 3,))
    settings = ScanSettings(patch=size, stride=size)
    patch = scan_image(predictor, photo, (size, size), settings, "patch").probs
    dense = scan_image(predictor, photo, (size, size), settings, "dense").probs
    assert patch.shape == dense.shape == (1, 2) and np.abs(patch - dense).max() < 1e-4


def test_dense_mode_ranks_windows_on_a_crack_above_the_rest(crack_model, photos, tmp_path):
    _, model, _ = crack_model
    result = runner.invoke(app, scan_args(model, tmp_path, str(photos / "cracked.jpg"), "--mode", "dense", "--json"))
    assert result.exit_code == 0, result.output
    crossed, far = crack_probs_by_distance(json.loads(result.stdout))
    assert (crossed[:, None] > far[None, :]).mean() >= 0.8


def test_auto_mode_follows_the_scan_mode_the_export_recorded(crack_model, photos, tmp_path):
    checkpoint, default_export, _ = crack_model
    vouched = tmp_path / "dense.onnx"
    result = runner.invoke(app, ["export", str(checkpoint), "--out", str(vouched), "--scan-mode", "dense"])
    assert result.exit_code == 0, result.output
    photo = str(photos / "cracked.jpg")
    modes = {}
    for name, model, extra in [
        ("plain", default_export, []),
        ("vouched", vouched, []),
        ("forced", vouched, ["--mode", "patch"]),
    ]:
        result = runner.invoke(app, scan_args(model, tmp_path / name, photo, "--json", *extra))
        assert result.exit_code == 0, result.output
        modes[name] = json.loads(result.stdout)["mode"]
    assert modes == {"plain": "patch", "vouched": "dense", "forced": "patch"}
    info = runner.invoke(app, ["info", str(vouched), "--json"])
    assert json.loads(info.stdout)["scan_mode"] == "dense"


def test_patch_mode_on_a_reduced_decode_matches_the_full_decode(crack_model):
    """Windows are shrunk to the model's input anyway: a half-size decode must score them alike."""
    _, model, _ = crack_model
    predictor = OnnxPredictor(model, "cpu")
    photo = texture_photo(517, 389, seed=8, crack_rows=(150,))  # odd sizes: shifted edge windows
    settings = ScanSettings(patch=160, stride=80, mode="patch")  # model input 64 px: a 1/2 decode keeps 80 px
    assert scan_module.decode_reduction(predictor, settings) == 2
    full = scan_image(predictor, photo, (517, 389), settings, "patch").probs
    half = cv2.resize(photo, (259, 195), interpolation=cv2.INTER_AREA)
    reduced = scan_image(predictor, half, (517, 389), settings, "patch").probs
    assert full.shape == reduced.shape
    assert np.abs(full - reduced).mean() < 0.03 and ((full[:, 0] >= 0.5) == (reduced[:, 0] >= 0.5)).mean() >= 0.9


def test_tiles_with_halos_stitch_to_the_whole_image_result(crack_model, monkeypatch):
    _, model, _ = crack_model
    predictor = OnnxPredictor(model, "cpu")
    image = texture_photo(400, 272, seed=6, crack_rows=(140,))
    whole = logit_map_tiled(predictor, image)
    monkeypatch.setattr(scan_module, "TILE", 64)
    monkeypatch.setattr(scan_module, "HALO", 512)  # every tile sees the whole image: stitching must be exact
    assert np.abs(logit_map_tiled(predictor, image) - whole).max() < 1e-3


def test_mode_dense_is_refused_for_models_without_a_dense_form(tmp_path):
    from crackcli.model.backbones import build_model
    from crackcli.model.checkpoint import save_checkpoint
    from crackcli.model.meta import ModelMeta

    meta = ModelMeta("mobilenet_v3_small", ("crack", "no_crack"), "crack", 64, (0.5,) * 3, (0.25,) * 3)
    save_checkpoint(tmp_path / "m.pt", meta, build_model("mobilenet_v3_small", 2, mean=meta.mean, std=meta.std))
    write_image(tmp_path / "p.png", texture_photo(96, 96))
    result = runner.invoke(
        app, scan_args(tmp_path / "m.pt", tmp_path / "o", str(tmp_path / "p.png"), "--mode", "dense")
    )
    assert result.exit_code == 2 and "--mode patch" in result.stderr
    patch = runner.invoke(app, scan_args(tmp_path / "m.pt", tmp_path / "o", str(tmp_path / "p.png"), "--json"))
    assert patch.exit_code == 0 and json.loads(patch.stdout)["mode"] == "patch"
    vouch = runner.invoke(app, ["export", str(tmp_path / "m.pt"), "--scan-mode", "dense"])
    assert vouch.exit_code == 2 and "--scan-mode patch" in vouch.stderr


def test_heatmap_is_the_mean_over_covering_windows_and_regions_join_touching_windows():
    windows = [Window(0, 0, 8), Window(4, 0, 8), Window(20, 20, 8)]
    probs = np.array([1.0, 0.0, 0.9])
    heat = crack_heatmap(windows, probs, 28, 28, cell=4)
    assert heat[0, 0] == 1.0 and heat[0, 1] == 0.5 and heat[0, 2] == 0.0 and heat[6, 6] == pytest.approx(0.9)
    # Without overlap (stride = window) a window's tile is the whole window.
    regions, mask = crack_regions(windows, probs, 0.5, 28, 28, cell=4, stride=8, max_side=100)
    assert [r.bbox for r in regions] == [(0, 0, 8, 8), (20, 20, 28, 28)] and mask.sum() == 8
    assert [r.area for r in regions] == [64, 64] and regions[0].mean_prob == 1.0
    joined, _ = crack_regions(windows, np.array([1.0, 0.8, 0.1]), 0.5, 28, 28, cell=4, stride=8, max_side=100)
    assert [(r.bbox, r.windows, r.max_prob, r.mean_prob) for r in joined] == [((0, 0, 12, 8), 2, 1.0, 0.9)]


def test_regions_are_the_windows_own_tiles_and_long_ones_are_cut():
    # Windows of 8 every 4: each window's tile is its central 4 × 4 (out to the photo's edge where the
    # window reaches it), so the two crack windows at x = 0 and 4 make a region 10 px wide, not 12.
    windows = [Window(x, y, 8) for y in range(0, 21, 4) for x in range(0, 21, 4)]
    probs = np.array([1.0 if w.y == 8 and w.x <= 4 else 0.0 for w in windows])
    (region,), mask = crack_regions(windows, probs, 0.5, 28, 28, cell=2, stride=4, max_side=100)
    assert region.bbox == (0, 10, 10, 14) and region.windows == 2 and region.area == 40 and mask.sum() == 10

    # A crack along a whole row of windows is cut into parts of at most max_side, highest score first.
    probs = np.array([0.6 + w.x / 100 if w.y == 8 else 0.0 for w in windows])
    regions, _ = crack_regions(windows, probs, 0.5, 28, 28, cell=2, stride=4, max_side=10)
    assert len(regions) == 3 and all(r.bbox[2] - r.bbox[0] <= 10 for r in regions)
    assert sum(r.windows for r in regions) == 6 and regions[0].max_prob == pytest.approx(0.8)
    covered = sorted((r.bbox[0], r.bbox[2]) for r in regions)
    assert covered[0][0] == 0 and covered[-1][1] == 28 and all(a[1] == b[0] for a, b in zip(covered, covered[1:]))


def test_device_cuda_without_a_gpu_is_one_warning_and_stdout_stays_json(photos, tmp_path):
    if Path("/dev/nvidiactl").exists():
        pytest.skip("a GPU is present: CUDA starts, there is nothing to warn about")
    command = [sys.executable, "-m", "crackcli", "scan", str(photos / "clean.jpg"), "--device", "cuda"]
    result = subprocess.run([*command, "--json", "--out", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["image"] for line in result.stdout.splitlines()] == [str(photos / "clean.jpg")]
    warnings = [line for line in result.stderr.splitlines() if line.startswith("crack: warning: --device cuda")]
    assert len(warnings) == 1 and "onnxruntime" not in result.stderr + result.stdout  # no library log dump


def test_paths_with_newlines_come_through_stdin_when_nul_separated(photos, tmp_path):
    odd = tmp_path / "in" / "site\nA.jpg"
    odd.parent.mkdir()
    odd.write_bytes((photos / "clean.jpg").read_bytes())
    listing = bytes(odd) + b"\0" + bytes(photos / "cracked.jpg") + b"\0"
    command = [sys.executable, "-m", "crackcli", "scan", "-", "--null", "--json", "--out", str(tmp_path / "out")]
    result = subprocess.run(command, input=listing, capture_output=True)
    assert result.returncode == 0, result.stderr
    assert sorted(json.loads(line)["image"] for line in result.stdout.splitlines()) == sorted(
        [str(odd), str(photos / "cracked.jpg")]
    )
    lines = subprocess.run([*command[:5], "--json", "--out", str(tmp_path / "o2")], input=listing, capture_output=True)
    assert lines.returncode == 1  # one path per line splits the odd name: both halves fail, loudly
    no_dash = runner.invoke(app, ["scan", str(odd), "--null"])
    assert no_dash.exit_code == 2 and "--null reads paths from stdin" in no_dash.stderr


@pytest.mark.parametrize("shape", [(1403, 1001), (1400, 1000), (2800, 2000), (700, 332)])
def test_overlay_pixels_are_the_photo_averaged_to_the_viewing_size(shape):
    # Concrete-like grain blurred as a lens does, and a crack.
    photo = cv2.GaussianBlur(texture_photo(shape[1], shape[0], sum(shape), (shape[0] // 3,)), (0, 0), 1.5)
    size = viewing_size(shape[1], shape[0], 320)
    shown = viewing_pixels(photo, size)
    direct = cv2.resize(photo, size, interpolation=cv2.INTER_AREA)
    assert shown.shape == direct.shape
    assert np.abs(shown.astype(int) - direct).mean() < 1.0  # halving first moves the picture by under a level
    plain = np.full((*shape, 3), (40, 150, 220), np.uint8)
    assert (viewing_pixels(plain, size) == (40, 150, 220)).all()
