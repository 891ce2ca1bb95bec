"""Terms of the misfit theorem on real data, from an ensemble of teachers (Chapter 6).

Binary pairwise preferences, everything in logits: a teacher draw ``k`` predicts
``z_w[k, i]`` on test pair ``i``, the student trained on that teacher's soft labels
predicts ``z_s[k, i]``, and ``y[i]`` is the human label (``1`` when text ``a`` was
chosen). With ``A(z) = log(1 + e^z)`` (the log-partition of the Bernoulli family; its
derivative is the sigmoid ``p``), the binary KL divergence is the Bregman divergence of
``A`` with swapped arguments, and every term below is exact arithmetic on logits:

- cross-entropy risk ``CE(y, z) = A(z) - y z`` (claim C7: the KL risk up to ``H(y)``);
- misfit ``KL(p_s || p_w) = A(z_w) - A(z_s) - p_s (z_w - z_s)`` (student first, C3);
- cross term of the gain identity ``(y - p_s)(z_s - z_w)`` (claim C2);
- ``eps = (y - p_s)(z_s - zbar)`` with ``zbar`` the logit of the posterior-mean proxy
  (claim C3). The dual mean of teachers for the binary KL is the sigmoid of their mean
  logit (claim C1), so the proxy of an ensemble is ``zbar = mean_k z_w[k]``.

The proxy. The theorem's ``fbar_w`` is the dual mean of the teacher *given the
student*. An ensemble of independently trained teachers estimates the *unconditional*
dual mean ``m = sigmoid(E z_w)`` instead (claim C4's "ensemble approximates the posterior
mean"). With it the expected gain splits exactly as

    E R(f_w) - E R(f_s) = E M(f_s, f_w) + eps_proxy + C,
    C = E_x Cov(p_s(x), z_w(x))   (over the training randomness),

where ``C`` measures how much a student follows the fluctuations of its own teacher; the
theorem's ``eps`` is ``eps_proxy + C``. ``C`` needs no labels (:func:`coupling`).

Finite ``K``. ``eps`` is linear in the proxy's logit, so a proxy that excludes the
student's own teacher (leave-one-out, :func:`loo_logits`) makes ``eps`` unbiased at every
``K >= 2``; including the student's own teacher biases it by ``C / K``. The variance term
``E KL(m || p_w)`` of claim C1 is not linear in the proxy: its plug-in estimate from
``K`` members is biased down by ``E KL(m || m_K)`` (about ``1/K`` of it), and
``K / (K - 1)`` times the plug-in removes that bias to second order
(:func:`teacher_bias_variance`).
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit as sigmoid

from ._common import check_int

__all__ = [
    "log_partition",
    "binary_ce",
    "binary_kl_logits",
    "binary_entropy",
    "loo_logits",
    "group_loo_logits",
    "misfit_terms",
    "coupling",
    "teacher_bias_variance",
    "proxy_distance",
    "doubling_units",
]


def log_partition(z) -> np.ndarray:
    """``A(z) = log(1 + e^z)``, computed stably (Chapter 6)."""
    return np.logaddexp(0.0, np.asarray(z, dtype=np.float64))


def binary_ce(y, z) -> np.ndarray:
    """Cross-entropy ``-[y log p + (1 - y) log(1 - p)] = A(z) - y z`` of logit ``z`` (C7).

    Statement: {ref}`sec-ch06`.
    """
    z = np.asarray(z, dtype=np.float64)
    return log_partition(z) - np.asarray(y, dtype=np.float64) * z


def binary_kl_logits(z_a, z_b) -> np.ndarray:
    """``KL(p_a || p_b) = A(z_b) - A(z_a) - p_a (z_b - z_a)`` from logits (claims C1, C3).

    Statement: {prf:ref}`def-bregman`.
    """
    z_a, z_b = np.asarray(z_a, dtype=np.float64), np.asarray(z_b, dtype=np.float64)
    return log_partition(z_b) - log_partition(z_a) - sigmoid(z_a) * (z_b - z_a)


def binary_entropy(z) -> np.ndarray:
    """Entropy ``H(p) = A(z) - p z`` (nats) of the Bernoulli with logit ``z`` (claim C7).

    Statement: {prf:ref}`cor-entropy-gain`.
    """
    z = np.asarray(z, dtype=np.float64)
    return log_partition(z) - sigmoid(z) * z


def _members(z, name: str) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or z.shape[0] < 2:
        raise ValueError(f"{name}: expected shape (K, n) with K >= 2 members, got {z.shape}")
    if not np.all(np.isfinite(z)):
        raise ValueError(f"{name}: contains NaN or infinite logits")
    return z


def loo_logits(z_w) -> np.ndarray:
    """Leave-one-out proxy: row ``k`` is the mean logit of the other ``K - 1`` members (C4).

    Statement: {prf:ref}`prop-ch06-proxy-split`.
    """
    z_w = _members(z_w, "z_w")
    K = z_w.shape[0]
    return (z_w.sum(axis=0) - z_w) / (K - 1)


def group_loo_logits(z_w, K: int) -> np.ndarray:
    """Leave-one-out proxies within consecutive groups of ``K`` members.

    The ``M`` members are split into ``M // K`` groups of ``K`` (``K`` must divide
    ``M``); each member's proxy is the mean logit of the other ``K - 1`` in its group, so
    ``eps`` with an ensemble of ``K`` teachers is computed ``M // K`` times (Chapter 6).
    """
    z_w = _members(z_w, "z_w")
    M = z_w.shape[0]
    K = check_int(K, "K", min=2, max=M)
    if M % K:
        raise ValueError(f"K: must be an integer in [2, {M}] dividing {M}, got {K!r}")
    g = z_w.reshape(M // K, K, -1)
    return ((g.sum(axis=1, keepdims=True) - g) / (K - 1)).reshape(z_w.shape)


def misfit_terms(y, z_w, z_s, proxy=None) -> dict[str, np.ndarray]:
    """Per-draw, per-pair terms of the gain identity and the misfit theorem (C2, C3, C7).

    ``z_w``, ``z_s``: ``(K, n)`` logits of teacher draw ``k`` and of the student trained
    on it; ``y``: ``(n,)`` labels in ``[0, 1]``; ``proxy``: ``(K, n)`` or ``(n,)`` logits
    of the posterior-mean proxy for each draw (default :func:`loo_logits`). Returns
    ``(K, n)`` arrays ``risk_w``, ``risk_s``, ``gain`` (``risk_w - risk_s``), ``misfit``
    (``KL(p_s || p_w)``), ``cross`` (so ``gain = misfit + cross`` exactly), ``eps`` (from
    its definition with the proxy), ``entropy_s``, ``rce`` (``RCE(p_s, p_w) = misfit +
    entropy_s``) and ``min_entropy_w`` (``-log max(p_w, 1 - p_w)``).

    Statements: {prf:ref}`prop-ch06-proxy-split`, {prf:ref}`thm-expected-misfit`,
    {prf:ref}`cor-entropy-gain`.
    """
    z_w, z_s = _members(z_w, "z_w"), _members(z_s, "z_s")
    if z_s.shape != z_w.shape:
        raise ValueError(f"z_s: shape {z_s.shape} differs from z_w's {z_w.shape}")
    y = np.asarray(y, dtype=np.float64)
    if y.shape != z_w.shape[1:] or np.any((y < 0) | (y > 1)):
        raise ValueError(f"y: expected {z_w.shape[1]} labels in [0, 1], got shape {y.shape}")
    zbar = loo_logits(z_w) if proxy is None else np.broadcast_to(
        np.asarray(proxy, dtype=np.float64), z_w.shape)
    p_s = sigmoid(z_s)
    risk_w, risk_s = binary_ce(y, z_w), binary_ce(y, z_s)
    misfit = binary_kl_logits(z_s, z_w)
    entropy_s = binary_entropy(z_s)
    return {
        "risk_w": risk_w, "risk_s": risk_s, "gain": risk_w - risk_s, "misfit": misfit,
        "cross": (y - p_s) * (z_s - z_w), "eps": (y - p_s) * (z_s - zbar),
        "entropy_s": entropy_s, "rce": misfit + entropy_s,
        "min_entropy_w": log_partition(-np.abs(z_w)),
    }


def coupling(z_w, z_s) -> np.ndarray:
    """``C(x) = Cov_k(p_s(x), z_w(x))`` over teacher draws (``ddof = 1``), per pair (C3, C4).

    No labels enter. With the leave-one-out proxy, ``mean_k cross - mean_k eps`` equals
    this covariance exactly; its expectation is the difference between the theorem's
    ``eps`` (posterior mean given the student) and ``eps`` with the unconditional proxy.

    Statement: {prf:ref}`prop-ch06-proxy-split`.
    """
    z_w, z_s = _members(z_w, "z_w"), _members(z_s, "z_s")
    p_s = sigmoid(z_s)
    return ((p_s - p_s.mean(0)) * (z_w - z_w.mean(0))).sum(0) / (z_w.shape[0] - 1)


def teacher_bias_variance(y, z, K: int | None = None) -> dict[str, np.ndarray]:
    """Bias-variance terms (claim C1, binary KL) of an ensemble, per pair, with finite-K corrections.

    ``z``: ``(M, n)`` logits of ``M`` independent draws of a predictor (teachers, or the
    students trained on them); ``y``: the observed labels. The members are split into
    ``M // K`` groups of ``K`` (default one group of ``M``) and each quantity is averaged
    over the groups. Returns ``(n,)`` arrays:

    - ``expected_loss``: mean member cross-entropy (identified);
    - ``variance``: plug-in ``mean_k KL(m_K || p_k)``, ``m_K`` the group's dual mean;
      ``variance_corrected = K / (K - 1) * variance`` (second-order unbiased);
    - ``noise_bias``: ``CE(y, m_K)``, the loss of the dual mean, which estimates
      noise + bias (only their sum is identified when ``ybar`` is unknown: with one
      hard label per pair a noise term computed from it is exactly zero and the label
      noise sits in the bias); ``noise_bias_corrected = noise_bias - variance / (K - 1)``;
    - ``proxy_mse``: the unbiased estimate ``s^2 / K`` of ``E (zbar_K - E z)^2``, the
      squared logit error of the proxy.

    Exactly ``expected_loss = noise_bias + variance`` and
    ``= noise_bias_corrected + variance_corrected`` for every pair.

    Statement: {prf:ref}`lem-bias-variance`.
    """
    z = _members(z, "z")
    M = z.shape[0]
    K = M if K is None else K
    group_loo_logits(z, K)  # validates K
    y = np.asarray(y, dtype=np.float64)
    if y.shape != z.shape[1:]:
        raise ValueError(f"y: expected shape {z.shape[1:]}, got {y.shape}")
    g = z.reshape(M // K, K, -1)
    zbar = g.mean(axis=1)
    var = log_partition(g).mean(axis=1) - log_partition(zbar)  # mean_k KL(m_K || p_k)
    nb = binary_ce(y, zbar)
    return {
        "expected_loss": binary_ce(y, g).mean(axis=(0, 1)),
        "variance": var.mean(0),
        "variance_corrected": (var * K / (K - 1)).mean(0),
        "noise_bias": nb.mean(0),
        "noise_bias_corrected": (nb - var / (K - 1)).mean(0),
        "proxy_mse": (g.var(axis=1, ddof=1) / K).mean(0),
    }


def proxy_distance(z_w, K: int) -> np.ndarray:
    """Mean squared distance between the proxies of disjoint ``K``-groups, per pair (C4).

    Consecutive groups are paired (groups ``0-1``, ``2-3``, ...); for independent draws
    ``E (zbar_A - zbar_B)^2 = 2 Var(z_w) / K`` exactly, the estimation error of the
    proxy seen from two independent ensembles. Needs ``M // K >= 2`` groups.

    Statement: {prf:ref}`prop-ch06-proxy-split`.
    """
    z_w = _members(z_w, "z_w")
    M = z_w.shape[0]
    group_loo_logits(z_w, K)
    n_pairs = M // K // 2
    if n_pairs < 1:
        raise ValueError(f"K: need at least two groups of {K} among {M} members")
    zbar = z_w.reshape(M // K, K, -1).mean(axis=1)[: 2 * n_pairs]
    return ((zbar[0::2] - zbar[1::2]) ** 2).mean(0)


def doubling_units(y, z_w, z_s, K: int = 2) -> dict[str, np.ndarray]:
    """Independent replicates for the finite-K checks of Chapter 6 (claims C3, C4).

    The ``M`` members are cut into units of ``2 K`` (disjoint training samples, so the
    units are independent given the pool). Per unit, averaged over its ``2 K`` students
    and the test pairs:

    - ``eps_diff``: ``eps`` with the leave-one-out proxy of each half (``K`` teachers)
      minus ``eps`` with the leave-one-out proxy of the whole unit (``2 K``); expectation
      zero, because ``eps`` is linear in a proxy that is independent of the student;
    - ``distance_excess``: the squared logit distance between the two halves' proxies
      minus ``2 s^2 / K`` (``s^2`` the unit's sample variance, ``ddof = 1``); expectation
      zero for independent draws.

    Returns ``(M // (2 K),)`` arrays; their mean and standard error over units (and
    seeds) test the two statements. Statement: {prf:ref}`prop-ch06-proxy-split`.
    """
    z_w, z_s = _members(z_w, "z_w"), _members(z_s, "z_s")
    M = z_w.shape[0]
    K = check_int(K, "K", min=2)
    if M % (2 * K):
        raise ValueError(f"K: an integer >= 2 with 2 K dividing {M}, got {K!r}")
    eps_diff, dist = [], []
    for u in range(M // (2 * K)):
        sl = slice(2 * K * u, 2 * K * (u + 1))
        zw, zs = z_w[sl], z_s[sl]
        e_half = misfit_terms(y, zw, zs, group_loo_logits(zw, K))["eps"].mean()
        e_whole = misfit_terms(y, zw, zs, loo_logits(zw))["eps"].mean()
        eps_diff.append(e_half - e_whole)
        halves = zw.reshape(2, K, -1).mean(axis=1)
        dist.append(((halves[0] - halves[1]) ** 2 - 2 * zw.var(axis=0, ddof=1) / K).mean())
    return {"eps_diff": np.array(eps_diff), "distance_excess": np.array(dist)}
