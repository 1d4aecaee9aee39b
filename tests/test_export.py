import json
import os

import numpy as np
import onnx
import pytest
from helpers import crack_patch, texture_photo
from typer.testing import CliRunner

from crackcli.cli import app
from crackcli.errors import CrackError
from crackcli.model.backbones import build_model
from crackcli.model.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint, save_release
from crackcli.model.export import ExportOptions, export_checkpoint
from crackcli.model.meta import ModelMeta
from crackcli.model.onnx_files import load_checked
from crackcli.model.predictors import OnnxPredictor, TorchPredictor

runner = CliRunner()


def patches(count: int, size: int = 64, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([crack_patch(rng, size, i % 2 == 0) for i in range(count)]).transpose(0, 3, 1, 2).copy()


def test_export_matches_pytorch_and_carries_the_checkpoint_metadata(crack_model):
    checkpoint, exported, _ = crack_model
    torch_model = TorchPredictor(checkpoint, "cpu")
    onnx_model = OnnxPredictor(exported, "cpu")
    assert onnx_model.meta == torch_model.meta
    assert onnx_model.dense and onnx_model.info.precision == "fp32"
    assert onnx_model.info.training()["config"]["loss"] == "igmsda"
    batch = patches(12)
    assert np.abs(onnx_model.predict(batch) - torch_model.predict(batch)).max() <= 1e-4
    image = texture_photo(192, 128, crack_rows=(60,)).transpose(2, 0, 1)[None].copy()
    assert onnx_model.logit_map(image).shape == (1, 2, 4, 6)
    assert np.abs(onnx_model.logit_map(image) - torch_model.logit_map(image)).max() <= 1e-3


def test_export_cli_refuses_to_overwrite_and_info_reads_the_file(crack_model, tmp_path):
    checkpoint, _, _ = crack_model
    target = tmp_path / "m.onnx"
    first = runner.invoke(app, ["export", str(checkpoint), "--out", str(target)])
    assert first.exit_code == 0, first.output
    assert "max |Δprob|" in first.stderr and "patches/s" in first.stderr
    before = target.read_bytes()
    again = runner.invoke(app, ["export", str(checkpoint), "--out", str(target)])
    assert again.exit_code == 2 and "--force" in again.stderr and target.read_bytes() == before
    info = runner.invoke(app, ["info", str(target), "--json"])
    details = json.loads(info.stdout)
    assert details["classes"] == ["crack", "no_crack"] and details["image_size"] == 64 and details["dense"] is True


def test_export_temperature_replaces_the_fitted_one_in_the_file_and_the_release(crack_model, tmp_path):
    checkpoint, exported, _ = crack_model
    fitted = load_checkpoint(checkpoint)["meta"]["temperature"]
    assert fitted != 1.0  # crack train fitted one on its validation split
    raw = tmp_path / "raw.onnx"
    result = runner.invoke(app, ["export", str(checkpoint), "--out", str(raw), "--temperature", "1"])
    assert result.exit_code == 0, result.output
    fitted_model, raw_model = OnnxPredictor(exported, "cpu"), OnnxPredictor(raw, "cpu")
    assert (fitted_model.meta.temperature, raw_model.meta.temperature) == (fitted, 1.0)
    batch = patches(12)
    logits = np.log(raw_model.predict(batch))
    expected = np.exp(logits / fitted) / np.exp(logits / fitted).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(fitted_model.predict(batch), expected, atol=1e-4)
    release = tmp_path / "release.pt"
    save_release(checkpoint, release, temperature=1.0)
    assert np.abs(TorchPredictor(release, "cpu").predict(batch) - raw_model.predict(batch)).max() <= 1e-4
    refused = runner.invoke(app, ["export", str(checkpoint), "--out", str(tmp_path / "x.onnx"), "--temperature", "0"])
    assert refused.exit_code == 2 and "--temperature" in refused.stderr and not (tmp_path / "x.onnx").exists()


def test_int8_export_reports_the_accuracy_change_on_the_calibration_folder(crack_model, tmp_path):
    checkpoint, _, data = crack_model
    report = export_checkpoint(checkpoint, tmp_path / "m.int8.onnx", ExportOptions("int8", calibrate=data / "val"))
    assert set(report.accuracy) == {"fp32", "int8"}
    assert report.accuracy["fp32"]["f1"] - report.accuracy["int8"]["f1"] <= 0.1
    model = OnnxPredictor(report.path, "cpu")
    assert model.info.precision == "int8" and model.predict(patches(4)).shape == (4, 2)


def test_fp16_export_keeps_uint8_input_and_float_outputs(crack_model, tmp_path):
    checkpoint, _, _ = crack_model
    report = export_checkpoint(checkpoint, tmp_path / "m.fp16.onnx", ExportOptions("fp16"))
    probs = OnnxPredictor(report.path, "cpu").predict(patches(4))
    assert probs.dtype == np.float32 and np.allclose(probs.sum(1), 1, atol=1e-3)
    assert report.size_bytes < 0.6 * (checkpoint.stat().st_size)


def test_eval_of_the_onnx_file_agrees_with_the_checkpoint(crack_model):
    checkpoint, exported, data = crack_model
    reports = []
    for model in (checkpoint, exported):
        result = runner.invoke(app, ["eval", str(model), str(data / "val"), "--json", "--workers", "0"])
        assert result.exit_code == 0, result.output
        reports.append(json.loads(result.stdout))
    assert reports[0]["confusion_matrix"] == reports[1]["confusion_matrix"]


def test_files_that_are_not_crack_models_are_refused_with_one_line(crack_model, tmp_path):
    _, exported, _ = crack_model
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(os.urandom(2000))
    foreign = tmp_path / "foreign.onnx"
    model = onnx.load(str(exported))
    del model.metadata_props[:]
    onnx.save(model, str(foreign))
    external = tmp_path / "external.onnx"
    onnx.save(
        onnx.load(str(exported)), str(external), save_as_external_data=True, location="weights.bin", size_threshold=0
    )
    for path, reason in ((garbage, "ONNX"), (foreign, "crack metadata"), (external, "external")):
        with pytest.raises(CrackError, match=reason):
            load_checked(path)
        result = runner.invoke(app, ["scan", str(tmp_path), "--model", str(path)])
        assert result.exit_code == 2 and "Traceback" not in result.output and str(path) in result.stderr


def test_a_backbone_with_global_operations_exports_without_dense_output(tmp_path):
    meta = ModelMeta("mobilenet_v3_small", ("crack", "no_crack"), "crack", 32, (0.5,) * 3, (0.25,) * 3)
    save_checkpoint(tmp_path / "m.pt", meta, build_model("mobilenet_v3_small", 2, mean=meta.mean, std=meta.std))
    report = export_checkpoint(tmp_path / "m.pt", tmp_path / "m.onnx")
    model = OnnxPredictor(report.path, "cpu")
    assert not model.dense and report.max_prob_delta <= 1e-4
    torch_model, _ = model_from_checkpoint(load_checkpoint(tmp_path / "m.pt"))
    assert not torch_model.supports_dense


def test_padded_batches_give_each_image_its_own_scores(crack_model):
    """On the CUDA provider a photo's short last batch is padded to the shape of the others (one cuDNN
    search); the padding rows must never change or reach the scores of the real ones."""
    from crackcli.model.predictors import OnnxPredictor

    _, exported, _ = crack_model
    plain = OnnxPredictor(exported, "cpu", pad_batches=False)
    padded = OnnxPredictor(exported, "cpu", pad_batches=True)
    default = OnnxPredictor(exported, "cpu")
    default.predict(patches(4))
    assert default.predict(patches(2)).shape == (2, 2) and default.pad_batches is False  # the CPU provider: no padding
    full, short = patches(6), patches(6)[1:3]
    np.testing.assert_allclose(padded.predict(full), plain.predict(full), atol=1e-6)
    scores = padded.predict(short)  # padded to 6 rows inside, 2 rows out
    assert scores.shape == (2, 2) and padded._padded_to == 6
    np.testing.assert_allclose(scores, plain.predict(short), atol=1e-6)


def test_padded_dense_images_are_cut_back_to_the_photo_s_own_cells(crack_model):
    """On the CUDA provider a dense image is padded to multiples of DENSE_SHAPE_STEP (a few shapes for
    every photo size); the logit map is cut back to the image's cells, as if the padding were the image's."""
    from crackcli.model.predictors import DENSE_SHAPE_STEP, LOGIT_STRIDE, OnnxPredictor

    _, exported, _ = crack_model
    plain = OnnxPredictor(exported, "cpu", pad_batches=False)
    padded = OnnxPredictor(exported, "cpu", pad_batches=True)
    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, (1, 3, 160, 96), dtype=np.uint8)
    out = padded.logit_map(image)
    assert out.shape == (1, 2, 160 // LOGIT_STRIDE, 96 // LOGIT_STRIDE)
    by_hand = np.pad(image, ((0, 0), (0, 0), (0, DENSE_SHAPE_STEP - 160), (0, DENSE_SHAPE_STEP - 96)), mode="edge")
    np.testing.assert_allclose(out, plain.logit_map(by_hand)[:, :, :5, :3], atol=1e-5)
    exact = rng.integers(0, 256, (1, 3, DENSE_SHAPE_STEP, DENSE_SHAPE_STEP), dtype=np.uint8)
    np.testing.assert_allclose(padded.logit_map(exact), plain.logit_map(exact), atol=1e-5)  # nothing to pad
