"""Tests of run ids and the plan (w2sg_utils.experiments.plan) (claim C9)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.experiments.small import SMALL
from w2sg_utils import experiments as E

pytestmark = pytest.mark.usefixtures("isolated_w2sg_cache")


def test_config_hash_is_canonical_and_sensitive():
    a = {"x": 1, "y": {"b": 2.0, "a": [1, 2]}}
    b = {"y": {"a": [1, 2], "b": 2.0}, "x": 1}
    assert E.config_hash(a) == E.config_hash(b)
    assert E.config_hash(a) != E.config_hash({**a, "x": 2})
    assert E.config_hash(a) != E.config_hash({"x": 1, "y": {"b": 2.0, "a": [2, 1]}})


def test_run_id_depends_on_spec_context_and_data():
    cfg = E.make_config(**SMALL)
    spec = {"stage": "teacher", "seed": 0, "member": 0}
    rid = E.run_id(cfg, spec, "d1")
    assert rid == E.run_id(E.make_config(**SMALL), dict(spec), "d1")
    assert rid != E.run_id(cfg, spec, "d2")
    assert rid != E.run_id(cfg, {**spec, "member": 1}, "d1")
    other = E.make_config(**{**SMALL, "teacher": {"n_labels": 31}})
    assert rid != E.run_id(other, spec, "d1")
    # sweep lists do not enter a run's id (adding objectives or seeds keeps old runs)
    wider = E.make_config(**{**SMALL, "objectives": ["bce", "reverse_bce", "kl"], "seeds": [0, 5]})
    assert rid == E.run_id(wider, spec, "d1")


def test_run_id_depends_on_the_protocol():
    """A run under the released objectives (protocol "release": reverse BCE with eps 0,
    for one) is never reused for our protocol, nor the other way round."""
    cfg = E.make_config(**SMALL)
    assert cfg.protocol is None
    spec = {"stage": "student", "seed": 0, "objective": "reverse_bce", "l2": 0.0,
            "labels": "teacher0"}
    released = E.make_config(**{**SMALL, "protocol": "release"})
    assert E.run_id(released, spec, "d1") != E.run_id(cfg, spec, "d1")
    assert E.run_id(released, spec, "d1") == E.run_id(
        E.make_config(**{**SMALL, "protocol": "release"}), dict(spec), "d1")


def test_plan_is_ordered_and_unique():
    cfg = E.make_config(**{**SMALL, "seeds": [0, 1]})
    plan = E.plan_runs(cfg)
    keys = [json.dumps(p, sort_keys=True) for p in plan]
    assert len(keys) == len(set(keys))
    for seed in (0, 1):
        stages = [p["stage"] for p in plan if p["seed"] == seed]
        assert stages[0] == "teacher" and stages[1] == "ceiling" and stages[-1] == "bias_variance"
        assert sum(p.get("labels") == "ensemble2" for p in plan if p["seed"] == seed) == 2


RESULTS = Path(__file__).resolve().parents[2] / "results"


def _command(store: str) -> tuple[list[str], str]:
    """The ``run`` arguments and the code version that the READMEs of ``results/`` state
    for the committed sweep ``store``: the command line naming ``--out results/<store>``
    (shell variables ``X=...`` of that README substituted), else the ``w2sg run`` line of
    the store's own README."""
    import re
    import shlex

    readmes = [RESULTS / store / "README.md"] + sorted(RESULTS.glob("*/README.md"))
    for path in readmes:
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        lines = text.replace("\\\n", " ").splitlines()
        own = path.parent.name == store
        hits = [ln for ln in lines if f"--out results/{store} " in ln + " "
                or (own and "w2sg run" in ln)]
        if not hits:
            continue
        line = hits[0]
        for name, value in re.findall(r"^\s*(\w+)=(\S+)\s*$", text, re.M):
            line = line.replace(f"${name}", value)
        line = line.replace("<s>", "0").replace("<dir>", "x")
        words = shlex.split(line)
        argv = words[words.index("run"):]
        version = re.search(r"[Cc]ode version `([\w.-]+)`", text).group(1)
        return argv, version
    raise AssertionError(f"results/{store}: no README states the command that made it")


@pytest.mark.parametrize("store", sorted(p.parent.name for p in RESULTS.glob("*/results.csv")))
def test_committed_sweeps_keep_their_run_ids(store, monkeypatch):
    """Every row of a committed sweep (``results/*/results.csv``) has the run id that
    today's code computes from the configuration its README's command builds (at the
    code version the README names), so re-running that command resumes the store."""
    from w2sg_utils.experiments import cli, plan

    argv, version = _command(store)
    monkeypatch.setattr(plan, "CODE_VERSION", version)
    cfg = cli.config_from_args(cli.build_parser().parse_args(argv))
    rows = pd.read_csv(RESULTS / store / "results.csv")
    assert len(rows) > 0
    got = [E.run_id(cfg, json.loads(r.spec), r.data_hash) for r in rows.itertuples()]
    assert got == list(rows["run_id"])


def test_spec_seed_differs_between_runs_of_one_seed():
    """Distinct runs draw distinct streams: the seed hashes the whole spec."""
    from w2sg_utils.experiments.plan import spec_seed

    specs = E.plan_runs(E.make_config(**SMALL))
    seeds = [spec_seed(s) for s in specs]
    assert len(set(seeds)) == len(specs)
    assert spec_seed(dict(specs[0])) == seeds[0] and 0 <= min(seeds) and max(seeds) < 2 ** 31
