import numpy as np

from crackcli.data.synth import synthesize


def test_same_seed_same_photo_other_seed_other_photo():
    a = synthesize(200, 150, seed=5)
    b = synthesize(200, 150, seed=5)
    c = synthesize(200, 150, seed=6)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.crack_mask, b.crack_mask)
    assert not np.array_equal(a.image, c.image)


def test_cracks_are_darker_than_their_surroundings_and_masked():
    photo = synthesize(400, 300, seed=1, cracks=2, scratches=0, joints=0)
    gray = photo.image.mean(axis=2)
    crack = photo.crack_mask > 0
    assert photo.image.shape == (300, 400, 3) and photo.image.dtype == np.uint8
    assert 0.001 < crack.mean() < 0.2
    assert gray[crack].mean() < gray[~crack].mean() - 20
    assert not photo.scratch_mask.any()


def test_scratches_are_lighter_and_not_cracks():
    photo = synthesize(400, 300, seed=2, cracks=0, scratches=2, joints=0)
    gray = photo.image.mean(axis=2)
    scratch = photo.scratch_mask > 0
    assert not photo.crack_mask.any()
    assert scratch.any()
    assert gray[scratch].mean() > gray[~scratch].mean() + 10


def test_no_cracks_means_empty_mask():
    photo = synthesize(128, 128, seed=3, cracks=0, scratches=0, joints=1)
    assert not photo.crack_mask.any()
