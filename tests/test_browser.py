"""The report in a real browser: Debian's chromium, driven headless by playwright."""

import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
# Without these, chromium tries to reach Google's services, which a closed network refuses.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"),
]


def test_the_report_loads_sorts_and_shows_every_table_and_plot(smoke_run):
    from playwright.sync_api import sync_playwright

    out, _ = smoke_run
    errors = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto((out / "index.html").resolve().as_uri())
        assert page.locator("p.banner").is_visible()
        assert "judged on real data" in page.locator("p.banner").inner_text()
        boards = page.locator("h3", has_text="Leaderboard at")
        assert boards.count() == 4
        for i in range(page.locator("table.sortable").count()):
            assert page.locator("table.sortable").nth(i).is_visible()
        plots = page.locator("figure.plot svg")  # metric against parameters, latency, learning curves
        assert plots.count() == 3 and all(plots.nth(i).is_visible() for i in range(3))

        # Sorting: click the method column of the first leaderboard twice; the order flips.
        table = page.locator("table.sortable").nth(1)
        methods = lambda: table.locator("tr td:nth-child(2)").all_inner_texts()  # noqa: E731
        table.locator("th", has_text="method").click()
        first = methods()
        table.locator("th", has_text="method").click()
        assert methods() == list(reversed(first)) and first == sorted(first)

        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
        browser.close()
    assert errors == []


SAMPLES = sorted((Path(__file__).resolve().parent.parent / "reports" / "samples").glob("*/index.html"))


@pytest.mark.parametrize("page_path", SAMPLES, ids=[p.parent.name for p in SAMPLES])
def test_every_committed_sample_report_loads_without_errors(page_path):
    from playwright.sync_api import sync_playwright

    errors = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(page_path.as_uri())
        assert page.locator("p.banner").is_visible()
        assert page.locator("h3", has_text="Leaderboard at").count() >= 1
        plots = page.locator("figure.plot svg")
        assert plots.count() >= 2 and all(plots.nth(i).is_visible() for i in range(plots.count()))
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"sample-{page_path.parent.name}.png"), full_page=True)
        browser.close()
    assert errors == []
