"""The released protocol, exactly (issue 12; claims C7-C9, Chapters 4 and 5).

Each objective configured as released (:func:`w2sg_utils.losses.release_objective`) is
compared, on random inputs, with the released formula written out here from the
authors' code (``Gengze/W2SG-Bregman``, ``weak_to_strong/loss.py``; threshold of
``Quan_CACE`` in ``train_w2s.py``, ``main``), and the OpenAI / EleutherAI auxiliary
confidence losses with theirs. The references below are written for these tests (the
release is not vendored); each docstring names the file and function it follows.

The released reward loop feeds every objective ``(m, 1)`` tensors (``logits =
logits_chosen - logits_rejected``, ``labels.unsqueeze(1)``) for each minibatch of ``m``
pairs (``minibatch_size_per_device``, 1 in the released command) and divides each
minibatch's loss by the number of minibatches (``weak_to_strong/train.py``,
``train_reward_model``). So a batch loss is the mean over minibatches of the
objective on each minibatch, which :func:`_release_batch` writes out.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from w2sg_utils.losses import get_objective, release_objective

F32 = torch.float32


# ------------------------------------------------------------------ the release's formulas

def rel_bce(z, y):
    """``weak_to_strong/loss.py``, ``bce_loss``: BCE of ``sigmoid(logits)`` against labels."""
    return F.binary_cross_entropy(torch.sigmoid(z), y)


def rel_bce_raw(z, y):
    """``bce_loss(..., raw_loss_tensor=True)``: the same, ``reduction='none'``."""
    return F.binary_cross_entropy(torch.sigmoid(z), y, reduction="none")


def _rel_smooth(y, eps):
    """The released label smoothing ``labels * (1 - epsilon) + epsilon / 2``."""
    return y * (1 - eps) + eps / 2


def rel_reverse_bce(z, y, eps=0.0):
    """``reverse_bce_loss``: BCE with the arguments swapped (input = smoothed labels,
    target = ``sigmoid(logits)``)."""
    return F.binary_cross_entropy(_rel_smooth(y, eps), torch.sigmoid(z))


def rel_reverse_bce_raw(z, y, eps=0.0):
    """``reverse_bce_loss(..., raw_loss_tensor=True)``."""
    return F.binary_cross_entropy(_rel_smooth(y, eps), torch.sigmoid(z), reduction="none")


def rel_kl(z, y):
    """``kl_loss``: ``F.kl_div(log_softmax([0, z]), [1 - y, y])`` with torch's default
    ``reduction='mean'``, i.e. the mean over the ``(m, 2)`` entries."""
    logits2 = torch.cat((torch.zeros_like(z), z), dim=1)
    labels2 = torch.cat((1 - y, y), dim=1)
    with warnings.catch_warnings():  # torch warns that 'mean' is not 'batchmean'
        warnings.simplefilter("ignore", UserWarning)
        return F.kl_div(F.log_softmax(logits2, dim=1), labels2, reduction="mean")


def rel_reverse_kl(z, y, eps=0.0):
    """``reverse_kl_loss``: ``F.kl_div(log([1 - y_eps, y_eps]), softmax([0, z]))``,
    ``reduction='mean'`` over the ``(m, 2)`` entries."""
    logits2 = torch.cat((torch.zeros_like(z), z), dim=1)
    ye = _rel_smooth(y, eps)
    labels2 = torch.cat((1 - ye, ye), dim=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return F.kl_div(torch.log(labels2), torch.softmax(logits2, dim=1), reduction="mean")


def rel_cace(z, y, c, eps=0.0):
    """``CACE_loss``: per pair, BCE where ``|y - 0.5| >= c``, else reverse BCE; mean."""
    confident = (y - 0.5).abs() >= c
    return torch.where(confident, rel_bce_raw(z, y), rel_reverse_bce_raw(z, y, eps)).mean()


def rel_quan_threshold(all_labels, k):
    """``train_w2s.py``, ``main``: the ``Quan_CACE_<k>`` threshold, fixed once before
    training as ``np.quantile(|soft_label - 0.5|, np.linspace(0, 1, 11))[k]`` over the
    whole weak-label training set."""
    conf = np.abs(np.array(all_labels) - 0.5)
    return np.quantile(conf, np.linspace(0, 1, 10 + 1))[k]


def rel_sl(z, y, a, b, eps=0.0):
    """``SL_loss``: ``alpha * bce_loss + beta * reverse_bce_loss``."""
    return a * rel_bce(z, y) + b * rel_reverse_bce(z, y, eps)


def rel_aux(z, y, step_frac, aux_coef=0.5, warmup_frac=0.2):
    """``aux_conf_loss``: ``s = sigmoid(logits)``, weight ``min(1, step_frac /
    warmup_frac) * aux_coef``, threshold ``quantile(s, 1 - mean(labels))`` over the
    call's minibatch, hard label ``s >= threshold``, BCE of ``s`` against the mixture."""
    coef = min(1.0, step_frac / warmup_frac) * aux_coef
    s = torch.sigmoid(z)
    thr = torch.quantile(s, 1 - torch.mean(y))
    hard = (s >= thr).float()
    target = y * (1 - coef) + hard.detach() * coef
    return F.binary_cross_entropy(s, target, reduction="none").mean()


def openai_logconf(logits2, labels2, step_frac, aux_coef=0.5, warmup_frac=0.1):
    """``openai/weak-to-strong``, ``weak_to_strong/loss.py``, ``logconf_loss_fn``: the
    class-0 threshold is ``quantile(p_0, mean(labels)[1])``, hard class 0 where
    ``p_0 >= threshold``; weight ``aux_coef * (1 if step_frac > warmup_frac else
    step_frac)``; cross-entropy against the mixture."""
    coef = (1.0 if step_frac > warmup_frac else step_frac) * aux_coef
    p = torch.softmax(logits2.float(), dim=-1)
    mean_weak = labels2.float().mean(dim=0)
    thr = torch.quantile(p[:, 0], mean_weak[1])
    hard = torch.cat([(p[:, 0] >= thr)[:, None], (p[:, 0] < thr)[:, None]], dim=1)
    target = labels2 * (1 - coef) + hard.detach() * coef
    return F.cross_entropy(logits2, target, reduction="none").mean()


def eleuther_logconf_hard(logits2, y1):
    """``EleutherAI/w2s``, ``w2s/loss.py``, ``log_confidence_loss`` with a fresh buffer at
    least as long as the batch: the hardened targets (class 0 where ``p_0 >=
    quantile(p_0, mean(y_1))``)."""
    p = torch.softmax(logits2.float(), dim=-1)
    prior = y1.mean() if y1.shape[0] > 1 else 0.5
    thr = torch.quantile(p[:, 0].detach(), prior)
    return torch.cat([(p[:, 0] >= thr)[:, None], (p[:, 0] < thr)[:, None]], dim=1).float()


def _release_batch(fn, z, y, minibatch, **kw):
    """The released loop's batch loss: ``fn`` on each minibatch of ``(m, 1)`` tensors,
    each divided by the number of minibatches, summed (``train_reward_model``)."""
    n = len(z)
    parts = [fn(z[s:s + minibatch, None], y[s:s + minibatch, None], **kw) / (n // minibatch)
             for s in range(0, n, minibatch)]
    return torch.stack(parts).sum()


# ------------------------------------------------------------------------------ inputs

def _inputs(seed, n=24, soft=True):
    g = torch.Generator().manual_seed(seed)
    z = (3 * torch.randn(n, generator=g)).to(F32)
    if soft:  # teacher probabilities sigmoid(z_w), float32 as the release stores them
        y = torch.sigmoid(2 * torch.randn(n, generator=g)).to(F32)
    else:
        y = (torch.rand(n, generator=g) < 0.5).to(F32)
    return z, y


SEEDS = [0, 1, 2]
TOL = {"rtol": 2e-6, "atol": 1e-7}  # float32 rounding of sums of 24 terms


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("minibatch", [1, 4])
def test_mean_objectives_match_release(seed, minibatch):
    """bce, reverse_bce, kl, reverse_kl, CACE_c, SL: values and gradients equal the
    released formulas (``weak_to_strong/loss.py``), with the released ``epsilon = 0``
    and the released minibatching."""
    z, y = _inputs(seed)
    cases = [
        ("bce", rel_bce, {}),
        ("reverse_bce", rel_reverse_bce, {}),
        ("kl", rel_kl, {}),
        ("reverse_kl", rel_reverse_kl, {}),
        ("CACE_0.1", rel_cace, {"c": 0.1}),
        ("CACE_0.3", rel_cace, {"c": 0.3}),
        ("SL_a1_b0.1", rel_sl, {"a": 1.0, "b": 0.1}),
    ]
    for name, ref, kw in cases:
        obj = release_objective(name)
        zo, zr = z.clone().requires_grad_(), z.clone().requires_grad_()
        ours = obj(zo, y, progress=0.3)
        theirs = _release_batch(ref, zr, y, minibatch, **kw)
        torch.testing.assert_close(ours, theirs, **TOL, msg=name)
        ours.backward()
        theirs.backward()
        torch.testing.assert_close(zo.grad, zr.grad, **TOL, msg=f"{name} gradient")


@pytest.mark.parametrize("seed", SEEDS)
def test_release_kl_is_half_the_per_pair_divergence(seed):
    """The released ``F.kl_div`` mean over ``(m, 2)`` entries halves the per-pair KL; the
    book's default ``kl`` sums the classes. A planted factor (``class_mean`` dropped)
    would fail the test above; this pins the factor itself."""
    z, y = _inputs(seed)
    for name in ("kl", "reverse_kl"):
        full = get_objective(name, **({"eps": 0.0} if name == "reverse_kl" else {}))(z, y)
        torch.testing.assert_close(release_objective(name)(z, y), full / 2, **TOL)


@pytest.mark.parametrize("eps", [1e-3, 0.05])
def test_release_smoothing_option(eps):
    """With ``epsilon > 0`` (a released command-line option) the reverse terms smooth
    as released: ``labels * (1 - epsilon) + epsilon / 2``."""
    z, y = _inputs(5, soft=False)
    for name, ref, kw in [("reverse_bce", rel_reverse_bce, {}),
                          ("reverse_kl", rel_reverse_kl, {}),
                          ("CACE_0.2", rel_cace, {"c": 0.2}),
                          ("SL_a1_b0.5", rel_sl, {"a": 1.0, "b": 0.5})]:
        ours = release_objective(name, eps=eps)(z, y)
        theirs = _release_batch(ref, z, y, 1, eps=eps, **kw)
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("k", [0, 3, 5, 9, 10])
def test_quan_cace_threshold_is_the_global_decile(seed, k):
    """``Quan_CACE_k``: the threshold is fixed once, before training, from the whole
    weak-label training set (``train_w2s.py``, ``main``), then ``CACE_loss`` with it on
    every minibatch. ``fit`` takes the training labels; batches do not move it."""
    g = torch.Generator().manual_seed(100 + seed)
    all_y = torch.sigmoid(2 * torch.randn(301, generator=g)).to(F32)
    c = rel_quan_threshold(all_y.tolist(), k)
    obj = release_objective(f"Quan_CACE_{k}")
    obj.fit(all_y)
    assert obj.threshold == c  # exactly the released float64 value
    for b in range(3):
        z, y = _inputs(10 * seed + b)
        theirs = _release_batch(rel_cace, z, y, 1, c=c)
        torch.testing.assert_close(obj(z, y, progress=b / 3), theirs, **TOL)
    assert obj.threshold == c


def test_quan_cace_threshold_ties_like_the_release():
    """Where the decile falls exactly on a label (an integer position), the released
    float32 comparison ``|y - 0.5| >= c`` keeps that pair on forward CE."""
    all_y = torch.tensor([0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.55, 0.65, 0.75, 0.85, 0.99], dtype=F32)
    for k in range(11):
        c = rel_quan_threshold(all_y.tolist(), k)
        obj = release_objective(f"Quan_CACE_{k}")
        obj.fit(all_y)
        z = torch.linspace(-2, 2, len(all_y), dtype=F32)
        torch.testing.assert_close(obj(z, all_y), _release_batch(rel_cace, z, all_y, 1, c=c), **TOL)


def test_quan_cace_needs_fit_and_batch_variant_is_separate():
    """Without ``fit`` the released threshold is unknown: a clear error. The per-batch
    quantile (the book's variant) is the separately named option ``scope='batch'``."""
    z, y = _inputs(0)
    with pytest.raises(ValueError, match="fit"):
        release_objective("Quan_CACE_5")(z, y)
    with pytest.raises(ValueError, match="fit"):
        get_objective("Quan_CACE_5")(z, y)
    batch = get_objective("Quan_CACE_5", scope="batch")
    conf = (y.double() - 0.5).abs()
    c = float(torch.quantile(conf, 0.5))
    torch.testing.assert_close(batch(z.double(), y.double()),
                               get_objective("CACE", c=c)(z.double(), y.double()))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("progress", [0.0, 0.05, 0.5])
def test_aux_matches_release_minibatch_of_one(seed, progress):
    """``aux`` as released (``aux_conf_loss``) runs on each minibatch of one pair of the
    released command: the quantile of one value is that value, so every hard label is
    1. ``group_size=1`` reproduces it on a whole batch."""
    z, y = _inputs(seed)
    obj = release_objective("aux")
    ours = obj(z, y, progress=progress)
    theirs = _release_batch(rel_aux, z, y, 1, step_frac=progress)
    torch.testing.assert_close(ours, theirs, **TOL)
    w = 0.5 * min(1.0, progress / 0.2)
    target = y * (1 - w) + w  # every hard label is 1
    torch.testing.assert_close(ours, F.binary_cross_entropy(torch.sigmoid(z), target), **TOL)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("group", [4, 8])
def test_aux_matches_release_larger_minibatches(seed, group):
    """``aux`` with ``group_size=m``: the released quantile over each minibatch of ``m``."""
    z, y = _inputs(seed)
    ours = release_objective("aux", group_size=group)(z, y, progress=0.7)
    theirs = _release_batch(rel_aux, z, y, group, step_frac=0.7)
    torch.testing.assert_close(ours, theirs, **TOL)


def _tie_batches():
    """Batches where the quantile falls exactly on an example (issue 12): labels all
    0.5 with an odd batch size, all 0, all 1; plus random soft labels."""
    out = []
    for seed in range(4):
        g = torch.Generator().manual_seed(seed)
        z = (2 * torch.randn(3, generator=g)).to(F32)
        for y in (torch.full((3,), 0.5), torch.zeros(3), torch.ones(3),
                  torch.rand(3, generator=g)):
            out.append((z, y.to(F32)))
    return out


@pytest.mark.parametrize("progress", [0.05, 0.5])
def test_logconf_matches_openai_including_ties(progress):
    """``logconf`` equals OpenAI's ``logconf_loss_fn`` exactly, also where the class-0
    quantile falls on an example (the book used ``1 - p_1``, off by a rounding step)."""
    for z, y in _tie_batches():
        z2, y2 = torch.stack([torch.zeros_like(z), z], 1), torch.stack([1 - y, y], 1)
        theirs = openai_logconf(z2, y2, progress)
        torch.testing.assert_close(get_objective("logconf")(z, y, progress=progress), theirs,
                                   rtol=0, atol=1e-6)
        torch.testing.assert_close(get_objective("logconf")(z2, y2, progress=progress), theirs,
                                   rtol=0, atol=1e-6)


def test_logconf_hardening_matches_eleuther():
    """The hardened targets of ``logconf`` equal EleutherAI's (fresh buffer)."""
    obj = get_objective("logconf", reduction="none")
    for z, y in _tie_batches():
        z2 = torch.stack([torch.zeros_like(z), z], 1)
        hard = eleuther_logconf_hard(z2, y)
        # at progress 1 the weight is aux_coef = 0.5: target = (y2 + hard) / 2
        y2 = torch.stack([1 - y, y], 1)
        expect = F.cross_entropy(z2, 0.5 * y2 + 0.5 * hard, reduction="none")
        torch.testing.assert_close(obj(z, y, progress=1.0), expect, rtol=0, atol=1e-6)


def test_release_objective_refuses_objectives_not_released():
    """Objectives the release does not train reward models with raise a clear error."""
    for name in ("product", "entropy", "window", "logconf"):
        with pytest.raises(ValueError, match="release"):
            release_objective(name)
    with pytest.raises(ValueError, match="eps"):
        release_objective("reverse_bce", eps=1.5)


@pytest.mark.parametrize("coef, warm", [(0.3, 0.1), (0.25, 0.5)])
def test_released_logconf_name_sets_coefficient_and_warm_up(coef, warm):
    """The released name ``logconf_c<aux_coef>_w<warmup_frac>`` (``train_w2s.py``) is
    ``aux_conf_loss`` with that coefficient and warm-up: checked on both sides of the
    warm-up, where a coefficient and warm-up read the wrong way round differ."""
    z, y = _inputs(3)
    obj = release_objective(f"logconf_c{coef}_w{warm}")
    assert (obj.aux_coef, obj.warmup_frac) == (coef, warm)
    for progress in (0.05, 0.3, 0.9):
        theirs = _release_batch(rel_aux, z, y, 1, step_frac=progress, aux_coef=coef,
                                warmup_frac=warm)
        torch.testing.assert_close(obj(z, y, progress=progress), theirs, **TOL)
