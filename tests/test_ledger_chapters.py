"""The chapters' ledger records, read from their sources and from the executed chapters.

1. A record of an asserted status (identity, cross-check, test) must follow an ``assert``
   (or a call of an ``assert_*`` check) in its own cell: otherwise the record would say
   "asserted" of a check that asserts nothing. The chapters' text sources
   (``notebooks/*.md``) are read through jupytext, cell by cell.
2. Every "test" record carries its measured power against at least two named
   alternatives, each at least ``MIN_POWER``. Where the book was built
   (``_build/jupyter_execute``: the chapters at their defaults) or ``make seeds`` ran
   (``build/papermill``: at seed 20261128), this reads the records from those executed
   chapters. The
   same rule is enforced without this test in two places: ``make_record`` refuses a
   "test" without two named alternatives, and the strict build of the book fails on a
   "test" row whose power is below ``MIN_POWER`` (``book/_ext/w2sg_ledger.py``, tested in
   ``tests/test_ledger_build.py``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from w2sg_utils.ledger import ASSERTED, MIN_POWER, parse_html, unasserted_records

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "notebooks").glob("ch*.md"))
# the book's build (defaults) and `make seeds` (every chapter at seed 20261128)
EXECUTED = [ROOT / "_build" / "jupyter_execute" / "notebooks", ROOT / "build" / "papermill"]


def _code_cells(path):
    jupytext = pytest.importorskip("jupytext")
    nb = jupytext.read(path)
    return [c.source for c in nb.cells if c.cell_type == "code"]


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_asserted_records_follow_an_assertion_in_their_cell(chapter):
    problems = []
    for i, source in enumerate(_code_cells(chapter)):
        if "record(" not in source:
            continue
        problems += [f"{chapter.stem}, code cell {i}: {p}" for p in unasserted_records(source)]
    assert not problems, "\n".join(problems)


def test_the_scan_sees_every_chapter_record():
    """The scan reads the cells the chapters' records are in (not an empty parse)."""
    total = sum(src.count("record(") for ch in CHAPTERS for src in _code_cells(ch))
    assert total >= len(CHAPTERS)
    assert unasserted_records('x = 1\nrecord("C1", "lem-a", "ch01-a", "identity", 1, "t")')


def _executed_records():
    out = []
    for path in sorted(p for folder in EXECUTED for p in folder.glob("ch*.ipynb")):
        nb = json.loads(path.read_text())
        for cell in nb["cells"]:
            for output in cell.get("outputs", []):
                html = output.get("data", {}).get("text/html", "")
                html = "".join(html) if isinstance(html, list) else html
                out += [(f"{path.parent.name}/{path.stem}", rec) for rec in parse_html(html)]
    return out


def test_every_test_record_of_the_built_book_has_its_power():
    records = _executed_records()
    if not records:
        pytest.skip("no executed chapters in _build/jupyter_execute or build/papermill (run "
                    "`make book` or `make seeds`); the strict build enforces the same rule")
    problems = []
    for chapter, rec in records:
        if rec.status == "test" and (len(rec.power) < 2 or rec.min_power < MIN_POWER):
            problems.append(f"{chapter}: {rec.check} has power {dict(rec.power)}")
        if rec.status not in ASSERTED and rec.power:
            problems.append(f"{chapter}: {rec.check} ({rec.status}) carries power")
    assert not problems, "\n".join(problems)
