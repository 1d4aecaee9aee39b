"""Crack pixels, centre lines and measurements on drawn cracks of known length and width."""

import math

import cv2
import numpy as np
import pytest

from crackcli.errors import OptionError
from crackcli.measure.centerlines import center_lines, edge_widths
from crackcli.measure.extract import ExtractSettings, confident_pixels, crack_pixels
from crackcli.measure.measurements import Scale, measure, scale_from_line


def concrete(rng: np.random.Generator, height: int = 240, width: int = 320) -> np.ndarray:
    """Grey texture with shading: noise of a few grey levels on a slow gradient."""
    gradient = np.linspace(150, 190, width)[None, :].repeat(height, 0)
    noise = cv2.GaussianBlur(rng.normal(0, 6, (height, width)), (0, 0), 1.0)
    return np.clip(gradient + noise, 0, 255).astype(np.uint8)


def band(shape, start, end, width: float) -> np.ndarray:
    """The pixels whose centres lie within width / 2 of the segment start-end: a crack exactly that wide
    (cv2.line's thickness draws wider)."""
    ys, xs = np.mgrid[: shape[0], : shape[1]].astype(np.float64)
    (x0, y0), (x1, y1) = start, end
    along = np.clip(((xs - x0) * (x1 - x0) + (ys - y0) * (y1 - y0)) / ((x1 - x0) ** 2 + (y1 - y0) ** 2), 0, 1)
    return np.hypot(xs - x0 - along * (x1 - x0), ys - y0 - along * (y1 - y0)) <= width / 2


def draw_line(image: np.ndarray, start, end, width: float, darkness: int = 70) -> tuple[np.ndarray, np.ndarray]:
    mask = band(image.shape, start, end, width)
    out = image.astype(np.int16)
    out[mask] -= darkness
    return np.clip(out, 0, 255).astype(np.uint8), mask


@pytest.mark.parametrize("width", [1, 3, 7])
def test_a_dark_line_is_found_and_the_texture_is_not(width):
    rng = np.random.default_rng(width)
    image, truth = draw_line(concrete(rng), (30, 40), (290, 200), width)
    found = crack_pixels(image, ExtractSettings())
    hit = (found & cv2.dilate(truth.astype(np.uint8), np.ones((5, 5))).astype(bool)).sum() / found.sum()
    covered = (truth & cv2.dilate(found.astype(np.uint8), np.ones((5, 5))).astype(bool)).sum() / truth.sum()
    assert hit > 0.95 and covered > 0.9, (hit, covered)
    assert not crack_pixels(concrete(rng), ExtractSettings()).any()  # plain texture: nothing


def test_blots_and_short_specks_are_not_cracks():
    rng = np.random.default_rng(5)
    image = concrete(rng).astype(np.int16)
    cv2.circle(image, (100, 100), 9, 90, -1)  # a dark blot (a stain, a pore)
    cv2.line(image, (200, 50), (208, 54), 90, 2)  # a speck, shorter than a crack
    assert not crack_pixels(np.clip(image, 0, 255).astype(np.uint8), ExtractSettings()).any()


def test_only_pixels_inside_the_allowed_area_are_traced():
    rng = np.random.default_rng(6)
    image, _ = draw_line(concrete(rng), (20, 120), (300, 120), 3)
    within = np.zeros(image.shape, bool)
    within[:, :160] = True
    found = crack_pixels(image, ExtractSettings(), within)
    assert found[:, :150].any() and not found[:, 160:].any()


def test_a_learned_tracers_probabilities_keep_long_confident_groups_inside_the_allowed_area():
    probs = np.zeros((100, 200), np.float32)
    probs[20, 10:150] = 0.9  # a long crack
    probs[60, 10:20] = 0.95  # a speck: shorter than 20 px
    probs[80, 10:150] = 0.55  # long, under the threshold
    probs[40, 170:200] = 0.9  # long enough, outside the allowed area
    within = np.zeros(probs.shape, bool)
    within[:, :160] = True
    found = confident_pixels(probs, 0.6, 20, within)
    assert found[20, 10:150].all() and found.sum() == 140


def test_a_learned_tracers_blots_are_dropped_where_its_file_limits_how_much_a_crack_fills():
    probs = np.zeros((120, 200), np.float32)
    probs[20:23, 10:150] = 0.9  # a crack 3 px wide: fills 3/140 of its bounding square
    probs[50:110, 20:80] = 0.8  # a blot of marked texture: fills its square
    cv2.line(probs, (100, 110), (190, 40), 0.9, 4)  # a diagonal crack: fills about 0.1 of its square
    kept = confident_pixels(probs, 0.6, 20, max_fill=0.25)
    assert kept[20:23, 10:150].all() and kept[75, 145] and not kept[50:110, 20:80].any()
    assert confident_pixels(probs, 0.6, 20)[50:110, 20:80].all()  # no limit: every long enough group stays


@pytest.mark.parametrize(("width", "angle"), [(1, 0.0), (3, 30.0), (5, 45.0), (9, 70.0)])
def test_centre_line_length_and_width_of_a_straight_crack(width, angle):
    length = 200
    dx, dy = length * math.cos(math.radians(angle)), length * math.sin(math.radians(angle))
    start = (20, 20)
    end = (round(20 + dx), round(20 + dy))
    lines = center_lines(band((260, 260), start, end, width), origin=(1000, 2000))
    total = sum(line.length_px for line in lines)
    assert abs(total - math.dist(start, end)) <= width + 2  # the skeleton stops short of the rounded ends
    widths = np.concatenate([line.widths_px for line in lines])
    assert abs(np.median(widths) - width) <= 1.0, (np.median(widths), width)
    points = np.concatenate([line.points for line in lines])
    assert points[:, 0].min() >= 1000 + start[0] - width and points[:, 1].min() >= 2000 + start[1] - width


def test_widths_come_from_the_core_pixels_when_given_the_centre_line_from_all():
    """A tracer marks a band wider than the crack; widths are read from the pixels it is surest of."""
    marked = band((120, 240), (20, 60), (220, 60), 9)
    core = band((120, 240), (20, 60), (220, 60), 3)
    plain, measured = center_lines(marked), center_lines(marked, core=core)
    assert [line.length_px for line in measured] == [line.length_px for line in plain]
    assert abs(np.median(np.concatenate([line.widths_px for line in plain])) - 9) <= 1
    assert abs(np.median(np.concatenate([line.widths_px for line in measured])) - 3) <= 1


def test_a_branching_crack_keeps_its_branches_and_loses_thinning_spurs():
    mask = band((200, 200), (10, 100), (190, 100), 9)  # wide: thinning leaves short spurs at its ends
    mask |= band((200, 200), (100, 100), (100, 10), 3)  # a real branch
    lines = center_lines(mask)
    assert sum(line.length_px > 60 for line in lines) >= 2  # both halves of the main crack, and the branch
    assert all(line.length_px > 5 for line in lines)


def test_every_skeleton_pixel_of_a_short_line_has_its_width():
    mask = band((40, 40), (10, 20), (14, 20), 3)  # a stub shorter than the width window
    lines = center_lines(mask)
    assert lines and all(len(line.widths_px) == len(line.pixels) for line in lines)


def test_edge_width_is_one_on_a_one_pixel_line_and_three_on_three():
    mask = np.zeros((20, 20), bool)
    mask[10, 2:18] = True
    mask[14:17, 2:18] = True
    assert set(edge_widths(mask, np.argwhere(mask[:11]))) == {1.0}
    assert edge_widths(mask, np.array([[15, 9]]))[0] == 3.0


def test_measurements_in_mm_and_width_classes():
    mask = band((120, 400), (10, 30), (390, 30), 1)  # 0.05 mm at 0.05 mm/px: the finest class
    mask |= band((120, 400), (10, 90), (390, 90), 9)  # 0.45 mm: the 0.3-1 class
    lines = center_lines(mask)
    figures = measure(lines, Scale(mm_per_px=0.05))
    assert figures["length_mm"] == pytest.approx(figures["length_px"] * 0.05, rel=1e-3)
    assert figures["max_width_mm"] == pytest.approx(0.45, abs=0.06)
    by_width = figures["length_mm_by_width"]
    assert list(by_width) == ["<0.1", "0.1-0.3", "0.3-1", ">1"]
    assert by_width["<0.1"] == pytest.approx(19, abs=1) and by_width["0.3-1"] == pytest.approx(18.6, abs=1.5)
    assert by_width[">1"] == 0
    assert "length_mm" not in measure(lines, Scale())


def test_a_scale_from_two_points_and_their_distance():
    assert scale_from_line("0,0,300,400,100") == pytest.approx(0.2)
    for bad in ("1,2,3", "0,0,0,0,10", "0,0,3,4,-1", "a,b,c,d,e"):
        with pytest.raises(OptionError):
            scale_from_line(bad)
    with pytest.raises(OptionError):
        Scale(width_classes_mm=(0.3, 0.1))
    with pytest.raises(OptionError):
        Scale(mm_per_px=0)
