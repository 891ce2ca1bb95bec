"""Theorem to code and back.

Under each statement box (theorem, lemma, proposition, corollary, conjecture) a chapter
names the package objects that compute and check it ("In code: {py:func}`...`"); each
object named there exists, and its docstring links back to that statement with
``{prf:ref}``. Every statement link in a docstring names a label that exists. The strict
build checks the same links as cross-references; these tests find a broken one in a
second, without building.
"""

import importlib
import inspect
import re
from pathlib import Path

import pytest

from w2sg_utils.ledger import reference_entry, statement_links

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "notebooks").glob("ch*.md"))
KINDS = ("theorem", "lemma", "proposition", "corollary", "conjecture")
BOX = re.compile(r"^```\{prf:(\w+)\}[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
CODE_REF = re.compile(r"\{py:(func|class)\}`~?([\w.]+)`")


def _statements(text):
    """(kind, label, the paragraph right after the box) for each statement box."""
    for m in BOX.finditer(text):
        label = re.search(r"^:label:\s*(\S+)", m.group(2), flags=re.M)
        rest = text[m.end():].lstrip("\n")
        yield m.group(1), label.group(1) if label else None, rest.split("\n\n", 1)[0]


def _resolve(path):
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _all_labels():
    text = "\n".join(p.read_text() for p in [*CHAPTERS, *(ROOT / "book").glob("*.md")])
    return set(re.findall(r"^:label:\s*(\S+)", text, flags=re.M)) | set(
        re.findall(r"^\(([\w-]+)\)=", text, flags=re.M))


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_each_statement_names_its_code_and_the_code_links_back(chapter):
    problems = []
    for kind, label, after in _statements(chapter.read_text()):
        if kind not in KINDS:
            continue
        refs = CODE_REF.findall(after)
        if not after.startswith("In code:") or not refs:
            problems.append(f"{label}: no 'In code:' line with a py:func/py:class link")
        for _, path in refs:
            doc = inspect.getdoc(_resolve(path)) or ""
            if f"{{prf:ref}}`{label}`" not in doc:
                problems.append(f"{label}: the docstring of {path} does not link back")
    assert not problems, "\n".join(problems)


def _public_objects():
    """(dotted path, object) for every public function and class of the package, under
    the module that defines it (as the package reference lists them)."""
    import pkgutil

    import w2sg_utils

    seen = {}
    for info in pkgutil.walk_packages(w2sg_utils.__path__, "w2sg_utils."):
        if any(part.startswith("_") for part in info.name.split(".")[1:]):
            continue
        try:
            module = importlib.import_module(info.name)
        except ImportError:  # an optional extra that is not installed
            continue
        for name, obj in vars(module).items():
            if (not name.startswith("_") and (inspect.isfunction(obj) or inspect.isclass(obj))
                    and obj.__module__ == module.__name__):
                seen.setdefault(id(obj), (f"{module.__name__}.{name}", obj))
    return sorted(seen.values(), key=lambda item: item[0])


def test_every_object_that_names_a_claim_links_to_its_statement():
    """A docstring that says it implements claim Cn links to the statement (a prf:ref to
    a theorem, lemma, ... or a ref to the section), and every such label exists."""
    labels, missing, unknown = _all_labels(), [], []
    for path, obj in _public_objects():
        doc = inspect.getdoc(obj) or ""
        links = statement_links(doc)
        if re.search(r"\bC[1-9]\b", doc) and not links:
            missing.append(path)
        unknown += [f"{path}: {link}" for link in links if link.split("`")[1] not in labels]
    assert not missing, "docstrings that name a claim but link no statement:\n" + "\n".join(missing)
    assert not unknown, "links to unknown labels:\n" + "\n".join(unknown)


def test_reference_entry_is_a_py_description_with_its_statements():
    from w2sg_utils.decompositions import gain_identity

    entry = reference_entry("w2sg_utils.decompositions.gain_identity", gain_identity)
    first, *body, last = entry.strip().split("\n")
    assert first.startswith("````{py:function} w2sg_utils.decompositions.gain_identity(")
    assert ":" not in first.split("(", 1)[1], "annotations would become cross-references"
    assert last == "````"
    assert "Statement: {prf:ref}`prop-gain-identity`." in "\n".join(body)
    assert "Claim C2." in "\n".join(body)
    assert statement_links("a {prf:ref}`x-y` b {ref}`sec-z` {prf:ref}`x-y`") == [
        "{prf:ref}`x-y`", "{ref}`sec-z`"]
