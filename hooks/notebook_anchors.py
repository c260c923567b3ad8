"""mkdocs hook: give notebook headings the ids that the page's table of contents links to.

mkdocs-jupyter renders a notebook's headings with nbconvert, which drops every non-ASCII
character from heading ids (each Bengali heading got id=""), and it computes the table of
contents separately, with other ids (_1, _2, ...): every TOC link of the Bengali tutorial
was dead. Here headings and TOC entries of notebook pages get the same slug, one that keeps
Bengali letters and vowel signs. tests/test_site_build.py checks that every anchor resolves.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from typing import Any

from mkdocs.structure.pages import Page
from mkdocs.structure.toc import AnchorLink

HEADING = re.compile(
    r'<h(?P<level>[1-6])(?P<before>[^>]*?)\sid="[^"]*"(?P<after>[^>]*)>(?P<body>.*?)</h(?P=level)>', re.S
)
ANCHOR_LINK = re.compile(r'(<a class="anchor-link" href=")#[^"]*(")')
TAG = re.compile(r"<[^>]+>")


def heading_text(html: str) -> str:
    return " ".join(TAG.sub("", ANCHOR_LINK.sub(r"\1\2", html)).replace("¶", " ").split())


def slugify(text: str) -> str:
    """Lower-case words of letters, marks and digits (any script), joined by hyphens."""
    text = unicodedata.normalize("NFC", text).lower()
    kept = "".join(ch if unicodedata.category(ch)[0] in "LMN" or ch in "-_" else " " for ch in text)
    return "-".join(kept.split())


def _walk(items: list[AnchorLink]) -> Iterator[AnchorLink]:
    for item in items:
        yield item
        yield from _walk(item.children)


def on_page_content(html: str, page: Page, **kwargs: Any) -> str:
    if "jp-Notebook" not in html:
        return html
    slugs: dict[str, list[str]] = {}  # heading text -> slugs, in page order
    used: set[str] = set()

    def rewrite(match: re.Match[str]) -> str:
        text = heading_text(match["body"])
        slug = base = slugify(text) or "section"
        counter = 0
        while slug in used:
            counter += 1
            slug = f"{base}_{counter}"
        used.add(slug)
        slugs.setdefault(text, []).append(slug)
        body = ANCHOR_LINK.sub(rf"\g<1>#{slug}\g<2>", match["body"])
        return f'<h{match["level"]}{match["before"]} id="{slug}"{match["after"]}>{body}</h{match["level"]}>'

    html = HEADING.sub(rewrite, html)
    for item in _walk(page.toc.items):
        candidates = slugs.get(" ".join(item.title.split()))
        if candidates:
            item.id = candidates.pop(0)
    return html
