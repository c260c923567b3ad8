"""The site builds under --strict, in both languages, and what it outputs is what we mean.

`mkdocs build --strict` already fails on broken Markdown links and anchors (mkdocs.yml's
`validation:`). The checks here look at the built HTML for what it cannot see: pages
rendered by mkdocs-jupyter (whose links mkdocs never validates), notebooks silently written
out as raw JSON, and missing translations.
"""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import jupytext
import nbformat
import pytest

from docs_support import (
    SNIPPET_LINE,
    SiteBuild,
    bengali_twin,
    english_pages,
    is_notebook_page,
    mkdocs_config,
    relative,
)

STRICT_VALIDATION = ("omitted_files", "absolute_links", "unrecognized_links", "anchors")


def built_path(site: Path, page: Path, language: str) -> Path:
    """Where a page lands with directory URLs: docs/a.md -> a/index.html, bn -> bn/a/index.html."""
    stem = relative(page).removesuffix(".md")
    parts = stem.split("/")
    if parts[-1] == "index":
        parts = parts[:-1]
    prefix = [] if language == "en" else [language]
    return site.joinpath(*prefix, *parts, "index.html")


class PageScan(HTMLParser):
    """One pass over a built page: ids, outgoing URLs, and the text of Python code blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.urls: list[str] = []
        self.lang: str | None = None
        self.python_code: list[str] = []
        self._python_depth = 0  # >0 while inside a div marked as Python code
        self._div_stack: list[bool] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {key: value or "" for key, value in attrs}
        if tag == "html":
            self.lang = attributes.get("lang")
        for key in ("id", "name"):
            if attributes.get(key):
                self.ids.add(attributes[key])
        for key in ("href", "src"):
            if attributes.get(key) and tag in ("a", "img", "link", "script"):
                self.urls.append(attributes[key])
        if tag == "div":
            classes = attributes.get("class", "").split()
            is_python = "language-python" in classes or "hl-python" in classes
            self._div_stack.append(is_python)
            self._python_depth += is_python
            if is_python:
                self.python_code.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "div" and self._div_stack:
            self._python_depth -= self._div_stack.pop()

    def handle_data(self, data: str) -> None:
        if self._python_depth:
            self.python_code[-1] += data


def scan(path: Path) -> PageScan:
    parser = PageScan()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def test_build_succeeds_under_strict(site_build: SiteBuild) -> None:
    print(f"\nmkdocs build --strict took {site_build.seconds:.1f} s")
    assert site_build.returncode == 0, site_build.log[-4000:]


def test_link_and_anchor_problems_fail_the_build() -> None:
    """With --strict, each of these set to `warn` turns a broken link or anchor into an error."""
    validation = mkdocs_config().get("validation") or {}
    flat = {**validation, **(validation.get("links") or {}), **(validation.get("nav") or {})}
    assert {key: flat.get(key) for key in STRICT_VALIDATION} == dict.fromkeys(STRICT_VALIDATION, "warn")


def bengali_letters_in_article(html: str) -> int:
    """Bengali letters in the page's main text (the nav is translated even on fallback pages)."""
    article = re.search(r"<article\b.*?</article>", html, re.S)
    return len(re.findall(r"[\u0980-\u09FF]", article.group() if article else ""))


@pytest.mark.parametrize("page", [pytest.param(p, id=relative(p)) for p in english_pages()])
def test_page_built_in_both_languages(built_site: Path, page: Path) -> None:
    """Each page exists under / and /bn/, and the /bn/ one is Bengali, not the English fallback."""
    for language in ("en", "bn"):
        path = built_path(built_site, page, language)
        assert path.exists(), f"{relative(page)} was not built for {language!r} at {path}"
        assert scan(path).lang == language
    bengali = bengali_letters_in_article(built_path(built_site, page, "bn").read_text(encoding="utf-8"))
    assert bengali >= 20, f"/bn/ page of {relative(page)} has {bengali} Bengali letters: English fallback?"


NOTEBOOKS = [pytest.param(p, id=relative(p)) for p in english_pages() if is_notebook_page(p)]


@pytest.mark.parametrize("language", ["en", "bn"])
@pytest.mark.parametrize("page", NOTEBOOKS)
def test_notebook_rendered_with_executed_output(built_site: Path, page: Path, language: str) -> None:
    """mkdocs-static-i18n can make mkdocs-jupyter write a notebook out as raw JSON, silently."""
    html = built_path(built_site, page, language).read_text(encoding="utf-8")
    assert not html.lstrip().startswith("{"), "notebook written out as JSON, not rendered"
    assert re.search(r'class="[^"]*\bjp-Notebook\b', html), "not rendered as a notebook"
    outputs = re.findall(r'class="[^"]*\bjp-OutputArea-output\b[^"]*"[^>]*>(.*?)</div>', html, re.S)
    assert any(re.sub(r"<[^>]+>", "", output).strip() for output in outputs), "no executed output"
    prompts = re.findall(r'jp-InputPrompt[^>]*>\s*In(?:&nbsp;|\s)*\[(?:&nbsp;|\s)*([^\]&\s]*)', html)
    assert prompts and all(p.isdigit() for p in prompts), f"cells not executed, prompts: {prompts}"


@pytest.mark.parametrize("language", ["en", "bn"])
@pytest.mark.parametrize("page", NOTEBOOKS)
def test_notebook_page_offers_its_notebook(built_site: Path, page: Path, language: str) -> None:
    """A notebook page links a Jupyter notebook to download (hooks/notebook_download.py): the
    link resolves, the file is a valid notebook, and it holds this page's code, in order."""
    built = built_path(built_site, page, language)
    html = built.read_text(encoding="utf-8")
    links = [
        unquote(href)
        for tag in re.findall(r"<a\b[^>]*>", html)
        if re.search(r"\sdownload\b", tag)
        for href in re.findall(r'href="([^"]+\.ipynb)"', tag)
    ]
    assert len(links) == 1, f"want one notebook download link, found {links}"
    target = (built.parent / links[0]).resolve()
    assert target.is_file(), f"{links[0]} does not resolve from {built.relative_to(built_site)}"
    notebook = nbformat.read(target, as_version=4)
    nbformat.validate(notebook)
    source = page if language == "en" else bengali_twin(page)
    expected = [cell.source for cell in jupytext.read(source, fmt="md").cells if cell.cell_type == "code"]
    assert [cell.source for cell in notebook.cells if cell.cell_type == "code"] == expected
    prose = "".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")
    bengali = len(re.findall(r"[\u0980-\u09FF]", prose))
    assert (bengali > 500) == (language == "bn"), f"{bengali} Bengali letters in a {language} notebook"


@pytest.mark.parametrize("page", [pytest.param(p, id=relative(p)) for p in english_pages()])
def test_edit_link_opens_the_pages_own_source(built_site: Path, page: Path) -> None:
    """The edit button (Material's content.action.edit) of each language's page opens that
    language's file: a Bengali reader fixing a sentence must land in page.bn.md."""
    config = mkdocs_config()
    base = f"{str(config['repo_url']).rstrip('/')}/{str(config['edit_uri']).strip('/')}/"
    for language, source in (("en", page), ("bn", bengali_twin(page))):
        html = built_path(built_site, page, language).read_text(encoding="utf-8")
        buttons = [tag for tag in re.findall(r"<a\b[^>]*>", html) if "md-content__button" in tag]
        edits = [href for tag in buttons for href in re.findall(r'href="([^"]+)"', tag) if "/edit/" in href]
        assert edits == [base + relative(source)], f"{language}: edit links {edits}"


def test_no_heading_shows_attribute_syntax(built_site: Path) -> None:
    """`## Title {#id}` sets an anchor on Markdown pages; the notebook renderer knows no such
    syntax and prints it as part of the heading."""
    literal = [
        f"{path.relative_to(built_site)}: {text}"
        for path in sorted(built_site.rglob("*.html"))
        for _, heading in re.findall(r"<h([1-6])\b[^>]*>(.*?)</h\1>", path.read_text(encoding="utf-8"), re.S)
        if re.search(r"\{\s*[#:.]", text := re.sub(r"<[^>]+>", "", heading).strip())
    ]
    assert not literal, "\n".join(literal)


def test_no_unexpanded_snippets_in_built_python_code(built_site: Path) -> None:
    """Second line of defence for tests/test_doc_examples.py: look at what readers get."""
    leftovers = [
        f"{path.relative_to(built_site)}: {line.strip()}"
        for path in sorted(built_site.rglob("*.html"))
        for block in scan(path).python_code
        for line in block.splitlines()
        if SNIPPET_LINE.match(line)
    ]
    assert not leftovers, "\n".join(leftovers)


def _resolve(site: Path, page: Path, url: str) -> tuple[Path | None, str]:
    """The file a relative URL on `page` points to (None for external URLs), and its fragment."""
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or url.startswith(("//", "mailto:", "javascript:")):
        return None, ""
    if parts.path.startswith("/"):  # root-absolute: served under site_url's path
        prefix = urlsplit(mkdocs_config().get("site_url") or "/").path.rstrip("/") + "/"
        if not parts.path.startswith(prefix):
            return site / "outside-site_url" / parts.path.lstrip("/"), ""
        target = site / unquote(parts.path[len(prefix) :])
    elif parts.path:
        target = page.parent / unquote(parts.path)
    else:
        target = page
    if target.is_dir() or parts.path.endswith("/"):
        target = target / "index.html"
    return target.resolve(), unquote(parts.fragment)


def test_internal_links_and_anchors_resolve(built_site: Path) -> None:
    """Every internal URL and #anchor in the built site exists, notebook pages included."""
    scans = {path.resolve(): scan(path) for path in built_site.rglob("*.html")}
    broken = []
    for path, page in scans.items():
        for url in page.urls:
            target, fragment = _resolve(built_site, path, url)
            if target is None:
                continue
            if not target.exists():
                broken.append(f"{path.relative_to(built_site)}: {url} (no such file)")
            elif fragment and target in scans and fragment not in scans[target].ids:
                broken.append(f"{path.relative_to(built_site)}: {url} (no such anchor)")
    assert not broken, "\n".join(sorted(broken))


# --- charts and tables that code draws speak the page's language ------------------------------

BENGALI = re.compile(r"[\u0980-\u09FF]")
#: Words that are names in either language, so they may stay in English on a Bengali chart.
NAMES = {"ReLU", "PySyft 0.2", "secure_mnist"}
CHART_PAGES = [
    pytest.param(p, id=relative(p))
    for p in english_pages()
    if is_notebook_page(p) and "plt.show()" in p.read_text(encoding="utf-8")
]


def chart_svgs(html: str) -> list[str]:
    """Every chart on a built page as SVG: nbconvert embeds each as an <img> with a data URI."""
    images = re.findall(r'<img\b[^>]*\bsrc="data:image/svg\+xml;base64,([^"]+)"', html)
    return [base64.b64decode(data).decode("utf-8") for data in images]


def chart_texts(svgs: list[str]) -> list[str]:
    """The words of charts: with svg.fonttype "none" matplotlib keeps them as <text> elements."""
    texts = [text for svg in svgs for text in re.findall(r"<text\b.*?</text>", svg, re.S)]
    return [" ".join(re.sub(r"<[^>]+>", "", text).split()) for text in texts]


def test_some_page_draws_charts() -> None:
    assert CHART_PAGES, "no notebook page draws a chart: the chart-language test below checks nothing"


@pytest.mark.parametrize("page", CHART_PAGES)
def test_charts_are_labelled_in_the_page_language(built_site: Path, page: Path) -> None:
    """Each language's charts show that language's words (the page-language cell), as SVG text
    the browser lays out: matplotlib would draw Bengali letters unshaped into a bitmap."""
    english_html = built_path(built_site, page, "en").read_text(encoding="utf-8")
    bengali_html = built_path(built_site, page, "bn").read_text(encoding="utf-8")
    bitmaps = re.findall(r'<img\b[^>]*\bsrc="data:image/png', bengali_html)
    assert not bitmaps, f"{len(bitmaps)} charts on the Bengali page are bitmaps, their words unshaped"
    english_charts, bengali_charts = chart_svgs(english_html), chart_svgs(bengali_html)
    assert english_charts and len(english_charts) == len(bengali_charts), "the languages draw different charts"
    english, bengali = chart_texts(english_charts), chart_texts(bengali_charts)
    assert not [text for text in english if BENGALI.search(text)], "Bengali words in the English charts"
    words = [text for text in bengali if re.search("[A-Za-z]{3,}", text) or BENGALI.search(text)]
    english_only = [text for text in words if not BENGALI.search(text) and text not in NAMES]
    assert words and not english_only, f"Bengali charts with English-only words: {english_only}"
