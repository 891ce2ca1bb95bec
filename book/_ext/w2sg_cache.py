"""The execution cache of the book, keyed on the package's source as well as the notebook.

Jupyter Book's cache (``_build/.jupyter_cache``, ``execute_notebooks: cache`` in
``_config.yml``) keys each chapter on its own content only, and Sphinx re-reads only the
pages whose source changed (its environment is ``_build/.doctrees``). A change to
``w2sg_utils`` would therefore leave every chapter's cached outputs, its ledger records
included, in place. ``make book`` runs this script first::

    python book/_ext/w2sg_cache.py _build

It hashes every ``*.py`` file of ``w2sg_utils`` (path and content) and
``pyproject.toml``, compares the hash with the stamp ``_build/.w2sg-package-hash``, and
when they differ (or there is no stamp) removes the execution cache and the doctrees, so
that every chapter is executed again, then writes the new stamp.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STAMP = ".w2sg-package-hash"
CLEARED = (".jupyter_cache", ".doctrees")


def package_hash(root: Path = ROOT) -> str:
    """SHA-256 of the package's Python sources (relative path and bytes) and pyproject."""
    root = Path(root)
    files = sorted((root / "w2sg_utils").rglob("*.py")) + [root / "pyproject.toml"]
    h = hashlib.sha256()
    for path in files:
        if path.is_file() and "__pycache__" not in path.parts:
            h.update(path.relative_to(root).as_posix().encode() + b"\0")
            h.update(path.read_bytes() + b"\0")
    return h.hexdigest()


def guard(build_dir: Path, root: Path = ROOT) -> bool:
    """Clear the execution cache and doctrees under ``build_dir`` when the package's hash
    differs from the stamp; write the stamp. Returns whether anything was cleared."""
    build_dir = Path(build_dir)
    stamp = build_dir / STAMP
    new = package_hash(root)
    old = stamp.read_text().strip() if stamp.is_file() else None
    cleared = False
    if new != old:
        for name in CLEARED:
            if (build_dir / name).exists():
                shutil.rmtree(build_dir / name)
                cleared = True
    build_dir.mkdir(parents=True, exist_ok=True)
    stamp.write_text(new + "\n")
    return cleared


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python book/_ext/w2sg_cache.py BUILD_DIR")
    if guard(Path(sys.argv[1])):
        print("w2sg_utils changed since the last build: execution cache cleared")
