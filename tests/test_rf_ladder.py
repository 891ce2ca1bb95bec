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

from w2sg_utils.rf_ladder import ALTERNATIVES, bootstrap_power, ladder_check, rejects
from w2sg_utils.rf_posterior import PosteriorW2S

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
    zero = np.zeros(R)
    return PosteriorW2S(
        risk_w=u(), risk_s=u(), misfit=misfit, eps=zero, dist=dist, spread=spread,
        heldout=spread + 0.01 * rng.standard_normal(R), est_error=est, error_formula=est,
        cond_var=u(), student_var=zero, pool_risk_w=p_risk_w, pool_risk_s=p_risk_s,
        pool_misfit=p_misfit, pool_eps=p_eps, pool_eps_mean=zero, pool_eps_other=zero,
        dist_mean=dist + 1.0, spread_mean=spread + 1.0, heldout_mean=spread,
        dist_other=dist + 1.0, spread_other=spread, heldout_other=spread + 1.0)


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
