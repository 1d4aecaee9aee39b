"""Widths read across a crack from the grey photo, on drawn cracks of known width."""

import math

import cv2
import numpy as np
import pytest
from test_measure import band, concrete

from crackcli.measure.centerlines import center_lines
from crackcli.measure.profile_widths import MIN_DEPTH, with_profile_widths


def photo_with_crack(width: float, angle: float, seed: int) -> tuple[np.ndarray, float, tuple, tuple]:
    """Concrete texture with a straight crack about ``width`` px wide, 70 grey levels dark, slightly out of
    focus; and how wide it is on the pixel grid (its pixels, less its round ends, per length)."""
    rng = np.random.default_rng(seed)
    image = concrete(rng, 260, 260).astype(np.float64)
    start = (40, 40)
    end = (round(40 + 180 * math.cos(math.radians(angle))), round(40 + 180 * math.sin(math.radians(angle))))
    crack = band(image.shape, start, end, width)
    image[crack] -= 70
    drawn = (crack.sum() - math.pi * width**2 / 4) / math.dist(start, end)
    return np.clip(cv2.GaussianBlur(image, (0, 0), 0.7), 0, 255).astype(np.uint8), drawn, start, end


def middle_widths(lines, start, end) -> np.ndarray:
    """The widths along the middle of the crack, away from its rounded ends."""
    widths = np.concatenate([line.widths_px for line in lines])
    pixels = np.concatenate([line.pixels for line in lines]).astype(np.float64)
    (x0, y0), (x1, y1) = start, end
    along = ((pixels[:, 0] - x0) * (x1 - x0) + (pixels[:, 1] - y0) * (y1 - y0)) / ((x1 - x0) ** 2 + (y1 - y0) ** 2)
    return widths[(along > 0.2) & (along < 0.8)]


@pytest.mark.parametrize(("width", "angle"), [(2, 0.0), (3, 20.0), (4, 30.0), (8, 60.0), (14, 45.0)])
@pytest.mark.parametrize("marked", [0.4, 2.0])
def test_the_width_is_read_from_the_photo_whatever_band_an_extractor_marked(width, angle, marked):
    """A tracer's band of crack pixels may be much wider or narrower than the crack; the grey levels say
    how wide it is."""
    photo, drawn, start, end = photo_with_crack(width, angle, seed=width)
    pixels = band(photo.shape, start, end, max(1, marked * width))
    first = center_lines(pixels)
    assert abs(np.median(middle_widths(first, start, end)) - drawn) >= 0.6 * width - 1  # the band was off
    read = with_profile_widths(photo, first)
    assert [line.length_px for line in read] == [line.length_px for line in first]
    widths = middle_widths(read, start, end)
    assert abs(np.median(widths) - drawn) <= 0.5, (np.median(widths), drawn)
    assert np.percentile(np.abs(widths - drawn), 90) <= 1.0


def test_a_dip_too_shallow_to_read_keeps_the_crack_pixels_width():
    photo = np.full((80, 200), 160, np.uint8)
    crack = band(photo.shape, (20, 40), (180, 40), 5)
    photo[crack] -= int(MIN_DEPTH) - 1
    first = center_lines(crack)
    read = with_profile_widths(photo, first)
    assert np.array_equal(
        np.concatenate([line.widths_px for line in read]), np.concatenate([line.widths_px for line in first])
    )


def test_lines_read_together_are_read_as_each_alone():
    """A photo's lines share arrays (by reach); no line's widths borrow from another's profiles."""
    rng = np.random.default_rng(3)
    photo = concrete(rng, 200, 320).astype(np.float64)
    cracks = [band(photo.shape, (20, 30), (300, 40), 3), band(photo.shape, (20, 150), (300, 120), 9)]
    cracks.append(band(photo.shape, (60, 80), (260, 85), 3))  # a second line of the first one's reach
    for crack in cracks:
        photo[crack] -= 60
    photo = np.clip(photo, 0, 255).astype(np.uint8)
    lines = [line for crack in cracks for line in center_lines(crack)]
    together = with_profile_widths(photo, lines)
    alone = [read for line in lines for read in with_profile_widths(photo, [line])]
    for a, b in zip(together, alone):
        assert np.array_equal(a.widths_px, b.widths_px)
    medians = [float(np.median(line.widths_px)) for line in together]
    assert abs(medians[0] - 3) <= 0.6 and abs(medians[1] - 9) <= 0.8 and abs(medians[2] - 3) <= 0.6, medians
    assert with_profile_widths(photo, []) == []


def test_a_crack_far_wider_than_its_marked_band_is_read_again_over_the_reach_the_first_reading_sets():
    photo, drawn, start, end = photo_with_crack(20, 45.0, seed=5)
    first = center_lines(band(photo.shape, start, end, 3))
    widths = middle_widths(with_profile_widths(photo, first), start, end)
    assert abs(np.median(widths) - drawn) <= 0.5, (np.median(widths), drawn)
