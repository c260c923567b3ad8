"""mkdocs hook: render the Glossary page's tables from docs/vocabulary.yml.

The vocabulary is the one source of the site's Bengali terms: tests/test_vocabulary.py checks
every Bengali page against it, and this hook makes the Glossary page show it, so the page a
reader consults and the rule a test enforces cannot disagree. A page asks for the tables with
the marker below; the English page gets English headings and definitions, the Bengali page
Bengali ones, and each term links to the page that explains it, titled as the nav titles it in
that language.
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Any

import yaml
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.pages import Page

MARKER = "<!-- vocabulary: glossary -->"
VOCABULARY = "vocabulary.yml"  # in docs_dir, excluded from the site by mkdocs.yml
TRANSLATION_SUFFIX = ".bn.md"

COLUMNS = {
    "en": ["English", "Bengali", "Avoid", "Meaning", "Explained in"],
    "bn": ["বাংলা", "ইংরেজি", "যা লিখবেন না", "অর্থ", "বিস্তারিত"],
}


def _language(page: Page) -> str:
    source = page.file.abs_src_path or page.file.src_uri
    return "bn" if source.endswith(TRANSLATION_SUFFIX) else "en"


def _nav_titles(nav: list[Any]) -> dict[str, str]:
    """page path -> its title in mkdocs.yml's nav (English)."""
    titles: dict[str, str] = {}
    for item in nav or []:
        if isinstance(item, dict):
            ((title, value),) = item.items()
            if isinstance(value, list):
                titles |= _nav_titles(value)
            else:
                titles[value] = title
    return titles


def _bengali_nav_translations(config: MkDocsConfig) -> dict[str, str]:
    plugin = config.plugins.get("i18n")
    for language in getattr(getattr(plugin, "config", None), "languages", None) or []:
        if language.get("locale") == "bn":
            return dict(language.get("nav_translations") or {})
    return {}


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _avoid(entry: str | dict[str, str]) -> str:
    return entry if isinstance(entry, str) else entry["shown"]


def render(vocabulary: dict[str, Any], language: str, page_dir: str, titles: dict[str, str]) -> str:
    """The glossary's sections as Markdown: one heading and one table per section."""
    parts: list[str] = []
    for section in vocabulary["sections"]:
        header = COLUMNS[language]
        parts += [f"## {section['title'][language]} {{#{section['id']}}}", ""]
        parts += ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
        for term in section["terms"]:
            page, _, anchor = term["page"].partition("#")
            link = posixpath.relpath(page, page_dir or ".") + (f"#{anchor}" if anchor else "")
            names = [term["en"], term["bn"]] if language == "en" else [term["bn"], term["en"]]
            cells = [
                *names,
                ", ".join(_avoid(entry) for entry in term.get("avoid") or []),
                term["meaning"][language],
                f"[{titles.get(page, page)}]({link})",
            ]
            parts.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
        parts.append("")
    return "\n".join(parts)


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, **kwargs: Any) -> str:
    if MARKER not in markdown:
        return markdown
    path = Path(config.docs_dir) / VOCABULARY
    vocabulary = yaml.safe_load(path.read_text(encoding="utf-8"))
    language = _language(page)
    titles = _nav_titles(config.nav)
    if language == "bn":
        translations = _bengali_nav_translations(config)
        titles = {page_path: translations.get(title, title) for page_path, title in titles.items()}
    page_dir = posixpath.dirname(page.file.src_uri)
    return markdown.replace(MARKER, render(vocabulary, language, page_dir, titles))
