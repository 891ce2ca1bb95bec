"""Exact enumeration helpers (C5a) against plain loop references."""

import itertools

import numpy as np
import pytest

from w2sg_utils.divergences import get_divergence
from w2sg_utils.enumeration import bregman_quantizer, enumerate_iid, exact_teachers
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


def _law(teachers, weights):
    """The law of a list of teachers: {rounded values: total probability}."""
    out = {}
    for f, w in zip(teachers, weights):
        key = tuple(np.round(np.ravel(f), 10))
        out[key] = out.get(key, 0.0) + w
    return out


@pytest.mark.parametrize("loss", ["squared", "kl"])
def test_exact_teachers_against_a_plain_loop(loss):
    """Every training set written out with itertools: a pair ``(x, y)`` has probability
    ``p_x[x] / 2`` with ``y = ybar[x] -/+ sigma`` (squared) or ``p_x[x] ybar[x, c]`` with
    class ``c`` (kl); the teacher at ``x`` is ``(sum of labels at x + pooled) / (count
    + 1)`` (``histogram_teacher`` with ``alpha = 1``, its formula typed out here). The two
    laws must agree (to rounding: each probability is a product of ``n_train`` factors)."""
    p_x = np.array([0.5, 0.3, 0.2])
    n, n_train, sigma = 3, 3, 0.7
    if loss == "squared":
        ybar = np.array([[0.4], [-1.0], [2.0]])
        pairs = [((x, ybar[x, 0] + sigma * s), p_x[x] / 2) for x in range(n) for s in (-1, 1)]
    else:
        ybar = np.array([[0.2, 0.8], [0.5, 0.5], [0.9, 0.1]])
        pairs = [((x, c), p_x[x] * ybar[x, c]) for x in range(n) for c in range(2)]
    ref_f, ref_w = [], []
    for train in itertools.product(pairs, repeat=n_train):
        xs = [pair[0][0] for pair in train]
        if loss == "squared":
            labels = np.array([[pair[0][1]] for pair in train])
            pooled = labels.mean(axis=0)
        else:
            labels = np.eye(2)[[pair[0][1] for pair in train]]
            pooled = (labels.sum(axis=0) + 1.0) / (n_train + 2)
        f = np.array([(sum(lab for x_j, lab in zip(xs, labels) if x_j == x) + pooled)
                      / (xs.count(x) + 1) for x in range(n)])
        ref_f.append(f)
        ref_w.append(np.prod([pair[1] for pair in train]))
    f_w, w = exact_teachers(loss, p_x, ybar, n_train, sigma)
    assert f_w.shape == (len(pairs) ** n_train, n, ybar.shape[1])
    assert np.isclose(w.sum(), 1.0, rtol=0, atol=1e-12)
    got, ref = _law(f_w, w), _law(ref_f, ref_w)
    assert got.keys() == ref.keys()
    for key in ref:
        assert np.isclose(got[key], ref[key], rtol=1e-12, atol=1e-15)
