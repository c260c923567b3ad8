"""Every file in snippets/ runs on its own, as a script, the way a reader would run it.

The pages include sections of these files (pymdownx.snippets) and sybil runs those sections in
the pages' namespaces; this test runs each whole file in a fresh interpreter, from the repository
root, so a snippet that only works inside a page (or prints nothing on its own) is caught.

The package is made importable as if it were installed (`pip install -e .`, as the README says),
whether or not it is installed in the environment running the tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SNIPPETS = sorted((REPO / "snippets").glob("*.py"))
TIMEOUT_SECONDS = 600


def test_there_are_snippets() -> None:
    assert SNIPPETS, "snippets/ holds no Python files"


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[path.name for path in SNIPPETS])
def test_snippet_runs_as_a_script(snippet: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(
        [sys.executable, str(snippet.relative_to(REPO))],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
    )
    assert result.returncode == 0, f"{snippet.name} exited with {result.returncode}:\n{result.stderr[-4000:]}"
    assert result.stdout.strip(), f"{snippet.name} printed nothing: a standalone run should show something"
