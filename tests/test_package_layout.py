"""The package's shape (issue 9): small modules, and every module named in the reference."""

from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "w2sg_utils"
MAX_LINES = 450
MODULES = sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_the_package_has_modules():
    assert len(MODULES) > 20


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(PACKAGE)) for p in MODULES])
def test_no_module_over_450_lines(path):
    n = len(path.read_text(encoding="utf-8").splitlines())
    assert n <= MAX_LINES, (f"{path.relative_to(PACKAGE)} has {n} lines (limit {MAX_LINES}); "
                            "split it by idea (see CONTRIBUTING.md)")
