"""Falsifiability: each chapter's main check fails when fed a plausibly wrong quantity.

A check that cannot fail proves nothing (STYLE item 13). For every identity or bound that
chapters 2-4 assert, these tests plant a bug of the kind a mutation would (a misfit with
its arguments swapped, the arithmetic mean for the dual mean, a dropped factor, a sign
error, eps from the unconditional mean, eps against the teacher instead of the posterior
mean) and assert that the check raises.
"""

import dataclasses

import numpy as np
import pytest
from scipy.special import log_softmax, softmax

from tests.test_rf_posterior import measure
from w2sg_utils.checks import assert_close, z_for_samples
from w2sg_utils.divergences import get_divergence
from w2sg_utils.enumeration import bregman_quantizer, enumerate_iid
from w2sg_utils.gaussian_classes import check_entropy_corollary, w2s_terms
from w2sg_utils.misfit import misfit, misfit_theorem
from w2sg_utils.misfit_learners import histogram_teacher
from w2sg_utils.rf_posterior import check_posterior_identities

# ---------------------------------------------------------------- Chapter 3 (claim C6)
# Here the check runs on a small plain reference; tests/test_power_ch03.py runs the
# chapter's own check (w2sg_utils.rf_ladder.ladder_check) at the chapter's defaults.

RF_REPS, RF_LAM = 120, 3e-2


@pytest.fixture(scope="module")
def rf_right():
    return measure(RF_REPS, RF_LAM)


def test_rf_check_passes_on_the_right_quantities(rf_right):
    check_posterior_identities(rf_right, z=z_for_samples(RF_REPS))


@pytest.mark.parametrize("bug", ["posterior is the teacher", "posterior is the unconditional mean",
                                 "eps: dropped factor 2", "eps: sign error"])
def test_rf_check_fails_on_planted_bugs(bug):
    with pytest.raises(AssertionError):
        check_posterior_identities(measure(RF_REPS, RF_LAM, bug), z=z_for_samples(RF_REPS))


@pytest.mark.parametrize("swap", ["misfit: teacher against ybar", "teacher risk without the noise"])
def test_rf_check_fails_on_wrong_risks(rf_right, swap):
    r = rf_right
    if swap == "misfit: teacher against ybar":
        wrong = r.replace(misfit=r.risk_w - 0.25, pool_misfit=r.pool_risk_w - 0.25)
    else:
        wrong = r.replace(risk_w=r.risk_w - 0.25, pool_risk_w=r.pool_risk_w - 0.25)
    with pytest.raises(AssertionError):
        check_posterior_identities(wrong, z=z_for_samples(RF_REPS))


# ------------------------------------------------- Chapter 2 (claims C3-C5, enumeration)


def exact_example(loss):
    """A small enumerated law: histogram teachers on every training set, a quantizer
    student, and the posterior-mean teacher by direct conditioning on the student."""
    rng = np.random.default_rng(0)
    n_x, n_train, n_cls = 3, 3, 3
    p_x = rng.dirichlet(np.full(n_x, 5.0))
    if loss == "squared":
        ybar = rng.normal(size=(n_x, 1))
        sets, w = enumerate_iid(np.repeat(p_x, 2) / 2, n_train)
        f_w = histogram_teacher(sets // 2, ybar[sets // 2, 0] + 2 * (sets % 2) - 1, n_x)
        noise = 1.0
    else:
        ybar = softmax(rng.normal(size=(n_x, n_cls)), axis=-1)
        sets, w = enumerate_iid((p_x[:, None] * ybar).ravel(), n_train)
        f_w = histogram_teacher(sets // n_cls, sets % n_cls, n_x, n_classes=n_cls)
        noise = 0.0
    # a student that is not its posterior mean: the shrunk quantizer of Chapter 2
    div = get_divergence(loss)
    cells, code = bregman_quantizer(loss, f_w, 4, weights=w, x_weights=p_x, seed=0)
    centre = div.dual_mean(f_w, weights=w)
    f_s = div.grad_inv(0.5 * div.grad(code[cells]) + 0.5 * div.grad(centre)[None])
    return dict(div=div, ybar=ybar, f_w=f_w, f_s=f_s, w=w, p_x=p_x, noise=noise, cells=cells)


def direct_posterior(div, f_s, f_w, w, mean="dual"):
    """E[f_w | f_s] by enumeration; mean="arithmetic" is the wrong centre for KL."""
    key = np.unique(f_s.reshape(len(f_s), -1), axis=0, return_inverse=True)[1].ravel()
    g = div.grad(f_w) if mean == "dual" else f_w
    flat = g.reshape(len(g), -1)
    sums = np.stack([np.bincount(key, weights=w * flat[:, j]) for j in range(flat.shape[1])], 1)
    avg = (sums / np.bincount(key, weights=w)[:, None])[key].reshape(f_w.shape)
    return div.grad_inv(avg) if mean == "dual" else avg


def exact_residual_check(th):
    """The chapter's check: gain = E M + eps to rounding (exact enumeration)."""
    assert_close(th.residual, 0.0, atol=1e-10, what="C3 residual")


@pytest.mark.parametrize("loss", ["squared", "kl"])
def test_exact_check_passes_on_the_right_quantities(loss):
    ex = exact_example(loss)
    fbar = direct_posterior(ex["div"], ex["f_s"], ex["f_w"], ex["w"])
    th = misfit_theorem(loss, ex["ybar"], ex["f_s"], ex["f_w"], fbar_w=fbar, draw_weights=ex["w"],
                        x_weights=ex["p_x"], noise=ex["noise"])
    exact_residual_check(th)
    assert abs(th.eps) > 1e-4  # a student that is not its posterior mean: eps matters


@pytest.mark.parametrize("loss,bug", [
    ("kl", "arithmetic mean for the dual mean"), ("kl", "misfit arguments swapped"),
    ("squared", "eps from the unconditional mean"), ("kl", "eps from the unconditional mean"),
    ("squared", "eps: dropped factor"), ("squared", "eps: sign error"), ("kl", "eps: sign error")])
def test_exact_check_fails_on_planted_bugs(loss, bug):
    ex = exact_example(loss)
    div, f_s, f_w, w = ex["div"], ex["f_s"], ex["f_w"], ex["w"]
    fbar = direct_posterior(div, f_s, f_w, w)
    if bug == "arithmetic mean for the dual mean":
        fbar = direct_posterior(div, f_s, f_w, w, mean="arithmetic")
    if bug == "eps from the unconditional mean":
        fbar = np.broadcast_to(div.dual_mean(f_w, weights=w), f_w.shape)
    th = misfit_theorem(loss, ex["ybar"], f_s, f_w, fbar_w=fbar, draw_weights=w,
                        x_weights=ex["p_x"], noise=ex["noise"])
    if bug == "misfit arguments swapped":
        th = dataclasses.replace(th, misfit=misfit(loss, f_w, f_s, ex["p_x"]))
    if bug == "eps: dropped factor":
        th = dataclasses.replace(th, eps_draw=th.eps_draw / 2)
    if bug == "eps: sign error":
        th = dataclasses.replace(th, eps_draw=-th.eps_draw)
    with pytest.raises(AssertionError):
        exact_residual_check(th)


def test_exact_check_cannot_see_eps_against_the_teacher():
    """Why the per-draw terms are pinned (tests/test_misfit.py): eps computed against f_w
    instead of fbar_w has the same mean (tower property), so the mean-level check passes."""
    ex = exact_example("squared")
    th = misfit_theorem("squared", ex["ybar"], ex["f_s"], ex["f_w"], fbar_w=ex["f_w"],
                        draw_weights=ex["w"], x_weights=ex["p_x"], noise=ex["noise"])
    exact_residual_check(th)  # passes: only a per-draw comparison can catch this bug


# ------------------------------------------------------- Chapter 4 (claim C7, entropy)


def training_randomness_terms(bug=None, k=6, n=400, K=3, scale=1.5):
    """Members (teachers from independent training sets), their dual-mean ensemble as the
    posterior-mean teacher, and a student: per-example terms averaged over the member."""
    rng = np.random.default_rng(1)
    log_ybar = log_softmax(rng.normal(0, 1.5, (n, K)), -1)
    common = rng.normal(0, scale, (n, K))  # the members agree more as scale grows
    log_members = log_softmax(common + rng.normal(0, 1.5, (k, n, K)), -1)
    log_ens = log_softmax(log_members.mean(0), -1)
    if bug == "eps against the arithmetic mean":
        log_ens = np.log(np.exp(log_members).mean(0))
    log_s = log_softmax(0.7 * log_ens + rng.normal(0, 0.5, (n, K)), -1)
    y = rng.integers(0, K, n)
    per = [w2s_terms(y, log_ybar, log_s, log_members[j], log_ens) for j in range(k)]
    t = {key: np.mean([p[key] for p in per], 0) for key in per[0]}
    if bug == "entropy of the teacher":
        t["entropy_s"] = t["entropy_w"]
    if bug == "gain with KL arguments swapped":
        ybar, ps = np.exp(log_ybar), np.exp(log_s)
        t["risk_s"] = np.sum(ps * (log_s - log_ybar), -1)
        t["risk_w"] = np.mean([np.sum(np.exp(lm) * (lm - log_ybar), -1) for lm in log_members], 0)
        del ybar
    if bug == "misfit arguments swapped (forward CE for RCE)":
        t["rce"] = t["misfit_fwd"] + t["entropy_s"]
    return t


def test_entropy_bound_fails_with_log_k_for_the_min_entropy():
    """The bound part: RCE >= H_inf(f_w), but not >= log K for a confident teacher."""
    t = training_randomness_terms(scale=6.0)  # confident teachers
    check_entropy_corollary(t, exact=True)
    t["min_entropy_w"] = np.full_like(t["min_entropy_w"], np.log(3))
    with pytest.raises(AssertionError, match="H_inf"):
        check_entropy_corollary(t, exact=True)


def test_entropy_check_passes_on_the_right_quantities():
    check_entropy_corollary(training_randomness_terms(), exact=True)


@pytest.mark.parametrize("bug", ["eps against the arithmetic mean", "entropy of the teacher",
                                 "gain with KL arguments swapped",
                                 "misfit arguments swapped (forward CE for RCE)"])
def test_entropy_check_fails_on_planted_bugs(bug):
    with pytest.raises(AssertionError):
        check_entropy_corollary(training_randomness_terms(bug), exact=True)
