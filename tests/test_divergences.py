"""Bregman divergences against plain references written from the definitions (C1)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from w2sg_utils.divergences import DIVERGENCES, BregmanDivergence, get_divergence, kl_from_logits
from w2sg_utils.divergences import random_points as sample_points

from .references import grad_ref, phi_ref

NAMES = sorted(DIVERGENCES)


def div_ref(name, u, v):
    g = grad_ref(name, v)
    return phi_ref(name, u) - phi_ref(name, v) - sum(gi * (a - b) for gi, a, b in zip(g, u, v))


@pytest.mark.parametrize("name", NAMES)
def test_divergence_matches_definition(name):
    rng = np.random.default_rng(0)
    u, v = sample_points(name, rng, (20, 4)), sample_points(name, rng, (20, 4))
    div = get_divergence(name)
    fast = div(u, v)
    ref = np.array([div_ref(name, a, b) for a, b in zip(u, v)])
    np.testing.assert_allclose(fast, ref, rtol=1e-10, atol=1e-12)
    assert np.all(fast >= -1e-12)
    np.testing.assert_allclose(div(u, u), 0.0, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_generic_definition_matches_closed_forms(name):
    """The base class's ``_divergence`` (used by a subclass without a closed form) is
    ``phi(u) - phi(v) - <grad phi(v), u - v>``: compare it with the plain reference."""
    rng = np.random.default_rng(7)
    u, v = sample_points(name, rng, (12, 3)), sample_points(name, rng, (12, 3))
    div = get_divergence(name)
    generic = BregmanDivergence._divergence(div, u, v)
    ref = np.array([div_ref(name, a, b) for a, b in zip(u, v)])
    np.testing.assert_allclose(generic, ref, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(generic, div(u, v), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_grad_inverse_roundtrip(name):
    rng = np.random.default_rng(1)
    u = sample_points(name, rng, (10, 3))
    div = get_divergence(name)
    np.testing.assert_allclose(div.grad_inv(div.grad(u)), u, rtol=1e-10)


@pytest.mark.parametrize("name", NAMES)
def test_three_point_identity(name):
    rng = np.random.default_rng(2)
    a, b, c = (sample_points(name, rng, (15, 5)) for _ in range(3))
    div = get_divergence(name)
    np.testing.assert_allclose(
        div(a, c), div(a, b) + div(b, c) + div.three_point_cross(a, b, c), rtol=1e-9, atol=1e-12
    )


@pytest.mark.parametrize(
    "name,expected",
    [
        ("squared", lambda V: V.mean(0)),
        ("i_divergence", lambda V: np.exp(np.log(V).mean(0))),
        ("itakura_saito", lambda V: 1.0 / (1.0 / V).mean(0)),
        ("binary_kl", lambda V: 1 / (1 + np.exp(-np.log(V / (1 - V)).mean(0)))),
        ("kl", lambda V: np.exp(np.log(V).mean(0)) / np.exp(np.log(V).mean(0)).sum(-1, keepdims=True)),
    ],
)
def test_dual_mean_closed_forms(name, expected):
    rng = np.random.default_rng(3)
    V = sample_points(name, rng, (50, 7, 3))
    np.testing.assert_allclose(get_divergence(name).dual_mean(V), expected(V), rtol=1e-10)


def test_dual_mean_weighted_equals_repeated_sample():
    rng = np.random.default_rng(4)
    V = sample_points("kl", rng, (3, 4))
    w = np.array([0.5, 0.25, 0.25])
    rep = np.concatenate([V[[0, 0]], V[[1]], V[[2]]])
    div = get_divergence("kl")
    np.testing.assert_allclose(div.dual_mean(V, weights=w), div.dual_mean(rep), rtol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_weighted_dual_mean_along_axis_one(name):
    """``weights`` along ``axis=1``: the dual mean written out from the gradient map."""
    rng = np.random.default_rng(8)
    V = sample_points(name, rng, (2, 5, 3))
    w = rng.uniform(size=5)
    w /= w.sum()
    div = get_divergence(name)
    g = np.array([[grad_ref(name, list(V[i, j])) for j in range(5)] for i in range(2)])
    theta = np.einsum("j,ijk->ik", w, g)
    expected = np.array([div.grad_inv(t) for t in theta])
    np.testing.assert_allclose(div.dual_mean(V, axis=1, weights=w), expected, rtol=1e-10)


def test_kl_dual_mean_logits_weighted():
    """Softmax of the weighted mean logits, on axis 0 and axis 1, against a plain loop."""
    rng = np.random.default_rng(9)
    z = rng.normal(size=(4, 6, 3))
    w = np.array([0.1, 0.2, 0.3, 0.4])
    kl = get_divergence("kl")
    for axis, zz in ((0, z), (1, np.swapaxes(z, 0, 1))):
        mean = sum(wi * z[i] for i, wi in enumerate(w))
        expected = np.exp(mean) / np.exp(mean).sum(-1, keepdims=True)
        np.testing.assert_allclose(kl.dual_mean_logits(zz, axis=axis, weights=w), expected, rtol=1e-12)
    np.testing.assert_allclose(kl.dual_mean_logits(z), kl.dual_mean_logits(z, weights=np.full(4, 0.25)),
                               rtol=1e-12)


def test_kl_from_logits_matches_probabilities():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(2, 30, 6)) * 3
    p = np.exp(a) / np.exp(a).sum(-1, keepdims=True)
    q = np.exp(b) / np.exp(b).sum(-1, keepdims=True)
    np.testing.assert_allclose(kl_from_logits(a, b), get_divergence("kl")(p, q), rtol=1e-9)
    # stable for huge logits
    assert np.isfinite(kl_from_logits(a * 1e3, b * 1e3)).all()
    kl = get_divergence("kl")
    np.testing.assert_allclose(kl.dual_mean_logits(a[:, None]), kl.dual_mean(p[:, None]), rtol=1e-10)


def test_kl_one_hot_targets_and_zero_predictions():
    kl = get_divergence("kl")
    y = np.array([[1.0, 0.0, 0.0]])
    q = np.array([[0.5, 0.25, 0.25]])
    np.testing.assert_allclose(kl(y, q), [math.log(2)])
    assert np.isinf(kl(y, np.array([[0.0, 0.5, 0.5]])))[0]


@settings(max_examples=50, deadline=None)
@given(st.sampled_from(NAMES), st.integers(0, 2**31 - 1))
def test_nonnegative_and_zero_iff_equal(name, seed):
    rng = np.random.default_rng(seed)
    u, v = sample_points(name, rng, (2, 3))
    d = get_divergence(name)(u, v)
    assert np.all(d >= -1e-12)


@pytest.mark.parametrize(
    "name,u,v,match",
    [
        ("kl", [[0.5, 0.6]], [[0.5, 0.5]], "u: each row must lie on the probability simplex"),
        ("kl", [[1.2, -0.2]], [[0.5, 0.5]], "u: probabilities must be non-negative"),
        ("kl", [[0.5, 0.5]], [[np.nan, 0.5]], "v: contains NaN"),
        ("binary_kl", [[1.5]], [[0.5]], "u: probabilities must lie in"),
        ("i_divergence", [[1.0]], [[0.0]], "v: must be strictly positive"),
        ("i_divergence", [[-1.0]], [[1.0]], "u: must be non-negative"),
        ("itakura_saito", [[0.0]], [[1.0]], "u: must be strictly positive"),
        ("squared", [[1.0, 2.0]], [[1.0, 2.0, 3.0]], "v: last"),
        ("squared", np.ones((2, 3)), np.ones((4, 3)), "do not broadcast"),
        ("squared", 1.0, 2.0, "scalar"),
    ],
)
def test_invalid_inputs_name_the_argument(name, u, v, match):
    with pytest.raises(ValueError, match=match):
        get_divergence(name)(u, v)


def test_unknown_divergence_lists_valid_names():
    with pytest.raises(ValueError, match="valid names"):
        get_divergence("hellinger")


def test_dual_mean_rejects_coordinate_axis():
    with pytest.raises(ValueError, match="axis"):
        get_divergence("squared").dual_mean(np.ones((3, 2)), axis=-1)


@pytest.mark.parametrize("name", NAMES)
def test_unweighted_dual_mean_along_axis_one(name):
    """Without weights, along ``axis=1`` (and ``-2``): ``grad^{-1}`` of the mean of the
    gradients over that axis, the gradients written out from their formulas."""
    rng = np.random.default_rng(9)
    V = sample_points(name, rng, (2, 5, 3))
    div = get_divergence(name)
    g = np.array([[grad_ref(name, list(V[i, j])) for j in range(5)] for i in range(2)])
    expected = np.array([div.grad_inv(t) for t in g.mean(axis=1)])
    np.testing.assert_allclose(div.dual_mean(V, axis=1), expected, rtol=1e-10)
    np.testing.assert_allclose(div.dual_mean(V, axis=-2), expected, rtol=1e-10)
