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
