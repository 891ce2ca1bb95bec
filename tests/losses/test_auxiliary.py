"""Tests of w2sg_utils.losses.auxiliary (claims C7-C9, Chapter 4): the auxiliary-target objectives (aux, logconf, product, entropy, window)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from w2sg_utils.losses import (
    OBJECTIVE_NAMES,
    forward_ce_grad,
    get_objective,
)

from .plain import (
    DT,
    check_against_reference,
    names_in_module,
    random_inputs,
    ref_ce,
    ref_product,
    ref_quantile,
)


@pytest.mark.parametrize("name", names_in_module("auxiliary"))
@pytest.mark.parametrize("K", [None, 2, 3, 5])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_objective_equals_plain_reference(name, K, seed):
    check_against_reference(name, K, seed)


def test_every_registered_objective_is_tested_against_a_reference():
    assert sorted(names_in_module("objectives") + names_in_module("auxiliary")) == sorted(
        OBJECTIVE_NAMES)


def test_aux_weight_schedule():
    aux = get_objective("aux")
    assert aux.weight(0.0) == 0.0 and aux.weight(0.1) == pytest.approx(0.25)
    assert aux.weight(0.2) == 0.5 and aux.weight(1.0) == 0.5
    lc = get_objective("logconf")
    assert lc.weight(0.05) == pytest.approx(0.025) and lc.weight(0.1) == pytest.approx(0.05)
    assert lc.weight(0.1000001) == 0.5  # the OpenAI code's jump
    assert get_objective("aux", warmup_frac=0).weight(0.0) == 0.5


def test_aux_at_zero_weight_is_forward_ce_even_for_a_batch_of_one():
    z, y = torch.tensor([0.3]), torch.tensor([0.8])
    assert torch.equal(get_objective("aux")(z, y, progress=0.0), get_objective("bce")(z, y))


@pytest.mark.parametrize("name, options", [("aux", {}), ("logconf", {}),
                                           ("Quan_CACE_5", {"scope": "batch"})])
def test_quantile_on_a_batch_of_one_is_refused(name, options):
    """A batch quantile over one example is refused unless asked for (``group_size=1``,
    the released minibatch of one)."""
    with pytest.raises(ValueError, match="at least 2 examples"):
        get_objective(name, **options)(torch.tensor([0.3]), torch.tensor([0.8]), progress=0.5)


@pytest.mark.parametrize("name", ["aux", "logconf"])
def test_rolling_buffer_threshold(name):
    """With buffer_size=n, microbatches of one use the last n examples' quantile."""
    rng = np.random.default_rng(9)
    z, y = random_inputs(rng, 40, None)
    n = 8
    obj = get_objective(name, buffer_size=n)
    s = torch.sigmoid(z)
    obj.observe(z[:1], y[:1])
    for j in range(1, 40):
        loss = obj(z[j:j + 1], y[j:j + 1], progress=1.0)
        lo = max(0, j - n + 1)
        win_s, win_y = s[lo:j + 1].tolist(), y[lo:j + 1].tolist()
        if name == "aux":
            t = ref_quantile(win_s, 1 - sum(win_y) / len(win_y))
        else:  # logconf thresholds p_0 = softmax((0, z))_0 itself
            p0 = torch.softmax(torch.stack([torch.zeros_like(z), z], 1), 1)[:, 0]
            t = ref_quantile(p0[lo:j + 1].tolist(), sum(win_y) / len(win_y))
        assert obj.last_threshold == pytest.approx(t, rel=1e-12, abs=1e-15)
        if name == "aux":
            h = float(float(s[j]) >= t)
            target = 0.5 * float(y[j]) + 0.5 * h
            assert float(loss) == pytest.approx(ref_ce([0, float(z[j])], [1 - target, target]))
    obj.reset()
    with pytest.raises(ValueError, match="at least 2"):
        obj(z[:1], y[:1], progress=1.0)


def test_entropy_detached_gradient_is_rescaled_forward_ce():
    rng = np.random.default_rng(12)
    z, y = random_inputs(rng, 10, 3)
    w = get_objective("entropy").weight(0.05)
    z1 = z.clone().requires_grad_(True)
    get_objective("entropy", reduction="sum")(z1, y, progress=0.05).backward()
    np.testing.assert_allclose(z1.grad.numpy(), (1 - w) * forward_ce_grad(z.numpy(), y.numpy()),
                               rtol=1e-10, atol=1e-14)


def test_entropy_undetached_is_entropy_penalty():
    rng = np.random.default_rng(13)
    z, y = random_inputs(rng, 10, 4)
    z1 = z.clone().requires_grad_(True)
    z2 = z.clone().requires_grad_(True)
    l1 = get_objective("entropy", detach=False)(z1, y, progress=1.0)
    logp = torch.log_softmax(z2, -1)
    l2 = (0.5 * -(y * logp).sum(-1) + 0.5 * -(logp.exp() * logp).sum(-1)).mean()
    l1.backward()
    l2.backward()
    assert torch.allclose(l1, l2) and torch.allclose(z1.grad, z2.grad)


def test_product_and_window_special_cases():
    rng = np.random.default_rng(14)
    z, y = random_inputs(rng, 20, 3)
    ce = get_objective("bce")(z, y)
    assert torch.allclose(get_objective("product", alpha=1, beta=0)(z, y), ce)
    assert torch.allclose(get_objective("window", radius=0.51)(z, y), ce)
    assert float(get_objective("window", radius=0.0)(z * 0 + torch.tensor([5.0, 0, 0], dtype=DT), y)) == 0.0
    hard = F.one_hot(torch.arange(20) % 3, 3).double()
    zz = z.clone().requires_grad_(True)
    loss = get_objective("product", alpha=0.5, beta=2.0)(zz, hard)
    loss.backward()
    assert torch.isfinite(zz.grad).all()
    assert math.isclose(loss.item(), sum(ref_product(a, b, 0.5, 2.0) for a, b in
                                         zip(z.tolist(), hard.tolist())) / 20, rel_tol=1e-10)


def test_aux_target_mixes_label_and_hardened_student_with_weight_w():
    """``aux`` with ``aux_coef=0.2`` (no warm-up): ``CE((1 - w) y + w h, p)``, ``w = 0.2``,
    ``h = 1[s >= t]`` with ``t`` the ``1 - mean(y)`` quantile of the batch's ``s``
    (linear interpolation; here an order statistic, so the ``>=`` matters)."""
    z = torch.tensor([-1.0, 0.3, 2.0, -0.2, 1.1], dtype=DT)
    y = torch.tensor([0.1, 0.9, 0.6, 0.3, 0.6], dtype=DT)  # mean 0.5: level 0.5, index 2 of 5
    loss = get_objective("aux", aux_coef=0.2, warmup_frac=0.0)(z, y, progress=0.5)
    s = 1 / (1 + np.exp(-z.numpy()))
    t = np.sort(s)[2]
    h = (s >= t).astype(float)
    target = 0.8 * y.numpy() + 0.2 * h
    ref = -(target * np.log(s) + (1 - target) * np.log(1 - s)).mean()
    assert float(loss) == pytest.approx(ref, rel=1e-12)


def test_window_is_strict_at_its_edge():
    """``window``: ``CE(y, p) 1[max_k p_k < 1/2 + radius]``, strict, divided by the full
    batch: with ``radius = 0`` an exactly uniform student (``z = 0``) is not uncertain."""
    z, y = torch.tensor([0.0, 0.1], dtype=DT), torch.tensor([1.0, 1.0], dtype=DT)
    assert float(get_objective("window", radius=0.0)(z, y)) == 0.0
    s = 1 / (1 + math.exp(-0.1))
    got = float(get_objective("window", radius=0.1)(z, y))
    assert got == pytest.approx((math.log(2) - math.log(s)) / 2, rel=1e-12)
