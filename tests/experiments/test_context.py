"""Tests of the runs of one seed (w2sg_utils.experiments.context) (claim C9)."""

from __future__ import annotations

import numpy as np
import pytest

from w2sg_utils import experiments as E

pytestmark = pytest.mark.usefixtures("isolated_w2sg_cache")


def test_teacher_draws_always_hold_both_classes():
    """Few teacher labels: a single-class draw is redrawn; two-class draws are unchanged."""
    cfg = E.make_config(sizes={"train_gt": 20, "train_w2s": 20, "test": 20}, seeds=[0],
                        objectives=["bce"], teacher={"n_labels": 4}, l2_grid=[],
                        ensemble_size=2)
    for seed in range(40):
        bk = E.SeedContext(cfg, seed)
        labels = bk.data["train_gt"].label
        for member in range(4):
            idx = bk.teacher_indices(member)
            assert len(idx) == 4 and set(labels[idx]) == {0, 1}
            # the plain draw (no rejection) whenever it already holds both classes
            rng = np.random.default_rng([seed, 1000 + member])
            plain = (np.sort(rng.choice(20, size=4, replace=False)) if member == 0
                     else rng.choice(20, size=4, replace=True))
            if len(set(labels[plain])) == 2:
                np.testing.assert_array_equal(idx, plain)


def test_embeddings_are_kept_apart_per_encoder():
    """A truncated encoder (a weak teacher's) never gets the strong encoder's vectors."""
    from w2sg_utils.experiments.context import EncoderSpec

    cfg = E.make_config(sizes={"train_gt": 4, "train_w2s": 2, "test": 2}, seeds=[0],
                        objectives=["bce"], teacher={"n_labels": 2}, l2_grid=[],
                        ensemble_size=0)
    ctx = E.SeedContext(cfg, 0)
    full = EncoderSpec(max_length=32)
    weak = EncoderSpec(max_length=32, num_layers=1)
    a_full, b_full = ctx.embeddings("test", full)
    a_weak, _ = ctx.embeddings("test", weak)
    assert a_full.shape == a_weak.shape == (2, a_full.shape[1])
    assert np.abs(a_full - a_weak).max() > 1e-2  # other encoders, other vectors
    np.testing.assert_array_equal(ctx.embeddings("test", full)[1], b_full)  # cached
