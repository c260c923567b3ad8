"""Every Bengali page's prose uses the one vocabulary of docs/vocabulary.yml and its digits.

The checker lives in tests/vocabulary.py; these tests run it on every page, and on synthetic
texts to show that it flags what it should and leaves code, links and glosses alone.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from docs_support import DOCS, TRANSLATION_SUFFIX, relative
from vocabulary import check_text, check_vocabulary_texts, load_vocabulary, parse_vocabulary, prose

BENGALI_PAGES = sorted(DOCS.rglob(f"*{TRANSLATION_SUFFIX}"))


@pytest.mark.parametrize("page", [pytest.param(page, id=relative(page)) for page in BENGALI_PAGES])
def test_bengali_prose_follows_the_vocabulary(page: Path) -> None:
    findings = check_text(page.read_text(encoding="utf-8"))
    assert not findings, "\n".join(
        [f"{len(findings)} departures from docs/vocabulary.yml:"]
        + [finding.describe(f"docs/{relative(page)}") for finding in findings]
    )


def test_glossary_definitions_follow_the_vocabulary() -> None:
    problems = check_vocabulary_texts()
    assert not problems, "\n".join(problems)


def test_every_english_term_has_one_entry() -> None:
    english = [term.english for term in load_vocabulary().terms]
    duplicates = sorted({name for name in english if english.count(name) > 1})
    assert not duplicates, f"terms listed twice in docs/vocabulary.yml: {duplicates}"


def test_every_bengali_term_passes_its_own_check() -> None:
    """A variant that matches a recommended term would make that term unwritable."""
    clashes = {term.bengali: [f.found for f in check_text(term.bengali)] for term in load_vocabulary().terms}
    clashes = {term: found for term, found in clashes.items() if found}
    assert not clashes, f"recommended terms that the vocabulary itself flags: {clashes}"


def test_every_term_links_to_an_existing_page() -> None:
    missing = sorted({term.page for term in load_vocabulary().terms if not (DOCS / term.page.split("#")[0]).is_file()})
    assert not missing, f"docs/vocabulary.yml links to pages that do not exist: {missing}"


# --- the checker itself: it must flag what it should, and only that ---------------------------


def findings_of(text: str) -> list[tuple[int, str, str]]:
    return [(f.line, f.found, f.use) for f in check_text(text)]


def test_flags_a_forbidden_variant_with_page_line_and_the_term_to_use() -> None:
    text = "# শিরোনাম\n\nপ্রথম লাইন।\nদুই ওয়ার্কারদের কাছে ভাগ থাকে।\n"
    (finding,) = check_text(text)
    assert (finding.line, finding.column, finding.found) == (4, 5, "ওয়ার্কার")
    message = finding.describe("docs/x.bn.md")
    assert message.startswith("docs/x.bn.md:4:5: 'ওয়ার্কার'") and "কর্মী (worker)" in message


def test_flags_bengali_digits_under_the_ascii_convention() -> None:
    assert load_vocabulary().digits == "ascii"
    advice = "ASCII digits 0-9, grouped in thousands (the site's digits convention)"
    assert findings_of("৬৪টি ছবি, 64টি ছবি।") == [(1, "৬৪", advice)]
    assert findings_of("1,09,386টি প্যারামিটার, 109,386টি, 12,288টি, 2,3 আর 1,00,000।") == [
        (1, "1,09,386", advice), (1, "1,00,000", advice)]


def test_code_links_html_and_math_are_not_prose() -> None:
    text = "\n".join(
        [
            "```python",
            "worker = 'ওয়ার্কার ৬৪'  # alice",
            "```",
            "    ```text",
            "    alice → bob: ১৬",
            "    ```",
            "`alice` আর ``bob`` কোডে থাকে; [পাতা](https://example.org/ডিলার/৬৪)",
            "আর <span title=\"alice\">অ্যালিস</span>।",
            "<!-- skip: next \"alice বলয়\" -->",
            "গণিতে $x_{৬৪}$ চলে। {#alice}",
            "--8<-- \"snippets/alice.py\"",
        ]
    )
    assert findings_of(text) == []
    assert len(prose(text)) == len(text) and prose(text).count("\n") == text.count("\n")


def test_ascii_variants_are_allowed_only_as_an_english_gloss() -> None:
    assert findings_of("প্রথমবার ক্যারি (carry), তারপর শুধু ক্যারি।") == []
    assert [found for _, found, _ in findings_of("তারপর carry যায়, আর Alice পাঠায়।")] == ["carry", "Alice"]
    # A parenthesis with Bengali in it is prose, not a gloss.
    assert [found for _, found, _ in findings_of("(carry যায় পরের ঘরে)")] == ["carry"]
    # Identifiers are not names: x_alice is notation.
    assert findings_of("x = x_alice + x_bob") == []


def test_inflected_bengali_variants_are_found_but_not_inside_other_words() -> None:
    assert [found for _, found, _ in findings_of("ডিলারের কাছে, বলয়ে।")] == ["ডিলার", "বলয়"]
    assert findings_of("নির্দিষ্ট নির্ভুলতা আর নির্দিষ্ট-নির্ভুলতার টেনসর; ক্ষতিগ্রস্ত মান।") == []
    found = [found for _, found, _ in findings_of("মডেলের নির্ভুলতা আর প্রতিটি ব্যাচের ক্ষতি।")]
    assert found == ["নির্ভুলতা", "ক্ষতি"]


def test_a_scratch_copy_of_a_page_with_a_variant_fails(tmp_path: Path) -> None:
    """The page test on a real page, edited to drift: it must report that line and nothing new elsewhere."""
    page = DOCS / f"secret-sharing{TRANSLATION_SUFFIX}"
    lines = page.read_text(encoding="utf-8").split("\n")
    heading = next(index for index, line in enumerate(lines) if line.startswith("# "))
    lines.insert(heading + 2, "এখানে দুই ওয়ার্কার আর একজন ডিলার আছে, ১০০টি ছবি।")
    scratch = tmp_path / page.name
    scratch.write_text("\n".join(lines), encoding="utf-8")
    before = {(f.line + (f.line > heading + 2), f.found) for f in check_text(page.read_text(encoding="utf-8"))}
    after = [(f.line, f.found) for f in check_text(scratch.read_text(encoding="utf-8"))]
    new = [finding for finding in after if finding not in before]
    assert new == [(heading + 3, "ওয়ার্কার"), (heading + 3, "ডিলার"), (heading + 3, "১০০")]


def test_bad_vocabulary_files_are_refused_clearly() -> None:
    with pytest.raises(ValueError, match="digits must be one of"):
        parse_vocabulary({"digits": "roman", "sections": []})
    term = {"en": "x", "bn": "এক্স", "page": "index.md", "meaning": {"en": "", "bn": ""}, "avoid": [{"regex": "("}]}
    with pytest.raises(ValueError, match="term 'x': a regex variant"):
        parse_vocabulary({"digits": "ascii", "sections": [{"id": "s", "title": {}, "terms": [term]}]})
    term["avoid"] = [{"regex": "(", "shown": "x"}]
    with pytest.raises(ValueError, match="bad regex"):
        parse_vocabulary({"digits": "ascii", "sections": [{"id": "s", "title": {}, "terms": [term]}]})
