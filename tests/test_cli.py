import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import crackcli
from crackcli import __version__
from crackcli.cli import app
from crackcli.cli.flags import as_flags

runner = CliRunner()


def test_version_flag():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"crack {__version__}"


def test_info_json_reports_versions_devices_and_providers():
    result = runner.invoke(app, ["info", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["versions"]["crackcli"] == __version__
    assert "torch" in report["versions"]
    assert report["torch_devices"][0] == "cpu"
    assert "CPUExecutionProvider" in report["onnxruntime_providers"]
    assert report["cpu"]["usable_cpus"] >= 1


def test_unknown_command_is_usage_error():
    result = runner.invoke(app, ["frobnicate"])
    assert result.exit_code == 2


def test_module_entry_point_runs():
    proc = subprocess.run([sys.executable, "-m", "crackcli", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"crack {__version__}"


def test_help_imports_no_heavy_library():
    """`crack --help` and each command's help stay fast: torch, ONNX and OpenCV load only when a command runs."""
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from crackcli.cli import app\n"
        "for args in (['--help'], ['scan', '--help'], ['train', '--help'], ['prepare', '--help']):\n"
        "    assert CliRunner().invoke(app, args).exit_code == 0\n"
        "print(sorted(m for m in ('torch', 'onnx', 'onnxruntime', 'cv2', 'numpy') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_the_scan_api_leaves_the_onnx_package_to_the_model_check():
    """onnx (about 0.1 s to import) loads on the model-check thread, beside the first photo's decode."""
    code = "import sys\nimport crackcli.scan.api\nprint('onnx' in sys.modules)\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("message", "shown"),
    [
        ("raise `max_pixels` if the photo is genuine", "raise --max-pixels if the photo is genuine"),
        ("use `mode=patch`", "use --mode patch"),
        ("or try `amp=False`", "or try --no-amp"),
        ("`image_format` tif: choose png or jpg", "--format tif: choose png or jpg"),
        ("`precision=int8` needs `calibrate` FOLDER", "--int8 needs --calibrate FOLDER"),
        ("a `backtick` of prose stays", "a --backtick of prose stays"),
    ],
)
def test_settings_named_in_messages_are_shown_as_flags(message, shown):
    assert as_flags(message) == shown


def test_an_option_error_from_the_core_reaches_the_user_as_its_flag(tmp_path):
    result = runner.invoke(app, ["scan", str(tmp_path), "--threshold", "1.5"])
    assert result.exit_code == 2
    assert "crack: error: --threshold 1.5: give a probability between 0 and 1" in result.stderr


@pytest.mark.parametrize(
    ("command", "flag"),
    [
        (["scan", "{photo}", "--patch", "100000"], "--patch 100000"),
        (["scan", "{photo}", "--stride", "500"], "--stride 500"),
        (["scan", "{photo}", "--stride", "0"], "--stride 0"),
        (["scan", "{photo}", "--batch", "100000"], "--batch 100000"),
        (["scan", "{photo}", "--max-pixels", "-1"], "--max-pixels -1"),
        (["prepare", "{photo}", "--workers", "-1"], "--workers -1"),
        (["prepare", "{photo}", "--size", "100000"], "--size 100000"),
        (["prepare", "{photo}", "--split", "nan:1"], "--split 'nan:1'"),
        (["prepare", "{photo}", "--max-pixels", "-1"], "--max-pixels -1"),
        (["synth", "{folder}/s", "--width", "100000"], "--width 100000"),
        (["train", "{folder}", "--workers", "-1"], "--workers -1"),
        (["train", "{folder}", "--lr", "nan"], "--lr nan"),
        (["eval", "{model}", "{folder}", "--workers", "-1"], "--workers -1"),
        (["eval", "{model}", "{folder}", "--threshold", "2"], "--threshold 2.0"),
    ],
)
def test_option_values_that_cannot_work_are_refused_before_any_work(tmp_path, command, flag):
    from helpers import write_photo

    photo = write_photo(tmp_path / "in" / "p.png", 64, 48)
    for label in ("crack", "no_crack"):
        write_photo(tmp_path / "in" / label / "q.png", 64, 48)
    model = Path(crackcli.__file__).parent.parent / "models" / "crack-default.onnx"
    values = {"photo": str(photo), "folder": str(tmp_path / "in"), "model": str(model)}
    args = [part.format(**values) for part in command] + ["--out" if command[0] != "train" else "--project"]
    args.append(str(tmp_path / "out"))
    if command[0] == "synth":  # no --out: synth takes its folder as an argument
        args = args[:-2]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert f"crack: error: {flag}:" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_the_core_names_settings_never_flags():
    """Messages raised outside the CLI name fields (`max_pixels`), so library callers read what they passed;
    a whole command line (``crack prepare --split``) is the one exception."""
    offenders = []
    for path in sorted(Path(crackcli.__file__).parent.rglob("*.py")):
        if "cli" in path.relative_to(Path(crackcli.__file__).parent).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and node.exc is not None:
                for text in (c.value for c in ast.walk(node.exc) if isinstance(c, ast.Constant)):
                    if isinstance(text, str) and any(
                        not re.search(r"crack \w+ $", text[: flag.start()]) for flag in re.finditer(r"--[a-z]", text)
                    ):
                        offenders.append(f"{path.name}: {text}")
    assert offenders == []
