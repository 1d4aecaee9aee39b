"""`crack scan` over many photos: decode ahead, score, write each photo's outputs, keep going on failures.

Per photo, in the output folder: ``<name>.json`` (the report), ``<name>_overlay.jpg`` with its
``<name>_thumb.jpg`` and ``<name>_heatmap.png`` (crack probability × 255, one pixel per heatmap cell), the
name keeping the subfolders the photo had under an input folder.  For the job: ``summary.csv``
(``summary-<I>-of-<N>.csv`` for a shard), ``index.html`` (the job page) and ``findings.geojson`` (photos
on a map), rewritten as photos finish and whole at the end.  Every file is written atomically.

Photos overlap in stages: while one is classified, the next ones are decoded and shrunk to the model's
scale and the last ones rendered and written; ``options.workers`` photos at a time in each stage (on a
GPU several, so the CPU keeps up with it; on the CPU one, as ONNX Runtime's threads use every core).

A photo whose report is already there is not scanned again (so a stopped job re-run finishes the rest)
when that report is still true: made from the same file (path, size, modification time) by the same
model file (SHA-256), settings and crackcli version.  Anything else is scanned again, and the job says
why; ``force`` redoes every photo.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from crackcli import __version__
from crackcli.errors import CrackError, UsageError
from crackcli.io.atomic import OutputError, atomic_write_bytes, make_folder
from crackcli.io.exif import PhotoFacts
from crackcli.io.images import ImageReadError, read_gray, read_header, read_rgb, write_image
from crackcli.io.system import usable_cpus
from crackcli.measure.centerlines import load_thinning
from crackcli.measure.measurements import measure
from crackcli.measure.profile_widths import METHOD as WIDTH_METHOD
from crackcli.model.predictors import Predictor
from crackcli.report.job_files import refresh_job_files
from crackcli.report.job_page import THUMBNAIL_SUFFIX, job_facts, load_template
from crackcli.report.summary import failed_row, summary_row, write_summary
from crackcli.scan.events import ScanEvents
from crackcli.scan.findings import Region, crack_heatmap, crack_regions, heat_cell, region_max_side, summarize
from crackcli.scan.options import ScanOptions
from crackcli.scan.overlay import (
    draw_traces,
    heat_levels,
    load_legend_font,
    render_overlay,
    thumbnail,
    viewing_pixels,
    viewing_size,
)
from crackcli.scan.patches import ModelScale
from crackcli.scan.straight_lines import VERSION as LINE_CHECK_VERSION
from crackcli.scan.straight_lines import LineCheck
from crackcli.scan.traces import Extractor, PhotoTraces, open_extractor, trace_photo
from crackcli.scan.windows import (
    ScanSettings,
    WindowScores,
    choose_mode,
    decode_reduction,
    dense_applies,
    prepare_patches,
    scan_image,
)

# What a report holds, beyond the version string: raised when that changes (2: EXIF, thumbnail, regions
# of tiles; 3: the windows the line check cleared), so a report of an earlier format is made again
# rather than kept as if it were current.
REPORT_FORMAT = 3
PAGE_INTERVAL_S = 10.0  # the job's table, page and map are rewritten at most this often while it runs
PAGE_SHARE_INVERSE = 20  # ... and never more than 1/20 of the time goes into rewriting them
MAX_AUTO_WORKERS = 4  # photos per stage chosen on a GPU machine: each holds a decoded photo in memory


def auto_workers(predictor: Predictor) -> int:
    """Photos per stage when not asked: on a GPU about one per three cores (a photo in flight keeps a
    decoding, a shrinking and a writing thread busy), at most MAX_AUTO_WORKERS; on the CPU one, since
    inference already runs on every core and more photos at once would only take turns."""
    return min(MAX_AUTO_WORKERS, max(1, usable_cpus() // 3)) if predictor.on_gpu else 1


@dataclass
class JobResult:
    scanned: int = 0
    kept: int = 0  # reports already in the output folder, not redone
    failed: int = 0  # photos that could not be scanned and inputs that named no photo
    with_cracks: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)  # summary.csv, one per photo


@dataclass
class _Decoded:
    rgb: np.ndarray
    size: tuple[int, int]
    seconds: float
    provenance: dict[str, Any]  # taken before reading: a photo changed meanwhile is redone next time
    facts: PhotoFacts  # EXIF time, camera, position
    prepared: ModelScale | None = None  # the photo being shrunk to the model's scale (``ScanJob._prepare``)
    preparing: bool = False  # ``prepared`` was asked for (it stays None where it does not apply)


class ScanJob:
    """Scan photos into ``out`` with one predictor and the settings of ``options``."""

    def __init__(self, predictor: Predictor, options: ScanOptions, out: Path) -> None:
        self.predictor = predictor
        self.options = options
        self.out = out
        meta = predictor.meta
        self.crack_class = options.crack_class or meta.crack_class
        if self.crack_class not in meta.classes:
            raise UsageError(
                f"{predictor.source}: no class '{self.crack_class}' among {', '.join(meta.classes)}; "
                "name the crack class with `crack_class`"
            )
        self.crack_index = meta.classes.index(self.crack_class)
        check = LineCheck(self.crack_index, options.threshold) if options.line_check else None
        self.settings = ScanSettings.for_model(
            meta, options.patch, options.stride, options.batch, options.mode, line_check=check
        )
        self.mode = choose_mode(predictor, self.settings)
        self.reduce = decode_reduction(predictor, self.settings)
        self.extractor = open_extractor(options.tracer, options.device) if options.trace else None
        self.made_with = self._made_with()
        self._first: tuple[Path, Future] | None = None  # see decode_first
        self._first_report: dict[str, Any] | None = None  # the job page's model and settings
        self._page_due = 0.0  # monotonic time of the next rewrite of the job's table and page
        self._shrinker: ThreadPoolExecutor | None = None  # during ``run``: where photos are shrunk

    def decode_first(self, photos: list[tuple[Path, str]], reports_possible: bool = True) -> None:
        """Start decoding the first photo of ``photos`` now, while the model's runtime may still be starting
        (see ``OnnxPredictor``); ``run`` takes it from there.  Skipped when its report may be kept (never
        in a folder not made yet: ``reports_possible=False``)."""
        if not photos or (reports_possible and not self.options.force and self._report_path(photos[0][1]).exists()):
            return
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="decode-first")
        self._first = (photos[0][0], pool.submit(self._decode, photos[0][0]))
        pool.shutdown(wait=False)

    def _made_with(self) -> dict[str, Any]:
        """What, beside the photo, decides a report: reused only when all of it is the same."""
        try:
            digest = hashlib.sha256(Path(self.predictor.source).read_bytes()).hexdigest()
        except OSError:
            digest = None  # never equal to a recorded digest: nothing is reused
        options = self.options
        return {
            "model_sha256": digest,
            "settings": {
                "patch": self.settings.patch,
                "stride": self.settings.stride,
                "mode": self.mode,
                "threshold": options.threshold,
                # the check's method version: a report checked another way is made again
                "line_check": LINE_CHECK_VERSION if self.mode == "patch" and options.line_check else False,
                "crack_class": self.crack_class,
                "overlay": options.overlay,
                "overlay_max_side": options.overlay_max_side,
                **self._trace_settings(),
            },
            "crackcli_version": __version__,
            "report_format": REPORT_FORMAT,
        }

    def _trace_settings(self) -> dict[str, Any]:
        """What decides a traced report beyond the scan's own settings (nothing when not tracing, so an
        untraced report stays reusable by an untraced scan)."""
        if self.extractor is None:
            return {}
        scale = self.options.scale
        return {
            "trace": {
                "mm_per_px": scale.mm_per_px,
                "width_classes_mm": list(scale.width_classes_mm),
                "widths": WIDTH_METHOD,
                **self.extractor.record(),
            }
        }

    def _provenance(self, path: Path) -> dict[str, Any]:
        """The record kept in a report of what made it."""
        stat = path.stat()
        photo = {"path": str(path.resolve()), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        return {"photo": photo, **self.made_with}

    def _reusable(self, path: Path, stem: str) -> tuple[dict[str, Any] | None, str | None]:
        """The earlier report of this photo if it is still true, else why it is not (None: there is none)."""
        try:
            report = json.loads(self._report_path(stem).read_text())
        except FileNotFoundError:
            return None, None
        except (OSError, ValueError):
            return None, "reports that could not be read"
        recorded = report.get("provenance") if isinstance(report, dict) else None
        if not isinstance(recorded, dict):
            return None, "reports without a record of what made them (an older crack)"
        try:
            current = self._provenance(path)
        except OSError:
            return None, "photos that could not be checked"
        if recorded.get("photo") != current["photo"]:
            return None, "reports of another file of the same name, or of the photo before it changed"
        if recorded.get("model_sha256") != current["model_sha256"]:
            return None, "reports made with another model"
        before, now = recorded.get("settings") or {}, current["settings"]
        if before != now:
            changed = sorted(key for key in before.keys() | now.keys() if before.get(key) != now.get(key))
            return None, f"reports made with another {', '.join(changed)}"
        if recorded.get("crackcli_version") != __version__ or recorded.get("report_format") != REPORT_FORMAT:
            return None, "reports made by another crackcli version"
        return report, None

    def run(
        self,
        photos: list[tuple[Path, str]],
        events: ScanEvents | None = None,
        input_failures: Sequence[tuple[str, str]] = (),
    ) -> JobResult:
        """Scan (path, output stem) pairs in order; a failing photo is reported and skipped.  Inputs that
        named no photo (``input_failures``: (input, message)) are reported and listed first.

        Three stages overlap: the next photos are decoded and shrunk, this one scored, the previous ones
        rendered and written (on writer threads), ``workers`` photos at a time in each.  Each photo's
        outputs are whole before it is reported, in input order.
        """
        events = events or ScanEvents()
        events.started(len(photos))
        result = JobResult()
        for source, message in input_failures:
            self._failed(source, message, result, events)
        make_folder(self.out)
        workers = self.options.workers or auto_workers(self.predictor)
        pending: list[tuple[Path, Future]] = []  # started, not yet recorded: those being written and this one
        self._shrinker = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="model-scale")
        opencv_threads = cv2.getNumThreads()
        if not self.predictor.on_gpu:
            # Inference takes every core: OpenCV's own threads on top would make both wait for each other
            # (on 2 cores a folder took 0.91x the time, one photo 0.95x, with one OpenCV thread per caller).
            cv2.setNumThreads(1)
        try:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="render") as writer:
                writer.submit(load_template)  # one-time costs, paid while the first photo is scored
                if self.options.overlay:
                    writer.submit(load_legend_font)
                if self.options.trace:
                    writer.submit(load_thinning)
                for path, stem, decoded in self._decoded_ahead(photos, events, workers):
                    pending.append((path, self._start(path, stem, decoded, writer)))
                    if len(pending) > workers:
                        self._record(*pending.pop(0), result, events)
                cv2.setNumThreads(opencv_threads)  # inference is over: what is left to write gets every core
                while pending:
                    self._record(*pending.pop(0), result, events)
        except KeyboardInterrupt:
            # Leaving the block waited for the writer: photos whose outputs are whole are done, so listed.
            for path, outcome in pending:
                if outcome.done() and outcome.exception() is None:
                    self._record(path, outcome, result, events)
            raise
        finally:  # stopped by Ctrl-C or SIGTERM too: the summary lists what was done
            self._shrinker.shutdown(cancel_futures=True)  # photos decoded ahead and never scored
            self._shrinker = None
            cv2.setNumThreads(opencv_threads)
            self._write_job_files(result.rows)
        return result

    def _start(
        self, path: Path, stem: str, decoded: _Decoded | CrackError | dict[str, Any], writer: ThreadPoolExecutor
    ) -> Future:
        """The photo's (report, kept) as a future: scored here, rendered and written on ``writer``."""
        outcome: Future = Future()
        if isinstance(decoded, dict):
            outcome.set_result((decoded, True))
            return outcome
        try:
            if isinstance(decoded, CrackError):
                raise decoded
            # The overlay's picture does not depend on the scores: shrink it on the writer while scoring.
            base = writer.submit(self._overlay_base, decoded)
            scored = self._score(decoded)
        except CrackError as exc:
            outcome.set_exception(exc)
            return outcome
        return writer.submit(lambda: (self._render(path, stem, decoded, base.result(), *scored), False))

    def _record(self, path: Path, outcome: Future, result: JobResult, events: ScanEvents) -> None:
        try:
            report, kept = outcome.result()
        except OutputError:
            raise  # the next photo's outputs would fail the same way: stop with one line
        except CrackError as exc:
            self._failed(str(path), str(exc), result, events)
        else:
            result.kept += kept
            result.scanned += not kept
            result.with_cracks += report["summary"]["crack_windows"] > 0
            result.rows.append(summary_row(report, "kept" if kept else "scanned"))
            self._first_report = self._first_report or report
            events.photo_scanned(report)
        events.advanced(1)
        if time.monotonic() >= self._page_due:
            self._write_job_files(result.rows)

    def _kept_reports(self, photos: list[tuple[Path, str]], events: ScanEvents) -> list[dict[str, Any] | None]:
        """Per photo, its earlier report where it is still true (None: scan it); says why others are redone."""
        if self.options.force:
            return [None] * len(photos)
        kept: list[dict[str, Any] | None] = []
        redone: Counter[str] = Counter()
        for path, stem in photos:
            report, why = self._reusable(path, stem)
            kept.append(report)
            if why is not None:
                redone[why] += 1
        for why, count in redone.items():
            events.warning(f"{self.out}: scanning {count} photo{'s' * (count > 1)} again: {why}")
        return kept

    @staticmethod
    def _failed(image: str, message: str, result: JobResult, events: ScanEvents) -> None:
        result.failed += 1
        result.rows.append(failed_row(image, message))
        events.photo_failed(image, message)

    def _decoded_ahead(
        self, photos: list[tuple[Path, str]], events: ScanEvents, workers: int
    ) -> Iterator[tuple[Path, str, _Decoded | CrackError | dict[str, Any]]]:
        """Yield photos with their pixels (or their earlier report, kept), decoding (and starting to shrink)
        the next ``workers`` while this one is scanned.

        With those being written, at most 2·workers + 1 photos are in memory at once, whatever the length
        of the list.
        """
        kept = self._kept_reports(photos, events)
        todo = [report is None for report in kept]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode") as pool:
            futures: dict[int, Future] = {}

            def submit(index: int) -> None:
                if index < len(photos) and index not in futures:
                    early, self._first = self._first, None
                    if early and early[0] == photos[index][0]:
                        futures[index] = early[1]
                    else:
                        futures[index] = pool.submit(self._decode_and_prepare, photos[index][0])

            for index, (path, stem) in enumerate(photos):
                if todo[index]:
                    submit(index)
                for following in [j for j in range(index + 1, len(photos)) if todo[j]][:workers]:
                    submit(following)
                report = kept[index]
                if index in futures or report is None:
                    yield path, stem, futures.pop(index).result()
                else:
                    yield path, stem, report

    def _decode(self, path: Path) -> _Decoded | CrackError:
        started = time.perf_counter()
        try:
            provenance = self._provenance(path)
        except OSError:
            provenance = {}  # the read below fails and says why
        try:
            header = read_header(path)
            size = header.size
            reduce = self.reduce if dense_applies(size, self.settings, self.predictor.meta.image_size) else 1
            rgb = read_rgb(path, self.options.max_pixels, reduce)
            if (rgb.shape[1], rgb.shape[0]) != (-(-size[0] // reduce), -(-size[1] // reduce)):
                if reduce > 1:  # the header disagrees with the pixels: take no chances, decode in full
                    rgb = read_rgb(path, self.options.max_pixels)
                size = (rgb.shape[1], rgb.shape[0])
        except CrackError as exc:
            return exc
        except MemoryError:
            return ImageReadError(f"{path}: not enough memory to decode it; lower `max_pixels` or scan it alone")
        return _Decoded(rgb, size, time.perf_counter() - started, provenance, header.facts)

    def _decode_and_prepare(self, path: Path) -> _Decoded | CrackError:
        return self._prepare(self._decode(path))

    def _prepare(self, decoded: _Decoded | CrackError) -> _Decoded | CrackError:
        """``decoded`` with its shrinking to the model's scale started (once), where it applies."""
        if isinstance(decoded, _Decoded) and not decoded.preparing and self._shrinker is not None:
            decoded.preparing = True
            decoded.prepared = prepare_patches(
                self.predictor, decoded.rgb, decoded.size, self.settings, self.mode, self._shrinker
            )
        return decoded

    def _report_path(self, stem: str) -> Path:
        return self.out / f"{stem}.json"

    def _score(self, decoded: _Decoded) -> tuple[WindowScores, float]:
        """The window scores of a photo, and the seconds they took."""
        started = time.perf_counter()
        self._prepare(decoded)  # the first photo, decoded before the job ran
        scores = scan_image(self.predictor, decoded.rgb, decoded.size, self.settings, self.mode, decoded.prepared)
        decoded.prepared = None  # its planes are no longer needed while the photo is written
        return scores, time.perf_counter() - started

    def _overlay_base(self, decoded: _Decoded) -> np.ndarray | None:
        """The photo at the overlay's size (None without an overlay)."""
        if not self.options.overlay:
            return None
        return viewing_pixels(decoded.rgb, viewing_size(*decoded.size, self.options.overlay_max_side))

    def _render(
        self,
        path: Path,
        stem: str,
        decoded: _Decoded,
        base: np.ndarray | None,
        scores: WindowScores,
        inference_s: float,
    ) -> dict[str, Any]:
        """Heatmap, regions, overlay and report of a scored photo, written; the report."""
        options, settings, out = self.options, self.settings, self.out
        width, height = decoded.size
        crack = scores.probs[:, self.crack_index]
        inferred = time.perf_counter()

        cell = heat_cell(settings.patch, settings.stride)
        heat = crack_heatmap(scores.windows, crack, width, height, cell)
        regions, mask = crack_regions(
            scores.windows,
            crack,
            options.threshold,
            width,
            height,
            cell,
            settings.stride,
            region_max_side(settings.patch),
        )
        summary = summarize(crack, options.threshold, regions)
        cleared = scores.cleared  # windows the network called crack that the line check did not; None: not run
        summary["line_check_cleared"] = None if cleared is None else int(cleared.sum())
        outputs = {"report": str(self._report_path(stem)), "heatmap": str(out / f"{stem}_heatmap.png")}
        tracing = time.perf_counter()
        extractor = self.extractor
        traced = self._trace(path, decoded, scores, crack, regions, extractor) if extractor is not None else None
        trace_s = time.perf_counter() - tracing if traced is not None else 0.0
        if traced is not None:
            self._add_traces(summary, traced, regions)
            outputs["cracks"] = str(out / f"{stem}_cracks.png")
            write_image(Path(outputs["cracks"]), traced.mask.view(np.uint8) * np.uint8(255), bilevel=1)
        levels = heat_levels(heat)  # the heatmap file and the overlay's colours
        write_image(Path(outputs["heatmap"]), levels)
        if base is not None:
            outputs["overlay"] = str(out / f"{stem}_overlay.jpg")
            caption = (
                f"{summary['crack_windows']} of {summary['windows']} windows crack, max {summary['max_crack_prob']:.2f}"
            )
            picture = render_overlay(base, levels, mask, options.threshold, caption)
            if traced is not None:
                draw_traces(picture, [line.points for line in traced.lines], picture.shape[1] / width)
            write_image(Path(outputs["overlay"]), picture, jpeg_quality=90)
            outputs["thumbnail"] = str(out / f"{stem}{THUMBNAIL_SUFFIX}")
            write_image(Path(outputs["thumbnail"]), thumbnail(picture), jpeg_quality=80)
        rendered = time.perf_counter()

        report = {
            "image": str(path),
            "width": width,
            "height": height,
            "model": str(self.predictor.source),
            "runtime": self.predictor.describe(),
            "classes": list(self.predictor.meta.classes),
            "crack_class": self.crack_class,
            "patch": settings.patch,
            "stride": settings.stride,
            "mode": scores.mode,
            "threshold": options.threshold,
            "line_check": cleared is not None,
            "heatmap_cell": cell,
            "windows": [
                {"x": w.x, "y": w.y, "size": w.size, "probs": row, **({"line_check_cleared": True} if lowered else {})}
                for w, row, lowered in zip(
                    scores.windows,
                    np.round(scores.probs.astype(np.float64), 4).tolist(),
                    np.zeros(len(scores.windows), bool) if cleared is None else cleared,
                    strict=True,
                )
            ],
            "summary": summary,
            "outputs": outputs,
            "timing_s": {
                "decode": round(decoded.seconds, 4),
                "inference": round(inference_s, 4),
                "render": round(rendered - inferred - trace_s, 4),
                **({"trace": round(trace_s, 4)} if traced is not None else {}),
            },
            **({"centerlines": traced.geojson(options.scale)} if traced is not None else {}),
            "exif": decoded.facts.as_dict(),
            "crackcli_version": __version__,
            "provenance": decoded.provenance,
        }
        atomic_write_bytes(self._report_path(stem), json.dumps(report).encode())
        return report

    def _trace(
        self,
        path: Path,
        decoded: _Decoded,
        scores: WindowScores,
        crack: np.ndarray,
        regions: list[Region],
        extractor: Extractor,
    ) -> PhotoTraces:
        """The photo's cracks traced at its own resolution (decoded again in grey when it was decoded smaller)."""
        width, height = decoded.size
        if not regions:
            return PhotoTraces(np.zeros((height, width), bool), [], [])
        if decoded.rgb.shape[:2] == (height, width):
            gray = cv2.cvtColor(decoded.rgb, cv2.COLOR_RGB2GRAY)
        else:
            gray = read_gray(path, self.options.max_pixels)
            if gray.shape != (height, width):
                raise ImageReadError(f"{path}: the photo changed while it was scanned; scan it again")
        return trace_photo(gray, scores.windows, crack, self.options.threshold, regions, extractor)

    def _add_traces(self, summary: dict[str, Any], traced: PhotoTraces, regions: list[Region]) -> None:
        """The photo's and each region's measurements, into the report's summary."""
        scale = self.options.scale
        summary["trace"] = measure(traced.lines, scale)
        for region, figures in zip(summary["regions"], traced.region_figures(regions, scale)):
            region["trace"] = figures

    def _write_job_files(self, rows: list[dict[str, Any]]) -> None:
        """The job's table, page and map as they stand (the page and map also cover other shards' tables)."""
        started = time.monotonic()
        table = self.out / self.options.summary_name
        write_summary(table, rows)
        refresh_job_files(self.out, {table: rows}, job_facts(self._first_report))
        # A page of 10,000 photos takes about a second to write: spaced out so it costs under 5%.
        took = time.monotonic() - started
        self._page_due = started + max(PAGE_INTERVAL_S, PAGE_SHARE_INVERSE * took)
