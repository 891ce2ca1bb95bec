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
    t = pair_gap.pair_tables([0, 1], 6, 10.0, sizes, root=tmp_path)
    assert set(t) == {"weak", "ceiling", "student", "weak_ceiling"}
    assert all(v.shape == (2, 6) and set(np.unique(v)) <= {0.0, 0.5, 1.0} for v in t.values())
    np.testing.assert_array_equal(t["ceiling"], t["weak_ceiling"])
    s = pair_gap.gap_summary(t)
    assert s["weak"]["lo"] <= s["weak"]["acc"] <= s["weak"]["hi"]
