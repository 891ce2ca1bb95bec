"""The posterior-mean estimator (claims C3, C4, C6) against the exact linear-Gaussian case."""

import numpy as np
import pytest

from w2sg_utils.checks import assert_within_se, mean_and_se
from w2sg_utils.posterior_mean import (
    gaussian_conditional_mean,
    linear_posterior_mean,
    min_draws,
    split_half_posterior_mean,
)


def linear_gaussian(rng, n_a=6, n_b=5, p=12):
    """Teacher f_w = phi(x)^T theta, theta ~ N(mu, S): exact mean and covariance."""
    Pa, Pb = rng.normal(size=(n_a, p)), rng.normal(size=(n_b, p))
    mu = rng.normal(size=p)
    L = rng.normal(size=(p, p)) / np.sqrt(p)
    S = L @ L.T + 0.1 * np.eye(p)

    def draw(shape):
        theta = mu + rng.normal(size=shape + (p,)) @ np.linalg.cholesky(S).T
        return theta @ Pa.T, theta @ Pb.T

    exact = dict(mean_obs=Pa @ mu, mean_target=Pb @ mu, cov_obs=Pa @ S @ Pa.T,
                 cov_target_obs=Pb @ S @ Pa.T)
    cond_var = np.mean(np.diag(Pb @ S @ Pb.T - exact["cov_target_obs"]
                               @ np.linalg.solve(exact["cov_obs"], exact["cov_target_obs"].T)))
    return draw, exact, cond_var


def test_gaussian_conditioning_against_formula_and_joint_sampling():
    rng = np.random.default_rng(0)
    draw, exact, cond_var = linear_gaussian(rng)
    a, b = draw((200_000,))
    fbar = gaussian_conditional_mean(**exact, observed=a)
    resid = b - fbar
    # E[b - fbar | a] = 0: residual uncorrelated with a (and mean zero), variance = cond_var
    for j in range(b.shape[1]):
        m, se = mean_and_se(resid[:, j] * (a[:, 0] - exact["mean_obs"][0]))
        assert_within_se(m, 0.0, se, what="residual uncorrelated with the observation")
    m, se = mean_and_se((resid**2).mean(1))
    assert_within_se(m, cond_var, se, what="conditional variance")


def test_batched_estimator_equals_plain_least_squares():
    rng = np.random.default_rng(1)
    draw, _, _ = linear_gaussian(rng)
    A, B = draw((3, 40))
    a = draw((3, 2))[0]
    est = linear_posterior_mean(A, B, a)
    for i in range(3):  # plain OLS with an intercept, one batch element at a time
        X = np.c_[np.ones(40), A[i]]
        beta = np.linalg.lstsq(X, B[i], rcond=None)[0]
        np.testing.assert_allclose(est.fbar[i], np.c_[np.ones(2), a[i]] @ beta, rtol=1e-9, atol=1e-10)
        rss = np.sum((B[i] - X @ beta) ** 2, axis=0).mean()
        np.testing.assert_allclose(est.cond_var[i], rss / (40 - 6 - 1), rtol=1e-9)
        formula = rss / (40 - 6 - 1) * (1 / 40 + 6 * (1 + 1 / 40) / (40 - 6 - 2))
        np.testing.assert_allclose(est.error_formula[i], formula, rtol=1e-9)
    assert est.n_draws == 40 and np.all(est.rank == 6)
    np.testing.assert_allclose(est.predict(a), est.fbar, rtol=1e-12)


def test_exact_when_the_observations_determine_the_teacher():
    """Fewer features than observations: f_w(obs) determines theta, so fbar = f_w."""
    rng = np.random.default_rng(2)
    draw, _, _ = linear_gaussian(rng, n_a=10, n_b=4, p=4)
    A, B = draw((30,))
    a, b = draw((5,))
    est = linear_posterior_mean(A, B, a)
    assert est.rank == 4
    np.testing.assert_allclose(est.fbar, b, rtol=1e-7, atol=1e-8)


def test_error_shrinks_with_draws_and_matches_both_estimates():
    """Gaussian teacher: the actual error of the estimate falls like the Gaussian-design
    formula (checked within 5 SE over 400 independent replications) and the split-half
    estimate measures the error of a half-sample fit."""
    rng = np.random.default_rng(3)
    draw, exact, cond_var = linear_gaussian(rng)
    n_a, R = 6, 400
    errors = []
    for M in (20, 40, 160):
        A, B = draw((R, M))
        a, _ = draw((R,))
        est = linear_posterior_mean(A, B, a)
        err = ((est.fbar - gaussian_conditional_mean(**exact, observed=a)) ** 2).mean(-1)
        m, se = mean_and_se(err)
        formula = cond_var * (1 / M + n_a * (1 + 1 / M) / (M - n_a - 2))
        assert_within_se(m, formula, se, what=f"estimation error, M={M}")
        m_cv, se_cv = mean_and_se(est.cond_var)
        assert_within_se(m_cv, cond_var, se_cv, what=f"residual variance, M={M}")
        first, _, half = split_half_posterior_mean(A, B, a)
        err_half = ((first.fbar - gaussian_conditional_mean(**exact, observed=a)) ** 2).mean(-1)
        d, se_d = mean_and_se(half - err_half)
        assert_within_se(d, 0.0, se_d, what=f"split-half error estimate, M={M}")
        errors.append(m)
    assert errors[0] > errors[1] > errors[2]


def test_wrong_observation_is_detected():
    """Conditioning on another draw's values (a plausible bug) is far from the truth."""
    rng = np.random.default_rng(4)
    draw, exact, cond_var = linear_gaussian(rng)
    A, B = draw((400, 200))
    a, b = draw((400,))
    right = linear_posterior_mean(A, B, a).fbar
    wrong = linear_posterior_mean(A, B, a[::-1]).fbar
    mse = lambda f: ((f - b) ** 2).mean(-1)  # noqa: E731
    m, se = mean_and_se(mse(right))
    assert_within_se(m, cond_var * (1 + 6 / 190), se, what="held-out error")
    with pytest.raises(AssertionError):
        m_w, se_w = mean_and_se(mse(wrong))
        assert_within_se(m_w, cond_var * (1 + 6 / 190), se_w, what="held-out error")


def test_validation_names_the_parameter():
    A = np.zeros((8, 6))
    with pytest.raises(ValueError, match="n_draws >= 9"):
        linear_posterior_mean(A, np.zeros((8, 2)), np.zeros(6))
    assert min_draws(6) == 9
    with pytest.raises(ValueError, match="target_draws"):
        linear_posterior_mean(np.zeros((20, 6)), np.zeros((19, 2)), np.zeros(6))
    with pytest.raises(ValueError, match="observed"):
        linear_posterior_mean(np.zeros((20, 6)), np.zeros((20, 2)), np.zeros(5))
    with pytest.raises(ValueError, match="obs_draws"):
        linear_posterior_mean(np.full((20, 6), np.nan), np.zeros((20, 2)), np.zeros(6))
