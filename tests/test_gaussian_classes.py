"""Tests for w2sg_utils.gaussian_classes (the synthetic task of Chapter 4)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import log_softmax, softmax

from w2sg_utils.divergences import get_divergence
from w2sg_utils.gaussian_classes import (
    check_entropy_corollary,
    entropy,
    make_gaussian_task,
    min_entropy,
    train_linear,
    w2s_terms,
)
from w2sg_utils.losses import get_objective


def test_posterior_is_bayes_rule():
    rng = np.random.default_rng(0)
    task = make_gaussian_task(4, 5, 2, 2.0, 1.0, rng)
    x = task.sample(7, rng)["x"]
    got = np.exp(task.posterior_log_probs(x))
    for i in range(7):
        dens = [math.exp(-0.5 * sum((a - b) ** 2 for a, b in zip(x[i], mu))) for mu in task.means]
        ref = [d / sum(dens) for d in dens]
        np.testing.assert_allclose(got[i], ref, rtol=1e-10)


def test_sample_views():
    rng = np.random.default_rng(1)
    task = make_gaussian_task(3, 6, 2, 2.0, 0.0, rng)
    d = task.sample(50, rng)
    assert d["x"].shape == (50, 6) and d["y"].shape == (50,)
    np.testing.assert_array_equal(d["x_weak_clean"], d["x"][:, :2])
    np.testing.assert_array_equal(d["x_weak"], d["x_weak_clean"])  # no noise


def test_posterior_mean_teacher_is_softmax_of_clean_logits():
    """Dual mean over the view noise of a linear teacher = softmax(W x_clean + b) (exact)."""
    rng = np.random.default_rng(2)
    W, b = rng.normal(size=(3, 2)), rng.normal(size=3)
    clean = rng.normal(size=(4, 2))
    xi = rng.normal(size=(5000, 4, 2))
    xi -= xi.mean(axis=0)  # exactly centred sample: the identity is then exact
    probs = softmax((clean[None] + 0.7 * xi) @ W.T + b, axis=-1)
    dual = get_divergence("kl").dual_mean(probs, axis=0)
    np.testing.assert_allclose(dual, softmax(clean @ W.T + b, axis=-1), rtol=1e-9)


@pytest.mark.parametrize("K", [2, 3])
def test_train_linear_learns_and_is_deterministic(K):
    rng = np.random.default_rng(3)
    task = make_gaussian_task(K, 4, 2, 4.0, 0.5, rng)
    d = task.sample(400, rng)
    threads = torch.get_num_threads()
    m1 = train_linear(d["x"], np.eye(K)[d["y"]], get_objective("bce"), epochs=5, seed=1)
    m2 = train_linear(d["x"], np.eye(K)[d["y"]], get_objective("bce"), epochs=5, seed=1)
    assert torch.get_num_threads() == threads
    np.testing.assert_array_equal(m1.weight, m2.weight)
    assert m1.weight.shape == (K, 4)
    if K == 2:
        assert np.all(m1.weight[0] == 0) and m1.bias[0] == 0
    test = task.sample(2000, rng)
    acc = np.mean(m1.log_probs(test["x"]).argmax(1) == test["y"])
    bayes = np.mean(task.posterior_log_probs(test["x"]).argmax(1) == test["y"])
    assert acc > bayes - 0.05  # a realizable, well-separated problem


def test_train_linear_errors():
    obj = get_objective("bce")
    with pytest.raises(ValueError, match="targets"):
        train_linear(np.zeros((5, 2)), np.zeros((4, 2)), obj)
    with pytest.raises(ValueError, match="epochs"):
        train_linear(np.zeros((5, 2)), np.full((5, 2), 0.5), obj, epochs=0)
    with pytest.raises(ValueError, match="lr"):
        train_linear(np.zeros((5, 2)), np.full((5, 2), 0.5), obj, lr=-1.0)


def test_make_task_errors():
    with pytest.raises(ValueError, match="weak_dim"):
        make_gaussian_task(3, 2, 3)
    with pytest.raises(ValueError, match="n_classes"):
        make_gaussian_task(1)
    with pytest.raises(ValueError, match="separation"):
        make_gaussian_task(3, separation=0.0)
    with pytest.raises(ValueError, match="weak_noise"):
        make_gaussian_task(3, weak_noise=-1.0)


def _random_logp(rng, n, K, scale=2.0):
    return log_softmax(rng.normal(0, scale, (n, K)), axis=1)


def test_w2s_terms_against_plain_formulas():
    rng = np.random.default_rng(4)
    n, K = 30, 4
    ly, ls, lw, lb = (_random_logp(rng, n, K) for _ in range(4))
    y = rng.integers(0, K, n)
    t = w2s_terms(y, ly, ls, lw, lb)
    for i in range(n):
        yb, s, w, b = (np.exp(a[i]) for a in (ly, ls, lw, lb))
        kl = lambda p, q: sum(pk * math.log(pk / qk) for pk, qk in zip(p, q))  # noqa: E731
        assert math.isclose(t["risk_s"][i], kl(yb, s), rel_tol=1e-9)
        assert math.isclose(t["risk_w"][i], kl(yb, w), rel_tol=1e-9)
        assert math.isclose(t["misfit"][i], kl(s, w), rel_tol=1e-9)
        assert math.isclose(t["misfit_fwd"][i], kl(w, s), rel_tol=1e-9)
        assert math.isclose(t["dist_pm"][i], kl(s, b), rel_tol=1e-9)
        assert math.isclose(t["variance_w"][i], kl(b, w), rel_tol=1e-9)
        cross = sum((a - c) * (math.log(c) - math.log(d)) for a, c, d in zip(yb, s, w))
        eps = sum((a - c) * (math.log(c) - math.log(d)) for a, c, d in zip(yb, s, b))
        assert math.isclose(t["cross"][i], cross, rel_tol=1e-9, abs_tol=1e-12)
        assert math.isclose(t["eps"][i], eps, rel_tol=1e-9, abs_tol=1e-12)
        assert math.isclose(t["rce"][i], -sum(c * math.log(d) for c, d in zip(s, w)), rel_tol=1e-9)
        assert math.isclose(t["entropy_s"][i], -sum(c * math.log(c) for c in s), rel_tol=1e-9)
        assert math.isclose(t["min_entropy_w"][i], -math.log(max(w)), rel_tol=1e-9)
        assert t["correct_s"][i] == float(np.argmax(s) == y[i])
        assert t["correct_w"][i] == float(np.argmax(w) == y[i])
        assert math.isclose(t["entropy_w"][i], -sum(c * math.log(c) for c in w), rel_tol=1e-9)
    # exact identities (claims C2, C4, C7)
    np.testing.assert_allclose(t["risk_w"], t["risk_s"] + t["misfit"] + t["cross"], atol=1e-10)
    np.testing.assert_allclose(t["rce"], t["misfit"] + t["entropy_s"], atol=1e-10)
    rest = np.sum((np.exp(ls) - np.exp(lb)) * (lb - lw), axis=1)
    np.testing.assert_allclose(t["misfit"], t["dist_pm"] + t["variance_w"] + rest, atol=1e-10)
    assert np.all(t["rce"] >= t["min_entropy_w"] - 1e-12)
    assert np.all(w2s_terms(y, ly, lb, lw, lb)["eps"] == 0.0)


def test_w2s_terms_saturated_and_errors():
    ly = log_softmax(np.array([[0.0, 1.0, 2.0]]), axis=1)
    ls = log_softmax(np.array([[0.0, 800.0, -800.0]]), axis=1)  # probabilities underflow to 0
    t = w2s_terms(np.array([1]), ly, ls, ly, ly)
    assert all(np.all(np.isfinite(v)) for v in t.values())
    with pytest.raises(ValueError, match="shapes"):
        w2s_terms(np.array([1]), ly, ls[:, :2], ly, ly)
    with pytest.raises(ValueError, match="normalised"):
        w2s_terms(np.array([1]), ly, ls + 1.0, ly, ly)
    with pytest.raises(ValueError, match="y:"):
        w2s_terms(np.array([1, 2]), ly, ls, ly, ly)


def test_entropies():
    with np.errstate(divide="ignore"):
        lp = np.log(np.array([[0.5, 0.25, 0.25], [1.0, 0.0, 0.0]]))
    np.testing.assert_allclose(entropy(lp), [1.5 * math.log(2), 0.0])
    np.testing.assert_allclose(min_entropy(lp), [math.log(2), 0.0])


@pytest.mark.parametrize("K", [2, 3])
def test_train_linear_against_a_plain_loop(K):
    """The documented training: Adam from zero on ``mean CE(y, softmax(W u + b)) +
    l2 / 2 ||W||^2`` over the seeded minibatch order (``K = 2``: one logit, ``(0, z)``).
    A large ``l2`` makes the penalty's factor visible."""
    rng = np.random.default_rng(6)
    n, d, bs, l2, lr = 23, 3, 5, 0.5, 0.1
    u, t = rng.normal(size=(n, d)), rng.dirichlet(np.ones(K), size=n)
    model = train_linear(u, t, get_objective("bce"), epochs=3, batch_size=bs, lr=lr, l2=l2, seed=4)
    out = 1 if K == 2 else K
    W = torch.zeros(out, d, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(out, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([W, b], lr=lr)
    gen = torch.Generator().manual_seed(4)
    U, T = torch.as_tensor(u), torch.as_tensor(t)
    for _ in range(3):
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, bs):
            idx = perm[i:i + bs]
            if len(idx) < 2:
                continue
            z = U[idx] @ W.T + b
            if K == 2:
                z = torch.cat([torch.zeros_like(z), z], dim=1)
            ce = -(T[idx] * torch.log_softmax(z, -1)).sum(-1).mean()
            opt.zero_grad()
            (ce + l2 / 2 * (W ** 2).sum()).backward()
            opt.step()
    W, b = W.detach().numpy(), b.detach().numpy()
    if K == 2:
        W, b = np.vstack([np.zeros(d), W[0]]), np.array([0.0, b[0]])
    np.testing.assert_allclose(model.weight, W, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(model.bias, b, rtol=1e-9, atol=1e-12)


def test_entropy_corollary_check_passes_the_truth_and_fails_wrong_terms():
    """``check_entropy_corollary`` on exact terms. With the teacher its own posterior
    mean (``logp_wbar = logp_w``) the cross term is ``eps``, so ``gain = RCE - H(f_s) +
    eps`` holds per example and ``exact=True`` passes; with another ``fbar_w`` it must
    fail, as it must when ``RCE`` or ``H_inf`` is off (each side from ``w2s_terms``)."""
    rng = np.random.default_rng(12)
    n, K = 40, 3
    ly, ls, lw, lb = (_random_logp(rng, n, K) for _ in range(4))
    y = rng.integers(0, K, n)
    t = w2s_terms(y, ly, ls, lw, lw)
    err = check_entropy_corollary(t, exact=True)
    assert 0.0 <= err < 1e-12
    other = w2s_terms(y, ly, ls, lw, lb)
    check_entropy_corollary(other)  # the first two items hold for any fbar_w
    assert np.abs(other["cross"] - other["eps"]).max() > 1e-3
    with pytest.raises(AssertionError, match="gain = RCE - H"):
        check_entropy_corollary(other, exact=True)
    with pytest.raises(AssertionError, match="RCE = KL"):
        check_entropy_corollary({**t, "rce": t["rce"] + 1e-3})
    with pytest.raises(AssertionError, match="H_inf"):
        check_entropy_corollary({**t, "min_entropy_w": t["rce"] + 1e-3})


def test_class_means_have_the_stated_scale():
    """``mu_k ~ N(0, separation^2 / dim I)``, so ``|mu_k|^2`` has mean ``separation^2``
    (``separation^2 chi^2_dim / dim``). The mean over 400 classes is within 5 of its
    standard errors (estimated from the 400 values) of ``separation^2``."""
    from w2sg_utils.checks import assert_within_se, mean_and_se

    task = make_gaussian_task(n_classes=400, dim=50, weak_dim=3, separation=2.0,
                              rng=np.random.default_rng(13))
    mean, se = mean_and_se((task.means**2).sum(axis=1))
    assert_within_se(mean, 4.0, se, what="mean |mu_k|^2")
