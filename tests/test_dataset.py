import csv

import numpy as np
import pytest
from helpers import write_patch_folders
from hypothesis import given, settings
from hypothesis import strategies as st

from crackcli.data.augment import build_augment, change_distance, field_conditions
from crackcli.data.batches import EpochBatches, PatchDataset, collate
from crackcli.data.folders import holdout_split, index_folder, limit_per_class, photo_groups
from crackcli.data.painting import paint_hairline, paint_stains, synthetic_cracks_for
from crackcli.errors import OptionError, UsageError
from crackcli.io.images import write_image
from crackcli.train.config import TrainConfig


@settings(max_examples=60, deadline=None)
@given(size=st.integers(1, 200), batch=st.integers(1, 17), world=st.integers(1, 4), epoch=st.integers(0, 5))
def test_evaluation_batches_visit_every_sample_once_over_all_ranks(size, batch, world, epoch):
    seen = []
    for rank in range(world):
        sampler = EpochBatches(size, batch, shuffle=True, seed=3, rank=rank, world=world, even=False)
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == len(sampler)
        seen += [index for b in batches for index, e in b if e == epoch]
    assert sorted(seen) == list(range(size))


@settings(max_examples=60, deadline=None)
@given(size=st.integers(2, 200), batch=st.integers(2, 17), world=st.integers(1, 4))
def test_training_batches_are_in_lockstep_over_ranks_and_never_single(size, batch, world):
    samplers = [EpochBatches(size, batch, shuffle=True, seed=1, rank=r, world=world, even=True) for r in range(world)]
    lengths = {len(s) for s in samplers}
    assert len(lengths) == 1
    indices = [i for s in samplers for b in s for i, _ in b]
    assert len(indices) == len(set(indices))
    if size // world >= 2:
        assert all(len(b) >= 2 for s in samplers for b in s)


def test_shuffle_changes_with_epoch_and_repeats_with_seed():
    a, b = EpochBatches(50, 50, shuffle=True, seed=0), EpochBatches(50, 50, shuffle=True, seed=0)
    first = next(iter(a))
    a.set_epoch(1)
    assert first != next(iter(a))
    assert first == next(iter(b))


def test_holdout_keeps_each_photo_on_one_side(tmp_path):
    root = write_patch_folders(tmp_path / "flat", {"": 12})
    samples = index_folder(root).samples
    # Three patches per photo, as crack prepare's manifest would record.
    with open(root / "manifest.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["patch", "source"])
        for i, (path, _) in enumerate(samples):
            writer.writerow([path.relative_to(root).as_posix(), f"photo_{i // 3}.jpg"])
    groups = photo_groups(root, samples)
    train, val = holdout_split(samples, groups, 0.25, seed=0)
    photo_of = dict(zip([p for p, _ in samples], groups))
    assert {photo_of[p] for p, _ in train}.isdisjoint({photo_of[p] for p, _ in val})
    assert len(train) + len(val) == len(samples) and {label for _, label in val} == {0, 1}


def test_limit_per_class_is_reproducible(tmp_path):
    samples = index_folder(write_patch_folders(tmp_path / "d", {"": 10})).samples
    picked = limit_per_class(samples, 3, seed=5)
    assert picked == limit_per_class(samples, 3, seed=5)
    assert np.bincount([label for _, label in picked]).tolist() == [3, 3]


def test_index_reports_non_images_and_unknown_classes(tmp_path):
    root = write_patch_folders(tmp_path / "d", {"": 2})
    (root / "crack" / "zero.png").write_bytes(b"")
    (root / "crack" / "notes.txt").write_text("not an image, not listed")
    folder = index_folder(root)
    assert [p.name for p, _ in folder.unreadable] == ["zero.png"]
    assert folder.counts() == {"crack": 2, "no_crack": 2}
    with pytest.raises(UsageError, match="no_crack"):
        index_folder(root, classes=("crack", "scratch"))


def test_dataset_resizes_and_drops_undecodable_images(tmp_path):
    root = write_patch_folders(tmp_path / "d", {"": 2}, size=40)
    (root / "crack" / "truncated.png").write_bytes((root / "crack" / "crack_000.png").read_bytes()[:60])
    folder = index_folder(root, verify=False)
    dataset = PatchDataset(folder.samples, 24, build_augment("field"), seed=1)
    batch = collate([dataset[(i, 0)] for i in range(len(dataset))])
    assert batch.images.shape == (4, 3, 24, 24) and batch.images.dtype.is_floating_point is False
    assert len(batch.failures) == 1 and "truncated.png" in batch.failures[0]
    # The same key gives the same augmentation in any process.
    assert (dataset[(1, 3)][0] == dataset[(1, 3)][0]).all()


def test_field_augmentation_keeps_shape_and_type():
    rng = np.random.default_rng(0)
    patch = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    for seed in range(20):
        out = field_conditions(patch, np.random.default_rng(seed))
        assert out.shape == patch.shape and out.dtype == np.uint8


def test_change_distance_makes_cracks_wider_and_thinner():
    """A dark band 8 px wide in a 64 px patch: zooming in widens it, zooming out narrows it."""
    patch = np.full((64, 64, 3), 180, np.uint8)
    patch[:, 28:36] = 40
    widths = set()
    for seed in range(40):
        out = change_distance(patch, np.random.default_rng(seed))
        assert out.shape == patch.shape and out.dtype == np.uint8
        widths.add(int((out[32, :, 0] < 110).sum()))
    assert min(widths) < 8 and max(widths) > 8


def _painted(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    return before.astype(int).mean(axis=2) - after.astype(int).mean(axis=2) > 15


def test_hairline_is_a_thin_dark_line_from_an_edge_scaled_to_the_patch():
    covered = {}
    for size in (96, 224):
        patch = np.full((size, size, 3), 170, np.uint8)
        shares = []
        for seed in range(10):
            out = paint_hairline(patch, np.random.default_rng(seed))
            assert out.shape == patch.shape and out.dtype == np.uint8
            assert (out <= patch).all(), "a hairline only darkens"
            ys, xs = np.nonzero(_painted(patch, out))
            assert min(xs.min(), ys.min()) <= 2 or max(xs.max(), ys.max()) >= size - 3, "starts at an edge"
            assert max(np.ptp(xs), np.ptp(ys)) + 1 >= 0.25 * size, "long enough to read as a crack, not a pore"
            shares.append(len(xs) / size**2)
        assert max(shares) < 0.06, f"{size} px: a hairline, not a band ({max(shares):.1%} of the patch)"
        covered[size] = np.mean(shares)
    # Widths scale with the patch, so a hairline covers a similar share of a 96 and of a 224 px patch.
    assert 0.5 < covered[224] / covered[96] < 2.0, covered


def test_synthetic_cracks_relabel_a_share_of_clean_patches_only():
    classes = ("crack", "no_crack")
    relabel = synthetic_cracks_for(0.3, classes, "crack")
    patch = np.full((48, 48, 3), 150, np.uint8)
    flipped = 0
    for seed in range(400):
        rng = np.random.default_rng(seed)
        out, label = relabel(patch, 1, rng)
        if label == 0:
            flipped += 1
            assert _painted(patch, out).any()
        else:
            assert out is patch
        # A crack patch is left alone and its augmentation draws are the ones it gets without the option.
        rng_a, rng_b = np.random.default_rng(seed), np.random.default_rng(seed)
        out, label = relabel(patch, 0, rng_a)
        assert label == 0 and out is patch and rng_a.random() == rng_b.random()
    assert 80 <= flipped <= 160  # 30% of 400, with room for chance
    assert synthetic_cracks_for(0.0, classes, "crack") is None


def test_stains_are_small_dark_blots_scaled_to_the_patch():
    for size in (96, 224):
        patch = np.full((size, size, 3), 170, np.uint8)
        for seed in range(10):
            out = paint_stains(patch, np.random.default_rng(seed))
            assert out.shape == patch.shape and out.dtype == np.uint8 and (out <= patch).all()
            # Blots may fall partly outside the patch; inside are at most three blots ≤ 12 px (at 96 px) across.
            assert _painted(patch, out).sum() <= 3 * np.pi * (6.5 * size / 96) ** 2


def test_synthetic_stains_paint_another_share_of_clean_patches_and_keep_them_clean():
    patch = np.full((48, 48, 3), 150, np.uint8)
    hairlines = stained = 0
    for seed in range(600):
        draw = np.random.default_rng(seed).random()
        out, label = synthetic_cracks_for(0.2, ("crack", "no_crack"), "crack", stain_share=0.3)(
            patch, 1, np.random.default_rng(seed)
        )
        # The same draw decides as without stains: hairline below 0.2, stains from 0.2 to 0.5, nothing above.
        assert (label == 0) == (draw < 0.2)
        if label == 0:
            hairlines += 1
        elif draw < 0.5:
            stained += 1
            assert out is not patch
        else:
            assert out is patch
    assert 80 <= hairlines <= 160 and 130 <= stained <= 230
    stains_only = synthetic_cracks_for(0.0, ("crack", "no_crack"), "crack", stain_share=1.0)
    assert all(stains_only(patch, 1, np.random.default_rng(seed))[1] == 1 for seed in range(20))
    # The shares are options of a run, checked by its configuration.
    with pytest.raises(OptionError, match="add up") as error:
        TrainConfig(data="patches", synthetic_cracks=0.6, synthetic_stains=0.6)
    assert error.value.field == "synthetic_cracks"
    with pytest.raises(OptionError, match="`synthetic_stains` -0.1") as error:
        TrainConfig(data="patches", synthetic_cracks=0.1, synthetic_stains=-0.1)
    assert error.value.field == "synthetic_stains"


def test_synthetic_cracks_need_a_clean_class():
    assert synthetic_cracks_for(1.0, ("crack", "no_crack", "scratch"), "crack").clean_label == 1
    assert synthetic_cracks_for(1.0, ("positive", "negative"), "positive").clean_label == 1
    for share, classes, crack in (
        (0.5, ("crack", "scratch", "spall"), "crack"),
        (0.5, ("a", "b"), None),
    ):
        with pytest.raises(UsageError):
            synthetic_cracks_for(share, classes, crack)


def test_training_batches_are_the_same_from_forked_and_fork_server_workers(patch_data):
    """Several GPU processes start their loaders from a fork server (NCCL is not fork-safe): the
    dataset, its augmentation and its painting must travel there and give the same batches."""
    import torch
    from torch.utils.data import DataLoader

    from crackcli.data.augment import build_augment
    from crackcli.data.batches import EpochBatches, PatchDataset, collate
    from crackcli.data.folders import index_folder
    from crackcli.data.painting import SyntheticCracks
    from crackcli.train.data import needs_spawned_workers
    from crackcli.train.distributed import Context

    assert needs_spawned_workers(torch.device("cuda"), Context(world=2))
    assert not needs_spawned_workers(torch.device("cuda"), Context()) and not needs_spawned_workers(
        torch.device("cpu"), Context(world=2)
    )
    samples = index_folder(patch_data / "train").samples
    dataset = PatchDataset(
        samples,
        32,
        build_augment("field"),
        seed=3,
        synthetic_cracks=SyntheticCracks(0.3, 1, 0, stain_share=0.2, confuser_share=0.2),
    )

    def epochs(**start) -> list[torch.Tensor]:
        batches = EpochBatches(len(dataset), 8, shuffle=True, seed=3)
        loader = DataLoader(dataset, batch_sampler=batches, num_workers=2, collate_fn=collate, **start)
        seen = []
        for epoch in range(2):
            batches.set_epoch(epoch)
            seen += [torch.cat([b.images.flatten(), b.labels]) for b in loader]
        return seen

    forked = epochs()
    served = epochs(multiprocessing_context="forkserver", persistent_workers=True)
    assert len(forked) == len(served) and all(torch.equal(a, b) for a, b in zip(forked, served))


def test_a_share_of_clean_patches_is_read_at_twice_the_resolution(tmp_path):
    # A 96 px chequerboard of 8 px squares: read whole at 48 px its squares are 4 px, read finer 8 px.
    board = np.kron((np.indices((12, 12)).sum(axis=0) % 2) * 200 + 30, np.ones((8, 8))).astype(np.uint8)
    for label in ("crack", "no_crack"):
        (tmp_path / label).mkdir()
        for i in range(6):
            write_image(tmp_path / label / f"{i}.png", np.repeat(board[..., None], 3, axis=2))
    samples = index_folder(tmp_path, verify=False).samples
    clean = [i for i, (_, label) in enumerate(samples) if label == 1]

    def square_side(dataset: PatchDataset, index: int) -> float:
        row = dataset[(index, 0)][0].numpy()[0, 24].astype(int)
        return len(row) / (np.count_nonzero(np.diff(row > 115)) + 1)

    whole = PatchDataset(samples, 48)
    finer = PatchDataset(samples, 48, finer=(1.0, 1))
    assert all(3.0 < square_side(whole, i) < 5.0 for i in range(len(samples)))
    assert all(6.0 < square_side(finer, i) < 10.0 for i in clean)
    crack = [i for i in range(len(samples)) if i not in clean]
    assert all((finer[(i, 0)][0] == whole[(i, 0)][0]).all() for i in crack)  # crack patches read whole
    none = PatchDataset(samples, 48, finer=(0.0, 1))
    assert all((none[(i, 0)][0] == whole[(i, 0)][0]).all() for i in clean)
    with pytest.raises(UsageError):
        TrainConfig(data="d", finer_clean=1.5)
