"""Two gloo processes on the CPU must hold the same covariance as one process over the union of their data."""

import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from crackcli.train.losses import CovarianceEstimator


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_batches(rank: int):
    g = torch.Generator().manual_seed(100 + rank)
    # Rank 1 never sees class 2: the all-reduce must still give both ranks the same statistics.
    classes = 3 if rank == 0 else 2
    return [(torch.randn(n, 5, generator=g) + rank, torch.randint(0, classes, (n,), generator=g)) for n in (6, 9, 4)]


def rank_worker(rank: int, world: int, port: int, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        estimator = CovarianceEstimator(3, 5)
        for x, y in make_batches(rank):
            estimator.update(x, y)
        torch.save(estimator.state_dict(), f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_two_process_estimator_equals_one_process_on_union(tmp_path):
    mp.spawn(rank_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    single = CovarianceEstimator(3, 5)
    for (x0, y0), (x1, y1) in zip(make_batches(0), make_batches(1)):
        single.update(torch.cat([x0, x1]), torch.cat([y0, y1]))
    states = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    for key in ("count", "mean", "covariance"):
        torch.testing.assert_close(states[0][key], states[1][key], rtol=0, atol=0)
        torch.testing.assert_close(states[0][key], single.state_dict()[key], rtol=1e-5, atol=1e-5)


def train_worker(rank: int, world: int, port: int, data: str, out_dir: str) -> None:
    import os

    from crackcli.train.config import TrainConfig
    from crackcli.train.trainer import Trainer

    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    torch.set_num_threads(1)
    config = TrainConfig(
        data=data,
        backbone="resnet18",
        weights="none",
        epochs=2,
        batch=16,
        lr=0.05,
        image_size=32,
        workers=0,
        project=f"{out_dir}/runs",
        name="ddp",
        device="cpu",
    )
    trainer = Trainer(config)
    result = trainer.fit()
    torch.save(
        {"model": trainer.model.state_dict(), "loss": trainer.loss_fn.state_dict(), "run_dir": str(result.run_dir)},
        f"{out_dir}/rank{rank}.pt",
    )


def test_two_process_training_keeps_ranks_identical_and_only_rank_0_writes(tmp_path):
    from helpers import write_patch_folders

    data = write_patch_folders(tmp_path / "patches", {"train": 16, "val": 4})
    mp.spawn(train_worker, args=(2, free_port(), str(data), str(tmp_path)), nprocs=2, join=True)
    states = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    for part in ("model", "loss"):
        for key, value in states[0][part].items():
            torch.testing.assert_close(value, states[1][part][key], rtol=0, atol=0, msg=f"{part}.{key}")
    assert states[0]["run_dir"].endswith("ddp") and states[1]["run_dir"] == "None"
    runs = list((tmp_path / "runs").iterdir())
    assert [r.name for r in runs] == ["ddp"]
    # Each rank saw half of every batch: the estimator counted every training image once per epoch over both ranks.
    assert int(states[0]["loss"]["estimator.count"].sum()) == 2 * 32
