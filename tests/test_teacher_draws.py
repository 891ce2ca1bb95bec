"""The i.i.d. teacher law and the batched teachers and students (w2sg_utils.teacher_draws)."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from w2sg_utils import teacher_draws as TD


def pool(n=120, d=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    y = (x @ np.linspace(1, -1, d) + rng.normal(size=n) > 0).astype(int)
    return x, y


def test_subset_draws_are_iid_subsets_with_their_own_generators():
    _, y = pool()
    a = TD.subset_draws(y, 30, 6, seed=3)
    b = TD.subset_draws(y, 30, 10, seed=3)
    np.testing.assert_array_equal(a, b[:6])  # draw k does not depend on how many
    assert all(len(np.unique(r)) == 30 for r in a)  # without replacement
    assert all(len(np.unique(y[r])) == 2 for r in a)
    assert not np.array_equal(a[0], a[1])
    # independent subsets overlap (disjoint blocks of one permutation never do)
    assert max(len(np.intersect1d(a[0], r)) for r in a[1:]) > 0
    assert not np.array_equal(TD.subset_draws(y, 30, 6, seed=4), a)


def test_subset_draws_are_uniform():
    _, y = pool(n=20)
    d = TD.subset_draws(y, 5, 4000, seed=1)
    freq = np.bincount(d.ravel(), minlength=20) / d.size
    # each row appears with probability 1/20; 4 binomial SEs: Bonferroni over 20 rows
    assert np.abs(freq - 1 / 20).max() < 4 * np.sqrt(0.05 * 0.95 / d.size)


def test_newton_teachers_equal_scikit_learn():
    x, y = pool()
    draws = TD.subset_draws(y, 40, 5, seed=0)
    W = TD.fit_teachers(x, y, draws, C=3.0)
    for k, rows in enumerate(draws):
        ref = LogisticRegression(C=3.0, fit_intercept=False, tol=1e-12,
                                 max_iter=10_000).fit(x[rows], y[rows]).coef_[0]
        np.testing.assert_allclose(W[k], ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(TD.head_logits(x, W), W @ x.T)


def test_students_follow_their_own_teacher():
    x, y = pool(n=200)
    draws = TD.subset_draws(y, 40, 4, seed=2)
    z = TD.head_logits(x, TD.fit_teachers(x, y, draws, C=3.0))
    V = TD.train_students(x, z, "bce", l2=0.0, epochs=200, lr=0.05)
    zs = TD.head_logits(x, V)
    corr = np.corrcoef(np.r_[zs, z])[:4, 4:]
    assert np.all(np.argmax(corr, axis=1) == np.arange(4))


@pytest.mark.parametrize("kwargs, name", [
    ({"n_labels": 0}, "n_labels"), ({"n_labels": 10**6}, "n_labels"),
    ({"n_draws": 0}, "n_draws"), ({"seed": -1}, "seed")])
def test_bad_parameters_fail_early(kwargs, name):
    _, y = pool()
    args = {"n_labels": 10, "n_draws": 3, "seed": 0} | kwargs
    with pytest.raises(ValueError, match=name):
        TD.subset_draws(y, **args)


def test_subset_draws_redraw_single_class_subsets():
    """Two positives among 32 rows: a subset of 3 holds one class with probability
    C(30, 3) / C(32, 3) = 0.82, so most first tries are redrawn; every returned subset
    holds both classes."""
    y = np.r_[np.zeros(30, int), np.ones(2, int)]
    d = TD.subset_draws(y, 3, 50, seed=5)
    assert all(set(y[r].tolist()) == {0, 1} for r in d)
