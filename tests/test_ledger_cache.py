"""The book's execution cache is cleared when the package's source changes
(book/_ext/w2sg_cache.py, run by `make book` before the build)."""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))
import w2sg_cache  # noqa: E402

sys.path.remove(str(ROOT / "book" / "_ext"))


def _project(tmp_path):
    root = tmp_path / "repo"
    (root / "w2sg_utils" / "sub").mkdir(parents=True)
    (root / "w2sg_utils" / "a.py").write_text("A = 1\n")
    (root / "w2sg_utils" / "sub" / "b.py").write_text("B = 2\n")
    (root / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    return root


def _cache(build):
    for name in (".jupyter_cache", ".doctrees"):
        (build / name).mkdir(parents=True, exist_ok=True)
        (build / name / "entry").write_text("cached")
    (build / "html").mkdir(exist_ok=True)


def test_cache_cleared_only_when_the_package_changes(tmp_path):
    root, build = _project(tmp_path), tmp_path / "repo" / "_build"
    _cache(build)
    assert w2sg_cache.guard(build, root)  # no stamp yet: cleared
    assert not (build / ".jupyter_cache").exists() and not (build / ".doctrees").exists()
    assert (build / "html").exists()  # the rest of the build is kept
    _cache(build)
    assert not w2sg_cache.guard(build, root)  # nothing changed: kept
    assert (build / ".jupyter_cache" / "entry").exists()
    (root / "w2sg_utils" / "sub" / "b.py").write_text("B = 3\n")  # a nested module
    assert w2sg_cache.guard(build, root)
    assert not (build / ".jupyter_cache").exists()
    _cache(build)
    (root / "pyproject.toml").write_text("[project]\nname = 'y'\n")
    assert w2sg_cache.guard(build, root)
    _cache(build)
    (root / "w2sg_utils" / "sub" / "b.py").rename(root / "w2sg_utils" / "c.py")  # a move
    assert w2sg_cache.guard(build, root)


def test_hash_ignores_bytecode_and_depends_on_every_source(tmp_path):
    root = _project(tmp_path)
    h = w2sg_cache.package_hash(root)
    (root / "w2sg_utils" / "__pycache__").mkdir()
    (root / "w2sg_utils" / "__pycache__" / "a.cpython-311.py").write_text("junk")
    assert w2sg_cache.package_hash(root) == h
    (root / "w2sg_utils" / "a.py").write_text("A = 2\n")
    assert w2sg_cache.package_hash(root) != h
    assert re.fullmatch(r"[0-9a-f]{64}", h)
    assert w2sg_cache.package_hash() != h  # the real package


def test_make_book_runs_the_guard_before_the_build():
    text = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^book:.*\n((?:\t.*\n)+)", text, flags=re.M).group(1)
    lines = [ln.strip() for ln in recipe.splitlines()]
    guard = next(i for i, ln in enumerate(lines) if "w2sg_cache.py _build" in ln)
    build = next(i for i, ln in enumerate(lines) if "jupyter-book build" in ln)
    assert guard < build
