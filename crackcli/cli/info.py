"""`crack info`: what this installation can run on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from crackcli import __version__
from crackcli.cli.console import out


def info(
    model: Annotated[Path | None, typer.Argument(help="A model file (.onnx or .pt) to describe instead.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")] = False,
) -> None:
    """Show package versions, torch devices, ONNX Runtime providers and CPU threads, or what a model file says."""
    from rich.table import Table

    from crackcli.io.system import environment_report
    from crackcli.model.shipped import default_model

    if model is not None:
        _describe_model(model, as_json)
        return
    report = {
        **environment_report(),
        "gpu_problems": gpu_problems(),
        "default_model": str(default_model() or "none (pass --model or set $CRACK_MODEL)"),
    }
    if as_json:
        print(json.dumps(report))
        return
    table = Table(title=f"crack {__version__}", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    for name, version in report["versions"].items():
        table.add_row(name, version)
    table.add_row("platform", str(report["platform"]))
    table.add_row("torch devices", ", ".join(report["torch_devices"]))
    table.add_row("onnxruntime providers (built in)", ", ".join(report["onnxruntime_providers"]))
    cpu = report["cpu"]
    table.add_row(
        "cpu threads", f"{cpu['usable_cpus']} usable of {cpu['logical_cpus']}, torch uses {cpu['torch_threads']}"
    )
    for problem in report["gpu_problems"]:
        table.add_row("GPU not usable", problem)
    table.add_row("default model", str(report["default_model"]))
    out.print(table)


def gpu_problems() -> list[str]:
    """Why torch or ONNX Runtime cannot use the NVIDIA GPU this machine has (empty: no such problem)."""
    from crackcli.model.devices import cuda_unusable_note
    from crackcli.model.predictors import onnxruntime_driver_note

    problems = [cuda_unusable_note(), onnxruntime_driver_note()]
    return [problem for problem in problems if problem]


def _describe_model(path: Path, as_json: bool) -> None:
    from rich.table import Table

    from crackcli.model.describe import model_file_info

    details = model_file_info(path)
    if as_json:
        print(json.dumps(details))
        return
    table = Table(title=str(path), show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    for key, value in details.items():
        table.add_row(key, value if isinstance(value, str) else "none" if value is None else json.dumps(value))
    out.print(table)
