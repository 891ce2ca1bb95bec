"""Chapter 3's ladder check and its measured power (claim C3) on synthetic measurements.

``tests/test_power_ch03.py`` runs the check at the chapter's defaults; here the check and
the bootstrap are compared with plain restatements on per-repetition numbers built so
that the answers are known: the gap of each residual is ``|mean| / (sd / sqrt(R))`` with
the ``n - 1`` standard deviation, and the power is the rejection rate over resamples of
the repetitions drawn with the documented generator.
"""

from dataclasses import fields

import numpy as np
import pytest

from w2sg_utils.random_features import RFTask
from w2sg_utils.rf_ladder import (
    ALTERNATIVES,
    LADDER_DEFAULTS,
    bootstrap_power,
    ladder_check,
    rejects,
    run_ladder,
    with_alternative,
)
from w2sg_utils.rf_posterior import PosteriorW2S, posterior_w2s

R = 12


def synthetic(seed, eps_mean=-0.05, eps_sd=0.05, c4_noise=0.02):
    """Per-repetition numbers satisfying lem-rf-blp's identities up to centred noise.

    ``pool_gain - pool_misfit - pool_eps`` and ``spread - heldout`` are centred noise; the
    C4 residual is ``c4_noise`` times centred noise; ``pool_eps`` has mean ``eps_mean``,
    so halving or dropping it leaves a residual of mean ``eps_mean / 2`` or ``eps_mean``.
    """
    rng = np.random.default_rng(seed)

    def u():
        return rng.uniform(1, 2, R)

    dist, spread, est = u(), u(), 0.1 * u()
    misfit = dist + spread - 2 * est + c4_noise * rng.standard_normal(R)
    p_eps = eps_mean + eps_sd * rng.standard_normal(R)
    p_risk_s, p_misfit = u(), u()
    p_risk_w = p_risk_s + p_misfit + p_eps + 0.01 * rng.standard_normal(R)
    return PosteriorW2S(
        risk_w=u(), risk_s=u(), misfit=misfit, eps=0.1 * u(), dist=dist, spread=spread,
        heldout=spread + 0.01 * rng.standard_normal(R), est_error=est, error_formula=est,
        cond_var=u(), student_var=u(), pool_risk_w=p_risk_w, pool_risk_s=p_risk_s,
        pool_misfit=p_misfit, pool_eps=p_eps, pool_eps_mean=u(), pool_eps_other=u(),
        dist_mean=u(), spread_mean=u(), heldout_mean=u(), dist_other=u(), spread_other=u(),
        heldout_other=u())


def plain_gaps(res):
    """The three residuals of lem-rf-blp and their gaps, written from the chapter."""
    resid = {"C3": res.pool_risk_w - res.pool_risk_s - res.pool_misfit - res.pool_eps,
             "C4": res.misfit - (res.dist - res.est_error) - (res.spread - res.est_error),
             "calibration": res.spread - res.heldout}
    return {k: abs(v.mean()) / (v.std(ddof=1) / np.sqrt(len(v))) for k, v in resid.items()}


def test_gaps_are_mean_over_standard_error():
    lad = {1: synthetic(1), 2: synthetic(2)}
    gaps = ladder_check(lad, z=1e6)
    for s, res in lad.items():
        ref = plain_gaps(res)
        got = {name.split(":")[0]: g for (t, name), g in gaps.items() if t == s}
        assert got.keys() == ref.keys()
        for k in ref:
            assert got[k] == pytest.approx(ref[k], rel=1e-10), (s, k)
    # the check raises exactly when a gap exceeds z
    z = max(gaps.values())
    ladder_check(lad, z=z * (1 + 1e-9))
    with pytest.raises(AssertionError):
        ladder_check(lad, z=z * (1 - 1e-9))


def plain_power(lad, z, n_boot, seed):
    """The documented bootstrap: per resample, each size's repetitions drawn with
    replacement (``rng.integers`` in the order of ``lad``), then each alternative checked."""
    rng = np.random.default_rng(seed)
    hits = dict.fromkeys(ALTERNATIVES, 0)
    for _ in range(n_boot):
        boot = {}
        for s, res in lad.items():
            idx = rng.integers(0, R, R)
            boot[s] = PosteriorW2S(**{f.name: getattr(res, f.name)[idx] for f in fields(res)})
        for alt in ALTERNATIVES:
            hits[alt] += rejects(boot, z, alt)
    return {alt: h / n_boot for alt, h in hits.items()}


def test_bootstrap_power_resamples_the_repetitions():
    """On numbers where ``eps / 2`` is near the critical value, the rejection rate over
    resamples is strictly between 0 and 1 and equals the plain bootstrap's."""
    lad = {1: synthetic(3, eps_mean=-0.05, eps_sd=0.04), 2: synthetic(4, eps_mean=-0.05,
                                                                      eps_sd=0.04)}
    half = max(g for (s, name), g in ladder_check(
        {s: r.replace(pool_eps=r.pool_eps / 2) for s, r in lad.items()}, z=1e6).items()
        if name.startswith("C3"))
    z = half  # the observed eps / 2 sits exactly at the critical value
    power = bootstrap_power(lad, z, n_boot=60, seed=9)
    ref = plain_power(lad, z, 60, 9)
    assert power == ref
    assert 0 < power["eps / 2"] < 1, power


def test_alternatives_change_the_documented_fields():
    """Each wrong implementation replaces exactly the fields it names: eps and pool_eps
    scaled, or L_1 replaced by the unconditional mean (``*_mean``) or by L_1 at another
    teacher's labels (``*_other``) in pool_eps, dist, spread and heldout."""
    res = synthetic(5)
    names = [f.name for f in fields(res)]
    for alt, c in (("eps = 0", 0.0), ("eps / 2", 0.5), ("-eps", -1.0)):
        wrong = with_alternative(res, alt)
        expected = {"eps": c * res.eps, "pool_eps": c * res.pool_eps}
        for k in names:
            np.testing.assert_array_equal(getattr(wrong, k), expected.get(k, getattr(res, k)),
                                          err_msg=f"{alt}: {k}")
    for alt, tag in (("unconditional mean", "mean"), ("other teacher's labels", "other")):
        wrong = with_alternative(res, alt)
        changed = ("pool_eps", "dist", "spread", "heldout")
        for k in names:
            ref = getattr(res, f"{k}_{tag}") if k in changed else getattr(res, k)
            np.testing.assert_array_equal(getattr(wrong, k), ref, err_msg=f"{alt}: {k}")
    assert with_alternative(res, None) is res


def test_bootstrap_reports_the_truths_acceptance_rate():
    """``None`` in the alternatives: its entry is the rate at which the truth is
    *accepted*; at a critical value no gap reaches it is 1 (and every alternative's
    rejection rate 0), at a critical value every gap exceeds it is 0 (and 1)."""
    lad = {1: synthetic(6), 2: synthetic(7)}
    alts = (None, "eps = 0")
    assert bootstrap_power(lad, 1e9, alts, n_boot=20) == {"truth (accepted)": 1.0,
                                                          "eps = 0": 0.0}
    assert bootstrap_power(lad, 1e-9, alts, n_boot=20) == {"truth (accepted)": 0.0,
                                                           "eps = 0": 1.0}


def test_run_ladder_measures_each_size_with_per_sample_ridges():
    """Step ``s`` is the posterior pipeline at ``d = d0 s``, ``n = n_per_d d``,
    ``d_w = dw_per_n n``, ``N = N_per_n n``, ``d_s = ds_per_N N`` and
    ``ceil(draws_per_label N)`` draws, both ridges ``lam_ladder`` per sample (the
    pipeline multiplies them by its own sample sizes), at small sizes."""
    p = dict(LADDER_DEFAULTS, ladder=[1, 2], d0=2, reps_ladder=2, n_test_ladder=10,
             lam_ladder=0.05)
    lad = run_ladder(p, seed=4)
    for s in (1, 2):
        d = 2 * s
        n = round(3.0 * d)
        N = round(2.0 * n)
        ref = posterior_w2s(RFTask(d=d, noise_sd=0.5), n=n, d_w=round(0.5 * n), N=N,
                            d_s=round(2.0 * N), lam_w=0.05, lam_s=0.05, reps=2,
                            n_draws=int(np.ceil(6.0 * N)), n_test=10, seed=4)
        for f in fields(ref):
            np.testing.assert_array_equal(getattr(lad[s], f.name), getattr(ref, f.name),
                                          err_msg=f"s = {s}: {f.name}")
