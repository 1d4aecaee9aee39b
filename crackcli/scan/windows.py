"""Sliding-window classification of whole photos: class probabilities for every window of a grid.

Windows come from ``tiling.grid`` (the geometry `crack prepare` cuts patches with): ``patch`` photo pixels
square, ``stride`` apart, the last row and column shifted to end at the border.  Two ways to score them:

- ``patch``: every window is cut, resized to the model's input and classified, as training saw patches
  (``scan.patches``).  Its cost grows with the number of windows.
- ``dense``: for backbones whose head is linear after a global average pool (ResNets), the photo is
  resized once by ``image_size / patch``, the trunk runs over it once (in tiles with halos, so memory
  stays bounded), and each window's logits are the average of the per-location logits it covers.  A
  window's cells see their neighbours instead of zero padding, so it agrees closely with patch mode
  rather than exactly; its cost does not depend on the stride.
"""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass

import cv2
import numpy as np

from crackcli.data.preprocess import keep_thin_dark
from crackcli.data.tiling import MAX_WINDOW, Window, grid
from crackcli.errors import OptionError
from crackcli.model.meta import ModelMeta
from crackcli.model.predictors import LOGIT_STRIDE, Predictor, softmax
from crackcli.scan.patches import ModelScale, model_scale, patch_probs
from crackcli.scan.straight_lines import LineCheck

MODES = ("auto", "patch", "dense")
CELL = LOGIT_STRIDE  # output stride of the ResNet trunks dense mode supports: one logit cell per 32 input pixels
TILE = 2048  # dense mode: core of one trunk pass, in model-input pixels (a multiple of CELL)
HALO = 128  # context added around each tile so cells near its edge see real neighbours
MIN_DENSE_INPUT = 2 * CELL


MAX_BATCH = 4096  # windows in memory at once: 4096 × 3 × 224² bytes is 600 MB


def check_window_options(patch: int | None, stride: int | None, batch: int, mode: str) -> None:
    """The checks of the window settings, wherever they are given (None: the model's default)."""
    if patch is not None and not 8 <= patch <= MAX_WINDOW:
        raise OptionError("patch", f"windows must be 8 to {MAX_WINDOW} pixels", patch)
    if stride is not None and stride < 1:
        raise OptionError("stride", "must be at least 1 pixel", stride)
    if patch is not None and stride is not None and stride > patch:
        raise OptionError(
            "stride", f"is larger than the {patch} px window: strips between windows would go unseen", stride
        )
    if not 1 <= batch <= MAX_BATCH:
        raise OptionError("batch", f"must be 1 to {MAX_BATCH} windows", batch)
    if mode not in MODES:
        raise OptionError("mode", f"unknown mode; choose one of {', '.join(MODES)}", f"'{mode}'")


@dataclass(frozen=True)
class ScanSettings:
    """Where the windows of a photo are and how they are scored."""

    patch: int  # window side in photo pixels
    stride: int
    batch: int = 64  # windows per inference call (patch mode)
    mode: str = "auto"
    line_check: LineCheck | None = None  # windows called crack checked again without long straight lines (patch mode)

    def __post_init__(self) -> None:
        check_window_options(self.patch, self.stride, self.batch, self.mode)

    @classmethod
    def for_model(
        cls,
        meta: ModelMeta,
        patch: int | None = None,
        stride: int | None = None,
        batch: int = 64,
        mode: str = "auto",
        line_check: LineCheck | None = None,
    ) -> ScanSettings:
        """The settings `crack scan` uses with a model: its own patch size and half a window of stride unless given."""
        window = patch or meta.patch_size
        return cls(patch=window, stride=stride or max(1, window // 2), batch=batch, mode=mode, line_check=line_check)


@dataclass
class WindowScores:
    windows: list[Window]
    probs: np.ndarray  # (len(windows), C) float32, in the model's class order
    mode: str  # the mode that produced them: patch or dense
    # (len(windows),) bool: called crack, then not after the line check; None where the check did not run
    cleared: np.ndarray | None = None


def scan_grid(width: int, height: int, settings: ScanSettings) -> list[Window]:
    """The windows of a photo; one smaller than a window gets windows padded by reflection."""
    edge = "shift" if width >= settings.patch and height >= settings.patch else "pad"
    return grid(width, height, settings.patch, settings.stride, edge)


def choose_mode(predictor: Predictor, settings: ScanSettings) -> str:
    """The mode to scan with: ``auto`` takes the model's own ``scan_mode``; dense is refused where the
    model has no dense form.

    Dense windows see their neighbours, so they agree with patch windows only as far as a model was
    measured to: `crack export --scan-mode dense` records that a model was; any other model (the
    default model included, docs/BENCHMARKS.md) scans in patch mode unless asked.  Dense mode also needs
    windows of at least 2×2 cells at model scale: a one-cell window is all context and no patch.
    """
    if settings.mode == "auto":
        return "dense" if predictor.scan_mode == "dense" and predictor.meta.image_size >= MIN_DENSE_INPUT else "patch"
    if settings.mode == "dense" and not predictor.dense:
        raise OptionError(
            "mode",
            f"needs a backbone with a per-location form; {predictor.meta.backbone} has global operations "
            "before its head (or the file was exported without it); use `mode=patch`",
            "dense",
        )
    if settings.mode == "dense" and predictor.meta.image_size < MIN_DENSE_INPUT:
        raise OptionError(
            "mode",
            f"needs a model input of at least {MIN_DENSE_INPUT} px (this one: {predictor.meta.image_size}); "
            "use `mode=patch`",
            "dense",
        )
    return settings.mode


def decode_reduction(predictor: Predictor, settings: ScanSettings) -> int:
    """The largest decode reduction (1, 2, 4, 8) that keeps at least the model's resolution.

    Every window is shrunk to the model's input anyway, so a JPEG decoded at 1/2 in the DCT (cheaper
    than a full decode, and anti-aliased) loses nothing the model would have seen; unless the model's
    minimum filter must see the photo's own pixels first (a 1 px crack is already half faded at 1/2).
    """
    if predictor.meta.min_filter_px > 1:
        return 1
    scale = predictor.meta.image_size / settings.patch
    reduce = 1
    while reduce < 8 and 2 * reduce * scale <= 1:
        reduce *= 2
    return reduce


def dense_applies(photo_size: tuple[int, int], settings: ScanSettings, image_size: int) -> bool:
    """Dense mode (and a reduced decode) needs the photo, at model scale, to hold at least one model input."""
    width, height = photo_size
    return min(width, height) * image_size / settings.patch >= image_size


def scan_image(
    predictor: Predictor,
    rgb: np.ndarray,
    photo_size: tuple[int, int],
    settings: ScanSettings,
    mode: str,
    prepared: ModelScale | None = None,
) -> WindowScores:
    """Score every window of a photo of ``photo_size`` (width, height) whose pixels are ``rgb``.

    ``rgb`` may be a reduced decode of the photo (see ``decode_reduction``); window coordinates are
    always in photo pixels.  Both modes apply the model's minimum filter (patch mode band by band, from
    ``prepared`` where the caller has started it: ``prepare_patches``).
    """
    width, height = photo_size
    windows = scan_grid(width, height, settings)
    if _scored_dense(predictor, photo_size, settings, mode):
        rgb = keep_thin_dark(rgb, predictor.meta.min_filter_px)
        return WindowScores(windows, dense_probs(predictor, rgb, photo_size, windows, settings.patch), "dense")
    probs, cleared = patch_probs(predictor, rgb, photo_size, windows, settings.batch, prepared, settings.line_check)
    return WindowScores(windows, probs, "patch", None if settings.line_check is None else cleared)


def prepare_patches(
    predictor: Predictor,
    rgb: np.ndarray,
    photo_size: tuple[int, int],
    settings: ScanSettings,
    mode: str,
    pool: Executor,
) -> ModelScale | None:
    """Start shrinking a photo to the model's scale on ``pool``, for ``scan_image`` to take as ``prepared``;
    None where its windows will not be gathered from such an image (dense mode, enlarging)."""
    if _scored_dense(predictor, photo_size, settings, mode):
        return None
    return model_scale(predictor.meta, rgb, photo_size, settings.patch, pool)


def _scored_dense(predictor: Predictor, photo_size: tuple[int, int], settings: ScanSettings, mode: str) -> bool:
    """Whether ``scan_image`` scores this photo in dense mode (else its windows one by one)."""
    return mode == "dense" and dense_applies(photo_size, settings, predictor.meta.image_size)


def dense_probs(
    predictor: Predictor, rgb: np.ndarray, photo_size: tuple[int, int], windows: list[Window], patch: int
) -> np.ndarray:
    """Window probabilities from one trunk pass over the photo resized to the model's scale."""
    width, height = photo_size
    size = predictor.meta.image_size
    work_w, work_h = round(width * size / patch), round(height * size / patch)
    if rgb.shape[:2] != (work_h, work_w):
        rgb = cv2.resize(rgb, (work_w, work_h), interpolation=cv2.INTER_AREA)
    logits = logit_map_tiled(predictor, rgb)  # (C, cells_y, cells_x), CELL model pixels each

    xs = sorted({w.x for w in windows})
    ys = sorted({w.y for w in windows})
    # Overlap of each window with each cell, per axis, in photo pixels: window logits are the
    # area-weighted mean of the cells they cover (exactly the pool-then-linear head).
    weights_x = _overlap_weights(xs, patch, logits.shape[2], CELL * width / work_w, width)
    weights_y = _overlap_weights(ys, patch, logits.shape[1], CELL * height / work_h, height)
    window_logits = np.einsum("yi,cij,xj->yxc", weights_y, logits, weights_x)
    column = {x: i for i, x in enumerate(xs)}
    row = {y: i for i, y in enumerate(ys)}
    picked = window_logits[[row[w.y] for w in windows], [column[w.x] for w in windows]]
    return softmax(picked)


def logit_map_tiled(predictor: Predictor, rgb: np.ndarray) -> np.ndarray:
    """Per-location class logits (C, ceil(H/CELL), ceil(W/CELL)) of an image, TILE pixels at a time."""
    height, width = rgb.shape[:2]
    padded_h, padded_w = -(-height // CELL) * CELL, -(-width // CELL) * CELL
    # Edge replication to whole cells: the last cell then holds photo pixels rather than zeros.
    image = cv2.copyMakeBorder(rgb, 0, padded_h - height, 0, padded_w - width, cv2.BORDER_REPLICATE)
    cells = np.empty((len(predictor.meta.classes), padded_h // CELL, padded_w // CELL), np.float32)
    for y0 in range(0, padded_h, TILE):
        for x0 in range(0, padded_w, TILE):
            y1, x1 = min(y0 + TILE, padded_h), min(x0 + TILE, padded_w)
            in_y0, in_x0 = max(0, y0 - HALO), max(0, x0 - HALO)
            in_y1, in_x1 = min(padded_h, y1 + HALO), min(padded_w, x1 + HALO)
            tile = image[in_y0:in_y1, in_x0:in_x1].transpose(2, 0, 1)[None]
            out = predictor.logit_map(np.ascontiguousarray(tile))[0]
            oy, ox = (y0 - in_y0) // CELL, (x0 - in_x0) // CELL
            cells[:, y0 // CELL : y1 // CELL, x0 // CELL : x1 // CELL] = out[
                :, oy : oy + (y1 - y0) // CELL, ox : ox + (x1 - x0) // CELL
            ]
    return cells


def _overlap_weights(origins: list[int], patch: int, cells: int, cell_px: float, length: int) -> np.ndarray:
    """(len(origins), cells): the share of each window (clipped to the photo) falling on each cell."""
    starts = np.clip(np.asarray(origins, np.float64), 0, length)
    ends = np.clip(starts + patch, 0, length)
    edges = np.arange(cells + 1) * cell_px
    overlap = np.clip(
        np.minimum(ends[:, None], edges[None, 1:]) - np.maximum(starts[:, None], edges[None, :-1]), 0, None
    )
    return (overlap / overlap.sum(axis=1, keepdims=True)).astype(np.float32)
