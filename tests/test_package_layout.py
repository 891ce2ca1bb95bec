"""The package's shape (issue 9): small modules, and every module named in the reference."""

import sys
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


# ------------------------------------------------------------------ imports inside w2sg_utils

def _module_name(path: Path) -> str:
    parts = ("w2sg_utils",) + path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


NAMES = {_module_name(p): p for p in MODULES}


def _imports(path: Path):
    """``(target module, imported names, node)`` of every import of ``path`` (function
    level included) that stays inside the package."""
    import ast

    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name in NAMES:
                    yield a.name, [], a.asname or a.name, node
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if target not in NAMES:
                continue
            names = []
            for a in node.names:
                if f"{target}.{a.name}" in NAMES:  # a submodule
                    yield f"{target}.{a.name}", [], a.asname or a.name, node
                else:
                    names.append(a.name)
            if names:
                yield target, names, None, node


def _graph() -> dict[str, set[str]]:
    return {name: {t for t, *_ in _imports(path) if t != name} for name, path in NAMES.items()}


def test_no_import_cycle():
    """No two modules of w2sg_utils import each other, directly or through others
    (function-level imports count; a package's ``__init__`` importing its modules is
    the only upward link allowed, so a module never imports its own package)."""
    graph = _graph()
    for name, targets in graph.items():
        pkg = name.rsplit(".", 1)[0]
        if NAMES[name].name != "__init__.py":
            assert pkg not in targets or pkg == "w2sg_utils", (
                f"{name} imports its own package {pkg} (import the module instead)")
    index, low, stack, on, cycles = {}, {}, [], set(), []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_no_private_name_used_across_modules():
    """No module of w2sg_utils imports a ``_private`` name from another, or reads one
    as ``module._name`` (make it public, or move it to ``_common``)."""
    import ast

    bad = []
    for name, path in NAMES.items():
        aliases = set()
        for target, names, alias, _node in _imports(path):
            bad += [f"{name}: from {target} import {n}" for n in names
                    if n.startswith("_") and not n.startswith("__")]
            if alias is not None:
                aliases.add(alias)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in aliases and node.attr.startswith("_")
                    and not node.attr.startswith("__")):
                bad.append(f"{name}: {node.value.id}.{node.attr}")
    assert not bad, "private names used across modules:\n" + "\n".join(sorted(bad))


# ------------------------------------------- experiments/: one direction, run to training
# A sweep's configuration goes run -> protocol -> learners -> training (issue 16). The
# layers below name where each module of that path sits; an import from a lower layer
# into a higher one (function-level imports included) would make the path turn back.
# Modules in no layer (configuration, data, store, embeddings, metrics) are shared by
# every layer and must import none of the layered modules above training.

LAYERS = {
    "entry": {"cli", "cli_errors", "embed_cmd"},
    "runs": {"sweep", "ensembles", "pair_gap", "pair_prereg", "run_intervals",
             "packed_logits"},
    "protocol": {"protocol"},
    "learners": {"learners", "context"},
    "training": {"training", "batched", "finetune", "models", "distributed"},
}
ORDER = list(LAYERS)


def _experiments_graph() -> dict[str, set[str]]:
    pre = "w2sg_utils.experiments."
    return {k[len(pre):]: {t[len(pre):] for t in v if t.startswith(pre)}
            for k, v in _graph().items() if k.startswith(pre)}


def test_every_layered_module_exists():
    graph = _experiments_graph()
    missing = sorted(m for mods in LAYERS.values() for m in mods if m not in graph)
    assert not missing, f"layers name modules that do not exist: {missing}"


def test_experiments_import_in_one_direction():
    """No module imports a module of a higher layer; shared modules import only the
    training layer (its defaults), never protocol, learners or a runner."""
    graph = _experiments_graph()
    rank = {m: ORDER.index(layer) for layer, mods in LAYERS.items() for m in mods}
    bad = []
    for mod, targets in graph.items():
        own = rank.get(mod, ORDER.index("training"))
        bad += [f"{mod} -> {t}" for t in targets if rank.get(t, len(ORDER)) < own]
    assert not bad, "imports that turn back up the run path:\n" + "\n".join(sorted(bad))


def test_the_sweep_reaches_training_through_protocol_and_learners():
    """sweep -> protocol -> learners -> training; the sweep trains nothing itself."""
    graph = _experiments_graph()
    assert "protocol" in graph["sweep"] and "learners" in graph["protocol"]
    assert {"training", "batched"} <= graph["learners"]
    trainers = LAYERS["training"] - {"distributed", "models"}
    assert not graph["sweep"] & (trainers | {"learners"})
    assert not graph["protocol"] & trainers


def test_the_direction_check_can_fail(monkeypatch):
    """A planted upward import (training -> learners) is reported."""
    graph = _experiments_graph()
    graph["training"] = graph["training"] | {"learners"}
    monkeypatch.setattr(sys.modules[__name__], "_experiments_graph", lambda: graph)
    with pytest.raises(AssertionError, match="training -> learners"):
        test_experiments_import_in_one_direction()
