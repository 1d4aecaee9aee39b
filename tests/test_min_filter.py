"""The model's minimum filter (``ModelMeta.min_filter_px``): applied before every shrink to the model's
input, by training, evaluation, export checks and scanning alike, and carried by the model files."""

import json
from fractions import Fraction

import cv2
import numpy as np
import pytest
import torch
from helpers import write_photo
from typer.testing import CliRunner

from crackcli.cli import app
from crackcli.data.preprocess import fit_patch, keep_thin_dark
from crackcli.data.tiling import Window, crop
from crackcli.model.checkpoint import load_checkpoint
from crackcli.model.export import export_checkpoint
from crackcli.model.onnx_properties import read_model_file, read_properties
from crackcli.model.predictors import load_predictor
from crackcli.scan import patches
from crackcli.scan.windows import ScanSettings, decode_reduction, scan_image
from crackcli.train.evaluate import evaluate_folder, index_eval_folder

runner = CliRunner()


def test_a_one_pixel_crack_keeps_its_darkness_through_the_shrink():
    surface = np.full((224, 224, 3), 160, np.uint8)
    surface[:, 111] = 60  # a crack 1 px wide, 100 levels darker
    assert fit_patch(surface, 96).min() > 110  # averaged away to under half its contrast
    kept = fit_patch(surface, 96, min_filter_px=3)
    assert kept.min() <= 80  # over 80% of it kept
    assert (kept.min(axis=(0, 2)) < 100).sum() <= 3  # still a thin line, not a dark band
    assert (kept[:, :40] == 160).all()  # the surface away from it untouched
    assert keep_thin_dark(surface, 1) is surface


@pytest.fixture(scope="module")
def filtered_model(crack_model, tmp_path_factory):
    """The conftest model's weights, declared to want a 3 px minimum filter, and its export."""
    checkpoint, plain_onnx, data = crack_model
    root = tmp_path_factory.mktemp("filtered")
    payload = load_checkpoint(checkpoint)
    payload["meta"]["min_filter_px"] = 3
    payload["format_version"] = 2
    filtered_pt = root / "filtered.pt"
    torch.save(payload, filtered_pt)
    return filtered_pt, export_checkpoint(filtered_pt, root / "filtered.onnx").path, plain_onnx, data


def test_the_exported_file_carries_the_filter_and_a_version_older_readers_refuse(filtered_model):
    _, filtered, plain, _ = filtered_model
    properties = read_properties(filtered, read_model_file(filtered))
    assert properties["min_filter_px"] == "3"
    assert properties["format_version"] == "2"  # a crack reading version 1 only says "upgrade crackcli"
    assert read_properties(plain, read_model_file(plain))["format_version"] == "1"
    assert load_predictor(filtered, "cpu").meta.min_filter_px == 3
    result = runner.invoke(app, ["info", str(filtered), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["min_filter_px"] == 3


@pytest.mark.parametrize("band_rows", [512, 20])  # the photo shrunk in one band, and in many
def test_scanning_filters_the_photo_at_its_own_resolution(filtered_model, tmp_path, monkeypatch, band_rows):
    monkeypatch.setattr(patches, "BAND_ROWS", band_rows)
    _, filtered, plain, _ = filtered_model
    filtered_predictor, plain_predictor = load_predictor(filtered, "cpu"), load_predictor(plain, "cpu")
    settings = ScanSettings.for_model(plain_predictor.meta)
    assert decode_reduction(plain_predictor, settings) > 1  # 64 px input for 224 px windows
    assert decode_reduction(filtered_predictor, settings) == 1  # the filter needs the photo's own pixels
    rgb = cv2.cvtColor(cv2.imread(str(write_photo(tmp_path / "p.png", 500, 400, seed=3))), cv2.COLOR_BGR2RGB)
    size = (rgb.shape[1], rgb.shape[0])
    scanned = scan_image(filtered_predictor, rgb, size, settings, "patch").probs
    by_hand = scan_image(plain_predictor, cv2.erode(rgb, np.ones((3, 3), np.uint8)), size, settings, "patch").probs
    np.testing.assert_allclose(scanned, by_hand, atol=1e-6)
    assert np.abs(scanned - scan_image(plain_predictor, rgb, size, settings, "patch").probs).max() > 1e-3


@pytest.mark.parametrize(
    ("height", "width", "size", "side"),
    [(601, 333, 96, 224), (450, 452, 64, 224), (123, 77, 5, 7), (90, 60, 11, 11)],
)
def test_the_photo_shrunk_in_bands_is_the_photo_filtered_and_shrunk_whole(height, width, size, side, monkeypatch):
    """Bands start on rows that land on whole rows at the model's scale, and each is filtered with the
    rows around it, so the bands together are the whole photo filtered and shrunk at once."""
    monkeypatch.setattr(patches, "BAND_ROWS", 50)
    rgb = np.random.default_rng(height).integers(0, 256, (height, width, 3), np.uint8)
    relative = size / side
    whole = keep_thin_dark(rgb, 3)
    if relative < 1:
        whole = cv2.resize(whole, None, fx=relative, fy=relative, interpolation=cv2.INTER_AREA)
    with patches.ModelScale(rgb, relative, Fraction(size, side).denominator, 3) as scaled:
        assert len(scaled.bands) > 1
        scaled.ready(scaled.shape[0])
        np.testing.assert_array_equal(scaled.planes.transpose(1, 2, 0), whole)


@pytest.mark.parametrize("window", [Window(10, 20, 64), Window(0, 0, 64), Window(136, 96, 64), Window(150, 0, 90)])
def test_a_window_filtered_alone_is_the_window_of_the_filtered_photo(window):
    """The windows cut one by one see the photo's pixels around them as the filter over the whole photo
    does; a window reaching out of the photo (the pad rule) is filled by reflection of filtered pixels."""
    rgb = np.random.default_rng(1).integers(0, 256, (160, 200, 3), np.uint8)
    expected = crop(keep_thin_dark(rgb, 3), window)
    np.testing.assert_array_equal(patches.filtered_crop(rgb, window, 3), expected)
    np.testing.assert_array_equal(patches.filtered_crop(rgb, window, 1), crop(rgb, window))


def test_evaluation_filters_each_patch(filtered_model, tmp_path):
    _, filtered, plain, data = filtered_model
    eroded = tmp_path / "eroded"
    for image in (data / "val").rglob("*.png"):
        target = eroded / image.relative_to(data / "val")
        target.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(target), cv2.erode(cv2.imread(str(image)), np.ones((3, 3), np.uint8)))
    filtered_predictor, plain_predictor = load_predictor(filtered, "cpu"), load_predictor(plain, "cpu")
    classes = plain_predictor.meta.classes
    with_filter = evaluate_folder(filtered_predictor, index_eval_folder(data / "val", classes), workers=0)
    on_eroded = evaluate_folder(plain_predictor, index_eval_folder(eroded, classes), workers=0)
    assert [p.name for p in with_filter.paths] == [p.name for p in on_eroded.paths]
    np.testing.assert_allclose(with_filter.probs, on_eroded.probs, atol=1e-6)


def test_train_records_the_filter_and_a_fine_tune_inherits_it(patch_data, tmp_path):
    common = ["--backbone", "resnet18", "--image-size", "32", "--epochs", "1", "--batch", "16", "--workers", "0"]
    common += ["--project", str(tmp_path / "runs"), "--quiet"]
    result = runner.invoke(app, ["train", str(patch_data), "--weights", "none", "--min-filter", "3", *common])
    assert result.exit_code == 0, result.output
    first = next((tmp_path / "runs").glob("exp*/best.pt"))
    assert load_checkpoint(first)["meta"]["min_filter_px"] == 3
    assert load_checkpoint(first)["format_version"] == 2

    result = runner.invoke(app, ["train", str(patch_data), "--weights", str(first), "--name", "tuned", *common])
    assert result.exit_code == 0, result.output
    tuned = load_checkpoint(next((tmp_path / "runs").glob("tuned*/best.pt")))
    assert tuned["meta"]["min_filter_px"] == 3
    assert tuned["config"]["min_filter_px"] == 3  # saved resolved: a --resume keeps it even if FILE.pt goes


def test_a_filter_of_no_size_is_refused_in_one_line(patch_data, tmp_path):
    result = runner.invoke(app, ["train", str(patch_data), "--weights", "none", "--min-filter", "0"])
    assert result.exit_code == 2
    assert "min-filter" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()
