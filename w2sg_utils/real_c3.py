"""Chapter 6's experiment in one call: teachers, students, ``fbar_w`` and the C3 check.

The chapter (``sec-ch06``) and ``tests/test_real_c3.py`` run the same code at the same
defaults (:data:`DEFAULTS`, equal to the chapter's parameters cell, which a test pins),
so the power the chapter prints is the power the test asserts.

- :func:`load_features`: pair features from the shipped embedding artifact: the
  teacher's encoder (MiniLM) on the ``train_gt`` pool, the student's inputs
  (``train_w2s``) and the test pairs; the student's encoder on the last two.
- :func:`run_experiment`: i.i.d. teachers and their students
  (:func:`w2sg_utils.teacher_draws.run_draws`), the cross-fitted posterior-mean teacher
  (:func:`w2sg_utils.real_posterior.crossfit_posterior_mean`), the terms against it and
  the C3 check with its power against each wrong alternative, per objective.
"""

from __future__ import annotations

import json
from pathlib import Path

from scipy.stats import norm

from ._common import check_int, check_real
from .real_posterior import (
    c3_alternatives,
    crossfit_posterior_mean,
    identity_check,
    posterior_terms,
)
from .teacher_draws import pair_features, run_draws

__all__ = ["DEFAULTS", "TEACHER_ENCODER", "PREREGISTRATION", "preregistration",
           "z_bonferroni", "load_features", "run_experiment"]

TEACHER_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
PREREGISTRATION = (Path(__file__).resolve().parents[1] / "results"
                   / "ch06_preregistration" / "dev_seeds.json")

#: Chapter 6's parameters (its parameters cell must equal these; a test checks it).
DEFAULTS = {
    "seed": 0, "n_draws": 900, "n_students": 384, "teacher_labels": 100,
    "teacher_C": 10.0, "pool_rows": 1000, "n_inputs": 300, "n_test": 600,
    "rank": 256, "n_folds": 8, "student_l2": 1e-3,
    "student_encoder": "sentence-transformers/all-mpnet-base-v2",
    "objectives": ("bce", "reverse_bce"), "alpha": 0.01, "n_boot": 200,
}


def preregistration() -> dict:
    """The committed development-seed runs that fixed Chapter 6's rank (claim C3).

    Statement: {prf:ref}`thm-expected-misfit`.
    """
    if not PREREGISTRATION.is_file():
        raise FileNotFoundError(f"{PREREGISTRATION.name}: run "
                                "results/ch06_preregistration/run.py first")
    return json.loads(PREREGISTRATION.read_text(encoding="utf-8"))


def z_bonferroni(alpha: float, n_checks: int) -> float:
    """Two-sided normal quantile at family-wise level ``alpha`` over ``n_checks`` (C3).

    The critical value of Chapter 6's C3 checks (one per objective).
    Statement: {prf:ref}`thm-expected-misfit`.
    """
    alpha = check_real(alpha, "alpha", 0.0, 0.5, min_open=True)
    n_checks = check_int(n_checks, "n_checks", min=1)
    return float(norm.ppf(1 - alpha / (2 * n_checks)))


def load_features(p: dict) -> tuple[dict, dict, dict]:
    """``(teacher_x, student_x, labels)`` from the artifact for parameters ``p`` (C3).

    The pool, the inputs and the test pairs are the first ``pool_rows``, ``n_inputs``
    and ``n_test`` rows of ``train_gt``, ``train_w2s`` and ``test``, swapped by ``seed``.

    Statement: {prf:ref}`thm-expected-misfit`.
    """
    seed = p["seed"]
    t, y = {}, {}
    for key, split, n in (("pool", "train_gt", p["pool_rows"]),
                          ("inputs", "train_w2s", p["n_inputs"]),
                          ("test", "test", p["n_test"])):
        t[key], y[key] = pair_features(TEACHER_ENCODER, split, n, seed)
    s = {key: pair_features(p["student_encoder"], split, n, seed)[0]
         for key, split, n in (("inputs", "train_w2s", p["n_inputs"]),
                               ("test", "test", p["n_test"]))}
    return t, s, y


def run_experiment(p: dict | None = None, features=None) -> dict:
    """Chapter 6 at parameters ``p`` (default :data:`DEFAULTS`), claims C3 and C4.

    Returns ``draws`` (:func:`~w2sg_utils.teacher_draws.run_draws`), ``post`` (the
    cross-fitted posterior mean), ``y_test``, and per objective ``terms[obj]``
    (:func:`~w2sg_utils.real_posterior.posterior_terms` of the ``n_students`` draws
    with students) and ``checks[obj]`` (the C3 check: ``gain`` against ``misfit + eps``,
    with its power against :func:`~w2sg_utils.real_posterior.c3_alternatives` at the
    Bonferroni quantile ``z_crit`` over the objectives).

    Statement: {prf:ref}`thm-expected-misfit`.
    """
    p = dict(DEFAULTS) | dict(p or {})
    unknown = set(p) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"p: unknown parameter(s) {sorted(unknown)}")
    teacher_x, student_x, y = features if features is not None else load_features(p)
    d = run_draws(teacher_x, student_x, y["pool"], n_draws=p["n_draws"],
                  n_students=p["n_students"], teacher_labels=p["teacher_labels"],
                  teacher_C=p["teacher_C"], objectives=p["objectives"],
                  l2=p["student_l2"], seed=p["seed"])
    post = crossfit_posterior_mean(d["z_w_inputs"], d["z_w_test"], p["rank"],
                                   p["n_folds"])
    K = p["n_students"]
    z_crit = z_bonferroni(p["alpha"], len(p["objectives"]))
    out = {"params": p, "draws": d, "post": post, "y_test": y["test"], "z_crit": z_crit,
           "terms": {}, "checks": {}}
    for j, obj in enumerate(p["objectives"]):
        z_s = d["students"][obj]
        T = posterior_terms(y["test"], d["z_w_test"][:K], z_s, post.zbar[:K])
        alts = c3_alternatives(y["test"], z_s, T, post)
        out["terms"][obj] = T
        out["checks"][obj] = identity_check(T["gain"], T["misfit"] + T["eps"], alts,
                                            z_crit, p["n_boot"], seed=p["seed"] + 10 * j)
    return out
