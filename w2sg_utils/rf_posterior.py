"""Random-features teacher and student measured against the posterior-mean teacher (claim C6).

Chapter 3 (``sec-rf-ladder``). Each repetition of :func:`posterior_w2s` draws the model of
:mod:`w2sg_utils.random_features` (teacher: width ``d_w``, ridge ``lam_w``, ``n`` true
labels; student: width ``d_s``, ridge ``lam_s``, ``N`` teacher labels), plus ``n_draws``
further teachers, independent of everything else, and a second student with fresh
features on the same labels. The further teachers, evaluated at the student's inputs and
at the test inputs, estimate the posterior-mean teacher ``L = E_lin[f_w | f_w(X_s)]`` (the
best linear predictor, :func:`~w2sg_utils.posterior_mean.linear_posterior_mean`) from one
half of them (``L_1``); the other half gives a second estimate ``L_2`` and held-out
teachers. Per repetition, on ``n_test`` fresh test inputs:

==============  =========================================================================
``risk_w/_s``   ``noise_sd^2 + E_x (ybar - f)^2`` for the teacher and the student
``misfit``      ``E_x (f_s - f_w)^2``
``eps``         ``E_x <ybar - f_s, grad phi(f_s) - grad phi(L_1)>``, from its definition
``dist``        ``E_x (f_s - L_1)^2``
``spread``      ``E_x (f_w - L_1)^2``: the student's own teacher around ``L_1``
``heldout``     the same for the held-out teachers of the second half (their mean)
``est_error``   ``E_x (L_1 - L_2)^2 / 2``: the estimation error of ``L_1`` (split half)
``student_var`` ``E_x (f_s - f_s')^2 / 2``: the student's variance over its own features
``pool_*``      gain terms averaged over the held-out teachers, each with its own student
``*_mean``      ``dist``, ``spread``, ``heldout`` with the unconditional mean ``m_1``
``*_other``     the same with ``L_1`` evaluated at another teacher's labels
==============  =========================================================================

The ``pool_*`` fields are the terms of claim C3 averaged, within one repetition, over the
``h`` held-out teachers of the second half: each gets a student with the same features
``W_s`` and inputs ``X_s`` trained on its own labels, so each (teacher, student) pair is a
copy of the student's pair given ``(X_s, W_s)``, independent of ``L_1``. Averaging over
them removes most of the teacher's conditional noise from the C3 residual (a paired
design: the same draws enter every term). ``pool_eps_mean`` and ``pool_eps_other`` are
``eps`` against the unconditional mean and against ``L_1`` at the next held-out
teacher's labels: the wrong posterior means the chapter's check must reject.

:func:`check_posterior_identities` asserts what ``lem-rf-blp`` of the chapter implies for
these numbers; ``tests/test_falsifiability.py`` shows that it fails on wrong inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch

from ._common import check_int
from .checks import assert_within_se, mean_and_se
from .misfit import cross_term
from .posterior_mean import min_draws, split_half_posterior_mean
from .random_features import ACTIVATIONS, RFTask, random_features
from .ridge import DEFAULT_THREADS, ridge_fit, torch_threads

__all__ = ["RiskGain", "PosteriorW2S", "posterior_w2s", "check_posterior_identities", "teacher_values"]

_CHUNK = 256  # teachers whose features are held in memory at once


class RiskGain:
    """The per-repetition gain ``R(f_w) - R(f_s)`` of a result holding ``risk_w`` and
    ``risk_s`` (claim C3). Statement: {prf:ref}`lem-rf-blp`."""

    @property
    def gain(self) -> np.ndarray:
        """Per-repetition ``R(f_w) - R(f_s)``."""
        return self.risk_w - self.risk_s


@dataclass(frozen=True)
class PosteriorW2S(RiskGain):
    """Per-repetition measurements of :func:`posterior_w2s` (shape ``(reps,)`` each)."""

    risk_w: np.ndarray
    risk_s: np.ndarray
    misfit: np.ndarray
    eps: np.ndarray
    dist: np.ndarray
    spread: np.ndarray
    heldout: np.ndarray
    est_error: np.ndarray
    error_formula: np.ndarray
    cond_var: np.ndarray
    student_var: np.ndarray
    pool_risk_w: np.ndarray
    pool_risk_s: np.ndarray
    pool_misfit: np.ndarray
    pool_eps: np.ndarray
    pool_eps_mean: np.ndarray
    pool_eps_other: np.ndarray
    dist_mean: np.ndarray
    spread_mean: np.ndarray
    heldout_mean: np.ndarray
    dist_other: np.ndarray
    spread_other: np.ndarray
    heldout_other: np.ndarray

    @property
    def pool_gain(self) -> np.ndarray:
        """Per-repetition gain averaged over the held-out teachers."""
        return self.pool_risk_w - self.pool_risk_s

    def mean_se(self, name: str) -> tuple[float, float]:
        """Mean over repetitions and its standard error of a field or ``gain``."""
        arr = getattr(self, name)
        m, se = mean_and_se(arr)
        return float(m), float(se)

    def replace(self, **changes) -> PosteriorW2S:
        """A copy with some fields replaced (used to plant bugs in the tests)."""
        return PosteriorW2S(**{f.name: changes.get(f.name, getattr(self, f.name)) for f in fields(self)})


def teacher_values(task, rng, K, n, d_w, lam_w, X_eval, activation="relu"):
    """Fit ``K`` independent teachers (batched) and evaluate them at ``X_eval``: ``(K, m)``.

    Each draws its features, its ``n`` inputs and their noisy labels from ``rng`` (claim
    C6; statement {prf:ref}`def-rf-model`).
    """
    d = task.d
    out = []
    for start in range(0, K, _CHUNK):
        k = min(_CHUNK, K - start)
        W = torch.as_tensor(rng.standard_normal((k, d_w, d)))
        X = torch.as_tensor(rng.standard_normal((k, n, d)))
        y = task.ybar(X) + task.noise_sd * torch.as_tensor(rng.standard_normal((k, n)))
        beta = ridge_fit(random_features(X, W, activation), y, n * lam_w, threads=None)
        # one GEMM for all k teachers: (m, d) @ (d, k * d_w), then contract with beta
        pre = X_eval @ W.reshape(-1, d).T / np.sqrt(d)
        phi = ACTIVATIONS[activation](pre).reshape(len(X_eval), k, d_w) / np.sqrt(d_w)
        out.append(torch.einsum("mkj,kj->km", phi, beta))
    return torch.cat(out).numpy()


def posterior_w2s(task: RFTask, *, n: int, d_w: int, lam_w: float, N: int, d_s: int,
                  lam_s: float, reps: int, n_draws: int, n_test: int = 200, seed: int = 0,
                  activation: str = "relu", threads: int | None = DEFAULT_THREADS) -> PosteriorW2S:
    """Teacher, student and posterior-mean teacher, ``reps`` times (claims C3, C4, C6).

    Repetition ``r`` uses ``numpy.random.default_rng([seed, r])``: first the student's
    inputs, the test inputs and two student feature matrices, then teacher 0 (the
    student's teacher) and ``n_draws`` independent teachers (all fitted in batches, no
    loop over draws). ``n_draws`` must be at least ``2 * (N + 3)``: each half conditions
    on the ``N`` labels the student saw.

    Statements: {prf:ref}`lem-rf-blp`, {prf:ref}`prop-rf-floor`.
    """
    if not isinstance(task, RFTask):
        raise ValueError(f"task: expected an RFTask, got {type(task).__name__}")
    for name, value, low in [("n", n, 1), ("d_w", d_w, 1), ("N", N, 1), ("d_s", d_s, 1),
                             ("reps", reps, 2), ("n_test", n_test, 1)]:
        check_int(value, name, low)
    if not isinstance(n_draws, int | np.integer) or n_draws < 2 * min_draws(N):
        raise ValueError(f"n_draws: need at least 2 * (N + 3) = {2 * min_draws(N)} teacher draws "
                         f"to condition on the student's N = {N} labels, got {n_draws!r}")
    for name, value in [("lam_w", lam_w), ("lam_s", lam_s)]:
        if not (isinstance(value, int | float | np.floating) and np.isfinite(value) and value >= 0):
            raise ValueError(f"{name}: must be finite and >= 0, got {value!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation: must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    out = {f.name: np.empty(reps) for f in fields(PosteriorW2S)}
    noise = task.noise_sd**2
    with torch_threads(threads):
        for r in range(reps):
            rng = np.random.default_rng([seed, r])
            X_s, X_t = rng.standard_normal((N, task.d)), rng.standard_normal((n_test, task.d))
            W_s = rng.standard_normal((2, d_s, task.d))
            X_eval = torch.as_tensor(np.concatenate([X_s, X_t]))
            F = teacher_values(task, rng, 1 + n_draws, n, d_w, lam_w, X_eval, activation)
            a, f_w = F[0, :N], F[0, N:]
            feats = random_features(X_eval, W_s, activation)  # (2, N + n_test, d_s)
            beta = ridge_fit(feats[:, :N], torch.as_tensor(a).expand(2, N), N * lam_s, threads=None)
            f_s, f_s2 = (feats[:, N:] @ beta.unsqueeze(-1)).squeeze(-1).numpy()
            first, second, err = split_half_posterior_mean(F[1:, :N], F[1:, N:], a, threads=None)
            h = first.n_draws
            L1 = first.fbar
            ybar = task.ybar(X_t).numpy()
            A_h, F_h = F[1 + h:1 + 2 * h, :N], F[1 + h:1 + 2 * h, N:]
            L_h, m_1 = first.predict(A_h), F[1:1 + h, N:].mean(0)
            L_o = np.roll(L_h, -1, axis=0)  # L_1 at the next teacher's labels
            # one student per held-out teacher: same features, its own labels
            b_h = ridge_fit(feats[0, :N], torch.as_tensor(A_h.T), N * lam_s, threads=None)
            S_h = (feats[0, N:] @ b_h).numpy().T  # (h, n_test)
            L_0o = L_h[0]  # L_1 at another teacher's labels, for the student's teacher

            def eps_of(fs, centre, ybar=ybar):
                return 2 * np.mean((ybar - fs) * (fs - centre))

            vals = dict(
                risk_w=noise + np.mean((ybar - f_w) ** 2), risk_s=noise + np.mean((ybar - f_s) ** 2),
                misfit=np.mean((f_s - f_w) ** 2),
                eps=cross_term("squared", ybar[:, None], f_s[:, None], L1[:, None]),
                dist=np.mean((f_s - L1) ** 2), spread=np.mean((f_w - L1) ** 2),
                heldout=np.mean((L_h - F_h) ** 2), est_error=err, error_formula=first.error_formula,
                cond_var=first.cond_var, student_var=np.mean((f_s - f_s2) ** 2) / 2,
                pool_risk_w=noise + np.mean((ybar - F_h) ** 2),
                pool_risk_s=noise + np.mean((ybar - S_h) ** 2),
                pool_misfit=np.mean((S_h - F_h) ** 2), pool_eps=eps_of(S_h, L_h),
                pool_eps_mean=eps_of(S_h, m_1), pool_eps_other=eps_of(S_h, L_o),
                dist_mean=np.mean((f_s - m_1) ** 2), spread_mean=np.mean((f_w - m_1) ** 2),
                heldout_mean=np.mean((F_h - m_1) ** 2), dist_other=np.mean((f_s - L_0o) ** 2),
                spread_other=np.mean((f_w - L_0o) ** 2), heldout_other=np.mean((F_h - L_o) ** 2))
            for k, v in vals.items():
                out[k][r] = float(v)
    return PosteriorW2S(**out)


def identity_residuals(res: PosteriorW2S) -> dict[str, np.ndarray]:
    """Per-repetition residuals of what ``lem-rf-blp`` implies (claims C3, C4, C6).

    1. claim C3 with the estimated posterior mean, averaged over the held-out teachers:
       ``pool_gain - pool_misfit - pool_eps``;
    2. claim C4 for the student's own teacher:
       ``misfit - (dist - est_error) - (spread - est_error)``;
    3. calibration: ``spread - heldout`` (the student's teacher is as far from ``L_1`` as
       held-out teachers are from theirs, so ``L_1`` conditions on the right labels).

    Each has mean zero under the lemma. The bound ``dist - est_error >= student_var`` is
    Pythagoras (part 3 of the lemma) and is not among them: it cannot fail.

    Statement: {prf:ref}`lem-rf-blp`.
    """
    return {"C3: gain = E M + eps": res.pool_gain - res.pool_misfit - res.pool_eps,
            "C4: E M = dist + spread": res.misfit - res.dist - res.spread + 2 * res.est_error,
            "calibration: spread = heldout": res.spread - res.heldout}


def check_posterior_identities(res: PosteriorW2S, z: float, what: str = "") -> dict[str, float]:
    """Assert the residuals of :func:`identity_residuals` are zero within ``z`` SE (C3, C4, C6).

    Returns the gap of each in standard errors; raises ``AssertionError`` on the first
    residual whose mean over repetitions exceeds ``z`` standard errors.

    Statement: {prf:ref}`lem-rf-blp`.
    """
    out = {}
    for name, diff in identity_residuals(res).items():
        m, se = mean_and_se(diff)
        out[name] = assert_within_se(m, 0.0, se, z=z, what=f"{name} {what}")
    return out
