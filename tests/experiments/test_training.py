"""Tests of w2sg_utils.experiments.training (claim C9): the one minibatch generator and
the loop settings (the loops themselves: test_models.py, test_release_loop.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

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


class _BagReward(torch.nn.Module):
    """The smallest reward model the loops accept: ``r(x) = sum_t w[x_t]`` over the
    unmasked tokens, and ``pair_logits`` = ``r(a) - r(b)`` of rows ``[a..., b...]``."""

    def __init__(self, vocab: int = 16):
        super().__init__()
        self.w = torch.nn.Embedding(vocab, 1)

    def forward(self, ids, mask):
        return (self.w(ids)[..., 0] * mask).sum(dim=1)

    def pair_logits(self, ids, mask):
        r = self(ids, mask)
        return r[: len(r) // 2] - r[len(r) // 2:]


@pytest.mark.parametrize("loop", ["train_reward_model", "train_reward_model_paper"])
def test_loops_fix_the_released_threshold_from_every_training_label(loop):
    """``Quan_CACE_k`` as released: before the first step both reward-model loops fit the
    threshold on *all* the training labels, the ``k``-th decile of ``|y - 1/2|`` over
    the ``n`` labels (``numpy.quantile`` written out here), not over one minibatch.
    The loops hold the labels in float32, so the reference uses them rounded so."""
    from types import SimpleNamespace

    from w2sg_utils.losses import get_objective

    rng = np.random.default_rng(4)
    n, k = 12, 3
    y = rng.uniform(0.0, 1.0, n)
    ids = [rng.integers(1, 16, 3).tolist() for _ in range(2 * n)]
    obj = get_objective(f"Quan_CACE_{k}")
    getattr(T, loop)(_BagReward(), SimpleNamespace(pad_token_id=0), ["a"] * n, ["b"] * n,
                     y, obj, lr=1e-2, batch_size=4, micro_batch_size=2, epochs=1,
                     max_length=8, seed=0, max_steps=1, progress=False,
                     pretokenized=(ids[:n], ids[n:]))
    conf = np.abs(y.astype(np.float32).astype(np.float64) - 0.5)
    assert obj.threshold == pytest.approx(np.quantile(conf, k / 10), rel=1e-12)
