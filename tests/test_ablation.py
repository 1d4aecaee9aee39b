"""benchmarks/ablation.py end to end on tiny generated patches: real training and evaluation runs, paired
resumable results, and the report's tables."""

import json
import subprocess
import sys
from pathlib import Path

from helpers import write_patch_folders

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "ablation.py"


def ablation(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True)


def test_losses_study_runs_pairs_resumes_and_reports(tmp_path):
    data = write_patch_folders(tmp_path / "ccic", {"train": 14, "val": 6})
    common = [
        "--ccic",
        str(data),
        "--out",
        str(tmp_path / "study"),
        "--sizes",
        "6",
        "--seeds",
        "0,1",
        "--holdout",
        "4",
        "--image-size",
        "32",
        "--batch",
        "4",
        "--steps",
        "9",
        "--min-epochs",
        "2",
        "--threads",
        "1",
    ]
    first = ablation("losses", "--losses", "ce,igmsda", *common)
    assert first.returncode == 0, first.stderr
    rows = [json.loads(line) for line in (tmp_path / "study" / "results.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in rows) == [
        "losses-6-ce-s0",
        "losses-6-ce-s1",
        "losses-6-igmsda-s0",
        "losses-6-igmsda-s1",
    ]
    for row in rows:
        assert row["epochs"] == 3  # 9 steps, 3 an epoch (12 images at batch 4)
        assert 0 <= row["test"]["f1"] <= 1 and row["train_seconds"] > 0
        trained = json.loads((Path(row["run_dir"]) / "args.json").read_text())
        assert trained["summary"]["train_images"] == {"crack": 6, "no_crack": 6}
        assert trained["summary"]["val_images"] == 8  # the held-out 4 a class, not the test folder
    again = ablation("losses", "--losses", "ce,igmsda", *common)
    assert "0 runs to do (4 already" in again.stdout
    assert len((tmp_path / "study" / "results.jsonl").read_text().splitlines()) == 4

    report = ablation("report", "--out", str(tmp_path / "study"))
    assert report.returncode == 0, report.stderr
    table = [line for line in report.stdout.splitlines() if line.startswith("| 6 |")]
    assert [line.split("|")[2].strip() for line in table] == ["ce", "igmsda"]
    assert table[0].rstrip(" |").endswith("1.00")  # CE's time relative to itself
