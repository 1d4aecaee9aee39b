import csv
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import write_patch_folders
from PIL import Image
from typer.testing import CliRunner

from crackcli.cli import app
from crackcli.train.config import TrainConfig
from crackcli.train.trainer import Trainer

runner = CliRunner()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A real checkpoint from a 1-epoch run, and its data."""
    root = tmp_path_factory.mktemp("eval")
    data = write_patch_folders(root / "patches", {"train": 12, "val": 6})
    config = TrainConfig(
        data=str(data),
        backbone="resnet18",
        weights="none",
        epochs=1,
        batch=8,
        image_size=32,
        workers=0,
        project=str(root / "runs"),
        name="m",
    )
    result = Trainer(config).fit()
    return result.run_dir / "best.pt", data


def test_unreadable_images_are_named_skipped_and_make_exit_1(trained, tmp_path):
    checkpoint, _ = trained
    data = write_patch_folders(tmp_path / "d", {"": 3})
    (data / "crack" / "garbage.jpg").write_bytes(os.urandom(300))
    result = runner.invoke(app, ["eval", str(checkpoint), str(data), "--json", "--workers", "0"])
    assert result.exit_code == 1
    assert "garbage.jpg" in result.stderr and "Traceback" not in result.output
    report = json.loads(result.stdout)
    assert sum(map(sum, report["confusion_matrix"])) == 6 and report["unreadable"] == 1


def test_a_folder_with_a_class_the_model_lacks_is_a_usage_error(trained, tmp_path):
    checkpoint, _ = trained
    data = write_patch_folders(tmp_path / "d", {"": 2}, classes=("crack", "spalling"))
    result = runner.invoke(app, ["eval", str(checkpoint), str(data)])
    assert result.exit_code == 2 and "spalling" in result.stderr


def test_a_folder_with_one_of_the_classes_is_evaluated(trained, tmp_path):
    checkpoint, _ = trained
    data = write_patch_folders(tmp_path / "d", {"": 4}, classes=("crack",))
    result = runner.invoke(app, ["eval", str(checkpoint), str(data), "--json", "--workers", "0"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["per_class"]["crack"]["support"] == 4 and report["per_class"]["no_crack"]["support"] == 0


class WritesAFile:
    """A pickle payload: unpickling it would call os.system and create a file."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def test_a_checkpoint_carrying_code_is_refused_and_the_code_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"format": "crack-checkpoint", "model": WritesAFile(marker)}, evil)
    with open(tmp_path / "check.pkl", "wb") as handle:  # the payload is real: plain pickle would run it
        pickle.dump(WritesAFile(tmp_path / "control"), handle)
    with open(tmp_path / "check.pkl", "rb") as handle:
        pickle.load(handle)
    assert (tmp_path / "control").exists()
    data = write_patch_folders(tmp_path / "d", {"": 1})
    for command in (["eval", str(evil), str(data)], ["train", "--resume", str(evil)]):
        result = runner.invoke(app, command)
        assert result.exit_code == 1, result.output
        assert "never code" in result.stderr and "Traceback" not in result.output
    assert not marker.exists()


def test_model_files_of_unknown_type_or_missing_are_one_line(tmp_path):
    data = write_patch_folders(tmp_path / "d", {"": 1})
    (tmp_path / "model.h5").write_bytes(b"x")
    for model, code in ((tmp_path / "model.h5", 2), (tmp_path / "missing.pt", 1)):
        result = runner.invoke(app, ["eval", str(model), str(data)])
        assert result.exit_code == code and len(result.stderr.strip().splitlines()) == 1


def test_eval_of_a_split_folder_root_points_at_a_split(trained):
    checkpoint, data = trained
    result = runner.invoke(app, ["eval", str(checkpoint), str(data)])
    assert result.exit_code == 2 and "evaluate one split" in result.stderr


def test_eval_out_holds_curves_the_confusion_matrix_and_every_misclassified_image(trained, tmp_path):
    checkpoint, data = trained
    out = tmp_path / "figures"
    args = ["eval", str(checkpoint), str(data / "val"), "--workers", "0", "--out", str(out), "--threshold", "0.3"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["threshold"] == 0.3 and 0 <= report["ranking"]["ap"] <= 1 and 0 <= report["ranking"]["auroc"] <= 1
    curve = report["ranking"]["curve"]
    assert 2 <= len(curve["thresholds"]) <= 200 and len(curve["precision"]) == len(curve["thresholds"])
    matrix = np.array(report["confusion_matrix"])
    wrong = report["misclassified"]
    assert 0 < len(wrong) == matrix.sum() - np.trace(matrix)  # a one-epoch model errs at 0.3
    assert all(Path(row["path"]).is_file() and row["true"] != row["predicted"] for row in wrong)
    assert [row["predicted_prob"] for row in wrong] == sorted((row["predicted_prob"] for row in wrong), reverse=True)

    for name in ("pr_curve.png", "roc_curve.png", "confusion_matrix.png"):
        with Image.open(out / name) as figure:
            assert figure.format == "PNG" and figure.size[0] > 300
    with open(out / "misclassified.csv", newline="") as handle:
        assert [row["path"] for row in csv.DictReader(handle)] == [row["path"] for row in wrong]
    assert len(list((out / "misclassified").glob("*.jpg"))) == len(wrong)
    assert json.loads((out / "eval.json").read_text())["misclassified"] == wrong
    page = (out / "index.html").read_text()
    assert 'src="pr_curve.png"' in page and page.count('class="thumb"') == len(wrong) and "http:" not in page

    # The folder holds files now: replaced only when asked.
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "--force" in again.stderr
    assert runner.invoke(app, [*args, "--force", "--quiet"]).exit_code == 0


def test_eval_threshold_must_be_a_probability(trained):
    checkpoint, data = trained
    result = runner.invoke(app, ["eval", str(checkpoint), str(data / "val"), "--threshold", "1.5"])
    assert result.exit_code == 2 and "threshold" in result.stderr and "Traceback" not in result.output
