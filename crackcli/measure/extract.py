"""Crack pixels of a grey image: the classical extractor, and the rule that turns a learned tracer's
probabilities into crack pixels.

A black top-hat (closing minus image) keeps what is darker than its surroundings and narrower than
the structuring element, flattening shading and stains wider than a crack.  Pixels far above the
image's own noise level (median + k · MAD of the top-hat) seed cracks, which grow through pixels
half as far above it (hysteresis, as in Canny's edge detector); what remains must be long (a
crack, not a pore) and thin (filling little of its bounding square, not a blot).

A learned tracer (``model.tracers``) scores every pixel; its file says from which probability a pixel is
crack and how long a crack must be.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from crackcli.errors import OptionError

MAD_TO_SIGMA = 1.4826  # the median absolute deviation of Gaussian noise times this is its σ
NOISE_SAMPLE = 250_000  # pixels the noise level is estimated from, at most


@dataclass(frozen=True)
class ExtractSettings:
    # Defaults: the best by pixel F on CCIC texture with painted cracks (`benchmarks/trace_tune.py`);
    # that design of the tuning photos (not the one with asphalt) chosen on uav75_dev and pavement_crops,
    # never on the sets the figures are reported on (docs/BENCHMARKS.md, "Crack traces").
    max_width_px: int = 21  # side of the top-hat's square: dark lines up to about this wide are kept whole
    seed_level: float = 4.0  # seed pixels: this many noise σ above the median top-hat
    grow_share: float = 0.85  # grown pixels: this share of the seed level
    min_length_px: int = 20  # a crack's bounding square is at least this long
    max_fill: float = 0.3  # ... and its pixels fill at most this share of that square
    smoothing_px: float = 0.0  # σ of a Gaussian smoothing the top-hat before thresholds (0: none)

    def __post_init__(self) -> None:
        if self.max_width_px < 3:
            raise OptionError("max_width_px", "give at least 3 pixels", self.max_width_px)
        if self.seed_level <= 0 or not 0 < self.grow_share <= 1:
            raise OptionError("seed_level", "give a positive level and a share in (0, 1]", self.seed_level)


def top_hat(gray: np.ndarray, settings: ExtractSettings) -> np.ndarray:
    """Darkness against the surroundings (0 where nothing is darker than its neighbourhood): uint8 grey
    levels, float32 when smoothed."""
    side = settings.max_width_px | 1  # odd: centred
    # A square kernel: OpenCV runs it as two 1-D passes, 15x faster than a disc of the same width.
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (side, side))
    # Edge pixels repeated once, around the whole image, before the closing: repeated at each of its two
    # passes instead, a shaded image's edge comes out darker than it is (a false crack along it).
    pad = side
    padded = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    hat = cv2.morphologyEx(padded, cv2.MORPH_BLACKHAT, kernel)[pad:-pad, pad:-pad]  # uint8, as the photo
    if settings.smoothing_px > 0:
        return np.asarray(cv2.GaussianBlur(hat.astype(np.float32), (0, 0), settings.smoothing_px), np.float32)
    return hat


def noise_level(hat: np.ndarray, within: np.ndarray | None = None) -> tuple[float, float]:
    """The median and the robust σ (scaled MAD) of the top-hat, over ``within`` where given."""
    values = hat[within] if within is not None else hat.ravel()
    if values.size == 0:
        return 0.0, 1.0
    # a regular sample (the median of millions is slow), in floating point: grey levels would round the MAD
    values = values[:: max(1, values.size // NOISE_SAMPLE)].astype(np.float32)
    median = float(np.median(values))
    sigma = float(np.median(np.abs(values - median))) * MAD_TO_SIGMA
    return median, max(sigma, 1e-3)


def crack_pixels(gray: np.ndarray, settings: ExtractSettings, within: np.ndarray | None = None) -> np.ndarray:
    """bool mask of crack pixels of a uint8 grey image, only inside ``within`` (bool, same shape) if given."""
    hat = top_hat(gray, settings)
    median, sigma = noise_level(hat, within)
    seed_at = median + settings.seed_level * sigma
    grow = hat > median + settings.grow_share * settings.seed_level * sigma
    if within is not None:
        grow &= within
    return long_thin(grow, grow & (hat > seed_at), settings.min_length_px, settings.max_fill)


def long_thin(found: np.ndarray, seeds: np.ndarray, min_length_px: int, max_fill: float = math.inf) -> np.ndarray:
    """The 8-connected groups of ``found`` (bool) that hold a ``seeds`` pixel, have a bounding square at
    least ``min_length_px`` long and fill less than ``max_fill`` of it."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(found.astype(np.uint8), connectivity=8)
    keep = np.zeros(count, bool)
    keep[np.unique(labels[seeds & found])] = True
    keep[0] = False  # background
    side = np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT])
    keep &= side >= min_length_px
    keep &= stats[:, cv2.CC_STAT_AREA] < max_fill * np.maximum(side, 1) ** 2
    return keep[labels]


def confident_pixels(
    probs: np.ndarray,
    threshold: float,
    min_length_px: int,
    within: np.ndarray | None = None,
    max_fill: float = math.inf,
) -> np.ndarray:
    """bool mask of the pixels a learned tracer scores ``threshold`` or more (``probs``: per pixel), in
    groups at least ``min_length_px`` long that fill less than ``max_fill`` of their bounding square, only
    inside ``within`` if given."""
    found = probs >= threshold
    if within is not None:
        found &= within
    return long_thin(found, found, min_length_px, max_fill)
