"""Tests of the run protocol (w2sg_utils.experiments.protocol) (claim C9)."""

from __future__ import annotations

import numpy as np
import pytest


def test_ensemble_label_is_the_mean_logit_of_its_members():
    """``ensemble<K>`` labels: the binary-KL dual mean of teachers 1..K, i.e. the mean of
    their logits (claims C1, C4), on both splits; ``teacher<k>`` is member k itself."""
    from w2sg_utils.experiments.protocol import label_logits

    rng = np.random.default_rng(3)
    members = {k: {"z_w2s": rng.normal(0, 2, 5), "z_test": rng.normal(0, 2, 4)} for k in range(0, 5)}
    asked = []

    def ensure(spec):
        assert spec["stage"] == "teacher" and spec["seed"] == 9
        asked.append(spec["member"])
        return members[spec["member"]]

    w2s, test = label_logits("ensemble3", 9, ensure)
    assert sorted(asked) == [1, 2, 3]
    for got, key in ((w2s, "z_w2s"), (test, "z_test")):
        expected = [sum(members[k][key][i] for k in (1, 2, 3)) / 3 for i in range(len(got))]
        np.testing.assert_allclose(got, expected, rtol=1e-12)
    w2s, test = label_logits("teacher4", 9, ensure)
    assert w2s is members[4]["z_w2s"] and test is members[4]["z_test"]


def _fake_run(rng, n_w2s=6, n_test=40, l2=1e-3, objectives=("bce",)):
    """A seed's context and ``ensure`` without training: the runs' logits are drawn at
    random, the test labels too (claim C9's protocol reads only these)."""
    from types import SimpleNamespace

    y = rng.integers(0, 2, n_test)
    cfg = SimpleNamespace(strong=SimpleNamespace(l2=l2), backend="embedding",
                          ensemble_objectives=list(objectives))
    ctx = SimpleNamespace(cfg=cfg, data={"test": SimpleNamespace(label=y)})
    runs = {}

    def ensure(spec):
        key = tuple(sorted((k, str(v)) for k, v in spec.items()))
        if key not in runs:  # a teacher has both splits; other runs their test logits
            runs[key] = {"z_w2s": rng.normal(0, 2, n_w2s), "z_test": rng.normal(0, 2, n_test)}
        return runs[key]

    return ctx, ensure, y


def _acc(z, y):
    """Plain accuracy, an exact tie counted one half."""
    return sum(0.5 if a == 0 else float((a > 0) == (b == 1)) for a, b in zip(z, y)) / len(y)


def test_student_row_pgr_is_student_over_the_gap_from_its_teacher():
    """A student run's PGR is ``(acc_s - acc_w) / (acc_c - acc_w)`` with ``acc_w`` its
    teacher's accuracy and ``acc_c`` the seed's ceiling, on the same test pairs."""
    from w2sg_utils.experiments.protocol import execute

    rng = np.random.default_rng(5)
    ctx, ensure, y = _fake_run(rng)
    z_s = rng.normal(0, 2, len(y))
    z_s[:3] = 0.0  # exact ties count one half
    spec = {"stage": "student", "seed": 2, "objective": "bce", "l2": 1e-3,
            "labels": "teacher0"}
    zw = ensure({"stage": "teacher", "seed": 2, "member": 0})["z_test"]
    zc = ensure({"stage": "ceiling", "seed": 2, "l2": 1e-3})["z_test"]
    zc += 3 * np.where(y == 1, 1.0, -1.0)  # a ceiling that beats the teacher
    _, row = execute(spec, ctx, ensure, fitted=z_s)
    acc_s, acc_w, acc_c = _acc(z_s, y), _acc(zw, y), _acc(zc, y)
    assert row["acc"] == acc_s and row["teacher_acc"] == acc_w and row["ceiling_acc"] == acc_c
    assert acc_c > acc_w != acc_s
    assert row["pgr"] == (acc_s - acc_w) / (acc_c - acc_w)


@pytest.mark.parametrize("labels", ["teacher0", "ensemble3"])
def test_student_trains_on_the_soft_labels_of_its_source(labels, monkeypatch):
    """The student's targets are the probabilities ``sigmoid(z)`` of its label source on
    ``train_w2s`` (the mean logit for an ensemble), never hardened; the ceiling's are
    the true labels with the BCE objective."""
    from w2sg_utils.experiments import protocol

    rng = np.random.default_rng(6)
    ctx, ensure, y = _fake_run(rng)
    seen = []

    def fake_fit(ctx_, model, targets, objective, l2, seed):
        seen.append((np.asarray(targets), objective, l2))
        return {"test": rng.normal(0, 1, len(y))}

    monkeypatch.setattr(protocol, "fit_strong", fake_fit)
    spec = {"stage": "student", "seed": 2, "objective": "reverse_bce", "l2": 0.0,
            "labels": labels}
    protocol.execute(spec, ctx, ensure)
    members = [0] if labels == "teacher0" else [1, 2, 3]
    z = np.mean([ensure({"stage": "teacher", "seed": 2, "member": k})["z_w2s"]
                 for k in members], axis=0)
    targets, objective, l2 = seen[0]
    np.testing.assert_allclose(targets, 1 / (1 + np.exp(-z)), rtol=1e-12)
    assert objective == "reverse_bce" and l2 == 0.0


def test_bias_variance_row_is_the_binary_kl_decomposition_about_the_dual_mean():
    """Claims C1, C4 on a seed's ensemble: with hard test labels ``y`` and members'
    probabilities ``p_k = sigmoid(z_k)``, the binary-KL decomposition is centred at the
    dual mean ``pbar = sigmoid(mean_k z_k)``: ``bias = mean_x CE(y, pbar)``, ``variance
    = mean_x mean_k KL(pbar || p_k)``, ``expected_loss = mean_x mean_k CE(y, p_k)``,
    ``noise = 0`` (one label per pair); written out per pair here."""
    import json

    from w2sg_utils.experiments.protocol import execute

    rng = np.random.default_rng(7)
    ctx, ensure, y = _fake_run(rng, objectives=("bce", "reverse_bce"))
    K = 3
    _, row = execute({"stage": "bias_variance", "seed": 2, "ensemble_size": K}, ctx, ensure)
    bv = json.loads(row["bv"])
    groups = {"teacher": [{"stage": "teacher", "seed": 2, "member": k} for k in range(1, K + 1)]}
    for obj in ("bce", "reverse_bce"):
        groups[f"student_{obj}"] = [
            {"stage": "student", "seed": 2, "objective": obj, "l2": 1e-3,
             "labels": f"teacher{k}"} for k in range(1, K + 1)]
    assert sorted(bv) == sorted(f"{g}__{t}" for g in groups
                             for t in ("noise", "bias", "variance", "expected_loss"))

    def ce(t, p):
        return -(t * np.log(p) + (1 - t) * np.log(1 - p))

    def kl(a, b):
        return a * np.log(a / b) + (1 - a) * np.log((1 - a) / (1 - b))

    for name, specs in groups.items():
        Z = np.stack([ensure(s)["z_test"] for s in specs])
        P = 1 / (1 + np.exp(-Z))
        pbar = 1 / (1 + np.exp(-Z.mean(0)))
        want = {"noise": 0.0, "bias": ce(y, pbar).mean(),
                "variance": np.mean([kl(pbar, p) for p in P]),
                "expected_loss": np.mean([ce(y, p) for p in P])}
        for term, value in want.items():
            assert bv[f"{name}__{term}"] == pytest.approx(value, rel=1e-9, abs=1e-12), (name, term)
