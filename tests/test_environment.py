"""environment.yml must mirror pyproject.toml: one source of dependency truth."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pyproject_requirements() -> set[str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = set(meta["dependencies"])
    for extra in meta["optional-dependencies"].values():
        reqs |= {r for r in extra if not r.startswith("w2sg_utils")}
    return {r.replace(" ", "") for r in reqs}


def _conda_pip_requirements() -> set[str]:
    lines = (ROOT / "environment.yml").read_text().splitlines()
    out = set()
    for line in lines:
        s = line.strip()
        if s.startswith("- ") and line.startswith("      - ") and s != "- -e .":
            out.add(s[2:].replace(" ", ""))
    return out


def test_environment_yml_mirrors_pyproject():
    py, conda = _pyproject_requirements(), _conda_pip_requirements()
    assert py == conda, f"only in pyproject: {py - conda}; only in environment.yml: {conda - py}"


def test_torch_range_admits_the_cpu_build():
    reqs = _pyproject_requirements()
    torch = next(r for r in reqs if r.startswith("torch"))
    assert "<2.14" in torch and ">=" in torch


# ------------------------------------------------------------ extras match imports

# import name -> distribution, for the third-party packages the book uses
DISTRIBUTION = {"sklearn": "scikit-learn", "IPython": "ipykernel"}
KERNEL = {"ipykernel"}  # a chapter runs in a Jupyter kernel (the book extra installs it)
PACKAGE = ROOT / "w2sg_utils"


def _requirement_names(extra: str | None) -> set[str]:
    """Distributions installed by ``pip install .[extra]`` (base: ``extra=None``)."""
    import re

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(meta["dependencies"])
    todo = [extra] if extra else []
    while todo:
        for r in meta["optional-dependencies"][todo.pop()]:
            if r.startswith("w2sg_utils["):
                todo += r[len("w2sg_utils["):-1].split(",")
            else:
                reqs.append(r)
    return {re.match(r"[A-Za-z0-9_.-]+", r).group(0).lower() for r in reqs}


def _imports(source: str, top_level_only: bool) -> set[str]:
    """Absolute module names imported by ``source`` (``w2sg_utils.x`` kept whole)."""
    import ast

    tree = ast.parse(source)
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    out = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module)
            if node.module == "w2sg_utils":
                out |= {f"w2sg_utils.{a.name}" for a in node.names}
    return out


def _module_file(name: str) -> Path | None:
    rel = Path(*name.split(".")[1:])
    for p in (PACKAGE / rel / "__init__.py", (PACKAGE / rel).with_suffix(".py")):
        if p.is_file():
            return p
    return None


def _package_imports(path: Path, top_level_only: bool) -> set[str]:
    """Imports of a package module with relative imports made absolute."""
    import ast

    mod = ".".join(("w2sg_utils", *path.relative_to(PACKAGE).with_suffix("").parts))
    mod = mod.removesuffix(".__init__")
    pkg = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text())
    out = _imports(path.read_text(), top_level_only)
    for node in tree.body if top_level_only else ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = pkg.rsplit(".", node.level - 1)[0] if node.level > 1 else pkg
            full = f"{base}.{node.module}" if node.module else base
            out.add(full)
            out |= {f"{full}.{a.name}" for a in node.names if _module_file(f"{full}.{a.name}")}
    return out


def _chapter_needs(chapter: Path) -> set[str]:
    """Third-party top-level modules a chapter needs: its own imports, every import
    (lazy ones too) of the package modules it imports, and the module-level imports of
    the package modules those reach."""
    import re
    import sys

    cells = re.findall(r"```\{code-cell\}[^\n]*\n(.*?)```", chapter.read_text(), re.S)
    cells = [re.sub(r"\A---\n.*?\n---\n", "", c, flags=re.S) for c in cells]  # YAML options
    code = "\n".join(line for c in cells for line in c.splitlines()
                     if not line.startswith((":", "%", "!")))
    names, seen = _imports(code, top_level_only=False), set()
    todo = [(n, False) for n in names if n.startswith("w2sg_utils")] + [("w2sg_utils", True)]
    while todo:
        name, top = todo.pop()
        path = _module_file(name)
        if path is None or (name, top) in seen:
            continue
        seen.add((name, top))
        new = _package_imports(path, top)
        names |= new
        todo += [(n, True) for n in new if n.startswith("w2sg_utils")]
    tops = {n.split(".")[0] for n in names} - {"w2sg_utils"}
    return {t for t in tops if t not in sys.stdlib_module_names}


def _chapter_extras() -> dict[str, str | None]:
    """``{chapter number: extra}`` from the README's extras table."""
    import re

    out = {}
    for line in (ROOT / "README.md").read_text().splitlines():
        m = re.match(r"\| ([\d, ]+) \| (?:none|`pip install -e \"\.\[(\w+)\]\"`)", line)
        if m:
            for n in m.group(1).split(","):
                out[f"{int(n):02d}"] = m.group(2)
    return out


def test_every_chapter_is_in_the_extras_table():
    chapters = {p.name[2:4] for p in (ROOT / "notebooks").glob("ch[0-9][0-9]_*.md")}
    assert chapters and chapters <= set(_chapter_extras())


def test_chapter_imports_are_installed_by_their_extra():
    extras = _chapter_extras()
    for chapter in sorted((ROOT / "notebooks").glob("ch[0-9][0-9]_*.md")):
        installed = _requirement_names(extras[chapter.name[2:4]]) | KERNEL
        need = {DISTRIBUTION.get(m, m).lower() for m in _chapter_needs(chapter)}
        assert need <= installed, (f"{chapter.name} imports {sorted(need - installed)}, which "
                                   f"its extra {extras[chapter.name[2:4]]!r} does not install")


def test_the_import_scan_sees_lazy_and_transitive_imports():
    ch = {p.name[:4]: _chapter_needs(p) for p in (ROOT / "notebooks").glob("ch0*.md")}
    assert "torch" in ch["ch02"]  # lazy, inside misfit_learners.fit_mlp_students
    assert "torch" in ch["ch03"] and "sklearn" in ch["ch03"]  # ridge (module level)
    assert "torch" not in ch["ch01"] and "transformers" in ch["ch05"]
