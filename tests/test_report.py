"""Job-level outputs of a scan: EXIF facts in reports and summary.csv, findings.geojson, index.html, and
`crack report` rebuilding them over shards."""

import csv
import json
import re
from pathlib import Path
from urllib.parse import unquote

import numpy as np
from helpers import texture_photo
from PIL import Image
from typer.testing import CliRunner

from crackcli.cli.app import app
from crackcli.io.exif import photo_facts
from crackcli.io.images import write_image
from crackcli.scan.api import ScanOptions, scan_photos

runner = CliRunner()


def geotagged_jpeg(path: Path, pixels: np.ndarray, **gps) -> Path:
    """A JPEG with the EXIF a drone or phone camera writes (make, model, time, GPS)."""
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Acme", "Acme Drone X2"
    details = exif.get_ifd(0x8769)
    details[0x9003], details[0x9011] = "2026:05:04 13:02:11", "+02:00"
    position = exif.get_ifd(0x8825)
    position[1], position[2] = gps.get("lat_ref", "S"), gps.get("lat", (33.0, 51.0, 35.4))
    position[3], position[4] = gps.get("lon_ref", "E"), gps.get("lon", (151.0, 12.0, 40.0))
    position[5], position[6] = b"\x00", 58.5
    Image.fromarray(pixels).save(path, exif=exif)
    return path


def island(page: str) -> list[dict]:
    """The photos of a job page, as its script reads them."""
    data = re.search(r'<script id="photo-data" type="application/json">(.*?)</script>', page, re.S)
    assert data
    return json.loads(data.group(1))


def test_exif_reads_time_camera_and_position_and_ignores_what_is_not_a_fact(tmp_path):
    photo = geotagged_jpeg(tmp_path / "g.jpg", texture_photo(60, 40))
    with Image.open(photo) as image:
        facts = photo_facts(image.getexif())
    assert facts.taken == "2026-05-04T13:02:11+02:00" and facts.camera == "Acme Drone X2"
    assert abs(facts.latitude + (33 + 51 / 60 + 35.4 / 3600)) < 1e-6 and facts.latitude < 0
    assert abs(facts.longitude - (151 + 12 / 60 + 40 / 3600)) < 1e-6 and facts.altitude == 58.5

    # No fix (0, 0), a latitude beyond the pole, a zero date: no position, no time; never an error.
    for gps, expect_position in (({"lat": (0, 0, 0), "lon": (0, 0, 0)}, False), ({"lat": (91, 0, 0)}, False)):
        with Image.open(geotagged_jpeg(tmp_path / "bad.jpg", texture_photo(60, 40), **gps)) as image:
            assert photo_facts(image.getexif()).has_position is expect_position
    exif = Image.Exif()
    exif[0x0132], exif[0x0110] = "0000:00:00 00:00:00", "Model Only"
    facts = photo_facts(exif)
    assert facts.taken is None and facts.camera == "Model Only" and not facts.has_position
    assert photo_facts(Image.Exif()).as_dict() == dict.fromkeys(facts.as_dict())


def test_a_scan_folder_holds_a_map_a_page_and_a_table_with_the_photos_facts(crack_model, tmp_path):
    _, model, _ = crack_model
    photos = tmp_path / "photos"
    photos.mkdir()
    geotagged_jpeg(photos / "drone.jpg", texture_photo(192, 128, seed=1, crack_rows=(64,)))
    write_image(photos / "plain.png", texture_photo(128, 128, seed=2))
    (photos / "broken.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "out"
    result = scan_photos([str(photos)], ScanOptions(model=model, out=out, patch=64))
    assert (result.scanned, result.failed) == (2, 1)

    report = json.loads((out / "drone.json").read_text())
    assert report["exif"]["camera"] == "Acme Drone X2" and report["exif"]["taken"].startswith("2026-05-04T13:02")
    assert (out / "drone_thumb.jpg").is_file() and report["outputs"]["thumbnail"] == str(out / "drone_thumb.jpg")
    with Image.open(out / "drone_thumb.jpg") as thumb, Image.open(out / "drone_overlay.jpg") as overlay:
        assert max(thumb.size) == min(320, max(overlay.size)) and thumb.size[0] > thumb.size[1]

    with open(out / "summary.csv", newline="") as handle:
        rows = {Path(row["image"]).name: row for row in csv.DictReader(handle)}
    drone = rows["drone.jpg"]
    assert float(drone["latitude"]) < -33.8 and float(drone["longitude"]) > 151.2 and drone["camera"] == "Acme Drone X2"
    assert json.loads(drone["region_boxes"]) == [[*r["bbox"], r["max_prob"]] for r in report["summary"]["regions"]]
    assert drone["overlay"] == str(out / "drone_overlay.jpg") and rows["plain.png"]["latitude"] == ""
    assert rows["broken.jpg"]["status"] == "failed"

    # RFC 7946: longitude first; a photo without GPS has a null geometry; failed photos have no findings.
    geo = json.loads((out / "findings.geojson").read_text())
    assert geo["type"] == "FeatureCollection" and len(geo["features"]) == 2
    located, plain = sorted(geo["features"], key=lambda f: f["properties"]["file"])
    lon, lat, alt = located["geometry"]["coordinates"]
    assert located["geometry"]["type"] == "Point" and lat < -33.8 and lon > 151.2 and alt == 58.5
    assert located["properties"]["time"].startswith("2026-05-04") and located["properties"]["regions"] >= 1
    assert (out / located["properties"]["overlay"]).is_file() and plain["geometry"] is None

    page = (out / "index.html").read_text()
    shown = {Path(p["name"]).name: p for p in island(page)}
    assert set(shown) == {"drone.jpg", "plain.png", "broken.jpg"}
    assert shown["drone.jpg"]["thumb"] == "drone_thumb.jpg" and shown["drone.jpg"]["report"] == "drone.json"
    assert shown["broken.jpg"]["status"] == "failed" and "broken.jpg" in shown["broken.jpg"]["error"]
    assert "<b>3</b>photos" in page and "<b>1</b>failed" in page and "<b>1</b>with GPS" in page
    assert "http://" not in page and "https://" not in page  # nothing on the page loads from elsewhere


def test_names_are_shown_as_text_never_as_markup(crack_model, tmp_path):
    _, model, _ = crack_model
    photos = tmp_path / "photos"
    photos.mkdir()
    name = "a<img src=x onerror=alert(1)>&'\" #1.png"
    write_image(photos / name, texture_photo(96, 96))
    out = tmp_path / "out"
    scan_photos([str(photos)], ScanOptions(model=model, out=out, patch=64))
    page = (out / "index.html").read_text()
    assert "<img src=x" not in page
    [photo] = island(page)
    assert Path(photo["name"]).name == name
    assert "<" not in photo["report"] and "#" not in photo["report"]  # a URL, not a path that breaks at '#'
    assert (out / unquote(photo["report"])).is_file()


def test_shards_in_one_folder_make_one_page_and_crack_report_merges_their_tables(crack_model, tmp_path):
    _, model, _ = crack_model
    photos = tmp_path / "photos"
    photos.mkdir()
    for k in range(4):
        write_image(photos / f"p{k}.png", texture_photo(96, 96, seed=k, crack_rows=(48,) if k % 2 else ()))
    out = tmp_path / "out"
    for shard in range(2):
        scan_photos([str(photos)], ScanOptions(model=model, out=out, patch=64, shard=(shard, 2)))
        names = sorted(Path(p["name"]).name for p in island((out / "index.html").read_text()))
        assert len(names) == 2 * (shard + 1)  # the second shard's page covers the first shard's photos too
    assert names == ["p0.png", "p1.png", "p2.png", "p3.png"]
    assert not (out / "summary.csv").exists()

    (out / "index.html").unlink()
    result = runner.invoke(app, ["report", str(out), "--json"])
    assert result.exit_code == 0, result.output
    written = json.loads(result.stdout)
    assert written["photos"] == 4 and written["summary"] == str(out / "summary.csv")
    with open(out / "summary.csv", newline="") as handle:
        assert sorted(Path(row["image"]).name for row in csv.DictReader(handle)) == names
    assert (out / "summary-0-of-2.csv").is_file() and (out / "summary-1-of-2.csv").is_file()
    assert len(island((out / "index.html").read_text())) == 4
    assert len(json.loads((out / "findings.geojson").read_text())["features"]) == 4

    # Run again: the merged table is one of the tables now, and nothing is counted twice.
    assert json.loads(runner.invoke(app, ["report", str(out), "--json"]).stdout)["photos"] == 4


def test_crack_report_needs_a_scan_folder(tmp_path):
    for folder, says in ((tmp_path / "missing", "no such folder"), (tmp_path, "no summary.csv")):
        result = runner.invoke(app, ["report", str(folder)])
        assert result.exit_code == 2 and says in result.stderr and "Traceback" not in result.output
        assert result.stderr.count("\n") == 1


def test_crack_report_from_another_directory_keeps_the_links_of_a_relative_out(crack_model, tmp_path, monkeypatch):
    import subprocess
    import sys

    _, model, _ = crack_model
    work = tmp_path / "work"
    (work / "photos" / "east").mkdir(parents=True)
    write_image(work / "photos" / "east" / "p.png", texture_photo(128, 128, seed=5, crack_rows=(64,)))
    monkeypatch.chdir(work)
    scan_photos(["photos"], ScanOptions(model=model, out=Path("runs/scan/x"), patch=64))
    with open("runs/scan/x/summary.csv", newline="") as handle:
        recorded = next(csv.DictReader(handle))["report"]
    assert recorded == "runs/scan/x/east/p.json"  # relative to the directory the scan ran in

    moved = tmp_path / "elsewhere" / "x"  # the folder copied away, the page rebuilt from another directory
    moved.parent.mkdir()
    Path("runs/scan/x").rename(moved)
    (moved / "index.html").unlink()
    done = subprocess.run([sys.executable, "-m", "crackcli", "report", str(moved)], cwd=tmp_path, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()
    [photo] = island((moved / "index.html").read_text())
    assert photo["report"] == "east/p.json" and photo["thumb"] == "east/p_thumb.jpg", photo
    assert (moved / photo["overlay"]).is_file() and "crack class" in (moved / "index.html").read_text()


def test_a_shard_scanned_again_after_the_merge_shows_its_new_rows(crack_model, tmp_path):
    _, model, _ = crack_model
    photos = tmp_path / "photos"
    photos.mkdir()
    for k in range(4):
        write_image(photos / f"p{k}.png", texture_photo(96, 96, seed=k, crack_rows=(48,)))
    out = tmp_path / "out"
    for shard in range(2):
        scan_photos([str(photos)], ScanOptions(model=model, out=out, patch=64, shard=(shard, 2)))
    assert runner.invoke(app, ["report", str(out)]).exit_code == 0  # summary.csv now holds every row
    # Shard 0 again at a threshold no window reaches: its photos have no crack window now.
    scan_photos([str(photos)], ScanOptions(model=model, out=out, patch=64, shard=(0, 2), threshold=1.0))
    again = {Path(p["name"]).name: p["crack"] for p in island((out / "index.html").read_text())}
    assert again["p0.png"] == again["p2.png"] == 0 and again["p1.png"] > 0, again
    assert runner.invoke(app, ["report", str(out)]).exit_code == 0
    with open(out / "summary.csv", newline="") as handle:
        merged = {Path(row["image"]).name: int(row["crack_windows"]) for row in csv.DictReader(handle)}
    assert merged["p0.png"] == 0 and merged["p1.png"] > 0


def test_traced_measurements_reach_the_page_in_mm_with_a_scale_and_in_px_without(crack_model, tmp_path):
    _, model, _ = crack_model
    photo = tmp_path / "cracked.png"
    write_image(photo, texture_photo(256, 192, seed=3, crack_rows=(96,), thickness=3))
    for name, scale, tracer in (("scaled", ["--mm-per-px", "0.5"], "learned"), ("pixels", [], "classical")):
        out = tmp_path / name
        args = ["scan", str(photo), "--model", str(model), "--out", str(out), "--patch", "64", "--trace", *scale]
        args += ["--tracer", tracer]
        assert runner.invoke(app, args).exit_code == 0
        row = next(csv.DictReader(open(out / "summary.csv")))
        (shown,) = island((out / "index.html").read_text())
        assert float(row["crack_length_px"]) > 100  # the drawn crack was traced
        unit = "mm" if scale else "px"
        assert shown["length"] == f"{float(row[f'crack_length_{unit}']):.1f} {unit}"
        assert shown["width"] == f"{float(row[f'max_width_{unit}']):.2f} {unit}"
        page = (out / "index.html").read_text()
        assert f"cracks traced by the {tracer} extractor" in page and ("models/crack-tracer.onnx" in page) == (
            tracer == "learned"
        )
