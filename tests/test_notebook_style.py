"""The chapters read without sideways scrolling (issue 16): every line of a code cell
fits the text column of the site.

``book/_static/w2sg-layout.css`` sets code cells in 13 px monospace, about 7.8 pixels a
character, in a column about 650 pixels wide at a 1280-pixel window: 79 characters fit
with room to spare. The browser test (``tests/browser/test_site.py``) measures the built
site; this test keeps the source within the limit before any build.
"""

from __future__ import annotations

from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "notebooks").glob("ch*.md"))
PAGES = sorted((ROOT / "book").glob("*.md"))
MAX_CODE_LINE = 79


def _code_lines(path):
    nb = jupytext.read(path)
    for i, cell in enumerate(nb.cells):
        tags = cell.metadata.get("tags", [])
        if cell.cell_type != "code" or {"remove-input", "remove-cell"} & set(tags):
            continue  # a cell whose source the site does not show
        for j, line in enumerate(cell.source.splitlines(), 1):
            yield i, j, line


@pytest.mark.parametrize("path", CHAPTERS + PAGES, ids=lambda p: p.name)
def test_code_lines_fit_the_column(path):
    long = [f"cell {i}, line {j}: {len(line)} characters: {line[:60]!r}..."
            for i, j, line in _code_lines(path) if len(line) > MAX_CODE_LINE]
    assert not long, (f"{path.name}: {len(long)} code lines longer than "
                      f"{MAX_CODE_LINE} characters:\n" + "\n".join(long[:20]))


def test_the_limit_is_what_the_layout_css_allows():
    css = (ROOT / "book" / "_static" / "w2sg-layout.css").read_text()
    assert "font-size: 13px" in css and "79-character" in css
