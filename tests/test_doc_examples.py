"""Checks on the docs' examples themselves (sybil runs them: see docs/conftest.py).

These catch examples that would silently not be tested: includes left unexpanded, fences
sybil does not collect, skips without a reason, pages without any executed example.
"""

from __future__ import annotations

from pathlib import Path
from unittest import SkipTest

import pytest
from sybil.example import SybilFailure

from docs_support import (
    SNIPPET_LINE,
    all_pages,
    docs_sybil,
    executed_example_count,
    fences,
    page_text_as_built,
    relative,
    unexecuted_python_in_collapsibles,
)

MIN_PAGES_WITH_EXAMPLES = 0.80
PYTHON_ALIASES = {"py", "py3", "python3", "pycon", "ipython", "ipython3", "Python"}


def test_python_fences_have_no_unexpanded_snippets() -> None:
    """A `--8<--` line left in a Python fence would be shown to readers and executed as Python.

    That happens on notebook pages (nbconvert knows no snippets) and with include syntax
    that pymdownx.snippets does not recognise (e.g. inside a blockquote).
    """
    leftovers = [
        f"{relative(page)}:{fence.line}: {line.strip()}"
        for page in all_pages()
        for fence in fences(page_text_as_built(page))
        if fence.language == "python"
        for line in fence.source.splitlines()
        if SNIPPET_LINE.match(line)
    ]
    assert not leftovers, "snippet lines not expanded by the build:\n" + "\n".join(leftovers)


def test_python_fences_are_tagged_python() -> None:
    """Sybil and Jupytext run only ```python fences; ```py would be shown but never run."""
    aliased = [
        f"{relative(page)}:{fence.line}: ```{fence.info}"
        for page in all_pages()
        for fence in fences(page.read_text(encoding="utf-8"))
        if fence.language in PYTHON_ALIASES
    ]
    assert not aliased, "use ```python for Python code:\n" + "\n".join(aliased)


def test_most_pages_carry_an_executed_example() -> None:
    """Docs drift unless their code runs: at least 80% of pages (both languages) must run some."""
    counts = {relative(page): executed_example_count(page) for page in all_pages()}
    with_examples = [page for page, count in counts.items() if count]
    share = len(with_examples) / len(counts)
    print(
        f"\n{len(with_examples)} of {len(counts)} pages ({share:.0%}) carry an executed example; "
        f"without: {', '.join(sorted(set(counts) - set(with_examples))) or 'none'}"
    )
    assert share >= MIN_PAGES_WITH_EXAMPLES


def _write(tmp_path: Path, text: str) -> Path:
    page = tmp_path / "page.md"
    page.write_text(text, encoding="utf-8")
    return page


def test_skip_needs_a_reason(tmp_path: Path) -> None:
    page = _write(tmp_path, "<!-- skip: next -->\n```python\n1 / 0\n```\n")
    with pytest.raises(ValueError, match="needs a reason"):
        docs_sybil().parse(page)


def test_skip_next_covers_the_whole_doctest_fence(tmp_path: Path) -> None:
    """Sybil's own `skip: next` would skip only the first `>>>` statement of the fence."""
    page = _write(
        tmp_path,
        '<!-- skip: next "demonstration" -->\n```python\n>>> x = 1\n>>> 1 / 0\n```\n\n'
        "```python\n>>> 2 + 2\n4\n```\n",
    )
    outcomes = []
    for example in docs_sybil().parse(page).examples():
        try:
            example.evaluate()
            outcomes.append("ran")
        except SkipTest:
            outcomes.append("skipped")
    assert outcomes == ["ran", "skipped", "skipped", "ran", "ran"]  # start, 2 skipped, end, 2 + 2


def test_fences_with_attributes_are_run(tmp_path: Path) -> None:
    page = _write(tmp_path, '```python title="demo.py" linenums="1"\nraise RuntimeError("ran")\n```\n')
    (example,) = docs_sybil().parse(page).examples()
    with pytest.raises(RuntimeError, match="ran"):
        example.evaluate()


def test_doctest_output_is_checked(tmp_path: Path) -> None:
    page = _write(tmp_path, "```python\n>>> 1 + 1\n3\n```\n")
    (example,) = docs_sybil().parse(page).examples()
    with pytest.raises(SybilFailure):
        example.evaluate()


def test_solution_in_a_collapsible_block_is_executed(tmp_path: Path) -> None:
    """An exercise's solution is a fence indented under `??? success`: sybil must run it, and a
    wrong answer must fail at the line of the statement that is wrong."""
    page = _write(
        tmp_path,
        '!!! question "Exercise"\n    What is 1 + 1?\n\n??? success "Solution"\n'
        "    ```python\n    >>> x = 1\n    >>> x + 1\n    3\n    ```\n",
    )
    first, second = docs_sybil().parse(page).examples()
    first.evaluate()
    with pytest.raises(SybilFailure):
        second.evaluate()
    assert second.line == 7


def test_unexecuted_solutions_are_reported(tmp_path: Path) -> None:
    page = _write(
        tmp_path,
        '??? success "Skipped"\n    <!-- skip: next "not run" -->\n    ```python\n    x = 1\n    ```\n\n'
        '???+ success "Wrong tag"\n    ```py\n    y = 2\n    ```\n\n'
        '??? note "Run"\n    ```python\n    z = 3\n    ```\n\n'
        "```markdown\n??? success \"Syntax shown, not a block\"\n    ```python\n```\n",
    )
    problems = unexecuted_python_in_collapsibles(page)
    assert [problem.split('"')[1] for problem in problems] == ["Skipped", "Wrong tag"]


def test_every_python_fence_in_a_collapsible_block_is_executed() -> None:
    problems = [problem for page in all_pages() for problem in unexecuted_python_in_collapsibles(page)]
    assert not problems, "\n".join(problems)
