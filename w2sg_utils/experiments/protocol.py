"""The run protocol of Chapter 5 (claim C9): what a run is and in which order its
stages run -- teacher, ceiling, student, bias-variance.

Protocol (the authors' released code, with its known defects fixed; see Chapter 5):
a weak teacher is trained on ground truth (``train_gt``); its soft labels
``sigmoid(z_w)`` on ``train_w2s`` train one strong student per objective; the strong
ceiling trains on the true labels of ``train_w2s``; everything is evaluated on
``test``. :func:`execute` computes one run of :func:`~.plan.plan_runs` from the
runs it depends on (``ensure``); the models are trained by :mod:`.learners`.
"""

from __future__ import annotations

import json

import numpy as np

from .learners import (
    StrongJob,
    ceiling_model,
    fit_strong,
    fit_strong_jobs,
    fit_teacher,
    student_model,
    trains_at_once,
)
from .metrics import accuracy, clip_probs, pair_metrics, pgr
from .models import sigmoid
from .plan import spec_seed

__all__ = ["execute", "prefit", "label_logits"]


def _run_teacher(ctx, spec) -> dict:
    """Train teacher ``member``; return its logits on train_w2s and test."""
    member = spec["member"]
    z = fit_teacher(ctx, ctx.teacher_indices(member), 1000 * ctx.seed + member)
    return {"z_w2s": z["train_w2s"], "z_test": z["test"]}


def _base_row(spec) -> dict:
    return {"stage": spec["stage"], "seed": spec["seed"], "objective": spec.get("objective", ""),
            "l2": spec.get("l2", np.nan), "labels": spec.get("labels", ""),
            "member": spec.get("member", -1)}


def _strong_job(spec, ctx, ensure):
    """The strong model and :class:`~.learners.StrongJob` of a ceiling or student run."""
    if spec["stage"] == "ceiling":
        y = ctx.data["train_w2s"].label.astype(float)
        return ceiling_model(ctx.cfg), StrongJob(y, "bce", spec["l2"], spec_seed(spec))
    zw_w2s, _ = label_logits(spec["labels"], spec["seed"], ensure)
    return student_model(ctx.cfg), StrongJob(sigmoid(zw_w2s), spec["objective"],
                                             spec["l2"], spec_seed(spec))


def prefit(specs, ctx, ensure) -> dict[int, np.ndarray]:
    """Train at once the ceiling and student runs among ``specs`` whose model the
    learners train together (:func:`~.learners.trains_at_once`); their test logits,
    keyed by position in ``specs``, for :func:`execute`'s ``fitted``. The teachers they
    need are run first (``ensure``). Other runs are left to :func:`execute`."""
    groups: list[tuple] = []  # (model, [(position, job), ...])
    for i, spec in enumerate(specs):
        if spec["stage"] not in ("ceiling", "student"):
            continue
        model, job = _strong_job(spec, ctx, ensure)
        if not trains_at_once(model):
            continue
        for g_model, items in groups:
            if g_model == model:
                items.append((i, job))
                break
        else:
            groups.append((model, [(i, job)]))
    fitted = {}
    for model, items in groups:
        outs = fit_strong_jobs(ctx, model, [job for _, job in items])
        fitted |= {i: out["test"] for (i, _), out in zip(items, outs)}
    return fitted


def execute(spec, ctx, ensure, fitted=None) -> tuple[dict, dict]:
    """Compute one run: its arrays (artifact) and its row of metrics. ``fitted``: the
    test logits of a ceiling or student run already trained by :func:`prefit`."""
    seed = spec["seed"]
    test_label = ctx.data["test"].label
    row = _base_row(spec)
    if spec["stage"] == "teacher":
        arrays = _run_teacher(ctx, spec)
        z = arrays["z_test"]
        row |= {"acc": accuracy(z, test_label), "entropy": pair_metrics(z, z, test_label)["entropy"],
                "teacher_acc": accuracy(z, test_label),
                "acc_w2s_labels": accuracy(arrays["z_w2s"], ctx.data["train_w2s"].label)}
        return arrays, row
    if spec["stage"] in ("ceiling", "student") and fitted is None:
        model, job = _strong_job(spec, ctx, ensure)
        fitted = fit_strong(ctx, model, job.targets, job.objective, job.l2,
                            job.seed)["test"]
    if spec["stage"] == "ceiling":
        z = fitted
        t0 = ensure({"stage": "teacher", "seed": seed, "member": 0})
        m = pair_metrics(z, t0["z_test"], test_label)
        row |= m | {"ceiling_acc": m["acc"], "teacher_acc": accuracy(t0["z_test"], test_label)}
        return {"z_test": z}, row
    if spec["stage"] == "student":
        z, (_, zw_test) = fitted, label_logits(spec["labels"], seed, ensure)
        ceil = ensure({"stage": "ceiling", "seed": seed, "l2": ctx.cfg.strong.l2})
        m = pair_metrics(z, zw_test, test_label)
        acc_w = accuracy(zw_test, test_label)
        acc_c = accuracy(ceil["z_test"], test_label)
        row |= m | {"teacher_acc": acc_w, "ceiling_acc": acc_c, "pgr": pgr(m["acc"], acc_w, acc_c)}
        return {"z_test": z}, row
    if spec["stage"] == "bias_variance":
        return _bias_variance(spec, ctx, ensure)
    raise ValueError(f"stage: unknown stage {spec['stage']!r}")


def label_logits(source: str, seed: int, ensure):
    """Teacher logits on (train_w2s, test) for ``teacher<k>`` or ``ensemble<K>``.

    The ensemble label is the dual mean for the binary KL (claims C1, C4): the sigmoid
    of the members' mean logit, i.e. the posterior-mean estimate of the teacher.

    Statement: {prf:ref}`def-dual-mean`.
    """
    if source.startswith("teacher"):
        t = ensure({"stage": "teacher", "seed": seed, "member": int(source[len("teacher"):])})
        return t["z_w2s"], t["z_test"]
    if source.startswith("ensemble"):
        K = int(source[len("ensemble"):])
        ts = [ensure({"stage": "teacher", "seed": seed, "member": k}) for k in range(1, K + 1)]
        return (np.mean([t["z_w2s"] for t in ts], axis=0), np.mean([t["z_test"] for t in ts], axis=0))
    raise ValueError(f"labels: unknown label source {source!r}")


def _bias_variance(spec, ctx, ensure) -> tuple[dict, dict]:
    """Bias-variance rows for the teacher ensemble and the students trained on it.

    Uses :func:`~w2sg_utils.decompositions.bias_variance_decomposition` with the binary
    KL: predictions are the ``K`` members' test probabilities (randomness: bootstrap of
    ``train_gt`` and seed), the target is the observed test label. With one label per
    pair the noise term is zero by construction; ``bias`` then includes the label
    noise. ``expected_loss`` is the members' mean test cross-entropy (computed directly).
    """
    from ..decompositions import bias_variance_decomposition

    seed, K = spec["seed"], spec["ensemble_size"]
    y = ctx.data["test"].label.astype(float)[None, :, None]
    out_rows = {}
    groups = {"teacher": [ensure({"stage": "teacher", "seed": seed, "member": k})["z_test"]
                          for k in range(1, K + 1)]}
    l2 = ctx.cfg.strong.l2
    for obj in ctx.cfg.ensemble_objectives:
        groups[f"student_{obj}"] = [
            ensure({"stage": "student", "seed": seed, "objective": obj, "l2": l2,
                    "labels": f"teacher{k}"})["z_test"] for k in range(1, K + 1)]
    arrays = {}
    for name, zs in groups.items():
        P = clip_probs(sigmoid(np.stack(zs)))[:, :, None]
        bv = bias_variance_decomposition("binary_kl", P, y).averaged()
        for k, v in bv.items():
            out_rows[f"{name}__{k}"] = v
        arrays[name] = np.stack(zs)
    row = _base_row(spec) | {"ensemble_size": K, "bv": json.dumps(out_rows, sort_keys=True)}
    return arrays, row
