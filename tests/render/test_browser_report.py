"""The HTML report in a real browser: headless Chromium (Debian's /usr/bin/chromium, driven by Playwright).

Checks that the table, the hourglass and the graph render (present, visible, non-empty boxes), that the
page logs no console error and makes no request besides its own file, that the depth buttons and row
toggles collapse the table, and that a module called `<script>` stays text. Screenshots are saved
under test-artifacts/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import seeds
from torch import nn

import aelab
from aelab.render.html import render_html

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.skipif(
    not Path(CHROMIUM).exists() or shutil.which("dot") is None,
    reason="needs Debian chromium and graphviz (scripts/setup_system.sh installs both)")]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


def _open(browser: Any, page_html: str, name: str) -> tuple[Any, list[str], list[str], list[str]]:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.html"
    path.write_text(page_html, encoding="utf-8")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    requests: list[str] = []
    dialogs: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    assert requests == [path.as_uri()]
    return page, errors, requests, dialogs


def _box(page: Any, selector: str) -> dict[str, float]:
    handle = page.locator(selector).first
    assert handle.is_visible(), selector
    box = handle.bounding_box()
    assert box is not None and box["width"] > 50 and box["height"] > 50, (selector, box)
    return dict(box)


def test_seed_vae_report_renders(browser: Any) -> None:
    report = aelab.inspect(seeds.SeqVAE(), (4, 50, 201))
    page, errors, requests, dialogs = _open(browser, render_html(report), "report_SeqVAE")
    try:
        _box(page, "#layers")
        _box(page, "#hourglass svg")
        _box(page, "#graph svg")
        assert page.locator("#verdict").inner_text().startswith("No dimensional compression")
        rows = page.locator("#layers tbody tr")
        assert rows.count() == len(report.summary.rows)
        assert page.locator("#layers tbody tr:visible").count() == len(report.summary.rows)  # 41 rows: all open
        # the drawings really hold the model: bar labels and graph nodes are there as text
        assert "12,800" in page.locator("#hourglass svg").inner_html()
        assert page.locator("#graph svg g.node").count() >= 30
        page.screenshot(path=str(ARTIFACTS / "report_SeqVAE.png"), full_page=True)

        # depth 1 shows only encoder and decoder; a click on encoder's toggle opens its children
        page.click("button[data-depth='1']")
        assert page.locator("#layers tbody tr:visible").count() == 2
        encoder = next(r.cid for r in report.summary.rows if r.name == "encoder")
        page.click(f"#layers tr[data-cid='{encoder}'] .tog")
        top = sum(1 for r in report.summary.rows if r.depth == 2 and r.name.startswith("encoder."))
        assert page.locator("#layers tbody tr:visible").count() == 2 + top
        page.screenshot(path=str(ARTIFACTS / "report_SeqVAE_collapsed.png"))
        assert errors == [] and dialogs == [] and len(requests) == 1
    finally:
        page.close()


def test_hostile_names_stay_text(browser: Any) -> None:
    model = nn.Sequential()
    model.add_module("<script>alert(1)</script>", nn.Linear(6, 3))
    model.add_module("<img src=x onerror=alert(2)>", nn.Linear(3, 6))
    page, errors, requests, dialogs = _open(browser, render_html(aelab.inspect(model, (2, 6))), "report_hostile")
    try:
        assert "<script>alert(1)</script>" in page.locator("#layers").inner_text()
        assert page.locator("script").count() == 1 and page.locator("img").count() == 0
        assert dialogs == [] and errors == [] and len(requests) == 1
    finally:
        page.close()
