"""The learned crack tracer: its file (a checked ONNX graph with its own metadata), run by ONNX Runtime
as its PyTorch network computes, refused in one line when it is anything else, and the shipped one
finding painted cracks."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import torch
from onnx import helper
from PIL import Image
from test_model_files import _external_tensor, _hide_in_constant, _secret
from typer.testing import CliRunner

from crackcli.cli.app import app
from crackcli.data.painting import paint_crack_with_mask
from crackcli.errors import CrackError
from crackcli.model import tracers
from crackcli.model.onnx_files import set_properties
from crackcli.model.shipped import TRACER_NAME, shipped_file
from crackcli.model.tracer_files import (
    TRACER_INPUT,
    TRACER_OUTPUT,
    TRACER_STATISTICS,
    load_tracer_checked,
    tracer_info,
    tracer_properties,
)
from crackcli.model.tracer_net import TinyUNet, TracerGraph, export_tracer
from crackcli.model.tracers import OnnxTracer
from crackcli.scan.traces import LearnedExtractor

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_tracer(tmp_path_factory):
    torch.manual_seed(0)
    net = TinyUNet((2, 4, 4)).eval()
    path = tmp_path_factory.mktemp("tracer") / "tiny.onnx"
    export_tracer(net, path, 0.6, 12, {"data": "none: random weights"})
    return net, path


@pytest.fixture(scope="module")
def folded_tracer(tmp_path_factory):
    torch.manual_seed(1)
    net = TinyUNet((2, 4, 4), fold=2).eval()
    path = tmp_path_factory.mktemp("tracer") / "folded.onnx"
    export_tracer(net, path, 0.5, 20, {})
    return net, path


@pytest.mark.parametrize("shape", [(37, 53), (64, 64), (3, 5)])
@pytest.mark.parametrize("which", ["tiny_tracer", "folded_tracer"])
def test_a_tracer_file_computes_what_its_network_does(request, which, shape):
    net, path = request.getfixturevalue(which)
    tracer = OnnxTracer(path)
    gray = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    probs = tracer.probabilities(gray)
    height, width = shape
    step = net.size_multiple
    padded = np.pad(gray, ((0, -height % step), (0, -width % step)), mode="symmetric")
    statistics = torch.tensor([gray.mean(), max(gray.std(), 1.0)])
    with torch.inference_mode():
        expected = TracerGraph(net)(torch.from_numpy(padded)[None, None], statistics)[0, 0, :height, :width].numpy()
    assert probs.shape == shape and probs.dtype == np.float32
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    assert (tracer.info.size_multiple, tracer.info.context_px) == ((4, 24) if net.fold == 1 else (8, 48))
    if which == "tiny_tracer":
        assert (tracer.info.threshold, tracer.info.min_length_px) == (0.6, 12)
        assert tracer.info.training()["architecture"] == "TinyUNet 2/4/4"


def test_a_large_crop_runs_in_tiles_that_join_without_seams(shipped_tracer, monkeypatch):
    rng = np.random.default_rng(7)
    rgb = np.clip(150 + rng.normal(0, 10, (150, 230, 1)) + rng.normal(0, 3, (150, 230, 3)), 0, 255).astype(np.uint8)
    for _ in range(3):
        rgb, _ = paint_crack_with_mask(rgb, rng, (2.0, 3.0), (0.35, 0.45))
    gray = rgb.mean(axis=2).astype(np.uint8)
    whole = shipped_tracer.probabilities(gray)
    monkeypatch.setattr(tracers, "TILE_PX", 64)  # bands of 64 rows, the last one cut short
    monkeypatch.setattr(tracers, "MAX_RUN_TILES", 2)  # and at most 128 columns at once: 3 pieces a band
    tiled = shipped_tracer.probabilities(gray)
    assert whole.std() > 0.1  # cracks and texture: a misplaced tile would show
    # Standardised by the whole crop's statistics, each tile seeing its context: the same probabilities.
    np.testing.assert_allclose(tiled, whole, atol=1e-4)
    within = np.zeros(gray.shape, bool)
    within[70:80, 100:110] = True  # rows of the band from 64 only
    within[140:142, 10:20] = within[140:142, 200:210] = True  # two stretches of the band from 128
    some = shipped_tracer.probabilities(gray, within)
    for rows, columns in [((64, 128), (100, 110)), ((128, 150), (10, 20)), ((128, 150), (200, 210))]:
        part = slice(*rows), slice(*columns)
        np.testing.assert_allclose(some[part], whole[part], atol=1e-4)
        some[part] = 0
    assert not some.any()  # the rows and columns holding no pixel to trace were not run


def test_a_band_ends_where_the_rows_to_trace_change(shipped_tracer):
    rng = np.random.default_rng(9)
    gray = np.clip(150 + rng.normal(0, 12, (300, 260)), 0, 255).astype(np.uint8)
    within = np.zeros(gray.shape, bool)
    within[:100, :50] = True  # one group of windows, then another below it, elsewhere
    within[100:, 200:250] = True
    assert tracers._bands(within, 300) == [(0, 100), (100, 300)]
    some, whole = shipped_tracer.probabilities(gray, within), shipped_tracer.probabilities(gray)
    np.testing.assert_allclose(some[within], whole[within], atol=1e-4)
    # Bands of 256 rows would have run the second group's columns from row 0 and the first's to row 256.
    assert not some[:100, 60:].any() and not some[100:, :190].any()
    narrow = np.zeros((300, 260), bool)
    narrow[:50, :50] = narrow[50:, 200:] = True  # a change too soon (under SHORTEST_BAND of a band): one band
    assert tracers._bands(narrow, 300)[0] == (0, 256)
    assert tracers._bands(None, 600) == [(0, 256), (256, 512), (512, 600)]


def test_tiles_padded_to_one_shape_give_the_same_probabilities_inside(shipped_tracer, monkeypatch):
    """As on a GPU, where each new input shape reruns cuDNN's search: every tile run at one shape."""
    rng = np.random.default_rng(8)
    rgb = np.clip(150 + rng.normal(0, 10, (200, 290, 1)), 0, 255).astype(np.uint8).repeat(3, axis=2)
    rgb, _ = paint_crack_with_mask(rgb, rng, (2.0, 3.0), (0.35, 0.45))
    gray = rgb[..., 0]
    monkeypatch.setattr(tracers, "TILE_PX", 64)
    own_size = shipped_tracer.probabilities(gray)
    padded = OnnxTracer(shipped_tracer.source, "cpu", pad_tiles=True)
    shapes = []
    run = padded.session.run

    def recorded(names, feed):
        shapes.append(feed[TRACER_INPUT].shape)
        return run(names, feed)

    monkeypatch.setattr(padded.session, "run", recorded)
    one_shape = padded.probabilities(gray)
    assert set(shapes) == {(1, 1, 112, 304)}  # bands of 64 + 2 × 24 rows; 290 columns in 4 × 64 + 2 × 24
    # Only where a crop edge lies within the network's reach do the two paddings differ.
    inner = (slice(24, -24), slice(24, -24))
    np.testing.assert_allclose(one_shape[inner], own_size[inner], atol=1e-4)


def test_brightness_and_contrast_do_not_change_what_is_traced(tiny_tracer):
    """The graph standardises its crop: the same picture lighter or flatter scores the same."""
    tracer = OnnxTracer(tiny_tracer[1])
    gray = np.random.default_rng(2).integers(60, 160, (48, 48)).astype(np.float32)
    lighter = np.clip(gray * 0.5 + 90, 0, 255).astype(np.uint8)
    a, b = tracer.probabilities(gray.astype(np.uint8)), tracer.probabilities(lighter)
    assert np.abs(a - b).max() < 0.05  # only rounding to grey levels differs


def _float_input_tracer(path):
    graph = helper.make_graph(
        [helper.make_node("Identity", [TRACER_INPUT], [TRACER_OUTPUT])],
        "float_in",
        [
            helper.make_tensor_value_info(TRACER_INPUT, onnx.TensorProto.FLOAT, [1, 1, "h", "w"]),
            helper.make_tensor_value_info(TRACER_STATISTICS, onnx.TensorProto.FLOAT, [2]),
        ],
        [helper.make_tensor_value_info(TRACER_OUTPUT, onnx.TensorProto.FLOAT, [1, 1, "h", "w"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    set_properties(model, tracer_properties(0.5, 20, 4, 24, {}))
    onnx.save(model, str(path))


def test_widths_have_their_own_threshold_which_older_files_take_from_the_crack_threshold(tmp_path):
    properties = tracer_properties(0.6, 20, 4, 24, {}, width_threshold=0.8)
    assert tracer_info(tmp_path / "t.onnx", properties).width_threshold == 0.8
    older = {k: v for k, v in properties.items() if k != "width_threshold"}
    assert tracer_info(tmp_path / "t.onnx", older).width_threshold == 0.6
    with pytest.raises(CrackError, match="out of range"):  # widths from pixels less sure than the cracks
        tracer_info(tmp_path / "t.onnx", {**properties, "width_threshold": "0.5"})


def test_how_much_a_crack_may_fill_is_a_tracer_setting_that_older_files_do_without(tmp_path):
    properties = tracer_properties(0.6, 20, 4, 24, {}, width_threshold=0.8, max_fill=0.25)
    assert tracer_info(tmp_path / "t.onnx", properties).max_fill == 0.25
    assert "max_fill" not in tracer_properties(0.6, 20, 4, 24, {})  # files made without it stay as they were
    older = {k: v for k, v in properties.items() if k != "max_fill"}
    assert tracer_info(tmp_path / "t.onnx", older).max_fill == math.inf
    for bad in ("0", "1.5", "nan", "-inf"):
        with pytest.raises(CrackError, match="out of range"):
            tracer_info(tmp_path / "t.onnx", {**properties, "max_fill": bad})


def test_the_shipped_tracers_widths_come_from_its_surest_pixels(shipped_tracer):
    rng = np.random.default_rng(3)
    rgb = np.clip(150 + rng.normal(0, 8, (128, 128, 1)), 0, 255).astype(np.uint8).repeat(3, axis=2)
    rgb, _ = paint_crack_with_mask(rgb, rng, (3.0, 4.0), (0.4, 0.5))
    found, core = LearnedExtractor(shipped_tracer).crack_pixels(rgb[..., 0], np.ones((128, 128), bool))
    assert found.any() and (core <= found).all() and core.sum() < found.sum()


def test_files_that_are_not_usable_tracers_are_refused_in_one_line(crack_model, tiny_tracer, tmp_path):
    _, classifier, _ = crack_model
    photo = tmp_path / "photo.png"
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(photo)
    float_in = tmp_path / "float_in.onnx"
    _float_input_tracer(float_in)
    with pytest.raises(CrackError, match="FLOAT, not UINT8"):
        load_tracer_checked(float_in)
    secret = _secret(tmp_path)
    crafted = tmp_path / "crafted.onnx"
    model = onnx.load(str(tiny_tracer[1]))
    _hide_in_constant(model, _external_tensor(os.path.relpath(secret, tmp_path)))
    onnx.save(model, str(crafted))
    cases = [
        (classifier, "not a crack tracer file"),
        (tmp_path / "missing.onnx", "no such model file"),
        (float_in, "does not match its tracer metadata"),
        (crafted, "external tensor files"),
    ]
    cwd = os.getcwd()
    os.chdir(tmp_path)  # where the crafted location points from
    try:
        for index, (tracer, says) in enumerate(cases):
            out = tmp_path / f"o{index}"
            args = ["scan", str(photo), "--model", str(classifier), "--out", str(out), "--trace"]
            result = runner.invoke(app, [*args, "--tracer", str(tracer)])
            assert result.exit_code == 2, result.output
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and says in lines[0] and str(tracer) in lines[0], result.stderr
            assert not out.exists()
    finally:
        os.chdir(cwd)


@pytest.fixture(scope="module")
def shipped_tracer():
    path = shipped_file(TRACER_NAME)
    assert path is not None, "the learned tracer ships in models/"
    return OnnxTracer(path)


def test_the_shipped_tracer_finds_painted_cracks_and_not_the_texture(shipped_tracer):
    rng = np.random.default_rng(7)
    found_total = matched_found = truth_total = matched_truth = 0
    for _ in range(4):
        base = np.clip(150 + rng.normal(0, 10, (192, 192, 1)) + rng.normal(0, 3, (192, 192, 3)), 0, 255)
        rgb, truth = paint_crack_with_mask(base.astype(np.uint8), rng, (2.0, 3.0), (0.35, 0.45))
        gray = rgb.mean(axis=2).astype(np.uint8)
        found = LearnedExtractor(shipped_tracer).crack_pixels(gray, np.ones(gray.shape, bool)).found
        near_truth = _dilated(truth)
        matched_found += (found & near_truth).sum()
        found_total += found.sum()
        matched_truth += (truth & _dilated(found)).sum()
        truth_total += truth.sum()
        unpainted = base.mean(axis=2).astype(np.uint8)
        plain = LearnedExtractor(shipped_tracer).crack_pixels(unpainted, np.ones(gray.shape, bool)).found
        assert plain.sum() < 0.002 * plain.size  # the same texture without its crack: (nearly) nothing
    assert matched_found / max(found_total, 1) > 0.8 and matched_truth / truth_total > 0.7


def _dilated(mask):
    return cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0


def test_crack_info_describes_a_tracer_file(tiny_tracer):
    result = runner.invoke(app, ["info", str(tiny_tracer[1]), "--json"])
    assert result.exit_code == 0, result.output
    details = json.loads(result.stdout)
    assert details["kind"].startswith("ONNX crack tracer") and details["threshold"] == 0.6
    assert details["min_length_px"] == 12 and details["training"]["data"] == "none: random weights"
    assert details["max_fill"] is None  # made without a limit: none, and valid JSON


def test_damaged_or_newer_tracer_metadata_is_refused_in_one_line(tiny_tracer, tmp_path):
    for version, says in (("x", "damaged metadata"), ("99", "newer crack")):
        model = onnx.load(str(tiny_tracer[1]))
        for entry in model.metadata_props:
            if entry.key == "format_version":
                entry.value = version
        changed = tmp_path / f"v{version}.onnx"
        onnx.save(model, str(changed))
        with pytest.raises(CrackError, match=says):
            OnnxTracer(changed)


def test_a_tracer_files_settings_change_and_its_weights_do_not(tmp_path):
    """benchmarks/tracer_settings.py rewrites a file's threshold and shortest crack; the graph computes the
    same probabilities, and settings the scan would refuse leave the file as it was."""
    torch.manual_seed(2)
    path = tmp_path / "tracer.onnx"
    export_tracer(TinyUNet((2, 4, 4)).eval(), path, 0.7, 35, {"data": "none: random weights"}, width_threshold=0.8)
    script = [sys.executable, str(Path(__file__).resolve().parents[1] / "benchmarks" / "tracer_settings.py"), str(path)]
    gray = np.random.default_rng(0).integers(0, 255, (40, 48), dtype=np.uint8)
    before = OnnxTracer(path, "cpu").probabilities(gray)
    settings = ["--threshold", "0.6", "--min-length", "70", "--max-fill", "0.3", "--why", "a test"]
    done = subprocess.run([*script, *settings], capture_output=True)
    assert done.returncode == 0, done.stderr
    tracer = OnnxTracer(path, "cpu")
    info = tracer.info
    assert (info.threshold, info.min_length_px, info.width_threshold, info.max_fill) == (0.6, 70, 0.8, 0.3)
    assert tracer.info.training()["data"] == "none: random weights" and "a test" in tracer.info.training()["settings"]
    assert np.array_equal(tracer.probabilities(gray), before)
    kept = path.read_bytes()
    for bad in (["--threshold", "0.9"], ["--max-fill", "1.5"], ["--max-fill=-inf"]):  # above widths' 0.8; ...
        refused = subprocess.run([*script, *bad], capture_output=True, text=True)
        assert refused.returncode != 0 and "Traceback" not in refused.stderr and "nothing written" in refused.stderr
        assert path.read_bytes() == kept
