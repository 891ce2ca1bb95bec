"""Tests of w2sg_utils.ensembles (Chapter 6): batched teachers and heads equal the
one-at-a-time models, disjoint draws, the runner on both backends (claims C4, C9)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from w2sg_utils import experiments as E
from w2sg_utils.experiments import ensembles as ENS
from w2sg_utils.experiments import learners
from w2sg_utils.experiments.data import load_hh_helpful
from w2sg_utils.experiments.models import PairHead
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
    bk = E.SeedContext(cfg, 0)
    enc = learners.student_model(cfg).encoder()
    ea, eb = bk.embeddings("train_w2s", enc)
    spec = {"stage": "ensemble_students", "seed": 0, "K": 3, "scheme": "disjoint",
            "objective": "bce", "l2": 1e-3}
    from w2sg_utils.experiments.models import sigmoid
    head = train_head(PairHead(ea.shape[1], "linear"), ea, eb, sigmoid(out["teachers"][0][1]),
                      get_objective("bce"), l2=1e-3, epochs=2, lr=1e-2, batch_size=64,
                      seed=spec_seed(spec))
    ta, tb = bk.embeddings("test", enc)
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



def test_interval_table_has_the_level_asked_for():
    """One row per run setting, each term's two-level interval at the level asked for
    (0.8 here, narrower than the default 0.95), as :func:`mean_interval` gives it."""
    from w2sg_utils.intervals import mean_interval

    rng = np.random.default_rng(5)
    tables = {("bce", 0.0): {"misfit": rng.gamma(2.0, 0.1, (3, 30))},
              ("reverse_bce", 1e-3): {"misfit": rng.gamma(2.0, 0.2, (3, 30))}}
    got = ENS.interval_table(tables, ["misfit"], level=0.8)
    assert list(zip(got["objective"], got["l2"])) == list(tables)
    for (_, row), tab in zip(got.iterrows(), tables.values()):
        ref = mean_interval(tab["misfit"], 0.8)
        assert row["misfit_mean"] == pytest.approx(tab["misfit"].mean(), rel=1e-12)
        assert (row["misfit_lo"], row["misfit_hi"]) == pytest.approx((ref.lo, ref.hi), rel=1e-12)
        wide = mean_interval(tab["misfit"])
        assert ref.hi - ref.lo < wide.hi - wide.lo

TINY = {  # per preset: sizes and settings that run in seconds on CPU
    "hh-minilm-cpu": dict(sizes={"train_gt": 40, "train_w2s": 16, "test": 12},
                          teacher={"n_labels": 10}, strong={"epochs": 1}),
    "tiny-gpt2": dict(sizes={"train_gt": 12, "train_w2s": 8, "test": 6},
                      teacher={"n_labels": 6}),
    # embeddings served from the shipped artifact (results/embeddings)
    "hh-minilm-mpnet": dict(sizes={"train_gt": 40, "train_w2s": 16, "test": 12},
                            teacher={"n_labels": 10}, strong={"epochs": 1}),
    "minilm-finetune": dict(sizes={"train_gt": 20, "train_w2s": 8, "test": 6},
                            teacher={"n_labels": 6}, ceiling={"epochs": 1},
                            strong={"max_length": 32, "batch_size": 4,
                                    "micro_batch_size": 4, "num_threads": 1}),
    # needs CUDA: refused here, these sizes only on a GPU
    "hh-minilm-mpnet-finetune": dict(sizes={"train_gt": 20, "train_w2s": 8, "test": 6},
                                     teacher={"n_labels": 6},
                                     strong={"max_length": 32, "batch_size": 4,
                                             "micro_batch_size": 4}),
}


@pytest.mark.parametrize("preset", sorted(E.PRESETS))
def test_chapter6_runner_runs_or_refuses_every_preset(preset, tmp_path, monkeypatch):
    """Chapter 6's runner trains every preset this machine can run through Chapter 5's
    learners (``minilm-finetune``: its students are fine-tuned encoders, its ceiling a
    head on frozen embeddings), and refuses the others before any work, naming the
    preset and its back-end."""
    from w2sg_utils.experiments import context, finetune

    p = E.PRESETS[preset]
    if p.requires_cuda and not torch.cuda.is_available():
        def no_work(*args, **kwargs):
            raise AssertionError("work started before the refusal")

        monkeypatch.setattr(context, "load_hh_helpful", no_work)
        with pytest.raises(ValueError, match=rf"preset: '{preset}' \(back-end "
                                             rf"'{p.backend}'\).*needs CUDA"):
            ENS.run_ensemble(p.config, 0, 2, [("bce", 0.0)], tmp_path)
        assert not any(tmp_path.iterdir())
        return
    assert preset in TINY, f"add tiny settings for the CPU preset {preset!r}"
    loads = []
    real = finetune.load_encoder_reward
    monkeypatch.setattr(finetune, "load_encoder_reward",
                        lambda *a, **k: loads.append(k["seed"]) or real(*a, **k))
    cfg = E.make_config(preset, seeds=[0], objectives=["bce"], **TINY[preset])
    out = ENS.run_ensemble(cfg, 0, 2, [("bce", 0.0)], tmp_path)
    n_w2s, n_test = cfg.sizes.train_w2s, cfg.sizes.test
    assert out["teachers"][0].shape == (2, n_w2s) and out["ceiling"][1].shape == (1, n_test)
    z_w2s, z_test = out["students"][("bce", 0.0)]
    assert z_w2s.shape == (2, n_w2s) and z_test.shape == (2, n_test)
    assert all(np.all(np.isfinite(z)) for z in (z_w2s, z_test, *out["teachers"]))
    # one per student, and the ceiling's when it is the fine-tuned model too
    assert len(loads) == ((2 + (cfg.ceiling is None)) if cfg.backend == "finetune" else 0)
