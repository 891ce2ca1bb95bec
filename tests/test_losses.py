"""Tests for w2sg_utils.losses (claims C7-C9, Chapter 4).

Every objective is compared with a plain-Python reference written from its formula in
the module docstring; closed-form gradients with autograd; identities and edge cases are
property-tested with hypothesis.
"""

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
    OBJECTIVE_NAMES,
    forward_ce_grad,
    get_objective,
    kl_grad,
    reverse_ce_grad,
    reverse_kl_grad,
    smooth_labels,
)

DT = torch.float64


def _fitted(name, y, **options):
    """``get_objective(name, **options)`` fitted on the batch's labels ``y``: for
    ``Quan_CACE_k`` (released threshold, fixed from all training labels) the batch is
    then the whole training set; every other objective ignores ``fit``."""
    return get_objective(name, **options).fit(y)


# ---------------------------------------------------------------------------------------
# Plain-Python references, one example at a time, from the formulas
# ---------------------------------------------------------------------------------------
def _probs(z):
    m = max(z)
    e = [math.exp(v - m) for v in z]
    t = sum(e)
    return [v / t for v in e]


def _xlogy(a, b):
    return 0.0 if a == 0 else a * math.log(b)


def ref_ce(z, y):
    p = _probs(z)
    return -sum(_xlogy(yk, pk) for yk, pk in zip(y, p))


def ref_h(p):
    return -sum(_xlogy(v, v) for v in p)


def ref_smooth(y, eps):
    K = len(y)
    return [v * (1 - eps) + eps / K for v in y]


def ref_rce(z, y, eps):
    p = _probs(z)
    return -sum(pk * math.log(v) for pk, v in zip(p, ref_smooth(y, eps)))


def ref_kl(z, y):
    return ref_ce(z, y) - ref_h(y)


def ref_rkl(z, y, eps):
    p = _probs(z)
    return sum(pk * (math.log(pk) - math.log(v)) for pk, v in zip(p, ref_smooth(y, eps)))


def ref_conf(y, binary):
    return abs(y[1] - 0.5) if binary else max(y) - 1 / len(y)


def ref_quantile(xs, q):
    """Linear interpolation between order statistics (numpy/torch default)."""
    xs = sorted(xs)
    pos = q * (len(xs) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (pos - lo) * (xs[hi] - xs[lo])


def ref_cace(Z, Y, c, eps, binary):
    return [ref_ce(z, y) if ref_conf(y, binary) >= c else ref_rce(z, y, eps) for z, y in zip(Z, Y)]


def ref_aux_weight(progress, coef, warm):
    return coef if warm == 0 else coef * min(1.0, progress / warm)


def ref_aux(Z, Y, progress, coef=0.5, warm=0.2):
    w = ref_aux_weight(progress, coef, warm)
    P = [_probs(z) for z in Z]
    K = len(Y[0])
    if K == 2:
        s = [p[1] for p in P]
        t = ref_quantile(s, 1 - sum(y[1] for y in Y) / len(Y))
        H = [[1.0 - (si >= t), float(si >= t)] for si in s]
    else:
        H = [[float(k == max(range(K), key=lambda j, p=p: p[j])) for k in range(K)] for p in P]
    out = []
    for z, y, h in zip(Z, Y, H):
        target = [(1 - w) * a + w * b for a, b in zip(y, h)]
        out.append(ref_ce(z, target))
    return out


def ref_logconf(Z, Y, progress, coef=0.5, warm=0.1):
    w = coef * (1.0 if progress > warm else progress)
    P = [_probs(z) for z in Z]
    p0 = [p[0] for p in P]
    t0 = ref_quantile(p0, sum(y[1] for y in Y) / len(Y))
    out = []
    for z, y, a in zip(Z, Y, p0):
        h = [float(a >= t0), 1.0 - (a >= t0)]
        out.append(ref_ce(z, [(1 - w) * u + w * v for u, v in zip(y, h)]))
    return out


def ref_product(z, y, alpha=1.0, beta=1.0):
    p = _probs(z)
    t = [(yk**alpha) * (pk**beta) for yk, pk in zip(y, p)]
    s = sum(t)
    return ref_ce(z, [v / s for v in t])


def ref_entropy(z, y, progress, coef=0.5, warm=0.1):
    w = ref_aux_weight(progress, coef, warm)
    p = _probs(z)
    return ref_ce(z, [(1 - w) * a + w * b for a, b in zip(y, p)])


def ref_window(z, y, radius=0.15):
    return ref_ce(z, y) if max(_probs(z)) < 0.5 + radius else 0.0


def _to_lists(z, y):
    """Binary (B,) tensors -> per-example two-class lists; (B, K) -> lists."""
    z = z.detach().numpy()
    y = y.detach().numpy()
    if z.ndim == 1:
        return [[0.0, float(a)] for a in z], [[1.0 - float(b), float(b)] for b in y]
    return z.tolist(), y.tolist()


def reference(name, z, y, progress=0.3):
    Z, Y = _to_lists(z, y)
    binary = z.ndim == 1
    eps = DEFAULT_EPS
    if name == "bce":
        per = [ref_ce(a, b) for a, b in zip(Z, Y)]
    elif name == "reverse_bce":
        per = [ref_rce(a, b, eps) for a, b in zip(Z, Y)]
    elif name == "kl":
        per = [ref_kl(a, b) for a, b in zip(Z, Y)]
    elif name == "reverse_kl":
        per = [ref_rkl(a, b, eps) for a, b in zip(Z, Y)]
    elif name == "CACE_0.1":
        per = ref_cace(Z, Y, 0.1, eps, binary)
    elif name == "Quan_CACE_5":
        c = ref_quantile([ref_conf(b, binary) for b in Y], 0.5)
        per = ref_cace(Z, Y, c, eps, binary)
    elif name == "SL_a1_b0.1":
        per = [ref_ce(a, b) + 0.1 * ref_rce(a, b, eps) for a, b in zip(Z, Y)]
    elif name == "aux":
        per = ref_aux(Z, Y, progress)
    elif name == "logconf":
        per = ref_logconf(Z, Y, progress) if len(Y[0]) == 2 else ref_aux(Z, Y, progress, 0.5, 0)
    elif name == "product":
        per = [ref_product(a, b) for a, b in zip(Z, Y)]
    elif name == "entropy":
        per = [ref_entropy(a, b, progress) for a, b in zip(Z, Y)]
    elif name == "window":
        per = [ref_window(a, b) for a, b in zip(Z, Y)]
    else:  # pragma: no cover
        raise KeyError(name)
    return sum(per) / len(per)


def random_inputs(rng, B, K, scale=2.0):
    """Binary if K is None, else (B, K) logits and Dirichlet teacher probabilities."""
    if K is None:
        return torch.tensor(rng.normal(0, scale, B)), torch.tensor(rng.uniform(0, 1, B))
    return torch.tensor(rng.normal(0, scale, (B, K))), torch.tensor(rng.dirichlet(np.ones(K), B))


# ---------------------------------------------------------------------------------------
# Values against the references
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", OBJECTIVE_NAMES)
@pytest.mark.parametrize("K", [None, 2, 3, 5])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_objective_equals_plain_reference(name, K, seed):
    rng = np.random.default_rng(seed)
    z, y = random_inputs(rng, 17, K)
    progress = float(rng.uniform(0, 1))
    if name == "logconf" and K not in (None, 2):
        progress = 1.0  # reference for K > 2 uses the post-warm-up weight
    got = _fitted(name, y)(z, y, progress=progress)
    assert got.shape == ()
    assert math.isclose(float(got), reference(name, z, y, progress), rel_tol=1e-10, abs_tol=1e-12)


@pytest.mark.parametrize("name", OBJECTIVE_NAMES)
def test_binary_equals_two_class(name):
    """A binary student is the two-class student with logits (0, z): values and gradients."""
    rng = np.random.default_rng(3)
    z, y = random_inputs(rng, 23, None)
    z1 = z.clone().requires_grad_(True)
    z2 = torch.stack([torch.zeros_like(z), z], dim=-1).requires_grad_(True)
    l1 = _fitted(name, y)(z1, y, progress=0.7)
    l2 = _fitted(name, y)(z2, torch.stack([1 - y, y], dim=-1), progress=0.7)
    l1.backward()
    l2.backward()
    assert torch.allclose(l1, l2, rtol=1e-12, atol=1e-14)
    assert torch.allclose(z1.grad, z2.grad[:, 1], rtol=1e-10, atol=1e-14)


def test_bce_matches_torch_without_halving():
    rng = np.random.default_rng(4)
    z, y = random_inputs(rng, 31, None)
    got = get_objective("bce")(z, y)
    assert torch.allclose(got, F.binary_cross_entropy_with_logits(z, y), rtol=1e-12)
    zk, yk = random_inputs(rng, 31, 4)
    assert torch.allclose(get_objective("ce")(zk, yk), F.cross_entropy(zk, yk), rtol=1e-12)


@pytest.mark.parametrize("name", ["bce", "reverse_bce", "SL_a1_b0.1", "window"])
def test_reductions_are_explicit(name):
    rng = np.random.default_rng(5)
    z, y = random_inputs(rng, 9, 3)
    per = _fitted(name, y, reduction="none")(z, y)
    assert per.shape == (9,)
    assert torch.allclose(_fitted(name, y)(z, y), per.mean())
    assert torch.allclose(_fitted(name, y, reduction="sum")(z, y), per.sum())


# ---------------------------------------------------------------------------------------
# Closed-form gradients (claim C8) against autograd
# ---------------------------------------------------------------------------------------
def _autograd(name, z, y, **opts):
    z = z.clone().requires_grad_(True)
    get_objective(name, reduction="sum", **opts)(z, y).backward()
    return z.grad.numpy()


@pytest.mark.parametrize("K", [None, 2, 3, 6])
@pytest.mark.parametrize("eps", [0.0, DEFAULT_EPS, 0.2])
def test_closed_form_gradients_equal_autograd(K, eps):
    rng = np.random.default_rng(6)
    z, y = random_inputs(rng, 40, K, scale=4.0)
    y = smooth_labels(y, 1e-3, 2 if K is None else K)  # strictly inside (0, 1) for eps = 0
    zn, yn = z.numpy(), y.numpy()
    np.testing.assert_allclose(_autograd("bce", z, y), forward_ce_grad(zn, yn), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(_autograd("kl", z, y), kl_grad(zn, yn), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(
        _autograd("reverse_bce", z, y, eps=eps), reverse_ce_grad(zn, yn, eps), rtol=1e-9, atol=1e-13
    )
    np.testing.assert_allclose(
        _autograd("reverse_kl", z, y, eps=eps), reverse_kl_grad(zn, yn, eps), rtol=1e-9, atol=1e-13
    )


def test_binary_gradient_formulas():
    """Binary: CE gives s - y, RCE gives -s (1 - s) logit(y_eps) (claim C8)."""
    z = np.linspace(-5, 5, 11)
    y = np.linspace(0.05, 0.95, 11)
    s = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(forward_ce_grad(z, y), s - y, rtol=1e-12, atol=1e-15)
    ye = y * (1 - 0.1) + 0.05
    np.testing.assert_allclose(
        reverse_ce_grad(z, y, eps=0.1), -s * (1 - s) * np.log(ye / (1 - ye)), rtol=1e-10, atol=1e-15
    )


@pytest.mark.parametrize("K", [None, 2, 3, 5, 6, 7, 10, 11])
def test_uniform_teacher_gives_zero_reverse_gradient(K):
    rng = np.random.default_rng(7)
    z, _ = random_inputs(rng, 12, K, scale=3.0)
    y = torch.full_like(z, 0.5 if K is None else 1.0 / K)
    for eps in (0.0, DEFAULT_EPS, 0.3):
        assert np.all(reverse_ce_grad(z.numpy(), y.numpy(), eps) == 0.0)
        np.testing.assert_allclose(_autograd("reverse_bce", z, y, eps=eps), 0.0, atol=1e-14)


# ---------------------------------------------------------------------------------------
# Identities and properties (hypothesis)
# ---------------------------------------------------------------------------------------
def _batch(draw, K, hard=False, big=False):
    B = draw(st.integers(2, 12))
    zmax = 1e4 if big else 30.0
    zs = draw(st.lists(st.floats(-zmax, zmax), min_size=B * (K or 1), max_size=B * (K or 1)))
    z = torch.tensor(zs, dtype=DT).reshape(B, K) if K else torch.tensor(zs, dtype=DT)
    if K is None:
        vals = st.sampled_from([0.0, 1.0]) if hard else st.floats(0.0, 1.0)
        y = torch.tensor(draw(st.lists(vals, min_size=B, max_size=B)), dtype=DT)
    else:
        if hard:
            idx = draw(st.lists(st.integers(0, K - 1), min_size=B, max_size=B))
            y = F.one_hot(torch.tensor(idx), K).double()
        else:
            w = draw(st.lists(st.floats(0.0, 1.0), min_size=B * K, max_size=B * K))
            w = torch.tensor(w, dtype=DT).reshape(B, K) + 1e-3
            y = w / w.sum(dim=1, keepdim=True)
    return z, y


@st.composite
def batches(draw):
    K = draw(st.sampled_from([None, 2, 3, 4]))
    return _batch(draw, K, hard=draw(st.booleans()), big=draw(st.booleans()))


@settings(max_examples=60, deadline=None)
@given(batches(), st.sampled_from(OBJECTIVE_NAMES), st.floats(0.0, 1.0))
def test_values_and_gradients_finite(batch, name, progress):
    """Hard labels 0/1 and saturated logits (|z| up to 1e4): finite value and gradient."""
    z, y = batch
    z = z.clone().requires_grad_(True)
    loss = _fitted(name, y)(z, y, progress=progress)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()


@settings(max_examples=30, deadline=None)
@given(batches(), st.sampled_from(OBJECTIVE_NAMES))
def test_float32_inputs_finite(batch, name):
    z, y = batch
    z = z.float().requires_grad_(True)
    loss = _fitted(name, y.float())(z, y.float(), progress=0.5)
    loss.backward()
    assert loss.dtype == torch.float32
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()


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
    assert torch.equal(_fitted("Quan_CACE_0", y)(z, y), ce)
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


# ---------------------------------------------------------------------------------------
# eps = 0, hard labels
# ---------------------------------------------------------------------------------------
def test_eps_zero_rejects_hard_labels_for_reverse_terms():
    z = torch.zeros(3)
    y = torch.tensor([0.0, 0.5, 1.0])
    for name in ("reverse_bce", "reverse_kl", "SL_a1_b0.1", "CACE_0.6"):
        with pytest.raises(ValueError, match="eps=0"):
            get_objective(name, eps=0.0)(z, y)
    with pytest.raises(ValueError, match="eps=0"):
        get_objective("reverse_bce", eps=0)(torch.zeros(2, 3), torch.eye(3)[:2])


def test_eps_zero_works_where_reverse_terms_see_soft_labels():
    z = torch.tensor([3.0, -2.0, 0.1], dtype=DT, requires_grad=True)
    y = torch.tensor([0.0, 1.0, 0.55], dtype=DT)  # hard labels are confident for c <= 0.5
    loss = get_objective("CACE_0.3", eps=0)(z, y)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()
    ref = (ref_ce([0, 3.0], [1, 0]) + ref_ce([0, -2.0], [0, 1]) + ref_rce([0, 0.1], [0.45, 0.55], 0)) / 3
    assert math.isclose(loss.item(), ref, rel_tol=1e-12)


def test_default_eps_bounds_reverse_gradient_for_hard_labels():
    z = torch.linspace(-20, 20, 401)
    for y in (0.0, 1.0):
        g = reverse_ce_grad(z.numpy(), np.full(401, y))
        assert np.abs(g).max() <= 0.25 * math.log((1 - DEFAULT_EPS / 2) / (DEFAULT_EPS / 2)) + 1e-12


# ---------------------------------------------------------------------------------------
# aux / logconf / Quan_CACE: schedules and batch quantiles
# ---------------------------------------------------------------------------------------
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


def test_buffer_equals_full_batch_when_batch_is_at_least_buffer():
    rng = np.random.default_rng(10)
    z, y = random_inputs(rng, 16, None)
    a = get_objective("aux", buffer_size=16)(z, y, progress=1.0)
    b = get_objective("aux")(z, y, progress=1.0)
    assert torch.equal(a, b)


def test_quan_cace_buffer_prefilled_with_observe():
    rng = np.random.default_rng(11)
    z, y = random_inputs(rng, 30, 3)
    obj = get_objective("Quan_CACE_3", scope="batch", buffer_size=1000)
    obj.observe(None, y)  # the whole training set's confidences
    obj(z[:1], y[:1])
    conf = (y.max(1).values - 1 / 3).tolist()
    assert obj.last_threshold == pytest.approx(ref_quantile(conf + conf[:1], 0.3), rel=1e-12)


def test_fresh_objects_have_independent_state():
    a, b = get_objective("aux", buffer_size=4), get_objective("aux", buffer_size=4)
    assert a is not b
    a.observe(torch.zeros(3), torch.full((3,), 0.5))
    with pytest.raises(ValueError, match="at least 2"):
        b(torch.zeros(1), torch.full((1,), 0.5), progress=1.0)
    a(torch.zeros(1), torch.full((1,), 0.5), progress=1.0)


# ---------------------------------------------------------------------------------------
# entropy, product, window
# ---------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------
# Registry and errors
# ---------------------------------------------------------------------------------------
def test_canonical_names_and_aliases():
    assert [get_objective(n).name for n in OBJECTIVE_NAMES] == OBJECTIVE_NAMES
    assert get_objective("ce").name == "bce" and get_objective("RCE").name == "reverse_bce"
    assert get_objective("cace_0.10").name == "CACE_0.1"
    assert get_objective("CACE", c=0.25).name == "CACE_0.25"
    assert get_objective("sl_a1.0_b1e-1").name == "SL_a1_b0.1"
    assert get_objective("SL", alpha=2, beta=0).name == "SL_a2_b0"
    assert get_objective("Quan_CACE", k=7).name == "Quan_CACE_7"


@pytest.mark.parametrize(
    "name, options, match",
    [
        ("nope", {}, "unknown objective 'nope'.*Valid names.*CACE_<c>"),
        ("CACE_", {}, "malformed.*CACE_<c>"),
        ("CACE_x", {}, "malformed"),
        ("CACE_1.5", {}, "c: must be <= 1"),
        ("Quan_CACE_2.5", {}, "malformed.*Quan_CACE_<k>"),
        ("Quan_CACE_11", {}, "k: must be an integer in 0..10"),
        ("SL_a1", {}, "malformed.*SL_a<alpha>_b<beta>"),
        ("SL_a0_b0", {}, "alpha, beta"),
        ("CACE", {}, "needs \\['c'\\]"),
        ("CACE_0.1", {"c": 0.2}, "given both"),
        ("bce", {"eps": 0.1}, "options: \\['eps'\\] not accepted"),
        ("reverse_bce", {"eps": -0.1}, "eps: must be >= 0"),
        ("reverse_bce", {"eps": 1.0}, "eps: must be < 1"),
        ("reverse_bce", {"eps": float("nan")}, "eps: must be finite"),
        ("aux", {"aux_coef": 2}, "aux_coef"),
        ("aux", {"warmup_frac": -1}, "warmup_frac"),
        ("aux", {"buffer_size": -1}, "buffer_size"),
        ("aux", {"buffer_size": 2.5}, "buffer_size: expected an integer"),
        ("window", {"radius": -0.1}, "radius"),
        ("product", {"alpha": -1}, "alpha"),
        ("entropy", {"detach": "yes"}, "detach"),
        ("bce", {"reduction": "avg"}, "reduction"),
        (None, {}, "name: expected a string"),
    ],
)
def test_bad_names_and_hyperparameters(name, options, match):
    with pytest.raises(ValueError, match=match):
        get_objective(name, **options)


def test_bad_inputs():
    obj = get_objective("bce")
    with pytest.raises(ValueError, match="teacher_probs: shape"):
        obj(torch.zeros(3), torch.zeros(4))
    with pytest.raises(ValueError, match="student_logits: expected shape"):
        obj(torch.zeros(2, 2, 2), torch.zeros(2, 2, 2))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        obj(torch.zeros(2), torch.tensor([0.5, 1.5]))
    with pytest.raises(ValueError, match="sum to 1"):
        obj(torch.zeros(2, 3), torch.full((2, 3), 0.5))
    with pytest.raises(ValueError, match="NaN"):
        obj(torch.tensor([float("nan"), 0.0]), torch.tensor([0.5, 0.5]))
    with pytest.raises(ValueError, match="progress"):
        obj(torch.zeros(2), torch.full((2,), 0.5), progress=1.5)
    with pytest.raises(ValueError, match="floating"):
        obj(torch.zeros(2, dtype=torch.long), torch.full((2,), 0.5))
    with pytest.raises(ValueError, match="empty"):
        obj(torch.zeros(0), torch.zeros(0))


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


def test_batch_quantile_keeps_every_current_example_and_the_last_buffer_size():
    """``scope="batch"`` with ``buffer_size=4``: the quantile sample is the last 4
    confidences seen (buffer, then the current batch), but never fewer than the whole
    current batch when that is larger."""
    rng = np.random.default_rng(12)
    obj = get_objective("Quan_CACE_5", scope="batch", buffer_size=4)
    y1, y2 = rng.uniform(size=10), rng.uniform(size=3)
    conf1, conf2 = np.abs(y1 - 0.5), np.abs(y2 - 0.5)
    obj(torch.zeros(10, dtype=DT), torch.tensor(y1, dtype=DT))
    assert obj.last_threshold == pytest.approx(np.quantile(conf1, 0.5), rel=1e-12)
    obj(torch.zeros(3, dtype=DT), torch.tensor(y2, dtype=DT))
    sample = np.concatenate([conf1, conf2])[-4:]
    assert obj.last_threshold == pytest.approx(np.quantile(sample, 0.5), rel=1e-12)


@pytest.mark.parametrize("name", ["reverse_bce", "CACE_0.6", "SL_a0_b1"])
def test_default_smoothing_bounds_a_hard_labels_logit_as_documented(name):
    """Chapter 4: default ``eps = 1e-3``, so a hard label's logit is ``log(2 / eps - 1)``:
    the reverse-CE gradient at ``z = 0`` is ``-s (1 - s) logit(y_eps) = -log(1999) / 4``."""
    assert DEFAULT_EPS == 1e-3
    z = torch.zeros(1, dtype=DT, requires_grad=True)
    get_objective(name)(z, torch.ones(1, dtype=DT)).backward()
    assert float(z.grad[0]) == pytest.approx(-math.log(2 / 1e-3 - 1) / 4, rel=1e-9)


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
