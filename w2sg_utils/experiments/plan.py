"""Run identities and the sweep plan (claim C9, Chapter 5).

Every run is identified by :func:`run_id`, a hash of its full configuration (stage
spec, model and training settings, data fingerprint and :data:`CODE_VERSION`), so a
store can tell finished runs from new ones; the ids of earlier versions are kept.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from .sections import ExperimentConfig

__all__ = ["CODE_VERSION", "config_hash", "run_id", "plan_runs", "spec_seed"]

CODE_VERSION = "ch05-v2"  # v2: Quan_CACE threshold from all training labels (issue 12)


def config_hash(obj) -> str:
    """SHA-256 (hex, 16 chars) of the canonical JSON of ``obj`` (sorted keys)."""
    s = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_json_default)
    return hashlib.sha256(s.encode()).hexdigest()[:16]


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    raise TypeError(f"not JSON serialisable: {o!r}")


def _context(cfg) -> dict:
    """The parts of a configuration every run depends on (not the sweep lists)."""
    d = cfg.to_dict()
    keys = ("preset", "backend", "sizes", "teacher", "strong", "device")
    keys += ("ceiling",) if cfg.ceiling is not None else ()
    # the released objectives differ from ours (e.g. reverse BCE's eps): a run under
    # one protocol is never another's; None, every committed store's, keeps its ids
    keys += ("protocol",) if cfg.protocol is not None else ()
    return {k: d[k] for k in keys} | {"code": CODE_VERSION}


def run_id(cfg: ExperimentConfig, spec: dict, data_hash: str) -> str:
    """Hash of a run's full configuration: context + stage spec + data fingerprint."""
    spec = dict(spec)
    return config_hash({"context": _context(cfg), "spec": spec, "data": data_hash})


def plan_runs(cfg: ExperimentConfig) -> list[dict]:
    """Ordered run specs of a sweep (dependencies first within each seed)."""
    plan = []
    K = cfg.ensemble_size
    l2 = cfg.strong.l2
    for seed in cfg.seeds:
        plan.append({"stage": "teacher", "seed": seed, "member": 0})
        plan.append({"stage": "ceiling", "seed": seed, "l2": l2})
        for obj in cfg.objectives:
            plan.append({"stage": "student", "seed": seed, "objective": obj, "l2": l2,
                         "labels": "teacher0"})
        for lam in cfg.l2_grid:
            for obj in cfg.sweep_objectives:
                if lam == l2 and obj in cfg.objectives:
                    continue
                plan.append({"stage": "student", "seed": seed, "objective": obj, "l2": lam,
                             "labels": "teacher0"})
        if K:
            for k in range(1, K + 1):
                plan.append({"stage": "teacher", "seed": seed, "member": k})
            for obj in cfg.ensemble_objectives:
                for k in range(1, K + 1):
                    plan.append({"stage": "student", "seed": seed, "objective": obj,
                                 "l2": l2, "labels": f"teacher{k}"})
                plan.append({"stage": "student", "seed": seed, "objective": obj, "l2": l2,
                             "labels": f"ensemble{K}"})
            plan.append({"stage": "bias_variance", "seed": seed, "ensemble_size": K})
    return plan


def spec_seed(spec) -> int:
    """A training seed derived from the whole spec (distinct runs, distinct streams)."""
    return int(config_hash(spec)[:8], 16) % (2 ** 31)
