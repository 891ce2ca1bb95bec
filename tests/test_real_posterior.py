"""The posterior-mean teacher from draws and the C3/C4 checks (w2sg_utils.real_posterior)."""

import numpy as np
import pytest

from w2sg_utils import real_posterior as RP
from w2sg_utils.ensemble_terms import binary_ce
from w2sg_utils.posterior_mean import gaussian_conditional_mean, linear_posterior_mean


def gaussian_teacher(M=900, d=30, n_s=12, n=40, seed=0):
    """A linear-Gaussian teacher ``z = w . x``, ``w ~ N(mu, diag(s^2))``: exact answers."""
    rng = np.random.default_rng(seed)
    Xs, Xt = rng.normal(size=(n_s, d)), rng.normal(size=(n, d))
    mu, s = rng.normal(size=d) * 0.3, np.linspace(0.6, 0.05, d)
    W = mu + rng.normal(size=(M, d)) * s
    cov = np.diag(s**2)
    exact = {"mean_obs": Xs @ mu, "mean_target": Xt @ mu, "cov_obs": Xs @ cov @ Xs.T,
             "cov_target_obs": Xt @ cov @ Xs.T}
    return W @ Xs.T, W @ Xt.T, exact | {"Kbb": Xt @ cov @ Xt.T}


def test_full_rank_crossfit_matches_exact_gaussian_conditioning():
    A, B, exact = gaussian_teacher()
    post = RP.crossfit_posterior_mean(A, B, rank=A.shape[1], n_folds=6)
    args = {k: v for k, v in exact.items() if k != "Kbb"}
    truth = gaussian_conditional_mean(**args, observed=A)
    err = ((post.zbar - truth) ** 2).mean()
    # the Gaussian-design error formula predicts the squared error; 3x allows sampling
    assert err < 3 * post.error.mean()
    assert err < 0.05 * ((B - truth) ** 2).mean()
    # residual variance = the exact conditional variance, averaged over targets
    Kba, Kaa = exact["cov_target_obs"], exact["cov_obs"]
    Kbb = exact["Kbb"]
    true_cv = np.mean(np.diag(Kbb - Kba @ np.linalg.pinv(Kaa) @ Kba.T))
    assert post.cond_var.mean() == pytest.approx(true_cv, rel=0.15)


def test_crossfit_uses_only_other_folds():
    A, B, _ = gaussian_teacher(M=200, n_s=5)
    post = RP.crossfit_posterior_mean(A, B, rank=3, n_folds=4)
    held = np.arange(200) < 50
    mu = A[~held].mean(0)
    axes = np.linalg.svd(A[~held] - mu, full_matrices=False)[2][:3].T
    est = linear_posterior_mean((A[~held] - mu) @ axes, B[~held], (A[held] - mu) @ axes)
    np.testing.assert_allclose(post.zbar[held], est.fbar, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(post.mean[held], B[~held].mean(0)[None].repeat(50, 0))
    np.testing.assert_allclose(post.zbar_other[held],
                               est.predict(np.roll((A[held] - mu) @ axes, 1, axis=0)))
    # changing a held-out draw's own targets does not move its estimate
    B2 = B.copy()
    B2[0] += 5.0
    post2 = RP.crossfit_posterior_mean(A, B2, rank=3, n_folds=4)
    np.testing.assert_allclose(post2.zbar[0], post.zbar[0])


def test_posterior_terms_against_plain_formulas():
    rng = np.random.default_rng(3)
    K, n = 4, 7
    y = rng.integers(0, 2, n).astype(float)
    zw, zs, zb = (rng.normal(size=(K, n)) for _ in range(3))
    T = RP.posterior_terms(y, zw, zs, zb)
    pw, ps, pb = (1 / (1 + np.exp(-z)) for z in (zw, zs, zb))
    ce = lambda p: -(y * np.log(p) + (1 - y) * np.log(1 - p))  # noqa: E731
    kl = lambda p, q: p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q))  # noqa: E731
    logit = lambda p: np.log(p / (1 - p))  # noqa: E731
    np.testing.assert_allclose(T["gain"], ce(pw) - ce(ps), rtol=1e-9)
    np.testing.assert_allclose(T["misfit"], kl(ps, pw), rtol=1e-9)
    np.testing.assert_allclose(T["eps"], (y - ps) * (logit(ps) - logit(pb)), rtol=1e-9)
    np.testing.assert_allclose(T["distance"], kl(ps, pb), rtol=1e-9)
    np.testing.assert_allclose(T["cond_var"], kl(pb, pw), rtol=1e-9)
    # the gain identity per draw: gain - misfit - eps = (y - p_s)(zbar - z_w)
    np.testing.assert_allclose(T["gain"] - T["misfit"] - T["eps"], (y - ps) * (zb - zw),
                               atol=1e-12)
    assert np.allclose(binary_ce(y, zw), ce(pw))


def test_draw_z_and_bootstrap_against_plain_formulas():
    rng = np.random.default_rng(4)
    V = rng.normal(size=(30, 50)) + rng.normal(size=(30, 1)) + 0.2
    rows = V.mean(1)
    assert RP.draw_z(V) == pytest.approx(rows.mean() / (rows.std(ddof=1) / np.sqrt(30)))
    # the bootstrap's resamples, recomputed one by one with draw_z
    z_crit, n_boot, seed = 2.0, 50, 7
    gen = np.random.default_rng([seed, 0xB007])
    counts = gen.multinomial(30, np.full(30, 1 / 30), size=n_boot)
    plain = np.mean([abs(RP.draw_z(V[np.repeat(np.arange(30), c)])) > z_crit
                     for c in counts])
    assert RP.bootstrap_rejection(V, z_crit, n_boot, seed) == pytest.approx(plain)


def test_identity_check_rejects_a_shift_and_keeps_the_null():
    rng = np.random.default_rng(5)
    lhs = rng.normal(size=(60, 80)) + rng.normal(size=(60, 1))
    rhs = lhs + rng.normal(size=(60, 80)) * 0.1
    chk = RP.identity_check(lhs, rhs, {"shift": rhs + 0.3, "half": rhs - 0.3},
                            z_crit=3.0, n_boot=100)
    assert chk.passed and chk.power["shift"] > 0.95 and chk.power["half"] > 0.95
    weak = RP.identity_check(lhs, rhs, {"tiny": rhs + 1e-4}, z_crit=3.0, n_boot=100)
    assert weak.power["tiny"] < 0.2


@pytest.mark.parametrize("bad", [{"rank": 0}, {"rank": 10**6}, {"n_folds": 1}])
def test_bad_parameters_fail_early(bad):
    A, B, _ = gaussian_teacher(M=100, n_s=5)
    kwargs = {"rank": 3, "n_folds": 4} | bad
    with pytest.raises(ValueError, match=next(iter(bad))):
        RP.crossfit_posterior_mean(A, B, **kwargs)


def test_split_half_error_agrees_with_the_gaussian_formula():
    """Model free against the formula, on an exactly Gaussian teacher."""
    A, B, _ = gaussian_teacher(M=1200, n_s=12)
    post = RP.crossfit_posterior_mean(A, B, rank=12, n_folds=6)
    ratio = post.split_half.mean() / post.half_formula.mean()
    # six folds of 200 held-out draws x 40 targets: the ratio is within 25%
    assert 0.75 < ratio < 1.25
    small = RP.crossfit_posterior_mean(A[:30], B[:30], rank=10, n_folds=3)
    assert np.isnan(small.split_half).all()


def test_total_variance_and_alternatives_against_plain_formulas():
    """``total_var`` is the across-draw variance with ``M - 1``, averaged over targets;
    each wrong right-hand side of C3 is ``misfit + eps'`` with ``eps'`` as documented."""
    A, B, _ = gaussian_teacher(M=200, n_s=5)
    post = RP.crossfit_posterior_mean(A, B, rank=3, n_folds=4)
    M, n = B.shape
    plain = np.mean(((B - B.mean(0)) ** 2).sum(0) / (M - 1))
    assert post.total_var == pytest.approx(plain, rel=1e-12)
    rng = np.random.default_rng(6)
    K = 50
    y = rng.integers(0, 2, n).astype(float)
    z_s = B[:K] + rng.normal(size=(K, n))
    T = RP.posterior_terms(y, B[:K], z_s, post.zbar[:K])
    alts = RP.c3_alternatives(y, z_s, T, post)
    r = y - 1 / (1 + np.exp(-z_s))
    m = T["misfit"]
    ref = {"eps = 0": m, "eps / 2": m + r * (z_s - post.zbar[:K]) / 2,
           "-eps": m - r * (z_s - post.zbar[:K]),
           "unconditional mean": m + r * (z_s - post.mean[:K]),
           "another teacher": m + r * (z_s - post.zbar_other[:K])}
    assert alts.keys() == ref.keys()
    for name, value in ref.items():
        np.testing.assert_allclose(alts[name], value, rtol=1e-12, atol=1e-12, err_msg=name)


def test_bootstrap_with_few_draws_uses_the_n_minus_1_variance():
    """With K = 4 draws the ``n - 1`` and ``n`` standard errors differ by 15%: the
    rejection rate must equal the plain one (``draw_z`` on each resample) exactly."""
    rng = np.random.default_rng(11)
    V = rng.normal(size=(4, 20)) + rng.normal(size=(4, 1)) + 0.8
    z_crit, n_boot, seed = 2.0, 400, 3
    gen = np.random.default_rng([seed, 0xB007])
    counts = gen.multinomial(4, np.full(4, 1 / 4), size=n_boot)
    plain = np.mean([abs(RP.draw_z(V[np.repeat(np.arange(4), c)])) > z_crit for c in counts])
    assert 0.05 < plain < 0.95
    assert RP.bootstrap_rejection(V, z_crit, n_boot, seed) == pytest.approx(plain)


def test_identity_check_statistics_against_plain_formulas():
    """``estimate``, ``se`` (over draws, ``n - 1``) and ``z`` of the null; ``passed`` is
    two-sided: a shift of either sign fails."""
    rng = np.random.default_rng(12)
    lhs = rng.normal(size=(30, 40)) + rng.normal(size=(30, 1))
    rhs = lhs + 0.1 * rng.normal(size=(30, 40))
    chk = RP.identity_check(lhs, rhs, {"a": rhs + 1.0}, z_crit=3.0, n_boot=20)
    rows = (lhs - rhs).mean(1)
    se = np.sqrt(np.sum((rows - rows.mean()) ** 2) / 29 / 30)
    assert chk.estimate == pytest.approx(rows.mean(), rel=1e-12)
    assert chk.se == pytest.approx(se, rel=1e-12)
    assert chk.z == pytest.approx(rows.mean() / se, rel=1e-12)
    for shift in (0.5, -0.5):
        moved = RP.identity_check(lhs, rhs + shift, {"a": rhs}, z_crit=3.0, n_boot=20)
        assert abs(moved.z) > 3.0 and not moved.passed, shift
