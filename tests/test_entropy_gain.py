"""The statistical machinery of w2sg_utils.entropy_gain on data with known answers."""

import numpy as np
import pytest

from w2sg_utils.entropy_gain import (
    RESIDUAL_ALTERNATIVES,
    TEMPERATURE_ALTERNATIVES,
    assert_no_rejection,
    bonferroni_z,
    bootstrap_power,
    experiment_differences,
    residual_differences,
    temperature_differences,
    z_scores,
)


def test_z_scores_and_rejection_on_known_data():
    rng = np.random.default_rng(0)
    null = rng.normal(size=(3, 2, 4000))
    assert np.all(np.abs(z_scores(null)) < 5)
    shifted = null + np.array([0.0, 0.0, 0.2])[:, None, None]
    z = z_scores(shifted)
    # mean 0.2 with SE 1 / sqrt(8000): z about 17.9
    assert 14 < z[2] < 22
    with pytest.raises(AssertionError, match="comparison 2"):
        assert_no_rejection(shifted, 4.0)
    power = bootstrap_power({"null": null, "shifted": shifted}, 4.0, 200, 1)
    assert power["shifted"] == 1.0 and power["null"] < 0.05


def test_bonferroni_z_and_bad_parameters():
    assert np.isclose(bonferroni_z(1, 0.05), 1.959964, atol=1e-5)
    assert bonferroni_z(46) > bonferroni_z(4)
    with pytest.raises(ValueError, match="alpha"):
        bonferroni_z(3, 1.5)
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_power({"a": np.zeros((1, 1, 5))}, 3.0, 0)
    with pytest.raises(ValueError, match="alternative"):
        residual_differences([], "typo")
    with pytest.raises(ValueError, match="check"):
        experiment_differences([], "typo")


def test_residual_differences_against_plain_formula():
    """``gain - misfit - eps`` per example, and each planted alternative, typed out."""
    rng = np.random.default_rng(5)
    keys = ("risk_w", "risk_s", "misfit", "misfit_fwd", "eps")
    terms = [{k: rng.normal(size=6) for k in keys} for _ in range(3)]
    wanted = {None: lambda t: t["risk_w"] - t["risk_s"] - t["misfit"] - t["eps"],
              "eps = 0": lambda t: t["risk_w"] - t["risk_s"] - t["misfit"],
              "eps / 2": lambda t: t["risk_w"] - t["risk_s"] - t["misfit"] - 0.5 * t["eps"],
              "-eps": lambda t: t["risk_w"] - t["risk_s"] - t["misfit"] + t["eps"],
              "forward misfit": lambda t: t["risk_w"] - t["risk_s"] - t["misfit_fwd"] - t["eps"]}
    assert set(wanted) - {None} == set(RESIDUAL_ALTERNATIVES)
    for alt, f in wanted.items():
        got = residual_differences(terms, alt)
        assert got.shape == (3, 6)
        np.testing.assert_allclose(got, np.stack([f(t) for t in terms]), rtol=1e-14, atol=1e-14)


def test_bootstrap_power_equals_z_scores_of_the_resamples():
    """With several repetitions: the power is the fraction of resamples on which
    :func:`z_scores` of the resampled table rejects. Reference: the resamples drawn as
    documented (per repetition, ``n_boot`` draws of ``n`` indices with replacement from
    ``default_rng(seed)``, shared by comparisons and alternatives), each resampled table
    passed to ``z_scores``. The shift makes the power intermediate, so a wrong standard
    error changes it by many resamples."""
    rng = np.random.default_rng(11)
    G, R, n, n_boot, z_crit = 2, 3, 40, 300, 2.5
    null = rng.normal(size=(G, R, n))
    alt = null + np.array([0.0, 0.3])[:, None, None]
    power = bootstrap_power({"null": null, "alt": alt}, z_crit, n_boot=n_boot, seed=4)
    draws = np.random.default_rng(4)
    idx = [draws.integers(0, n, (n_boot, n)) for _ in range(R)]
    for name, d in (("null", null), ("alt", alt)):
        fails = []
        for b in range(n_boot):
            resampled = np.stack([d[:, r, idx[r][b]] for r in range(R)], axis=1)
            fails.append(np.any(np.abs(z_scores(resampled)) > z_crit))
        assert power[name] == np.mean(fails)
    assert 0.2 < power["alt"] < 0.95  # intermediate, as intended


def test_temperature_differences_against_plain_formulas():
    """Measured change ``KL(ybar || f^1) - KL(ybar || f^tau)``, the statement's
    prediction ``CE_held(f^1) - CE_held(f^tau)`` and the wrong predictions, typed out
    with numpy's log-softmax written by hand, at temperatures other than 1."""
    rng = np.random.default_rng(8)
    n, K = 25, 3

    def logp(a):
        return a - np.log(np.exp(a).sum(axis=1, keepdims=True))

    z, zh = rng.normal(size=(2, n, K)) * 2.0
    log_ybar, logp_w, logp_wbar = (logp(rng.normal(size=(n, K))) for _ in range(3))
    y_test, y_held = rng.integers(0, K, n), rng.integers(0, K, n)
    taus = np.array([0.5, 2.0])
    out = temperature_differences(z, y_test, log_ybar, logp_w, logp_wbar, zh, y_held, taus)

    def kl(lp, lq):
        return np.sum(np.exp(lp) * (lp - lq), axis=1)

    def student(tau):
        return logp(z / tau)

    def ce_held(tau):
        return -logp(zh / tau)[np.arange(n), y_held]

    def ent(lp):
        return -np.sum(np.exp(lp) * lp, axis=1)

    for i, tau in enumerate(taus):
        measured = kl(log_ybar, student(1.0)) - kl(log_ybar, student(tau))
        assert np.abs(measured).max() > 1e-3  # a temperature that changes something
        wrong = {None: ce_held(1.0) - ce_held(tau),
                 "a nat of entropy is a nat of gain": ent(student(1.0)) - ent(student(tau)),
                 "gain follows the misfit": kl(student(tau), logp_w) - kl(student(1.0), logp_w),
                 "no effect": 0.0}
        assert set(wrong) - {None} == set(TEMPERATURE_ALTERNATIVES)
        for name, pred in wrong.items():
            np.testing.assert_allclose(out[name][i], measured - pred, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(out["measured"][i], measured, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(out["entropy"][i], ent(student(tau)) - ent(student(1.0)),
                                   rtol=1e-10, atol=1e-12)
