"""Where the shipped default model lives, in a source checkout, an editable install or a wheel.

A checkout (and an editable install of it) reads ``models/`` beside the package; a wheel installs the
same files as data under ``<prefix>/share/crackcli/models`` (see ``[tool.setuptools.data-files]``).
"""

from __future__ import annotations

import os
import site
import sys
from pathlib import Path

import crackcli

DEFAULT_MODEL_NAME = "crack-default.onnx"
DEFAULT_WEIGHTS_NAME = "crack-default.pt"
TRACER_NAME = "crack-tracer.onnx"  # the learned crack tracer of `crack scan --trace`
MODEL_ENV = "CRACK_MODEL"


def model_folders() -> list[Path]:
    """Folders searched for shipped model files, first match wins."""
    checkout = Path(crackcli.__file__).resolve().parent.parent / "models"
    prefixes = [Path(sys.prefix), Path(site.getuserbase())]
    return [checkout, *(prefix / "share" / "crackcli" / "models" for prefix in prefixes)]


def shipped_file(name: str) -> Path | None:
    """The first shipped copy of ``name``, or None when this install has none."""
    return next((folder / name for folder in model_folders() if (folder / name).is_file()), None)


def default_model() -> Path | None:
    """``$CRACK_MODEL`` when set, else the shipped ONNX model (None when neither exists)."""
    if os.environ.get(MODEL_ENV):
        return Path(os.environ[MODEL_ENV])
    return shipped_file(DEFAULT_MODEL_NAME)
