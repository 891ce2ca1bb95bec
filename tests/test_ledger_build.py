"""The ledger extension (book/_ext/w2sg_ledger.py) in a tiny Sphinx project.

A notebook with stored outputs (as the execution cache gives them to the build) holds a
statement and a cell whose output is a ledger record; the ledger page must list it with
working links, and a strict build must fail on an unknown statement label or a check id
used twice.
"""

import json
import re
import sys
from pathlib import Path

import pytest

pytest.importorskip("myst_nb")
pytest.importorskip("sphinx_proof")
from sphinx.cmd.build import build_main  # noqa: E402

from w2sg_utils.ledger import make_record, to_html  # noqa: E402

EXT = Path(__file__).resolve().parents[1] / "book" / "_ext"
CONF = f"""
import sys
sys.path.insert(0, {str(EXT)!r})
extensions = ["myst_nb", "sphinx_proof", "w2sg_ledger"]
nb_execution_mode = "off"
exclude_patterns = ["_build"]
"""
LEDGER = """# Ledger
(sec-claims-ledger)=
## Table

```{claims-ledger}
```
"""
CLAIMS = "# Claims\n\n" + "\n".join(f"(claim-c{i})=\n## C{i}\n\nStatus: {{claim-status}}`C{i}`\n"
                                    for i in range(1, 10))


def _cell(source, outputs=None):
    if outputs is None:
        return {"cell_type": "markdown", "id": "md", "metadata": {}, "source": source}
    return {"cell_type": "code", "id": "code", "metadata": {}, "source": source,
            "execution_count": 1, "outputs": outputs}


def _notebook(records):
    out = [{"output_type": "display_data", "metadata": {},
            "data": {"text/html": to_html(r), "text/plain": "ledger"}} for r in records]
    cells = [_cell("# Chapter\n\n```{prf:lemma} A lemma\n:label: lem-tiny\n\nIt holds.\n```"),
             _cell("x = 1", out)]
    meta = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    return {"cells": cells, "metadata": meta, "nbformat": 4, "nbformat_minor": 5}


def _build(tmp_path, records):
    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text(CONF)
    (src / "index.md").write_text("# Book\n\n```{toctree}\nchap\nclaims\nledger\n```\n")
    (src / "claims.md").write_text(CLAIMS)
    (src / "ledger.md").write_text(LEDGER)
    (src / "chap.ipynb").write_text(json.dumps(_notebook(records)))
    out, log = tmp_path / "html", tmp_path / "warnings.txt"
    code = build_main(["-W", "--keep-going", "-n", "-q", "-w", str(log), "-b", "html",
                       str(src), str(out)])
    return code, out, log.read_text()


def _rec(**kw):
    base = dict(claim="C1", statement="lem-tiny", check="tiny-check", status="identity",
                number=0.25, text="the tiny lemma holds")
    return make_record(**{**base, **kw})


def test_ledger_lists_the_record_with_working_links(tmp_path):
    code, out, log = _build(tmp_path, [_rec(), _rec(claim="C9", check="tiny-two",
                                                    statement="sec-claims-ledger",
                                                    status="measured", number="gain 0.1",
                                                    text="a measurement")])
    assert code == 0 and log == ""
    ledger = (out / "ledger.html").read_text()
    chap = (out / "chap.html").read_text()
    assert 'href="chap.html#check-tiny-check"' in ledger and 'id="check-tiny-check"' in chap
    assert 'href="chap.html#lem-tiny"' in ledger  # the statement, through sphinx-proof
    assert "A lemma" in ledger  # with its title
    assert "the tiny lemma holds" in ledger and "0.25" in ledger
    assert "w2sg-badge-measured" in ledger and "gain 0.1" in ledger
    assert '#sec-claims-ledger"><span class="std std-ref">Table</span>' in ledger  # a section
    assert len(re.findall(r"no check recorded", ledger)) == 7  # C2-C8
    assert "2 checks recorded by 1 executed chapter: 1 identity, 1 measured." in ledger
    assert 'href="ledger.html#sec-claims-ledger"' in chap  # the line that replaced the output
    assert "data-w2sg-ledger" not in chap


def _text(html):
    return " ".join(re.sub(r"<[^>]+>|¶", " ", html).split())


def test_claims_get_a_status_derived_from_their_rows(tmp_path):
    power = {"eps = 0": 1.0, "-eps": 0.97}
    code, out, log = _build(tmp_path, [
        _rec(), _rec(check="tiny-test", status="test", power=power, text="a test"),
        _rec(claim="C2", check="tiny-two"),
        _rec(claim="C3", check="tiny-three", status="measured"),
        _rec(claim="C3", check="tiny-four", status="not reproduced")])
    assert code == 0 and log == ""
    claims = _text((out / "claims.html").read_text())
    assert "C1 Status: tested (1 identity, 1 test)" in claims
    assert "C2 Status: identity only (1 identity)" in claims
    assert "C3 Status: not reproduced (1 measured, 1 not reproduced)" in claims
    assert "C4 Status: not checked (no rows)" in claims
    ledger = (out / "ledger.html").read_text()
    assert 'href="ledger.html#ledger-c1"' in (out / "claims.html").read_text()
    assert 'id="ledger-c1"' in ledger and 'id="ledger-c3"' in ledger
    assert "min power 0.97 vs eps = 0, -eps" in _text(ledger)
    assert "w2sg-badge-fail" not in ledger


def test_an_underpowered_test_fails_the_strict_build_and_shows(tmp_path):
    power = {"eps = 0": 1.0, "eps / 2": 0.5}
    code, out, log = _build(tmp_path, [_rec(status="test", power=power)])
    assert code != 0 and "'tiny-check' is a 'test' with min power 0.50" in log
    assert "w2sg-badge-fail" in (out / "ledger.html").read_text()
    assert "w2sg-badge-fail" in (out / "claims.html").read_text()


def test_unknown_statement_label_fails_the_strict_build(tmp_path):
    code, _, log = _build(tmp_path, [_rec(statement="thm-nowhere")])
    assert code != 0 and "undefined label: 'thm-nowhere'" in log


def test_check_id_used_twice_fails_the_strict_build(tmp_path):
    code, _, log = _build(tmp_path, [_rec(), _rec(claim="C2")])
    assert code != 0 and "'tiny-check' used twice" in log


def test_extension_module_stays_importable():
    sys.path.insert(0, str(EXT))
    try:
        import w2sg_ledger
    finally:
        sys.path.remove(str(EXT))
    assert callable(w2sg_ledger.setup)
