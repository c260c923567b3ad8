"""mkdocs hook: offer every notebook page as a Jupyter notebook to download.

The executed pages (the tutorial, computation time) are Jupytext Markdown, not .ipynb: an .ipynb
page breaks with mkdocs-static-i18n (ultrabug/mkdocs-static-i18n#198), and mkdocs-jupyter's own
download button would hand out the Markdown source. So this hook converts the page's source with
Jupytext and writes it next to the built page (tutorial/tutorial.ipynb, and
bn/tutorial/tutorial.bn.ipynb for the Bengali page), with a download link at the top of the page.

The notebook has no outputs: it is the page's code and text, to run on your own machine. Its
cells are the page's cells, the hidden build-machine cell included (it keeps its remove_input
tag, and does nothing on a normal installation). tests/test_site_build.py checks that every
notebook page links a notebook that exists, is valid, and holds that page's code.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import jupytext
import nbformat
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.pages import Page

LINK_TEXT = {
    "en": "Download this page as a Jupyter notebook",
    "bn": "এই পাতাটি জুপিটার নোটবুক (Jupyter notebook) হিসেবে ডাউনলোড করুন",
}
NOTE = {
    "en": "without outputs: run it on your own machine after installing the package",
    "bn": "আউটপুট ছাড়া: প্যাকেজটি ইনস্টল করে নিজের যন্ত্রে চালান",
}


def notebook_name(source: str) -> str:
    """tutorial.md -> tutorial.ipynb, tutorial.bn.md -> tutorial.bn.ipynb."""
    return Path(source).name.removesuffix(".md") + ".ipynb"


def page_as_notebook(source: Path) -> nbformat.NotebookNode:
    notebook = jupytext.read(source, fmt="md")
    notebook.metadata.pop("jupytext", None)  # a plain notebook, not paired with a text file
    nbformat.validate(notebook)
    return notebook


def on_page_content(html_content: str, page: Page, config: MkDocsConfig, **kwargs: Any) -> str:
    if "jp-Notebook" not in html_content:  # rendered by mkdocs-jupyter
        return html_content
    source = Path(page.file.abs_src_path or "")
    name = notebook_name(page.file.src_uri)
    destination = Path(page.file.abs_dest_path).parent / name
    destination.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(page_as_notebook(source), destination)
    language = "bn" if page.file.src_uri.endswith(".bn.md") else "en"
    link = (
        f'<p class="notebook-download"><a class="md-button" href="{html.escape(name)}" download>'
        f"{LINK_TEXT[language]}</a> <small>({NOTE[language]})</small></p>"
    )
    return link + html_content
