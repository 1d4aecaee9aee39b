"""Ctrl-C (SIGINT) during `crack scan` and `crack prepare`, at random moments: one line, exit 130, no
half-written output, and a re-run completes the job without redoing what was finished.  SIGTERM the
same way, with exit 143.  Plus the
deferred interrupt that keeps prepare's Ctrl-C out of its thread pool's locks."""

import csv
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import write_patch_folders, write_photo

from crackcli.io.images import read_rgb
from crackcli.io.interrupts import DeferredInterrupt, Terminated

INTERRUPTS = 3


def interrupt_after(
    command: list[str], started: callable, delay: float, cwd: Path, signum: int = signal.SIGINT
) -> subprocess.CompletedProcess:
    """Run ``crack command``, send ``signum`` ``delay`` seconds after ``started()`` turns true, and wait."""
    # With the fault handler on, SIGABRT makes a hung job print every thread's stack.
    proc = subprocess.Popen(
        [sys.executable, "-m", "crackcli", *command],
        cwd=cwd,
        env={**os.environ, "PYTHONFAULTHANDLER": "1"},
        # A shell runs background jobs with Ctrl-C ignored, and an ignored signal stays ignored across exec:
        # give the job the default disposition, as an interactive terminal would.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    while proc.poll() is None and not started():
        time.sleep(0.01)
    time.sleep(delay)
    assert proc.poll() is None, f"the job ended before it could be interrupted: {proc.stderr.read()[-2000:]}"
    proc.send_signal(signum)
    try:
        _, stderr = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        pytest.fail(f"still running 60 s after Ctrl-C; its threads:\n{proc.communicate()[1][-6000:]}")
    return subprocess.CompletedProcess(command, proc.returncode, "", stderr)


def assert_clean_interrupt(proc: subprocess.CompletedProcess, out: Path, status: int = 130) -> None:
    assert proc.returncode == status, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("crack: interrupted; ")
    assert "Traceback" not in proc.stderr
    assert not [p for p in out.rglob("*") if p.name.endswith(".part")]  # no temporary file left behind


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("interrupt") / "photos"
    for index in range(12):
        write_photo(folder / f"p{index:02d}.jpg", 1200, 900, seed=index)
    return folder


def test_ctrl_c_during_scan_then_rerun_completes(photos, crack_model, tmp_path):
    _, model, _ = crack_model
    out = tmp_path / "out"
    command = ["scan", str(photos), "--model", str(model), "--out", str(out), "--quiet"]
    pick = random.Random(3)
    for _ in range(INTERRUPTS):
        before = set(out.glob("*.json"))
        proc = interrupt_after(
            command, lambda before=before: len(set(out.glob("*.json")) - before) > 0, pick.uniform(0, 0.5), tmp_path
        )
        assert_clean_interrupt(proc, out)
        for report in out.glob("*.json"):  # every report on disk is whole, and so are the files it names
            outputs = json.loads(report.read_text())["outputs"]
            read_rgb(Path(outputs["heatmap"]))
            read_rgb(Path(outputs["overlay"]))
    done_before = {p.stem for p in out.glob("*.json")}
    assert 0 < len(done_before) < 12

    rerun = subprocess.run([sys.executable, "-m", "crackcli", *command], cwd=tmp_path, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    with open(out / "summary.csv", newline="") as handle:
        rows = {Path(row["image"]).stem: row["status"] for row in csv.DictReader(handle)}
    assert set(rows) == {f"p{i:02d}" for i in range(12)}
    assert {stem for stem, status in rows.items() if status == "kept"} == done_before
    assert {p.stem for p in out.glob("*.json")} == set(rows)


def test_ctrl_c_during_prepare_then_rerun_matches_an_uninterrupted_run(photos, tmp_path):
    def prepare(out: Path) -> list[str]:
        return [
            "prepare",
            str(photos),
            "--out",
            str(out),
            "--labels",
            "none",
            "--size",
            "64",
            "--stride",
            "32",
            "--workers",
            "1",
            "--quiet",
        ]

    reference = tmp_path / "reference"
    assert subprocess.run([sys.executable, "-m", "crackcli", *prepare(reference)], cwd=tmp_path).returncode == 0

    out = tmp_path / "out"
    pick = random.Random(5)
    for _ in range(INTERRUPTS):
        count = len(list(out.glob("*.png")))
        proc = interrupt_after(
            prepare(out), lambda count=count: len(list(out.glob("*.png"))) > count, pick.uniform(0, 0.3), tmp_path
        )
        assert_clean_interrupt(proc, out)
        for patch in out.glob("*.png"):
            assert read_rgb(patch).shape == (64, 64, 3)  # every patch on disk is whole
    assert 0 < len(list(out.glob("*.png"))) < len(list(reference.glob("*.png")))

    rerun = subprocess.run(
        [sys.executable, "-m", "crackcli", *prepare(out), "--json"], cwd=tmp_path, capture_output=True, text=True
    )
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout)["skipped_existing"] > 0
    assert (out / "manifest.csv").read_text() == (reference / "manifest.csv").read_text().replace(
        str(reference), str(out)
    )
    names = sorted(p.name for p in reference.glob("*.png"))
    assert sorted(p.name for p in out.glob("*.png")) == names
    for name in names:
        assert (out / name).read_bytes() == (reference / name).read_bytes()


def test_sigterm_stops_scan_and_prepare_as_ctrl_c_does_with_exit_143(photos, crack_model, tmp_path):
    _, model, _ = crack_model
    out = tmp_path / "scan"
    command = ["scan", str(photos), "--model", str(model), "--out", str(out), "--quiet"]
    proc = interrupt_after(command, lambda: any(out.glob("*.json")), 0.1, tmp_path, signal.SIGTERM)
    assert_clean_interrupt(proc, out, 143)
    with open(out / "summary.csv", newline="") as handle:  # written for what was scanned
        listed = {Path(row["image"]).stem for row in csv.DictReader(handle)}
    assert listed == {p.stem for p in out.glob("*.json")} and 0 < len(listed) < 12

    patches = tmp_path / "patches"
    command = ["prepare", str(photos), "--out", str(patches), "--labels", "none", "--size", "64", "--quiet"]
    proc = interrupt_after(command, lambda: any(patches.glob("*.png")), 0.1, tmp_path, signal.SIGTERM)
    assert_clean_interrupt(proc, patches, 143)


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_or_sigterm_during_train_says_how_to_resume(tmp_path, signum, status):
    data = write_patch_folders(tmp_path / "patches", {"train": 12, "val": 4})
    run = tmp_path / "runs" / "k"
    command = [
        "train",
        str(data),
        "--backbone",
        "resnet18",
        "--weights",
        "none",
        "--image-size",
        "32",
        "--epochs",
        "6",
        "--batch",
        "8",
        "--workers",
        "0",
        "--project",
        str(tmp_path / "runs"),
        "--name",
        "k",
        "--quiet",
    ]
    proc = interrupt_after(command, lambda: (run / "last.pt").exists(), 0.2, tmp_path, signum)
    assert_clean_interrupt(proc, run, status)
    hint = proc.stderr.strip().splitlines()[-1]
    assert hint.endswith(f"continue with: crack train --resume {run / 'last.pt'}")
    resumed = subprocess.run(
        [sys.executable, "-m", "crackcli", *hint.split("continue with: crack ")[1].split()],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert resumed.returncode == 0, resumed.stderr


def test_deferred_interrupt_waits_for_a_safe_point_and_a_second_ctrl_c_does_not():
    before = signal.getsignal(signal.SIGINT)
    with DeferredInterrupt() as interrupt:
        interrupt.check()  # nothing pressed yet
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # the handler has run by now, and raised nothing
        with pytest.raises(KeyboardInterrupt):
            interrupt.check()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)  # the second Ctrl-C interrupts this sleep
    assert signal.getsignal(signal.SIGINT) is before


def test_deferred_sigterm_raises_terminated_at_the_safe_point():
    before = signal.getsignal(signal.SIGTERM)
    with DeferredInterrupt() as interrupt:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
        with pytest.raises(Terminated):
            interrupt.check()
    assert signal.getsignal(signal.SIGTERM) is before


def test_deferred_interrupt_outside_the_main_thread_leaves_signals_alone():
    seen = []

    def body():
        with DeferredInterrupt() as interrupt:
            seen.append(signal.getsignal(signal.SIGINT))
            interrupt.check()

    worker = threading.Thread(target=body)
    worker.start()
    worker.join()
    assert seen == [signal.getsignal(signal.SIGINT)]
