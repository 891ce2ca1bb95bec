"""Tests of the random-features teacher/student pipeline (claim C6)."""

import numpy as np
import pytest

from w2sg_utils.checks import assert_within_se, mean_and_se
from w2sg_utils.random_features import (
    RFTask,
    W2SResult,
    naive_w2s_repetition,
    random_features,
    simulate_w2s,
)

TASK = RFTask(d=6, noise_sd=0.5)
SIZES = dict(n=30, d_w=12, lam_w=1e-3, N=40, n_ensemble=4, n_test=50, seed=11)


def test_random_features_formula():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((7, 5))
    W = rng.standard_normal((9, 5))
    ref = np.maximum(X @ W.T / np.sqrt(5), 0) / np.sqrt(9)
    np.testing.assert_allclose(random_features(X, W).numpy(), ref, atol=1e-14)
    np.testing.assert_allclose(random_features(X, W, "tanh").numpy(),
                               np.tanh(X @ W.T / np.sqrt(5)) / 3.0, atol=1e-14)


def test_task_ybar_moments():
    rng = np.random.default_rng(1)
    task = RFTask(d=4, linear=1.0, quad=0.7)
    yb = task.ybar(rng.standard_normal((200_000, 4))).numpy()
    m, se = mean_and_se(yb)
    assert_within_se(m, 0.0, se, what="E ybar")
    v, se_v = mean_and_se(yb**2)
    assert_within_se(v, task.signal_variance(), se_v, what="E ybar^2")


@pytest.mark.parametrize("d_s,lam_s", [(10, 1e-2), (80, 1e-3), (80, 0.0), (20, 0.0)])
def test_batched_pipeline_matches_naive(d_s, lam_s):
    widths = [10, 20, 40, 80]
    lams = [0.0, 1e-3, 1e-2]
    res = simulate_w2s(TASK, d_s=widths, lam_s=lams, reps=3, **SIZES)
    j, k = widths.index(d_s), lams.index(lam_s)
    for r in range(3):
        ref = naive_w2s_repetition(TASK, r, d_s=d_s, lam_s=lam_s, **SIZES)
        np.testing.assert_allclose(res.risk_w[r], ref["risk_w"], rtol=1e-8)
        np.testing.assert_allclose(res.risk_s[r, j, k], ref["risk_s"], rtol=1e-8)
        np.testing.assert_allclose(res.misfit[r, j, k], ref["misfit"], rtol=1e-8)


def test_chunking_does_not_change_results():
    kw = dict(d_s=[10, 60], lam_s=[0.0, 1e-2], reps=4, **SIZES)
    a = simulate_w2s(TASK, chunk=1, **kw)
    b = simulate_w2s(TASK, chunk=4, **kw)
    for name in ("risk_s", "misfit", "dist_mean", "cov_sw", "eps_mean", "risk_w"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-10, atol=1e-12)


def test_summary_and_derived_quantities():
    res = simulate_w2s(TASK, d_s=[10, 60], lam_s=[1e-3, 1e-1], reps=5, **SIZES)
    assert isinstance(res, W2SResult) and res.reps == 5
    gain = res.per_rep("gain")
    np.testing.assert_allclose(gain, res.risk_w[:, None, None] - res.risk_s)
    np.testing.assert_allclose(res.per_rep("cross"), gain - res.misfit)
    s = res.summary()
    assert set(s) >= {"gain", "cross", "misfit", "dist_mean", "teacher_var"}
    assert s["gain"][0].shape == (2, 2)
    with pytest.raises(ValueError, match="name"):
        res.per_rep("nonsense")


def test_cross_decomposition_in_expectation():
    """cross = eps_mean + 2 cov_sw in expectation (the ensemble estimates are unbiased)."""
    res = simulate_w2s(TASK, d_s=[60], lam_s=[1e-3], reps=40, **SIZES)
    diff = res.per_rep("cross") - res.eps_mean - 2 * res.cov_sw
    m, se = mean_and_se(diff)
    assert_within_se(m, 0.0, se, what="cross - eps_mean - 2 cov_sw")
    # E M = E||f_s - m||^2 + E Var f_w - 2 Cov(f_s, f_w)
    diff2 = res.misfit - (res.dist_mean + res.per_rep("teacher_var") - 2 * res.cov_sw)
    m2, se2 = mean_and_se(diff2)
    assert_within_se(m2, 0.0, se2, what="misfit decomposition")


def test_validation_names_parameter():
    kw = dict(SIZES, d_s=[10], lam_s=[0.1], reps=2)
    with pytest.raises(ValueError, match="reps"):
        simulate_w2s(TASK, **{**kw, "reps": 1})
    with pytest.raises(ValueError, match="d_s"):
        simulate_w2s(TASK, **{**kw, "d_s": [0]})
    with pytest.raises(ValueError, match="lam_s"):
        simulate_w2s(TASK, **{**kw, "lam_s": [-1.0]})
    with pytest.raises(ValueError, match="lam_w"):
        simulate_w2s(TASK, **{**kw, "lam_w": -1.0})
    with pytest.raises(ValueError, match="n_ensemble"):
        simulate_w2s(TASK, **{**kw, "n_ensemble": 1})
    with pytest.raises(ValueError, match="activation"):
        simulate_w2s(TASK, **kw, activation="gelu")
    with pytest.raises(ValueError, match="task"):
        simulate_w2s("task", **kw)
    with pytest.raises(ValueError, match="d"):
        RFTask(d=1)
    with pytest.raises(ValueError, match="noise_sd"):
        RFTask(noise_sd=-1.0)
    with pytest.raises(ValueError, match="W"):
        random_features(np.ones((2, 3)), np.ones((4, 5)))


def test_ensemble_estimates_match_plain_formulas():
    """``teacher_var``, ``dist_mean``, ``cov_sw``, ``eps_mean`` and ``mean_se`` of one
    setting against numpy written from lem-rf-eps-split: ``m`` the mean of the ``K``
    ensemble teachers, ``v = E_x s^2(x)`` with ``ddof = 1``, each distance corrected by
    ``- v / K``."""
    from w2sg_utils.random_features import _draw_repetition

    d_s, lam_s, K = 20, 1e-2, SIZES["n_ensemble"]
    res = simulate_w2s(TASK, d_s=[10, d_s], lam_s=[0.0, lam_s], reps=3, **SIZES)
    kw = {k: v for k, v in SIZES.items() if k not in ("seed", "n_ensemble")}

    def feats(X, W):
        return np.maximum(X @ W.T / np.sqrt(TASK.d), 0.0) / np.sqrt(W.shape[0])

    def fit(Phi, y, lam):
        return np.linalg.solve(Phi.T @ Phi + len(y) * lam * np.eye(Phi.shape[1]), Phi.T @ y)

    for r in range(3):
        dr = _draw_repetition(TASK, np.random.default_rng([SIZES["seed"], r]), kw["n"], kw["d_w"],
                              kw["N"], d_s, K, kw["n_test"])
        f = []
        for k in range(K + 1):
            y = TASK.ybar(dr["X_n"][k]).numpy() + TASK.noise_sd * dr["xi_n"][k]
            beta = fit(feats(dr["X_n"][k], dr["W_w"][k]), y, kw["lam_w"])
            f.append(feats(dr["X_test"], dr["W_w"][k]) @ beta)
        f_w, ens = f[0], np.array(f[1:])
        labels = feats(dr["X_N"], dr["W_w"][0]) @ fit(
            feats(dr["X_n"][0], dr["W_w"][0]),
            TASK.ybar(dr["X_n"][0]).numpy() + TASK.noise_sd * dr["xi_n"][0], kw["lam_w"])
        f_s = feats(dr["X_test"], dr["W_s"]) @ fit(feats(dr["X_N"], dr["W_s"]), labels, lam_s)
        yt = TASK.ybar(dr["X_test"]).numpy()
        m = ens.mean(0)
        v = np.mean(np.sum((ens - m) ** 2, axis=0) / (K - 1))
        ref = {"dist_mean": np.mean((f_s - m) ** 2) - v / K,
               "cov_sw": np.mean((f_s - m) * (f_w - m)) - v / K,
               "eps_mean": 2 * np.mean((yt - f_s) * (f_s - m))}
        np.testing.assert_allclose(res.teacher_var[r], v, rtol=1e-8)
        for name, val in ref.items():
            np.testing.assert_allclose(getattr(res, name)[r, 1, 1], val, rtol=1e-7, atol=1e-10,
                                       err_msg=name)
    for name in ("misfit", "gain", "teacher_var"):
        x = res.per_rep(name)
        mean, se = res.mean_se(name)
        np.testing.assert_allclose(mean, x.sum(0) / 3)
        np.testing.assert_allclose(se, np.sqrt(((x - x.sum(0) / 3) ** 2).sum(0) / 2 / 3))
