"""The job page and map at the size of a large inspection: writing them for N photos, their sizes, and
(with Chromium) how long the page takes to show its first rows and to filter them all.

The rows are made up (a summary table of N scanned photos with GPS and three regions each), so the
figures are those of the report code alone, not of scanning.

    python benchmarks/report_scale.py --photos 10000 [--browser /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from crackcli.report.job_files import refresh_job_files
from crackcli.report.summary import write_summary


def made_up_rows(folder: Path, count: int) -> list[dict]:
    boxes = json.dumps([[100, 200, 548, 648, 0.91], [900, 1200, 1348, 1648, 0.77], [3000, 10, 3448, 458, 0.66]])
    return [
        {
            "image": f"/data/flight{k // 500}/DJI_{k:05d}.JPG",
            "status": "scanned",
            "width": 8000,
            "height": 6000,
            "windows": 3286,
            "crack_windows": k % 97,
            "crack_fraction": (k % 97) / 3286,
            "max_crack_prob": (k % 100) / 100,
            "regions": 3,
            "region_boxes": boxes,
            "taken": "2026-10-14T10:12:05",
            "camera": "DJI FC3582",
            "latitude": 47.3 + k * 1e-5,
            "longitude": 8.5 + k * 1e-5,
            "altitude": 400.0,
            "report": str(folder / f"DJI_{k:05d}.json"),
            "overlay": str(folder / f"DJI_{k:05d}_overlay.jpg"),
            "error": "",
            "seconds": 1.2,
        }
        for k in range(count)
    ]


def browser_figures(page_file: Path, chromium: str) -> tuple[float, float]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page()
        start = time.perf_counter()
        page.goto(page_file.as_uri())
        page.wait_for_selector("#rows tr")
        shown = time.perf_counter() - start
        start = time.perf_counter()
        page.fill("#filter", "DJI_099")  # DJI_09900 to DJI_09999
        while "(100 photos)" not in page.inner_text("#page-of"):  # the page forbids eval, so no wait_for_function
            time.sleep(0.005)
        filtered = time.perf_counter() - start
        browser.close()
    return shown, filtered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--browser", default=shutil.which("chromium"), help="Chromium for the page timings")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rows = made_up_rows(folder, args.photos)
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            write_summary(folder / "summary.csv", rows)
            refresh_job_files(folder, {folder / "summary.csv": rows}, job={})
            times.append(time.perf_counter() - start)
        page, geo = folder / "index.html", folder / "findings.geojson"
        print(
            f"{args.photos} photos: summary.csv + index.html + findings.geojson in {statistics.median(times):.2f} s "
            f"(median of {args.runs}); index.html {page.stat().st_size / 1e6:.1f} MB, "
            f"findings.geojson {geo.stat().st_size / 1e6:.1f} MB"
        )
        if args.browser and args.photos >= 1000:
            shown, filtered = browser_figures(page, args.browser)
            print(f"Chromium: first 50 rows shown {shown:.2f} s after opening; filtering all rows {filtered:.2f} s")


if __name__ == "__main__":
    main()
