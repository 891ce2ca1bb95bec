"""Chapter 3's proportional ladder and its check of claim C3, with measured power (C3, C6).

Chapter 3 (``sec-rf-ladder``) grows every size of the random-features model together
(:func:`ladder_sizes`), measures each size with
:func:`~w2sg_utils.rf_posterior.posterior_w2s` (:func:`run_ladder`) and asserts the
posterior-mean lemma ``lem-rf-blp`` with :func:`ladder_check`:

1. claim C3, ``gain = E M + eps`` with ``eps`` from its definition against the estimated
   posterior mean, on the terms averaged over the held-out teachers (``pool_*``);
2. claim C4, ``E M = (dist - err) + (spread - err)`` for the student's own teacher;
3. calibration, ``spread = heldout``.

Each is a paired mean over repetitions compared with zero within ``z`` standard errors,
with ``z`` from :func:`z_bonferroni` (a Student-t quantile at a Bonferroni-corrected
level over the chapter's checks). The null hypothesis is the lemma; the named wrong
alternatives (:data:`ALTERNATIVES`) are the mistakes an implementation could make:
``eps`` set to 0, halved or of the wrong sign, the unconditional mean in place of the
posterior mean, and the posterior mean conditioned on another teacher's labels.
:func:`bootstrap_power` measures how often the check rejects each of them on resampled
repetitions; ``tests/test_power_ch03.py`` runs the check at the chapter's defaults.
"""

from __future__ import annotations

import numpy as np

from .checks import mean_and_se
from .random_features import RFTask
from .rf_posterior import PosteriorW2S, identity_residuals, posterior_w2s

__all__ = ["LADDER_DEFAULTS", "ALTERNATIVES", "WIDTH_RATIOS", "ladder_sizes", "run_ladder",
           "z_bonferroni", "ladder_z", "with_alternative", "ladder_check", "rejects",
           "bootstrap_power"]

#: The ladder parameters of Chapter 3's parameter cell (``tests/test_power_ch03.py``
#: checks that the two agree).
LADDER_DEFAULTS = dict(ladder=[1, 2, 4, 8], d0=4, n_per_d=3.0, dw_per_n=0.5, N_per_n=2.0,
                       ds_per_N=2.0, lam_ladder=1e-3, draws_per_label=6.0, reps_ladder=16,
                       n_test_ladder=100, noise_sd=0.5)

#: Wrong implementations the check must reject (each a function of the measurements).
ALTERNATIVES = ("eps = 0", "eps / 2", "-eps", "unconditional mean", "other teacher's labels")

#: Student width ratios ``d_s / N`` of the chapter's width-alone section (``sec-rf-ladder-width``).
WIDTH_RATIOS = (0.5, 1, 2, 4, 8)

#: Family-wise false-alarm rate of the chapter's ladder and width checks together.
ALPHA_FAMILY = 1e-3

_SIZE_KEYS = ("d0", "n_per_d", "dw_per_n", "N_per_n", "ds_per_N", "draws_per_label")


def ladder_sizes(s: int, p: dict) -> dict:
    """The sizes at ladder step ``s``: every size is a fixed ratio times ``d = d0 s``.

    ``p`` holds ``d0``, ``n_per_d``, ``dw_per_n``, ``N_per_n``, ``ds_per_N`` and
    ``draws_per_label``; the result has ``d``, ``n``, ``d_w``, ``N``, ``d_s`` and
    ``n_draws`` (rounded). Statement: {prf:ref}`prop-rf-floor` (claim C6).
    """
    missing = [k for k in _SIZE_KEYS if k not in p]
    if missing:
        raise ValueError(f"p: missing ladder parameters {missing}")
    if not isinstance(s, int | np.integer) or s < 1:
        raise ValueError(f"s: must be a positive integer, got {s!r}")
    dd = p["d0"] * s
    nn = round(p["n_per_d"] * dd)
    NN = round(p["N_per_n"] * nn)
    return dict(d=dd, n=nn, d_w=round(p["dw_per_n"] * nn), N=NN,
                d_s=round(p["ds_per_N"] * NN), n_draws=int(np.ceil(p["draws_per_label"] * NN)))


def run_ladder(p: dict, seed: int) -> dict[int, PosteriorW2S]:
    """Measure every size of the ladder (claim C6): ``{s: posterior_w2s(...)}``.

    ``p`` holds the keys of :data:`LADDER_DEFAULTS`; both ridges are ``lam_ladder``.
    Statements: {prf:ref}`lem-rf-blp`, {prf:ref}`prop-rf-floor`.
    """
    out = {}
    for s in p["ladder"]:
        sz = ladder_sizes(s, p)
        out[s] = posterior_w2s(RFTask(d=sz.pop("d"), noise_sd=p["noise_sd"]),
                               lam_w=p["lam_ladder"], lam_s=p["lam_ladder"],
                               reps=p["reps_ladder"], n_test=p["n_test_ladder"], seed=seed, **sz)
    return out


def z_bonferroni(n: int, n_checks: int, alpha: float = 1e-3) -> float:
    """Critical value for one of ``n_checks`` checks with family-wise error ``alpha``.

    Each check compares a mean of ``n`` paired differences with zero, its SE estimated
    from them: the Student-t quantile (``n - 1`` degrees of freedom) with two-sided tail
    ``alpha / n_checks``. Statement: {prf:ref}`lem-rf-blp` (claim C3).
    """
    from scipy.stats import t

    if not isinstance(n, int | np.integer) or n < 2:
        raise ValueError(f"n: need an integer >= 2, got {n!r}")
    if not isinstance(n_checks, int | np.integer) or n_checks < 1:
        raise ValueError(f"n_checks: need an integer >= 1, got {n_checks!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha: must be in (0, 1), got {alpha!r}")
    return float(t.isf(alpha / n_checks / 2, int(n) - 1))


def ladder_z(p: dict) -> float:
    """The critical value of Chapter 3's ladder and width checks (claim C3).

    Three residuals per measured configuration (:func:`ladder_check`), at every ladder
    size and every width ratio of :data:`WIDTH_RATIOS`: a Bonferroni correction over all
    of them at family-wise level :data:`ALPHA_FAMILY`. Statement: {prf:ref}`lem-rf-blp`.
    """
    n_checks = 3 * (len(p["ladder"]) + len(WIDTH_RATIOS))
    return z_bonferroni(p["reps_ladder"], n_checks, ALPHA_FAMILY)


def with_alternative(res: PosteriorW2S, alternative: str | None) -> PosteriorW2S:
    """The measurements as a wrong implementation would report them (claim C3).

    ``None`` returns ``res``. ``"eps = 0"``, ``"eps / 2"``, ``"-eps"`` change ``eps``;
    ``"unconditional mean"`` and ``"other teacher's labels"`` replace ``L_1`` everywhere
    (``eps``, ``dist``, ``spread``, ``heldout``) by the mean of the draws, or by ``L_1``
    evaluated at another teacher's labels. Statement: {prf:ref}`lem-rf-blp`.
    """
    if alternative is None:
        return res
    scale = {"eps = 0": 0.0, "eps / 2": 0.5, "-eps": -1.0}
    if alternative in scale:
        c = scale[alternative]
        return res.replace(eps=c * res.eps, pool_eps=c * res.pool_eps)
    tag = {"unconditional mean": "mean", "other teacher's labels": "other"}.get(alternative)
    if tag is None:
        raise ValueError(f"alternative: must be None or one of {ALTERNATIVES}, got {alternative!r}")
    return res.replace(pool_eps=getattr(res, f"pool_eps_{tag}"),
                       **{k: getattr(res, f"{k}_{tag}") for k in ("dist", "spread", "heldout")})


def ladder_check(lad: dict, z: float, alternative: str | None = None) -> dict:
    """Assert ``lem-rf-blp`` at every size of the ladder (claims C3, C4, C6).

    ``lad`` maps a size to a :class:`~w2sg_utils.rf_posterior.PosteriorW2S`; each paired
    mean must be within ``z`` standard errors of zero. Returns ``{(s, name): gap in
    SE}``; raises ``AssertionError`` naming the first failure. Statement:
    {prf:ref}`lem-rf-blp`.
    """
    if not z > 0:
        raise ValueError(f"z: must be positive, got {z!r}")
    gaps = {}
    for s, res in lad.items():
        for name, diff in identity_residuals(with_alternative(res, alternative)).items():
            m, se = mean_and_se(diff)
            gap = abs(m) / se if se > 0 else (0.0 if m == 0 else np.inf)
            if gap > z:
                raise AssertionError(f"{name} (s = {s}): |{m:.4g}| is {gap:.1f} SE > {z:.2f}")
            gaps[(s, name)] = float(gap)
    return gaps


def rejects(lad: dict, z: float, alternative: str | None = None) -> bool:
    """Whether :func:`ladder_check` raises on these measurements (claim C3).
    Statement: {prf:ref}`lem-rf-blp`."""
    try:
        ladder_check(lad, z, alternative)
    except AssertionError:
        return True
    return False


def bootstrap_power(lad: dict, z: float, alternatives=ALTERNATIVES, n_boot: int = 200,
                    seed: int = 0) -> dict[str, float]:
    """Rejection rate of :func:`ladder_check` on resampled repetitions (claim C3).

    Each of ``n_boot`` resamples draws the repetitions of every size with replacement
    and runs the check under each alternative (``None``: the truth, whose entry is the
    *acceptance* rate). An estimate of the power at the measured effect sizes and the
    chapter's number of repetitions. Statement: {prf:ref}`lem-rf-blp`.
    """
    if not isinstance(n_boot, int) or n_boot < 10:
        raise ValueError(f"n_boot: need an integer >= 10, got {n_boot!r}")
    rng = np.random.default_rng(seed)
    hits = {alt: 0 for alt in alternatives}
    for _ in range(n_boot):
        boot = {}
        for s, res in lad.items():
            idx = rng.integers(0, len(res.risk_w), len(res.risk_w))
            boot[s] = res.replace(**{k: v[idx] for k, v in res.__dict__.items()})
        for alt in alternatives:
            hits[alt] += rejects(boot, z, alt) != (alt is None)
    return {("truth (accepted)" if alt is None else alt): h / n_boot for alt, h in hits.items()}
