"""Everything a scan can be asked for, checked where it is defined; None means the model's own default."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from crackcli.errors import OptionError
from crackcli.io.images import DEFAULT_MAX_PIXELS
from crackcli.measure.measurements import WIDTH_CLASSES_MM, Scale
from crackcli.scan.windows import check_window_options

MAX_WORKERS = 16  # photos per stage at most: each holds a decoded photo (126 MB at 42 MP) in memory


@dataclass(frozen=True)
class ScanOptions:
    """The settings of one scan job, as `crack scan` takes them."""

    model: Path | None = None  # None: $CRACK_MODEL, else the shipped default model
    device: str = "auto"  # auto: a GPU where one is present (checked by the model's runtime)
    out: Path | None = None  # None: a new runs/scan/expN
    patch: int | None = None  # window side in photo pixels; None: the model's patch size
    stride: int | None = None  # None: half a window
    threshold: float = 0.5  # crack probability from which a window counts as crack
    mode: str = "auto"  # auto (what the model file records), patch or dense
    batch: int = 64  # windows per inference call in patch mode
    line_check: bool = True  # windows called crack classified again without long straight lines (patch mode)
    workers: int | None = None  # photos decoded, shrunk and written at once; None: by device and cores
    overlay: bool = True
    overlay_max_side: int = 2048  # longer side of overlays; 0: the photo's own size
    crack_class: str | None = None  # None: the model's
    shard: tuple[int, int] = (0, 1)  # (I, N): every N-th photo of the sorted input from the I-th
    force: bool = False  # redo photos whose report is already in `out`
    max_pixels: int = DEFAULT_MAX_PIXELS  # decompression-bomb guard
    trace: bool = False  # crack pixels, centre lines and measurements inside the crack windows
    tracer: str | None = None  # with `trace`: learned, classical or a tracer file; None: the default
    mm_per_px: float | None = None  # the photos' scale, for measurements in mm (with `trace`)
    width_classes_mm: tuple[float, ...] = WIDTH_CLASSES_MM  # boundaries of the width classes, in mm

    def __post_init__(self) -> None:
        check_window_options(self.patch, self.stride, self.batch, self.mode)
        if not 0.0 <= self.threshold <= 1.0:
            raise OptionError("threshold", "give a probability between 0 and 1", self.threshold)
        if self.overlay_max_side < 0:
            raise OptionError(
                "overlay_max_side", "give a size in pixels, or 0 for the photo's own", self.overlay_max_side
            )
        if self.workers is not None and not 1 <= self.workers <= MAX_WORKERS:
            raise OptionError("workers", f"give 1 to {MAX_WORKERS} photos at a time", self.workers)
        if self.max_pixels < 1:
            raise OptionError("max_pixels", "give a positive number of pixels", self.max_pixels)
        Scale(self.mm_per_px, tuple(self.width_classes_mm))  # refuses a bad scale or width classes
        if self.mm_per_px is not None and not self.trace:
            raise OptionError("mm_per_px", "measures traced cracks: add `trace`", self.mm_per_px)
        if self.tracer is not None and not self.trace:
            raise OptionError("tracer", "chooses how cracks are traced: add `trace`", self.tracer)
        index, count = self.shard
        if count < 1 or not 0 <= index < count:
            raise OptionError("shard", "I must be 0 to N-1 and N at least 1", f"{index}/{count}")

    @property
    def scale(self) -> Scale:
        return Scale(self.mm_per_px, tuple(self.width_classes_mm))

    @property
    def summary_name(self) -> str:
        """The job's CSV: one per shard, so shards of one job can share a folder."""
        index, count = self.shard
        return f"summary-{index}-of-{count}.csv" if count > 1 else "summary.csv"
