"""The posterior-mean teacher on real data and the checks of C3 and C4 (Chapter 6).

For the binary KL the dual mean is taken in logits: the posterior-mean teacher is
``fbar_w = sigmoid(E[z_w | G])`` with ``G`` what the student depends on: its inputs
``X_s`` (fixed), its own randomness (fixed) and its teacher's logits ``a = z_w(X_s)``.
So ``zbar(x) = E[z_w(x) | z_w(X_s) = a]``.

Estimate (:func:`crossfit_posterior_mean`). Across ``M`` i.i.d. teacher draws
(:mod:`w2sg_utils.teacher_draws`), the best linear predictor of ``z_w(test)`` given a
*reduced-rank* summary of ``a``: its scores on the top ``rank`` principal axes of the
draws' ``a``. ``rank`` is a parameter fixed in advance (Chapter 6 says how it was
chosen). Cross-fitted: the draws are cut into ``n_folds`` folds and the axes and the
predictor used for a draw are fitted on the other folds only, so the teacher conditioned
on is never among the draws that fit its predictor. Reported with it: the residual
variance of the regression (the teacher's conditional variance in logits), the
Gaussian-design estimation error of :class:`~w2sg_utils.posterior_mean.LinearPosteriorMean`
and, as foils for the checks, the unconditional mean logit of the fitting draws and the
predictor evaluated at *another* draw's ``a``.

Terms (:func:`posterior_terms`), per student draw ``k`` and test pair ``i``:
``gain = CE(y, z_w) - CE(y, z_s)``, ``misfit = KL(p_s || p_w)``,
``eps = (y - p_s)(z_s - zbar)`` (its definition; never ``gain - misfit``),
``distance = KL(p_s || fbar)`` and ``cond_var = KL(fbar || p_w)``.

Checks (:func:`identity_check`). C3: ``E gain = E misfit + eps``; C4:
``E misfit = E distance + E cond_var``. Each side is estimated on its own. With the
posterior mean, the per-pair discrepancy has expectation zero for *every* test pair
(the label is independent of training, the student a function of ``a``), so the check
holds the test pairs fixed: the statistic is the mean over the ``K`` i.i.d. draws of
their per-draw discrepancy divided by its standard error over draws (:func:`draw_z`),
rejected beyond a normal quantile ``z_crit``. Its power against each wrong alternative
(a term replaced by a plausible wrong one) is *measured* by resampling the draws with
replacement and counting rejections (:func:`bootstrap_rejection`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from ._common import check_int, positive_int
from .ensemble_terms import binary_ce, binary_kl_logits
from .posterior_mean import linear_posterior_mean, split_half_posterior_mean

__all__ = [
    "CrossFitPosterior",
    "crossfit_posterior_mean",
    "posterior_terms",
    "c3_alternatives",
    "draw_z",
    "bootstrap_rejection",
    "IdentityCheck",
    "identity_check",
]


@dataclass(frozen=True)
class CrossFitPosterior:
    """Cross-fitted posterior-mean logits of ``M`` teacher draws (claims C3, C4).

    ``zbar`` ``(M, n)``: draw ``k``'s ``E[z_w(test) | a_k]`` from the predictor of the
    other folds; ``zbar_other`` ``(M, n)``: that predictor at another draw's ``a`` (a
    wrong conditioning); ``mean`` ``(M, n)``: the other folds' mean logit (the
    unconditional proxy); ``cond_var`` ``(n_folds,)``: residual variance per target,
    averaged; ``error`` ``(n_folds,)``: Gaussian-design mean squared error of ``zbar``;
    ``total_var``: the variance of ``z_w(test)`` across draws, averaged over pairs;
    ``split_half`` ``(n_folds,)``: the model-free split-half discrepancy of two fits on
    disjoint halves of each fold's fitting draws (the squared error of one half-size
    fit), next to ``half_formula``, the Gaussian-design formula for such a fit (NaN
    when a half holds fewer than ``rank + 3`` draws).

    Statement: {prf:ref}`thm-expected-misfit`.
    """

    zbar: np.ndarray
    zbar_other: np.ndarray
    mean: np.ndarray
    cond_var: np.ndarray
    error: np.ndarray
    total_var: float
    rank: int
    n_folds: int
    split_half: np.ndarray
    half_formula: np.ndarray


def crossfit_posterior_mean(obs_draws, target_draws, rank: int,
                            n_folds: int = 8) -> CrossFitPosterior:
    """``E[z_w(test) | top-rank scores of z_w(X_s)]``, cross-fitted over folds (C3, C4).

    ``obs_draws`` ``(M, n_s)``: teacher logits at the student's inputs; ``target_draws``
    ``(M, n)``: the same teachers at test pairs. Folds are consecutive blocks of draws
    (the draws are i.i.d., so any fixed split is a random one). Per fold: principal axes
    of the other folds' centred ``obs``, their scores, one
    :func:`~w2sg_utils.posterior_mean.linear_posterior_mean` fit, evaluated at the fold's
    own scores and at the scores of the fold's draws shifted by one (``zbar_other``).

    Statement: {prf:ref}`thm-expected-misfit`.
    """
    A = np.asarray(obs_draws, dtype=np.float64)
    B = np.asarray(target_draws, dtype=np.float64)
    if A.ndim != 2 or B.ndim != 2 or len(A) != len(B):
        raise ValueError(f"target_draws: expected (M, n) with M = {len(A)} like obs_draws, "
                         f"got {B.shape}")
    M = len(A)
    n_folds = check_int(n_folds, "n_folds", min=2, max=M // 2)
    fit_size = M - -(-M // n_folds)
    rank = check_int(rank, "rank", min=1, max=min(A.shape[1], fit_size - 4))
    folds = np.arange(M) * n_folds // M
    zbar, other, mean = (np.empty_like(B) for _ in range(3))
    cond_var, error = np.empty(n_folds), np.empty(n_folds)
    half, half_formula = np.empty(n_folds), np.empty(n_folds)
    with threadpool_limits(1):  # small matrices: threads only contend
        _crossfit(A, B, rank, folds, zbar, other, mean, cond_var, error,
                  half, half_formula)
    return CrossFitPosterior(zbar, other, mean, cond_var, error,
                             float(B.var(0, ddof=1).mean()), rank, n_folds,
                             half, half_formula)


def _crossfit(A, B, rank, folds, zbar, other, mean, cond_var, error, half,
              half_formula):
    for f in range(folds[-1] + 1):
        held, fit = folds == f, folds != f
        mu = A[fit].mean(0)
        _, _, vt = np.linalg.svd(A[fit] - mu, full_matrices=False)
        axes = vt[:rank].T
        s_fit, s_held = (A[fit] - mu) @ axes, (A[held] - mu) @ axes
        est = linear_posterior_mean(s_fit, B[fit], s_held)
        zbar[held] = est.fbar
        other[held] = est.predict(np.roll(s_held, 1, axis=0))
        mean[held] = B[fit].mean(0)
        cond_var[f], error[f] = float(est.cond_var), float(est.error_formula)
        if len(s_fit) // 2 < rank + 3:  # too few draws for two half-size fits
            half[f] = half_formula[f] = np.nan
            continue
        first, second, disc = split_half_posterior_mean(s_fit, B[fit], s_held)
        half[f] = float(disc.mean())
        half_formula[f] = float(first.error_formula + second.error_formula) / 2


def posterior_terms(y, z_w, z_s, zbar) -> dict[str, np.ndarray]:
    """Per-draw, per-pair terms ``(K, n)`` against the posterior-mean logits ``zbar`` (C3, C4).

    ``gain``, ``misfit`` (``KL(p_s || p_w)``), ``eps`` (``(y - p_s)(z_s - zbar)``),
    ``distance`` (``KL(p_s || fbar)``) and ``cond_var`` (``KL(fbar || p_w)``).

    Statements: {prf:ref}`thm-expected-misfit`, {prf:ref}`prop-misfit-decomposition`.
    """
    z_w, z_s, zbar = (np.asarray(v, dtype=np.float64) for v in (z_w, z_s, zbar))
    if z_w.ndim != 2 or z_s.shape != z_w.shape or zbar.shape != z_w.shape:
        raise ValueError(f"z_s, zbar: expected the shape of z_w (K, n), got "
                         f"{z_w.shape}, {z_s.shape}, {zbar.shape}")
    y = np.asarray(y, dtype=np.float64)
    if y.shape != z_w.shape[1:] or np.any((y < 0) | (y > 1)):
        raise ValueError(f"y: expected {z_w.shape[1]} labels in [0, 1], got {y.shape}")
    p_s = 1.0 / (1.0 + np.exp(-z_s))
    return {
        "gain": binary_ce(y, z_w) - binary_ce(y, z_s),
        "misfit": binary_kl_logits(z_s, z_w),
        "eps": (y - p_s) * (z_s - zbar),
        "distance": binary_kl_logits(z_s, zbar),
        "cond_var": binary_kl_logits(zbar, z_w),
    }


def c3_alternatives(y, z_s, terms: dict, post: CrossFitPosterior) -> dict[str, np.ndarray]:
    """Wrong right-hand sides ``misfit + eps'`` ``(K, n)`` of C3, for its power (claim C3).

    ``eps'`` is ``0`` (gain equals misfit), ``eps / 2``, ``-eps``, ``eps`` with the
    unconditional mean logit in place of ``zbar``, or with the predictor evaluated at
    another teacher's logits. ``terms``: :func:`posterior_terms` of the first ``K``
    draws (those with students); ``post`` the estimate for all draws.

    Statement: {prf:ref}`prop-ch06-proxy-split`.
    """
    K = len(z_s)
    p_s = 1.0 / (1.0 + np.exp(-np.asarray(z_s, dtype=np.float64)))
    r = np.asarray(y, dtype=np.float64) - p_s
    m, eps = terms["misfit"], terms["eps"]
    return {
        "eps = 0": m,
        "eps / 2": m + eps / 2,
        "-eps": m - eps,
        "unconditional mean": m + r * (z_s - post.mean[:K]),
        "another teacher": m + r * (z_s - post.zbar_other[:K]),
    }


def draw_z(values) -> float:
    """``mean / se`` of a ``(K, n)`` table, ``se`` over the ``K`` i.i.d. draws (C3, C4).

    Conditional on the test pairs: the row means (one per draw) are i.i.d. given the
    pool and the test set, and ``se = sd(row means) / sqrt(K)``.
    Statement: {prf:ref}`thm-expected-misfit`.
    """
    rows = np.asarray(values, dtype=np.float64).mean(1)
    se = rows.std(ddof=1) / np.sqrt(len(rows))
    return float(rows.mean() / se) if se > 0 else float("inf") * np.sign(rows.mean())


def bootstrap_rejection(values, z_crit: float, n_boot: int = 200, seed: int = 0) -> float:
    """Fraction of draw-resamples in which ``|draw_z| > z_crit`` (measured power).

    ``values`` ``(K, n)``: per-draw, per-pair discrepancies under an alternative. The
    ``K`` draws are i.i.d. given the pool and the test pairs, so resampling them with
    replacement imitates new experiments of the same size on the same test pairs; the
    fraction that the check (:func:`draw_z`) rejects estimates its power at these sizes
    (claims C3, C4). Statement: {prf:ref}`thm-expected-misfit`.
    """
    rows = np.asarray(values, dtype=np.float64).mean(1)
    n_boot = positive_int(n_boot, "n_boot")
    K = len(rows)
    rng = np.random.default_rng([check_int(seed, "seed", min=0), 0xB007])
    counts = rng.multinomial(K, np.full(K, 1 / K), size=n_boot).astype(np.float64)
    mean = counts @ rows / K
    var = np.maximum(counts @ rows**2 - K * mean**2, 0.0) / (K - 1)
    return float(np.mean(np.abs(mean) > z_crit * np.sqrt(var / K)))


@dataclass(frozen=True)
class IdentityCheck:
    """Outcome of :func:`identity_check`: ``z`` of the null, ``power`` per alternative.

    Claims C3, C4; statement: {prf:ref}`thm-expected-misfit`.
    """

    estimate: float
    se: float
    z: float
    z_crit: float
    z_alt: dict
    power: dict

    @property
    def passed(self) -> bool:
        """The null is not rejected: ``|z| <= z_crit``."""
        return abs(self.z) <= self.z_crit


def identity_check(lhs, rhs, alternatives: dict, z_crit: float, n_boot: int = 200,
                   seed: int = 0) -> IdentityCheck:
    """Test ``E lhs = E rhs`` and measure its power against wrong ``rhs`` (claims C3, C4).

    ``lhs``, ``rhs`` ``(K, n)``: the two sides per draw and test pair, each estimated on
    its own (C3: ``gain`` and ``misfit + eps``). ``alternatives`` maps a name to a wrong
    ``rhs``. Returns the null's two-level ``z`` and, per alternative, its ``z`` and the
    bootstrap rejection rate at ``z_crit`` (:func:`bootstrap_rejection`).

    Statements: {prf:ref}`thm-expected-misfit`, {prf:ref}`prop-misfit-decomposition`.
    """
    lhs, rhs = np.asarray(lhs, dtype=np.float64), np.asarray(rhs, dtype=np.float64)
    if lhs.ndim != 2 or rhs.shape != lhs.shape:
        raise ValueError(f"rhs: expected the shape of lhs (K, n), got {rhs.shape}")
    if not alternatives:
        raise ValueError("alternatives: name at least one wrong right-hand side")
    rows = (lhs - rhs).mean(1)
    se = float(rows.std(ddof=1) / np.sqrt(len(rows)))
    z_alt, power = {}, {}
    for i, (name, alt) in enumerate(alternatives.items()):
        d = lhs - np.asarray(alt, dtype=np.float64)
        z_alt[name] = draw_z(d)
        power[name] = bootstrap_rejection(d, z_crit, n_boot, seed + i)
    return IdentityCheck(float(rows.mean()), se, draw_z(lhs - rhs), float(z_crit), z_alt,
                         power)
