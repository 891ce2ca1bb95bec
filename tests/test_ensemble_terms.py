"""Tests for w2sg_utils.ensemble_terms against plain references (Chapter 6; claims C1-C4, C7)."""

import numpy as np
import pytest
from scipy import integrate, stats
from scipy.special import expit

from w2sg_utils import ensemble_terms as T
from w2sg_utils.decompositions import bias_variance_decomposition
from w2sg_utils.divergences import get_divergence


@pytest.fixture
def draws():
    rng = np.random.default_rng(0)
    K, n = 6, 40
    mu = rng.normal(0, 1.5, n)
    z_w = mu + rng.normal(0, 0.8, (K, n))
    z_s = 0.7 * z_w + rng.normal(0, 0.5, (K, n)) + 0.3  # follows its own teacher
    y = (rng.random(n) < expit(mu)).astype(float)
    return y, z_w, z_s


def test_pointwise_functions_match_probability_formulas(draws):
    y, z_w, z_s = draws
    p_w, p_s = expit(z_w), expit(z_s)
    np.testing.assert_allclose(T.binary_ce(y, z_w), -(y * np.log(p_w) + (1 - y) * np.log(1 - p_w)))
    kl = get_divergence("binary_kl").divergence(p_s[..., None], p_w[..., None])
    np.testing.assert_allclose(T.binary_kl_logits(z_s, z_w), kl, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(T.binary_entropy(z_s), -(p_s * np.log(p_s) + (1 - p_s) * np.log(1 - p_s)))


def test_misfit_terms_against_loops(draws):
    y, z_w, z_s = draws
    t = T.misfit_terms(y, z_w, z_s)
    K, n = z_w.shape
    for k in range(K):
        others = [z_w[j] for j in range(K) if j != k]
        zbar = sum(others) / len(others)
        for i in range(0, n, 7):
            ps, pw = expit(z_s[k, i]), expit(z_w[k, i])
            assert t["eps"][k, i] == pytest.approx((y[i] - ps) * (z_s[k, i] - zbar[i]), rel=1e-12)
            assert t["rce"][k, i] == pytest.approx(-(ps * np.log(pw) + (1 - ps) * np.log(1 - pw)))
            assert t["min_entropy_w"][k, i] == pytest.approx(-np.log(max(pw, 1 - pw)))
    np.testing.assert_allclose(t["gain"], t["misfit"] + t["cross"], atol=1e-12)  # claim C2
    # an explicit proxy replaces the leave-one-out one
    t0 = T.misfit_terms(y, z_w, z_s, proxy=np.zeros(n))
    np.testing.assert_allclose(t0["eps"], (y - expit(z_s)) * z_s)


def test_cross_minus_loo_eps_is_the_coupling_exactly(draws):
    """Algebra (not evidence): mean_k cross - mean_k eps_loo = Cov_k(p_s, z_w), ddof 1."""
    y, z_w, z_s = draws
    t = T.misfit_terms(y, z_w, z_s)
    c = T.coupling(z_w, z_s)
    ref = np.array([np.cov(expit(z_s[:, i]), z_w[:, i])[0, 1] for i in range(z_w.shape[1])])
    np.testing.assert_allclose(c, ref, rtol=1e-10)
    np.testing.assert_allclose(t["cross"].mean(0) - t["eps"].mean(0), c, atol=1e-12)
    assert c.mean() > 0  # this student follows its own teacher


def test_group_loo_logits(draws):
    _, z_w, _ = draws
    g = T.group_loo_logits(z_w, 3)
    assert g[0, 5] == pytest.approx((z_w[1, 5] + z_w[2, 5]) / 2)
    assert g[4, 1] == pytest.approx((z_w[3, 1] + z_w[5, 1]) / 2)
    np.testing.assert_allclose(T.group_loo_logits(z_w, 6), T.loo_logits(z_w))
    for bad in (4, 1, 7, 2.0, True):
        with pytest.raises(ValueError, match="K"):
            T.group_loo_logits(z_w, bad)


def test_bias_variance_matches_the_package_decomposition(draws):
    y, z_w, _ = draws
    bv = T.teacher_bias_variance(y, z_w)
    ref = bias_variance_decomposition("binary_kl", expit(z_w)[..., None], y[None, :, None])
    np.testing.assert_allclose(bv["variance"], ref.variance, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(bv["noise_bias"], ref.bias, rtol=1e-8)  # noise is 0 for hard y
    np.testing.assert_allclose(bv["expected_loss"], ref.expected_loss, rtol=1e-8)
    for nb, v in [("noise_bias", "variance"), ("noise_bias_corrected", "variance_corrected")]:
        np.testing.assert_allclose(bv[nb] + bv[v], bv["expected_loss"], rtol=1e-12)
    K = z_w.shape[0]
    np.testing.assert_allclose(bv["variance_corrected"], bv["variance"] * K / (K - 1))
    np.testing.assert_allclose(bv["proxy_mse"], z_w.var(0, ddof=1) / K)
    # groups: the average of the per-group values
    g2 = T.teacher_bias_variance(y, z_w, K=2)
    per = [T.teacher_bias_variance(y, z_w[j:j + 2]) for j in (0, 2, 4)]
    for key in g2:
        np.testing.assert_allclose(g2[key], np.mean([p[key] for p in per], axis=0))


def test_finite_k_correction_removes_the_first_order_bias():
    """z ~ N(mu, s^2): V = E A(z) - A(mu) by quadrature; the plug-in from K draws is
    about (1 - 1/K) V, the corrected one V up to fourth-order terms (2% here)."""
    mu, s = 0.8, 0.4
    A = T.log_partition
    V = integrate.quad(lambda u: A(mu + s * u) * stats.norm.pdf(u), -12, 12)[0] - A(mu)
    rng = np.random.default_rng(1)
    for K in (2, 4, 8):
        z = mu + s * rng.normal(size=(K, 100_000))
        bv = T.teacher_bias_variance(np.zeros(100_000), z)
        se_p = bv["variance"].std(ddof=1) / np.sqrt(100_000)
        se_c = bv["variance_corrected"].std(ddof=1) / np.sqrt(100_000)
        assert abs(bv["variance"].mean() - V * (1 - 1 / K)) <= 0.02 * V + 5 * se_p
        assert abs(bv["variance_corrected"].mean() - V) <= 0.02 * V + 5 * se_c
        assert abs(bv["proxy_mse"].mean() - s ** 2 / K) <= 5 * bv["proxy_mse"].std(ddof=1) / np.sqrt(100_000)


def test_proxy_distance_is_twice_the_proxy_error():
    rng = np.random.default_rng(2)
    z = rng.normal(0.5, 0.7, (8, 50_000))
    for K in (2, 4):
        d = T.proxy_distance(z, K)
        assert abs(d.mean() - 2 * 0.49 / K) <= 5 * d.std(ddof=1) / np.sqrt(d.size)
    with pytest.raises(ValueError, match="two groups"):
        T.proxy_distance(z, 8)


def test_loo_eps_is_unbiased_and_in_sample_eps_is_not():
    """Students that copy part of their teacher's noise: eps with the leave-one-out proxy
    has the same mean at K = 2 and K = 8; the in-sample proxy is off by C / K."""
    rng = np.random.default_rng(3)
    R, K, n = 400, 8, 50
    mu = rng.normal(0, 1, n)
    y = (rng.random(n) < expit(mu)).astype(float)
    e2, e8, ein, cs = [], [], [], []
    for _ in range(R):
        z_w = mu + rng.normal(0, 1.0, (K, n))
        z_s = 0.8 * z_w + 0.2 * mu
        e2.append(T.misfit_terms(y, z_w, z_s, T.group_loo_logits(z_w, 2))["eps"].mean())
        e8.append(T.misfit_terms(y, z_w, z_s)["eps"].mean())
        ein.append(T.misfit_terms(y, z_w, z_s, z_w.mean(0))["eps"].mean())
        cs.append(T.coupling(z_w, z_s).mean())
    d = np.array(e2) - np.array(e8)
    assert abs(d.mean()) <= 5 * d.std(ddof=1) / np.sqrt(R)
    b = np.array(ein) - np.array(e8)
    assert abs(b.mean() - np.mean(cs) / K) <= 5 * b.std(ddof=1) / np.sqrt(R)
    assert b.mean() > 10 * b.std(ddof=1) / np.sqrt(R)


@pytest.mark.parametrize("call, match", [
    (lambda: T.misfit_terms(np.zeros(3), np.zeros((1, 3)), np.zeros((1, 3))), "z_w"),
    (lambda: T.misfit_terms(np.zeros(3), np.zeros((2, 3)), np.zeros((2, 4))), "z_s"),
    (lambda: T.misfit_terms(np.full(3, 2.0), np.zeros((2, 3)), np.zeros((2, 3))), "y"),
    (lambda: T.coupling(np.array([[0.0, np.nan]] * 2), np.zeros((2, 2))), "z_w"),
    (lambda: T.teacher_bias_variance(np.zeros(2), np.zeros((4, 3))), "y"),
])
def test_bad_input_names_the_parameter(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_doubling_units_against_loops_and_in_expectation(draws):
    y, z_w, z_s = draws  # K = 6 members: units of 2 K = 6 with K = 3
    u = T.doubling_units(y, z_w, z_s, K=3)
    half = [np.mean([z_w[j] for j in range(3) if j != k], axis=0) for k in range(3)]
    half += [np.mean([z_w[j] for j in range(3, 6) if j != k], axis=0) for k in range(3, 6)]
    whole = [np.mean([z_w[j] for j in range(6) if j != k], axis=0) for k in range(6)]
    ps = expit(z_s)
    e = np.mean([(y - ps[k]) * (z_s[k] - half[k]) - (y - ps[k]) * (z_s[k] - whole[k]) for k in range(6)])
    assert u["eps_diff"][0] == pytest.approx(e)
    d = (z_w[:3].mean(0) - z_w[3:].mean(0)) ** 2 - 2 * z_w.var(0, ddof=1) / 3
    assert u["distance_excess"][0] == pytest.approx(d.mean())
    # expectation zero for independent teachers and students that follow their teacher
    rng = np.random.default_rng(4)
    mu = rng.normal(0, 1, 30)
    yy = (rng.random(30) < expit(mu)).astype(float)
    vals = []
    for _ in range(300):
        zw = mu + rng.normal(0, 1, (8, 30))
        vals.append(T.doubling_units(yy, zw, 0.8 * zw + 0.2 * mu, K=2))
    for key in ("eps_diff", "distance_excess"):
        v = np.concatenate([x[key] for x in vals])
        assert abs(v.mean()) <= 5 * v.std(ddof=1) / np.sqrt(len(v)), key
    with pytest.raises(ValueError, match="K"):
        T.doubling_units(y, z_w, z_s, K=2)


def _units(rng, loo, n_seeds=3, M=16, n=2000):
    """Chapter 6's finite-K check on simulated seeds: (mean, se) of eps_m(K=2) - eps_m(K=4).

    Its default sizes (3 seeds, 16 teachers, 2000 test pairs); students less confident
    than their teachers, as on the real data (student entropy near log 2)."""
    diffs = []
    for _ in range(n_seeds):
        mu = rng.normal(0, 1, n)
        y = (rng.random(n) < expit(mu)).astype(float)
        z_w = mu + rng.normal(0, 0.8, (M, n))
        z_s = 0.5 * z_w
        for u in range(M // 4):
            zw, zs = z_w[4 * u: 4 * u + 4], z_s[4 * u: 4 * u + 4]
            half = T.misfit_terms(y, zw, zs, loo(zw, 2))["eps"].mean()
            whole = T.misfit_terms(y, zw, zs, loo(zw, 4))["eps"].mean()
            diffs.append(half - whole)
    d = np.array(diffs)
    return d.mean(), d.std(ddof=1) / np.sqrt(len(d))


@pytest.mark.parametrize("bug", [None, "divide by K", "in probabilities"])
def test_finite_k_check_fails_on_planted_bugs(bug):
    """The chapter's check (12 units, the z = 5 Student quantile) passes with the right
    proxy and fails with a proxy divided by K instead of K - 1, or averaged in
    probabilities instead of logits (the arithmetic mean is the wrong centre for KL)."""
    from w2sg_utils.checks import assert_within_se, z_for_samples

    def loo(zw, K):
        if bug == "divide by K":
            g = zw.reshape(-1, K, zw.shape[1])
            return ((g.sum(axis=1, keepdims=True) - g) / K).reshape(zw.shape)
        if bug == "in probabilities":
            g = expit(zw).reshape(-1, K, zw.shape[1])
            p = ((g.sum(axis=1, keepdims=True) - g) / (K - 1)).reshape(zw.shape)
            return np.log(p / (1 - p))
        return T.group_loo_logits(zw, K)

    m, se = _units(np.random.default_rng(5), loo)
    if bug is None:
        assert_within_se(m, 0.0, se, z=z_for_samples(12))
    else:
        with pytest.raises(AssertionError):
            assert_within_se(m, 0.0, se, z=z_for_samples(12))
