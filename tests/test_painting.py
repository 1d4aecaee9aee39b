import numpy as np
import pytest

from crackcli.data.painting import (
    BESIDE_CRACKS,
    CONFUSERS,
    asphalt,
    paint_joint,
    paint_marking,
    paint_pavement_crack,
    synthetic_cracks_for,
)


def _changed(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    return np.abs(before.astype(int) - after.astype(int)).max(axis=2) > 8


@pytest.mark.parametrize("painter", CONFUSERS, ids=lambda p: p.__name__)
def test_every_confuser_marks_the_patch_and_keeps_its_form(painter):
    for size in (96, 224):
        patch = np.full((size, size, 3), 150, np.uint8)
        marked = [painter(patch, np.random.default_rng(seed)) for seed in range(6)]
        assert all(m.shape == patch.shape and m.dtype == np.uint8 for m in marked)
        assert sum(_changed(patch, m).any() for m in marked) >= 5, "a confuser that leaves patches unmarked"


def test_joints_run_straight_across_the_whole_patch():
    patch = np.full((96, 96, 3), 150, np.uint8)
    for seed in range(20):
        changed = _changed(patch, paint_joint(patch, np.random.default_rng(seed)))
        ys, xs = np.nonzero(changed)
        # A joint is not a crack ending inside the patch: it reaches two opposite sides (or corners).
        assert np.ptp(xs) >= 90 or np.ptp(ys) >= 90, f"seed {seed}: a joint that stops inside the patch"


def test_asphalt_is_stones_in_a_darker_binder_and_its_cracks_are_dark():
    for seed in range(5):
        surface = asphalt(96, np.random.default_rng(seed))
        assert surface.shape == (96, 96, 3) and surface.dtype == np.uint8
        grey = surface.mean(axis=2)
        assert grey.std() > 6, "aggregate texture, not a flat surface (faint when seen from afar)"
        cracked = paint_pavement_crack(surface, np.random.default_rng(seed))
        assert (cracked <= surface).all() and _changed(surface, cracked).sum() >= 40


def test_confusers_stay_clean_and_surfaces_are_half_road_cracks():
    painting = synthetic_cracks_for(0.1, ("crack", "no_crack"), "crack", confuser_share=0.3, surface_share=0.4)
    patch = np.full((48, 48, 3), 150, np.uint8)
    labels = {"hairline": [], "confuser": [], "surface": [], "untouched": []}
    for seed in range(600):
        draw = np.random.default_rng(seed).random()
        out, label = painting(patch, 1, np.random.default_rng(seed))
        kind = "hairline" if draw < 0.1 else "confuser" if draw < 0.4 else "surface" if draw < 0.8 else "untouched"
        labels[kind].append(label)
        if kind == "untouched":
            assert out is patch
        else:
            assert out is not patch
    assert set(labels["hairline"]) == {0} and set(labels["confuser"]) == {1} and set(labels["untouched"]) == {1}
    assert 0.35 < np.mean(np.asarray(labels["surface"]) == 0) < 0.65


def test_crack_patches_get_confusers_beside_the_crack_and_stay_crack():
    painting = synthetic_cracks_for(0.1, ("crack", "no_crack"), "crack", confuser_share=0.3)
    patch = np.full((48, 48, 3), 150, np.uint8)
    outcomes = [painting(patch, 0, np.random.default_rng(seed)) for seed in range(400)]
    assert all(label == 0 for _, label in outcomes)
    painted = sum(out is not patch for out, _ in outcomes)
    assert 80 <= painted <= 160  # 30% of 400, with room for chance
    assert paint_marking not in BESIDE_CRACKS and len(BESIDE_CRACKS) == len(CONFUSERS) - 1
    # Without confusers a crack patch draws nothing: its augmentation stream is the one it had before.
    plain = synthetic_cracks_for(0.1, ("crack", "no_crack"), "crack", stain_share=0.2)
    rng_a, rng_b = np.random.default_rng(1), np.random.default_rng(1)
    assert plain(patch, 0, rng_a)[0] is patch and rng_a.random() == rng_b.random()
