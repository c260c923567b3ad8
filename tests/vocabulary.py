"""The site's Bengali vocabulary (docs/vocabulary.yml), and a check of a page's prose against it.

A Bengali page drifts term by term: one translator writes কর্মী, the next ওয়ার্কার, and a
student reading both wonders whether they are two kinds of party. The vocabulary names the one
Bengali term for each English term and the variants to avoid; this module finds those variants,
and digits of the wrong script, in the prose of a page. Code, inline code, URLs, HTML tags and
comments, attribute lists and math are blanked first (keeping every line and column where it
was), so a finding points at the line an author edits, and code is never "corrected".

Run as a script to check pages by hand: `python tests/vocabulary.py docs/security.bn.md`.
"""

from __future__ import annotations

import bisect
import functools
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
VOCABULARY = REPO / "docs" / "vocabulary.yml"

BENGALI_LETTER = "\u0980-\u09ff"
BENGALI_DIGITS = "০১২৩৪৫৬৭৮৯"
DIGIT_CONVENTIONS = {
    # convention -> (the digits prose must not use, the advice a finding gives)
    # ASCII digits, grouped in thousands as every output prints them: 109,386, not 1,09,386.
    "ascii": (
        re.compile(rf"[{BENGALI_DIGITS}]+|(?<![\d,])\d{{1,2}}(?:,\d\d)+,\d{{3}}(?![\d,])"),
        "ASCII digits 0-9, grouped in thousands (the site's digits convention)",
    ),
    "bengali": (re.compile(r"(?<![A-Za-z_^.\d])\d+"), "Bengali digits ০-৯ (the site's digits convention)"),
}


# --- the vocabulary ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """One way of writing a term that Bengali prose must not use."""

    pattern: re.Pattern[str]
    shown: str  # the variant as the glossary lists it
    ascii: bool  # ASCII variants are allowed inside an English gloss in parentheses
    why: str = ""  # for a regex variant: when the word is wrong, told to whoever wrote it


@dataclass(frozen=True)
class Term:
    english: str
    bengali: str
    avoid: tuple[Variant, ...]
    page: str
    meaning: dict[str, str]


@dataclass(frozen=True)
class Section:
    id: str
    title: dict[str, str]
    terms: tuple[Term, ...]


@dataclass(frozen=True)
class Vocabulary:
    digits: str
    sections: tuple[Section, ...]

    @property
    def terms(self) -> list[Term]:
        return [term for section in self.sections for term in section.terms]


def _variant(entry: str | dict[str, str], where: str) -> Variant:
    if isinstance(entry, dict):
        if not {"regex", "shown"} <= set(entry) <= {"regex", "shown", "why"}:
            keys = sorted(entry)
            raise ValueError(f"{where}: a regex variant is {{regex: ..., shown: ..., why: ...}}, got keys {keys}")
        try:
            pattern = re.compile(entry["regex"])
        except re.error as error:
            raise ValueError(f"{where}: bad regex {entry['regex']!r}: {error}") from error
        return Variant(pattern, entry["shown"], ascii=entry["regex"].isascii(), why=entry.get("why", ""))
    if not isinstance(entry, str) or not entry.strip():
        raise ValueError(f"{where}: a variant is a non-empty string or {{regex, shown}}, got {entry!r}")
    if entry.isascii():
        # A whole word, in any case: "Alice" at the start of a sentence is the same drift.
        words = r"\s+".join(re.escape(word) for word in entry.split())
        return Variant(re.compile(rf"(?<![\w-]){words}(?![\w-])", re.IGNORECASE), entry, ascii=True)
    # The start of a Bengali word: suffixes (-দের, -টি, -র) are how Bengali inflects.
    words = r"\s+".join(re.escape(word) for word in entry.split())
    return Variant(re.compile(rf"(?<![{BENGALI_LETTER}]){words}"), entry, ascii=False)


def parse_vocabulary(data: dict) -> Vocabulary:
    """Validate the YAML's structure with errors that say where, then build the vocabulary."""
    digits = data.get("digits")
    if digits not in DIGIT_CONVENTIONS:
        raise ValueError(f"vocabulary: digits must be one of {sorted(DIGIT_CONVENTIONS)}, got {digits!r}")
    sections = []
    for s_index, section in enumerate(data.get("sections") or []):
        terms = []
        for t_index, term in enumerate(section.get("terms") or []):
            where = f"vocabulary: section {section.get('id', s_index)!r}, term {term.get('en', t_index)!r}"
            missing = {"en", "bn", "page", "meaning"} - set(term)
            if missing:
                raise ValueError(f"{where}: missing {sorted(missing)}")
            if set(term["meaning"]) != {"en", "bn"}:
                raise ValueError(f"{where}: meaning needs exactly en and bn")
            avoid = tuple(_variant(entry, where) for entry in term.get("avoid") or [])
            terms.append(Term(term["en"], term["bn"], avoid, term["page"], dict(term["meaning"])))
        sections.append(Section(section["id"], dict(section["title"]), tuple(terms)))
    return Vocabulary(digits, tuple(sections))


@functools.cache
def load_vocabulary(path: Path = VOCABULARY) -> Vocabulary:
    return parse_vocabulary(yaml.safe_load(path.read_text(encoding="utf-8")))


# --- prose: everything a reader reads as Bengali text -----------------------------------------

_FENCE_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})")
_FRONT_MATTER = re.compile(r"\A---\n.*?\n(?:---|\.\.\.)\n", re.S)
_NOT_PROSE = [
    re.compile(r"<!--.*?-->", re.S),  # HTML comments (sybil directives, jupytext markers)
    re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)", re.S),  # inline code, any number of backticks
    re.compile(r"\$\$.+?\$\$|\$[^$\n]+\$", re.S),  # math
    re.compile(r"\\\(.+?\\\)|\\\[.+?\\\]", re.S),
    re.compile(r"\]\([^)\s]*(?:\s+\"[^\"]*\")?\)"),  # link targets ](url "title")
    re.compile(r"^\s*\[[^\]]+\]:\s*\S+.*$", re.M),  # reference definitions
    re.compile(r"<(?:https?://|mailto:)[^>]+>"),  # autolinks
    re.compile(r"https?://\S+"),  # bare URLs
    re.compile(r"</?[A-Za-z][^>]*>"),  # HTML tags with their attributes (text between them stays)
    re.compile(r"\{\s*:?\s*[#.][^}\n]*\}"),  # attribute lists: {#id}, { .class }, {: #id }
    re.compile(r"^\s*;*-+8<-+.*$", re.M),  # snippet includes
]


def _blank(text: str) -> str:
    """Spaces for every character but newlines: lines and columns stay where they were."""
    return re.sub(r"[^\n]", " ", text)


def _blank_fences(text: str) -> str:
    lines = text.split("\n")
    fence: str | None = None
    for index, line in enumerate(lines):
        if fence is None:
            match = _FENCE_OPEN.match(line)
            if match:
                fence = match["fence"]
                lines[index] = _blank(line)
        else:
            stripped = line.strip()
            if stripped.startswith(fence) and set(stripped) == {fence[0]}:
                fence = None
            lines[index] = _blank(line)
    return "\n".join(lines)


def prose(text: str) -> str:
    """The page with everything that is not prose blanked, same length, same lines and columns."""
    text = _FRONT_MATTER.sub(lambda m: _blank(m.group()), text)
    text = _blank_fences(text)
    for pattern in _NOT_PROSE:
        text = pattern.sub(lambda m: _blank(m.group()), text)
    return text


_ENGLISH_GLOSS = re.compile(rf"\([^(){BENGALI_LETTER}\n]*\)")


def _in_english_gloss(line: str, start: int, end: int) -> bool:
    return any(gloss.start() < start and end < gloss.end() for gloss in _ENGLISH_GLOSS.finditer(line))


# --- findings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    line: int
    column: int
    found: str
    problem: str  # the variant, or "digits"
    use: str  # what to write instead

    def describe(self, page: str) -> str:
        return f"{page}:{self.line}:{self.column}: {self.found!r} ({self.problem}): use {self.use}"


def _advice(term: Term) -> str:
    glossed = f"({term.english})" in term.bengali
    return term.bengali if glossed else f"{term.bengali} ({term.english})"


def check_text(text: str, vocabulary: Vocabulary | None = None) -> list[Finding]:
    """Every forbidden variant and wrong-script digit in the prose of a Bengali Markdown text.

    The whole text is searched at once, not line by line: a paragraph wraps wherever it likes,
    and a two-word variant, or a regex looking past the end of a word, must see across the wrap.
    """
    vocabulary = vocabulary or load_vocabulary()
    digits, advice = DIGIT_CONVENTIONS[vocabulary.digits]
    text = prose(text)
    line_starts = [0] + [index + 1 for index, char in enumerate(text) if char == "\n"]

    def where(offset: int) -> tuple[int, int]:
        line = bisect.bisect_right(line_starts, offset)
        return line, offset - line_starts[line - 1] + 1

    findings: list[Finding] = []
    for term in vocabulary.terms:
        for variant in term.avoid:
            for match in variant.pattern.finditer(text):
                line, column = where(match.start())
                line_text = text[line_starts[line - 1] :].split("\n", 1)[0]
                if variant.ascii and _in_english_gloss(line_text, column - 1, column - 1 + len(match.group())):
                    continue
                problem = f"avoid {variant.shown}" + (f": {variant.why}" if variant.why else "")
                findings.append(Finding(line, column, match.group(), problem, _advice(term)))
    for match in digits.finditer(text):
        findings.append(Finding(*where(match.start()), match.group(), "digits", advice))
    return sorted(findings, key=lambda finding: (finding.line, finding.column))


def check_vocabulary_texts(vocabulary: Vocabulary | None = None) -> list[str]:
    """The Bengali definitions the glossary shows must follow the vocabulary they define."""
    vocabulary = vocabulary or load_vocabulary()
    problems = []
    for term in vocabulary.terms:
        for finding in check_text(term.meaning["bn"], vocabulary):
            where = f"{VOCABULARY.name}, meaning of {term.english!r}"
            problems.append(f"{where}: {finding.found!r} ({finding.problem}): use {finding.use}")
    return problems


def main(paths: Iterable[str]) -> int:
    total = 0
    for path in paths:
        for finding in check_text(Path(path).read_text(encoding="utf-8")):
            print(finding.describe(path))
            total += 1
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
