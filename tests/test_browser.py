"""A reader's path through the built site, in a real browser (Debian's chromium, headless).

Open the English tutorial, click the language switcher to Bengali, and check what a person
would see: a Bengali page, in a font that has Bengali glyphs, with the notebook's executed
output. Chromium is driven over the DevTools protocol with `websocket-client`; no browser is
downloaded. Screenshots go to build/screenshots/.

Needs: apt-get install chromium fonts-noto-core. Skipped when chromium is absent, except in
CI (CI=true), where its absence is a failure.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from docs_support import REPO

websocket = pytest.importorskip("websocket", reason="websocket-client is not installed")

SCREENSHOTS = REPO / "build" / "screenshots"
BENGALI_FONTS = ("Noto Sans Bengali", "Noto Serif Bengali", "Hind Siliguri", "Kalpurush", "SolaimanLipi")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--window-size=1280,900",
    "--remote-debugging-port=0",
]
TIMEOUT = 30.0


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        if path := shutil.which(name):
            return path
    message = "chromium is not installed (apt-get install chromium fonts-noto-core)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_until(condition: Any, what: str, timeout: float = TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.1)
    raise TimeoutError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def site_url(built_site: Path) -> Iterator[str]:
    """The built site over HTTP on 127.0.0.1 (the language switcher's links need a server)."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(built_site)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def up() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return True
            except OSError:
                return False

        _wait_until(up, "the HTTP server")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


class DevTools:
    """Just enough of the DevTools protocol: commands, and waiting for one event."""

    def __init__(self, url: str) -> None:
        self.socket = websocket.create_connection(url, timeout=TIMEOUT, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message["result"]
                return result
            self.events.append(message)

    def wait_for(self, event: str) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            for index, message in enumerate(self.events):
                if message.get("method") == event:
                    return self.events.pop(index)
            self.events.append(json.loads(self.socket.recv()))
        raise TimeoutError(event)

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def click(self, selector: str) -> None:
        """A real mouse click at the element's centre: hover first, as a person's pointer would."""
        box = self.evaluate(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + r.height / 2, r.width * r.height]; })()"
        )
        x, y, area = box
        assert area > 0, f"{selector} is not visible"
        self.send("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def screenshot(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self.send("Page.captureScreenshot", format="png")["data"]))

    def close(self) -> None:
        self.socket.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevTools]:
    profile = tmp_path_factory.mktemp("chromium-profile")
    log = (profile.parent / "chromium.log").open("w")
    process = subprocess.Popen(
        [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"], stdout=log, stderr=log
    )
    try:
        port_file = profile / "DevToolsActivePort"
        _wait_until(lambda: port_file.exists() and port_file.read_text().strip(), "chromium's DevTools port")
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=TIMEOUT) as response:
            (page,) = [target for target in json.load(response) if target["type"] == "page"][:1]
        tools = DevTools(page["webSocketDebuggerUrl"])
        for domain in ("Page", "Runtime", "DOM", "CSS"):
            tools.send(f"{domain}.enable")
        yield tools
        tools.close()
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def _bengali_text_node_fonts(tools: DevTools) -> list[dict[str, Any]]:
    """Fonts chromium actually used for the first Bengali text in the notebook's prose."""
    tools.evaluate(
        """(() => {
            const cells = document.querySelectorAll('.md-content .jp-RenderedMarkdown p, .md-content p');
            const probe = [...cells].find(p => [...p.childNodes].some(
                n => n.nodeType === 3 && /[\\u0980-\\u09FF]/.test(n.textContent)));
            probe.setAttribute('data-font-probe', '');
        })()"""
    )
    root = tools.send("DOM.getDocument", depth=-1)["root"]["nodeId"]
    node = tools.send("DOM.querySelector", nodeId=root, selector="[data-font-probe]")["nodeId"]
    fonts: list[dict[str, Any]] = tools.send("CSS.getPlatformFontsForNode", nodeId=node)["fonts"]
    return fonts


def _load(tools: DevTools, url: str) -> None:
    tools.events.clear()
    tools.send("Page.navigate", url=url)
    tools.wait_for("Page.loadEventFired")


def _executed_output(tools: DevTools) -> str:
    script = "[...document.querySelectorAll('.jp-OutputArea-output')].map(e => e.innerText).join('\\n')"
    return str(tools.evaluate(script))


def _comparable(output: str) -> str:
    """Output up to what differs between two executions of the same cells.

    Each language's notebook is executed separately: the timings (and the last digits of values
    computed from fresh random shares) differ, and so does how the kernel happened to split a
    cell's stream into output areas. Numbers and whitespace are therefore masked.
    """
    return " ".join(re.sub(r"\d+(?:\.\d+)?", "#", output).split())


def test_language_switch_to_bengali_tutorial(browser: DevTools, site_url: str) -> None:
    _load(browser, f"{site_url}/tutorial/")
    assert browser.evaluate("document.documentElement.lang") == "en"
    english_output = _executed_output(browser)
    assert english_output.strip(), "the English tutorial shows no executed output"
    browser.screenshot(SCREENSHOTS / "tutorial-en.png")

    browser.events.clear()
    browser.click(".md-header__option .md-select > button")  # hover opens the language menu
    browser.click('.md-select__link[hreflang="bn"]')
    browser.wait_for("Page.loadEventFired")
    _wait_until(lambda: browser.evaluate("document.fonts.status") == "loaded", "fonts to load")

    assert browser.evaluate("location.pathname") == "/bn/tutorial/"
    assert browser.evaluate("document.documentElement.lang") == "bn"
    bengali_letters = browser.evaluate(
        "(document.querySelector('.md-content').innerText.match(/[\\u0980-\\u09FF]/g) || []).length"
    )
    assert bengali_letters > 100, "the Bengali page has hardly any Bengali text"
    assert _comparable(_executed_output(browser)) == _comparable(english_output), (
        "the Bengali tutorial's output differs"
    )

    fonts = _bengali_text_node_fonts(browser)
    main_font = max(fonts, key=lambda font: font["glyphCount"])["familyName"]
    print(f"\nBengali prose rendered with: {fonts}")
    assert main_font in BENGALI_FONTS, f"Bengali text rendered in {main_font!r}"
    browser.screenshot(SCREENSHOTS / "tutorial-bn.png")


# --- search, in both languages ----------------------------------------------------------------


def _type(tools: DevTools, text: str) -> None:
    """Type text key by key, as a keyboard would (Material searches on keyup)."""
    for character in text:
        tools.send("Input.dispatchKeyEvent", type="keyDown", text=character, key=character)
        tools.send("Input.dispatchKeyEvent", type="keyUp", key=character)


def _search(tools: DevTools, query: str) -> list[str]:
    """Type `query` into the search box; the paths of the pages it finds, best first."""
    tools.click(".md-search__input")
    _type(tools, query)
    script = "[...document.querySelectorAll('.md-search-result__item > .md-search-result__link')]"
    script += ".map(a => new URL(a.href).pathname)"

    def results() -> list[str]:
        found: list[str] = tools.evaluate(script)
        return found

    try:
        return _wait_until(results, f"search results for {query!r}")
    except TimeoutError:
        meta = tools.evaluate("document.querySelector('.md-search-result__meta').innerText")
        pytest.fail(f"searching {query!r} found nothing; the search box says {meta!r}")


def _longest_word(text: str) -> str:
    return max(re.findall(r"[\u0980-\u09FF]+", text), key=len)


def test_search_finds_a_bengali_page_by_a_bengali_word(browser: DevTools, site_url: str) -> None:
    """lunr has no Bengali pipeline, and its default trimmer strips every non-ASCII letter:
    this is what a Bengali reader does, typing a word of a page's title into the search box."""
    _load(browser, f"{site_url}/bn/beaver-triples/")
    word = _longest_word(browser.evaluate("document.querySelector('.md-content h1').innerText"))
    found = _search(browser, word)
    browser.screenshot(SCREENSHOTS / "search-bn.png")
    print(f"\nsearching {word!r} found {found}")
    assert found[0] == "/bn/beaver-triples/", f"searching {word!r} found {found}"


def test_search_finds_a_bengali_word_in_running_text(browser: DevTools, site_url: str) -> None:
    _load(browser, f"{site_url}/bn/secret-sharing/")
    found = _search(browser, "ছাঁটাই")  # truncation: explained on the fixed-precision page
    assert "/bn/fixed-precision/" in found[:5], found


def test_search_finds_an_english_page_by_an_english_word(browser: DevTools, site_url: str) -> None:
    _load(browser, f"{site_url}/secret-sharing/")
    found = _search(browser, "truncation")
    browser.screenshot(SCREENSHOTS / "search-en.png")
    assert "/fixed-precision/" in found[:5], found


# --- notebook code cells ----------------------------------------------------------------------

#: For each code cell: the width its longest line needs unwrapped, the width it has, and whether
#: any element of the cell hides content to its right (scrollable or clipped).
CODE_CELLS = """[...document.querySelectorAll('.jp-InputArea-editor')].map(cell => {
    const pre = cell.querySelector('pre');
    const probe = document.createElement('span');
    probe.style.whiteSpace = 'pre';
    probe.style.font = getComputedStyle(pre).font;
    probe.textContent = pre.innerText.split('\\n').reduce((a, b) => a.length >= b.length ? a : b, '');
    document.body.appendChild(probe);
    const needed = probe.getBoundingClientRect().width;
    probe.remove();
    const hiding = [cell, ...cell.querySelectorAll('*')].filter(e => e.scrollWidth > e.clientWidth + 1);
    return {needed, available: pre.clientWidth, hidden: hiding.length > 0, line: probe.textContent};
})"""


@pytest.mark.parametrize("path", ["/tutorial/", "/bn/tutorial/", "/computation-time/"])
def test_notebook_code_cells_show_every_character(browser: DevTools, site_url: str, path: str) -> None:
    """A line longer than the cell is wide must wrap, not run on behind a scrollbar that
    overlay-scrollbar systems and touch screens do not show."""
    _load(browser, f"{site_url}{path}")
    cells = browser.evaluate(CODE_CELLS)
    assert cells, "no code cells found"
    hidden = [cell["line"] for cell in cells if cell["hidden"]]
    assert not hidden, f"code cells that hide the end of a line: {hidden}"
    if path == "/tutorial/":
        wide = [cell for cell in cells if cell["needed"] > cell["available"]]
        assert wide, "no line is wider than its cell: the check above proved nothing"
        browser.evaluate(
            "document.querySelectorAll('.jp-InputArea-editor')"
            f"[{cells.index(wide[0])}].scrollIntoView({{block: 'center'}})"
        )
        browser.screenshot(SCREENSHOTS / "tutorial-wide-cell.png")
