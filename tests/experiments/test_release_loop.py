"""The released student loop, exactly: a few optimiser steps on a tiny GPT-2 (issue 12).

:func:`w2sg_utils.training.train_reward_model` with the released protocol
(``order="release"``, ``lr_schedule="cosine"``, ``dropout=False``, float32, the head of
:func:`w2sg_utils.models.load_causal_lm_reward` with ``nn.Linear``'s default
initialisation) must give the parameters that the release's loop gives, written out
below from ``Gengze/W2SG-Bregman``: ``weak_to_strong/train.py``, ``train_reward_model``
(``model.eval()`` when ``train_with_dropout=False``; Adam; ``CosineAnnealingLR`` over
``nsteps = len(ds) * epochs // batch_size`` stepped after every update; the examples of
``itertools.repeat(ds, epochs)`` in minibatches of ``minibatch_size``, each loss divided
by the number of minibatches), ``weak_to_strong/model.py``,
``TransformerWithSingleHead`` (``nn.Linear(hidden, 1, bias=False)`` with its default
initialisation; reward at position ``(ids != 0).sum() - 1`` of right-padded ids) and
``train_w2s.py``, ``main`` (``train_ds.shuffle(seed)``, i.e. ``numpy.random
.default_rng(seed).permutation``). The tiny GPT-2 has dropout 0.1, so training in
``train()`` mode would differ; the planted variants below show the test sees each piece.

Both loops run the same float32-initialised weights in float64: the release trains in
float32, but there Adam turns rounding noise into full-size steps for parameters whose
gradient is exactly zero in exact arithmetic (the final layer norm's bias cancels in
``r(a) - r(b)``; attention key biases cancel in the softmax), so a float32 comparison
could only use a loose tolerance. In float64 the noise stays far below Adam's ``eps``.
"""

from __future__ import annotations

import itertools
import os

import numpy as np
import pytest
import torch

from tests.experiments.test_release_protocol import rel_aux, rel_bce, rel_reverse_bce
from w2sg_utils.experiments import models as M
from w2sg_utils.experiments import training as T
from w2sg_utils.experiments.data import load_hh_helpful
from w2sg_utils.losses import release_objective

os.environ.setdefault("HF_HUB_OFFLINE", "1")

N, BATCH, EPOCHS, LR, MAXLEN, SEED = 10, 4, 2, 1e-3, 48, 3


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    path = M.build_tiny_gpt2(tmp_path_factory.mktemp("tiny") / "gpt2-dropout", dropout=0.1)
    ds = load_hh_helpful({"train_gt": 20, "train_w2s": N, "test": 4}, seed=1)["train_w2s"]
    y = np.random.default_rng(0).uniform(0.1, 0.9, N)
    return path, ds, y


def release_loop(path, ids_a, ids_b, y, loss_fn, *, lr, batch_size, epochs, seed,
                 minibatch=1):
    """The released loop (see the module docstring), ``a`` as its "chosen" text."""
    from transformers import AutoModel

    body = AutoModel.from_pretrained(path).double()
    torch.manual_seed(seed)
    head = torch.nn.Linear(body.config.hidden_size, 1, bias=False).double()  # default init

    def reward(ids):  # TransformerWithSingleHead.forward
        lens = (ids != 0).sum(dim=-1)
        hidden = body(ids)[0]
        h = torch.stack([hidden[i, lens[i] - 1, :] for i in range(len(lens))])
        return head(h)

    body.eval()
    head.eval()  # train_with_dropout=False
    n = len(y)
    nsteps = n * epochs // batch_size
    opt = torch.optim.Adam(list(body.parameters()) + list(head.parameters()), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, nsteps)
    order = np.random.default_rng(seed).permutation(n).tolist()
    it = itertools.chain.from_iterable(itertools.repeat(order, epochs))
    lrs = []
    for step in range(nsteps):
        for _ in range(batch_size // minibatch):
            mb = [next(it) for _ in range(minibatch)]
            pad = torch.nn.utils.rnn.pad_sequence
            ia = pad([torch.tensor(ids_a[i]) for i in mb]).transpose(0, 1)
            ib = pad([torch.tensor(ids_b[i]) for i in mb]).transpose(0, 1)
            z = reward(ia) - reward(ib)
            labels = torch.tensor([y[i] for i in mb], dtype=torch.float32).unsqueeze(1).double()
            loss = loss_fn(z, labels, step / nsteps) / (batch_size // minibatch)
            loss.backward()
        lrs.append(sched.get_last_lr()[0])
        opt.step()
        opt.zero_grad()
        sched.step()
    return {"body": body, "head": head}, lrs


def ours(path, ds, y, objective, **override):
    opts = {"order": "release", "lr_schedule": "cosine", "dropout": False}
    head_init = override.pop("head_init", "default")
    opts.update(override)
    model, tok = M.load_causal_lm_reward(str(path), seed=SEED, head_init=head_init)
    model.double()
    stats = T.train_reward_model(model, tok, ds.text_a, ds.text_b, y, objective, lr=LR,
                                 batch_size=BATCH, micro_batch_size=3, epochs=EPOCHS,
                                 max_length=MAXLEN, seed=SEED, progress=False, **opts)
    return model, tok, stats


def _max_diff(model, ref):
    d = [(p - q).abs().max().item() for p, q in
         zip(model.body.parameters(), ref["body"].parameters())]
    d.append((model.head.weight - ref["head"].weight).abs().max().item())
    return max(d)


TOL = 1e-9  # float64 rounding (padding side, microbatch sums); the updates are ~1e-3


@pytest.mark.parametrize("name, ref_loss", [
    ("bce", lambda z, t, f: rel_bce(z, t)),
    ("reverse_bce", lambda z, t, f: rel_reverse_bce(z, t)),
    ("aux", lambda z, t, f: rel_aux(z, t, f)),  # step_frac = step / nsteps
])
def test_release_loop_parameters(setup, name, ref_loss):
    path, ds, y = setup
    model, tok, stats = ours(path, ds, y, release_objective(name))
    ids_a, ids_b = T.tokenize_pairs(tok, ds.text_a, ds.text_b, MAXLEN)
    assert all(0 not in ids for ids in ids_a + ids_b)  # the release's read-out is valid here
    ref, lrs = release_loop(path, ids_a, ids_b, y, ref_loss, lr=LR,
                            batch_size=BATCH, epochs=EPOCHS, seed=SEED)
    assert stats["steps"] == len(lrs) == N * EPOCHS // BATCH
    assert stats["lr"] == lrs  # the learning rate of every step, exactly
    moved = max((p - q).abs().max().item() for p, q in
                zip(model.body.parameters(), M.load_causal_lm_reward(str(path))[0].body.parameters()))
    assert moved > 1e-3  # training moved the parameters far beyond the tolerance
    assert _max_diff(model, ref) < TOL


@pytest.mark.parametrize("planted", [{"dropout": True}, {"order": "reshuffle"},
                                     {"lr_schedule": "constant"}, {"head_init": "normal"}])
def test_each_protocol_piece_is_seen(setup, planted):
    """Any one piece of the protocol changed moves the parameters far beyond ``TOL``."""
    path, ds, y = setup
    model, tok, _ = ours(path, ds, y, release_objective("bce"), **planted)
    ids_a, ids_b = T.tokenize_pairs(tok, ds.text_a, ds.text_b, MAXLEN)
    ref, _ = release_loop(path, ids_a, ids_b, y, lambda z, t, f: rel_bce(z, t), lr=LR,
                          batch_size=BATCH,
                          epochs=EPOCHS, seed=SEED)
    assert _max_diff(model, ref) > 100 * TOL


def test_release_order_spans_epochs():
    """``order="release"``: one permutation, repeated, cut into full minibatches."""
    got = [b.tolist() for b in T.minibatches(10, 4, 2, 7, "release")]
    perm = np.random.default_rng(7).permutation(10).tolist()
    assert got == [(perm * 2)[4 * s: 4 * s + 4] for s in range(5)]
    with pytest.raises(ValueError, match="order"):
        T.Loop(order="sorted", batch_size=4, epochs=1)
    with pytest.raises(ValueError, match="lr_schedule"):
        T.Loop(order="release", lr_schedule="linear", batch_size=4, epochs=1)
    with pytest.raises(ValueError, match="dropout"):
        T.Loop(dropout=1)
    with pytest.raises(ValueError, match="batch_size"):
        T.Loop(order="release", lr_schedule="cosine", dropout=False, batch_size=4,
               epochs=1).check_pairs(3)


def test_gpt2_preset_is_the_released_protocol(monkeypatch, capsys):
    """``gpt2-hh`` trains as released, builds its objectives with ``release_objective``,
    and ``w2sg presets`` names each remaining difference (issue 12)."""
    from w2sg_utils import experiments as E
    from w2sg_utils.experiments import cli
    from w2sg_utils.experiments.presets import RELEASE_DIFFERENCES

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    cfg = E.make_config("gpt2-hh")
    for m, epochs in ((cfg.teacher, 1), (cfg.strong, 2)):
        assert (m.dropout, m.order, m.lr_schedule, m.head_init, m.bf16, m.epochs) == (
            False, "release", "cosine", "default", False, epochs)
        assert (m.lr, m.batch_size, m.max_length) == (1e-5, 32, 1024)
    for name in cfg.objectives:
        ours, released = cfg.objective(name), release_objective(name)
        assert type(ours) is type(released) and vars(ours).keys() == vars(released).keys()
        assert all(str(vars(ours)[k]) == str(vars(released)[k]) for k in vars(ours)
                   if not k.startswith("_"))
    with pytest.raises(ValueError, match="not an objective of the released code"):
        E.make_config("gpt2-hh", objectives=["bce", "window"])
    assert cli.main(["presets"]) == 0
    out = capsys.readouterr().out
    assert out.count("differs from the release") == len(RELEASE_DIFFERENCES["gpt2-hh"]) >= 4
    assert "(ids != 0).sum() - 1" in out
