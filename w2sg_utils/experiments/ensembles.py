"""Ensembles of weak teachers and their students on real data (Chapter 6; claims C3, C4, C9).

For each seed, ``K`` weak teachers are trained on resampled ground-truth subsets of
``train_gt`` (:func:`ensemble_draws`: ``"disjoint"`` draws by default, ``"bootstrap"``
optionally), one strong student per teacher and objective is trained on that teacher's
soft labels on ``train_w2s``, and a ceiling on the true labels of ``train_w2s``.
:func:`run_ensemble` returns their logits on ``train_w2s`` and ``test``; the terms of
the misfit theorem are computed from them by :mod:`w2sg_utils.ensemble_terms`.

The teachers, students and ceiling are Chapter 5's (:mod:`.learners`), for every
back-end, trained ``K`` at a time where the model allows it (:mod:`.batched`), so that
``K = 16`` teachers cost little more than one; a preset this machine cannot run is
refused before any work (:func:`check_ensemble`).

Runs are cached in a :class:`~w2sg_utils.experiments.store.RunStore` (validated artifacts,
keyed by a hash of the configuration, spec and data), so a re-run trains nothing.
"""

from __future__ import annotations

import numpy as np

from .._common import check_int, non_negative, positive_int
from .config import ExperimentConfig, check_device
from .context import SeedContext
from .learners import ceiling_model, fit_strongs, fit_teachers, student_model
from .models import sigmoid
from .plan import run_id, spec_seed
from .store import RunStore

__all__ = ["ensemble_draws", "check_ensemble", "run_ensemble", "seed_tables",
           "interval_table"]

SCHEMES = ("disjoint", "bootstrap")


def ensemble_draws(labels, n_labels: int, K: int, seed: int, scheme: str = "disjoint") -> np.ndarray:
    """Row indices ``(K, n_labels)`` of the ``K`` teachers' training sets in the pool.

    ``"disjoint"``: a seeded permutation of the pool cut into ``K`` blocks, so the
    teachers are trained on disjoint samples, i.e. independent draws of the teacher
    (the pool is an i.i.d. sample of the population); needs ``K * n_labels`` pool rows.
    ``"bootstrap"``: ``K`` samples with replacement from the whole pool (independent only
    given the pool, and each holds about 63% distinct pairs). Every draw must hold both
    classes; a disjoint permutation or bootstrap sample that does not is redrawn.
    """
    labels = np.asarray(labels)
    positive_int(n_labels, "n_labels")
    positive_int(K, "K")
    if scheme not in SCHEMES:
        raise ValueError(f"scheme: one of {SCHEMES}, got {scheme!r}")
    n_pool = len(labels)
    if scheme == "disjoint" and K * n_labels > n_pool:
        raise ValueError(f"n_labels: {K} disjoint teachers of {n_labels} labels need "
                         f"{K * n_labels} pool pairs, the pool has {n_pool}")
    if scheme == "bootstrap" and n_labels > n_pool:
        raise ValueError(f"n_labels: {n_labels} exceeds the pool of {n_pool}")
    rng = np.random.default_rng([int(seed), 0xE05E])
    for _ in range(1000):
        if scheme == "disjoint":
            idx = rng.permutation(n_pool)[: K * n_labels].reshape(K, n_labels)
        else:
            idx = rng.integers(0, n_pool, (K, n_labels))
        if all(len(np.unique(labels[row])) == 2 for row in idx):
            return idx
    raise ValueError(f"n_labels: {n_labels} labels per teacher never held both classes")


# --------------------------------------------------------------------- the runner

def check_ensemble(cfg: ExperimentConfig, K: int, scheme: str = "disjoint") -> None:
    """``ValueError`` naming the preset and back-end if the runner cannot run ``cfg``
    here, before any work: a preset that needs CUDA on a machine without it (the
    message of :func:`~.config.check_device`), ``K < 2`` or an unknown ``scheme``."""
    if not isinstance(cfg, ExperimentConfig):
        raise ValueError(f"cfg: an ExperimentConfig (make_config), got {type(cfg).__name__}")
    try:
        check_device(cfg)
    except ValueError as exc:
        raise ValueError(f"preset: {cfg.preset!r} (back-end {cfg.backend!r}) cannot run "
                         f"Chapter 6's ensembles on this machine: {exc}") from exc
    if check_int(K, "K", 1) < 2:
        raise ValueError(f"K: need at least 2 teachers, got {K}")
    if scheme not in SCHEMES:
        raise ValueError(f"scheme: one of {SCHEMES}, got {scheme!r}")


def run_ensemble(cfg: ExperimentConfig, seed: int, K: int, runs, out_dir,
                 scheme: str = "disjoint", data_dir=None, progress: bool = False) -> dict:
    """Teachers, ceiling and students of one seed for Chapter 6 (claims C3, C4, C9).

    ``runs`` lists the student settings ``(objective, l2)``. Returns a dict with the
    labels ``y_w2s``, ``y_test``, the draws, and ``(train_w2s, test)`` logit pairs:
    ``teachers`` (``(K, n)`` each), ``ceiling`` (``(1, n)``: :func:`~.learners.ceiling_model`)
    and ``students[(objective, l2)]`` (``(K, n)``, student ``k`` trained on teacher
    ``k``'s soft labels). The models are those of Chapter 5 (:mod:`.learners`), for
    every back-end. Every stage is cached in ``out_dir`` (a run store) and reused when
    its artifact is valid.

    Statement: {ref}`sec-ch06`.
    """
    check_ensemble(cfg, K, scheme)
    runs = [(str(o), float(l2)) for o, l2 in runs]
    for _, l2 in runs:
        non_negative(l2, "runs (l2)")
    store = RunStore(out_dir)
    ctx = SeedContext(cfg, seed, data_dir, progress)
    draws = ensemble_draws(ctx.data["train_gt"].label, cfg.teacher.n_labels, K, seed, scheme)

    def cached(spec, compute):
        rid = run_id(cfg, spec, ctx.data_hash)
        arrays = store.load_artifact(rid)
        if arrays is None:
            z = compute()
            arrays = {"w2s": np.asarray(z["train_w2s"]), "test": np.asarray(z["test"])}
            store.save_artifact(rid, **arrays)
        return arrays["w2s"], arrays["test"]

    base = {"seed": seed, "K": K, "scheme": scheme}
    out = {"y_w2s": ctx.data["train_w2s"].label, "y_test": ctx.data["test"].label,
           "draws": draws}
    seeds = [1000 * seed + k for k in range(K)]
    out["teachers"] = cached({"stage": "ensemble_teachers", **base},
                             lambda: fit_teachers(ctx, draws, seeds))
    y_true = ctx.data["train_w2s"].label[None].astype(float)
    l2_c = cfg.strong.l2
    out["ceiling"] = cached({"stage": "ensemble_ceiling", "seed": seed, "l2": l2_c},
                            lambda: fit_strongs(ctx, ceiling_model(cfg), y_true, "bce",
                                                l2_c, 7 + seed))
    targets = sigmoid(out["teachers"][0])
    student = student_model(cfg)
    out["students"] = {}
    for obj, l2 in runs:
        spec = {"stage": "ensemble_students", **base, "objective": obj, "l2": l2}
        out["students"][(obj, l2)] = cached(
            spec, lambda o=obj, r=l2, s=spec: fit_strongs(ctx, student, targets, o, r,
                                                          spec_seed(s)))
    return out


# ------------------------------------------------------------------- summaries

def seed_tables(results: list[dict], runs) -> dict:
    """Per-seed, per-pair tables ``(S, n)`` of every term, averaged over the members (Chapter 6).

    ``results``: :func:`run_ensemble` outputs, one per seed. For each student setting
    ``(objective, l2)`` returns a dict of tables: the terms of
    :func:`~w2sg_utils.ensemble_terms.misfit_terms` on test (``eps`` with the
    leave-one-out proxy), ``coupling``, and ``misfit_train`` (``KL(p_s || p_w)`` on the
    student's own training inputs, ``(S, n_w2s)``). Each table feeds
    :func:`~w2sg_utils.intervals.mean_interval` (test pairs x seeds).
    """
    from ..ensemble_terms import binary_kl_logits, coupling, misfit_terms

    out = {}
    for run in runs:
        run = (str(run[0]), float(run[1]))
        rows: dict[str, list] = {}
        for r in results:
            zs_w2s, zs_test = r["students"][run]
            zw_w2s, zw_test = r["teachers"]
            t = {k: v.mean(0) for k, v in misfit_terms(r["y_test"], zw_test, zs_test).items()}
            t["coupling"] = coupling(zw_test, zs_test)
            t["misfit_train"] = binary_kl_logits(zs_w2s, zw_w2s).mean(0)
            for k, v in t.items():
                rows.setdefault(k, []).append(v)
        out[run] = {k: np.array(v) for k, v in rows.items()}
    return out


def interval_table(tables: dict, terms, level: float = 0.95):
    """One row per key of ``tables`` with ``<term>_mean``, ``_se``, ``_lo``, ``_hi``.

    Intervals are two-level (test pairs and seeds, :func:`~w2sg_utils.intervals.mean_interval`),
    conditional on the training pools, the pretrained models and the hyperparameters.
    """
    import pandas as pd

    from ..intervals import mean_interval

    rows = []
    for key, tab in tables.items():
        row = dict(zip(("objective", "l2"), key)) if isinstance(key, tuple) else {"key": key}
        for term in terms:
            row |= mean_interval(tab[term], level).as_dict(f"{term}_")
        rows.append(row)
    return pd.DataFrame(rows)
