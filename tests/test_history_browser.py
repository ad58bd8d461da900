"""The history site in a real browser (Debian's chromium, headless, through playwright, as
tests/test_browser.py drives the report): the timeline renders, the synthesised drop is
marked at its night, the changes-only view hides what never changed, a night's report
opens from its link, and the feed parses as Atom."""

import json
import re

import pytest
from history_nights import DROP_FROM, NIGHTS, write_nights
from test_browser import ARTIFACTS, CHROMIUM, FLAGS

from suite import cli

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    nights = write_nights(tmp_path_factory.mktemp("nights"))
    out = tmp_path_factory.mktemp("site") / "site"
    assert cli.main(["history", *map(str, nights), "--out", str(out)]) == 0
    return out, json.loads((out / "regressions.json").read_text())


def centre_x(locator) -> float:
    box = locator.bounding_box()
    return box["x"] + box["width"] / 2


def test_the_timeline_renders_and_the_drop_is_marked_at_its_night(site):
    from playwright.sync_api import sync_playwright

    out, doc = site
    (step,) = [c for c in doc["changes"] if c["kind"] == "row"]
    errors = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto((out / "index.html").resolve().as_uri())
        assert page.locator("p.banner").is_visible() and "1 step in the rows" in page.locator("p.banner").inner_text()

        # The claims' timeline: one mark per night on every claim; the lost claim framed at the fifth.
        timeline = page.locator("table#timeline")
        assert timeline.is_visible()
        claim = timeline.locator('tr[data-claim="t2.rpg-gt-baselines"]')
        marks = claim.locator("td.mark")
        assert marks.count() == NIGHTS and all(marks.nth(i).is_visible() for i in range(NIGHTS))
        changed = claim.locator("td.mark.change")
        assert changed.count() == 1 and changed.get_attribute("data-night") == str(DROP_FROM)
        assert changed.get_attribute("data-verdict") == "not reproduced" and changed.inner_text() == "✗"
        assert claim.locator(f'td.mark[data-night="{DROP_FROM - 1}"]').get_attribute("data-verdict") == "reproduced"

        # The row's series: the step's marker stands at the fifth night's tick, not the fourth's or sixth's.
        marker = page.locator(f'[id="step-{step["id"]}"]')
        assert marker.count() == 1 and marker.bounding_box()["height"] > 20  # a vertical line: no width to be "visible"
        figure = page.locator("figure.series", has=marker)
        ticks = {
            n: centre_x(figure.locator("svg text", has_text=re.compile(rf"^{n}$")).last) for n in range(1, NIGHTS + 1)
        }
        spacing = ticks[2] - ticks[1]
        assert spacing > 10 and abs(centre_x(marker) - ticks[DROP_FROM]) < spacing / 4
        assert step["line"] in figure.locator("figcaption").inner_text()

        # Changes only: the claims that never changed and the rows without a step are hidden.
        steady = timeline.locator('tr[data-claim="t2.block-gt-plain"]')
        assert steady.is_visible()
        page.locator("#changes-only").check()
        assert not steady.is_visible() and claim.is_visible()
        assert page.locator("figure.series.steady").first.is_hidden() and figure.is_visible()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "history.png"), full_page=True)

        # Each night links to its own report, which opens from disk.
        page.locator("table#nights a", has_text="report").nth(DROP_FROM - 1).click()
        assert page.url.endswith(f"nights/{step['night']}/index.html")
        assert page.locator("p.banner").is_visible()

        # The feed, parsed by the browser's XML parser as an Atom document.
        feed = (out / "regressions.xml").read_text()
        parsed = page.evaluate(
            """text => {
                const doc = new DOMParser().parseFromString(text, "application/xml");
                const atom = "http://www.w3.org/2005/Atom";
                return {
                    error: doc.getElementsByTagName("parsererror").length,
                    root: doc.documentElement.localName, ns: doc.documentElement.namespaceURI,
                    entries: doc.getElementsByTagNameNS(atom, "entry").length,
                    titles: Array.from(doc.getElementsByTagNameNS(atom, "entry")).map(
                        e => e.getElementsByTagNameNS(atom, "title")[0].textContent),
                };
            }""",
            feed,
        )
        browser.close()
    assert parsed["error"] == 0 and parsed["root"] == "feed" and parsed["ns"] == "http://www.w3.org/2005/Atom"
    assert parsed["entries"] == len(doc["changes"])
    assert any(t.startswith("worse: table2 resnet34-cifar/rpg@11M top1") for t in parsed["titles"])
    assert errors == []
