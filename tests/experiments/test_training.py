"""Tests of w2sg_utils.experiments.training (claim C9): the one minibatch generator and
the loop settings (the loops themselves: test_models.py, test_release_loop.py)."""

from __future__ import annotations

import numpy as np
import pytest

from w2sg_utils.experiments import training as T


@pytest.mark.parametrize("n, batch_size, epochs", [(10, 4, 3), (9, 3, 2), (5, 8, 1)])
def test_reshuffle_order_covers_every_example_once_per_epoch(n, batch_size, epochs):
    batches = list(T.minibatches(n, batch_size, epochs, seed=3))
    per_epoch = -(-n // batch_size)
    assert len(batches) == epochs * per_epoch
    for e in range(epochs):
        seen = np.concatenate(batches[e * per_epoch:(e + 1) * per_epoch])
        assert sorted(seen.tolist()) == list(range(n))
    # a fresh permutation every epoch, from the seed alone
    again = list(T.minibatches(n, batch_size, epochs, seed=3))
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))
    rng = np.random.default_rng([3, 4242])
    assert np.array_equal(np.concatenate(batches[:per_epoch]), rng.permutation(n))


def test_heads_stream_and_blocks_of_one_skipped():
    """The heads' stream (77) skips a last block of one example (batch-quantile
    objectives need two), exactly the blocks of ``n // batch_size`` full batches."""
    got = list(T.minibatches(9, 4, 2, seed=5, stream=T.HEAD_STREAM, min_size=2))
    rng = np.random.default_rng([5, 77])
    want = []
    for _ in range(2):
        p = rng.permutation(9)
        want += [p[0:4], p[4:8]]  # p[8:9] has one example
    assert len(got) == len(want) and all(np.array_equal(a, b) for a, b in zip(got, want))
    # with a single example there is nothing to skip
    assert [b.tolist() for b in T.minibatches(1, 4, 2, seed=0, min_size=2)] == [[0], [0]]


def test_loop_defaults_and_checks():
    loop = T.Loop()
    assert (loop.lr, loop.batch_size, loop.micro_batch_size, loop.epochs) == (1e-5, 32, 8, 2)
    assert (loop.order, loop.lr_schedule, loop.dropout, loop.bf16) == (
        "reshuffle", "constant", True, False)
    for bad, match in ((dict(lr=0.0), "lr"), (dict(batch_size=0), "batch_size"),
                       (dict(micro_batch_size=0), "micro_batch_size"),
                       (dict(bf16=True), "bf16")):
        with pytest.raises(ValueError, match=match):
            T.Loop(**bad)
    with pytest.raises(ValueError, match="loop: give a Loop or its fields"):
        T.train_reward_model(None, None, [], [], [], None, T.Loop(), lr=1e-3)
