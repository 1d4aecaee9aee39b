"""The bad-input corpus through `crack scan` and `crack prepare`: no traceback, one line per bad file,
every good file processed, exit status 1."""

import json
import subprocess
import sys

import pytest
from corpus import PERMISSIONS_BITE, UNPRIVILEGED, write_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus") / "in"
    good, bad = write_corpus(folder)
    return folder, good, bad


def run_crack(*args, cwd):
    """`crack ARGS`, where possible without the privilege to read mode-000 files (see corpus.py)."""
    return subprocess.run(
        [*(UNPRIVILEGED or []), sys.executable, "-m", "crackcli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        errors="replace",
    )


def test_locked_corpus_files_are_unreadable_to_the_tools(tmp_path):
    """The harness itself: under UNPRIVILEGED, the tools really cannot read the mode-000 corpus entries."""
    if not PERMISSIONS_BITE:
        pytest.skip("running as root without setpriv: mode-000 files are readable, so they are not in the corpus")
    _, bad = write_corpus(tmp_path / "in")
    assert {"locked.jpg", "locked_folder"} <= set(bad)
    for entry, action in (("locked.jpg", "open({!r}).read()"), ("locked_folder", "__import__('os').listdir({!r})")):
        probe = run_crack_python(action.format(str(tmp_path / "in" / entry)))
        assert probe.returncode != 0 and "PermissionError" in probe.stderr, probe.stderr


def named_lines(stderr: str, name: str) -> list[str]:
    return [line for line in stderr.splitlines() if name in line]


def run_crack_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([*UNPRIVILEGED, sys.executable, "-c", code], capture_output=True, text=True)


def test_scan_goes_through_the_corpus(corpus, crack_model, tmp_path):
    folder, good, bad = corpus
    _, model, _ = crack_model
    proc = run_crack(
        "scan", str(folder), "--model", str(model), "--out", str(tmp_path / "out"), "--json", "--quiet", cwd=tmp_path
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for name in bad:
        assert len(named_lines(proc.stderr, name)) == 1, (name, proc.stderr)
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    scanned = {line["image"].split("/in/", 1)[1] for line in lines if "error" not in line}
    assert scanned == set(good), proc.stderr
    failed = {line["image"].split("/in/", 1)[1] for line in lines if "error" in line}
    assert failed == set(bad), proc.stdout  # with --json every input gets a line
    # Every output stays inside --out, whatever the input names.
    assert all(p.resolve().is_relative_to((tmp_path / "out").resolve()) for p in (tmp_path / "out").rglob("*"))
    assert {p.name for p in tmp_path.iterdir()} == {"out"}


def test_prepare_goes_through_the_corpus(corpus, tmp_path):
    folder, good, bad = corpus
    proc = run_crack(
        "prepare",
        str(folder),
        "--labels",
        "none",
        "--size",
        "64",
        "--out",
        str(tmp_path / "patches"),
        "--json",
        cwd=tmp_path,
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for name in bad:
        assert len(named_lines(proc.stderr, name)) == 1, (name, proc.stderr)
    sources = {
        line.split(",")[1]
        for line in (tmp_path / "patches" / "manifest.csv").read_text(errors="replace").splitlines()[1:]
    }
    assert len(sources) == len(good) - 1  # the 1×1 photo is smaller than one patch: nothing to cut, no error


def test_train_and_eval_go_through_the_corpus(tmp_path):
    """The corpus as the crack class of a labelled folder, beside good patches of both classes."""
    from helpers import write_patch_folders

    data = write_patch_folders(tmp_path / "data", {"train": 10, "val": 4})
    good, bad = write_corpus(data / "train" / "crack" / "corpus")
    write_corpus(data / "val" / "crack" / "corpus")
    train = run_crack(
        "train",
        str(data),
        "--backbone",
        "resnet18",
        "--weights",
        "none",
        "--image-size",
        "32",
        "--epochs",
        "2",
        "--batch",
        "8",
        "--workers",
        "0",
        "--project",
        str(tmp_path / "runs"),
        "--name",
        "c",
        "--quiet",
        cwd=tmp_path,
    )
    assert train.returncode == 0, train.stderr
    assert "Traceback" not in train.stderr
    # Unreadable images are skipped, each named once (not once an epoch); the rest are trained on.
    for name in bad:
        assert len(named_lines(train.stderr, f"train/crack/corpus/{name}")) == 1, (name, train.stderr)
        assert len(named_lines(train.stderr, f"val/crack/corpus/{name}")) == 1, (name, train.stderr)
    evaluation = run_crack("eval", str(tmp_path / "runs" / "c" / "best.pt"), str(data / "val"), "--json", cwd=tmp_path)
    assert evaluation.returncode == 1, evaluation.stderr
    assert "Traceback" not in evaluation.stderr
    report = json.loads(evaluation.stdout)
    assert report["unreadable"] == len(bad)
    assert report["per_class"]["crack"]["support"] == 4 + len(good)
    for name in bad:
        assert len(named_lines(evaluation.stderr, name)) == 1, (name, evaluation.stderr)
