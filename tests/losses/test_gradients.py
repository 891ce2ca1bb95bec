"""Tests of w2sg_utils.losses.gradients (claims C7-C9, Chapter 4): the closed-form gradients (claim C8) against autograd."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from w2sg_utils.losses import (
    DEFAULT_EPS,
    forward_ce_grad,
    kl_grad,
    reverse_ce_grad,
    reverse_kl_grad,
    smooth_labels,
)

from .plain import (
    autograd,
    random_inputs,
)


@pytest.mark.parametrize("K", [None, 2, 3, 6])
@pytest.mark.parametrize("eps", [0.0, DEFAULT_EPS, 0.2])
def test_closed_form_gradients_equal_autograd(K, eps):
    rng = np.random.default_rng(6)
    z, y = random_inputs(rng, 40, K, scale=4.0)
    y = smooth_labels(y, 1e-3, 2 if K is None else K)  # strictly inside (0, 1) for eps = 0
    zn, yn = z.numpy(), y.numpy()
    np.testing.assert_allclose(autograd("bce", z, y), forward_ce_grad(zn, yn), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(autograd("kl", z, y), kl_grad(zn, yn), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(
        autograd("reverse_bce", z, y, eps=eps), reverse_ce_grad(zn, yn, eps), rtol=1e-9, atol=1e-13
    )
    np.testing.assert_allclose(
        autograd("reverse_kl", z, y, eps=eps), reverse_kl_grad(zn, yn, eps), rtol=1e-9, atol=1e-13
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
        np.testing.assert_allclose(autograd("reverse_bce", z, y, eps=eps), 0.0, atol=1e-14)


def test_default_eps_bounds_reverse_gradient_for_hard_labels():
    z = torch.linspace(-20, 20, 401)
    for y in (0.0, 1.0):
        g = reverse_ce_grad(z.numpy(), np.full(401, y))
        assert np.abs(g).max() <= 0.25 * math.log((1 - DEFAULT_EPS / 2) / (DEFAULT_EPS / 2)) + 1e-12
