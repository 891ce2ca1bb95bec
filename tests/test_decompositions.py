"""Bias-variance decomposition (C1) and gain identity (C2) against plain loops."""

import numpy as np
import pytest

from w2sg_utils import bias_variance_decomposition, expected_loss, gain_identity
from w2sg_utils.divergences import DIVERGENCES, get_divergence
from w2sg_utils.divergences import random_points as sample_points

from .references import grad_ref, phi_ref

NAMES = sorted(DIVERGENCES)


def targets_for(name, rng, shape):
    if name == "kl":  # one-hot targets: the case that matters for classification
        k = shape[-1]
        return np.eye(k)[rng.integers(0, k, size=shape[:-1])]
    if name == "binary_kl":
        return rng.integers(0, 2, size=shape).astype(float)
    return sample_points(name, rng, shape)


@pytest.mark.parametrize("name", NAMES)
def test_expected_loss_equals_double_loop(name):
    rng = np.random.default_rng(0)
    Y, V = targets_for(name, rng, (9, 2, 3)), sample_points(name, rng, (7, 2, 3))
    div = get_divergence(name)
    ref = np.mean([[div(y, v) for v in V] for y in Y], axis=(0, 1))
    np.testing.assert_allclose(expected_loss(name, Y, V), ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_decomposition_exact_on_product_of_empirical_measures(name):
    rng = np.random.default_rng(1)
    Y, V = targets_for(name, rng, (11, 4, 3)), sample_points(name, rng, (13, 4, 3))
    bv = bias_variance_decomposition(name, V, Y)
    np.testing.assert_allclose(bv.total, bv.expected_loss, rtol=1e-10, atol=1e-12)
    assert (bv.noise >= -1e-12).all() and (bv.bias >= -1e-12).all() and (bv.variance >= -1e-12).all()


def test_decomposition_plain_reference_squared():
    rng = np.random.default_rng(2)
    Y, V = rng.normal(size=(5, 1)), rng.normal(size=(6, 1))
    bv = bias_variance_decomposition("squared", V, Y)
    ybar, vbar = Y.mean(), V.mean()
    assert np.isclose(bv.noise, np.mean((Y - ybar) ** 2))
    assert np.isclose(bv.bias, (ybar - vbar) ** 2)
    assert np.isclose(bv.variance, np.mean((V - vbar) ** 2))


def test_weights_enumerate_a_distribution():
    rng = np.random.default_rng(3)
    support = sample_points("kl", rng, (3, 4))
    w = np.array([0.2, 0.3, 0.5])
    Y = np.eye(4)[[0, 1, 2, 3]]
    wy = np.array([0.1, 0.2, 0.3, 0.4])
    bv = bias_variance_decomposition("kl", support, Y, prediction_weights=w, target_weights=wy)
    div = get_divergence("kl")
    ref = sum(wy[i] * w[j] * div(Y[i], support[j]) for i in range(4) for j in range(3))
    np.testing.assert_allclose(bv.expected_loss, ref, rtol=1e-12)
    np.testing.assert_allclose(bv.total, ref, rtol=1e-10)


@pytest.mark.parametrize("name", NAMES)
def test_gain_identity_exact(name):
    rng = np.random.default_rng(4)
    y = targets_for(name, rng, (200, 3))
    f_s, f_w = sample_points(name, rng, (200, 3)), sample_points(name, rng, (200, 3))
    g = gain_identity(name, y, f_s, f_w)
    np.testing.assert_allclose(g.residual, 0.0, atol=1e-10)
    div = get_divergence(name)
    np.testing.assert_allclose(g.misfit, div(f_s, f_w))
    means = g.averaged()
    assert np.isclose(means["risk_w"], means["risk_s"] + means["misfit"] + means["cross"])


@pytest.mark.parametrize("name", NAMES)
def test_weighted_expected_loss_equals_weighted_double_loop(name):
    """Non-uniform weights on both samples and targets whose ``phi`` is not constant."""
    rng = np.random.default_rng(6)
    Y, V = sample_points(name, rng, (4, 2, 3)), sample_points(name, rng, (3, 2, 3))
    wy, wv = np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.5, 0.2, 0.3])
    div = get_divergence(name)
    ref = sum(wy[i] * wv[j] * div(Y[i], V[j]) for i in range(4) for j in range(3))
    np.testing.assert_allclose(expected_loss(name, Y, V, wy, wv), ref, rtol=1e-10, atol=1e-12)
    bv = bias_variance_decomposition(name, V, Y, prediction_weights=wv, target_weights=wy)
    np.testing.assert_allclose(bv.expected_loss, ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_gain_identity_terms_against_plain_formulas(name):
    """Each term of claim C2 on its own, from ``phi``/``grad phi`` written out per row, and
    ``averaged()`` is the plain mean over examples (not a sum, not another axis)."""
    rng = np.random.default_rng(5)
    y, f_s, f_w = (sample_points(name, rng, (30, 3)) for _ in range(3))
    g = gain_identity(name, y, f_s, f_w)

    def d(u, v):
        return phi_ref(name, u) - phi_ref(name, v) - sum(
            gi * (a - b) for gi, a, b in zip(grad_ref(name, v), u, v))

    ref = {
        "risk_w": [d(a, c) for a, c in zip(y, f_w)],
        "risk_s": [d(a, b) for a, b in zip(y, f_s)],
        "misfit": [d(b, c) for b, c in zip(f_s, f_w)],
        "cross": [sum((ai - bi) * (gb - gc) for ai, bi, gb, gc in
                      zip(a, b, grad_ref(name, b), grad_ref(name, c)))
                  for a, b, c in zip(y, f_s, f_w)],
    }
    means = g.averaged()
    assert set(means) == set(ref)
    for k, vals in ref.items():
        np.testing.assert_allclose(getattr(g, k), vals, rtol=1e-9, atol=1e-12, err_msg=k)
        np.testing.assert_allclose(means[k], sum(vals) / len(vals), rtol=1e-9, atol=1e-12,
                                   err_msg=k)


def test_decomposition_validates_shapes():
    with pytest.raises(ValueError, match="predictions: per-sample shape"):
        bias_variance_decomposition("squared", np.ones((3, 2, 1)), np.ones((3, 4, 1)))
    with pytest.raises(ValueError, match="target_weights"):
        bias_variance_decomposition("squared", np.ones((3, 1)), np.ones((2, 1)), target_weights=[0.5, 0.6])
    with pytest.raises(ValueError, match="f_w"):
        gain_identity("kl", [[1.0, 0.0]], [[0.5, 0.5]], [[0.7, 0.7]])


@pytest.mark.parametrize("weighted", [False, True])
def test_kl_with_a_class_that_no_draw_puts_mass_on(weighted):
    """KL allows zeros where the target is zero (``0 log 0 = 0``). With a third class of
    probability 0 in every target and every prediction, ``E D(Y, V)`` is finite and equals
    the (weighted) double loop, the same computation without the empty class, and
    ``noise + bias + variance``."""
    rng = np.random.default_rng(14)
    Y2, V2 = targets_for("kl", rng, (6, 2)), rng.dirichlet(np.ones(2), size=5)
    Y, V = (np.concatenate([a, np.zeros((len(a), 1))], axis=1) for a in (Y2, V2))
    wy = rng.dirichlet(np.ones(6)) if weighted else np.full(6, 1 / 6)
    wv = rng.dirichlet(np.ones(5)) if weighted else np.full(5, 1 / 5)
    div = get_divergence("kl")
    ref = sum(wy[i] * wv[j] * div(Y[i], V[j]) for i in range(6) for j in range(5))
    got = expected_loss("kl", Y, V, wy if weighted else None, wv if weighted else None)
    assert np.isfinite(got)
    np.testing.assert_allclose(got, ref, rtol=1e-10)
    np.testing.assert_allclose(got, expected_loss("kl", Y2, V2, wy, wv), rtol=1e-10)
    bv = bias_variance_decomposition("kl", V, Y, wv, wy)
    np.testing.assert_allclose(bv.expected_loss, bv.total, rtol=1e-10)
