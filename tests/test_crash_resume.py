"""`crack train` killed with SIGKILL at random moments, then resumed: it completes, and no checkpoint
on disk is ever unreadable (they are written to a temporary file and renamed)."""

import os
import random
import signal
import subprocess
import sys
import time

from helpers import write_patch_folders

from crackcli.model.checkpoint import load_checkpoint

EPOCHS = 40
KILLS = 5


def test_kill_9_at_random_points_then_resume_completes(tmp_path):
    data = write_patch_folders(tmp_path / "patches", {"train": 12, "val": 4})
    run = tmp_path / "runs" / "k"
    first = [
        "train",
        str(data),
        "--backbone",
        "resnet18",
        "--weights",
        "none",
        "--image-size",
        "32",
        "--epochs",
        str(EPOCHS),
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
    resume = ["train", "--resume", str(run / "last.pt"), "--quiet"]
    pick = random.Random(8)
    epochs_seen = []
    for kill in range(KILLS):
        proc = subprocess.Popen(
            [sys.executable, "-m", "crackcli", *(first if kill == 0 else resume)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        # Kill once training is under way (a last.pt newer than this start), after a random extra delay.
        started = time.time()
        while proc.poll() is None and not ((run / "last.pt").exists() and (run / "last.pt").stat().st_mtime > started):
            time.sleep(0.02)
        time.sleep(pick.uniform(0.0, 0.6))
        assert proc.poll() is None, f"training ended before kill {kill}: {proc.stderr.read().decode()[-2000:]}"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
        for checkpoint in run.glob("*.pt"):
            load_checkpoint(checkpoint)  # raises on a torn file
        epochs_seen.append(load_checkpoint(run / "last.pt")["epoch"])
    assert epochs_seen == sorted(epochs_seen) and epochs_seen[-1] < EPOCHS
    done = subprocess.run([sys.executable, "-m", "crackcli", *resume], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert load_checkpoint(run / "last.pt")["epoch"] == EPOCHS
    assert load_checkpoint(run / "best.pt")["epoch"] <= EPOCHS
    assert not [p for p in run.iterdir() if p.name.startswith(".") or p.suffix == ".tmp"]
