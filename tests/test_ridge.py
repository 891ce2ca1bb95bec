"""Tests of the batched ridge solver (claim C6): against numpy and scikit-learn."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge

from w2sg_utils.ridge import choose_form, ridge_fit, ridge_fit_predict, ridge_path

TOL = 1e-8


def reference_ridge(X, y, alpha):
    """Plain formula, one problem: ``(X^T X + alpha I)^{-1} X^T y`` by ``numpy.linalg.solve``."""
    return np.linalg.solve(X.T @ X + alpha * np.eye(X.shape[1]), X.T @ y)


def problems(rng, batch, n, p, k=None):
    X = rng.standard_normal((batch, n, p))
    y = rng.standard_normal((batch, n) if k is None else (batch, n, k))
    return X, y


@pytest.mark.parametrize("n,p", [(40, 10), (40, 39), (30, 90), (25, 25)])
@pytest.mark.parametrize("alpha", [1e-3, 0.5, 20.0])
@pytest.mark.parametrize("solver", ["auto", "cholesky", "eigh"])
def test_matches_numpy_and_sklearn(n, p, alpha, solver):
    rng = np.random.default_rng(n * p)
    X, y = problems(rng, 5, n, p)
    coef = ridge_fit(X, y, alpha, solver=solver)
    ref = np.stack([reference_ridge(X[i], y[i], alpha) for i in range(5)])
    sk = np.stack([Ridge(alpha=alpha, fit_intercept=False).fit(X[i], y[i]).coef_
                   for i in range(5)])
    scale = max(1.0, np.abs(ref).max())
    assert np.abs(coef - ref).max() <= TOL * scale
    assert np.abs(coef - sk).max() <= TOL * scale


@pytest.mark.parametrize("n,p", [(40, 10), (30, 90)])
def test_primal_equals_dual(n, p):
    rng = np.random.default_rng(1)
    X, y = problems(rng, 4, n, p, k=3)
    a = ridge_fit(X, y, 0.1, form="primal")
    b = ridge_fit(X, y, 0.1, form="dual")
    assert a.shape == (4, p, 3)
    np.testing.assert_allclose(a, b, atol=TOL)
    assert choose_form(n, p) == ("primal" if p <= n else "dual")


@pytest.mark.parametrize("n,p", [(60, 15), (20, 70)])
@pytest.mark.parametrize("solver", ["auto", "eigh"])
def test_ridgeless_is_min_norm_least_squares(n, p, solver):
    """alpha = 0: least squares (p < n) or the minimum-norm interpolator (p > n)."""
    rng = np.random.default_rng(2)
    X, y = problems(rng, 3, n, p)
    coef = ridge_fit(X, y, 0.0, solver=solver)
    for i in range(3):
        ref = np.linalg.pinv(X[i]) @ y[i]
        np.testing.assert_allclose(coef[i], ref, atol=TOL)
        if p > n:  # interpolates the training labels
            np.testing.assert_allclose(X[i] @ coef[i], y[i], atol=1e-8)


def test_ridgeless_rank_deficient_uses_pseudo_inverse():
    """Duplicated columns: the Gram matrix is singular; the min-norm solution is pinv."""
    rng = np.random.default_rng(3)
    base = rng.standard_normal((2, 30, 6))
    X = np.concatenate([base, base[..., :3]], axis=-1)  # rank 6 < p = 9 < n
    y = rng.standard_normal((2, 30))
    coef = ridge_fit(X, y, 0.0)
    for i in range(2):
        np.testing.assert_allclose(coef[i], np.linalg.pinv(X[i]) @ y[i], atol=TOL)


@pytest.mark.parametrize("form", ["primal", "dual"])
def test_ridgeless_singular_gram_is_the_pseudo_inverse(form):
    """alpha = 0 with a singular Gram matrix whose Cholesky factorisation may not fail:
    columns (primal) or rows (dual) that are random combinations of others. Rounding
    leaves tiny pivots of either sign, so in some problems the factorisation "succeeds"
    with a useless factor; the condition estimate must send every such problem to the
    pseudo-inverse. The answer is the min-norm least-squares solution, to rounding."""
    rng = np.random.default_rng(10)
    base = rng.standard_normal((40, 30, 6))
    X = np.concatenate([base, base @ rng.standard_normal((40, 6, 3))], axis=-1)  # rank 6
    if form == "dual":
        X = X.transpose(0, 2, 1)  # 9 rows of rank 6, 30 columns
    y = rng.standard_normal(X.shape[:2])
    coef = ridge_fit(X, y, 0.0, form=form)
    for i in range(len(X)):
        np.testing.assert_allclose(coef[i], np.linalg.pinv(X[i]) @ y[i], atol=TOL,
                                   err_msg=f"problem {i}")


def test_small_alpha_converges_to_min_norm():
    rng = np.random.default_rng(4)
    X, y = problems(rng, 2, 20, 50)
    np.testing.assert_allclose(ridge_fit(X, y, 1e-10), ridge_fit(X, y, 0.0), atol=1e-6)


@pytest.mark.parametrize("n,p", [(40, 10), (30, 90)])
def test_path_equals_individual_fits(n, p):
    rng = np.random.default_rng(5)
    X, y = problems(rng, 3, n, p, k=2)
    alphas = [0.0, 1e-4, 1e-1, 10.0]
    path = ridge_path(X, y, alphas)
    path_eigh = ridge_path(X, y, alphas, solver="eigh")
    assert path.shape == (3, 4, p, 2)
    for j, a in enumerate(alphas):
        np.testing.assert_allclose(path[:, j], ridge_fit(X, y, a, solver="eigh"), atol=TOL)
        np.testing.assert_allclose(path_eigh[:, j], path[:, j], atol=TOL)


def test_broadcast_alpha_and_torch_in_torch_out():
    rng = np.random.default_rng(6)
    X, y = problems(rng, 3, 25, 8)
    alphas = np.array([0.1, 1.0, 10.0])
    coef = ridge_fit(torch.as_tensor(X), torch.as_tensor(y), torch.as_tensor(alphas))
    assert isinstance(coef, torch.Tensor) and coef.dtype == torch.float64
    for i in range(3):
        np.testing.assert_allclose(coef[i].numpy(), reference_ridge(X[i], y[i], alphas[i]),
                                   atol=TOL)
    # one design matrix, many responses: batch axes broadcast (y is a vector per
    # problem when y.ndim == X.ndim - 1)
    Y = rng.standard_normal((4, 25))
    c2 = ridge_fit(X[:1], Y, 1.0)
    assert c2.shape == (4, 8)


def test_fit_predict():
    rng = np.random.default_rng(7)
    X, y = problems(rng, 2, 30, 60)
    Xt = rng.standard_normal((2, 11, 60))
    pred = ridge_fit_predict(X, y, Xt, 0.3)
    ref = np.stack([Xt[i] @ reference_ridge(X[i], y[i], 0.3) for i in range(2)])
    np.testing.assert_allclose(pred, ref, atol=TOL)


def test_validation_names_parameter():
    X = np.ones((5, 3))
    y = np.ones(5)
    with pytest.raises(ValueError, match="alpha"):
        ridge_fit(X, y, -1.0)
    with pytest.raises(ValueError, match="y"):
        ridge_fit(X, np.ones(4), 1.0)
    with pytest.raises(ValueError, match="X"):
        ridge_fit(np.ones(5), y, 1.0)
    with pytest.raises(ValueError, match="X"):
        ridge_fit(np.full((5, 3), np.nan), y, 1.0)
    with pytest.raises(ValueError, match="solver"):
        ridge_fit(X, y, 1.0, solver="qr")
    with pytest.raises(ValueError, match="form"):
        ridge_fit(X, y, 1.0, form="kernel")
    with pytest.raises(ValueError, match="alpha"):
        ridge_fit(X, y, 0.0, solver="cholesky")
    with pytest.raises(ValueError, match="alphas"):
        ridge_path(X, y, [])
    with pytest.raises(ValueError, match="alphas"):
        ridge_path(X, y, [1.0, -2.0])
    with pytest.raises(ValueError, match="alpha"):
        ridge_fit(np.ones((2, 5, 3)), np.ones((2, 5)), np.ones(3))
    with pytest.raises(ValueError, match="X_test"):
        ridge_fit_predict(X, y, np.ones((4, 2)), 1.0)


def test_threads_setting_is_restored_and_validated():
    from w2sg_utils.ridge import torch_threads

    before = torch.get_num_threads()
    rng = np.random.default_rng(8)
    X, y = problems(rng, 2, 20, 5)
    a = ridge_fit(X, y, 0.1, threads=1)
    b = ridge_fit(X, y, 0.1, threads=None)
    np.testing.assert_allclose(a, b, atol=TOL)
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="threads"):
        ridge_fit(X, y, 0.1, threads=0)
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
