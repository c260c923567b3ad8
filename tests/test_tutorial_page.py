"""The tutorial page runs PySyft's own code: its cells cannot drift from tests/tutorial/part12bis.py.

docs/tutorial.md (and its Bengali twin) is an executed notebook whose code cells are PySyft's
"Part 12 bis" cells, in order, with only the changes the page announces: the import line, and
MNIST read from a local folder (`data_root`, set by one visible setup cell) instead of
'../data'. One more setup cell, hidden by its tag, makes torchvision importable on the build
machine. Undo exactly those changes and the original must come back, character for character.
"""

from __future__ import annotations

import pytest

from docs_support import DOCS, Fence, fences, plugin_config
from test_tutorial import OUR_IMPORT, SYFT_IMPORT, tutorial_cells

PAGES = [DOCS / "tutorial.md", DOCS / "tutorial.bn.md"]
HIDDEN_TAG = "remove_input"
ORIGINAL_DATA = "datasets.MNIST('../data',"
OUR_DATA = "datasets.MNIST(data_root,"


def python_cells(page) -> list[Fence]:
    return [fence for fence in fences(page.read_text(encoding="utf-8")) if fence.language == "python"]


def split_setup(cells: list[Fence]) -> tuple[Fence, Fence, list[str]]:
    """(hidden torchvision cell, data cell, the tutorial's cells as the page shows them)."""
    hidden = [cell for cell in cells if HIDDEN_TAG in cell.info]
    assert len(hidden) == 1, f"expected one cell tagged {HIDDEN_TAG!r}, found {len(hidden)}"
    data = [cell for cell in cells if "data_root = " in cell.source]
    assert len(data) == 1, f"expected one cell defining data_root, found {len(data)}"
    tutorial = [cell.source.strip("\n") for cell in cells if cell not in (hidden[0], data[0])]
    return hidden[0], data[0], tutorial


def undo_allowed_changes(cell: str) -> str:
    return cell.replace(OUR_IMPORT, SYFT_IMPORT).replace(OUR_DATA, ORIGINAL_DATA)


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_code_cells_are_the_original_tutorial(page) -> None:
    cells = python_cells(page)
    hidden, data, tutorial = split_setup(cells)
    assert [undo_allowed_changes(cell) for cell in tutorial] == tutorial_cells()
    # Each allowed change is made where the original has it, and nowhere else.
    assert sum(cell.count(OUR_IMPORT) for cell in tutorial) == 1
    assert sum(cell.count(OUR_DATA) for cell in tutorial) == sum(c.count(ORIGINAL_DATA) for c in tutorial_cells())
    # The setup cells run before what needs them: torchvision's import, and the data loaders.
    assert cells.index(hidden) == 0
    first_use = next(i for i, cell in enumerate(cells) if OUR_DATA in cell.source)
    assert cells.index(data) < first_use
    # The hidden cell only works around torchvision; the data cell only prepares the data.
    assert "torch.library.Library(\"torchvision\", \"DEF\")" in hidden.source
    assert "prepare_torchvision_root(" in data.source and "syft" not in data.source + hidden.source


def test_the_setup_cell_tag_is_the_one_the_build_hides() -> None:
    options = plugin_config("mkdocs-jupyter").get("remove_tag_config") or {}
    # mkdocs-jupyter passes on only the first tag of each list to nbconvert.
    assert list(options.get("remove_input_tags") or [])[:1] == [HIDDEN_TAG]


def test_both_languages_have_identical_code_cells() -> None:
    english, bengali = ([(cell.info, cell.source) for cell in python_cells(page)] for page in PAGES)
    assert bengali == english
