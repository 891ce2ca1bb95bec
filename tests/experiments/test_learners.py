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
