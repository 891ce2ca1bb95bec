"""Intervals that include test-set sampling (claim C9, Chapters 5 and 6).

An experiment trains ``S`` seeds (training randomness: data swap, teacher sample,
student order) and evaluates every seed on the *same* ``n`` test pairs. A per-pair value
``v[s, i]`` (0/1 correctness, a cross-entropy, a paired difference of two runs) then has
two sources of error in its grand mean ``vbar``: the draw of the test pairs, common to
all seeds, and the training randomness of each seed. A Student-``t`` interval over the
``S`` seed means sees only the second; this module estimates both.

Model (crossed random effects, the standard two-way layout without replication)::

    v[s, i] = mu + a_i + b_s + e_si,   Var(vbar) = s2_a / n + s2_b / S + s2_e / (n S).

With ``A`` the variance over pairs of the pair means ``vbar[., i]``, ``B`` the variance
over seeds of the seed means ``vbar[s, .]`` (both ``ddof = 1``) and ``E`` the residual
mean square of the two-way table, ``E[A] = s2_a + s2_e / S``, ``E[B] = s2_b + s2_e / n`` and
``E[E] = s2_e``, so

    V = A / n + B / S - E / (n S)

is unbiased for ``Var(vbar)`` (:func:`two_level_cov`; ``A / n + B / S`` alone, the
"conservative" method, counts the interaction twice). As usual for variance components,
a negative estimate of ``s2_a = E[A] - s2_e / S`` or ``s2_b = E[B] - s2_e / n`` is set
to zero, so ``V`` is never below ``max(A / n, B / S)``.
Degrees of freedom for the ``t`` quantile: Satterthwaite. With one seed only ``A / n``
is available and the interval is conditional on that seed's training.

Ratios (the PGR of Burns et al., ``(acc_s - acc_w) / (acc_c - acc_w)``) get a Fieller
interval (:func:`ratio_interval`) from the same two-level covariance of numerator and
denominator: it is unbounded when the denominator is not clearly non-zero, instead of
silently reporting a huge symmetric interval.

What every interval is conditional on: the training pools (the first rows of
``train_gt`` and ``train_w2s``), the pretrained models and the hyperparameters; it
covers a new draw of test pairs from the same distribution and new training seeds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "Interval",
    "two_level_cov",
    "mean_interval",
    "difference_interval",
    "ratio_interval",
    "pgr_interval",
    "binomial_bound_interval",
    "bootstrap_interval",
]


@dataclass(frozen=True)
class Interval:
    """An estimate with its standard error and a ``level`` interval.

    ``conditional_on`` says which randomness the interval does *not* cover.
    ``components`` holds the estimated variance contributions (``pairs``, ``seeds``,
    ``interaction``) of :func:`two_level_cov` when available.
    """

    estimate: float
    se: float
    lo: float
    hi: float
    df: float
    level: float
    n_seeds: int
    n_pairs: int
    method: str
    conditional_on: str
    components: dict | None = None

    def as_dict(self, prefix: str = "") -> dict:
        """``{prefix}mean``, ``se``, ``lo``, ``hi`` (for a results table)."""
        return {f"{prefix}mean": self.estimate, f"{prefix}se": self.se,
                f"{prefix}lo": self.lo, f"{prefix}hi": self.hi}


_CONDITIONAL = ("the training pools, pretrained models and hyperparameters (covers test-pair "
                "sampling and training seeds)")
_CONDITIONAL_ONE_SEED = ("the single training seed, the training pools, pretrained models and "
                         "hyperparameters (covers test-pair sampling only)")


def _check_level(level) -> float:
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level < 1:
        raise ValueError(f"level: must lie in (0, 1), got {level!r}")
    return float(level)


def _as_table(values, name: str = "values") -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 1:
        v = v[None, :]
    if v.ndim != 2:
        raise ValueError(f"{name}: expected shape (n_seeds, n_pairs), got {v.shape}")
    if v.shape[1] < 2:
        raise ValueError(f"{name}: need at least 2 test pairs, got shape {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name}: contains NaN or infinite values (count NaN runs before)")
    return v


def _stack(tables, name: str = "values") -> np.ndarray:
    arrs = [_as_table(t, name) for t in tables]
    if any(a.shape != arrs[0].shape for a in arrs):
        raise ValueError(f"{name}: every table must have the same (n_seeds, n_pairs) shape, "
                         f"got {[a.shape for a in arrs]}")
    return np.stack(arrs)


def _psd(mat: np.ndarray) -> np.ndarray:
    """Projection onto the positive semidefinite matrices (negative eigenvalues to 0)."""
    val, vec = np.linalg.eigh((mat + mat.T) / 2)
    return (vec * np.maximum(val, 0.0)) @ vec.T


def two_level_cov(tables, method: str = "anova") -> tuple[np.ndarray, np.ndarray, dict]:
    """Covariance of the grand means of ``m`` tables ``(S, n)`` on shared seeds and pairs.

    Method of moments for the crossed layout (module docstring, claim C9): with the mean
    squares ``A`` (pairs), ``B`` (seeds) and ``E`` (residual), as ``(m, m)`` matrices, the
    components are ``Sigma_a = A - E / S``, ``Sigma_b = B - E / n``, ``Sigma_e = E``, each
    projected onto the positive semidefinite matrices (a negative variance estimate is
    set to zero), and ``cov = Sigma_a / n + Sigma_b / S + Sigma_e / (n S)``; without
    truncation this is ``A / n + B / S - E / (n S)``. ``method="conservative"`` returns
    ``A / n + B / S``. Returns ``(means (m,), cov (m, m), parts)``; ``parts`` holds the
    three contributions (``pairs``, ``seeds``, ``interaction``), the mean squares
    (``ms_pairs``, ``ms_seeds``, ``ms_resid``) and their degrees of freedom (``df``).

    Statement: {ref}`sec-ch05`.
    """
    if method not in ("anova", "conservative"):
        raise ValueError(f"method: 'anova' or 'conservative', got {method!r}")
    v = _stack(tables)
    m, S, n = v.shape
    grand = v.mean(axis=(1, 2))
    pair_dev = v.mean(axis=1) - grand[:, None]  # (m, n)
    A = pair_dev @ pair_dev.T / (n - 1)
    B = np.zeros((m, m))
    E = np.zeros((m, m))
    if S > 1:
        seed_dev = v.mean(axis=2) - grand[:, None]  # (m, S)
        B = seed_dev @ seed_dev.T / (S - 1)
        resid = (v - v.mean(axis=1, keepdims=True) - v.mean(axis=2, keepdims=True)
                 + grand[:, None, None]).reshape(m, -1)
        E = resid @ resid.T / ((S - 1) * (n - 1))
    if method == "conservative" or S == 1:
        parts = {"pairs": A / n, "seeds": B / S, "interaction": np.zeros((m, m))}
    else:
        parts = {"pairs": _psd(A - E / S) / n, "seeds": _psd(B - E / n) / S,
                 "interaction": E / (n * S)}
    cov = parts["pairs"] + parts["seeds"] + parts["interaction"]
    parts |= {"ms_pairs": A, "ms_seeds": B, "ms_resid": E,
              "df": {"pairs": n - 1, "seeds": S - 1, "interaction": (S - 1) * (n - 1)}}
    return grand, cov, parts


def _satterthwaite(parts: dict, weights: np.ndarray, cov: np.ndarray) -> float:
    """Satterthwaite degrees of freedom of ``w' cov w`` from the mean squares.

    ``w' cov w ~ w'Aw / n + w'Bw / S - w'Ew / (n S)``; each mean square has its own
    degrees of freedom (``n - 1``, ``S - 1``, ``(S - 1)(n - 1)``).
    """
    S = parts["df"]["seeds"] + 1
    n = parts["df"]["pairs"] + 1
    terms = {"pairs": weights @ parts["ms_pairs"] @ weights / n,
             "seeds": weights @ parts["ms_seeds"] @ weights / S,
             "interaction": weights @ parts["ms_resid"] @ weights / (n * S)}
    denom = sum(float(t) ** 2 / parts["df"][k] for k, t in terms.items() if parts["df"][k] > 0)
    total = float(weights @ cov @ weights)
    return total * total / denom if denom > 0 and total > 0 else float("inf")


def _quantile(level: float, df: float) -> float:
    from scipy import stats

    return float(stats.t.ppf(0.5 + level / 2, df)) if np.isfinite(df) else float(
        stats.norm.ppf(0.5 + level / 2))


def mean_interval(values, level: float = 0.95, method: str = "anova") -> Interval:
    """Two-level interval for the grand mean of ``values`` ``(S, n)`` (claim C9).

    ``values[s, i]`` is the value of seed ``s`` on test pair ``i`` (e.g. 0/1
    correctness with ties 1/2, or a per-pair cross-entropy); a 1-D array is one seed.

    Statement: {ref}`sec-ch05`.
    """
    level = _check_level(level)
    v = _as_table(values)
    grand, cov, parts = two_level_cov([v], method)
    se = float(np.sqrt(cov[0, 0]))
    df = _satterthwaite(parts, np.ones(1), cov)
    q = _quantile(level, df)
    S, n = v.shape
    comps = {k: float(parts[k][0, 0]) for k in ("pairs", "seeds", "interaction")}
    return Interval(float(grand[0]), se, float(grand[0]) - q * se, float(grand[0]) + q * se,
                    df, level, S, n, f"two-level ({method})",
                    _CONDITIONAL if S > 1 else _CONDITIONAL_ONE_SEED, comps)


def difference_interval(a, b, level: float = 0.95, method: str = "anova") -> Interval:
    """Paired difference ``mean(a - b)`` on the same seeds and test pairs (claim C9).

    Use it for comparisons between objectives (e.g. reverse CE minus CE): pairing
    removes the variance the two runs share (the difficulty of each test pair, the
    teacher of each seed).

    Statement: {ref}`sec-ch05`.
    """
    a, b = _as_table(a, "a"), _as_table(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"b: shape {b.shape} differs from a's {a.shape} (pair them first)")
    out = mean_interval(a - b, level, method)
    return Interval(**{**out.__dict__, "method": f"paired {out.method}"})


def ratio_interval(num, den, level: float = 0.95, method: str = "anova") -> Interval:
    """Fieller interval for ``mean(num) / mean(den)`` with two-level (co)variances.

    The set ``{r : (N - r D)^2 <= q^2 Var(N - r D)}`` with ``N``, ``D`` the grand means.
    When the denominator is not clearly non-zero (``D^2 <= q^2 Var(D)``) the set is
    unbounded and ``lo = -inf``, ``hi = inf``. ``se`` is the delta-method standard error.
    """
    level = _check_level(level)
    (N, D), cov, parts = two_level_cov([num, den], method)
    S, n = _as_table(num).shape
    if D == 0:
        raise ValueError("den: the mean of the denominator is exactly zero; the ratio is undefined")
    r = N / D
    w = np.array([1.0, -r]) / D
    se = float(np.sqrt(max(w @ cov @ w, 0.0)))
    df = _satterthwaite(parts, w, cov)
    q2 = _quantile(level, df) ** 2
    a = D * D - q2 * cov[1, 1]
    b = N * D - q2 * cov[0, 1]
    c = N * N - q2 * cov[0, 0]
    disc = b * b - a * c
    if a > 0 and disc >= 0:
        lo, hi = (b - np.sqrt(disc)) / a, (b + np.sqrt(disc)) / a
    else:
        lo, hi = -np.inf, np.inf
    return Interval(float(r), se, float(lo), float(hi), df, level, S, n, f"Fieller, two-level ({method})",
                    _CONDITIONAL if S > 1 else _CONDITIONAL_ONE_SEED)


def pgr_interval(correct_s, correct_w, correct_c, level: float = 0.95,
                 method: str = "anova") -> Interval:
    """PGR ``(acc_s - acc_w) / (acc_c - acc_w)`` of the pooled accuracies (Burns et al.).

    Inputs are per-pair correctness tables ``(S, n)`` of the student, the weak teacher
    and the ceiling on the same seeds and test pairs; the PGR is the ratio of the
    grand-mean gaps (not a mean of per-seed ratios) with a Fieller interval.
    """
    s, w, c = (_as_table(x, nm) for x, nm in ((correct_s, "correct_s"), (correct_w, "correct_w"),
                                               (correct_c, "correct_c")))
    if not (s.shape == w.shape == c.shape):
        raise ValueError(f"correct_w, correct_c: shapes {w.shape}, {c.shape} differ from "
                         f"correct_s's {s.shape}")
    return ratio_interval(s - w, c - w, level, method)


def binomial_bound_interval(acc_per_seed, n_pairs: int, level: float = 0.95) -> Interval:
    """Conservative interval for a mean accuracy when per-pair results are not stored.

    Uses ``Var_i(acc_i) <= p (1 - p)`` for the pair means (they lie in ``[0, 1]``), so
    ``SE^2 = p (1 - p) / n + Var_s / S`` is an upper bound (up to the interaction) on the
    two-level variance; ``df`` from the seed term when it dominates.
    """
    level = _check_level(level)
    x = np.asarray(acc_per_seed, dtype=np.float64).ravel()
    if isinstance(n_pairs, bool) or not isinstance(n_pairs, (int, np.integer)) or n_pairs < 2:
        raise ValueError(f"n_pairs: must be an integer >= 2, got {n_pairs!r}")
    if len(x) < 1 or not np.all(np.isfinite(x)) or np.any((x < 0) | (x > 1)):
        raise ValueError("acc_per_seed: need finite accuracies in [0, 1]")
    p = float(x.mean())
    v_pairs = p * (1 - p) / n_pairs
    v_seeds = float(x.var(ddof=1) / len(x)) if len(x) > 1 else 0.0
    se = float(np.sqrt(v_pairs + v_seeds))
    denom = v_pairs ** 2 / (n_pairs - 1) + (v_seeds ** 2 / (len(x) - 1) if len(x) > 1 else 0.0)
    df = (v_pairs + v_seeds) ** 2 / denom if denom > 0 else float("inf")
    q = _quantile(level, df)
    return Interval(p, se, p - q * se, p + q * se, df, level, len(x), int(n_pairs),
                    "binomial bound + seeds", _CONDITIONAL if len(x) > 1 else _CONDITIONAL_ONE_SEED,
                    {"pairs": v_pairs, "seeds": v_seeds, "interaction": 0.0})


def bootstrap_interval(tables, statistic, n_boot: int = 2000, level: float = 0.95,
                       seed: int = 0) -> Interval:
    """Two-level (pigeonhole) percentile bootstrap: resample seeds and test pairs.

    ``tables`` is a list of ``(S, n)`` tables on the same seeds and pairs;
    ``statistic(*tables)`` returns a float (e.g. a PGR of pooled means). Seeds and pairs
    are resampled independently with replacement (the same draw for every table, so
    paired structure is kept). This resampling over-counts the interaction (Owen 2007),
    so it is a conservative cross-check of :func:`two_level_cov`, not a replacement.
    """
    level = _check_level(level)
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 100:
        raise ValueError(f"n_boot: must be an integer >= 100, got {n_boot!r}")
    v = _stack(tables, "tables")
    _, S, n = v.shape
    rng = np.random.default_rng(seed)
    est = float(statistic(*v))
    stats_ = np.empty(n_boot)
    for b in range(n_boot):
        rs = rng.integers(0, S, S) if S > 1 else np.zeros(1, int)
        ri = rng.integers(0, n, n)
        stats_[b] = statistic(*v[:, rs][:, :, ri])
    lo, hi = np.quantile(stats_, [0.5 - level / 2, 0.5 + level / 2])
    return Interval(est, float(stats_.std(ddof=1)), float(lo), float(hi), float("inf"), level,
                    S, n, "two-level percentile bootstrap",
                    _CONDITIONAL if S > 1 else _CONDITIONAL_ONE_SEED)
