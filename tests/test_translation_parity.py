"""Every English page has a Bengali twin that matches it in everything but the prose.

Code, snippet includes, heading structure and link targets must be identical, so a reader
switching language lands on the same page with the same examples. Text cannot be compared;
structure can, and structural drift is what a stale translation shows first.
"""

from __future__ import annotations

import functools
import subprocess
import warnings
from collections import Counter
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import markdown
import pytest
from mkdocs.utils.meta import get_data

from docs_support import (
    DOCS,
    REPO,
    SNIPPET_LINE,
    TRANSLATION_SUFFIX,
    bengali_twin,
    english_original,
    Fence,
    all_pages,
    english_pages,
    fence_tags,
    fences,
    is_page_language_cell,
    language_neutral,
    is_notebook_page,
    markdown_extensions,
    mkdocs_config,
    page_text_as_built,
    plugin_config,
    relative,
)

ENGLISH = [pytest.param(page, id=relative(page)) for page in english_pages()]


# --- rendering: headings and links as the site's Markdown sees them --------------------------


class _LinkCollector(HTMLParser):
    """Links written by authors: not the toc's permalinks, not code blocks' line anchors."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.in_pre = 0

    def handle_endtag(self, tag: str) -> None:
        self.in_pre -= tag == "pre"

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.in_pre += tag == "pre"
        if self.in_pre or "headerlink" in (attributes.get("class") or ""):
            return
        url = attributes.get("href") if tag == "a" else attributes.get("src") if tag == "img" else None
        if url:
            self.links.append(url)


@dataclass(frozen=True)
class Rendered:
    headings: list[tuple[int, str]]  # (level, id) in page order
    links: list[str]


def _flatten(tokens: list[dict[str, Any]]) -> list[tuple[int, str]]:
    return [item for token in tokens for item in [(token["level"], token["id"]), *_flatten(token["children"])]]


@functools.cache
def render(page: Path) -> Rendered:
    """Headings and link targets of a page, from mkdocs.yml's own Markdown extensions."""
    names, configs = markdown_extensions()
    md = markdown.Markdown(extensions=names, extension_configs=configs)
    body, _ = get_data(page_text_as_built(page))
    collector = _LinkCollector()
    collector.feed(md.convert(body))
    return Rendered(_flatten(md.toc_tokens), collector.links)


def link_target(href: str, page: Path) -> str:
    """A language-neutral form of a link found on `page`.

    Links to `x.bn.md` and `x.md` name the same page. An anchor to a heading becomes that
    heading's position in the target page: Bengali headings may have other ids than their
    English twins, and the heading structure is checked to be the same.
    """
    parts = urlsplit(href)
    if parts.scheme or parts.netloc or (parts.path and not parts.path.endswith(".md")):
        return href  # external, or a built-site URL (notebook pages): compared as written
    target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
    target = english_original(target)
    name = target.relative_to(DOCS).as_posix() if target.is_relative_to(DOCS) else parts.path
    if not parts.fragment:
        return name
    twin = target if page == english_original(page) else bengali_twin(target)
    ids = [heading_id for _, heading_id in render(twin).headings] if twin.exists() else []
    fragment = unquote(parts.fragment)
    return f"{name}#heading-{ids.index(fragment)}" if fragment in ids else f"{name}#{fragment}"


# --- twins ---------------------------------------------------------------------------------


def test_every_translation_has_an_english_page() -> None:
    orphans = [relative(page) for page in DOCS.rglob(f"*{TRANSLATION_SUFFIX}") if not english_original(page).exists()]
    assert not orphans, f"Bengali pages without an English original: {orphans}"


@pytest.mark.parametrize("page", ENGLISH)
def test_bengali_twin_exists(page: Path) -> None:
    assert bengali_twin(page).exists(), f"{relative(page)} has no Bengali twin {relative(bengali_twin(page))}"


def _twin(page: Path) -> Path:
    twin = bengali_twin(page)
    if not twin.exists():
        pytest.fail(f"missing twin {relative(twin)}")
    return twin


def _code(fence: Fence) -> tuple[str, str, list[str]]:
    """What must be identical across languages: the code, except a page-language cell's words."""
    source = language_neutral(fence.source) if is_page_language_cell(fence) else fence.source
    return fence.language, source, fence_tags(fence)


@pytest.mark.parametrize("page", ENGLISH)
def test_code_blocks_identical(page: Path) -> None:
    """Compared raw and after snippet expansion: the same include can't hide different code.

    One exception: a notebook cell tagged `page-language` holds the words that the page's charts
    and tables show, and there it is the dictionary's string values, and the comments, that may
    differ (see `language_neutral`).
    """
    twin = _twin(page)
    for view in (lambda p: p.read_text(encoding="utf-8"), page_text_as_built):
        english = [_code(f) for f in fences(view(page))]
        bengali = [_code(f) for f in fences(view(twin))]
        assert bengali == english


@pytest.mark.parametrize("page", [pytest.param(p, id=relative(p)) for p in all_pages()])
def test_page_language_cells_are_hidden_notebook_cells(page: Path) -> None:
    """The exception is for words, not for code a reader sees: the cell must be hidden.

    mkdocs-jupyter reads only the first tag of a cell, so `remove_input` must come first.
    """
    for fence in fences(page.read_text(encoding="utf-8")):
        if is_page_language_cell(fence):
            where = f"{relative(page)}:{fence.line}"
            assert is_notebook_page(page), f"{where}: a page-language cell outside a notebook page"
            assert fence_tags(fence)[0] == "remove_input", f'{where}: must be hidden: tags=["remove_input", ...]'


def test_language_neutral_ignores_words_but_not_code() -> None:
    def cell(words: str, code: str = 'plt.rcParams["x"] = 1', comment: str = "") -> str:
        return language_neutral(f"# {comment}\nTEXT = {{{words}}}\n{code}")

    english = cell('"relu": "ReLU", "sent": "sent"', comment="the words")
    assert english == cell('"relu": "ReLU", "sent": "পাঠানো"', comment="শব্দগুলো")  # other words, comment
    assert english != cell('"relu": "ReLU", "পাঠানো": "sent"')  # a key changed
    assert english != cell('"relu": "ReLU", "sent": "sent"', 'plt.rcParams["x"] = 2')  # code changed
    assert english != cell('"relu": "ReLU", "sent": "sent"', "import os")


@pytest.mark.parametrize("page", ENGLISH)
def test_snippet_includes_identical(page: Path) -> None:
    def includes(path: Path) -> list[str]:
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if SNIPPET_LINE.match(line)]

    assert includes(_twin(page)) == includes(page)


@pytest.mark.parametrize("page", ENGLISH)
def test_same_heading_structure(page: Path) -> None:
    english = [level for level, _ in render(page).headings]
    bengali = [level for level, _ in render(_twin(page)).headings]
    assert bengali == english, "heading levels differ (number or order)"


@pytest.mark.parametrize("page", ENGLISH)
def test_same_link_targets(page: Path) -> None:
    twin = _twin(page)
    english = Counter(link_target(href, page) for href in render(page).links)
    bengali = Counter(link_target(href, twin) for href in render(twin).links)
    assert bengali == english, (
        f"only in English: {sorted((english - bengali).elements())}; "
        f"only in Bengali: {sorted((bengali - english).elements())}"
    )


@pytest.mark.parametrize("page", ENGLISH)
def test_notebook_twins_are_both_notebooks(page: Path) -> None:
    """Both languages of the tutorial must be executed by the build, not just one."""
    assert is_notebook_page(_twin(page)) == is_notebook_page(page)


# --- navigation ------------------------------------------------------------------------------


def _nav_entries(items: list[Any]) -> list[tuple[str, str | None]]:
    """(title, page or None for a section) for every entry of mkdocs.yml's nav, depth first."""
    entries: list[tuple[str, str | None]] = []
    for item in items:
        if isinstance(item, str):
            entries.append((item, item))
            continue
        ((title, value),) = item.items()
        if isinstance(value, list):
            entries.append((title, None))
            entries.extend(_nav_entries(value))
        else:
            entries.append((title, value))
    return entries


def _bengali_nav_translations() -> dict[str, str]:
    languages = plugin_config("i18n").get("languages", [])
    (bengali,) = [language for language in languages if language.get("locale") == "bn"]
    return bengali.get("nav_translations") or {}


def test_nav_lists_every_page() -> None:
    listed = {page for _, page in _nav_entries(mkdocs_config()["nav"]) if page}
    pages = {relative(page) for page in english_pages()}
    assert not pages - listed, f"pages missing from nav: {sorted(pages - listed)}"
    assert not listed - pages, f"nav entries without a page: {sorted(listed - pages)}"


def test_nav_translated_to_bengali() -> None:
    titles = {title for title, _ in _nav_entries(mkdocs_config()["nav"])}
    translations = _bengali_nav_translations()
    missing = sorted(title for title in titles if not str(translations.get(title, "")).strip())
    assert not missing, f"nav titles without a Bengali translation: {missing}"
    stale = sorted(set(translations) - titles)
    assert not stale, f"Bengali nav translations for titles no longer in nav: {stale}"


# --- freshness (reported, never failed: uncommitted work has no history) --------------------


def _last_commit_time(path: Path) -> int | None:
    result = subprocess.run(
        ["git", "log", "-1", "--format=%ct", "--", str(path)], cwd=REPO, capture_output=True, text=True
    )
    stamp = result.stdout.strip()
    return int(stamp) if result.returncode == 0 and stamp else None


def test_report_translations_older_than_english() -> None:
    stale = []
    for page in english_pages():
        twin = bengali_twin(page)
        english_time, bengali_time = _last_commit_time(page), _last_commit_time(twin)
        if english_time and bengali_time and bengali_time < english_time:
            stale.append(relative(twin))
            warnings.warn(f"{relative(twin)} was last committed before {relative(page)}: check the translation")
    print(f"\ntranslations older than their English page: {', '.join(stale) or 'none'}")
