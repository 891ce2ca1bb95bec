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


def test_heads_with_their_own_objective_l2_and_seed_equal_separate_heads():
    """The sweep's batch (protocol.prefit): every head its own objective, penalty and
    minibatch order, objects with state included (Quan_CACE, aux) and a name repeated."""
    rng = np.random.default_rng(1)
    n, d = 45, 6
    ea = rng.normal(size=(n, d)).astype(np.float32)
    eb = rng.normal(size=(n, d)).astype(np.float32)
    objs = ["bce", "reverse_bce", "Quan_CACE_5", "aux", "bce", "kl"]
    l2s = [1e-3, 0.0, 1e-2, 1e-3, 0.0, 1e-4]
    seeds = [3, 4, 3, 7, 8, 9]
    targets = rng.uniform(0.05, 0.95, (len(objs), n))
    W = B.train_heads(ea, eb, targets, objs, l2=l2s, epochs=3, lr=1e-2,
                      batch_size=16, seed=seeds)
    for k, (o, lam, s) in enumerate(zip(objs, l2s, seeds)):
        head = train_head(PairHead(d, "linear"), ea, eb, targets[k], get_objective(o),
                          l2=lam, epochs=3, lr=1e-2, batch_size=16, seed=s)
        np.testing.assert_allclose((ea - eb) @ W[k], head_logits(head, ea, eb),
                                   rtol=1e-4, atol=1e-5)



def test_heads_with_their_own_l2_and_one_seed_equal_separate_heads():
    """``l2`` one per head with one shared ``seed`` (documented: each is one value or
    one per head): head ``k`` is penalised with its own ``l2_k``, as training it alone.
    A bug fixed here: head 0's strength was applied to every head."""
    rng = np.random.default_rng(3)
    n, d = 40, 5
    ea = rng.normal(size=(n, d)).astype(np.float32)
    eb = rng.normal(size=(n, d)).astype(np.float32)
    Y = rng.uniform(0.1, 0.9, (3, n))
    l2s = [0.0, 0.5, 1e-2]
    W = B.train_heads(ea, eb, Y, "bce", l2=l2s, epochs=3, seed=1)
    for k, lam in enumerate(l2s):
        head = train_head(PairHead(d, "linear"), ea, eb, Y[k], get_objective("bce"),
                          l2=lam, epochs=3, lr=1e-2, batch_size=64, seed=1)
        np.testing.assert_allclose((ea - eb) @ W[k], head_logits(head, ea, eb),
                                   rtol=1e-4, atol=1e-5)

def test_a_head_with_its_own_seed_is_the_same_alone_or_in_a_batch():
    """Bit for bit: a resumed sweep recomputes a run alone that the first pass trained
    among others (tests/experiments/test_faults.py compares the stores exactly)."""
    rng = np.random.default_rng(2)
    n, d = 70, 12
    ea = rng.normal(size=(n, d)).astype(np.float32)
    eb = rng.normal(size=(n, d)).astype(np.float32)
    objs = ["bce", "Quan_CACE_5", "reverse_bce", "bce"]
    l2s, seeds = [1e-3, 0.0, 1e-2, 0.0], [1, 2, 3, 4]
    Y = rng.uniform(0.05, 0.95, (len(objs), n))
    kw = dict(epochs=3, batch_size=16)
    W = B.train_heads(ea, eb, Y, objs, l2=l2s, seed=seeds, **kw)
    for k in range(len(objs)):
        w = B.train_heads(ea, eb, Y[k:k + 1], [objs[k]], l2=[l2s[k]],
                          seed=[seeds[k]], **kw)
        np.testing.assert_array_equal(w[0], W[k])


def test_train_heads_refuses_a_shared_stateful_objective():
    e = np.zeros((4, 2), np.float32)
    q = get_objective("Quan_CACE_5")
    with pytest.raises(ValueError, match="objective"):
        B.train_heads(e, e, np.full((2, 4), 0.5), [q, q])
    with pytest.raises(ValueError, match="seed"):
        B.train_heads(e, e, np.full((2, 4), 0.5), "bce", seed=[1, 2, 3])


def test_train_heads_validates_arguments():
    e = np.zeros((4, 2), np.float32)
    with pytest.raises(ValueError, match="targets"):
        B.train_heads(e, e, np.full((2, 4), 1.5), "bce")
    with pytest.raises(ValueError, match="e_b"):
        B.train_heads(e, e[:3], np.zeros((2, 4)), "bce")
    with pytest.raises(ValueError, match="l2"):
        B.train_heads(e, e, np.zeros((2, 4)), "bce", l2=-1.0)
