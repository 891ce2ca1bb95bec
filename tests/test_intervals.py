"""Tests for w2sg_utils.intervals: two-level intervals against plain references (claim C9)."""

import numpy as np
import pytest
from scipy import stats

from w2sg_utils import intervals as I


def _plain_parts(x, y=None):
    """A / n, B / S and E / (n S) (covariance of x and y) from the textbook sums, by loops."""
    y = x if y is None else y
    S, n = len(x), len(x[0])
    gx = sum(sum(r) for r in x) / (S * n)
    gy = sum(sum(r) for r in y) / (S * n)
    px = [sum(x[s][i] for s in range(S)) / S for i in range(n)]
    py = [sum(y[s][i] for s in range(S)) / S for i in range(n)]
    sx = [sum(x[s]) / n for s in range(S)]
    sy = [sum(y[s]) / n for s in range(S)]
    A = sum((px[i] - gx) * (py[i] - gy) for i in range(n)) / (n - 1)
    B = sum((sx[s] - gx) * (sy[s] - gy) for s in range(S)) / (S - 1)
    E = sum((x[s][i] - sx[s] - px[i] + gx) * (y[s][i] - sy[s] - py[i] + gy)
            for s in range(S) for i in range(n)) / ((S - 1) * (n - 1))
    return A / n, B / S, E / (n * S)


def _crossed(rng, R, S, n, sa, sb, se, mu=0.3):
    """R replicates of a crossed random-effects table v[s, i] = mu + a_i + b_s + e_si."""
    return (mu + sa * rng.normal(size=(R, 1, n)) + sb * rng.normal(size=(R, S, 1))
            + se * rng.normal(size=(R, S, n)))


def test_two_level_cov_matches_plain_sums():
    rng = np.random.default_rng(1)
    x = _crossed(rng, 1, 4, 30, 1.0, 1.0, 0.3)[0]
    y = 0.5 * x + _crossed(rng, 1, 4, 30, 1.0, 1.0, 0.3)[0]
    means, cov, parts = I.two_level_cov([x, y])
    S, n = x.shape
    for (j, a), (k, b) in [((0, x), (0, x)), ((0, x), (1, y)), ((1, y), (1, y))]:
        pa, pb, pe = _plain_parts(a.tolist(), b.tolist())
        assert parts["ms_pairs"][j, k] == pytest.approx(pa * n, rel=1e-12)
        assert parts["ms_seeds"][j, k] == pytest.approx(pb * S, rel=1e-12)
        assert parts["ms_resid"][j, k] == pytest.approx(pe * n * S, rel=1e-12)
        # no truncation for these components: cov = A / n + B / S - E / (n S)
        assert cov[j, k] == pytest.approx(pa + pb - pe, rel=1e-12)
    np.testing.assert_allclose(means, [x.mean(), y.mean()])
    _, cov_c, _ = I.two_level_cov([x], method="conservative")
    pa, pb, _ = _plain_parts(x.tolist())
    assert cov_c[0, 0] == pytest.approx(pa + pb, rel=1e-12)
    assert parts["df"] == {"pairs": 29, "seeds": 3, "interaction": 87}
    for k in ("pairs", "seeds"):  # strong effects: the components were not truncated
        assert np.linalg.eigvalsh(parts[k]).min() > 0


def test_negative_variance_components_are_set_to_zero():
    """No seed effect at all: B / S can fall below E / (n S); the seed component is then
    zero and the variance is A / n (never below a one-level estimate)."""
    rng = np.random.default_rng(11)
    for _ in range(20):
        x = _crossed(rng, 1, 3, 50, 0.5, 0.0, 1.0)[0]
        _, cov, parts = I.two_level_cov([x])
        pa, pb, pe = _plain_parts(x.tolist())
        # components (A - E/S)/n = pa - pe and (B - E/n)/S = pb - pe truncated at zero
        expected = max(pa - pe, 0.0) + max(pb - pe, 0.0) + pe
        assert cov[0, 0] == pytest.approx(expected, rel=1e-10)
        assert cov[0, 0] >= max(pa, pb) - 1e-15


def test_two_level_variance_is_unbiased_and_conservative_is_not():
    """Crossed random effects with known components: E[V] = Var(grand mean) (z = 5)."""
    rng = np.random.default_rng(2)
    S, n, sa, sb, se = 20, 50, 0.3, 0.2, 1.0
    true = sa ** 2 / n + sb ** 2 / S + se ** 2 / (n * S)
    v = _crossed(rng, 3000, S, n, sa, sb, se)
    V = np.array([I.mean_interval(t).se ** 2 for t in v])
    Vc = np.array([I.mean_interval(t, method="conservative").se ** 2 for t in v])
    sem = V.std(ddof=1) / np.sqrt(len(V))
    assert abs(V.mean() - true) <= 5 * sem
    # the conservative variance counts the interaction twice: E = true + se^2 / (n S)
    assert abs(Vc.mean() - (true + se ** 2 / (n * S))) <= 5 * Vc.std(ddof=1) / np.sqrt(len(Vc))
    # and the simulation itself has the variance of the formula
    g = v.mean(axis=(1, 2))
    assert abs(g.var(ddof=1) / true - 1) <= 5 * np.sqrt(2 / (len(g) - 1))


@pytest.mark.parametrize("sa, sb, se", [(0.45, 0.005, 0.1), (0.05, 0.3, 0.5)])
def test_coverage_of_two_level_interval_and_seed_only_undercoverage(sa, sb, se):
    """95% intervals cover the mean in about 95% of replicates (binomial z = 5, plus 1%
    for the Satterthwaite approximation); a t interval over seed means alone does not
    when test pairs dominate."""
    rng = np.random.default_rng(3)
    S, n, R, mu = 5, 200, 2000, 0.3
    v = _crossed(rng, R, S, n, sa, sb, se, mu)
    ivs = [I.mean_interval(t) for t in v]
    cover = np.mean([iv.lo <= mu <= iv.hi for iv in ivs])
    tol = 5 * np.sqrt(0.95 * 0.05 / R) + 0.01
    assert abs(cover - 0.95) <= tol, cover
    seed_means = v.mean(axis=2)
    half = stats.t.ppf(0.975, S - 1) * seed_means.std(axis=1, ddof=1) / np.sqrt(S)
    naive = np.mean(np.abs(seed_means.mean(1) - mu) <= half)
    if sa > sb:  # pair variance dominates: the seed-only interval is far too narrow
        assert naive < 0.5
    assert all(iv.n_seeds == S and iv.n_pairs == n for iv in ivs[:3])


def test_one_seed_is_conditional_and_matches_one_sample_t():
    x = np.random.default_rng(4).normal(size=40)
    iv = I.mean_interval(x)
    assert iv.se == pytest.approx(x.std(ddof=1) / np.sqrt(40))
    assert iv.df == 39 and "single training seed" in iv.conditional_on
    assert iv.hi - iv.estimate == pytest.approx(stats.t.ppf(0.975, 39) * iv.se)


def test_paired_difference_is_narrower_than_unpaired_for_shared_difficulty():
    rng = np.random.default_rng(5)
    base = _crossed(rng, 1, 5, 300, 0.5, 0.1, 0.2)[0]
    a, b = base + 0.05 + 0.1 * rng.normal(size=base.shape), base + 0.1 * rng.normal(size=base.shape)
    d = I.difference_interval(a, b)
    assert d.estimate == pytest.approx(a.mean() - b.mean())
    assert d.se == pytest.approx(I.mean_interval(a - b).se)
    assert d.se < 0.5 * np.hypot(I.mean_interval(a).se, I.mean_interval(b).se)
    assert d.method.startswith("paired")
    with pytest.raises(ValueError, match="b:"):
        I.difference_interval(a, b[:, :-1])


def test_fieller_interval_matches_a_grid_search():
    rng = np.random.default_rng(6)
    S, n = 4, 150
    w = _crossed(rng, 1, S, n, 0.3, 0.1, 0.3, 0.6)[0]  # continuous scores, strong components
    c = w + _crossed(rng, 1, S, n, 0.5, 0.3, 0.2, 0.3)[0]
    s = w + _crossed(rng, 1, S, n, 0.5, 0.3, 0.2, 0.15)[0]
    iv = I.pgr_interval(s, w, c)
    _, cov, parts = I.two_level_cov([s - w, c - w])
    assert np.allclose(cov, parts["ms_pairs"] / n + parts["ms_seeds"] / S
                       - parts["ms_resid"] / (n * S))  # no truncation: the plain formula applies
    assert iv.estimate == pytest.approx((s.mean() - w.mean()) / (c.mean() - w.mean()))
    q = stats.t.ppf(0.975, iv.df)
    grid = np.linspace(iv.estimate - 5, iv.estimate + 5, 20001)
    num, den = s - w, c - w
    inside = []
    for r in grid[::20]:  # plain reference: the two-level variance of num - r den, by loops
        pa, pb, pe = _plain_parts((num - r * den).tolist())
        inside.append((num.mean() - r * den.mean()) ** 2 <= q * q * (pa + pb - pe))
    acc = grid[::20][np.array(inside)]
    step = grid[20] - grid[0]
    assert abs(acc.min() - iv.lo) <= step and abs(acc.max() - iv.hi) <= step
    # delta method: se = sd(num - r den) / D at r = the estimate, from the plain parts
    pa, pb, pe = _plain_parts((num - iv.estimate * den).tolist())
    assert iv.se == pytest.approx(np.sqrt(pa + pb - pe) / abs(den.mean()), rel=1e-9)


def test_fieller_is_unbounded_when_the_gap_is_not_significant():
    rng = np.random.default_rng(7)
    w = (rng.random((3, 100)) < 0.6).astype(float)
    c = (rng.random((3, 100)) < 0.61).astype(float)
    s = (rng.random((3, 100)) < 0.6).astype(float)
    iv = I.pgr_interval(s, w, c)
    assert np.isinf(iv.lo) and np.isinf(iv.hi) and np.isfinite(iv.estimate)


def test_binomial_bound_is_an_upper_bound_for_01_tables():
    rng = np.random.default_rng(8)
    p_i = rng.uniform(0.2, 0.9, 400)
    x = (rng.random((5, 400)) < p_i).astype(float)
    b = I.binomial_bound_interval(x.mean(1), 400)
    assert b.estimate == pytest.approx(x.mean())
    assert b.se >= I.mean_interval(x).se
    assert b.se == pytest.approx(np.sqrt(x.mean() * (1 - x.mean()) / 400 + x.mean(1).var(ddof=1) / 5))


def test_bootstrap_agrees_roughly_with_the_analytic_variance():
    rng = np.random.default_rng(9)
    v = _crossed(rng, 1, 6, 200, 0.5, 0.1, 0.5)[0]
    bs = I.bootstrap_interval([v], lambda t: t.mean(), n_boot=1000, seed=1)
    an = I.mean_interval(v)
    assert bs.estimate == pytest.approx(v.mean())
    assert 0.7 < bs.se / an.se < 1.5


def test_binomial_bound_degrees_of_freedom_and_limits():
    """Welch-Satterthwaite df of the two variance parts, then ``p -/+ t_df se``."""
    acc = np.array([0.61, 0.58, 0.66, 0.60])
    n = 50
    b = I.binomial_bound_interval(acc, n, level=0.9)
    p = acc.mean()
    vp, vs = p * (1 - p) / n, acc.var(ddof=1) / 4
    df = (vp + vs) ** 2 / (vp ** 2 / (n - 1) + vs ** 2 / 3)
    assert b.df == pytest.approx(df, rel=1e-12)
    q = stats.t.ppf(0.95, df)
    assert (b.lo, b.hi) == pytest.approx((p - q * np.sqrt(vp + vs), p + q * np.sqrt(vp + vs)))


def test_bootstrap_interval_is_the_percentile_interval():
    """Seeds and pairs resampled with replacement (one draw of each per replicate, shared
    by all tables); the limits are the ``(1 -/+ level) / 2`` quantiles of the replicates."""
    rng = np.random.default_rng(10)
    a, b = rng.normal(size=(3, 40)), rng.normal(size=(3, 40))

    def stat(x, y):
        return x.mean() - 2 * y.mean()

    bs = I.bootstrap_interval([a, b], stat, n_boot=300, level=0.8, seed=4)
    g = np.random.default_rng(4)
    reps = []
    for _ in range(300):
        rs, ri = g.integers(0, 3, 3), g.integers(0, 40, 40)
        reps.append(stat(a[rs][:, ri], b[rs][:, ri]))
    assert bs.estimate == pytest.approx(stat(a, b))
    assert (bs.lo, bs.hi) == pytest.approx(tuple(np.quantile(reps, [0.1, 0.9])), rel=1e-12)
    assert bs.se == pytest.approx(np.std(reps, ddof=1), rel=1e-12)


@pytest.mark.parametrize("call, match", [
    (lambda: I.mean_interval(np.array([[1.0, np.nan]])), "NaN"),
    (lambda: I.mean_interval(np.ones((2, 3)), level=1.5), "level"),
    (lambda: I.mean_interval(np.ones((2, 3, 4))), "values"),
    (lambda: I.two_level_cov([np.ones((2, 3))], method="t"), "method"),
    (lambda: I.pgr_interval(np.ones((2, 3)), np.ones((2, 3)), np.ones((2, 4))), "correct_w"),
    (lambda: I.binomial_bound_interval([0.5, 1.2], 100), "acc_per_seed"),
    (lambda: I.bootstrap_interval([np.ones((2, 3))], np.mean, n_boot=5), "n_boot"),
])
def test_bad_input_names_the_parameter(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ---------------------------------------------------------------------------------------
# Edge cases, each against a plain formula (issue 17, item 7)
# ---------------------------------------------------------------------------------------
SATT_TABLE = np.array([[0.09, 0.04, 0.39, -0.32, 2.1, 2.07],
                       [0.84, 1.69, 1.74, 1.62, 2.69, 2.34],
                       [2.34, 2.4, 3.33, 3.35, 3.97, 3.7],
                       [0.66, 0.45, 1.62, 1.59, 1.97, 2.31]])


def _plain_satterthwaite(v):
    """Mean squares by plain loops, V = A / n + B / S - E / (n S), and
    df = V^2 / sum_k (c_k MS_k)^2 / df_k with df (n - 1, S - 1, (S - 1)(n - 1))."""
    S, n = len(v), len(v[0])
    grand = sum(sum(r) for r in v) / (S * n)
    pm = [sum(v[s][i] for s in range(S)) / S for i in range(n)]
    sm = [sum(v[s]) / n for s in range(S)]
    A = sum((p - grand) ** 2 for p in pm) / (n - 1)
    B = sum((m - grand) ** 2 for m in sm) / (S - 1)
    E = sum((v[s][i] - pm[i] - sm[s] + grand) ** 2
            for s in range(S) for i in range(n)) / ((S - 1) * (n - 1))
    terms = [(A / n, n - 1), (B / S, S - 1), (E / (n * S), (S - 1) * (n - 1))]
    V = A / n + B / S - E / (n * S)
    return V, V * V / sum(t * t / d for t, d in terms), (A - E / S, B - E / n)


def test_satterthwaite_degrees_of_freedom_with_several_seeds_pinned():
    for S in (2, 3, 4):
        v = SATT_TABLE[:S]
        V, df, (comp_a, comp_b) = _plain_satterthwaite(v.tolist())
        assert comp_a > 0 and comp_b > 0  # no truncation: the plain formula applies
        iv = I.mean_interval(v)
        assert iv.se ** 2 == pytest.approx(V, rel=1e-12)
        assert iv.df == pytest.approx(df, rel=1e-12)
        q = stats.t.ppf(0.975, df)
        assert (iv.lo, iv.hi) == pytest.approx((v.mean() - q * np.sqrt(V), v.mean() + q * np.sqrt(V)))
    # pinned (an off-by-one in any df, or S for S - 1, changes the second digit)
    dfs = [I.mean_interval(SATT_TABLE[:S]).df for S in (2, 3, 4)]
    assert dfs == pytest.approx([1.68784, 2.66126, 4.75584], abs=1e-5)


def test_fieller_is_unbounded_when_only_the_numerator_is_significant():
    rng = np.random.default_rng(5)
    S, n = 3, 400
    num = 0.3 + 0.05 * rng.normal(size=(S, n))  # mean 0.3, se ~ 0.0015
    den = 0.002 + rng.normal(size=(S, n))  # mean ~ 0, se ~ 0.03
    (N, D), cov, _ = I.two_level_cov([num, den])
    q = stats.norm.ppf(0.975)
    assert N * N > 100 * q * q * cov[0, 0] and D * D < q * q * cov[1, 1]
    iv = I.ratio_interval(num, den)
    assert iv.lo == -np.inf and iv.hi == np.inf
    assert iv.estimate == pytest.approx(N / D)


def test_fieller_is_bounded_when_the_denominator_is_significant():
    rng = np.random.default_rng(6)
    num = 0.002 + rng.normal(size=(3, 400))  # numerator not significant: bounded still
    den = 0.5 + 0.05 * rng.normal(size=(3, 400))
    iv = I.ratio_interval(num, den)
    assert np.isfinite(iv.lo) and np.isfinite(iv.hi) and iv.lo < 0 < iv.hi


def _store_with_missing(tmp_path, missing_seed):
    """Seeds 0, 1, 2; objective 'a' has a NaN run at ``missing_seed``; seed-specific
    logits, so that mis-pairing seeds changes the paired difference."""
    import pandas as pd

    from w2sg_utils.experiments import RunStore

    rng = np.random.default_rng(11)
    n, st, rows, labels = 40, RunStore(tmp_path), [], {}
    for s in (0, 1, 2):
        labels[s] = (rng.random(n) < 0.5).astype(int)
        for obj in ("a", "b"):
            z = rng.normal(loc=0.5 * s + (obj == "a"), size=n) * np.where(labels[s] == 1, 1, -1)
            z[:3] = (0.0, -0.0, 0.0)  # exact ties count one half
            z[3] = 1e-300 if labels[s][3] == 1 else -1e-300  # a near tie is not a tie
            if obj == "a" and s == missing_seed:
                z[5] = np.nan
            st.save_artifact(f"{obj}{s}", z_test=z)
            rows.append({"run_id": f"{obj}{s}", "seed": s, "objective": obj})
    return st, pd.DataFrame(rows), labels


def _plain_acc(z, y):
    return [0.5 if zi == 0 else float((zi > 0) == (yi == 1)) for zi, yi in zip(z, y)]


@pytest.mark.parametrize("missing_seed", [0, 1, 2])
def test_paired_difference_pairs_seeds_when_one_is_missing(tmp_path, missing_seed):
    from w2sg_utils.experiments import run_intervals as RI

    st, df, labels = _store_with_missing(tmp_path, missing_seed)
    kept = [s for s in (0, 1, 2) if s != missing_seed]
    diff = np.array([np.subtract(_plain_acc(st.load_artifact(f"a{s}")["z_test"], labels[s]),
                                 _plain_acc(st.load_artifact(f"b{s}")["z_test"], labels[s]))
                     for s in kept])
    d = RI.paired_difference(st, df[df.objective == "a"], df[df.objective == "b"], labels)
    assert d.n_seeds == 2 and d.estimate == pytest.approx(diff.mean(), abs=1e-12)
    assert d.se == pytest.approx(I.mean_interval(diff).se, rel=1e-12)
    tab, seeds, n_nan = RI.pair_table(st, df[df.objective == "a"], labels)
    assert seeds == kept and n_nan == 1
    np.testing.assert_array_equal(
        tab, [_plain_acc(st.load_artifact(f"a{s}")["z_test"], labels[s]) for s in kept])


def test_accuracy_counts_an_exact_tie_as_one_half(tmp_path):
    from w2sg_utils.experiments import run_intervals as RI

    st, df, labels = _store_with_missing(tmp_path, missing_seed=-1)
    for obj in ("a", "b"):
        tab, seeds, _ = RI.pair_table(st, df[df.objective == obj], labels)
        assert seeds == [0, 1, 2]
        np.testing.assert_array_equal(tab[:, :3], 0.5)
        np.testing.assert_array_equal(tab[:, 3], 1.0)
        iv = I.mean_interval(tab)
        plain = np.mean([_plain_acc(st.load_artifact(f"{obj}{s}")["z_test"], labels[s])
                         for s in seeds])
        assert iv.estimate == pytest.approx(plain, abs=1e-12)


@pytest.mark.parametrize("level", [0.8, 0.99])
def test_level_is_honoured_one_seed_against_the_one_sample_t(level):
    """At a level other than 95%, with one seed, the mean and the paired difference get
    the one-sample ``t`` interval of the pair values (scipy's ``t.interval``, ``n - 1``
    degrees of freedom) at that level."""
    rng = np.random.default_rng(21)
    a, b = rng.normal(0.2, 1.0, size=(2, 1, 30))
    d = (a - b)[0]
    ref = stats.t.interval(level, len(d) - 1, loc=d.mean(), scale=d.std(ddof=1) / np.sqrt(len(d)))
    for iv in (I.difference_interval(a, b, level=level), I.mean_interval(a - b, level=level)):
        assert iv.level == level and iv.df == len(d) - 1
        assert (iv.lo, iv.hi) == pytest.approx(ref, rel=1e-12)
