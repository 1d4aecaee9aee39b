"""The job page in a real browser: headless Chromium opens index.html from disk, as a person would.

Needs the `chromium` Debian package (`.ci/run` installs it where it is missing); skipped without it.
"""

import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import texture_photo
from PIL import Image

from crackcli.io.images import write_image
from crackcli.scan.api import ScanOptions, scan_photos

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (apt-get install chromium)")

PHOTOS = 60


@pytest.fixture(scope="module")
def scanned(crack_model, tmp_path_factory):
    """A scan folder of 60 generated photos (every third with a crack) and one broken file."""
    _, model, _ = crack_model
    root = tmp_path_factory.mktemp("browser")
    photos = root / "photos"
    photos.mkdir()
    for k in range(PHOTOS):
        cracked = (48,) if k % 3 == 0 else ()
        write_image(photos / f"photo_{k:02d}.png", texture_photo(128, 96, seed=k, crack_rows=cracked))
    (photos / "zz_broken.jpg").write_bytes(b"truncated")
    out = root / "out"
    scan_photos([str(photos)], ScanOptions(model=model, out=out, patch=64))
    return out


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


class Visit:
    """A page opened from disk, with every console message, script error and request it made."""

    def __init__(self, browser, url: str, **context) -> None:
        self.context = browser.new_context(**context)
        self.page = self.context.new_page()
        self.messages: list[tuple[str, str]] = []
        self.requests: list[str] = []
        self.page.on("console", lambda message: self.messages.append((message.type, message.text)))
        self.page.on("pageerror", lambda error: self.messages.append(("pageerror", str(error))))
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.goto(url)
        self.page.wait_for_load_state("load")

    def wait_until(self, expression: str, seconds: float = 10.0) -> None:
        """Poll ``expression`` in the page (its policy forbids the eval that wait_for_function uses)."""
        deadline = time.monotonic() + seconds
        while not self.page.evaluate(expression):
            assert time.monotonic() < deadline, f"still false after {seconds} s: {expression}"
            time.sleep(0.02)

    def names(self) -> list[str]:
        return [Path(text).name for text in self.page.locator("#rows td.name").all_inner_texts()]

    def close(self) -> None:
        self.context.close()


def test_the_job_page_works_offline_and_shows_every_photo(scanned, browser, tmp_path):
    url = (scanned / "index.html").as_uri()
    visit = Visit(browser, url)
    page = visit.page
    assert page.locator("#rows tr").count() == 50  # the first page
    assert page.locator("#page-of").inner_text() == f"page 1 of 2 ({PHOTOS + 1} photos)"
    thumbnails = page.locator("img.thumb")
    thumbnails.first.scroll_into_view_if_needed()
    visit.wait_until("document.querySelector('img.thumb').naturalWidth > 0")

    shot = tmp_path / "page.png"
    page.screenshot(path=str(shot))
    with Image.open(shot) as picture:
        pixels = np.asarray(picture.convert("L"), np.float32)
    assert pixels.shape[1] >= 1000 and pixels.std() > 20  # a page with content, not a blank one
    box = page.locator("#photos-table").bounding_box()
    assert box and box["y"] < pixels.shape[0] and box["height"] > 200  # the table is in the screenshot

    # Every photo is a row once all are shown; the broken one says why.
    page.goto(url + "#per=all")
    page.reload()
    assert len(visit.names()) == PHOTOS + 1
    assert sorted(visit.names()) == sorted([f"photo_{k:02d}.png" for k in range(PHOTOS)] + ["zz_broken.jpg"])

    # Nothing went anywhere but the folder, and nothing complained.
    assert visit.messages == []
    assert all(url.startswith(scanned.as_uri() + "/") for url in visit.requests), visit.requests
    visit.close()


def test_the_table_sorts_filters_and_opens_a_photo_with_its_regions(scanned, browser):
    visit = Visit(browser, (scanned / "index.html").as_uri() + "#per=all")
    page = visit.page
    fractions = [float(t or "nan") for t in page.locator("#rows td.num:nth-of-type(3)").all_inner_texts()[:5]]
    assert fractions == sorted(fractions, reverse=True) and fractions[0] > 0  # most cracked first

    page.get_by_role("button", name="photo").click()
    assert visit.names() == sorted(visit.names())
    page.get_by_role("button", name="photo").click()
    assert visit.names() == sorted(visit.names(), reverse=True)

    page.fill("#filter", "photo_1")
    assert visit.names() == [f"photo_{k}.png" for k in range(19, 9, -1)]
    page.fill("#filter", "")
    page.select_option("#status", "failed")
    assert visit.names() == ["zz_broken.jpg"] and "zz_broken.jpg" in page.locator("#rows tr").inner_text()
    page.select_option("#status", "cracks")
    cracked = visit.names()
    assert cracked and all(int(name[6:8]) % 3 == 0 for name in cracked)

    # The view is in the address: a reload keeps it.
    page.reload()
    assert visit.names() == cracked

    row = page.locator("#rows tr").first
    regions = int(row.locator("td.num button").inner_text())
    row.locator("td.num button").click()
    dialog = page.locator("#detail")
    assert dialog.is_visible() and dialog.locator("h2").inner_text().endswith(cracked[0])
    visit.wait_until("document.querySelector('#detail-picture img').naturalWidth > 0")
    assert dialog.locator(".box").count() == regions >= 1
    facts = dialog.locator("dl").inner_text()
    assert "crack windows" in facts
    assert re.search(r"cleared by the line check\s+\d+ windows?", facts)
    assert visit.messages == []
    visit.close()


def test_the_job_page_fits_a_phone(scanned, browser):
    visit = Visit(browser, (scanned / "index.html").as_uri(), viewport={"width": 390, "height": 844}, is_mobile=True)
    page = visit.page
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390  # no sideways scrolling of the page; the table scrolls in its own box
    assert page.locator("#rows tr").count() == 50 and visit.messages == []
    visit.close()


def test_the_eval_page_shows_its_figures_and_mistakes_offline(crack_model, browser, tmp_path):
    from typer.testing import CliRunner

    from crackcli.cli.app import app

    checkpoint, _, patches = crack_model
    out = tmp_path / "eval"
    # A threshold this high makes the model miss cracks, so there are mistakes to show.
    command = ["eval", str(checkpoint), str(patches / "val"), "--out", str(out), "--threshold", "0.99999", "--quiet"]
    result = CliRunner().invoke(app, [*command, "--workers", "0"])
    assert result.exit_code == 0, result.output
    visit = Visit(browser, (out / "index.html").as_uri())
    page = visit.page
    visit.wait_until("[...document.images].every((image) => image.complete)")
    figures = page.locator(".figures img")
    assert figures.count() == 3
    assert all(page.evaluate("(img) => img.naturalWidth", figures.nth(k).element_handle()) > 300 for k in range(3))
    mistakes = page.locator("#mistakes tbody tr")
    assert mistakes.count() >= 1 and page.locator("#per-class tbody tr").count() == 2
    assert visit.messages == [] and all(url.startswith(out.as_uri() + "/") for url in visit.requests)
    visit.close()
