"""Risks, misfits, eps, posterior-mean teacher (C3-C5) against plain loop references."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from w2sg_utils.divergences import get_divergence
from w2sg_utils.divergences import random_points as points
from w2sg_utils.misfit import (
    cross_term,
    dual_mean_ensembles,
    misfit,
    misfit_theorem,
    posterior_mean_teacher,
    project_onto_span,
    risk,
)

from .references import grad, grad_inv

NAMES = ["squared", "kl", "binary_kl", "i_divergence", "itakura_saito"]


def xweights(rng, n):
    w = rng.uniform(0.5, 1.5, size=n)
    return w / w.sum()


@pytest.mark.parametrize("name", NAMES)
def test_risk_misfit_cross_against_loops(name):
    rng = np.random.default_rng(0)
    div = get_divergence(name)
    m, n, k = 5, 4, 3
    y, fs, fw = points(name, rng, (n, k)), points(name, rng, (m, n, k)), points(name, rng, (m, n, k))
    wx = xweights(rng, n)
    for j in range(m):
        r_ref = sum(wx[i] * div(y[i], fw[j, i]) for i in range(n))
        m_ref = sum(wx[i] * div(fs[j, i], fw[j, i]) for i in range(n))
        c_ref = sum(wx[i] * np.dot(y[i] - fs[j, i], grad(name, fs[j, i]) - grad(name, fw[j, i]))
                    for i in range(n))
        assert np.isclose(risk(name, y, fw, wx)[j], r_ref, rtol=1e-12)
        assert np.isclose(misfit(name, fs, fw, wx)[j], m_ref, rtol=1e-12)
        assert np.isclose(cross_term(name, y, fs, fw, wx)[j], c_ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_posterior_mean_teacher_against_loop(name):
    rng = np.random.default_rng(1)
    m = 9
    fw = points(name, rng, (m, 3, 2))
    groups = np.array(list("aabbbcaac"))
    w = rng.uniform(size=m)
    w /= w.sum()
    out = posterior_mean_teacher(name, fw, groups, w)
    for j in range(m):
        same = groups == groups[j]
        theta = sum(w[i] * grad(name, fw[i]) for i in np.flatnonzero(same)) / w[same].sum()
        np.testing.assert_allclose(out[j], grad_inv(name, theta), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_theorem_exact_for_posterior_mean_student(name):
    """C3/C4 by exact enumeration: a student equal to its posterior mean has eps = 0."""
    rng = np.random.default_rng(2)
    m, n, k = 12, 5, 3
    fw = points(name, rng, (m, n, k))
    ybar = points(name, rng, (n, k)) if name != "kl" else points(name, rng, (n, k))
    w = rng.uniform(size=m)
    w /= w.sum()
    groups = rng.integers(0, 4, size=m)
    groups[:4] = np.arange(4)
    fs = posterior_mean_teacher(name, fw, groups, w)
    th = misfit_theorem(name, ybar, fs, fw, groups=groups, draw_weights=w, noise=0.3)
    assert abs(th.eps) < 1e-12
    assert abs(th.residual) < 1e-12
    assert th.gain >= -1e-12
    np.testing.assert_allclose(th.gain, th.expected_misfit, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(th.misfit_to_posterior, 0, atol=1e-12)
    np.testing.assert_allclose(th.misfit, th.teacher_spread, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_theorem_any_student_exact(name):
    """C3 and C4 hold (with eps != 0) for a student that is a function of the group."""
    rng = np.random.default_rng(3)
    m, n, k = 10, 4, 3
    fw = points(name, rng, (m, n, k))
    ybar = points(name, rng, (n, k))
    w = rng.uniform(size=m)
    w /= w.sum()
    groups = np.arange(m) % 3
    fs = points(name, rng, (3, n, k))[groups]
    th = misfit_theorem(name, ybar, fs, fw, groups=groups, draw_weights=w)
    assert abs(th.residual) < 1e-10
    # C4 per group: E[M | f_s] = M(f_s, fbar) + E[M(fbar, f_w) | f_s]
    for gr in range(3):
        sel = groups == gr
        lhs = w[sel] @ th.misfit[sel] / w[sel].sum()
        rhs = th.misfit_to_posterior[sel][0] + w[sel] @ th.teacher_spread[sel] / w[sel].sum()
        assert np.isclose(lhs, rhs, rtol=1e-10)
    # eps with the posterior mean equals the expected C2 cross term (tower property)
    assert np.isclose(th.eps, th.expect("cross"), rtol=1e-10, atol=1e-12)


def test_theorem_plain_squared_reference():
    rng = np.random.default_rng(4)
    fw, fs, ybar = rng.normal(size=(6, 3, 1)), rng.normal(size=(6, 3, 1)), rng.normal(size=(3, 1))
    th = misfit_theorem("squared", ybar, fs, fw, fbar_w=fw)
    assert np.isclose(th.gain, np.mean((ybar - fw) ** 2) * 3 / 3 - np.mean((ybar - fs) ** 2))
    assert np.isclose(th.expected_misfit, np.mean((fs - fw) ** 2))
    assert np.isclose(th.eps, np.mean(2 * (ybar - fs) * (fs - fw)))
    mu, se = th.mean_se("misfit")
    assert np.isclose(mu, th.expected_misfit) and se > 0


@pytest.mark.parametrize("name", NAMES)
def test_theorem_per_draw_terms_against_loops(name):
    """Pin every per-draw term, not only the means (STYLE item 14).

    ``eps_draw`` against the teacher ``f_w`` instead of the posterior mean ``fbar_w`` has
    the same mean by the tower property, so only a per-draw comparison with
    ``fbar_w != f_w`` catches it.
    """
    rng = np.random.default_rng(6)
    div = get_divergence(name)
    m, n, k = 8, 4, 3
    fw, fs = points(name, rng, (m, n, k)), points(name, rng, (m, n, k))
    fbar = points(name, rng, (m, n, k))
    ybar = points(name, rng, (n, k))
    wx = xweights(rng, n)
    th = misfit_theorem(name, ybar, fs, fw, fbar_w=fbar, x_weights=wx, noise=0.2)
    def avg(f):
        return sum(wx[i] * f(i) for i in range(n))

    for j in range(m):
        s, w_, b = fs[j], fw[j], fbar[j]
        eps_j = avg(lambda i: np.dot(ybar[i] - s[i], grad(name, s[i]) - grad(name, b[i])))  # noqa: B023
        cross_j = avg(lambda i: np.dot(ybar[i] - s[i], grad(name, s[i]) - grad(name, w_[i])))  # noqa: B023
        assert np.isclose(th.eps_draw[j], eps_j, rtol=1e-10, atol=1e-12), "eps_draw vs fbar_w"
        assert np.isclose(th.cross[j], cross_j, rtol=1e-10, atol=1e-12), "cross vs f_w"
        checks = [(th.misfit_to_posterior, lambda i: div(s[i], b[i])),  # noqa: B023  student first
                  (th.teacher_spread, lambda i: div(b[i], w_[i])),  # noqa: B023  fbar_w first
                  (th.misfit, lambda i: div(s[i], w_[i])),  # noqa: B023
                  (th.risk_w - 0.2, lambda i: div(ybar[i], w_[i])),  # noqa: B023
                  (th.risk_s - 0.2, lambda i: div(ybar[i], s[i]))]  # noqa: B023
        for arr, term in checks:
            assert np.isclose(arr[j], avg(term), rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(th.fbar_w, fbar)


@pytest.mark.parametrize("name", ["squared", "kl", "itakura_saito"])
def test_dual_mean_ensembles(name):
    rng = np.random.default_rng(5)
    members = points(name, rng, (12, 4, 3))
    ens = dual_mean_ensembles(name, members, 4)
    assert ens.shape == (3, 4, 3)
    for e in range(3):
        ref = grad_inv(name, np.mean([grad(name, members[4 * e + j]) for j in range(4)], axis=0))
        np.testing.assert_allclose(ens[e], ref, rtol=1e-10)
    with pytest.raises(ValueError, match="k"):
        dual_mean_ensembles(name, members, 5)


def test_project_onto_span_against_lstsq():
    rng = np.random.default_rng(6)
    n, p = 7, 3
    phi, f, wx = rng.normal(size=(n, p)), rng.normal(size=(4, n, 1)), xweights(rng, n)
    out = project_onto_span(f, phi, wx)
    sw = np.sqrt(wx)[:, None]
    for j in range(4):
        coef = np.linalg.lstsq(sw * phi, sw * f[j], rcond=None)[0]
        np.testing.assert_allclose(out[j], phi @ coef, rtol=1e-10, atol=1e-12)


def test_validation_errors_name_the_parameter():
    rng = np.random.default_rng(10)
    fw = rng.normal(size=(4, 3, 1))
    with pytest.raises(ValueError, match="groups"):
        posterior_mean_teacher("squared", fw, [0, 1])
    with pytest.raises(ValueError, match="x_weights"):
        risk("squared", fw[0], fw, x_weights=[0.5, 0.5])
    with pytest.raises(ValueError, match="ybar"):
        misfit_theorem("squared", np.zeros((2, 1)), fw, fw)
    with pytest.raises(ValueError, match="draw_weights"):
        misfit_theorem("squared", np.zeros((3, 1)), fw, fw, draw_weights=[1, 0, 0, 1])
    with pytest.raises(ValueError, match="f_w"):
        posterior_mean_teacher("kl", np.array([[[1.0, 0.0]], [[0.5, 0.5]]]), [0, 0])


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(NAMES), m=st.integers(1, 12), n=st.integers(1, 4), k=st.integers(1, 3),
       n_groups=st.integers(1, 4), seed=st.integers(0, 2**31 - 1))
def test_theorem_property_any_finite_law(name, m, n, k, n_groups, seed):
    """C3 holds exactly for any finite law and any student that is a function of the group."""
    if name == "kl" and k == 1:
        k = 2  # the simplex needs at least two classes
    rng = np.random.default_rng(seed)
    fw = points(name, rng, (m, n, k))
    ybar = points(name, rng, (n, k))
    w = rng.uniform(0.1, 1.0, size=m)
    w /= w.sum()
    groups = rng.integers(0, n_groups, size=m)
    fs = points(name, rng, (n_groups, n, k))[groups]
    th = misfit_theorem(name, ybar, fs, fw, groups=groups, draw_weights=w, x_weights=xweights(rng, n))
    scale = 1 + abs(th.gain) + th.expected_misfit + abs(th.eps)
    assert abs(th.residual) <= 1e-10 * scale
    assert abs(th.expected_misfit - th.expect("misfit_to_posterior") - th.expect("teacher_spread")) \
        <= 1e-10 * scale
