"""Tests of w2sg_utils.experiments.learners (claim C9; Chapters 5 and 6): which model is
the student and which the ceiling, teachers one at a time and K at a time, refusals."""

from __future__ import annotations

import numpy as np
import pytest

from w2sg_utils import experiments as E
from w2sg_utils.experiments import learners as L
from w2sg_utils.experiments.context import EncoderSpec

pytestmark = pytest.mark.usefixtures("isolated_w2sg_cache")

SIZES = {"train_gt": 60, "train_w2s": 20, "test": 16}


def test_student_and_ceiling_models_follow_the_configuration():
    cpu = E.make_config(sizes=SIZES, teacher={"n_labels": 20})
    assert L.student_model(cpu) == L.ceiling_model(cpu) == L.StrongModel("embedding",
                                                                          cpu.strong)
    assert L.student_model(cpu).encoder() == EncoderSpec(cpu.strong.encoder, 256)
    ft = E.make_config("minilm-finetune", sizes=SIZES, teacher={"n_labels": 20})
    assert L.student_model(ft) == L.StrongModel("finetune", ft.strong)
    assert L.ceiling_model(ft) == L.StrongModel("embedding", ft.ceiling)
    enc = L.teacher_encoder(E.make_config(sizes=SIZES, teacher={
        "n_labels": 20, "kind": "encoder", "num_layers": 2}))
    assert enc == EncoderSpec(cpu.strong.encoder, 256, 2)


def test_batched_teachers_equal_one_teacher_at_a_time():
    """``fit_teachers`` (TF-IDF counts shared) gives each member's ``fit_teacher``."""
    cfg = E.make_config(sizes=SIZES, teacher={"n_labels": 20})
    ctx = E.SeedContext(cfg, 4)
    draws = np.stack([ctx.teacher_indices(k) for k in (1, 2, 3)])
    many = L.fit_teachers(ctx, draws, [11, 12, 13])
    for k, rows in enumerate(draws):
        one = L.fit_teacher(ctx, rows, 11 + k)
        for split in ("train_w2s", "test"):
            np.testing.assert_allclose(many[split][k], one[split], rtol=1e-6, atol=1e-8)


def test_unknown_back_end_is_refused_before_work():
    cfg = E.make_config(sizes=SIZES, teacher={"n_labels": 20})
    ctx = E.SeedContext(cfg, 0)
    with pytest.raises(ValueError, match="backend: no learner for back-end 'nope' "
                                         r"\(preset 'hh-minilm-cpu'\)"):
        L.fit_strong(ctx, L.StrongModel("nope", cfg.strong), np.full(20, 0.5), "bce", 0.0, 0)


def test_strong_jobs_trained_together_each_keep_their_objective_and_l2():
    """``fit_strong_jobs`` on linear heads (one weight matrix, Chapter 5's sweep) gives
    each job what :func:`~w2sg_utils.experiments.training.train_head` gives it alone:
    its own targets, objective, L2 strength and seed. The embeddings are random (a stub
    context), so nothing is encoded; the tolerance is that of float32 training in a
    different summation order (tests/experiments/test_batched.py), about 1e-4 here,
    while an L2 of 0.05 instead of 0 moves these logits by about 0.07 (measured)."""
    from types import SimpleNamespace

    from w2sg_utils.experiments.models import PairHead
    from w2sg_utils.experiments.training import head_logits, train_head

    cfg = E.make_config(sizes=SIZES, teacher={"n_labels": 20}, strong={"epochs": 10})
    rng = np.random.default_rng(8)
    emb = {s: tuple(rng.normal(size=(n, 6)).astype(np.float32) for _ in range(2))
           for s, n in (("train_w2s", 40), ("test", 16))}
    ctx = SimpleNamespace(cfg=cfg, embeddings=lambda split, enc: emb[split])
    jobs = [L.StrongJob(rng.uniform(0.05, 0.95, 40), obj, l2, seed) for obj, l2, seed in
            (("bce", 0.0, 1), ("bce", 0.05, 2), ("reverse_bce", 0.05, 3),
             ("Quan_CACE_5", 0.02, 4))]
    model = L.student_model(cfg)
    out = L.fit_strong_jobs(ctx, model, jobs)
    s = cfg.strong
    for job, got in zip(jobs, out):
        head = train_head(PairHead(6, "linear"), *emb["train_w2s"], job.targets,
                          cfg.objective(job.objective), l2=job.l2, epochs=s.epochs,
                          lr=s.lr, batch_size=s.batch_size, seed=job.seed)
        np.testing.assert_allclose(got["test"], head_logits(head, *emb["test"]),
                                   rtol=1e-4, atol=1e-5)
    # one job alone is the same arithmetic as in the batch
    alone = L.fit_strong(ctx, model, jobs[1].targets, "bce", 0.05, 2)
    np.testing.assert_array_equal(alone["test"], out[1]["test"])
