"""Tests of w2sg_utils.ensembles (Chapter 6): batched teachers and heads equal the
one-at-a-time models, disjoint draws, the runner on both backends (claims C4, C9)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from w2sg_utils import experiments as E
from w2sg_utils.experiments import ensembles as ENS
from w2sg_utils.experiments.data import load_hh_helpful
from w2sg_utils.experiments.models import PairHead, TfidfTeacher
from w2sg_utils.experiments.plan import spec_seed
from w2sg_utils.experiments.training import head_logits, train_head
from w2sg_utils.losses import get_objective

pytestmark = pytest.mark.usefixtures("isolated_w2sg_cache")


@pytest.fixture(scope="module")
def data():
    return load_hh_helpful({"train_gt": 120, "train_w2s": 30, "test": 25}, seed=3)


def test_disjoint_draws_are_disjoint_and_hold_both_classes(data):
    labels = data["train_gt"].label
    d = ENS.ensemble_draws(labels, 20, 6, seed=1)
    assert d.shape == (6, 20) and len(np.unique(d)) == 120
    assert all(len(np.unique(labels[r])) == 2 for r in d)
    b = ENS.ensemble_draws(labels, 20, 6, seed=1, scheme="bootstrap")
    assert b.shape == (6, 20) and b.max() < 120
    assert not np.array_equal(d, ENS.ensemble_draws(labels, 20, 6, seed=2))
    with pytest.raises(ValueError, match="n_labels"):
        ENS.ensemble_draws(labels, 21, 6, seed=1)
    with pytest.raises(ValueError, match="scheme"):
        ENS.ensemble_draws(labels, 20, 6, seed=1, scheme="jackknife")


@pytest.mark.parametrize("max_features", [20000, 300])
def test_batched_tfidf_teachers_equal_the_single_teacher(data, max_features):
    draws = ENS.ensemble_draws(data["train_gt"].label, 15, 3, seed=0, scheme="bootstrap")
    out = ENS.tfidf_teacher_logits(data["train_gt"], draws, {"w": data["train_w2s"], "t": data["test"]},
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
    W = ENS.train_heads(ea, eb, targets, objective, l2=l2, epochs=3, lr=1e-2, batch_size=16, seed=5)
    for k in range(K):
        head = train_head(PairHead(d, "linear"), ea, eb, targets[k], get_objective(objective), l2=l2,
                          epochs=3, lr=1e-2, batch_size=16, seed=5)
        np.testing.assert_allclose((ea - eb) @ W[k], head_logits(head, ea, eb), rtol=1e-4, atol=1e-5)


def test_train_heads_validates_arguments():
    e = np.zeros((4, 2), np.float32)
    with pytest.raises(ValueError, match="targets"):
        ENS.train_heads(e, e, np.full((2, 4), 1.5), "bce")
    with pytest.raises(ValueError, match="e_b"):
        ENS.train_heads(e, e[:3], np.zeros((2, 4)), "bce")
    with pytest.raises(ValueError, match="l2"):
        ENS.train_heads(e, e, np.zeros((2, 4)), "bce", l2=-1.0)


def test_run_ensemble_embedding_preset_caches_every_stage(tmp_path):
    torch.manual_seed(0)
    cfg = E.make_config(sizes={"train_gt": 60, "train_w2s": 24, "test": 20}, seeds=[0],
                        teacher={"n_labels": 20}, strong={"epochs": 2})
    runs = [("bce", 1e-3), ("Quan_CACE_5", 0.0)]
    out = ENS.run_ensemble(cfg, 0, 3, runs, tmp_path)
    assert out["teachers"][0].shape == (3, 24) and out["teachers"][1].shape == (3, 20)
    assert out["ceiling"][1].shape == (1, 20)
    assert set(out["students"]) == set(runs) and out["students"][runs[1]][1].shape == (3, 20)
    n_art = len(list((tmp_path / "artifacts").glob("*.npz")))
    assert n_art == 4
    again = ENS.run_ensemble(cfg, 0, 3, runs, tmp_path)  # from the cache, identical
    for key in runs:
        np.testing.assert_array_equal(again["students"][key][1], out["students"][key][1])
    assert len(list((tmp_path / "artifacts").glob("*.npz"))) == n_art
    # the student of teacher k was trained on teacher k's labels: same as training it alone
    bk = E.Backend(cfg, 0, None, False)
    ea, eb = bk.embeddings("train_w2s")
    spec = {"stage": "ensemble_students", "seed": 0, "K": 3, "scheme": "disjoint",
            "objective": "bce", "l2": 1e-3}
    from w2sg_utils.experiments.models import sigmoid
    head = train_head(PairHead(ea.shape[1], "linear"), ea, eb, sigmoid(out["teachers"][0][1]),
                      get_objective("bce"), l2=1e-3, epochs=2, lr=1e-2, batch_size=64,
                      seed=spec_seed(spec))
    ta, tb = bk.embeddings("test")
    np.testing.assert_allclose(out["students"][("bce", 1e-3)][1][1], head_logits(head, ta, tb),
                               rtol=1e-4, atol=1e-5)


def test_run_ensemble_causal_lm_path(tmp_path):
    cfg = E.make_config("tiny-gpt2", sizes={"train_gt": 12, "train_w2s": 8, "test": 6},
                        teacher={"n_labels": 6})
    out = ENS.run_ensemble(cfg, 0, 2, [("bce", 0.0)], tmp_path)
    assert out["teachers"][1].shape == (2, 6) and out["students"][("bce", 0.0)][0].shape == (2, 8)
    assert np.all(np.isfinite(out["students"][("bce", 0.0)][1]))


def test_seed_tables_against_plain_formulas():
    """Per-seed tables ``(S, n)``: members' mean of ``KL(p_s || p_w)`` (student first) on
    the student's training inputs and on test, and of the cross-entropy risks on test."""
    rng = np.random.default_rng(2)
    K, n_w, n_t, run = 3, 7, 5, ("bce", 0.0)
    results = []
    for _ in range(2):
        results.append({"y_test": rng.integers(0, 2, n_t).astype(float),
                        "teachers": (rng.normal(0, 2, (K, n_w)), rng.normal(0, 2, (K, n_t))),
                        "students": {run: (rng.normal(0, 2, (K, n_w)), rng.normal(0, 2, (K, n_t)))}})
    tab = ENS.seed_tables(results, [run])[run]

    def kl(zs, zw):
        ps, pw = 1 / (1 + np.exp(-zs)), 1 / (1 + np.exp(-zw))
        return ps * np.log(ps / pw) + (1 - ps) * np.log((1 - ps) / (1 - pw))

    for s, r in enumerate(results):
        (zw_w, zw_t), (zs_w, zs_t) = r["teachers"], r["students"][run]
        y = r["y_test"]
        ps_t = 1 / (1 + np.exp(-zs_t))
        np.testing.assert_allclose(tab["misfit_train"][s], kl(zs_w, zw_w).mean(0), rtol=1e-9)
        np.testing.assert_allclose(tab["misfit"][s], kl(zs_t, zw_t).mean(0), rtol=1e-9)
        np.testing.assert_allclose(tab["risk_s"][s], -(y * np.log(ps_t) + (1 - y) * np.log(1 - ps_t)).mean(0),
                                   rtol=1e-9)
    assert tab["misfit_train"].shape == (2, n_w) and tab["misfit"].shape == (2, n_t)
