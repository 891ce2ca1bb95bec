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
