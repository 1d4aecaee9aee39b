"""`crack scan --trace`: crack pixels, centre lines and measurements inside the crack windows, on a real
ONNX model and real photo files with a crack of known place and width."""

import csv
import json

import cv2
import numpy as np
import pytest
from helpers import texture_photo
from typer.testing import CliRunner

from crackcli.cli import app
from crackcli.io.images import read_mask, read_rgb, write_image

runner = CliRunner()
ROW = 160  # the crack's row


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("trace_photos")
    write_image(root / "cracked.jpg", texture_photo(384, 320, seed=3, crack_rows=(ROW,), thickness=3), jpeg_quality=95)
    write_image(root / "clean.jpg", texture_photo(384, 320, seed=4), jpeg_quality=95)
    return root


def scan(model, out, *extra):
    return runner.invoke(app, ["scan", *extra, "--model", str(model), "--out", str(out), "--patch", "64"])


@pytest.mark.parametrize("tracer", ["learned", "classical"])
def test_traced_crack_pixels_centre_lines_and_measurements(crack_model, photos, tmp_path, tracer):
    _, model, _ = crack_model
    args = (str(photos / "cracked.jpg"), "--trace", "--tracer", tracer, "--mm-per-px", "0.2", "--json")
    result = scan(model, tmp_path, *args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    cracks = read_mask(tmp_path / "cracked_cracks.png")
    assert cracks.shape == (320, 384)
    rows = np.nonzero(cracks)[0]
    assert len(rows) and np.mean(np.abs(rows - ROW) <= 4) > 0.95  # on the crack, hardly anywhere else
    assert cracks[ROW - 3 : ROW + 4].any(axis=0).mean() > 0.6  # along most of it

    summary = report["summary"]
    traced = summary["trace"]
    assert traced["length_px"] > 0.6 * 384 and 2 <= traced["max_width_px"] <= 12
    assert traced["length_mm"] == pytest.approx(traced["length_px"] * 0.2, abs=0.1)
    assert set(traced["length_mm_by_width"]) == {"<0.1", "0.1-0.3", "0.3-1", ">1"}
    assert sum(traced["length_mm_by_width"].values()) == pytest.approx(traced["length_mm"], rel=0.01)
    assert sum(r["trace"]["length_px"] for r in summary["regions"]) == pytest.approx(traced["length_px"], abs=0.5)

    lines = report["centerlines"]
    assert lines["type"] == "FeatureCollection" and lines["features"]
    for feature in lines["features"]:
        assert feature["geometry"]["type"] == "LineString"
        points = np.array(feature["geometry"]["coordinates"])
        assert (np.abs(points[:, 1] - ROW) <= 4).all() and (points[:, 0] >= 0).all() and (points[:, 0] < 384).all()
        assert 0 <= feature["properties"]["region"] < len(summary["regions"])
    assert report["timing_s"]["trace"] > 0 and report["outputs"]["cracks"].endswith("cracked_cracks.png")
    assert report["provenance"]["settings"]["trace"]["extractor"] == tracer

    overlay = read_rgb(tmp_path / "cracked_overlay.jpg").astype(int)
    red, green, blue = overlay[..., 0], overlay[..., 1], overlay[..., 2]
    magenta = (red - green > 50) & (blue - green > 40)  # the trace's colour, dulled by JPEG's chroma
    assert magenta[ROW - 3 : ROW + 4].sum() > 50 and not magenta[: ROW - 20].any()

    row = next(csv.DictReader(open(tmp_path / "summary.csv")))
    assert float(row["crack_length_px"]) == traced["length_px"] and float(row["max_width_mm"]) == traced["max_width_mm"]


def test_a_clean_photo_traces_nothing_and_untraced_scans_write_no_traces(crack_model, photos, tmp_path):
    _, model, _ = crack_model
    result = scan(model, tmp_path / "t", str(photos / "clean.jpg"), "--trace")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "t" / "clean.json").read_text())
    if report["summary"]["crack_windows"] == 0:
        assert not read_mask(tmp_path / "t" / "clean_cracks.png").any()
        assert report["summary"]["trace"]["length_px"] == 0 and report["centerlines"]["features"] == []
    assert "length_mm" not in report["summary"]["trace"]  # no scale given: pixels only

    result = scan(model, tmp_path / "u", str(photos / "cracked.jpg"))
    report = json.loads((tmp_path / "u" / "cracked.json").read_text())
    assert "trace" not in report["summary"] and "centerlines" not in report
    assert not (tmp_path / "u" / "cracked_cracks.png").exists()
    row = next(csv.DictReader(open(tmp_path / "u" / "summary.csv")))
    assert row["crack_length_px"] == ""


def test_a_report_is_kept_only_when_traced_alike(crack_model, photos, tmp_path):
    _, model, _ = crack_model
    photo = str(photos / "cracked.jpg")
    assert scan(model, tmp_path, photo).exit_code == 0
    again = scan(model, tmp_path, photo, "--trace")
    assert "again: reports made with another trace" in again.output
    assert (tmp_path / "cracked_cracks.png").exists()
    same = scan(model, tmp_path, photo, "--trace")
    assert "1 kept" in same.output or "kept 1" in same.output, same.output
    classical = scan(model, tmp_path, photo, "--trace", "--tracer", "classical")
    assert "again: reports made with another trace" in classical.output
    kept = scan(model, tmp_path, photo, "--trace", "--tracer", "classical")
    assert "1 kept" in kept.output or "kept 1" in kept.output, kept.output
    scaled = scan(model, tmp_path, photo, "--trace", "--scale-line", "0,0,30,40,10")
    assert "again" in scaled.output
    report = json.loads((tmp_path / "cracked.json").read_text())
    assert report["summary"]["trace"]["length_mm"] == pytest.approx(
        report["summary"]["trace"]["length_px"] / 5, abs=0.1
    )
    untraced = scan(model, tmp_path, photo)  # an untraced scan does not keep a traced report either
    assert "again" in untraced.output


def test_a_traced_report_whose_widths_were_read_another_way_is_made_again(crack_model, photos, tmp_path, monkeypatch):
    _, model, _ = crack_model
    photo = str(photos / "cracked.jpg")
    assert scan(model, tmp_path, photo, "--trace").exit_code == 0
    kept = scan(model, tmp_path, photo, "--trace")
    assert "1 kept" in kept.output or "kept 1" in kept.output, kept.output
    monkeypatch.setattr("crackcli.scan.job.WIDTH_METHOD", "widths read some other way")
    again = scan(model, tmp_path, photo, "--trace")
    assert "again: reports made with another trace" in again.output


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["--mm-per-px", "0.1"], "--trace"),
        (["--tracer", "classical"], "--trace"),
        (["--trace", "--tracer", "missing.onnx"], "missing.onnx"),
        (["--trace", "--mm-per-px", "0.1", "--scale-line", "0,0,1,1,1"], "--scale-line"),
        (["--trace", "--scale-line", "0,0,0,0,5"], "--scale-line"),
        (["--trace", "--mm-per-px", "-1"], "--mm-per-px"),
        (["--trace", "--width-classes", "0.3,0.1"], "--width-classes"),
        (["--trace", "--width-classes", "thin"], "--width-classes"),
    ],
)
def test_bad_trace_options_are_one_usage_line(crack_model, photos, tmp_path, extra, named):
    _, model, _ = crack_model
    result = scan(model, tmp_path, str(photos / "cracked.jpg"), *extra)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and named in lines[0] and "Traceback" not in result.output


def test_a_photo_decoded_smaller_is_traced_at_its_own_resolution(crack_model, photos, tmp_path):
    """With 128 px windows for a 64 px model, the photo is decoded at half size for the classifier; the
    trace reads it again in full, so the crack mask has the photo's size and the crack's full width."""
    _, model, _ = crack_model
    big = tmp_path / "big.jpg"
    write_image(big, cv2.resize(texture_photo(384, 320, seed=3, crack_rows=(ROW,), thickness=3), (768, 640)))
    result = runner.invoke(
        app, ["scan", str(big), "--model", str(model), "--out", str(tmp_path / "o"), "--patch", "128", "--trace"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "o" / "big.json").read_text())
    cracks = read_mask(tmp_path / "o" / "big_cracks.png")
    assert cracks.shape == (640, 768)
    if report["summary"]["crack_windows"]:
        assert report["summary"]["trace"]["max_width_px"] >= 4  # 3 px drawn (about 5 wide), doubled
