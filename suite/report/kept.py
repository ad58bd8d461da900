"""What a re-render keeps that it cannot remake.

A report folder's records say what its page shows; the page says which records it was
drawn from (a digest in a <meta> tag). Rendering where matplotlib is missing cannot draw
figures, and must not delete the ones a render with matplotlib drew (a committed sample
re-rendered on a reviewer's machine lost them):

- the previous page drawn from the same records: its figures are lifted into the new page,
  each block as it was, marked as kept;
- a previous page with figures of other records: those figures describe numbers this page
  no longer shows, so they are not lifted; the page is moved aside (index.previous.html),
  not deleted.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from markupsafe import Markup, escape

PREVIOUS = "index.previous.html"
_DIGEST = re.compile(r'<meta name="rpg-bench-records" content="([0-9a-f]{64})">')
_BLOCK = re.compile(r"<!-- figures (?P<name>.*?) -->(?P<body>.*?)<!-- /figures (?P=name) -->", re.S)
KEPT_NOTE = Markup(
    '<p class="meta">Figures kept from the page this one replaced, drawn from these same records: '
    "matplotlib is not installed here to redraw them.</p>"
)


def digest(recs: list[dict]) -> str:
    """A fingerprint of the records a page (or a comparison) was drawn from: any change to
    any of them changes it."""
    text = json.dumps(sorted(recs, key=lambda r: r["key"]), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def meta(records_digest: str) -> Markup:
    return Markup('<meta name="rpg-bench-records" content="{}">').format(records_digest)


def begin(experiment: str) -> Markup:
    return Markup("<!-- figures {} -->").format(experiment)


def end(experiment: str) -> Markup:
    return Markup("<!-- /figures {} -->").format(experiment)


def figures(page: Path, records_digest: str, experiments: list[str]) -> tuple[dict[str, Markup], str | None, bool]:
    """For a render that cannot draw figures: the previous page's figure blocks by
    experiment (when it was drawn from the same records), a line saying what was done
    about them, and whether the previous page must be moved aside before it is replaced."""
    try:
        html = page.read_text(encoding="utf-8")
    except (FileNotFoundError, UnicodeDecodeError):
        return {}, None, False
    if "<svg" not in html:
        return {}, None, False
    found = _DIGEST.search(html)
    blocks = {m["name"]: m["body"] for m in _BLOCK.finditer(html)} if found and found[1] == records_digest else {}
    out = {
        e: KEPT_NOTE + begin(e) + Markup(blocks[str(escape(e))]) + end(e)
        for e in experiments
        if str(escape(e)) in blocks
    }
    if out:
        note = f"figures: kept from the previous {page.name} (the same records; matplotlib is not installed here)"
        return out, note, False
    moved = page.with_name(PREVIOUS)
    return (
        {},
        f"figures: {page} held figures this render cannot redraw (matplotlib is not installed: "
        f"pip install 'rpg-bench[report]'), of other records than these: that page is kept as {moved}",
        True,
    )
