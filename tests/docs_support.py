"""Shared machinery for the documentation checks.

Sybil (docs/conftest.py), the translation-parity test and the site-build test must all read a
page exactly as `mkdocs build` does: same snippet expansion, same rule for which pages are
notebooks, same fence parsing. Otherwise a check could pass on text the site never shows.
Everything here is derived from mkdocs.yml, so changing the site's configuration changes
what the checks see.
"""

from __future__ import annotations

import ast
import difflib
import functools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from doctest import ELLIPSIS
from pathlib import Path, PurePath
from typing import Any

import markdown
from mkdocs.utils.meta import get_data
from mkdocs.utils.yaml import yaml_load
from sybil import Document, Example, Region, Sybil
from sybil.evaluators.skip import Skipper
from sybil.parsers.abstract import AbstractCodeBlockParser
from sybil.parsers.abstract.codeblock import PythonDocTestOrCodeBlockParser
from sybil.parsers.markdown import SkipParser
from sybil.parsers.markdown.lexers import DirectiveInHTMLCommentLexer, RawFencedCodeBlockLexer
from sybil.typing import Evaluator

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
MKDOCS_YML = REPO / "mkdocs.yml"
TRANSLATION_SUFFIX = ".bn.md"

#: A pymdownx.snippets include or section marker (`--8<-- "file:section"`, `--8<-- [start:x]`).
SNIPPET_LINE = re.compile(r"^\s*;*-+8<-+(?:\s|$)")


# --- mkdocs.yml -----------------------------------------------------------------------------


@functools.cache
def mkdocs_config() -> dict[str, Any]:
    """mkdocs.yml as mkdocs itself loads it (same YAML loader, so `!ENV` and python tags work)."""
    with MKDOCS_YML.open(encoding="utf-8") as stream:
        return yaml_load(stream)


def plugin_config(name: str) -> dict[str, Any]:
    """The options of one entry of mkdocs.yml's `plugins:` list."""
    for entry in mkdocs_config().get("plugins", []):
        if entry == name:
            return {}
        if isinstance(entry, dict) and name in entry:
            return dict(entry[name] or {})
    raise KeyError(f"plugin {name!r} is not configured in {MKDOCS_YML.name}")


def markdown_extensions() -> tuple[list[str], dict[str, dict[str, Any]]]:
    """mkdocs.yml's Markdown extensions, with snippet base paths made absolute.

    mkdocs resolves `base_path: ["."]` against the directory it is run from (the repository
    root, in CI and in tests/test_site_build.py); pytest may run from anywhere.
    """
    names: list[str] = []
    configs: dict[str, dict[str, Any]] = {}
    for entry in mkdocs_config().get("markdown_extensions", []):
        if isinstance(entry, str):
            names.append(entry)
        else:
            ((name, options),) = entry.items()
            names.append(name)
            configs[name] = dict(options or {})
    if "pymdownx.snippets" in configs:
        snippets = configs["pymdownx.snippets"]
        bases = snippets.get("base_path", ["."])
        bases = [bases] if isinstance(bases, str) else bases
        snippets["base_path"] = [str((REPO / base).resolve()) for base in bases]
    return names, configs


# --- pages ------------------------------------------------------------------------------------


def all_pages() -> list[Path]:
    """Every Markdown page of the site, in both languages."""
    return sorted(DOCS.rglob("*.md"))


def english_pages() -> list[Path]:
    """Pages in the default language (the suffix layout marks translations as `page.bn.md`)."""
    return [page for page in all_pages() if not page.name.endswith(TRANSLATION_SUFFIX)]


def bengali_twin(page: Path) -> Path:
    return page.with_name(page.name.removesuffix(".md") + TRANSLATION_SUFFIX)


def english_original(page: Path) -> Path:
    """The English page a translation belongs to (the page itself if it is English)."""
    if page.name.endswith(TRANSLATION_SUFFIX):
        return page.with_name(page.name.removesuffix(TRANSLATION_SUFFIX) + ".md")
    return page


def relative(page: Path) -> str:
    return page.relative_to(DOCS).as_posix()


def is_notebook_page(page: Path) -> bool:
    """Whether mkdocs-jupyter renders this page: same include/ignore patterns and front-matter rule."""
    options = plugin_config("mkdocs-jupyter")
    path = PurePath(page)
    if any(path.match(pattern) for pattern in options.get("ignore", [])):
        return False
    if not any(path.match(pattern) for pattern in options.get("include", ["*.py", "*.ipynb", "*.md"])):
        return False
    _, meta = get_data(page.read_text(encoding="utf-8"))
    kernelspec = (meta.get("jupyter") or {}).get("kernelspec") or {}
    return kernelspec.get("language") == "python"


@functools.cache
def _snippet_markdown() -> markdown.Markdown | None:
    _, configs = markdown_extensions()
    if "pymdownx.snippets" not in configs:
        return None
    return markdown.Markdown(
        extensions=["pymdownx.snippets"],
        extension_configs={"pymdownx.snippets": configs["pymdownx.snippets"]},
    )


def expand_snippets(text: str) -> str:
    """Run pymdownx.snippets' own preprocessor, configured as in mkdocs.yml, over `text`."""
    md = _snippet_markdown()
    if md is None:
        return text
    return "\n".join(md.preprocessors["snippet"].run(text.split("\n")))


def page_text_as_built(page: Path) -> str:
    """The page's text as the site build hands it to its renderer.

    Markdown pages go through pymdownx.snippets. Notebook pages are rendered by nbconvert,
    which knows nothing of snippets, so a `--8<--` there stays literal (and is reported).
    """
    text = page.read_text(encoding="utf-8")
    return text if is_notebook_page(page) else expand_snippets(text)


@dataclass(frozen=True)
class SiteBuild:
    """The outcome of one `mkdocs build --strict` (see the `site_build` fixture in tests/conftest.py)."""

    site_dir: Path
    returncode: int
    log: str
    seconds: float


# --- fences -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fence:
    language: str  # first word of the info string, e.g. "python" for ```python title="x.py"
    info: str
    source: str
    line: int


_FENCE_LANGUAGE = re.compile(r"\{?\s*\.?([\w+-]*)")
_ANY_FENCE = RawFencedCodeBlockLexer(info_pattern=re.compile(r"(?P<info>[^\n]*)$\n", re.MULTILINE))


def fences(text: str) -> list[Fence]:
    """Every fenced code block of a Markdown text, in page order (sybil's own fence lexer)."""
    found = []
    for region in _ANY_FENCE(Document(text, "<text>")):
        info = region.lexemes["info"].strip()
        match = _FENCE_LANGUAGE.match(info)
        language = match.group(1) if match else ""
        line = text.count("\n", 0, region.start) + 1
        found.append(Fence(language, info, str(region.lexemes["source"]), line))
    return sorted(found, key=lambda fence: fence.line)


# --- the one cell a translation may change -------------------------------------------------------

#: The tag of a notebook cell that holds the words a page's charts and tables show. It is the
#: only code allowed to differ between the languages, and only in its strings (see below).
PAGE_LANGUAGE_TAG = "page-language"
_TAGS = re.compile(r"\btags\s*=\s*(\[[^\]]*\])")


def fence_tags(fence: Fence) -> list[str]:
    """The Jupytext cell tags of a fence, e.g. ["remove_input"] for ```python tags=["remove_input"]."""
    match = _TAGS.search(fence.info)
    return [str(tag) for tag in json.loads(match.group(1))] if match else []


def is_page_language_cell(fence: Fence) -> bool:
    return PAGE_LANGUAGE_TAG in fence_tags(fence)


class _BlankDictValues(ast.NodeTransformer):
    def visit_Dict(self, node: ast.Dict) -> ast.Dict:
        self.generic_visit(node)
        node.values = [
            ast.Constant("...") if isinstance(value, ast.Constant) and isinstance(value.value, str) else value
            for value in node.values
        ]
        return node


def language_neutral(source: str) -> str:
    """A page-language cell with its dict's string values blanked, and without its comments.

    Two translations of the cell must give the same result: the same code, the same keys, and
    other words only where a dictionary maps a key to a string.
    """
    return ast.dump(_BlankDictValues().visit(ast.parse(source)))


# --- sybil ------------------------------------------------------------------------------------


class AttributedFenceLexer(RawFencedCodeBlockLexer):
    """Lexes ```python and also ```python title="x.py" (or ```{.python title="x.py"}).

    Sybil's own lexer needs the info string to be the bare language, so a fence with
    attributes would silently not be tested (simplistix/sybil#155).
    """

    def __init__(self) -> None:
        super().__init__(
            info_pattern=re.compile(r"\{?[ \t]*\.?(?P<language>[\w+-]+)(?:[ \t}][^\n]*)?$\n", re.MULTILINE),
            mapping={"language": "arguments", "source": "source"},
        )


class AttributedCodeBlockParser(AbstractCodeBlockParser):
    def __init__(self, language: str, evaluator: Evaluator | None = None) -> None:
        super().__init__(
            [
                AttributedFenceLexer(),
                DirectiveInHTMLCommentLexer(directive=r"(invisible-)?code(-block)?", arguments=".+"),
            ],
            language,
            evaluator,
        )


class PythonExamplesParser(PythonDocTestOrCodeBlockParser):
    """Python fences run as code, or as doctests when they start with `>>>`.

    Fences may be indented (inside a list item, an admonition, or an exercise's collapsible
    solution). Sybil runs those, but it places their doctest examples by their offset in the
    dedented source, so a failure inside an indented fence was reported lines above the
    statement that failed. Here each example is placed where it is in the page.
    """

    codeblock_parser_class = AttributedCodeBlockParser

    def __call__(self, document: Document) -> Iterator[Region]:
        for region in self.codeblock_parser(document):
            source = region.parsed
            if not source.startswith(">>>"):
                yield region
                continue
            content_start = region.start + source.offset
            for example in self.doctest_parser(source, document.path):
                start, end = example.start, example.end
                example.start = _offset_in_page(document.text, content_start, source, start)
                example.end = _offset_in_page(document.text, content_start, source, end)
                yield example


def _offset_in_page(text: str, content_start: int, source: str, position: int) -> int:
    """Where `position` of a fence's dedented source is in the page: the same line, shifted
    right by the indentation that line lost."""
    line = source.count("\n", 0, position)
    column = position - (source.rfind("\n", 0, position) + 1)
    page_lines = text[content_start:].split("\n", line + 1)
    line_start = content_start + sum(len(page_line) + 1 for page_line in page_lines[:line])
    source_line = source.split("\n")[line] if line < source.count("\n") + 1 else ""
    lost_indent = max(len(page_lines[line]) - len(source_line), 0) if line < len(page_lines) else 0
    return line_start + lost_indent + column


def _has_reason(arguments: str | None) -> bool:
    """`"why"` or `if(condition, "why")`: sybil evaluates these; we insist the why is there."""
    text = (arguments or "").strip()
    if text.startswith("if"):
        text = "if_" + text[2:]
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError:
        return False
    if isinstance(tree, ast.Call):
        reasons = [*tree.args[1:], *(k.value for k in tree.keywords if k.arg == "reason")]
        return any(isinstance(r, ast.Constant) and isinstance(r.value, str) and r.value.strip() for r in reasons)
    return isinstance(tree, ast.Constant) and isinstance(tree.value, str) and bool(tree.value.strip())


class ReasonedSkipParser(SkipParser):
    """`<!-- skip: next "why" -->` before a fence marks the whole fence as not run.

    Two changes to sybil's skip directive, both against examples that look tested but are not:
    a reason is required, and `next` covers the whole next fence (in sybil it covers only the
    next example, which in a doctest fence is just its first `>>>` statement).
    """

    def __call__(self, document: Document) -> Iterator[Region]:
        for region in super().__call__(document):
            action, arguments = region.parsed
            where = f"{document.path}, {document.line_column(region.start)}"
            if action in ("start", "next") and not _has_reason(arguments):
                raise ValueError(f'{where}: "skip: {action}" needs a reason, e.g. <!-- skip: {action} "why" -->')
            if action != "next":
                yield region
                continue
            following = [f for f in _ANY_FENCE(document) if f.start >= region.end]
            if not following:
                raise ValueError(f'{where}: "skip: next" is not followed by a code block')
            fence_end = min(following, key=lambda f: f.start).end
            yield Region(region.start, region.end, ("start", arguments), region.evaluator)
            yield Region(fence_end, fence_end, ("end", None), region.evaluator)


def _source_lines(source: str, built: str) -> list[int]:
    """For each line of `built`, the line of `source` it came from (an include's lines map to it)."""
    source_lines, built_lines = source.split("\n"), built.split("\n")
    mapping: list[int] = []
    matcher = difflib.SequenceMatcher(a=source_lines, b=built_lines, autojunk=False)
    for tag, a_start, a_end, b_start, b_end in matcher.get_opcodes():
        for offset in range(b_end - b_start):
            if tag == "equal":
                mapping.append(a_start + offset + 1)
            else:
                mapping.append(min(a_start + offset, max(a_end - 1, a_start)) + 1)
    return mapping


class BuiltPageDocument(Document):
    """A page parsed from its text as built (see `page_text_as_built`).

    Examples report the line of the page's source, not of the expanded text, so that a
    failure points at the line an author can find (an included block reports its include line).
    """

    @classmethod
    def parse(cls, path: str, *parsers: Any, encoding: str = "utf-8") -> Document:
        source = Path(path).read_text(encoding=encoding)
        document = cls(page_text_as_built(Path(path)), path)
        document.line_map = _source_lines(source, document.text)
        for parser in parsers:
            for region in parser(document):
                document.add(region)
        return document

    line_map: list[int]

    def examples(self) -> Iterator[Example]:
        for example in super().examples():
            example.line = self.line_map[min(example.line, len(self.line_map)) - 1]
            yield example


@functools.cache
def docs_sybil() -> Sybil:
    """One sybil for every page, both languages: each page is one namespace, run top to bottom."""
    return Sybil(
        parsers=[PythonExamplesParser(doctest_optionflags=ELLIPSIS), ReasonedSkipParser()],
        patterns=["*.md"],
        path=str(DOCS),
        document_types={".md": BuiltPageDocument},
        name="docs",
    )


def executed_examples(page: Path) -> list[Example]:
    """The examples of a page that pytest will run: collected and not under an unconditional skip."""
    executed, skipping = [], False
    for example in docs_sybil().parse(page).examples():
        if isinstance(example.region.evaluator, Skipper):
            action, arguments = example.parsed
            conditional = (arguments or "").lstrip().startswith("if")
            skipping = action == "start" and not conditional
        elif not skipping:
            executed.append(example)
    return executed


def executed_example_count(page: Path) -> int:
    return len(executed_examples(page))


# --- admonitions and collapsible blocks (exercises and their solutions) ---------------------

#: Languages that mean Python; only ```python is run (tests/test_doc_examples.py enforces the tag).
PYTHON_LANGUAGES = {"python", "py", "py3", "python3", "pycon", "ipython", "ipython3", "Python"}

_BLOCK_START = re.compile(r"(?P<indent>[ ]*)(?P<marker>\?\?\?\+?|!!!)[ \t]+(?P<kind>[\w-]+)(?P<title>[^\n]*)")


@dataclass(frozen=True)
class Block:
    """An admonition (`!!! question "Exercise 1"`) or a pymdownx.details block
    (`??? success "Solution"`): its first line and every line indented under it."""

    marker: str  # "!!!", or "???" / "???+" for a collapsible block
    kind: str  # "question", "success", ...: language-neutral, unlike the title
    title: str
    start: int  # character offsets in the text
    end: int
    line: int

    @property
    def collapsible(self) -> bool:
        return self.marker.startswith("???")


def blocks(text: str) -> list[Block]:
    """Every admonition and collapsible block of a Markdown text, nested ones included, in page
    order. Lines inside code fences (an example of the syntax) are not blocks."""
    in_fences = [(region.start, region.end) for region in _ANY_FENCE(Document(text, "<text>"))]
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    found = []
    for index, line in enumerate(lines):
        match = _BLOCK_START.fullmatch(line.rstrip("\n"))
        if not match or any(start <= offsets[index] < end for start, end in in_fences):
            continue
        indent, last = len(match["indent"]), index
        for following in range(index + 1, len(lines)):
            body = lines[following]
            if body.strip():
                if len(body) - len(body.lstrip(" ")) <= indent:
                    break
                last = following
        title = match["title"].strip().strip('"')
        found.append(Block(match["marker"], match["kind"], title, offsets[index], offsets[last + 1], index + 1))
    return found


def unexecuted_python_in_collapsibles(page: Path) -> list[str]:
    """Python fences inside collapsible blocks (exercise solutions) that sybil would not run.

    Readers take a solution on trust; an example that is collapsed by default is also the one
    least likely to be noticed when it goes stale. Each must run like every other example.
    """
    text = page_text_as_built(page)
    executed = [example.region.start for example in executed_examples(page)]
    name = relative(page) if page.is_relative_to(DOCS) else str(page)
    problems = []
    for block in blocks(text):
        if not block.collapsible:
            continue
        for fence in _ANY_FENCE(Document(text[block.start : block.end], "<block>")):
            info = fence.lexemes["info"].strip()
            match = _FENCE_LANGUAGE.match(info)
            if not match or match.group(1) not in PYTHON_LANGUAGES:
                continue
            start, end = block.start + fence.start, block.start + fence.end
            if not any(start <= position < end for position in executed):
                line = text.count("\n", 0, start) + 1
                problems.append(f"{name}:{line}: a Python fence in {block.marker} {block.kind} "
                                f'"{block.title}" is not executed')
    return problems
