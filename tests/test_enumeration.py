"""Exact enumeration helpers (C5a) against plain loop references."""

import itertools

import numpy as np
import pytest

from w2sg_utils.divergences import get_divergence
from w2sg_utils.enumeration import bregman_quantizer, enumerate_iid
from w2sg_utils.misfit import posterior_mean_teacher

from .test_misfit import points


def test_enumerate_iid_against_itertools():
    p = np.array([0.2, 0.5, 0.3])
    out, w = enumerate_iid(p, 3)
    ref = list(itertools.product(range(3), repeat=3))
    np.testing.assert_array_equal(out, np.array(ref))
    np.testing.assert_allclose(w, [np.prod(p[list(t)]) for t in ref], rtol=1e-14)
    assert np.isclose(w.sum(), 1.0)
    with pytest.raises(ValueError, match="n"):
        enumerate_iid(p, 0)


@pytest.mark.parametrize("name", ["squared", "kl"])
def test_bregman_quantizer_is_a_fixed_point(name):
    rng = np.random.default_rng(7)
    div = get_divergence(name)
    vals = points(name, rng, (40, 3, 2))
    w = rng.uniform(size=40)
    w /= w.sum()
    cells, code = bregman_quantizer(name, vals, 5, weights=w, seed=1)
    assert code.shape[0] <= 5 and set(np.unique(cells)) == set(range(code.shape[0]))
    # each codeword is the dual mean of its cell; each value goes to its nearest codeword
    np.testing.assert_allclose(code[cells], posterior_mean_teacher(name, vals, cells, w), rtol=1e-10)
    for j in range(40):
        d = [np.mean([div(code[c, i], vals[j, i]) for i in range(3)]) for c in range(code.shape[0])]
        assert np.isclose(d[cells[j]], min(d), rtol=1e-12)


def test_enumeration_validation():
    with pytest.raises(ValueError, match="probs"):
        enumerate_iid([0.5, 0.6], 2)
    with pytest.raises(ValueError, match="n"):
        enumerate_iid(np.full(10, 0.1), 7)  # 10**7 outcomes
    with pytest.raises(ValueError, match="n_cells"):
        bregman_quantizer("squared", np.zeros((3, 2, 1)), 0)
    with pytest.raises(ValueError, match="values"):
        bregman_quantizer("squared", np.zeros((3, 2)), 2)


def test_bregman_quantizer_uses_the_input_law():
    """With ``x_weights`` the assignment minimises the ``P_X``-weighted misfit: a draw
    goes to its nearest codeword in ``sum_x w_x (c(x) - v(x))^2`` (written out here)."""
    rng = np.random.default_rng(3)
    vals = rng.normal(size=(60, 2, 1)) * np.array([1.0, 3.0])[None, :, None]
    wx = np.array([0.9, 0.1])
    cells, code = bregman_quantizer("squared", vals, 4, x_weights=wx, seed=2)
    for j in range(60):
        d = [sum(wx[i] * (code[c, i, 0] - vals[j, i, 0]) ** 2 for i in range(2))
             for c in range(code.shape[0])]
        assert np.isclose(d[cells[j]], min(d), rtol=1e-12)
