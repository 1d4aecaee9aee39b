"""The scan API used directly, as a library caller or a benchmark does: no command line involved."""

import csv
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from helpers import texture_photo

from crackcli.cli.flags import as_flags
from crackcli.errors import OptionError, UsageError
from crackcli.io.images import write_image
from crackcli.model.meta import ModelMeta
from crackcli.model.shipped import MODEL_ENV
from crackcli.scan.api import ScanEvents, ScanOptions, open_model, plan_scan, scan_photos
from crackcli.scan.straight_lines import VERSION as LINE_CHECK_VERSION
from crackcli.scan.straight_lines import LineCheck
from crackcli.scan.windows import ScanSettings


class Recorder(ScanEvents):
    """Remembers every event in order."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, object]] = []

    def started(self, total: int) -> None:
        self.seen.append(("started", total))

    def advanced(self, count: int = 1) -> None:
        self.seen.append(("advanced", count))

    def photo_scanned(self, report: dict) -> None:
        self.seen.append(("scanned", Path(report["image"]).name))

    def photo_failed(self, image: str, message: str) -> None:
        assert image in message
        self.seen.append(("failed", message))

    def warning(self, message: str) -> None:
        self.seen.append(("warning", message))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Three photos, one with a crack line, one corrupt, in nested folders."""
    root = tmp_path_factory.mktemp("api_photos")
    write_image(root / "b" / "cracked.jpg", texture_photo(320, 256, seed=5, crack_rows=(128,)), jpeg_quality=95)
    write_image(root / "a" / "clean.png", texture_photo(256, 192, seed=6))
    (root / "c").mkdir()
    (root / "c" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    return root


def test_settings_take_the_model_defaults_unless_given():
    meta = ModelMeta("resnet18", ("crack", "no_crack"), "crack", 64, (0.5,) * 3, (0.2,) * 3, patch_size=96)
    assert ScanSettings.for_model(meta) == ScanSettings(patch=96, stride=48)
    assert ScanSettings.for_model(meta, patch=50) == ScanSettings(patch=50, stride=25)
    assert ScanSettings.for_model(meta, stride=10, mode="dense") == ScanSettings(patch=96, stride=10, mode="dense")


def test_plan_and_run_a_folder_like_crack_scan(crack_model, folder, tmp_path):
    _, model, _ = crack_model
    out = tmp_path / "out"
    planned = plan_scan([str(folder)], ScanOptions(model=model, out=out, patch=64))
    assert [path.name for path, _ in planned.photos] == ["clean.png", "cracked.jpg", "broken.jpg"]
    assert planned.out == out and planned.job.settings == ScanSettings(
        patch=64, stride=32, line_check=LineCheck(0, 0.5)
    )
    assert not out.exists()  # planning writes nothing

    events = Recorder()
    result = planned.run(events)
    assert (result.scanned, result.failed, result.kept, result.with_cracks) == (2, 1, 0, 1)
    assert events.seen[0] == ("started", 3)
    assert [e for e in events.seen if e[0] == "scanned"] == [("scanned", "clean.png"), ("scanned", "cracked.jpg")]
    failures = [str(message) for kind, message in events.seen if kind == "failed"]
    assert len(failures) == 1 and "broken.jpg" in failures[0]
    assert sum(count for kind, count in events.seen if kind == "advanced") == 3

    report = json.loads((out / "b" / "cracked.json").read_text())
    assert report["patch"] == 64 and report["stride"] == 32 and report["summary"]["crack_windows"] > 0
    with open(out / "summary.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["status"] for row in rows] == ["scanned", "scanned", "failed"]

    again = scan_photos([str(folder)], ScanOptions(model=model, out=out, patch=64))
    assert (again.scanned, again.kept, again.failed) == (0, 2, 1)


def test_photos_in_flight_together_give_the_same_outputs_in_the_same_order(crack_model, tmp_path, monkeypatch):
    """Several photos per stage (as on a GPU): each decoded and shrunk ahead in bands of its own, scored,
    written and reported exactly as one at a time would, a broken one in the middle included."""
    from crackcli.scan import patches

    _, model, _ = crack_model
    photos = tmp_path / "photos"
    for index in range(5):
        rows = (40 + 30 * index,) if index % 2 else ()
        write_image(photos / f"p{index}.jpg", texture_photo(300, 230, seed=index, crack_rows=rows), jpeg_quality=95)
    (photos / "p2b.jpg").write_bytes(b"\xff\xd8 truncated")
    monkeypatch.setattr(patches, "BAND_ROWS", 30)  # several bands a photo, made by several threads
    outcomes = []
    for workers in (1, 3):
        events = Recorder()
        out = tmp_path / f"w{workers}"
        result = scan_photos([str(photos)], ScanOptions(model=model, out=out, patch=96, workers=workers), events)
        reports = {p.stem: json.loads(p.read_text()) for p in sorted(out.glob("p*.json"))}
        probs = {stem: [w["probs"] for w in report["windows"]] for stem, report in reports.items()}
        outcomes.append(((result.scanned, result.failed), [e for e in events.seen if e[0] != "failed"], probs))
        assert (out / "p3_overlay.jpg").is_file() and (out / "summary.csv").is_file()
    assert outcomes[0][0] == (5, 1)
    assert outcomes[1] == outcomes[0]


def test_inputs_that_name_no_photo_are_counted_and_reported(crack_model, folder, tmp_path):
    _, model, _ = crack_model
    events = Recorder()
    missing = str(tmp_path / "nowhere.jpg")
    result = scan_photos([str(folder / "a"), missing], ScanOptions(model=model, out=tmp_path / "o", patch=64), events)
    assert (result.scanned, result.failed) == (1, 1)
    assert any(kind == "failed" and missing in str(message) for kind, message in events.seen)


def test_shards_and_a_new_run_folder_when_no_out_is_given(crack_model, folder, tmp_path, monkeypatch):
    _, model, _ = crack_model
    monkeypatch.chdir(tmp_path)
    first = plan_scan([str(folder)], ScanOptions(model=model, patch=64, shard=(0, 2)))
    second = plan_scan([str(folder)], ScanOptions(model=model, patch=64, shard=(1, 2)))
    assert first.out == Path("runs/scan/exp") and second.out == Path("runs/scan/exp2")
    names = [p.name for p, _ in first.photos] + [p.name for p, _ in second.photos]
    assert sorted(names) == ["broken.jpg", "clean.png", "cracked.jpg"]
    first.run()
    assert (first.out / "summary-0-of-2.csv").is_file()


def test_the_model_is_the_option_else_the_environment_else_the_shipped_one(crack_model, monkeypatch, tmp_path):
    _, model, _ = crack_model
    monkeypatch.setenv(MODEL_ENV, str(model))
    assert open_model().source == model
    monkeypatch.setenv(MODEL_ENV, str(tmp_path / "gone.onnx"))
    with pytest.raises(UsageError, match="gone.onnx"):
        open_model()
    monkeypatch.delenv(MODEL_ENV)
    assert open_model().source.name == "crack-default.onnx"


@pytest.mark.parametrize(
    ("options", "field", "shown"),
    [
        ({"threshold": 1.5}, "threshold", "--threshold 1.5"),
        ({"patch": 4}, "patch", "--patch 4"),
        ({"stride": 0}, "stride", "--stride 0"),
        ({"batch": 0}, "batch", "--batch 0"),
        ({"mode": "fast"}, "mode", "--mode 'fast'"),
        ({"shard": (2, 2)}, "shard", "--shard 2/2"),
        ({"overlay_max_side": -1}, "overlay_max_side", "--overlay-size -1"),
        ({"workers": 0}, "workers", "--workers 0"),
    ],
)
def test_options_check_themselves_and_name_the_field(options, field, shown):
    with pytest.raises(OptionError) as error:
        ScanOptions(**options)
    assert error.value.field == field
    assert str(error.value).startswith(f"`{field}`")  # a library caller reads the field it passed
    assert "--" not in str(error.value)
    assert as_flags(str(error.value)).startswith(shown)  # the command line shows the flag


def test_a_crack_class_the_model_lacks_is_refused_before_anything_is_written(crack_model, folder, tmp_path):
    _, model, _ = crack_model
    with pytest.raises(UsageError, match="`crack_class`"):
        plan_scan([str(folder)], ScanOptions(model=model, out=tmp_path / "x", crack_class="spall"))
    assert not (tmp_path / "x").exists()


def test_scores_are_probabilities_in_class_order(crack_model, folder, tmp_path):
    _, model, _ = crack_model
    planned = plan_scan([str(folder / "b")], ScanOptions(model=model, out=tmp_path / "p", patch=64, overlay=False))
    planned.run()
    report = json.loads((tmp_path / "p" / "cracked.json").read_text())
    probs = np.array([w["probs"] for w in report["windows"]])
    assert np.allclose(probs.sum(1), 1, atol=1e-3) and report["classes"] == ["crack", "no_crack"]
    assert "overlay" not in report["outputs"]


def test_patch_mode_gives_each_window_the_pixels_of_resizing_it_alone(crack_model, tmp_path):
    """Windows on the model-scale grid are gathered from the photo shrunk once, the shifted last row and
    column are resized one by one: either way the model sees what resizing that window alone gives."""
    from crackcli.data.preprocess import fit_patch
    from crackcli.data.tiling import crop
    from crackcli.io.images import read_rgb
    from crackcli.model.predictors import OnnxPredictor
    from crackcli.scan.patches import scaled_windows
    from crackcli.scan.windows import decode_reduction, scan_grid, scan_image

    predictor = OnnxPredictor(crack_model[1], "cpu")
    photo = tmp_path / "wide.jpg"
    write_image(photo, texture_photo(1000, 800, seed=9, crack_rows=(300, 610)), jpeg_quality=95)
    settings = ScanSettings.for_model(predictor.meta)  # 224 px windows, stride 112: 32 px at the 64 px input
    reduce = decode_reduction(predictor, settings)
    rgb = read_rgb(photo, reduce=reduce)
    assert reduce == 2 and rgb.shape[:2] == (400, 500)

    scores = scan_image(predictor, rgb, (1000, 800), settings, "patch")
    windows = scan_grid(1000, 800, settings)
    assert any(w.x == 1000 - 224 for w in windows)  # a shifted last column: off the model-scale grid
    alone = np.stack(
        [fit_patch(crop(rgb, w), 64) for w in scaled_windows(windows, 0.5, rgb.shape, (1000, 800))]
    ).transpose(0, 3, 1, 2)
    expected = np.concatenate([predictor.predict(alone[i : i + 64]) for i in range(0, len(alone), 64)])
    assert np.abs(scores.probs - expected).max() < 1e-5


def test_a_report_is_reused_only_while_it_is_still_true(crack_model, tmp_path):
    import onnx

    _, model, _ = crack_model
    photos, out = tmp_path / "photos", tmp_path / "out"
    write_image(photos / "p.jpg", texture_photo(256, 192, seed=6), jpeg_quality=95)
    options = ScanOptions(model=model, out=out, patch=64)

    def rerun(**changes):
        events = Recorder()
        result = scan_photos([str(photos)], replace(options, **changes), events)
        return result, [str(m) for kind, m in events.seen if kind == "warning"]

    assert rerun()[0].scanned == 1
    result, warnings = rerun()
    assert (result.kept, result.scanned, warnings) == (1, 0, [])

    # Other settings: scanned again, saying which.
    result, warnings = rerun(threshold=0.9)
    assert (result.kept, result.scanned) == (0, 1) and "threshold" in warnings[0]
    result, warnings = rerun(threshold=0.9, stride=16)
    assert result.scanned == 1 and "stride" in warnings[0]

    # Another model file (here: the same graph, other metadata bytes), though at the same path.
    other = onnx.load(str(model))
    other.metadata_props.add(key="note", value="retrained")
    onnx.save(other, str(tmp_path / "model.onnx"))
    result, warnings = rerun(threshold=0.9, stride=16, model=tmp_path / "model.onnx")
    assert result.scanned == 1 and "another model" in warnings[0]

    # Another photo of the same name: a crack now, found; the old clean report is not reused.
    before = json.loads((out / "p.json").read_text())["summary"]["crack_windows"]
    write_image(photos / "p.jpg", texture_photo(256, 192, seed=5, crack_rows=(96,)), jpeg_quality=95)
    result, warnings = rerun(threshold=0.9, stride=16, model=tmp_path / "model.onnx")
    assert result.scanned == 1 and "another file of the same name" in warnings[0]
    assert before == 0 and result.with_cracks == 1

    # A report whose windows were checked for lines by the check's earlier method (recorded as true) is redone.
    report = json.loads((out / "p.json").read_text())
    assert report["provenance"]["settings"]["line_check"] == LINE_CHECK_VERSION
    report["provenance"]["settings"]["line_check"] = True
    (out / "p.json").write_text(json.dumps(report))
    result, warnings = rerun(threshold=0.9, stride=16, model=tmp_path / "model.onnx")
    assert result.scanned == 1 and "line_check" in warnings[0]

    # A report of an earlier format (before EXIF and tile regions, same version string) is redone.
    report = json.loads((out / "p.json").read_text())
    del report["provenance"]["report_format"]
    (out / "p.json").write_text(json.dumps(report))
    result, warnings = rerun(threshold=0.9, stride=16, model=tmp_path / "model.onnx")
    assert result.scanned == 1 and "another crackcli version" in warnings[0]

    # A report from an older crack, with no record of what made it, is redone too.
    report = json.loads((out / "p.json").read_text())
    del report["provenance"]
    (out / "p.json").write_text(json.dumps(report))
    result, warnings = rerun(threshold=0.9, stride=16, model=tmp_path / "model.onnx")
    assert result.scanned == 1 and "older crack" in warnings[0]


def test_outputs_mirror_the_input_subfolders(crack_model, tmp_path):
    _, model, _ = crack_model
    photos = tmp_path / "flights"
    for flight, seed in (("f1", 1), ("f2", 2)):
        write_image(photos / flight / "DJI_0001.JPG", texture_photo(128, 96, seed=seed), jpeg_quality=90)
    write_image(photos / "DJI_0001.png", texture_photo(128, 96, seed=3))
    single = tmp_path / "single.jpg"
    write_image(single, texture_photo(128, 96, seed=4), jpeg_quality=90)
    out = tmp_path / "out"
    result = scan_photos([str(photos), str(single)], ScanOptions(model=model, out=out, patch=64))
    assert result.scanned == 4
    reports = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.json"))
    assert reports == ["DJI_0001.json", "f1/DJI_0001.json", "f2/DJI_0001.json", "single.json"]
    report = json.loads((out / "f2" / "DJI_0001.json").read_text())
    assert report["image"] == str(photos / "f2" / "DJI_0001.JPG")
    assert Path(report["outputs"]["overlay"]) == out / "f2" / "DJI_0001_overlay.jpg"
