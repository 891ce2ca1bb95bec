"""Tests of w2sg_utils.losses.objectives (claims C7-C9, Chapter 4): the divergence objectives (forward/reverse CE and KL, CACE, Quan_CACE, SL) against plain references and identities."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from w2sg_utils.divergences import get_divergence
from w2sg_utils.losses import (
    DEFAULT_EPS,
    get_objective,
)

from .plain import (
    DT,
    batches,
    check_against_reference,
    fitted,
    names_in_module,
    random_inputs,
    ref_quantile,
)


@pytest.mark.parametrize("name", names_in_module("objectives"))
@pytest.mark.parametrize("K", [None, 2, 3, 5])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_objective_equals_plain_reference(name, K, seed):
    check_against_reference(name, K, seed)


def test_bce_matches_torch_without_halving():
    rng = np.random.default_rng(4)
    z, y = random_inputs(rng, 31, None)
    got = get_objective("bce")(z, y)
    assert torch.allclose(got, F.binary_cross_entropy_with_logits(z, y), rtol=1e-12)
    zk, yk = random_inputs(rng, 31, 4)
    assert torch.allclose(get_objective("ce")(zk, yk), F.cross_entropy(zk, yk), rtol=1e-12)


@settings(max_examples=50, deadline=None)
@given(batches())
def test_forward_identity(batch):
    """CE(y, p) = H(y) + KL(y || p), also against the divergences module (claim C7)."""
    z, y = batch
    ce = get_objective("bce", reduction="none")(z, y)
    kl = get_objective("kl", reduction="none")(z, y)
    Y = torch.stack([1 - y, y], -1) if y.ndim == 1 else y
    H = -torch.xlogy(Y, Y).sum(-1)
    assert torch.allclose(ce, H + kl, rtol=1e-10, atol=1e-9)
    if z.abs().max() < 50:
        Z = torch.stack([torch.zeros_like(z), z], -1) if z.ndim == 1 else z
        p = torch.softmax(Z, -1).numpy()
        ref = get_divergence("kl")(Y.numpy(), p)
        np.testing.assert_allclose(kl.numpy(), ref, rtol=1e-8, atol=1e-10)


@settings(max_examples=50, deadline=None)
@given(batches(), st.sampled_from([DEFAULT_EPS, 0.05, 0.5]))
def test_reverse_identity(batch, eps):
    """RCE(p, y_eps) = KL(p || y_eps) + H(p) (claim C7)."""
    z, y = batch
    rce = get_objective("reverse_bce", eps=eps, reduction="none")(z, y)
    rkl = get_objective("reverse_kl", eps=eps, reduction="none")(z, y)
    Z = torch.stack([torch.zeros_like(z), z], -1) if z.ndim == 1 else z
    logp = torch.log_softmax(Z, -1)
    H = -(logp.exp() * logp).sum(-1)
    assert torch.allclose(rce, rkl + H, rtol=1e-10, atol=1e-9)


@settings(max_examples=50, deadline=None)
@given(batches(), st.floats(0.5001, 1.0))
def test_cace_limits(batch, c_high):
    """CACE_0 is forward CE; CACE_c with c > 1 - 1/K (binary: c > 1/2) is reverse CE."""
    z, y = batch
    K = 2 if z.ndim == 1 else z.shape[1]
    ce = get_objective("bce")(z, y)
    assert torch.equal(get_objective("CACE_0")(z, y), ce)
    assert torch.equal(fitted("Quan_CACE_0", y)(z, y), ce)
    c = max(c_high, 1 - 1 / K + 1e-9)
    if c <= 1:
        assert torch.allclose(get_objective("CACE", c=c)(z, y), get_objective("reverse_bce")(z, y))


@settings(max_examples=50, deadline=None)
@given(batches(), st.floats(0, 5), st.floats(0, 5), st.floats(0.01, 3))
def test_sl_linearity(batch, a, b, lam):
    z, y = batch
    if a == 0 and b == 0:
        a = 1.0
    ce, rce = get_objective("bce")(z, y), get_objective("reverse_bce")(z, y)
    sl = get_objective("SL", alpha=a, beta=b)(z, y)
    assert torch.allclose(sl, a * ce + b * rce, rtol=1e-12, atol=1e-12)
    scaled = get_objective("SL", alpha=lam * a, beta=lam * b)(z, y)
    assert torch.allclose(scaled, lam * sl, rtol=1e-10, atol=1e-12)


def test_cace_mixes_per_example():
    rng = np.random.default_rng(8)
    z, y = random_inputs(rng, 50, None)
    per = get_objective("CACE_0.2", reduction="none")(z, y)
    ce = get_objective("bce", reduction="none")(z, y)
    rce = get_objective("reverse_bce", reduction="none")(z, y)
    conf = (y - 0.5).abs() >= 0.2
    assert torch.equal(per[conf], ce[conf]) and torch.allclose(per[~conf], rce[~conf], rtol=1e-14)
    assert conf.any() and (~conf).any()


def test_quan_cace_buffer_prefilled_with_observe():
    rng = np.random.default_rng(11)
    z, y = random_inputs(rng, 30, 3)
    obj = get_objective("Quan_CACE_3", scope="batch", buffer_size=1000)
    obj.observe(None, y)  # the whole training set's confidences
    obj(z[:1], y[:1])
    conf = (y.max(1).values - 1 / 3).tolist()
    assert obj.last_threshold == pytest.approx(ref_quantile(conf + conf[:1], 0.3), rel=1e-12)


@pytest.mark.parametrize("K", [2, 3])
def test_class_mean_divides_kl_by_the_number_of_classes(K):
    """``class_mean=True`` (the released ``F.kl_div(reduction="mean")``) is the per-example
    KL divided by ``K``, against the KL written out from its formula."""
    rng = np.random.default_rng(11)
    z = rng.normal(size=(6, K))
    y = rng.dirichlet(np.ones(K), size=6)
    p = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    eps = 0.05
    ye = y * (1 - eps) + eps / K
    fwd = np.sum(y * np.log(y / p), axis=-1)
    rev = np.sum(p * np.log(p / ye), axis=-1)
    zt, yt = torch.tensor(z, dtype=DT), torch.tensor(y, dtype=DT)
    for name, ref, opts in (("kl", fwd, {}), ("reverse_kl", rev, {"eps": eps})):
        plain = get_objective(name, reduction="none", **opts)(zt, yt).numpy()
        scaled = get_objective(name, reduction="none", class_mean=True, **opts)(zt, yt).numpy()
        np.testing.assert_allclose(plain, ref, rtol=1e-10)
        np.testing.assert_allclose(scaled, ref / K, rtol=1e-10)


@pytest.mark.parametrize("name", ["reverse_bce", "CACE_0.6", "SL_a0_b1"])
def test_default_smoothing_bounds_a_hard_labels_logit_as_documented(name):
    """Chapter 4: default ``eps = 1e-3``, so a hard label's logit is ``log(2 / eps - 1)``:
    the reverse-CE gradient at ``z = 0`` is ``-s (1 - s) logit(y_eps) = -log(1999) / 4``."""
    assert DEFAULT_EPS == 1e-3
    z = torch.zeros(1, dtype=DT, requires_grad=True)
    get_objective(name)(z, torch.ones(1, dtype=DT)).backward()
    assert float(z.grad[0]) == pytest.approx(-math.log(2 / 1e-3 - 1) / 4, rel=1e-9)
