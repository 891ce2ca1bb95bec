"""The pretrained pair's heads (claim C9): the soft-label logistic head solves its
objective, checked against the plain stationarity condition."""

from __future__ import annotations

import numpy as np
import pytest

from w2sg_utils.experiments.pair_gap import _correct, fit_head


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


@pytest.mark.parametrize("C", [0.5, 20.0])
def test_soft_label_head_is_stationary(C):
    """w minimises ||w||^2 / 2 + C sum_i BCE(p_i, sigmoid(w . d_i)): its gradient
    w + C sum_i (sigmoid(w . d_i) - p_i) d_i vanishes (plain loop over pairs)."""
    rng = np.random.default_rng(3)
    ea, eb = rng.normal(size=(60, 5)), rng.normal(size=(60, 5))
    p = rng.uniform(size=60)
    p[:5] = 1.0  # hard labels mixed in
    w = fit_head(ea, eb, p, C)
    grad = w.copy()
    for i in range(60):
        d = ea[i] - eb[i]
        grad += C * (_sigmoid(w @ d) - p[i]) * d
    assert np.abs(grad).max() < 1e-3 * max(1.0, C)
    # a planted error (targets flipped) is not stationary for the original objective
    w_bad = fit_head(ea, eb, 1 - p, C)
    bad = w_bad + C * sum((_sigmoid(w_bad @ (ea[i] - eb[i])) - p[i]) * (ea[i] - eb[i])
                          for i in range(60))
    assert np.abs(bad).max() > 0.1


def test_ties_count_half_and_bad_targets_fail():
    np.testing.assert_array_equal(_correct(np.array([1.0, -1.0, 0.0]), np.array([1, 1, 0])),
                                  [1.0, 0.0, 0.5])
    with pytest.raises(ValueError, match="target"):
        fit_head(np.zeros((3, 2)), np.ones((3, 2)), np.array([0.5, 2.0, 0.0]), 1.0)
    with pytest.raises(ValueError, match="C"):
        fit_head(np.zeros((3, 2)), np.ones((3, 2)), np.array([0.5, 1.0, 0.0]), -1.0)


def test_pair_tables_on_a_small_artifact(tmp_path, monkeypatch):
    """With the same encoder on both sides the ceiling IS the weak model's ceiling."""
    import os

    from w2sg_utils.experiments import pair_gap
    from w2sg_utils.experiments.embedding_artifact import embed_split

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(pair_gap, "STRONG", pair_gap.WEAK)
    sizes = {"train_gt": 10, "train_w2s": 8, "test": 6}
    for split, n in sizes.items():
        embed_split(pair_gap.WEAK, split, n, root=tmp_path, chunk_rows=8, progress=False)
    calls = []
    real_fit = pair_gap.fit_head

    def spy(ea, eb, target, C):
        w = real_fit(ea, eb, target, C)
        calls.append((np.asarray(ea) - np.asarray(eb), np.asarray(target, float), w))
        return w

    monkeypatch.setattr(pair_gap, "fit_head", spy)
    t = pair_gap.pair_tables([0, 1], 6, 10.0, sizes, root=tmp_path)
    # per seed: the weak head on its 6 ground-truth pairs, then three heads on train_w2s:
    # two on its true labels (ceiling, weak ceiling), the student on the weak head's
    # soft labels sigmoid(w_weak . d) (the same encoder on both sides here)
    from w2sg_utils.experiments.data import load_hh_helpful

    assert len(calls) == 8
    for s, seed_calls in zip((0, 1), (calls[:4], calls[4:])):
        weak, w2s = seed_calls[0], seed_calls[1:]
        assert len(weak[1]) == 6 and set(np.unique(weak[1])) <= {0.0, 1.0}
        y_w2s = load_hh_helpful(sizes, seed=s)["train_w2s"].label.astype(float)
        students = [c for c in w2s if not np.array_equal(c[1], y_w2s)]
        assert len(students) == 1
        d, target, _ = students[0]
        np.testing.assert_allclose(target, 1 / (1 + np.exp(-(d @ weak[2]))), rtol=1e-12)
    assert set(t) == {"weak", "ceiling", "student", "weak_ceiling"}
    assert all(v.shape == (2, 6) and set(np.unique(v)) <= {0.0, 0.5, 1.0} for v in t.values())
    np.testing.assert_array_equal(t["ceiling"], t["weak_ceiling"])
    s = pair_gap.gap_summary(t)
    assert s["weak"]["lo"] <= s["weak"]["acc"] <= s["weak"]["hi"]


def test_gap_summary_against_plain_means():
    """PGR is ``(acc_student - acc_weak) / (acc_ceiling - acc_weak)`` of the pooled
    accuracies; ``gap`` is ceiling minus weak and ``encoders`` ceiling minus the weak
    encoder's ceiling; each estimate lies in its own interval."""
    from w2sg_utils.experiments.pair_gap import gap_summary

    rng = np.random.default_rng(4)
    shape = (3, 80)
    tables = {k: (rng.random(shape) < p).astype(float) for k, p in
              (("weak", 0.6), ("ceiling", 0.85), ("student", 0.7), ("weak_ceiling", 0.75))}
    m = {k: v.mean() for k, v in tables.items()}
    s = gap_summary(tables, level=0.9)
    assert s["pgr"]["acc"] == pytest.approx((m["student"] - m["weak"]) /
                                            (m["ceiling"] - m["weak"]), rel=1e-12)
    assert s["gap"]["acc"] == pytest.approx(m["ceiling"] - m["weak"], rel=1e-12)
    assert s["encoders"]["acc"] == pytest.approx(m["ceiling"] - m["weak_ceiling"], rel=1e-12)
    for k in ("weak", "ceiling", "student", "gap", "encoders", "pgr"):
        assert s[k]["lo"] < s[k]["acc"] < s[k]["hi"], k
