"""Repository hygiene: the text sources are the truth, every chapter is wired in."""

import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "notebooks").glob("ch*.md"))


def _toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part.get("chapters", [])]
    return files


def test_no_notebook_outputs_committed():
    try:
        tracked = subprocess.run(["git", "ls-files", "*.ipynb"], cwd=ROOT, capture_output=True,
                                 text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    assert tracked == [], f"commit the MyST source, not the notebook: {tracked}"


def test_every_toc_entry_exists():
    for f in _toc_files():
        assert any((ROOT / f"{f}{ext}").exists() for ext in (".md", ".ipynb")), f


def test_every_chapter_is_in_the_toc():
    toc = set(_toc_files())
    missing = [c.name for c in CHAPTERS if f"notebooks/{c.stem}" not in toc]
    assert not missing, f"chapters not in _toc.yml: {missing}"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_starts_with_a_parameters_cell(chapter):
    text = chapter.read_text()
    cells = re.findall(r"```\{code-cell\}[^\n]*\n(.*?)```", text, flags=re.S)
    assert cells, "no code cells"
    first = cells[0]
    assert re.search(r"tags:\s*\[[^\]]*parameters", first), "first code cell must be tagged parameters"
    for name in ("seed", "full"):
        assert re.search(rf"^{name}\s*=", first, flags=re.M), f"parameters cell lacks {name!r}"
    assert "kernelspec:" in text and "format_name: myst" in text


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_housekeeping_before_the_first_section_is_hidden(chapter):
    """The first code a reader sees is the parameters cell: the code cells between it and
    the chapter's first section (parameter check, imports, set-up) hide their input."""
    text = chapter.read_text()
    head = text[:text.index("\n## ")] if "\n## " in text else text
    cells = re.findall(r"```\{code-cell\}[^\n]*\n(.*?)```", head, flags=re.S)
    assert cells and "parameters" in cells[0].split("\n\n")[0]
    shown = [c.splitlines()[0] for c in cells[1:]
             if not re.search(r"tags:\s*\[[^\]]*(hide-input|remove-input|remove-cell)", c)]
    assert not shown, f"cells before the first section that show their code: {shown}"
