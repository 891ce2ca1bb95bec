"""The claims ledger: each chapter records the outcome of its checks as it executes.

How to record a check (every chapter; one call right after the check's assertions, in
the same code cell, so that nothing is recorded when the check fails):

.. code-block:: python

    from w2sg_utils.ledger import record

    record("C1", "lem-bias-variance", "ch01-monte-carlo", "test",
           number=f"max |z| = {max_z:.2f}",
           text="Monte Carlo E D(Y, V) = noise + bias + variance, five divergences",
           power={"bias = 0": 1.0, "variance / 2": 0.99})

Arguments, all checked (``ValueError`` naming the argument):

- ``claim``: one of ``"C1"`` ... ``"C9"`` (:data:`CLAIMS`, the book's claims page).
- ``statement``: the ``:label:`` of the theorem, lemma, proposition, corollary or
  definition the check is about (``thm-...``, ``lem-...``; a ``sec-...`` label where
  the claim has no formal statement). The build links it and fails on an unknown label.
- ``check``: an id for this check, unique in the whole book (``chNN-what``); the build
  puts the anchor ``#check-<id>`` on the cell that made the record, and the ledger links
  to it.
- ``status``, one of :data:`STATUSES`: ``"identity"`` (exact algebra, asserted to
  rounding), ``"cross-check"`` (an implementation checked against another, asserted),
  ``"test"`` (a statistical test of a claim on sampled data, asserted, with its power
  measured against named wrong alternatives: pass ``power``), ``"measured"`` (measured
  and reported, no prediction asserted), ``"not reproduced"`` (measured, and the result
  goes against the claim) or ``"not available"`` (the exact statement of the paper is
  not available; we checked our own formalization). A record of an asserted status
  (:data:`ASSERTED`) must come after an ``assert`` in its cell (tests check this).
- ``power``: ``"test"`` records only: ``{alternative: measured power}`` for at least
  two wrong alternatives (e.g. ``{"eps = 0": 1.0, "-eps": 0.99}``), each the rate at
  which the chapter's own check rejects that alternative at the chapter's settings.
  A power below :data:`MIN_POWER` is accepted here (a run with other seeds or smaller
  sizes may legitimately have less power, and must still run), but such a row is
  *underpowered* (:attr:`Record.underpowered`): the build shows it as failing and warns,
  so the strict build of the book fails on it (``book/_ext/w2sg_ledger.py``).
- ``number``: the key number measured (a float, printed with 4 significant digits, or a
  short string such as ``"gain 0.031 nats"``).
- ``text``: one short sentence saying what was checked (at most 160 characters).

Where records go: :func:`record` *displays* the record as the cell's output (an HTML
line carrying the record as JSON, with a plain-text fallback) and writes no file. The
executed chapter therefore carries its own records: the build (``book/_ext/w2sg_ledger.py``)
collects them from the rendered outputs of each chapter, cached or freshly executed, and
renders the ledger page from them (claim, statement, check, status, key number). A
papermill or nbval run with other seeds only adds an output line to its own copy; it
cannot touch the book's ledger. Do not call :func:`record` in a cell tagged
``remove-output`` (its output, and so the record, would be dropped).
"""

from __future__ import annotations

import ast
import html
import json
import math
import re
from dataclasses import asdict, dataclass

__all__ = ["CLAIMS", "STATUSES", "ASSERTED", "MIN_POWER", "CLAIM_STATUSES", "Record", "record",
           "make_record", "to_html", "parse_html", "power_text", "claim_status",
           "unasserted_records", "statement_links", "reference_entry"]

# Short titles of the claims; the claims page (book/claims.md) states each in full.
CLAIMS = {
    "C1": "Generalized bias-variance decomposition",
    "C2": "Pointwise gain identity",
    "C3": "Expected misfit theorem, without convexity",
    "C4": "Posterior mean, not mimicry",
    "C5": "Non-convex student classes",
    "C6": "Random-features ridge regression",
    "C7": "Cross-entropy: reverse-KL misfit and student entropy",
    "C8": "Reverse cross-entropy and teacher uncertainty",
    "C9": "Experiments on real preference data",
}

# status keyword -> what the ledger prints
STATUSES = {
    "identity": "identity (exact algebra, asserted)",
    "cross-check": "implementation cross-check (asserted)",
    "test": "statistical test (asserted, power measured)",
    "measured": "measured (no prediction asserted)",
    "not reproduced": "not reproduced (measured against the claim)",
    "not available": "exact statement not available",
}
# statuses whose record must follow an assertion in the same cell
ASSERTED = ("identity", "cross-check", "test")
MIN_POWER = 0.95  # a "test" row must reject each named wrong alternative this often
# a claim's status, derived from its rows by :func:`claim_status` (first rule that applies)
CLAIM_STATUSES = {
    "not reproduced": "a row measured a result that goes against the claim",
    "tested": "at least one statistical test, with its power measured",
    "identity only": "asserted only as exact algebra or implementation cross-checks",
    "measured": "measured, no prediction asserted",
    "not available": "only our own formalization could be checked",
    "not checked": "no check recorded",
}


MARKER = "data-w2sg-ledger"
_STATEMENT_REF = re.compile(r"\{(?:prf:ref|ref)\}`[^`]+`")
_SPHINX_ROLE = re.compile(r":(?:func|class|meth|mod|data|attr):`~?([^`]+)`")
_LABEL = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)+$")
_CHECK = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_RECORD_HTML = re.compile(MARKER + r'="([^"]*)"')
MAX_TEXT = 160


@dataclass(frozen=True)
class Record:
    """One check's outcome, as the ledger page shows it (see the module docstring)."""

    claim: str
    statement: str
    check: str
    status: str
    number: str
    text: str
    power: tuple = ()  # ((alternative, measured power), ...): "test" rows only

    @property
    def status_text(self) -> str:
        """The status as the ledger prints it."""
        return STATUSES[self.status]

    @property
    def min_power(self) -> float | None:
        """The smallest measured power over the named alternatives (``"test"`` rows)."""
        return min(p for _, p in self.power) if self.power else None

    @property
    def underpowered(self) -> bool:
        """A ``"test"`` row that rejects some named alternative less than
        :data:`MIN_POWER` of the time: the strict build fails on it."""
        return self.status == "test" and self.min_power < MIN_POWER


def _format_number(number) -> str:
    if isinstance(number, bool):
        raise ValueError(f"number: a float or a short string, got {number!r}")
    if isinstance(number, str):
        if not number.strip() or len(number) > 60:
            raise ValueError(f"number: a non-empty string of at most 60 characters, got {number!r}")
        return number.strip()
    try:
        value = float(number)
    except (TypeError, ValueError):
        raise ValueError(f"number: a float or a short string, got {number!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"number: must be finite, got {number!r}")
    return f"{value:.4g}"


def _check_power(status, power) -> tuple:
    if status != "test":
        if power:
            raise ValueError(f"power: only a 'test' record carries power, got {power!r}")
        return ()
    items = list(dict(power).items()) if power else []
    if len(items) < 2:
        raise ValueError("power: a 'test' record names at least two wrong alternatives "
                         f"with their measured power, got {power!r}")
    out = []
    for name, value in items:
        if not isinstance(name, str) or not name.strip() or len(name) > 40:
            raise ValueError(f"power: alternative names are short strings, got {name!r}")
        value = float(value)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"power: a probability in [0, 1], got {value!r} for {name!r}")
        out.append((name.strip(), round(value, 4)))
    return tuple(out)


def make_record(claim, statement, check, status, number, text, power=None) -> Record:
    """Validate the arguments of :func:`record` and return the :class:`Record`."""
    if claim not in CLAIMS:
        raise ValueError(f"claim: one of {', '.join(CLAIMS)}, got {claim!r}")
    if not isinstance(statement, str) or not _LABEL.match(statement):
        raise ValueError(f"statement: a label such as 'thm-misfit-gain', got {statement!r}")
    if not isinstance(check, str) or not _CHECK.match(check) or len(check) > 60:
        raise ValueError(f"check: a short id of lower-case words joined by '-', got {check!r}")
    if status not in STATUSES:
        raise ValueError(f"status: one of {', '.join(map(repr, STATUSES))}, got {status!r}")
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
        raise ValueError(f"text: one sentence of at most {MAX_TEXT} characters, got {text!r}")
    pw = _check_power(status, power)
    return Record(claim, statement, check, status, _format_number(number),
                  " ".join(text.split()), pw)


def power_text(rec: Record) -> str:
    """``"min power 0.99 vs eps = 0, -eps"`` for a ``"test"`` row, ``""`` otherwise."""
    if not rec.power:
        return ""
    names = ", ".join(name for name, _ in rec.power)
    return f"min power {rec.min_power:.2f} vs {names}"


def claim_status(statuses) -> str:
    """A claim's status (a key of :data:`CLAIM_STATUSES`) from the statuses of its rows.

    The first rule that applies: any ``"not reproduced"`` row makes the claim *not
    reproduced*; else any ``"test"`` row makes it *tested*; else any identity or
    cross-check row makes it *identity only*; else any ``"measured"`` row makes it
    *measured*; else any ``"not available"`` row makes it *not available*; a claim
    without rows is *not checked*.
    """
    statuses = set(statuses)
    unknown = statuses - set(STATUSES)
    if unknown:
        raise ValueError(f"statuses: unknown status {sorted(unknown)!r}")
    if "not reproduced" in statuses:
        return "not reproduced"
    if "test" in statuses:
        return "tested"
    if statuses & {"identity", "cross-check"}:
        return "identity only"
    for status in ("measured", "not available"):
        if status in statuses:
            return status
    return "not checked"


def _call_name(node) -> str:
    func = node.func if isinstance(node, ast.Call) else None
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _record_status(call):
    """The status argument of a ``record(...)`` call, ``None`` when not a literal."""
    arg = call.args[3] if len(call.args) > 3 else next(
        (k.value for k in call.keywords if k.arg == "status"), None)
    return arg.value if isinstance(arg, ast.Constant) else None


def unasserted_records(source: str) -> list[str]:
    """The ``record(...)`` calls of one code cell that have an asserted status
    (:data:`ASSERTED`, or a status that is not a literal) but no ``assert`` statement
    and no call of an ``assert_*`` check (:func:`w2sg_utils.checks.assert_close`,
    ``np.testing.assert_allclose``, ...) before them in the cell. Returns one line per
    offending call (``"line N: record(..., 'status')"``); IPython magics are ignored.
    """
    lines = [ln if not ln.lstrip().startswith(("%", "!")) else "" for ln in source.splitlines()]
    tree = ast.parse("\n".join(lines))
    asserts, records = [], []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert) or _call_name(node).startswith("assert_"):
            asserts.append((node.lineno, node.col_offset))
        elif _call_name(node) == "record" and isinstance(node, ast.Call):
            records.append(node)
    out = []
    for call in sorted(records, key=lambda c: (c.lineno, c.col_offset)):
        status = _record_status(call)
        if status is not None and status not in ASSERTED:
            continue
        if not any(pos < (call.lineno, call.col_offset) for pos in asserts):
            out.append(f"line {call.lineno}: record(..., {status!r}) with no assertion before it")
    return out


def to_html(rec: Record) -> str:
    """The HTML line that carries ``rec``: the JSON in an attribute, a short visible text."""
    payload = html.escape(json.dumps(asdict(rec), sort_keys=True), quote=True)
    shown = html.escape(f"Ledger: {rec.claim}, {rec.status_text}: {rec.number}")
    return f'<p class="w2sg-ledger-record" {MARKER}="{payload}">{shown}</p>'


def parse_html(text: str) -> list[Record]:
    """Every record carried by an HTML string (the inverse of :func:`to_html`).

    The build calls this on the rendered outputs of each chapter; records are validated
    again, so a hand-edited or stale output cannot put an invalid row in the ledger.
    """
    out = []
    for payload in _RECORD_HTML.findall(text):
        fields = json.loads(html.unescape(payload))
        fields["power"] = [tuple(p) for p in fields.get("power") or ()]
        out.append(make_record(**fields))
    return out


def record(claim: str, statement: str, check: str, status: str, number, text: str,
           power=None) -> None:
    """Record one check's outcome in the claims ledger (see the module docstring).

    Validates the arguments, then displays the record as this cell's output (HTML for
    the book, plain text elsewhere). Returns nothing, so that a call at the end of a cell
    adds no ``Out[]`` line; :func:`make_record` builds the same record without display.
    """
    rec = make_record(claim, statement, check, status, number, text, power)
    plain = f"ledger: {rec.claim} {rec.statement} {rec.check} [{rec.status_text}] {rec.number}"
    from IPython import get_ipython
    from IPython.display import display

    if get_ipython() is None:  # a plain Python script: say it, nothing to display
        print(plain)
        return
    display({"text/html": to_html(rec), "text/plain": plain}, raw=True)


def statement_links(doc: str) -> list[str]:
    """The MyST links to statements in a docstring (the ``prf:ref`` and ``ref`` roles), in
    order, without repeats.

    Theorem to code and back: the chapters name, under each statement box, the package
    objects that compute and check it; each object's docstring links back to its
    statement(s) with the ``prf:ref`` role and the statement's label (or the ``ref`` role
    and a ``sec-`` label where the chapter has no formal statement), and the package
    reference shows those links.
    """
    return list(dict.fromkeys(_STATEMENT_REF.findall(doc or "")))


def reference_entry(path: str, obj) -> str:
    """MyST for one entry of the package reference: a ``py:function`` or ``py:class``
    description of ``obj`` under the dotted ``path`` (so that the chapters' ``py:func``
    links to it resolve, and the strict build checks them), with the first paragraph of
    its docstring, the claims it names and the links to its statements."""
    import inspect

    kind = "class" if inspect.isclass(obj) else "function"
    try:  # without annotations: the strict build would try to cross-reference each type
        sig = inspect.signature(obj)
        params = [p.replace(annotation=p.empty) for p in sig.parameters.values()]
        signature = str(sig.replace(parameters=params, return_annotation=sig.empty))
    except (TypeError, ValueError):
        signature = "(...)"
    signature = " ".join(signature.split())
    doc = inspect.getdoc(obj) or ""
    summary = _SPHINX_ROLE.sub(r"`\1`", " ".join(doc.split("\n\n")[0].split()))
    links = statement_links(doc)
    claims = sorted(set(re.findall(r"\bC[1-9]\b", doc)), key=lambda c: int(c[1:]))
    fence = "`" * 4
    body = summary
    if claims:
        body += "\n\n" + ("Claim " if len(claims) == 1 else "Claims ") + ", ".join(claims) + "."
    if links:
        body += (" " if claims else "\n\n") + "Statement: " + ", ".join(links) + "."
    return f"{fence}{{py:{kind}}} {path}{signature}\n{body}\n{fence}\n"
