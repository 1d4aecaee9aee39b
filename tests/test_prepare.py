import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from crackcli.cli import app
from crackcli.data.synth import synthesize
from crackcli.io.images import read_rgb, write_image

runner = CliRunner()


def manifest(out):
    with open(out / "manifest.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def invoke(*args):
    return runner.invoke(app, ["prepare", *map(str, args)])


def test_folder_labels_and_patch_content(tmp_path, photo_factory):
    photo = photo_factory("src/crack/wall.png", 100, 80)
    photo_factory("src/no_crack/floor.png", 64, 64, seed=1)
    out = tmp_path / "out"
    result = invoke(tmp_path / "src", "--out", out, "--size", "32", "--quiet")
    assert result.exit_code == 0, result.output
    rows = manifest(out)
    crack_rows = [r for r in rows if r["label"] == "crack"]
    assert len(crack_rows) == 4 * 3  # shift rule: x 0,32,64,68 and y 0,32,48
    assert {r["label"] for r in rows} == {"crack", "no_crack"}
    row = next(r for r in crack_rows if r["x"] == "68" and r["y"] == "48")
    assert row["patch"] == "crack/wall_x68_y48.png"
    np.testing.assert_array_equal(read_rgb(out / row["patch"]), read_rgb(photo)[48:80, 68:100])


def test_mask_labels_follow_crack_fraction(tmp_path):
    image = np.full((64, 96, 3), 128, np.uint8)
    mask = np.zeros((64, 96), np.uint8)
    mask[0:32, 0:32] = 255  # window (0,0): all crack
    mask[40, 40] = 255  # window (32,32): 1 pixel of 1024 < 0.005 -> ambiguous, skipped
    write_image(tmp_path / "photos" / "p.png", image)
    write_image(tmp_path / "masks" / "p.png", mask)
    out = tmp_path / "out"
    result = invoke(
        tmp_path / "photos", "--out", out, "--size", "32", "--labels", "mask", "--masks", tmp_path / "masks", "--json"
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["skipped_ambiguous"] == 1
    rows = {(r["x"], r["y"]): r for r in manifest(out)}
    assert rows[("0", "0")]["label"] == "crack" and float(rows[("0", "0")]["mask_fraction"]) == 1.0
    assert rows[("64", "0")]["label"] == "no_crack"
    assert ("32", "32") not in rows
    assert len(rows) == 5


def test_a_zero_one_mask_labels_crack_patches(tmp_path):
    """Labelling scripts often save masks as 0/1: read as crack, not as an empty class."""
    write_image(tmp_path / "photos" / "p.png", np.full((64, 64, 3), 128, np.uint8))
    mask = np.zeros((64, 64), np.uint8)
    mask[0:32, 0:32] = 1
    write_image(tmp_path / "masks" / "p.png", mask)
    out = tmp_path / "out"
    result = invoke(
        tmp_path / "photos", "--out", out, "--size", "32", "--labels", "mask", "--masks", tmp_path / "masks"
    )
    assert result.exit_code == 0, result.output
    assert sorted(r["label"] for r in manifest(out)) == ["crack", "no_crack", "no_crack", "no_crack"]


def test_class_masks_label_confusable_patches_after_cracks(tmp_path):
    image = np.full((64, 128, 3), 128, np.uint8)
    cracks = np.zeros((64, 128), np.uint8)
    scratches = np.zeros((64, 128), np.uint8)
    cracks[0:32, 0:32] = 255  # window (0,0): crack, even though scratched too
    scratches[0:32, 0:64] = 255  # window (32,0): scratch only
    scratches[40, 100] = 255  # window (96,32): one scratch pixel -> ambiguous, skipped
    write_image(tmp_path / "photos" / "p.png", image)
    write_image(tmp_path / "masks" / "p.png", cracks)
    write_image(tmp_path / "scratches" / "p.png", scratches)
    out = tmp_path / "out"
    result = invoke(
        tmp_path / "photos",
        "--out",
        out,
        "--size",
        "32",
        "--labels",
        "mask",
        "--masks",
        tmp_path / "masks",
        "--class-mask",
        f"scratch={tmp_path / 'scratches'}",
        "--json",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["skipped_ambiguous"] == 1
    rows = {(r["x"], r["y"]): r for r in manifest(out)}
    assert rows[("0", "0")]["label"] == "crack"
    assert rows[("32", "0")]["label"] == "scratch" and float(rows[("32", "0")]["mask_fraction"]) == 1.0
    assert ("96", "32") not in rows
    assert {rows[k]["label"] for k in rows if k not in {("0", "0"), ("32", "0")}} == {"no_crack"}
    assert sorted(p.name for p in (out / "scratch").iterdir()) == ["p_x32_y0.png"]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--class-mask", "crack=m"], "other than crack"),
        (["--class-mask", "scratch"], "CLASS=FOLDER"),
        (["--class-mask", "scratch=nowhere"], "not a folder"),
        (["--class-mask", "../up=m"], "plain class name"),
    ],
)
def test_bad_class_masks_are_refused_in_one_line(tmp_path, photo_factory, extra, message):
    photo_factory("photos/p.png", 64, 64)
    (tmp_path / "m").mkdir()
    result = invoke(
        tmp_path / "photos",
        "--out",
        tmp_path / "out",
        "--labels",
        "mask",
        "--masks",
        tmp_path / "m",
        *[part.replace("=m", f"={tmp_path / 'm'}") for part in extra],
    )
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_split_is_per_photo_deterministic_and_leak_free(tmp_path, photo_factory):
    for i in range(10):
        photo_factory(f"src/crack/c{i}.png", 64, 64, seed=i)
        photo_factory(f"src/no_crack/n{i}.png", 64, 64, seed=100 + i)
    runs = []
    for name in ("a", "b"):
        out = tmp_path / name
        assert (
            invoke(tmp_path / "src", "--out", out, "--size", "32", "--split", "3:1:1", "--seed", "7", "-q").exit_code
            == 0
        )
        runs.append(manifest(out))
    assert runs[0] == runs[1]
    split_of_source = {}
    for row in runs[0]:
        assert split_of_source.setdefault(row["source"], row["split"]) == row["split"]
        assert row["patch"].startswith(f"{row['split']}/{row['label']}/")
    per_split = {s: sum(1 for v in split_of_source.values() if v == s) for s in ("train", "val", "test")}
    assert per_split == {"train": 12, "val": 4, "test": 4}  # 3:1:1 of 10 photos, per class
    other = tmp_path / "c"
    invoke(tmp_path / "src", "--out", other, "--size", "32", "--split", "3:1:1", "--seed", "8", "-q")
    assert {r["source"]: r["split"] for r in manifest(other)} != split_of_source


def test_rerun_skips_existing_and_overwrite_rewrites(tmp_path, photo_factory):
    photo_factory("src/crack/a.png", 64, 64)
    out = tmp_path / "out"
    first = json.loads(invoke(tmp_path / "src", "--out", out, "--size", "32", "--json").stdout)
    assert first["written"] == 4
    patch = out / "crack" / "a_x0_y0.png"
    stamp = patch.stat().st_mtime_ns
    second = json.loads(invoke(tmp_path / "src", "--out", out, "--size", "32", "--json").stdout)
    assert second["written"] == 0 and second["skipped_existing"] == 4
    assert patch.stat().st_mtime_ns == stamp
    third = json.loads(invoke(tmp_path / "src", "--out", out, "--size", "32", "--json", "--overwrite").stdout)
    assert third["written"] == 4
    assert not list(out.rglob("*.part"))


def test_a_second_job_into_the_same_out_adds_to_its_manifest(tmp_path, photo_factory):
    photo_factory("first/crack/a.png", 64, 64)
    photo_factory("second/crack/b.png", 64, 64)
    out = tmp_path / "out"
    assert invoke(tmp_path / "first", "--out", out, "--size", "32", "-q").exit_code == 0
    assert invoke(tmp_path / "second", "--out", out, "--size", "32", "-q").exit_code == 0
    rows = manifest(out)
    assert sorted({Path(r["source"]).name for r in rows}) == ["a.png", "b.png"] and len(rows) == 8
    assert sorted(r["patch"] for r in rows) == sorted(p.relative_to(out).as_posix() for p in out.rglob("*_x*.png"))
    # The same job again replaces its own rows rather than adding them twice.
    assert invoke(tmp_path / "second", "--out", out, "--size", "32", "-q").exit_code == 0
    assert len(manifest(out)) == 8


def test_another_photo_of_the_same_name_is_not_called_already_there(tmp_path, photo_factory):
    photo_factory("site1/crack/a.png", 64, 64, seed=1)
    photo_factory("site2/crack/a.png", 64, 64, seed=2)
    out = tmp_path / "out"
    assert invoke(tmp_path / "site1", "--out", out, "--size", "32", "-q").exit_code == 0
    before = (out / "crack" / "a_x0_y0.png").read_bytes()
    result = invoke(tmp_path / "site2", "--out", out, "--size", "32")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "site2" in result.stderr and "site1" in result.stderr and "--overwrite" in result.stderr
    assert (out / "crack" / "a_x0_y0.png").read_bytes() == before  # nothing of the first photo lost
    assert {Path(r["source"]).parent.parent.name for r in manifest(out)} == {"site1"}
    assert invoke(tmp_path / "site2", "--out", out, "--size", "32", "--overwrite", "-q").exit_code == 0
    assert {Path(r["source"]).parent.parent.name for r in manifest(out)} == {"site2"}
    assert (out / "crack" / "a_x0_y0.png").read_bytes() != before


def test_bad_inputs_each_get_one_line_and_the_rest_goes_on(tmp_path, photo_factory):
    photo_factory("src/crack/good.png", 64, 64)
    photo_factory("src/crack/tiny.png", 10, 10)
    (tmp_path / "src" / "crack" / "junk.jpg").write_bytes(b"\xff\xd8 definitely not a jpeg")
    (tmp_path / "src" / "crack" / "empty.png").write_bytes(b"")
    out = tmp_path / "out"
    result = invoke(tmp_path / "src", tmp_path / "missing.jpg", "--out", out, "--size", "32", "--json")
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert summary["photos"] == 1 and summary["patches"] == 4
    failed = {os.path.basename(f["input"]) for f in summary["failed"]}
    assert failed == {"tiny.png", "junk.jpg", "empty.png", "missing.jpg"}
    errors = [line for line in result.stderr.splitlines() if line.startswith("crack: error:")]
    assert len(errors) == 4
    assert "Traceback" not in result.output
    assert any("smaller than a 32-pixel patch" in line and "--edge pad" in line for line in errors)


def test_pad_rule_accepts_small_photos(tmp_path, photo_factory):
    photo_factory("src/crack/tiny.png", 10, 20)
    out = tmp_path / "out"
    result = invoke(tmp_path / "src", "--out", out, "--size", "32", "--edge", "pad", "--json")
    assert result.exit_code == 0
    assert read_rgb(out / "crack" / "tiny_x0_y0.png").shape == (32, 32, 3)


def test_mask_problems_are_reported_per_photo(tmp_path, photo_factory):
    photo_factory("photos/has_mask.png", 64, 64)
    photo_factory("photos/no_mask.png", 64, 64)
    photo_factory("photos/wrong_size.png", 64, 64)
    write_image(tmp_path / "masks" / "has_mask.png", np.zeros((64, 64), np.uint8))
    write_image(tmp_path / "masks" / "wrong_size.png", np.zeros((32, 64), np.uint8))
    result = invoke(
        tmp_path / "photos",
        "--out",
        tmp_path / "out",
        "--size",
        "32",
        "--labels",
        "mask",
        "--masks",
        tmp_path / "masks",
        "--json",
    )
    assert result.exit_code == 1
    messages = " ".join(f["error"] for f in json.loads(result.stdout)["failed"])
    assert "no mask named no_mask" in messages
    assert "must match their photo" in messages


@pytest.mark.parametrize(
    "extra, text",
    [
        (["--split", "3:x"], "ratios"),
        (["--split", "nan:1"], "ratios"),
        (["--labels", "mask", "--masks", ".", "--crack-min", "1.5"], "--crack-min"),
        (["--labels", "mask", "--masks", ".", "--crack-min", "0"], "--crack-min"),
        (["--edge", "wrap"], "--edge"),
        (["--labels", "mask"], "--masks"),
        (["--format", "gif"], "--format"),
    ],
)
def test_usage_errors_exit_2(tmp_path, photo_factory, extra, text):
    photo_factory("src/a.png")
    result = invoke(tmp_path / "src", "--out", tmp_path / "out", *extra)
    assert result.exit_code == 2
    assert text in result.output


def test_out_inside_source_is_a_usage_error(tmp_path, photo_factory):
    photo_factory("src/crack/a.png")
    result = invoke(tmp_path / "src", "--out", tmp_path / "src" / "patches")
    assert result.exit_code == 2
    assert "inside the source folder" in result.output


def test_empty_input_fails_clearly(tmp_path):
    (tmp_path / "empty").mkdir()
    result = invoke(tmp_path / "empty", "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert "no images found" in result.output


def test_clashing_and_odd_names_stay_apart_and_safe(tmp_path, photo_factory):
    photo_factory("src/a/crack/photo 1 (copy).png", 32, 32)
    photo_factory("src/b/crack/photo 1 (copy).png", 32, 32, seed=3)
    out = tmp_path / "out"
    assert invoke(tmp_path / "src", "--out", out, "--size", "32", "-q").exit_code == 0
    names = sorted(p.name for p in (out / "crack").iterdir())
    assert len(names) == 2
    assert all(" " not in n and "(" not in n for n in names)


def test_globs_and_jpg_format(tmp_path, photo_factory):
    photo_factory("src/crack/one.png", 64, 32)
    photo_factory("src/crack/two.png", 64, 32)
    out = tmp_path / "out"
    result = invoke(str(tmp_path / "src" / "*" / "o*.png"), "--out", out, "--size", "32", "--format", "jpg", "--json")
    assert result.exit_code == 0
    assert sorted(p.name for p in (out / "crack").iterdir()) == ["one_x0_y0.jpg", "one_x32_y0.jpg"]


def test_synthetic_photo_through_mask_labelling(tmp_path):
    photo = synthesize(448, 448, seed=4, cracks=1, scratches=0, joints=0)
    write_image(tmp_path / "img" / "s.jpg", photo.image)
    write_image(tmp_path / "msk" / "s.png", photo.crack_mask)
    out = tmp_path / "out"
    result = invoke(
        tmp_path / "img", "--out", out, "--labels", "mask", "--masks", tmp_path / "msk", "--stride", "112", "--json"
    )
    assert result.exit_code == 0
    for row in manifest(out):
        x, y = int(row["x"]), int(row["y"])
        fraction = (photo.crack_mask[y : y + 224, x : x + 224] > 0).mean()
        assert float(row["mask_fraction"]) == pytest.approx(fraction, abs=1e-6)
