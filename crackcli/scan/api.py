"""The scan API: what `crack scan` does, for library callers, benchmarks and the command line alike.

    from crackcli.scan.api import ScanOptions, plan_scan

    scan = plan_scan(["photos/"], ScanOptions(out=Path("runs/scan/bridge"), threshold=0.7))
    result = scan.run()           # reports, overlays and summary.csv in runs/scan/bridge

Inputs (files, folders, globs) become a sorted list of photos; the model is ``options.model``, else
``$CRACK_MODEL``, else the shipped default; window size and stride default to the model's; the job
writes each photo's outputs as it goes and skips photos whose report is already there.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from crackcli.errors import CrackError, UsageError
from crackcli.io.inputs import collect_inputs, mirrored_names, take_shard
from crackcli.io.run_dirs import unique_run_dir
from crackcli.model.predictors import Predictor, load_predictor
from crackcli.model.shipped import default_model, model_folders
from crackcli.scan.events import ScanEvents
from crackcli.scan.job import JobResult, ScanJob
from crackcli.scan.options import ScanOptions

SCAN_RUNS = Path("runs/scan")

__all__ = ["JobResult", "PlannedScan", "ScanEvents", "ScanOptions", "open_model", "plan_scan", "scan_photos"]


def open_model(model: Path | None = None, device: str = "auto", wait: bool = True) -> Predictor:
    """The predictor for ``model``, else ``$CRACK_MODEL``, else the shipped default model; with
    ``wait=False`` its runtime may still be starting (see ``load_predictor``).

    Nothing can be scanned without a model, so any failure to load one is a usage error.
    """
    found = model or default_model()
    if found is None:
        raise UsageError(
            f"no default model in {' or '.join(str(f) for f in model_folders())}; "
            "pass `model` FILE (.onnx from crack export or a .pt checkpoint) or set $CRACK_MODEL"
        )
    with _failures_as_usage_errors():
        return load_predictor(found, device, wait)


@contextmanager
def _failures_as_usage_errors() -> Iterator[None]:
    try:
        yield
    except UsageError:
        raise
    except CrackError as exc:
        raise UsageError(str(exc)) from None


@dataclass
class PlannedScan:
    """A scan ready to run: the model loaded, the photos found, the output folder chosen."""

    job: ScanJob
    photos: list[tuple[Path, str]]  # (photo, output stem), in scan order
    input_failures: list[tuple[str, str]]  # (input, message) for inputs that named no photo

    @property
    def out(self) -> Path:
        return self.job.out

    @property
    def predictor(self) -> Predictor:
        return self.job.predictor

    def run(self, events: ScanEvents | None = None) -> JobResult:
        """Scan every photo; failures are reported to ``events`` and counted, the others still scanned."""
        return self.job.run(self.photos, events, self.input_failures)


def plan_scan(sources: Sequence[str], options: ScanOptions | None = None) -> PlannedScan:
    """Load the model, find the photos of ``sources`` (this shard's share) and pick the output folder."""
    options = options or ScanOptions()
    predictor = open_model(options.model, options.device, wait=False)  # its metadata read, the rest starting
    target = options.out or SCAN_RUNS / "exp"
    try:
        paths, failures = collect_inputs(sources, target)
        if not paths and not failures:
            raise UsageError(f"no photos found in {', '.join(sources)}; pass image files or folders holding them")
        photos = take_shard(list(zip(paths, mirrored_names(paths, sources))), *options.shard)
        job = ScanJob(predictor, options, target)  # checks the settings against the model
    except UsageError:
        with _failures_as_usage_errors():  # a model that cannot run is said first, as when it loaded at once
            predictor.ready()
        raise
    # While the model file's full check and the runtime finish starting; a new run folder has no report.
    job.decode_first(photos, reports_possible=options.out is not None)
    with _failures_as_usage_errors():
        predictor.ready()
    if options.out is None:  # a new run folder, made only once the model and every setting passed their checks
        job.out = unique_run_dir(SCAN_RUNS, "exp")
    return PlannedScan(job, photos, failures)


def scan_photos(
    sources: Sequence[str], options: ScanOptions | None = None, events: ScanEvents | None = None
) -> JobResult:
    """Scan ``sources`` as `crack scan` does, in one call."""
    return plan_scan(sources, options).run(events)
