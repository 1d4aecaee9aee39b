import json
import subprocess
import sys

from typer.testing import CliRunner

from crackcli import __version__
from crackcli.cli import app

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
