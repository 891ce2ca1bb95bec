"""The random-features posterior-mean pipeline (claim C6) against a plain reference."""

from dataclasses import fields

import numpy as np
import pytest

from w2sg_utils.random_features import RFTask
from w2sg_utils.rf_posterior import PosteriorW2S, check_posterior_identities, posterior_w2s

from .references import plain_rf_teacher_values, relu_features

TASK = RFTask(d=4, noise_sd=0.5)
SIZES = dict(n=12, d_w=6, lam_w=1e-3, N=10, d_s=20, n_draws=100, n_test=40, seed=5)


def plain_repetition(task, r, *, n, d_w, lam_w, N, d_s, lam_s, n_draws, n_test, seed):
    """One repetition written plainly: numpy features, one solve per teacher, OLS with an
    intercept for the posterior mean. Returns the functions on the test inputs."""
    rng = np.random.default_rng([seed, r])
    d = task.d
    X_s, X_t = rng.standard_normal((N, d)), rng.standard_normal((n_test, d))
    W_s = rng.standard_normal((2, d_s, d))
    K = 1 + n_draws  # below 256: one chunk, so the stream order is W, X, noise
    W, X, xi = (rng.standard_normal((K, d_w, d)), rng.standard_normal((K, n, d)),
                rng.standard_normal((K, n)))

    feats = relu_features
    F = plain_rf_teacher_values(task, np.r_[X_s, X_t], W, X, xi, lam_w)
    a, f_w = F[0, :N], F[0, N:]
    f_s = []
    for V in W_s:
        P = feats(X_s, V)
        beta = P.T @ np.linalg.solve(P @ P.T + N * lam_s * np.eye(N), a)
        f_s.append(feats(X_t, V) @ beta)
    h = n_draws // 2

    def ols(rows):
        Z = np.c_[np.ones(h), F[rows, :N]]
        return np.linalg.lstsq(Z, F[rows, N:], rcond=None)[0]

    c1, c2 = ols(slice(1, 1 + h)), ols(slice(1 + h, 1 + 2 * h))
    resid = F[1:1 + h, N:] - np.c_[np.ones(h), F[1:1 + h, :N]] @ c1
    cond_var = np.mean(np.sum(resid**2, axis=0)) / (h - N - 1)
    L1, L2 = np.r_[1.0, a] @ c1, np.r_[1.0, a] @ c2
    A_h, F_h = F[1 + h:1 + 2 * h, :N], F[1 + h:1 + 2 * h, N:]
    L_h = np.c_[np.ones(h), A_h] @ c1
    # one student per held-out teacher: the first feature matrix, that teacher's labels
    P = feats(X_s, W_s[0])
    S_h = np.array([feats(X_t, W_s[0]) @ (P.T @ np.linalg.solve(P @ P.T + N * lam_s * np.eye(N),
                                                                 A_h[j])) for j in range(h)])
    return dict(ybar=task.ybar(X_t).numpy(), f_w=f_w, f_s=f_s[0], f_s2=f_s[1], L1=L1, L2=L2,
                held=L_h - F_h, mean=F[1:1 + h, N:].mean(0), cond_var=cond_var,
                error_formula=cond_var * (1 / h + N * (1 + 1 / h) / (h - N - 2)),
                F_h=F_h, L_h=L_h, S_h=S_h)


def pooled(p, noise=0.25):
    """The held-out (teacher, student) pairs of one repetition, written plainly."""
    ybar, F_h, S_h, L_h, m = p["ybar"], p["F_h"], p["S_h"], p["L_h"], p["mean"]
    L_o = L_h[list(range(1, len(L_h))) + [0]]  # the next teacher's labels

    def eps(centre):
        return np.mean([2 * np.mean((ybar - S_h[j]) * (S_h[j] - centre[j]))
                        for j in range(len(S_h))])

    f_s, f_w = p["f_s"], p["f_w"]
    return dict(pool_risk_w=noise + np.mean((ybar - F_h) ** 2),
                pool_risk_s=noise + np.mean((ybar - S_h) ** 2),
                pool_misfit=np.mean((S_h - F_h) ** 2), pool_eps=eps(L_h),
                pool_eps_mean=eps(np.broadcast_to(m, S_h.shape)), pool_eps_other=eps(L_o),
                dist_mean=np.mean((f_s - m) ** 2), spread_mean=np.mean((f_w - m) ** 2),
                heldout_mean=np.mean((F_h - m) ** 2), dist_other=np.mean((f_s - L_h[0]) ** 2),
                spread_other=np.mean((f_w - L_h[0]) ** 2),
                heldout_other=np.mean((F_h - L_o) ** 2))


def measure(reps, lam_s, bug=None):
    """Per-repetition quantities from the plain reference, optionally with a planted bug."""
    rows = []
    for r in range(reps):
        p = plain_repetition(TASK, r, lam_s=lam_s, **SIZES)
        ybar, f_s, f_w, L1 = p["ybar"], p["f_s"], p["f_w"], p["L1"]
        if bug == "posterior is the teacher":
            L1 = f_w
        if bug == "posterior is the unconditional mean":
            L1 = p["mean"]
        eps = 2 * np.mean((ybar - f_s) * (f_s - L1))
        if bug == "eps: dropped factor 2":
            eps = eps / 2
        if bug == "eps: sign error":
            eps = -eps
        rows.append(dict(
            risk_w=0.25 + np.mean((ybar - f_w) ** 2), risk_s=0.25 + np.mean((ybar - f_s) ** 2),
            misfit=np.mean((f_s - f_w) ** 2), eps=eps, dist=np.mean((f_s - L1) ** 2),
            spread=np.mean((f_w - L1) ** 2), heldout=np.mean(p["held"] ** 2),
            est_error=np.mean((L1 - p["L2"]) ** 2) / 2 if bug is None else
            np.mean((p["L1"] - p["L2"]) ** 2) / 2,
            error_formula=p["error_formula"], cond_var=p["cond_var"],
            student_var=np.mean((f_s - p["f_s2"]) ** 2) / 2, **pooled(p)))
        pool = rows[-1]
        # a planted bug in eps or in the posterior mean is made in every term it enters
        if bug == "posterior is the teacher":
            pool["pool_eps"] = np.mean([2 * np.mean((ybar - s_j) * (s_j - f_j))
                                        for s_j, f_j in zip(p["S_h"], p["F_h"])])
        if bug == "posterior is the unconditional mean":
            pool["pool_eps"] = pool["pool_eps_mean"]
        if bug == "eps: dropped factor 2":
            pool["pool_eps"] = pool["pool_eps"] / 2
        if bug == "eps: sign error":
            pool["pool_eps"] = -pool["pool_eps"]
    return PosteriorW2S(**{k: np.array([row[k] for row in rows]) for k in rows[0]})


def test_batched_pipeline_matches_plain_reference_per_repetition():
    res = posterior_w2s(TASK, lam_s=1e-2, reps=3, **SIZES)
    ref = measure(3, 1e-2)
    for name in [f.name for f in fields(PosteriorW2S)]:
        np.testing.assert_allclose(getattr(res, name), getattr(ref, name), rtol=1e-7,
                                   atol=1e-10, err_msg=name)


def test_identities_hold_and_the_draw_count_is_validated():
    res = posterior_w2s(TASK, lam_s=1e-2, reps=40, **SIZES)
    check_posterior_identities(res, z=6.0)
    with pytest.raises(ValueError, match="n_draws"):
        posterior_w2s(TASK, lam_s=1e-2, reps=2, **{**SIZES, "n_draws": 2 * SIZES["N"] + 5})
    with pytest.raises(ValueError, match="lam_s"):
        posterior_w2s(TASK, lam_s=-1.0, reps=2, **SIZES)


def test_check_posterior_identities_formulas_on_exact_numbers():
    """The checker on synthetic per-repetition numbers that satisfy lem-rf-blp's identities
    exactly, with an estimation error far above the noise: the C4 correction is
    ``2 * est_error`` (one per term), so ``misfit = dist + spread - 2 est_error`` passes
    and a correction of one ``est_error`` fails; C3 is checked on the pooled terms."""
    rng = np.random.default_rng(5)
    r = 40
    dist, spread = rng.uniform(1, 2, r), rng.uniform(1, 2, r)
    est = 0.3 + 0.01 * rng.standard_normal(r)
    misfit = dist + spread - 2 * est
    risk_s, eps = rng.uniform(1, 2, r), 0.1 * rng.standard_normal(r)
    p_risk_s, p_misfit = rng.uniform(1, 2, r), rng.uniform(0.2, 0.4, r)
    p_eps = -0.1 + 0.01 * rng.standard_normal(r)
    zero = np.zeros(r)
    res = PosteriorW2S(risk_w=risk_s + misfit + eps, risk_s=risk_s, misfit=misfit, eps=eps,
                       dist=dist, spread=spread, heldout=spread.copy(), est_error=est,
                       error_formula=est.copy(), cond_var=np.ones(r),
                       student_var=dist - est - 0.05, pool_risk_w=p_risk_s + p_misfit + p_eps,
                       pool_risk_s=p_risk_s, pool_misfit=p_misfit, pool_eps=p_eps,
                       pool_eps_mean=zero, pool_eps_other=zero, dist_mean=zero,
                       spread_mean=zero, heldout_mean=zero, dist_other=zero, spread_other=zero,
                       heldout_other=zero)
    check_posterior_identities(res, z=5.0)
    # the floor dist >= student_var is Pythagoras, not checked: a violation passes
    check_posterior_identities(res.replace(student_var=dist - est + 0.2), z=5.0)
    for wrong in (res.replace(misfit=dist + spread - est, risk_w=risk_s + dist + spread - est + eps),
                  res.replace(heldout=spread + 0.2),
                  res.replace(pool_eps=p_eps + 0.05)):
        with pytest.raises(AssertionError):
            check_posterior_identities(wrong, z=5.0)
