"""Assertions with justified tolerances, used by every chapter.

Monte Carlo checks compare an estimate with its target within ``z`` standard errors.
The default ``z = 5`` makes a false alarm for one check a ~6e-7 event under a normal
approximation, so checks keep passing for any seed while a real discrepancy of a few
standard errors at the chapter's sample sizes still fails.
"""

from __future__ import annotations

import numpy as np

__all__ = ["mean_and_se", "assert_within_se", "assert_close", "z_for_samples", "rejection_power",
           "Z_DEFAULT"]

Z_DEFAULT = 5.0


def mean_and_se(samples, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Sample mean and its standard error ``std / sqrt(n)`` (ddof=1) along ``axis``."""
    x = np.asarray(samples, dtype=np.float64)
    n = x.shape[axis]
    if n < 2:
        raise ValueError(f"samples: need at least 2 along axis {axis}, got {n}")
    return x.mean(axis=axis), x.std(axis=axis, ddof=1) / np.sqrt(n)


def z_for_samples(n: int, z: float = Z_DEFAULT) -> float:
    """Critical value for a mean of ``n`` i.i.d. samples whose SE is estimated from them.

    ``(mean - target) / se`` then follows Student's t with ``n - 1`` degrees of freedom
    (for normal samples), whose tails are much heavier than the normal's when ``n`` is
    small: ``P(|t| > 5)`` is 0.13 for ``n = 2``, 1.6e-3 for ``n = 8`` and 1.6e-4 for
    ``n = 16``. This returns the t quantile with the same two-sided tail probability as
    ``z`` under the normal distribution (``z = 5``: 5.7e-7), so that a check with few
    repetitions keeps the false-alarm rate of the ``z = 5`` convention. It decreases to
    ``z`` as ``n`` grows (5.57 at ``n = 64``).
    """
    from scipy.stats import norm, t

    if not isinstance(n, int | np.integer) or isinstance(n, bool) or n < 2:
        raise ValueError(f"n: need an integer >= 2 samples, got {n!r}")
    if not z > 0:
        raise ValueError(f"z: must be positive, got {z!r}")
    return float(t.isf(norm.sf(z), int(n) - 1))


def assert_within_se(estimate, target, se, z: float = Z_DEFAULT, what: str = "estimate",
                     floor: float = 1e-12) -> float:
    """Assert ``|estimate - target| <= z * se + floor``; return the gap in SE units.

    ``floor`` absorbs floating-point rounding when ``se`` is (numerically) zero.
    """
    # broadcast first, so that an array of estimates can be compared with one target
    estimate, target, se = np.broadcast_arrays(
        *(np.asarray(a, dtype=np.float64) for a in (estimate, target, se)))
    if np.any(se < 0) or not np.all(np.isfinite(se)):
        raise ValueError(f"se: must be finite and non-negative for {what}")
    gap = np.abs(estimate - target)
    ok = gap <= z * se + floor
    if not np.all(ok):
        worst = np.argmax(np.ravel(gap - z * se))
        raise AssertionError(
            f"{what}: |{np.ravel(estimate)[worst]:.6g} - {np.ravel(target)[worst]:.6g}| = "
            f"{np.ravel(gap)[worst]:.3g} exceeds {z} x SE = {z * np.ravel(se)[worst]:.3g}"
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.max(np.where(se > 0, gap / se, 0.0)))


def assert_close(actual, expected, rtol: float = 1e-10, atol: float = 1e-12,
                 what: str = "value") -> None:
    """Exact-arithmetic check (enumeration, algebraic identities) up to rounding."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if not np.allclose(actual, expected, rtol=rtol, atol=atol):
        err = np.max(np.abs(actual - expected))
        raise AssertionError(f"{what}: max abs error {err:.3g} (rtol={rtol}, atol={atol})")


def rejection_power(gaps, se, z: float = Z_DEFAULT) -> float:
    """Power of :func:`assert_within_se` against a wrong target: the probability that at
    least one of the assertions ``|estimate_j - target_j| <= z * se_j`` fails when each
    asserted target is off by ``gaps[j]`` (normal approximation, independent estimates).

    With ``t_j = |gap_j| / se_j`` one assertion rejects with probability
    ``P(|t_j + N(0, 1)| > z) = Phi(t_j - z) + Phi(-t_j - z)``; a check made of several
    assertions rejects unless all of them pass: ``1 - prod_j (1 - p_j)``. Chapters use it
    to report the power of a Monte Carlo check against named wrong alternatives (a dropped
    term, a dropped factor, the arithmetic mean), computed from the check's own standard
    errors at the chapter's settings (the ledger's ``"test"`` records, claim C1,
    {ref}`sec-ch01`).
    """
    from scipy.stats import norm

    gaps, se = np.broadcast_arrays(np.asarray(gaps, dtype=np.float64),
                                   np.asarray(se, dtype=np.float64))
    if gaps.size == 0 or not np.all(np.isfinite(gaps)):
        raise ValueError(f"gaps: need finite gaps, got {gaps!r}")
    if not np.all((se > 0) & np.isfinite(se)):
        raise ValueError(f"se: must be finite and positive, got {se!r}")
    if not z > 0:
        raise ValueError(f"z: must be positive, got {z!r}")
    t = np.abs(gaps) / se
    reject = norm.cdf(t - z) + norm.cdf(-t - z)  # per gap, under the normal model
    if np.any(reject >= 1.0):  # a certain rejection (log1p(-1) would be -inf)
        return 1.0
    log_pass = np.log1p(-reject)
    return float(-np.expm1(np.sum(log_pass)))
