"""Crafted model files: a model must never make crack read another file, and a graph that does not match
its metadata is refused in one line before ONNX Runtime runs it."""

import os

import numpy as np
import onnx
import pytest
from onnx import helper
from PIL import Image
from typer.testing import CliRunner

from crackcli.cli.app import app
from crackcli.errors import CrackError
from crackcli.model.onnx_files import load_checked
from crackcli.model.onnx_properties import read_properties
from crackcli.model.predictors import OnnxPredictor, load_predictor

runner = CliRunner()


def _secret(tmp_path):
    """A file the model must not read, at a relative path from the folder the scan runs in."""
    secret = tmp_path / "home" / "secret.key"
    secret.parent.mkdir()
    secret.write_bytes(np.arange(16, dtype=np.float32).tobytes())
    return secret


def _external_tensor(location: str) -> onnx.TensorProto:
    tensor = onnx.TensorProto(name="leak", data_type=onnx.TensorProto.FLOAT, dims=[16])
    tensor.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "64")):
        tensor.external_data.add(key=key, value=value)
    return tensor


def _hide_in_constant(model: onnx.ModelProto, tensor: onnx.TensorProto) -> None:
    model.graph.node.append(helper.make_node("Constant", [], ["leaked"], value=tensor))


def _hide_in_subgraph(model: onnx.ModelProto, tensor: onnx.TensorProto) -> None:
    branch = helper.make_graph(
        [helper.make_node("Constant", [], ["inside"], value=tensor)],
        "branch",
        [],
        [helper.make_tensor_value_info("inside", onnx.TensorProto.FLOAT, [16])],
    )
    model.graph.node.append(helper.make_node("Constant", [], ["cond"], value_int=1))
    model.graph.node.append(helper.make_node("If", ["cond"], ["leaked"], then_branch=branch, else_branch=branch))


def _hide_in_sparse_initializer(model: onnx.ModelProto, tensor: onnx.TensorProto) -> None:
    indices = helper.make_tensor("leak_indices", onnx.TensorProto.INT64, [16], vals=list(range(16)))
    model.graph.sparse_initializer.append(helper.make_sparse_tensor(tensor, indices, [16]))


def _hide_in_function(model: onnx.ModelProto, tensor: onnx.TensorProto) -> None:
    function = helper.make_function(
        "crafted", "Leak", [], ["out"], [helper.make_node("Constant", [], ["out"], value=tensor)], []
    )
    model.functions.append(function)


@pytest.mark.parametrize("hide", [_hide_in_constant, _hide_in_subgraph, _hide_in_sparse_initializer, _hide_in_function])
def test_external_data_anywhere_in_the_graph_is_refused_before_anything_is_read(crack_model, tmp_path, hide):
    _, exported, _ = crack_model
    secret = _secret(tmp_path)
    crafted = tmp_path / "crafted.onnx"
    model = onnx.load(str(exported))
    hide(model, _external_tensor(os.path.relpath(secret, tmp_path)))
    onnx.save(model, str(crafted))
    with pytest.raises(CrackError, match="external tensor files"):
        load_checked(crafted)

    # Through the command line, run from the folder the location is relative to; a missing target is
    # refused the same way, so the message does not tell whether a file exists.
    photo = tmp_path / "photo.png"
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(photo)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        for _ in range(2):
            result = runner.invoke(app, ["scan", str(photo), "--model", str(crafted), "--out", str(tmp_path / "o")])
            assert result.exit_code == 2, result.output
            assert "external tensor files" in result.stderr and "Traceback" not in result.output
            assert not (tmp_path / "o").exists()
            secret.unlink(missing_ok=True)
    finally:
        os.chdir(cwd)


def _rename_input(model: onnx.ModelProto) -> None:
    old = model.graph.input[0].name
    model.graph.input[0].name = "pixels"
    for node in model.graph.node:
        node.input[:] = ["pixels" if name == old else name for name in node.input]


def _float_input(model: onnx.ModelProto) -> None:
    old = model.graph.input[0].name
    model.graph.input[0].type.tensor_type.elem_type = onnx.TensorProto.FLOAT
    for node in model.graph.node:
        if old in node.input and node.op_type == "Cast":
            node.input[:] = [old]


def _three_dims(model: onnx.ModelProto) -> None:
    del model.graph.input[0].type.tensor_type.shape.dim[0]


def _no_logit_map(model: onnx.ModelProto) -> None:
    kept = [o for o in model.graph.output if o.name != "logit_map"]
    del model.graph.output[:]
    model.graph.output.extend(kept)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (_rename_input, "'pixels'"),
        (_float_input, "FLOAT, not UINT8"),
        (_three_dims, "not (N, 3, H, W)"),
        (_no_logit_map, "no output 'logit_map'"),
    ],
)
def test_a_graph_that_does_not_match_its_metadata_is_refused_in_one_line(crack_model, tmp_path, change, says):
    _, exported, _ = crack_model
    model = onnx.load(str(exported))
    change(model)
    crafted = tmp_path / "mismatch.onnx"
    onnx.save(model, str(crafted))
    with pytest.raises(CrackError, match="does not match its crack metadata") as error:
        load_checked(crafted)
    assert says in str(error.value)
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(photos / "photo.png")
    result = runner.invoke(app, ["scan", str(photos), "--model", str(crafted), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.count("\n") == 1 and str(crafted) in result.stderr
    assert not (tmp_path / "o").exists()


def _tiny_checkpoint(tmp_path):
    import torch

    from crackcli.model.backbones import IMAGENET_MEAN, IMAGENET_STD, build_model
    from crackcli.model.checkpoint import save_checkpoint
    from crackcli.model.meta import ModelMeta

    torch.manual_seed(0)
    model = build_model("shufflenet_v2_x0_5", 2, "none").eval()
    meta = ModelMeta("shufflenet_v2_x0_5", ("crack", "no_crack"), "crack", 32, IMAGENET_MEAN, IMAGENET_STD)
    save_checkpoint(tmp_path / "good.pt", meta, model)
    return tmp_path / "good.pt", model, meta


def test_weights_that_are_not_finite_are_never_saved_nor_used(tmp_path):
    import torch

    from crackcli.model.checkpoint import save_checkpoint
    from crackcli.model.export import export_checkpoint

    good, model, meta = _tiny_checkpoint(tmp_path)
    with torch.no_grad():
        model.classifier.weight[0, 0] = float("nan")
    with pytest.raises(CrackError, match="NaN or infinite") as error:
        save_checkpoint(tmp_path / "diverged.pt", meta, model)
    assert "classifier.weight" in str(error.value) and not (tmp_path / "diverged.pt").exists()

    # A file written some other way (an older crack, another tool) is refused by every command reading it.
    payload = torch.load(good, weights_only=True)
    payload["model"]["classifier.bias"] = torch.tensor([float("inf"), 0.0])
    torch.save(payload, tmp_path / "diverged.pt")
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(photos / "p.png")
    for label in ("crack", "no_crack"):
        (photos / label).mkdir()
        for k in range(4):
            Image.fromarray(np.full((32, 32, 3), 40 * k, np.uint8)).save(photos / label / f"{k}.png")
    for command in (
        ["scan", str(photos / "p.png"), "--model", str(tmp_path / "diverged.pt"), "--out", str(tmp_path / "o")],
        ["eval", str(tmp_path / "diverged.pt"), str(photos)],
        ["export", str(tmp_path / "diverged.pt"), "--out", str(tmp_path / "d.onnx")],
        [
            "train",
            str(photos),
            "--weights",
            str(tmp_path / "diverged.pt"),
            "--image-size",
            "32",
            "--project",
            str(tmp_path / "r"),
        ],
    ):
        result = runner.invoke(app, command)
        assert result.exit_code != 0, (command, result.output)
        assert "NaN or infinite" in result.stderr and "Traceback" not in result.output, (command, result.output)
    assert not (tmp_path / "d.onnx").exists() and not (tmp_path / "o").exists()

    # The same for an exported graph whose stored weights hold a NaN.
    exported = export_checkpoint(good, tmp_path / "good.onnx").path
    graph = onnx.load(str(exported))
    weight = next(t for t in graph.graph.initializer if t.data_type == onnx.TensorProto.FLOAT and t.dims)
    values = onnx.numpy_helper.to_array(weight).copy()
    values.flat[0] = np.nan
    weight.CopyFrom(onnx.numpy_helper.from_array(values, weight.name))
    onnx.save(graph, str(tmp_path / "diverged.onnx"))
    with pytest.raises(CrackError, match="NaN or infinite"):
        load_checked(tmp_path / "diverged.onnx")


def test_a_learning_rate_that_is_not_a_number_is_refused():
    from crackcli.errors import OptionError
    from crackcli.train.config import TrainConfig

    for lr in (float("nan"), float("inf"), 0.0, -1.0):
        with pytest.raises(OptionError, match="learning rate") as error:
            TrainConfig(data="patches", lr=lr)
        assert error.value.field == "lr"
    result = runner.invoke(app, ["train", "patches", "--lr", "nan"])
    assert result.exit_code == 2 and "--lr nan" in result.stderr


def test_a_graph_onnx_runtime_cannot_run_is_refused_in_one_line(crack_model, tmp_path):
    _, exported, _ = crack_model
    model = onnx.load(str(exported))
    probs = next(node for node in model.graph.node if "probs" in node.output)
    probs.output[:] = ["before_mystery" if name == "probs" else name for name in probs.output]
    model.graph.node.append(helper.make_node("Mystery", ["before_mystery"], ["probs"], domain="com.example"))
    model.opset_import.append(helper.make_opsetid("com.example", 1))
    crafted = tmp_path / "mystery.onnx"
    onnx.save(model, str(crafted))
    load_checked(crafted)  # a valid graph with crack metadata: only the runtime can tell

    photo = tmp_path / "photo.png"
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(photo)
    result = runner.invoke(app, ["scan", str(photo), "--model", str(crafted), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.count("\n") == 1 and "ONNX Runtime cannot run this model" in result.stderr
    assert "Mystery" in result.stderr and not (tmp_path / "o").exists()


def test_the_quick_metadata_reading_agrees_with_onnx(crack_model, tmp_path):
    """What sizes a scan before the full check is read from the protobuf encoding directly: it must give
    what onnx gives, for the exported file and for keys repeated, empty or not ASCII."""
    _, exported, _ = crack_model
    model = onnx.load(str(exported))
    for key, value in (("note", "première"), ("note", "second wins"), ("", ""), ("empty", "")):
        model.metadata_props.add(key=key, value=value)
    data = model.SerializeToString()
    assert read_properties(exported, data) == {p.key: p.value for p in model.metadata_props}
    assert read_properties(exported, data)["note"] == "second wins"
    for damaged in (os.urandom(500), data[: len(data) // 2], b"\xff" * 12):
        with pytest.raises(CrackError, match="not an ONNX model"):
            read_properties(tmp_path / "m.onnx", damaged)


def test_a_predictor_says_what_its_file_check_found_when_first_used(crack_model, tmp_path):
    """The full check runs beside other work; a file it refuses is never run and the refusal reaches the
    caller at ``ready`` (or at once from ``load_predictor``, which waits)."""
    _, exported, _ = crack_model
    model = onnx.load(str(exported))
    _hide_in_constant(model, _external_tensor("secret.key"))
    crafted = tmp_path / "crafted.onnx"
    onnx.save(model, str(crafted))
    predictor = OnnxPredictor(crafted, "cpu")
    assert predictor.meta == load_checked(exported)[1].meta  # the metadata at once
    for use in (predictor.ready, lambda: predictor.predict(np.zeros((1, 3, 8, 8), np.uint8))):
        with pytest.raises(CrackError, match="external tensor files"):
            use()
    with pytest.raises(CrackError, match="external tensor files"):
        load_predictor(crafted, "cpu")
