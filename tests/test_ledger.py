"""The claims ledger records: validation, and the HTML round trip the build relies on."""

import json
import re

import pytest

from w2sg_utils import ledger
from w2sg_utils.ledger import CLAIMS, STATUSES, make_record, parse_html, record, to_html

GOOD = dict(claim="C3", statement="thm-expected-misfit", check="ch02-mc-trained",
            status="passed", number=0.0123456, text="gain = E M + eps within 5 SE")


def test_record_fields_and_number_format():
    rec = make_record(**GOOD)
    assert (rec.claim, rec.statement, rec.check, rec.status) == (
        "C3", "thm-expected-misfit", "ch02-mc-trained", "passed")
    assert rec.number == "0.01235" and rec.status_text == "passed"
    assert make_record(**{**GOOD, "number": "gain 0.03 nats"}).number == "gain 0.03 nats"
    assert make_record(**{**GOOD, "status": "not available"}).status_text == (
        "exact statement not available")
    assert make_record(**{**GOOD, "status": "measured"}).status_text == "measured (not asserted)"


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
    assert "C3" in obj["text/plain"] and "passed" in obj["text/plain"]


def test_record_outside_ipython_prints(capsys):
    record(**GOOD)
    assert "ch02-mc-trained" in capsys.readouterr().out


def test_vocabulary():
    assert list(CLAIMS) == [f"C{i}" for i in range(1, 10)]
    assert set(STATUSES) == {"passed", "measured", "not available"}
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
            make_record(claim, statement, check, "passed", 0.0, "static check")
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
