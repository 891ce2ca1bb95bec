"""Plant each catalogued bug in a scratch copy of the package and check that it is caught.

A test suite whose power is not measured is a claim, not a check (the guide's "Power,
measured"). Each catalogue (``tests/mutants/catalog_*.py``) lists mutants: one exact
source edit (a swapped argument, a wrong mean, a dropped factor, a sign, a term set to
zero) together with the tests, and optionally the chapter, that must catch it. This
runner

1. copies ``w2sg_utils/`` and ``tests/`` into a scratch folder (every other top-level
   entry is linked, so data, results and chapters are the project's own), and checks
   that the named tests and chapters pass there unmutated;
2. for each mutant, applies its edit (the ``old`` text must occur exactly once, so a
   catalogue that has gone stale fails loudly), runs its tests, then its chapter if the
   tests did not fail, and restores the file;
3. prints one line per mutant, writes a JSON report, and exits 1 if a mutant survives.

    python -m tests.mutants.run                      # every catalogue
    python -m tests.mutants.run --only divergences   # mutants whose id contains this
    python -m tests.mutants.run --report mutants.json

It takes minutes, not seconds, so it is not part of ``make test``; ``make mutants`` runs it.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import pkgutil
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COPIED = ("w2sg_utils", "tests")


@dataclasses.dataclass(frozen=True)
class Mutant:
    """One planted bug: replace ``old`` by ``new`` in ``path`` (relative to the root)."""

    id: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]
    chapter: str | None = None
    why: str = ""

    def __post_init__(self):
        if self.old == self.new:
            raise ValueError(f"mutant {self.id}: old and new are the same text")
        if not self.tests and self.chapter is None:
            raise ValueError(f"mutant {self.id}: name tests or a chapter that must catch it")


def catalogue() -> list[Mutant]:
    """Every mutant of every ``catalog_*`` module, ids unique."""
    here = Path(__file__).parent
    out: list[Mutant] = []
    for info in sorted(pkgutil.iter_modules([str(here)]), key=lambda i: i.name):
        if info.name.startswith("catalog_"):
            out += importlib.import_module(f"tests.mutants.{info.name}").MUTANTS
    ids = [m.id for m in out]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ValueError(f"duplicate mutant ids: {dup}")
    return out


def scratch_copy(dest: Path) -> Path:
    """A copy of the package and tests, every other top-level entry linked."""
    proj = dest / "p"
    proj.mkdir(parents=True)
    for entry in ROOT.iterdir():
        if entry.name in COPIED:
            shutil.copytree(entry, proj / entry.name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif entry.name not in (".git", "_build", "build", ".pytest_cache"):
            (proj / entry.name).symlink_to(entry)
    shared = ROOT.parent / "shared"
    if shared.exists():
        (dest / "shared").symlink_to(shared.resolve())
    return proj


def _env(proj: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(proj), PYTHONDONTWRITEBYTECODE="1",
               HF_HUB_OFFLINE="1", MPLBACKEND="Agg")
    return env


def run_tests(proj: Path, tests, timeout: float) -> tuple[bool, str]:
    """True when every named test passes."""
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
           "-p", "no:randomly", *tests]
    try:
        r = subprocess.run(cmd, cwd=proj, env=_env(proj), capture_output=True,
                           text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, "timeout"
    tail = (r.stdout + r.stderr).strip().splitlines()
    return r.returncode == 0, tail[-1] if tail else ""


def run_chapter(proj: Path, chapter: str, timeout: float) -> tuple[bool, str]:
    """True when the chapter executes at its defaults without an error."""
    bindir = Path(sys.executable).parent
    nb = proj.parent / f"{chapter}.ipynb"
    conv = subprocess.run([str(bindir / "jupytext"), "--to", "ipynb", "-o", str(nb),
                           str(proj / "notebooks" / f"{chapter}.md")],
                          capture_output=True, text=True, env=_env(proj))
    if conv.returncode:
        raise RuntimeError(f"jupytext failed on {chapter}: {conv.stderr[-300:]}")
    cmd = [str(bindir / "papermill"), "--cwd", str(proj / "notebooks"), str(nb),
           str(proj.parent / f"{chapter}-out.ipynb")]
    try:
        r = subprocess.run(cmd, cwd=proj, env=_env(proj), capture_output=True,
                           text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, "timeout"
    lines = [ln for ln in (r.stdout + r.stderr).splitlines() if "Error" in ln]
    return r.returncode == 0, lines[-1][:160] if lines else ""


def mutate(proj: Path, m: Mutant) -> str:
    """Apply ``m`` in the scratch copy; returns the original text to restore."""
    f = proj / m.path
    text = f.read_text()
    n = text.count(m.old)
    if n != 1:
        raise ValueError(f"mutant {m.id}: the text to replace occurs {n} times in "
                         f"{m.path}, not once (the catalogue is stale)")
    f.write_text(text.replace(m.old, m.new))
    return text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default="", help="run the mutants whose id contains this")
    ap.add_argument("--report", default=None, help="write a JSON report here")
    ap.add_argument("--timeout", type=float, default=600.0,
                    help="seconds per test run or chapter run")
    args = ap.parse_args(argv)
    mutants = [m for m in catalogue() if args.only in m.id]
    if not mutants:
        ap.error(f"--only {args.only!r} matches no mutant")
    rows = []
    with tempfile.TemporaryDirectory(prefix="w2sg-mutants-") as tmp:
        proj = scratch_copy(Path(tmp))
        for tests in sorted({m.tests for m in mutants if m.tests}):
            ok, tail = run_tests(proj, tests, args.timeout)
            if not ok:
                print(f"unmutated tests fail: {' '.join(tests)}: {tail}")
                return 2
        for ch in sorted({m.chapter for m in mutants if m.chapter}):
            ok, tail = run_chapter(proj, ch, args.timeout)
            if not ok:
                print(f"unmutated chapter fails: {ch}: {tail}")
                return 2
        for m in mutants:
            t0 = time.time()
            original = mutate(proj, m)
            try:
                caught_by, tail = None, ""
                if m.tests:
                    ok, tail = run_tests(proj, m.tests, args.timeout)
                    caught_by = None if ok else "tests"
                if caught_by is None and m.chapter:
                    ok, tail = run_chapter(proj, m.chapter, args.timeout)
                    caught_by = None if ok else "chapter"
            finally:
                (proj / m.path).write_text(original)
            row = {"id": m.id, "path": m.path, "caught_by": caught_by,
                   "seconds": round(time.time() - t0, 1), "detail": tail[:200]}
            rows.append(row)
            verdict = f"caught by {caught_by}" if caught_by else "SURVIVED"
            print(f"{m.id:<48} {verdict:<18} {row['seconds']:>6.1f} s", flush=True)
    survivors = [r["id"] for r in rows if r["caught_by"] is None]
    print(f"{len(rows) - len(survivors)} of {len(rows)} mutants caught")
    if args.report:
        Path(args.report).write_text(json.dumps(rows, indent=1) + "\n")
    if survivors:
        print("survivors: " + ", ".join(survivors))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
