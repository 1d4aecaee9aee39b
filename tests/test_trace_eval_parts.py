"""benchmarks/trace_eval.py's set parts: settings chosen on ``:select`` are reported on ``:report``, so the
two must split a set's source photos, never one photo's crops."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def trace_eval():
    spec = importlib.util.spec_from_file_location("trace_eval", BENCHMARKS / "trace_eval.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _set(root: Path, stems: list[str]) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for stem in stems:
        (root / "images" / f"{stem}.jpg").touch()
        (root / "masks" / f"{stem}.png").touch()
    return root


def test_parts_split_the_source_photos_with_their_crops_together(tmp_path: Path, trace_eval) -> None:
    stems = [f"{photo}-{crop}" for photo in range(11100, 11160) for crop in (1, 4)]
    stems += [f"DSC{photo:05d}{suffix}" for photo in range(500, 560) for suffix in ("", "b")]
    stems += [f"{number:03d}" for number in range(1, 121)]
    root = _set(tmp_path / "set", stems)
    select = {image.stem for image, _ in trace_eval.photos_of(root, "select")}
    report = {image.stem for image, _ in trace_eval.photos_of(root, "report")}
    assert select | report == set(stems) and not select & report
    assert {trace_eval.source_photo(s) for s in select}.isdisjoint({trace_eval.source_photo(s) for s in report})
    assert 0.2 < len(select) / len(stems) < 0.45  # about a third, by a hash of the source photo's name
    assert len(trace_eval.photos_of(root)) == len(stems)


def test_a_part_is_named_after_the_set_or_refused(trace_eval) -> None:
    assert trace_eval.set_and_part("deepcrack") == ("deepcrack", None)
    assert trace_eval.set_and_part("crackforest:report") == ("crackforest", "report")
    with pytest.raises(SystemExit, match="must be one of select, report"):
        trace_eval.set_and_part("deepcrack:test")
