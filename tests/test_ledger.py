"""The claims ledger records: validation, and the HTML round trip the build relies on."""

import json
import re

import pytest

from w2sg_utils import ledger
from w2sg_utils.ledger import CLAIMS, STATUSES, make_record, parse_html, record, to_html

GOOD = dict(claim="C3", statement="thm-expected-misfit", check="ch02-mc-trained",
            status="cross-check", number=0.0123456, text="gain = E M + eps within 5 SE")


def test_record_fields_and_number_format():
    rec = make_record(**GOOD)
    assert (rec.claim, rec.statement, rec.check, rec.status) == (
        "C3", "thm-expected-misfit", "ch02-mc-trained", "cross-check")
    assert rec.number == "0.01235" and rec.status_text == STATUSES["cross-check"]
    assert make_record(**{**GOOD, "number": "gain 0.03 nats"}).number == "gain 0.03 nats"
    assert make_record(**{**GOOD, "status": "not available"}).status_text == (
        "exact statement not available")
    assert make_record(**{**GOOD, "status": "measured"}).status_text == (
        "measured (no prediction asserted)")


@pytest.mark.parametrize("field, bad", [
    ("claim", "C10"), ("claim", "c1"), ("statement", "Theorem 3.1"), ("statement", ""),
    ("check", "Ch02 check"), ("check", "x" * 61), ("status", "ok"), ("number", float("nan")),
    ("number", True), ("number", None), ("number", ""), ("text", ""), ("text", "x" * 161),
])
def test_bad_arguments_name_the_parameter(field, bad):
    with pytest.raises(ValueError, match=f"^{field}:"):
        make_record(**{**GOOD, field: bad})


def test_html_round_trip_with_awkward_text():
    recs = [make_record(**GOOD),
            make_record(**{**GOOD, "check": "ch02-b", "text": 'A & <b> "quoted" -- x\'s'})]
    page = "<div>" + "\n".join(to_html(r) for r in recs) + "<p>other output</p></div>"
    assert parse_html(page) == recs
    assert parse_html("<p>no record here</p>") == []


def test_parse_rejects_a_tampered_record():
    html = to_html(make_record(**GOOD)).replace("C3", "C12")
    with pytest.raises(ValueError, match="claim"):
        parse_html(html)


def test_record_displays_html_and_text(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.get_ipython", lambda: object())
    monkeypatch.setattr("IPython.display.display", lambda obj, raw: shown.append((obj, raw)))
    assert record(**GOOD) is None
    (obj, raw), = shown
    assert raw and parse_html(obj["text/html"]) == [make_record(**GOOD)]
    assert "C3" in obj["text/plain"] and "cross-check" in obj["text/plain"]


def test_record_outside_ipython_prints(capsys):
    record(**GOOD)
    assert "ch02-mc-trained" in capsys.readouterr().out


def test_vocabulary():
    assert list(CLAIMS) == [f"C{i}" for i in range(1, 10)]
    assert set(STATUSES) == {"identity", "cross-check", "test", "measured", "not reproduced",
                             "not available"}
    assert set(ledger.ASSERTED) == {"identity", "cross-check", "test"}
    assert ledger.MIN_POWER == 0.95
    payload = re.search(ledger.MARKER + r'="([^"]*)"', to_html(make_record(**GOOD))).group(1)
    assert '"' not in payload and json.loads(payload.replace("&quot;", '"'))["claim"] == "C3"


def test_claims_page_states_every_claim_with_its_title():
    from pathlib import Path

    page = (Path(__file__).resolve().parents[1] / "book" / "claims.md").read_text()
    for claim, title in CLAIMS.items():
        assert f"(claim-{claim.lower()})=\n## {claim}. {title}\n" in page, claim


def test_chapters_record_with_unique_ids_and_existing_labels():
    """The build checks the same (a strict build fails); this finds it without a build."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    chapters = sorted((root / "notebooks").glob("ch*.md"))
    text = "\n".join(p.read_text() for p in [*chapters, *(root / "book").glob("*.md")])
    labels = set(re.findall(r"^:label:\s*(\S+)", text, flags=re.M)) | set(
        re.findall(r"^\(([\w-]+)\)=", text, flags=re.M))
    seen, problems = {}, []
    for chapter in chapters:
        calls = re.findall(r'\brecord\(\s*"(C\d)",\s*"([^"]+)",\s*"([^"]+)"', chapter.read_text())
        for claim, statement, check in calls:
            make_record(claim, statement, check, "measured", 0.0, "static check")
            if statement not in labels:
                problems.append(f"{chapter.stem}: unknown statement label {statement!r}")
            if not check.startswith(chapter.stem.split("_")[0] + "-"):
                problems.append(f"{chapter.stem}: check id {check!r} should start with the chapter")
            if check in seen:
                problems.append(f"{chapter.stem}: check id {check!r} also in {seen[check]}")
            seen[check] = chapter.stem
        for cell in re.findall(r"```\{code-cell\}[^\n]*\n(.*?)```", chapter.read_text(), re.S):
            if "record(" in cell and re.search(r"remove-output|remove-cell", cell.split("\n\n")[0]):
                problems.append(f"{chapter.stem}: a record in a cell whose output is removed")
    assert seen, "no chapter records its checks"
    assert not problems, "\n".join(problems)


POWER = {"eps = 0": 1.0, "-eps": 0.985}


@pytest.mark.parametrize("power, match", [
    (None, "at least two"), ({"eps = 0": 1.0}, "at least two"), ({"a": 1.0, "b": 1.5}, "in \\[0, 1\\]"),
    ({"a": 1.0, "": 1.0}, "short strings")])
def test_a_test_names_two_alternatives_with_their_power(power, match):
    with pytest.raises(ValueError, match=f"^power: .*{match}"):
        make_record(**{**GOOD, "status": "test", "power": power})


def test_only_a_test_carries_power():
    for status in set(STATUSES) - {"test"}:
        with pytest.raises(ValueError, match="^power: only a 'test'"):
            make_record(**{**GOOD, "status": status, "power": POWER})


def test_power_round_trips_and_is_shown_with_its_minimum():
    rec = make_record(**{**GOOD, "status": "test", "power": POWER})
    assert rec.power == (("eps = 0", 1.0), ("-eps", 0.985))
    assert parse_html(to_html(rec)) == [rec]
    assert ledger.power_text(rec) == "min power 0.98 vs eps = 0, -eps"
    assert rec.min_power == 0.985 and not rec.underpowered
    assert ledger.power_text(make_record(**GOOD)) == ""


def test_power_below_the_minimum_is_recorded_but_underpowered():
    """Accepted (a re-seeded or resized run must still execute), but flagged: the strict
    build fails on it (tests/test_ledger_build.py)."""
    weak = make_record(**{**GOOD, "status": "test", "power": {"a": 1.0, "b": 0.949}})
    assert weak.underpowered and weak.min_power == 0.949
    edge = make_record(**{**GOOD, "status": "test", "power": {"a": 0.95, "b": 0.95}})
    assert not edge.underpowered


@pytest.mark.parametrize("statuses, expected", [
    ([], "not checked"), (["not available"], "not available"),
    (["measured", "not available"], "measured"), (["identity", "measured"], "identity only"),
    (["cross-check"], "identity only"), (["test", "identity", "measured"], "tested"),
    (["test", "not reproduced"], "not reproduced"), (["measured", "not reproduced"], "not reproduced"),
])
def test_claim_status_rule(statuses, expected):
    assert ledger.claim_status(statuses) == expected
    assert expected in ledger.CLAIM_STATUSES


def test_claim_status_rejects_an_unknown_status():
    with pytest.raises(ValueError, match="^statuses:"):
        ledger.claim_status(["passed"])


def _call(status):
    return f'record("C1", "lem-x", "ch01-x", {status}, 1.0, "t")'


@pytest.mark.parametrize("cell, bad", [
    ("x = 1\n" + _call('"identity"'), True),
    ("x = 1\n" + _call('"test"') + "\nassert x == 1", True),  # the assertion comes after
    ("assert x == 1\n" + _call('"cross-check"'), False),
    ("assert_close(x, 1)\n" + _call('"identity"'), False),
    ("z = C.assert_within_se(a, b, se)\n" + _call('"test"'), False),
    ("for i in r:\n    np.testing.assert_allclose(i, i)\n" + _call('"test"'), False),
    ("x = 1\n" + _call('"measured"'), False),
    ("x = 1\n" + _call('"not reproduced"'), False),
    ("x = 1\n" + _call("kind"), True),  # a status that is not a literal counts as asserted
    ("%time x = 1\nassert x\n" + _call('"identity"'), False),
    ("if ok:\n    assert x\n" + _call('"identity"').replace("1.0", "assert_x"), False),
    ('record("C1", "lem-x", "ch01-x", status="identity", number=1, text="t")', True),
])
def test_unasserted_records(cell, bad):
    assert bool(ledger.unasserted_records(cell)) == bad
