"""Tests of w2sg_utils.experiments.batched (claim C9, Chapter 6): TF-IDF teachers and
linear heads trained K at a time equal the one-at-a-time models."""

from __future__ import annotations

import numpy as np
import pytest

from w2sg_utils.experiments import batched as B
from w2sg_utils.experiments import ensembles as ENS
from w2sg_utils.experiments.data import load_hh_helpful
from w2sg_utils.experiments.models import PairHead, TfidfTeacher
from w2sg_utils.experiments.training import head_logits, train_head
from w2sg_utils.losses import get_objective


@pytest.fixture(scope="module")
def data():
    return load_hh_helpful({"train_gt": 120, "train_w2s": 30, "test": 25}, seed=3)


@pytest.mark.parametrize("max_features", [20000, 300])
def test_batched_tfidf_teachers_equal_the_single_teacher(data, max_features):
    draws = ENS.ensemble_draws(data["train_gt"].label, 15, 3, seed=0, scheme="bootstrap")
    out = B.tfidf_teacher_logits(data["train_gt"], draws, {"w": data["train_w2s"], "t": data["test"]},
                                   C=10.0, ngram_max=2, max_features=max_features)
    for k, idx in enumerate(draws):
        sub = data["train_gt"].subset(idx)
        m = TfidfTeacher(C=10.0, ngram_max=2, max_features=max_features).fit(
            sub.text_a, sub.text_b, sub.label)
        for nm, ds in (("w", data["train_w2s"]), ("t", data["test"])):
            np.testing.assert_allclose(out[nm][k], m.logits(ds.text_a, ds.text_b), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("objective, l2", [("reverse_bce", 1e-3), ("Quan_CACE_5", 0.0), ("aux", 1e-3)])
def test_batched_heads_equal_separate_heads(objective, l2):
    rng = np.random.default_rng(0)
    n, d, K = 50, 8, 3
    ea, eb = rng.normal(size=(n, d)).astype(np.float32), rng.normal(size=(n, d)).astype(np.float32)
    targets = rng.uniform(0.05, 0.95, (K, n))
    W = B.train_heads(ea, eb, targets, objective, l2=l2, epochs=3, lr=1e-2, batch_size=16, seed=5)
    for k in range(K):
        head = train_head(PairHead(d, "linear"), ea, eb, targets[k], get_objective(objective), l2=l2,
                          epochs=3, lr=1e-2, batch_size=16, seed=5)
        np.testing.assert_allclose((ea - eb) @ W[k], head_logits(head, ea, eb), rtol=1e-4, atol=1e-5)


def test_train_heads_validates_arguments():
    e = np.zeros((4, 2), np.float32)
    with pytest.raises(ValueError, match="targets"):
        B.train_heads(e, e, np.full((2, 4), 1.5), "bce")
    with pytest.raises(ValueError, match="e_b"):
        B.train_heads(e, e[:3], np.zeros((2, 4)), "bce")
    with pytest.raises(ValueError, match="l2"):
        B.train_heads(e, e, np.zeros((2, 4)), "bce", l2=-1.0)
