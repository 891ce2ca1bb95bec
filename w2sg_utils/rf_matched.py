"""The matched student: a random-features student whose kernel is the teacher's covariance (C6).

Chapter 3 (``sec-rf-matched``). The posterior-mean teacher of a student that sees the
values ``a = f_w(X_s)`` is, for a Gaussian teacher,
``L(x) = m(x) + k(x, X_s) k(X_s, X_s)^{-1} (a - m(X_s))``: kernel regression with the
teacher's covariance ``k`` as kernel, its mean ``m`` as offset and ridge zero (the labels
are exact function values). A *matched student* of width ``M`` replaces ``k`` and ``m``
by their estimates from ``M`` independent teacher draws ``g_1, ..., g_M``: it is ridgeless
regression on the random features ``(g_j - gbar) / sqrt(M - 1)`` with offset ``gbar``,

    ``f_s(x) = gbar(x) + khat(x, X_s) khat(X_s, X_s)^+ (a - gbar(X_s))``,

which is the least-squares fit across the draws of
:func:`~w2sg_utils.posterior_mean.linear_posterior_mean`. Its random features are drawn
from the teacher's own law, so its infinite-width kernel is ``k``. Two matched students
with independent features on the same labels give ``E ||f_s - L||^2`` as half their mean
squared difference (their feature variance), the distance to the posterior mean of a
student whose feature average is ``L``.

:func:`matched_w2s` measures, per repetition and per width ``M`` (nested: the first ``M``
draws of each of two independent sets), the gain and misfit against the student's own
teacher and that distance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ._common import check_int
from .posterior_mean import linear_posterior_mean, min_draws
from .random_features import RFTask
from .rf_posterior import RiskGain, teacher_values
from .ridge import DEFAULT_THREADS, torch_threads

__all__ = ["MatchedW2S", "matched_w2s"]


@dataclass(frozen=True)
class MatchedW2S(RiskGain):
    """Per-repetition measurements of :func:`matched_w2s`: arrays ``(reps, n_widths)``.

    ``dist`` is ``E_x (f_s - f_s')^2 / 2`` for two matched students (estimates
    ``E ||f_s - L||^2``); ``error_formula`` the Gaussian least-squares value of the same
    quantity, ``cond_var [1/M + N (1 + 1/M) / (M - N - 2)]``.
    """

    widths: np.ndarray
    risk_w: np.ndarray
    risk_s: np.ndarray
    misfit: np.ndarray
    dist: np.ndarray
    error_formula: np.ndarray


def matched_w2s(task: RFTask, *, n: int, d_w: int, lam_w: float, N: int, widths, reps: int,
                n_test: int = 100, n_pairs: int = 32, seed: int = 0,
                threads: int | None = DEFAULT_THREADS) -> MatchedW2S:
    """Matched students of several widths against their posterior mean (claim C6).

    Repetition ``r`` uses ``numpy.random.default_rng([seed, r, 7])`` (a stream apart from
    :func:`~w2sg_utils.rf_posterior.posterior_w2s`): the student's inputs, the test
    inputs, ``n_pairs`` teachers of students, then ``2 max(widths)`` independent teachers
    (two feature sets). Every term is averaged over the ``n_pairs`` (teacher, student)
    pairs, which share ``X_s`` and the student's features. Each width must be at least
    ``N + 3``.

    Statement: {prf:ref}`prop-rf-matched`.
    """
    if not isinstance(task, RFTask):
        raise ValueError(f"task: expected an RFTask, got {type(task).__name__}")
    for name, value, low in [("n", n, 1), ("d_w", d_w, 1), ("N", N, 1), ("reps", reps, 2),
                             ("n_test", n_test, 1), ("n_pairs", n_pairs, 1)]:
        check_int(value, name, low)
    widths = np.asarray(widths)
    if widths.ndim != 1 or len(widths) == 0 or np.any(widths < min_draws(N)) \
            or not np.issubdtype(widths.dtype, np.integer):
        raise ValueError(f"widths: need integers >= N + 3 = {min_draws(N)}, got {widths!r}")
    if not (np.isfinite(lam_w) and lam_w >= 0):
        raise ValueError(f"lam_w: must be finite and >= 0, got {lam_w!r}")
    M_max = int(widths.max())
    out = {k: np.empty((reps, len(widths))) for k in
           ("risk_w", "risk_s", "misfit", "dist", "error_formula")}
    noise = task.noise_sd**2
    with torch_threads(threads):
        for r in range(reps):
            rng = np.random.default_rng([seed, r, 7])
            X_s, X_t = rng.standard_normal((N, task.d)), rng.standard_normal((n_test, task.d))
            X_eval = torch.as_tensor(np.concatenate([X_s, X_t]))
            P = n_pairs
            F = teacher_values(task, rng, P + 2 * M_max, n, d_w, lam_w, X_eval)
            a, f_w = F[:P, :N], F[:P, N:]
            ybar = task.ybar(X_t).numpy()
            for j, M in enumerate(widths):
                sets = [F[P + k * M_max:P + k * M_max + M] for k in (0, 1)]
                fits = [linear_posterior_mean(G[:, :N], G[:, N:], a, threads=None) for G in sets]
                f_s, f_s2 = (fit.fbar for fit in fits)
                out["risk_w"][r, j] = noise + np.mean((ybar - f_w) ** 2)
                out["risk_s"][r, j] = noise + np.mean((ybar - f_s) ** 2)
                out["misfit"][r, j] = np.mean((f_s - f_w) ** 2)
                out["dist"][r, j] = np.mean((f_s - f_s2) ** 2) / 2
                out["error_formula"][r, j] = float(fits[0].error_formula)
    return MatchedW2S(widths=widths, **out)
