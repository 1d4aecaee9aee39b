"""Real (tiny) training runs on synthetic patches, on the CPU."""

import csv
import json
import shutil

import numpy as np
import pytest
import torch
from helpers import write_patch_folders
from typer.testing import CliRunner

from crackcli.cli import app
from crackcli.errors import CrackError, OptionError
from crackcli.model.backbones import build_model
from crackcli.model.checkpoint import load_checkpoint, model_from_checkpoint, save_release
from crackcli.model.export import training_summary
from crackcli.train.config import TrainConfig
from crackcli.train.losses import LOSSES
from crackcli.train.trainer import Trainer, TrainingStopped

runner = CliRunner()


def tiny_config(data, tmp_path, **overrides) -> TrainConfig:
    options = dict(
        data=str(data),
        backbone="resnet18",
        weights="none",
        epochs=3,
        batch=16,
        lr=0.05,
        image_size=32,
        workers=0,
        project=str(tmp_path / "runs"),
        name="t",
    )
    options.update(overrides)
    return TrainConfig(**options)


def test_tiny_run_learns_and_writes_the_run_folder(patch_data, tmp_path):
    result = Trainer(tiny_config(patch_data, tmp_path)).fit()
    run = result.run_dir
    assert {p.name for p in run.iterdir()} >= {
        "args.json",
        "metrics.csv",
        "best.pt",
        "last.pt",
        "curves.png",
        "confusion_matrix.png",
    }
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    for column in (
        "train_loss",
        "val_f1",
        "val_precision_crack",
        "val_recall_no_crack",
        "lr",
        "images_per_s",
        "val_temperature",
    ):
        assert column in rows[0]
    assert result.best_f1 > 0.6, f"no better than chance: {result.history}"  # 16 balanced val patches: chance is 0.5
    args = json.loads((run / "args.json").read_text())
    assert args["config"]["loss"] == "igmsda" and args["summary"]["classes"] == ["crack", "no_crack"]
    # The checkpoint reads back with weights_only and carries what a scanner needs.
    payload = load_checkpoint(run / "best.pt")
    model, meta = model_from_checkpoint(payload)
    assert meta.classes == ("crack", "no_crack") and meta.crack_class == "crack" and meta.image_size == 32
    assert payload["epoch"] == result.best_epoch
    # Each epoch's temperature is fitted on the validation split and saved with that epoch's weights.
    assert meta.temperature == pytest.approx(float(rows[result.best_epoch - 1]["val_temperature"]), rel=1e-5)
    assert 0.1 <= meta.temperature <= 10
    assert set(payload["loss"]) == {"estimator.count", "estimator.mean", "estimator.covariance"}

    # The release copy drops what only --resume needs, and still fine-tunes, scans and exports.
    save_release(run / "best.pt", tmp_path / "release.pt")
    release = load_checkpoint(tmp_path / "release.pt")
    assert not {"optimizer", "loss", "rng"} & set(release) and release["summary"] == payload["summary"]
    assert (tmp_path / "release.pt").stat().st_size < (run / "best.pt").stat().st_size
    released, _ = model_from_checkpoint(release)
    fine_tune_start = build_model("resnet18", 2, weights=tmp_path / "release.pt").eval()  # what --weights loads
    pixels = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    with torch.no_grad():
        torch.testing.assert_close(released(pixels), model(pixels))
        # Fine-tuning starts from the raw weights: the run that continues fits its own temperature.
        torch.testing.assert_close(fine_tune_start(pixels) / meta.temperature, model(pixels))


@pytest.mark.parametrize("loss", LOSSES)
def test_every_loss_trains(loss, patch_data, tmp_path):
    config = tiny_config(patch_data, tmp_path, loss=loss, epochs=2, gm_samples=2)
    result = Trainer(config).fit()
    assert all(np.isfinite(row["train_loss"]) for row in result.history)
    before = Trainer(tiny_config(patch_data, tmp_path, loss=loss, epochs=1, name="init")).model.state_dict()
    after = model_from_checkpoint(load_checkpoint(result.run_dir / "last.pt"))[0].state_dict()
    assert not torch.equal(before["classifier.weight"], after["classifier.weight"])


@pytest.mark.parametrize("ema", [0.0, 0.9])
def test_interrupted_and_resumed_run_ends_with_the_same_weights(ema, patch_data, tmp_path):
    # Augmentation, shuffling and a decode worker all in play; the interruption comes after epoch 2 of 4.
    config = dict(epochs=4, augment="field", workers=1, loss="igmsda", ema=ema)
    straight = Trainer(tiny_config(patch_data, tmp_path, name="straight", **config)).fit()

    def interrupt(epoch):
        if epoch == 1:
            raise KeyboardInterrupt

    interrupted = Trainer(tiny_config(patch_data, tmp_path, name="cut", **config))
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit(on_epoch_end=interrupt)
    assert load_checkpoint(interrupted.run_dir / "last.pt")["epoch"] == 2
    resumed = Trainer.resume(interrupted.run_dir / "last.pt").fit()
    assert resumed.run_dir == interrupted.run_dir

    a = load_checkpoint(straight.run_dir / "last.pt")
    b = load_checkpoint(resumed.run_dir / "last.pt")
    for weights in ("model", "trained_model") if ema else ("model",):
        for key in a[weights]:
            torch.testing.assert_close(a[weights][key], b[weights][key], rtol=0, atol=0, msg=f"{weights}: {key}")
    for key in a["loss"]:
        torch.testing.assert_close(a["loss"][key], b["loss"][key], rtol=0, atol=0)
    assert [r["train_loss"] for r in a["history"]] == [r["train_loss"] for r in b["history"]]
    assert len(list(csv.DictReader(open(resumed.run_dir / "metrics.csv")))) == 4


def test_runs_are_never_overwritten(patch_data, tmp_path):
    first = Trainer(tiny_config(patch_data, tmp_path, epochs=1)).fit().run_dir
    second = Trainer(tiny_config(patch_data, tmp_path, epochs=1)).fit().run_dir
    assert (first.name, second.name) == ("t", "t2")


def test_plain_class_folder_holds_out_validation(tmp_path):
    data = write_patch_folders(tmp_path / "flat", {"": 20})
    trainer = Trainer(tiny_config(data, tmp_path, epochs=1, val_fraction=0.25))
    assert len(trainer.data.val) == 10 and len(trainer.data.train) == 30
    assert not {p for p, _ in trainer.data.val} & {p for p, _ in trainer.data.train}


def test_limit_per_class(patch_data, tmp_path):
    trainer = Trainer(tiny_config(patch_data, tmp_path, limit_per_class=5))
    assert trainer.summary()["train_images"] == {"crack": 5, "no_crack": 5}


def test_a_training_step_does_not_wait_for_the_device_to_read_its_loss(tmp_path):
    from test_losses import syncing_ops

    from crackcli.train.trainer import LOSS_READ_EVERY

    data = write_patch_folders(tmp_path / "p", {"train": 24, "val": 8})
    trainer = Trainer(tiny_config(data, tmp_path, batch=4, loss="igmsda", ema=0.9))
    trainer.train_epoch(0)  # the first epoch reads the covariance counts once
    steps = len(trainer.train_batches)
    assert steps > LOSS_READ_EVERY  # more than one window of steps
    reads = syncing_ops(lambda: trainer.train_epoch(1))
    # one read of the loss every LOSS_READ_EVERY steps and at the epoch's end, one more for the epoch
    assert len(reads) <= -(-steps // LOSS_READ_EVERY) + 1, reads


def test_diverging_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(patch_data, tmp_path):
    trainer = Trainer(tiny_config(patch_data, tmp_path, epochs=3, loss="ce"))

    def explode(epoch):  # after a good first epoch, an absurd learning rate makes the loss non-finite
        trainer.config.lr = 1e30

    with pytest.raises(TrainingStopped, match="diverged"):
        trainer.fit(on_epoch_end=explode)
    payload = load_checkpoint(trainer.run_dir / "last.pt")
    assert payload["epoch"] >= 1
    assert all(torch.isfinite(t).all() for t in payload["model"].values() if t.is_floating_point())


def test_unreadable_images_are_skipped_and_counted_or_refused_with_strict(patch_data, tmp_path):
    (patch_data / "train" / "crack" / "broken.png").write_bytes(b"not a png at all")
    trainer = Trainer(tiny_config(patch_data, tmp_path, epochs=1))
    assert trainer.summary()["unreadable_skipped"] == 1
    with pytest.raises(CrackError, match="broken.png"):
        Trainer(tiny_config(patch_data, tmp_path, epochs=1, strict=True))


@pytest.mark.parametrize(
    "layout, message",
    [
        ({"train": 4, "val": 0}, "no images"),
        ("single", "at least 2 classes"),
        ("mismatch", "class mismatch"),
        ("empty", "no images"),
    ],
)
def test_bad_training_data_is_one_clear_line(layout, message, tmp_path):
    data = tmp_path / "data"
    if layout == "single":
        write_patch_folders(data, {"train": 3, "val": 3}, classes=("crack",))
    elif layout == "mismatch":
        write_patch_folders(data, {"train": 3}, classes=("crack", "no_crack"))
        write_patch_folders(data, {"val": 3}, classes=("crack", "scratch"))
    elif layout == "empty":
        (data / "train" / "crack").mkdir(parents=True)
        (data / "val").mkdir()
    else:
        write_patch_folders(data, layout)
        (data / "val").mkdir(exist_ok=True)
    result = runner.invoke(app, ["train", str(data), "--weights", "none", "--project", str(tmp_path / "runs")])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.output


def test_cli_train_then_eval_json(patch_data, tmp_path):
    result = runner.invoke(
        app,
        [
            "train",
            str(patch_data),
            "--backbone",
            "resnet18",
            "--weights",
            "none",
            "--epochs",
            "2",
            "--batch",
            "16",
            "--image-size",
            "32",
            "--lr",
            "0.05",
            "--workers",
            "0",
            "--project",
            str(tmp_path / "runs"),
            "--name",
            "cli",
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    best = tmp_path / "runs" / "cli" / "best.pt"
    assert f"{best}" in result.stderr
    evaluated = runner.invoke(app, ["eval", str(best), str(patch_data / "val"), "--json", "--workers", "0"])
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads(evaluated.stdout)
    assert {"accuracy", "precision", "recall", "f1", "per_class", "confusion_matrix", "classes"} <= set(report)
    assert report["classes"] == ["crack", "no_crack"]
    assert sum(map(sum, report["confusion_matrix"])) == 16
    assert report["per_class"]["crack"]["support"] == 8
    assert 0 <= report["f1"] <= 1
    # The figures equal those the trainer logged for the epoch it kept as best.
    history = load_checkpoint(best)["history"]
    assert report["f1"] == pytest.approx(max(row["val_f1"] for row in history), abs=1e-9)


def test_a_checkpoint_of_another_run_is_not_resumed_into_this_runs_folder(patch_data, tmp_path):
    first = Trainer(tiny_config(patch_data, tmp_path, epochs=1, name="a")).fit().run_dir
    second = Trainer(tiny_config(patch_data, tmp_path, epochs=2, name="b")).fit().run_dir
    shutil.copy(first / "last.pt", second / "last.pt")
    before = (second / "metrics.csv").read_text()
    result = runner.invoke(app, ["train", "--resume", str(second / "last.pt")])
    assert result.exit_code == 1 and "saved by another run" in result.stderr and "Traceback" not in result.output
    assert (second / "metrics.csv").read_text() == before
    # Its own checkpoint, or one moved to a folder of its own, resumes.
    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy(first / "last.pt", lone / "last.pt")
    assert Trainer.resume(lone / "last.pt").run_id == Trainer.resume(first / "last.pt").run_id
    assert (
        json.loads((first / "args.json").read_text())["summary"]["run_id"]
        != json.loads((second / "args.json").read_text())["summary"]["run_id"]
    )


def test_resume_of_a_weights_only_file_is_refused(tmp_path):
    torch.save({"weight": torch.zeros(2)}, tmp_path / "plain.pt")
    result = runner.invoke(app, ["train", "--resume", str(tmp_path / "plain.pt")])
    assert result.exit_code == 1 and "not a crack train checkpoint" in result.stderr


def test_bad_options_are_usage_errors(patch_data, tmp_path):
    for options in (
        ["--backbone", "resnet9000"],
        ["--loss", "hinge"],
        ["--augment", "wild"],
        ["--device", "tpu"],
        ["--milestones", "a,b"],
        ["--epochs", "0"],
        ["--synthetic-cracks", "1.5"],
        ["--ema", "1"],
        ["--synthetic-cracks", "0.6", "--synthetic-stains", "0.6"],
    ):
        result = runner.invoke(
            app, ["train", str(patch_data), "--weights", "none", "--project", str(tmp_path), *options]
        )
        assert result.exit_code == 2, (options, result.output)
        assert result.stderr.startswith("crack: error:"), (options, result.stderr)


def test_synthetic_cracks_and_stains_train_and_are_recorded_for_the_model_file(patch_data, tmp_path):
    result = Trainer(tiny_config(patch_data, tmp_path, synthetic_cracks=0.5, synthetic_stains=0.25, epochs=1)).fit()
    assert np.isfinite(result.history[0]["train_loss"])
    args = json.loads((result.run_dir / "args.json").read_text())["config"]
    recorded = training_summary(load_checkpoint(result.run_dir / "last.pt"))["config"]
    for config in (args, recorded):
        assert config["synthetic_cracks"] == 0.5 and config["synthetic_stains"] == 0.25


def test_ema_validates_and_saves_the_average_and_keeps_the_raw_weights_for_resume(patch_data, tmp_path):
    trainer = Trainer(tiny_config(patch_data, tmp_path, ema=0.9, epochs=2))
    result = trainer.fit()
    payload = load_checkpoint(result.run_dir / "last.pt")
    averaged, raw = payload["model"], payload["trained_model"]
    assert payload["ema"]["updates"] > 0
    assert not torch.equal(averaged["classifier.weight"], raw["classifier.weight"])
    for key, value in trainer.average.model.state_dict().items():
        torch.testing.assert_close(averaged[key], value.cpu(), rtol=0, atol=0)
    # The scanned, exported and fine-tuned model is the average; the release drops the raw weights.
    assert training_summary(payload)["config"]["ema"] == 0.9
    save_release(result.run_dir / "last.pt", tmp_path / "release.pt")
    release = load_checkpoint(tmp_path / "release.pt")
    assert not {"trained_model", "ema"} & set(release)
    torch.testing.assert_close(release["model"]["classifier.weight"], averaged["classifier.weight"])
    # Validation scored the average: re-scoring best.pt's model on the val images gives the same F.
    model, _ = model_from_checkpoint(load_checkpoint(result.run_dir / "best.pt"))
    trainer.average.model.load_state_dict(model.state_dict())
    report, _ = trainer._validate()  # a folded temperature changes no decision
    assert report["f1"] == pytest.approx(result.best_f1)


def test_a_three_class_run_wrong_on_its_validation_images_keeps_its_crack_scores(tmp_path):
    from helpers import crack_patch, write_image

    data = write_patch_folders(tmp_path / "patches", {"train": 24}, classes=("crack", "joint", "no_crack"))
    rng = np.random.default_rng(5)
    for name, cracked in (("crack", False), ("joint", True), ("no_crack", True)):  # labels that lie
        for i in range(8):
            write_image(data / "val" / name / f"v{i}.png", crack_patch(rng, 32, cracked))
    result = Trainer(tiny_config(data, tmp_path, epochs=2)).fit()
    temperatures = [float(row["val_temperature"]) for row in csv.DictReader(open(result.run_dir / "metrics.csv"))]
    # Unbounded, the fit would run towards 10 and squeeze every score to about 1/3, under the scan's 0.5.
    assert max(temperatures) <= 1.0
    assert load_checkpoint(result.run_dir / "last.pt")["meta"]["temperature"] <= 1.0


def test_a_validation_split_too_small_to_choose_on_is_named_before_training(tmp_path):
    from helpers import crack_patch, write_image

    from crackcli.train.events import TrainEvents

    class Heard(TrainEvents):
        def __init__(self) -> None:
            self.warnings: list[str] = []

        def warning(self, message: str) -> None:
            self.warnings.append(message)

    data = write_patch_folders(tmp_path / "patches", {"train": 6, "val": 3})
    rng = np.random.default_rng(2)
    for i in range(20):
        write_image(data / "val" / "no_crack" / f"more{i}.png", crack_patch(rng, 32, False))
    heard = Heard()
    Trainer(tiny_config(data, tmp_path), events=heard)
    assert [w for w in heard.warnings if "validation holds only 3 'crack' image(s)" in w and "no_crack" not in w]
    for i in range(20):
        write_image(data / "val" / "crack" / f"more{i}.png", crack_patch(rng, 32, True))
    heard = Heard()
    Trainer(tiny_config(data, tmp_path), events=heard)
    assert not [w for w in heard.warnings if "validation" in w]


def test_unknown_crack_class_is_refused(patch_data, tmp_path):
    with pytest.raises(OptionError, match="`crack_class` .spall."):
        Trainer(tiny_config(patch_data, tmp_path, crack_class="spall"))


def test_the_patch_size_prepare_cut_reaches_the_model_and_the_scan(tmp_path):
    from helpers import texture_photo

    from crackcli.io.images import write_image
    from crackcli.model.predictors import load_predictor
    from crackcli.scan.windows import ScanSettings

    for index in range(4):
        rows = (48,) if index % 2 else ()
        write_image(
            tmp_path / "photos" / ("crack" if rows else "no_crack") / f"p{index}.png",
            texture_photo(192, 96, index, rows),
        )
    prepared = tmp_path / "patches"
    result = runner.invoke(app, ["prepare", str(tmp_path / "photos"), "--out", str(prepared), "--size", "96", "-q"])
    assert result.exit_code == 0, result.output
    run = Trainer(tiny_config(prepared, tmp_path, epochs=1, val_fraction=0.5)).fit().run_dir
    predictor = load_predictor(run / "last.pt", "cpu")
    assert predictor.meta.patch_size == 96
    assert ScanSettings.for_model(predictor.meta) == ScanSettings(patch=96, stride=48)
    # Class folders without a manifest (CCIC-like data) keep the 224 px default.
    plain = Trainer(tiny_config(write_patch_folders(tmp_path / "plain", {"train": 4, "val": 2}), tmp_path, epochs=1))
    assert plain.meta.patch_size == 224


def test_an_empty_gradient_scaler_state_restores_into_an_fp16_run():
    import torch

    from crackcli.train.state import restore_scaler

    disabled = torch.amp.GradScaler("cpu", enabled=False)  # what a CPU or bf16 run saves: {}
    in_use = torch.amp.GradScaler("cpu", enabled=True, init_scale=1024.0)
    with pytest.raises(RuntimeError):
        in_use.load_state_dict(disabled.state_dict())  # what resuming did before
    restore_scaler(in_use, disabled.state_dict())
    assert in_use.get_scale() == 1024.0
    saved = torch.amp.GradScaler("cpu", enabled=True, init_scale=8.0).state_dict()
    restore_scaler(in_use, saved)
    assert in_use.get_scale() == 8.0


def test_amp_follows_the_device_and_the_option():
    import torch

    from crackcli.train.device_setup import amp_dtype_for

    assert amp_dtype_for(torch.device("cpu"), None) is None  # off on the CPU unless asked for
    assert amp_dtype_for(torch.device("cpu"), True) == torch.bfloat16
    assert amp_dtype_for(torch.device("cuda"), False) is None


def test_loaders_that_would_overflow_shared_memory_are_named_with_the_fix():
    import os
    from pathlib import Path

    from crackcli.train.data import shared_memory_note

    shm = Path("/dev/shm")
    if not shm.is_dir():
        pytest.skip("no /dev/shm on this system")
    stats = os.statvfs(shm)
    free = stats.f_bavail * stats.f_frsize
    assert shared_memory_note(2, 32, 96) is None or free < 2 * 4 * 32 * 3 * 96 * 96
    batch = free // (16 * 4 * 3 * 224 * 224) + 1  # just more than fits
    note = shared_memory_note(16, batch, 224)
    assert note and "--shm-size=" in note and "--workers" in note and str(shm) in note
    assert shared_memory_note(0, batch, 224) is None  # no loader processes, nothing in shared memory
