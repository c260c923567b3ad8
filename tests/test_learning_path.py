"""The site reads as a course: a path through the nav, an onward link at the end of every
page, and exercises with executed solutions on every concept page.

The path is the nav's order (Home, the concepts, the tutorial, computation time, security, the
advanced pages, the reference pages). Each page ends with a "Next:" paragraph whose first link is
the page that follows it in the nav, so a reader who only ever clicks "Next" walks the whole
path, and a page added to the nav must say where its reader goes next, as must the page before
it. Both languages, notebook pages included (their links are URLs of the built site).
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from docs_support import (
    DOCS,
    TRANSLATION_SUFFIX,
    Block,
    bengali_twin,
    blocks,
    english_original,
    executed_examples,
    is_notebook_page,
    mkdocs_config,
    page_text_as_built,
    relative,
)

NEXT = {"en": "**Next:**", "bn": "**এরপর:**"}
#: Sections of the nav, in the order a learner meets them (other entries may sit between them).
PATH_SECTIONS = ["Home", "Concepts", "Tutorial", "Computation time", "Security", "Advanced", "Reference"]
EXERCISES_PER_CONCEPT_PAGE = range(2, 4)
MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _nav_pages(items: list[Any]) -> list[str]:
    pages: list[str] = []
    for item in items:
        value = item if isinstance(item, str) else next(iter(item.values()))
        pages += _nav_pages(value) if isinstance(value, list) else [value]
    return pages


def _section(title: str) -> list[str]:
    for item in mkdocs_config()["nav"]:
        if isinstance(item, dict) and title in item:
            value = item[title]
            return _nav_pages(value) if isinstance(value, list) else [value]
    raise KeyError(f"no nav section {title!r}")


NAV = _nav_pages(mkdocs_config()["nav"])
CONCEPTS = [DOCS / page for page in _section("Concepts")]


def _language(page: Path) -> str:
    return "bn" if page.name.endswith(TRANSLATION_SUFFIX) else "en"


def _both_languages(pages: list[Path]) -> list[Any]:
    return [pytest.param(p, id=relative(p)) for page in pages for p in (page, bengali_twin(page))]


def successor(page: str) -> str:
    """The page after `page` in the nav; the last page leads back home."""
    index = NAV.index(page)
    return NAV[index + 1] if index + 1 < len(NAV) else NAV[0]


def link_to_page(href: str, page: Path) -> str | None:
    """The English page (relative to docs/) that a link on `page` leads to, if it is internal.

    Markdown pages link `x.md`; notebook pages link the built URL, `../x/` (`../` is home).
    """
    parts = urlsplit(href)
    if parts.scheme or parts.netloc:
        return None
    path = unquote(parts.path)
    if not path:
        return relative(english_original(page))
    if path.endswith(".md"):
        return relative(english_original((page.parent / path).resolve()))
    # A built URL, relative to the page's own directory (docs/a.md is served as /a/).
    built = PurePosixPath(relative(english_original(page)).removesuffix(".md")) / path
    parts_ = []
    for part in built.parts:
        if part == "..":
            parts_.pop()
        elif part not in (".", ""):
            parts_.append(part)
    return "/".join(parts_) + ".md" if parts_ else "index.md"


def last_paragraph(page: Path) -> str:
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", page.read_text(encoding="utf-8")) if p.strip()]
    return paragraphs[-1]


def test_nav_follows_the_learning_path() -> None:
    titles = [next(iter(item)) if isinstance(item, dict) else item for item in mkdocs_config()["nav"]]
    missing = [title for title in PATH_SECTIONS if title not in titles]
    assert not missing, f"nav sections missing: {missing}"
    order = [titles.index(title) for title in PATH_SECTIONS]
    assert order == sorted(order), f"nav out of the learning path's order: {titles}"
    assert {"glossary.md", "api.md", "references.md"} <= set(_section("Reference"))
    assert "parties.md" in _section("Advanced")


@pytest.mark.parametrize("page", _both_languages([DOCS / page for page in NAV]))
def test_page_ends_with_where_to_go_next(page: Path) -> None:
    paragraph = last_paragraph(page)
    marker = NEXT[_language(page)]
    assert paragraph.startswith(marker), f"the last paragraph should start with {marker}:\n{paragraph}"
    links = [target for href in MARKDOWN_LINK.findall(paragraph) if (target := link_to_page(href, page))]
    expected = successor(relative(english_original(page)))
    assert links and links[0] == expected, (
        f"the first link of the {marker} paragraph should lead to {expected} (next in the nav); "
        f"it leads to {links[:1]}"
    )


def test_link_to_page_reads_both_kinds_of_link() -> None:
    """Guards the test above against passing on links it misreads."""
    tutorial, security = DOCS / "tutorial.bn.md", DOCS / "security.md"
    assert is_notebook_page(tutorial)
    assert link_to_page("../computation-time/", tutorial) == "computation-time.md"
    assert link_to_page("../", tutorial) == "index.md"
    assert link_to_page("parties.md#network", security) == "parties.md"
    assert link_to_page("https://example.org/a.md", security) is None


def _exercises(page: Path) -> list[tuple[Block, Block | None]]:
    """Each exercise (a `!!! question` admonition) with the block right after it."""
    found = blocks(page_text_as_built(page))
    top = [block for block in found if not any(o.start < block.start < o.end for o in found if o is not block)]
    return [(block, top[i + 1] if i + 1 < len(top) else None) for i, block in enumerate(top)
            if block.kind == "question" and not block.collapsible]


@pytest.mark.parametrize("page", _both_languages(CONCEPTS))
def test_concept_page_has_exercises_with_executed_solutions(page: Path) -> None:
    exercises = _exercises(page)
    assert len(exercises) in EXERCISES_PER_CONCEPT_PAGE, f"{len(exercises)} exercises (want 2 or 3)"
    executed = [example.region.start for example in executed_examples(page)]
    for exercise, solution in exercises:
        assert solution is not None and solution.collapsible and solution.kind == "success", (
            f'exercise "{exercise.title}" (line {exercise.line}) is not followed by a collapsed '
            '`??? success` solution'
        )
        runs = [start for start in executed if solution.start <= start < solution.end]
        assert runs, f'the solution of "{exercise.title}" (line {solution.line}) runs no code'


def test_concept_section_is_not_empty() -> None:
    """Guards the exercise test against passing on an empty or renamed section."""
    assert len(CONCEPTS) >= 5 and all(page.exists() for page in CONCEPTS)
