import pytest
import torch
import torchvision

from crackcli.errors import CrackError, UsageError
from crackcli.model.backbones import BACKBONES, IMAGENET_MEAN, IMAGENET_STD, build_model

EXPECTED_FEATURES = {
    "resnet18": 512,
    "resnet34": 512,
    "resnet50": 2048,
    "resnet101": 2048,
    "vgg16": 4096,
    "vgg16_bn": 4096,
    "mobilenet_v2": 1280,
    "shufflenet_v2_x0_5": 1024,
    "shufflenet_v2_x1_0": 1024,
    "mobilenet_v3_small": 1024,
    "mobilenet_v3_large": 1280,
    "efficientnet_b0": 1280,
}


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_every_backbone_splits_into_features_and_linear_classifier(name):
    torch.manual_seed(0)
    model = build_model(name, num_classes=3).eval()
    x = torch.randn(2, 3, 64, 64) if not name.startswith("vgg") else torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        feats = model.features(x)
        logits = model(x)
    assert feats.shape == (2, EXPECTED_FEATURES[name]) == (2, model.feature_dim)
    assert isinstance(model.classifier, torch.nn.Linear)
    assert model.classifier.weight.shape == (3, model.feature_dim)
    torch.testing.assert_close(logits, model.classifier(feats))


def test_torchvision_state_dict_loads_into_body_and_matching_head(tmp_path):
    torch.manual_seed(1)
    reference = torchvision.models.resnet18(num_classes=2).eval()
    path = tmp_path / "tv.pt"
    torch.save(reference.state_dict(), path)
    model = build_model("resnet18", num_classes=2, weights=path).eval()
    pixels = torch.randint(0, 256, (1, 3, 64, 64), dtype=torch.uint8)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        # The network normalises 0..255 pixels itself, exactly as torchvision's reference expects them.
        torch.testing.assert_close(model(pixels), reference((pixels / 255.0 - mean) / std), rtol=1e-4, atol=1e-5)


def test_head_of_other_class_count_is_reinitialised_body_kept(tmp_path):
    torch.manual_seed(2)
    reference = torchvision.models.resnet18().eval()  # 1000-class head
    path = tmp_path / "tv1000.pt"
    torch.save(reference.state_dict(), path)
    model = build_model("resnet18", num_classes=3, weights=path)
    torch.testing.assert_close(model.body.conv1.weight, reference.conv1.weight)
    assert model.classifier.weight.shape == (3, 512)


def _two_class_checkpoint(path, classes=("crack", "no_crack")):
    from crackcli.model.checkpoint import save_checkpoint
    from crackcli.model.meta import ModelMeta

    torch.manual_seed(3)
    source = build_model("mobilenet_v3_small", num_classes=2)
    save_checkpoint(path, ModelMeta("mobilenet_v3_small", classes, "crack", 64, IMAGENET_MEAN, IMAGENET_STD), source)
    return source.classifier


def test_fine_tune_into_more_classes_keeps_the_rows_of_shared_class_names(tmp_path):
    head = _two_class_checkpoint(tmp_path / "two.pt")
    torch.manual_seed(4)
    model = build_model("mobilenet_v3_small", 3, tmp_path / "two.pt", classes=["crack", "joint", "no_crack"])
    rows = model.classifier
    torch.testing.assert_close(rows.weight[[0, 2]], head.weight)
    torch.testing.assert_close(rows.bias[[0, 2]], head.bias)
    # the new class's row is freshly initialised, not a copy of either known class
    assert not torch.allclose(rows.weight[1], head.weight[0]) and not torch.allclose(rows.weight[1], head.weight[1])


def test_head_rows_follow_class_names_in_another_order(tmp_path):
    head = _two_class_checkpoint(tmp_path / "two.pt")
    model = build_model("mobilenet_v3_small", 2, tmp_path / "two.pt", classes=["no_crack", "crack"])
    torch.testing.assert_close(model.classifier.weight, head.weight[[1, 0]])
    torch.testing.assert_close(model.classifier.bias, head.bias[[1, 0]])


def test_head_without_a_shared_class_name_loads_by_position(tmp_path):
    head = _two_class_checkpoint(tmp_path / "two.pt")
    model = build_model("mobilenet_v3_small", 2, tmp_path / "two.pt", classes=["cracked", "intact"])
    torch.testing.assert_close(model.classifier.weight, head.weight)


def test_own_state_dict_round_trips(tmp_path):
    model = build_model("mobilenet_v3_small", num_classes=2)
    path = tmp_path / "own.pt"
    torch.save({"model": model.state_dict(), "classes": ["crack", "no_crack"]}, path)
    loaded = build_model("mobilenet_v3_small", num_classes=2, weights=path)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)


def test_weights_of_another_backbone_are_refused(tmp_path):
    path = tmp_path / "r18.pt"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    with pytest.raises(CrackError, match="different backbone"):
        build_model("resnet50", num_classes=2, weights=path)


def test_pickled_code_in_weights_file_never_runs(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.pt"
    torch.save({"model": Payload()}, path)
    with pytest.raises(CrackError, match="never code"):
        build_model("resnet18", num_classes=2, weights=path)
    assert not marker.exists()


def test_missing_weights_file_and_unknown_backbone_have_clear_errors(tmp_path):
    with pytest.raises(CrackError, match="not found"):
        build_model("resnet18", num_classes=2, weights=tmp_path / "nope.pt")
    with pytest.raises(UsageError, match="choose one of"):
        build_model("resnet9000", num_classes=2)


def test_imagenet_download_failure_names_url_and_fix(monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(torchvision.models.WeightsEnum, "get_state_dict", offline)
    with pytest.raises(CrackError, match=r"`weights` PATH") as info:
        build_model("resnet18", num_classes=2, weights="imagenet")
    assert "https://" in str(info.value)


@pytest.mark.parametrize("name", sorted(n for n, spec in BACKBONES.items() if spec.trunk_end and not spec.global_ops))
def test_logit_map_averages_to_the_patch_logits(name):
    """Dense scanning rests on this: the mean of the per-location logits is the network's output."""
    torch.manual_seed(0)
    model = build_model(name, num_classes=2).eval()
    pixels = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    with torch.no_grad():
        assert model.supports_dense
        torch.testing.assert_close(model.logit_map(pixels).mean((2, 3)), model(pixels), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["mobilenet_v3_small", "efficientnet_b0", "vgg16"])
def test_backbones_without_a_per_location_form_refuse_logit_map(name):
    model = build_model(name, num_classes=2)
    assert not model.supports_dense
    with pytest.raises(UsageError):
        model.logit_map(torch.zeros(1, 3, 64, 64))
