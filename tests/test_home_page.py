"""The home page (docs/index.md and its Bengali twin) stays true to the repository.

Its quick start must be the README's commands, byte for byte: a reader who copies either gets
the same result. Its learning path must link every page of the site, so no page is orphaned,
and its credits must name MNIST's authors and licence.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from docs_support import DOCS, REPO, english_pages, fences, mkdocs_config, relative

HOME = [DOCS / "index.md", DOCS / "index.bn.md"]
SHELL = {"bash", "sh", "shell", "console"}


def shell_commands(text: str) -> list[str]:
    return [fence.source for fence in fences(text) if fence.language in SHELL]


def test_readme_has_the_quick_start_commands() -> None:
    """Guards the next test against passing vacuously."""
    assert len(shell_commands((REPO / "README.md").read_text(encoding="utf-8"))) >= 2


@pytest.mark.parametrize("page", HOME, ids=lambda p: p.name)
def test_quick_start_commands_are_the_readme_commands(page: Path) -> None:
    readme = shell_commands((REPO / "README.md").read_text(encoding="utf-8"))
    home = shell_commands(page.read_text(encoding="utf-8"))
    assert home == readme, f"{page.name}: the shell commands differ from README.md's; copy them from there"


def _nav_pages(items: list) -> list[str]:
    pages = []
    for item in items:
        value = item if isinstance(item, str) else next(iter(item.values()))
        pages += _nav_pages(value) if isinstance(value, list) else [value]
    return pages


@pytest.mark.parametrize("page", HOME, ids=lambda p: p.name)
def test_home_page_links_every_page_of_the_site(page: Path) -> None:
    linked = set(re.findall(r"\]\(([\w./-]+\.md)(?:#[\w-]*)?\)", page.read_text(encoding="utf-8")))
    expected = {relative(p) for p in english_pages()} - {"index.md"}
    assert expected <= set(_nav_pages(mkdocs_config()["nav"])), "every page is in the nav"
    missing = sorted(expected - linked)
    assert not missing, f"{page.name} does not link: {missing}"


@pytest.mark.parametrize("page", HOME, ids=lambda p: p.name)
def test_credits_name_mnist_authors_and_licence(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    for needle in ("LeCun", "Cortes", "Burges", "CC BY-SA 3.0", "Théo Ryffel", "OpenMined"):
        assert needle in text, f"{page.name}: credits should mention {needle}"
