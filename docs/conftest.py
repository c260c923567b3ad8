"""Runs every Python example of the docs, English and Bengali, as a pytest test (via sybil).

The parsing lives in tests/docs_support.py, shared with the parity and site-build checks so
that all of them read a page the way `mkdocs build` does. This file is excluded from the
site by `exclude_docs` in mkdocs.yml.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from docs_support import docs_sybil  # noqa: E402

pytest_collect_file = docs_sybil().pytest()
