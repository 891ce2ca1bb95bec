"""The built book, opened in headless Chromium (``make browser``, after ``make book``).

Every HTML page of ``_build/html`` (or ``$W2SG_SITE``) is served on 127.0.0.1 and loaded
in Debian's Chromium through Selenium and chromedriver. On every page: no console
error, MathJax (the vendored copy) has typeset the mathematics with no error node and no
raw TeX delimiter left in the text, every image has loaded (``naturalWidth > 0``), and
every internal link points at a file that exists and, where it has a ``#fragment``, at
an element with that id; no block (code cell, output, display equation, table, theorem
box) is wider than the box that shows it, at a 1280-pixel window, so nothing scrolls
sideways; and no cell output shows a warning or a local path of the building machine.
Screenshots of the landing page, a theorem page, the
experiments chapter and the ledger are saved in ``_build/screenshots/``.

Without Chromium (``make chromium`` installs it as root with apt-get) the test skips with
a message that says so; in CI (``CI=true``) it fails instead.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import tempfile
import threading
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
SITE = Path(os.environ.get("W2SG_SITE", ROOT / "_build" / "html"))
SHOTS = Path(os.environ.get("W2SG_SCREENSHOTS", ROOT / "_build" / "screenshots"))
SCREENSHOTS = {  # name -> (page, element to show at the top, or None for the whole page)
    "landing": ("book/intro.html", None),
    "theorem": ("notebooks/ch02_misfit.html", "div.theorem"),
    "experiments": ("notebooks/ch05_experiments.html", None),
    "ledger": ("book/ledger.html", None),
}
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,900"]
# Text no page may show in a cell's output: a warning, or a path of the machine that
# built the book.
OUTPUT_LEAKS = re.compile(r"\b\w*Warning\b:|site-packages|/root/|/home/\w+/|/work/|"
                          r"/tmp/|\.venv/")
# Text that MathJax leaves behind when it did not typeset (outside code and math nodes).
RAW_TEX = ["$$", "\\(", "\\)", "\\[", "\\]", "\\begin{", "\\frac", "\\mathbb"]

PAGE_REPORT_JS = """
const done = arguments[arguments.length - 1];
const report = () => {
  const skip = 'pre, code, script, style, textarea, mjx-container, .highlight, .output';
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  let text = '';
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (!n.parentElement.closest(skip)) text += n.nodeValue + ' ';
  }
  done({
    ready: document.readyState,
    title: document.title,
    mathjax: typeof MathJax !== 'undefined' && !!MathJax.startup,
    math_nodes: document.querySelectorAll('.math, span.math, div.math').length,
    typeset: document.querySelectorAll('mjx-container').length,
    errors: Array.from(document.querySelectorAll('mjx-merror, [data-mjx-error]'))
      .map(e => e.getAttribute('data-mjx-error') || e.textContent).slice(0, 5),
    text: text,
    images: Array.from(document.images).map(i => ({src: i.currentSrc || i.src,
                                                   complete: i.complete, width: i.naturalWidth})),
    ids: Array.from(document.querySelectorAll('[id], a[name]')).map(e => e.id || e.name),
    links: Array.from(document.querySelectorAll('a[href], link[href]'))
      .map(a => a.href).filter(h => h.startsWith(location.origin)),
    // blocks wider than the box that shows them (the reader would scroll sideways)
    overflow: Array.from(document.querySelectorAll(OVERFLOW_BLOCKS))
      .filter(e => e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1)
      .map(e => ({what: e.tagName.toLowerCase() + '.' +
                  (e.className && e.className.baseVal === undefined ? e.className : '')
                    .split(' ').filter(c => c).slice(0, 2).join('.'),
                  scroll: e.scrollWidth, client: e.clientWidth,
                  text: (e.innerText || '').trim().slice(0, 70)})),
    // the page body, wider than the window
    page_scroll: document.documentElement.scrollWidth,
    page_client: document.documentElement.clientWidth,
    // what the executed cells printed (outputs, stderr included)
    outputs: Array.from(document.querySelectorAll('.cell_output, div.output'))
      .map(e => e.innerText || '').join('\\n'),
  });
};
const OVERFLOW_BLOCKS = [
  'pre', 'div.highlight', 'div.cell_output', 'div.output', 'div.math',
  'mjx-container[display="true"]', 'table', 'div.pst-scrollable-table-container',
  'div.table-wrapper', 'div.theorem', 'div.proof', 'div.admonition', 'figure',
].join(', ');
const images = Array.from(document.images);
images.forEach(i => { i.loading = 'eager'; });
const loaded = Promise.all(images.map(i => i.complete ? null :
  new Promise(r => { i.addEventListener('load', r); i.addEventListener('error', r); })));
const typeset = (typeof MathJax !== 'undefined' && MathJax.startup && MathJax.startup.promise)
  ? MathJax.startup.promise : Promise.resolve();
Promise.all([loaded, typeset]).then(report, report);
"""


def _unavailable(message):
    """Skip, or fail in CI where the browser test must run."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI=true: the browser test must run)")
    pytest.skip(message)


@pytest.fixture(scope="module")
def server():
    """The built site on a local HTTP server (127.0.0.1, a free port)."""
    if not (SITE / "index.html").exists():
        pytest.fail(f"no built site at {SITE}: run `make book` first")
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium driven by chromedriver (both from Debian's packages)."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _unavailable("selenium is not installed (pip install -e '.[test]')")
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_exe = shutil.which("chromedriver")
    if not exe or not driver_exe:
        _unavailable("headless Chromium is not installed: the browser test needs Debian's "
                     "`chromium` and `chromium-driver` (`make chromium` installs them as root)")
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager download
    profile = tempfile.mkdtemp(prefix="w2sg-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = exe
    for flag in FLAGS + [f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_exe), options=options)
    driver.set_script_timeout(60)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _pages():
    return sorted(p.relative_to(SITE).as_posix() for p in SITE.rglob("*.html")
                  if not p.relative_to(SITE).parts[0].startswith("_"))


def _visit(driver, url):
    driver.get(url)
    report = driver.execute_async_script(PAGE_REPORT_JS)
    # The browser asks for /favicon.ico on its own; the book declares no favicon.
    report["console"] = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"
                         and "/favicon.ico " not in e["message"]]
    return report


def _page_problems(page, report):
    problems = []
    if report["ready"] != "complete" or not report["title"]:
        problems.append("did not load")
    problems += [f"console: {e['message']}" for e in report["console"]]
    if report["math_nodes"]:
        if not report["mathjax"]:
            problems.append("MathJax did not load")
        elif report["typeset"] == 0:
            problems.append(f"{report['math_nodes']} math nodes, none typeset")
    problems += [f"MathJax error: {e}" for e in report["errors"]]
    problems += [f"raw TeX {tok!r} in the text" for tok in RAW_TEX if tok in report["text"]]
    problems += [f"image not loaded: {i['src']}" for i in report["images"]
                 if not i["complete"] or i["width"] == 0]
    problems += [f"sideways scroll: {o['what']} {o['scroll']} > {o['client']} px "
                 f"({o['text']!r})" for o in report["overflow"]]
    if report["page_scroll"] > report["page_client"] + 1:
        problems.append(f"page {report['page_scroll']} px wide in a "
                        f"{report['page_client']} px window")
    problems += [f"output shows {m.group(0)!r}: "
                 f"{report['outputs'][max(0, m.start() - 60):m.end() + 60]!r}"
                 for m in list(OUTPUT_LEAKS.finditer(report["outputs"]))[:3]]
    return [f"{page}: {p}" for p in problems]


def _local_path(url, base):
    path = unquote(urlsplit(url).path)[len(urlsplit(base).path):]
    target = SITE / path
    return target / "index.html" if target.is_dir() else target


def test_every_page_renders_and_every_internal_link_resolves(server, browser):
    pages = _pages()
    assert "book/ledger.html" in pages and "book/intro.html" in pages, pages
    problems, ids, links = [], {}, []
    for page in pages:
        redirect = re.search(r'http-equiv="refresh" content="\d+; ?url=([^"]+)"',
                             (SITE / page).read_text(), flags=re.I)
        if redirect:  # a redirect stub (the site's index.html): its target must exist
            links.append((page, urljoin(urljoin(server, page), redirect.group(1))))
            continue
        report = _visit(browser, urljoin(server, page))
        problems += _page_problems(page, report)
        ids[page] = set(report["ids"])
        links += [(page, href) for href in report["links"]]
    for page, href in sorted(set(links)):
        target = _local_path(href, server)
        fragment = unquote(urlsplit(href).fragment)
        if not target.is_file():
            problems.append(f"{page}: broken link {href}")
            continue
        rel = target.relative_to(SITE).as_posix()
        if fragment and rel in ids and fragment not in ids[rel]:
            problems.append(f"{page}: no anchor #{fragment} in {rel}")
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:60])


def test_ledger_is_filled_from_the_chapters(server, browser):
    browser.get(urljoin(server, "book/ledger.html"))
    rows = browser.execute_script(
        "return Array.from(document.querySelectorAll("
        "'table.w2sg-ledger:not(.w2sg-ledger-overview) tbody tr'))"
        ".map(r => Array.from(r.cells).map(c => c.innerText.trim()));")
    kinds = {r[1] for r in rows}
    assert {"identity", "test"} <= kinds, rows
    assert kinds <= {"identity", "cross-check", "test", "measured", "not reproduced",
                     "not available"}, kinds  # a failing test would read "test: power < ..."
    assert all("min power" in r[2] for r in rows if r[1] == "test"), rows
    claims = browser.execute_script(
        "return Array.from(document.querySelectorAll("
        "'table.w2sg-ledger-overview tbody tr'))"
        ".map(r => Array.from(r.cells).map(c => c.innerText.trim()));")
    assert len(claims) == 9, claims
    assert {c[1] for c in claims} <= {"not reproduced", "tested", "identity only", "measured",
                                      "not available", "not checked"}, claims


@pytest.mark.parametrize("name, page, element", [(k, *v) for k, v in SCREENSHOTS.items()])
def test_screenshot(server, browser, name, page, element):
    assert (SITE / page).is_file(), page
    browser.set_window_size(1280, 900)
    browser.get(urljoin(server, page))
    browser.execute_async_script(PAGE_REPORT_JS)
    if element:  # the first such element at the top of a 1280 x 1100 window
        browser.set_window_size(1280, 1100)
        assert browser.execute_script(
            "const e = document.querySelector(arguments[0]);"
            "if (e) { e.scrollIntoView(); window.scrollBy(0, -90); } return !!e;", element), element
    else:  # the whole page, up to 5000 pixels
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.set_window_size(1280, max(900, min(int(height), 5000)))
    SHOTS.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(SHOTS / f"{name}.png"))
    browser.set_window_size(1280, 900)
