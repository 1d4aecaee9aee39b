from dataclasses import replace

import numpy as np
import onnx
import pytest
import torch

from crackcli.errors import CrackError
from crackcli.model.backbones import IMAGENET_MEAN, IMAGENET_STD, build_model
from crackcli.model.calibration import TEMPERATURES, best_temperature, fold_temperature, temperature_losses
from crackcli.model.checkpoint import save_checkpoint
from crackcli.model.export import export_checkpoint
from crackcli.model.meta import ModelMeta
from crackcli.model.onnx_files import load_checked
from crackcli.model.predictors import OnnxPredictor, TorchPredictor, softmax


@pytest.mark.parametrize("true_temperature", [0.4, 1.0, 2.5])
def test_the_fit_finds_the_temperature_that_made_the_labels(true_temperature):
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (20000, 2))
    # Labels drawn from softmax(logits / T): the logits are overconfident for T > 1, underconfident below.
    crack_share = softmax(logits / true_temperature)[:, 1]
    labels = (rng.random(len(logits)) < crack_share).astype(np.int64)
    losses = temperature_losses(torch.from_numpy(logits).float(), torch.from_numpy(labels))
    assert losses.shape == (len(TEMPERATURES),)
    assert best_temperature(losses) == pytest.approx(true_temperature, rel=0.08)
    # Parts add up: two halves summed pick the same temperature as the whole (what ranks of a run do).
    halves = sum(
        temperature_losses(torch.from_numpy(logits[part]).float(), torch.from_numpy(labels[part]))
        for part in (slice(0, 10000), slice(10000, None))
    )
    assert best_temperature(halves) == best_temperature(losses)


def test_with_more_than_two_classes_the_fit_never_softens_the_scores():
    # A model sure of itself and wrong on its validation images: the loss falls all the way to T = 10.
    logits = torch.tensor([[6.0, 0.0, 0.0]] * 20 + [[0.0, 6.0, 0.0]] * 20)
    labels = torch.tensor([1] * 20 + [0] * 20)
    losses = temperature_losses(logits, labels)
    assert best_temperature(losses) == pytest.approx(10.0)
    # At T = 10 every score is about 1/3 and nothing reaches a threshold of 0.5: with 3 classes the fit stops at 1.
    assert best_temperature(losses, num_classes=3) == pytest.approx(1.0)
    assert softmax(logits.numpy() / best_temperature(losses, num_classes=3))[:20, 0].min() > 0.5
    # Below 1 it still fits: overconfident labels of a 3-class model give back their temperature.
    rng = np.random.default_rng(1)
    raw = rng.normal(0, 2, (20000, 3))
    drawn = np.array([rng.choice(3, p=row) for row in softmax(raw / 0.5)])
    fitted = best_temperature(temperature_losses(torch.from_numpy(raw).float(), torch.from_numpy(drawn)), 3)
    assert fitted == pytest.approx(0.5, rel=0.08)


def test_a_folded_temperature_divides_patch_logits_and_dense_logit_maps():
    torch.manual_seed(0)
    model = build_model("shufflenet_v2_x0_5", 2, "none").eval()
    pixels = torch.randint(0, 256, (2, 3, 96, 96), dtype=torch.uint8)
    with torch.no_grad():
        logits, cells = model(pixels), model.logit_map(pixels)
        fold_temperature(model.classifier, 2.0)
        torch.testing.assert_close(model(pixels), logits / 2)
        torch.testing.assert_close(model.logit_map(pixels), cells / 2)


def test_a_checkpoint_temperature_reaches_scan_eval_and_the_exported_graph(tmp_path):
    torch.manual_seed(0)
    model = build_model("shufflenet_v2_x0_5", 2, "none").eval()
    meta = ModelMeta("shufflenet_v2_x0_5", ("crack", "no_crack"), "crack", 96, IMAGENET_MEAN, IMAGENET_STD)
    pixels = np.random.default_rng(1).integers(0, 256, (4, 3, 96, 96), dtype=np.uint8)
    with torch.no_grad():
        raw = model(torch.from_numpy(pixels)).numpy()
    save_checkpoint(tmp_path / "plain.pt", meta, model)
    save_checkpoint(tmp_path / "calibrated.pt", replace(meta, temperature=0.25), model)

    plain, calibrated = TorchPredictor(tmp_path / "plain.pt", "cpu"), TorchPredictor(tmp_path / "calibrated.pt", "cpu")
    np.testing.assert_allclose(plain.predict(pixels), softmax(raw), atol=1e-5)
    np.testing.assert_allclose(calibrated.predict(pixels), softmax(raw / 0.25), atol=1e-5)
    assert calibrated.meta.temperature == 0.25

    exported = export_checkpoint(tmp_path / "calibrated.pt", tmp_path / "calibrated.onnx").path
    onnx_model = OnnxPredictor(exported, "cpu")
    assert onnx_model.meta.temperature == 0.25  # recorded; the graph's head already divides by it
    np.testing.assert_allclose(onnx_model.predict(pixels), softmax(raw / 0.25), atol=1e-4)

    # A file whose recorded temperature is not a positive number is damaged, whichever kind it is.
    graph = onnx.load(str(exported))
    for prop in graph.metadata_props:
        if prop.key == "temperature":
            prop.value = "nan"
    onnx.save(graph, str(tmp_path / "bad.onnx"))
    with pytest.raises(CrackError, match="damaged crack metadata"):
        load_checked(tmp_path / "bad.onnx")
    payload = torch.load(tmp_path / "calibrated.pt", weights_only=True)
    payload["meta"]["temperature"] = 0.0
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(CrackError, match="damaged model description"):
        TorchPredictor(tmp_path / "bad.pt", "cpu")
