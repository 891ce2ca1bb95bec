"""The posterior-mean teacher estimated from independent teacher draws (claims C3, C4, C6).

For squared loss the posterior-mean teacher is ``fbar_w = E[f_w | G]`` (Chapter 2,
``def-posterior-mean-teacher``). When the student observes its teacher only through the
values ``a = f_w(X_s)`` at its own training inputs, ``G = (X_s, a, the student's own
randomness)`` and, the teacher being independent of the student's inputs and features,

    fbar_w(x) = E[f_w(x) | f_w(X_s) = a]          (X_s fixed).

Two routes to it, both batched over leading axes (repetitions):

* :func:`gaussian_conditional_mean` -- exact Gaussian conditioning from a known mean and
  covariance: ``m_b + K_ba K_aa^+ (a - m_a)``. Exact when ``(f_w(X_s), f_w(x))`` is jointly
  Gaussian (a linear-Gaussian teacher ``f_w = phi(x)^T theta``, ``theta`` Gaussian).
* :func:`linear_posterior_mean` -- the *best linear predictor* estimated across ``M``
  independent teacher draws: an ordinary least-squares regression (with intercept) of
  the teacher's values at the targets on its values at the conditioning points, fitted
  across the draws in one batched solve, then evaluated at the observed values ``a``.
  For a Gaussian teacher it converges to the exact conditional mean; otherwise to the
  linear part of ``E[. | .]``, which is all a student that is affine in its labels can
  see (Chapter 3, ``lem-rf-blp``).

Its estimation error is reported two ways: the split-half discrepancy
``||L_1 - L_2||^2 / 2`` of two fits on disjoint halves of the draws (model free: the error
of one half-sample fit), and the Gaussian-design formula
``s^2 [1/M + r (1 + 1/M) / (M - r - 2)]`` (``r`` the rank of the draws, ``s^2`` the
residual variance). Both shrink with ``M``; ``tests/test_posterior_mean.py`` checks them
against the exact linear-Gaussian answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .ridge import DEFAULT_THREADS, torch_threads

__all__ = [
    "LinearPosteriorMean",
    "linear_posterior_mean",
    "split_half_posterior_mean",
    "gaussian_conditional_mean",
    "min_draws",
]


def min_draws(n_obs: int) -> int:
    """Fewest teacher draws for which the conditioning on ``n_obs`` values is defined.

    The sample covariance of ``M`` draws has rank at most ``M - 1``, and the error
    formula of :class:`LinearPosteriorMean` needs ``M > r + 2``: ``n_obs + 3`` draws.
    """
    return int(n_obs) + 3


def _t(a, name: str) -> torch.Tensor:
    try:
        t = torch.as_tensor(np.ascontiguousarray(a, dtype=np.float64)) if not isinstance(a, torch.Tensor) \
            else a.detach().to(torch.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: cannot be converted to a float array ({exc})") from exc
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name}: contains NaN or infinite values")
    return t


@dataclass(frozen=True)
class LinearPosteriorMean:
    """Best linear predictor of the teacher estimated from draws (claims C3, C4, C6).

    ``fbar`` has shape ``batch + (r, n_b)`` (one row per observed vector); ``cond_var``
    (``batch``) is the residual variance of the regression across draws, averaged over the
    ``n_b`` targets (unbiased for a Gaussian teacher: ``RSS / (M - rank - 1)``);
    ``error_formula`` (``batch``) is the Gaussian-design mean squared estimation error of
    ``fbar`` per target, ``cond_var [1/M + rank (1 + 1/M) / (M - rank - 2)]``; ``rank``
    the numerical rank of the centred draws at the conditioning points.

    Statement: {prf:ref}`lem-rf-blp`.
    """

    fbar: np.ndarray
    cond_var: np.ndarray
    error_formula: np.ndarray
    rank: np.ndarray
    n_draws: int
    coef: np.ndarray
    mean_obs: np.ndarray
    mean_target: np.ndarray

    def predict(self, observed) -> np.ndarray:
        """The fitted predictor at other observed values ``batch + (r, n_a)``."""
        a = np.asarray(observed, dtype=np.float64)
        return self.mean_target[..., None, :] + (a - self.mean_obs[..., None, :]) @ self.coef


def _check(obs_draws, target_draws, observed):
    A, B, a = _t(obs_draws, "obs_draws"), _t(target_draws, "target_draws"), _t(observed, "observed")
    if A.ndim < 2 or B.ndim < 2:
        raise ValueError(f"obs_draws: expected shape (..., M, n_obs), got {tuple(A.shape)}")
    M, n_a = A.shape[-2:]
    if B.shape[-2] != M:
        raise ValueError(f"target_draws: expected {M} draws on axis -2 like obs_draws, got {B.shape[-2]}")
    if M < min_draws(n_a):
        raise ValueError(f"obs_draws: {M} teacher draws are too few to condition on {n_a} values "
                         f"(need n_draws >= {min_draws(n_a)})")
    vector = a.ndim == A.ndim - 1
    if vector:
        a = a.unsqueeze(-2)
    if a.shape[-1] != n_a:
        raise ValueError(f"observed: last axis must have length n_obs = {n_a}, got {a.shape[-1]}")
    return A, B, a, vector


def linear_posterior_mean(obs_draws, target_draws, observed, *, rcond: float | None = None,
                          threads: int | None = DEFAULT_THREADS) -> LinearPosteriorMean:
    """Estimate ``E[f_w(targets) | f_w(obs) = observed]`` across teacher draws (claim C6).

    Parameters
    ----------
    obs_draws:
        ``batch + (M, n_obs)``: ``M`` independent teacher draws at the conditioning points
        (the student's inputs).
    target_draws:
        ``batch + (M, n_b)``: the same draws at the target points (test inputs).
    observed:
        ``batch + (r, n_obs)`` or ``batch + (n_obs,)``: the values to condition on (the
        labels the student saw), independent of the draws.
    rcond:
        Eigenvalues of the centred Gram matrix below ``rcond * max`` count as zero
        (default ``1e-10``): a rank-deficient teacher (fewer features than ``n_obs``) gets
        the pseudo-inverse.

    One batched ``eigh`` of the ``n_obs x n_obs`` Gram matrix per batch element; no loop
    over draws. Raises ``ValueError`` when ``M < n_obs + 3`` (:func:`min_draws`).

    Statements: {prf:ref}`def-posterior-mean-teacher`, {prf:ref}`lem-rf-blp`.
    """
    A, B, a, vector = _check(obs_draws, target_draws, observed)
    M = A.shape[-2]
    rcond = 1e-10 if rcond is None else float(rcond)
    with torch_threads(threads):
        mu_a, mu_b = A.mean(-2), B.mean(-2)
        Ac, Bc = A - mu_a.unsqueeze(-2), B - mu_b.unsqueeze(-2)
        evals, evecs = torch.linalg.eigh(Ac.transpose(-1, -2) @ Ac)
        keep = evals > rcond * evals[..., -1:].clamp_min(1e-300)
        inv = torch.where(keep, 1.0 / torch.where(keep, evals, torch.ones_like(evals)), 0.0)
        proj = evecs.transpose(-1, -2) @ (Ac.transpose(-1, -2) @ Bc)  # batch + (n_a, n_b)
        coef = evecs @ (inv.unsqueeze(-1) * proj)
        rank = keep.sum(-1).to(torch.float64)
        resid = Bc - Ac @ coef
        cond_var = (resid**2).sum(-2).mean(-1) / (M - rank - 1)
        fbar = mu_b.unsqueeze(-2) + (a - mu_a.unsqueeze(-2)) @ coef
    err = cond_var * (1.0 / M + rank * (1 + 1.0 / M) / (M - rank - 2))
    if vector:
        fbar = fbar.squeeze(-2)
    return LinearPosteriorMean(fbar=fbar.numpy(), cond_var=cond_var.numpy(),
                               error_formula=err.numpy(), rank=rank.numpy().astype(int),
                               n_draws=int(M), coef=coef.numpy(), mean_obs=mu_a.numpy(),
                               mean_target=mu_b.numpy())


def split_half_posterior_mean(obs_draws, target_draws, observed, **kwargs):
    """Two fits on disjoint halves of the draws and the error estimate (claim C6).

    Returns ``(first, second, error)``: the :class:`LinearPosteriorMean` of the first and
    of the second half of the draws, and ``error = mean_b (L_1 - L_2)^2 / 2`` (shape
    ``batch + (r,)``), an unbiased estimate of the mean squared error of one half-sample
    estimate when its bias is negligible (two independent fits share the bias, which
    cancels in the difference). Model free: no Gaussian assumption.

    Statement: {prf:ref}`lem-rf-blp`.
    """
    A, B, a, vector = _check(obs_draws, target_draws, observed)
    h = A.shape[-2] // 2
    first = linear_posterior_mean(A[..., :h, :], B[..., :h, :], a, **kwargs)
    second = linear_posterior_mean(A[..., h:2 * h, :], B[..., h:2 * h, :], a, **kwargs)
    error = ((first.fbar - second.fbar) ** 2).mean(-1) / 2
    if vector:
        error = error.squeeze(-1)
        first = _squeeze(first)
        second = _squeeze(second)
    return first, second, error


def _squeeze(est: LinearPosteriorMean) -> LinearPosteriorMean:
    return LinearPosteriorMean(**{**est.__dict__, "fbar": est.fbar.squeeze(-2)})


def gaussian_conditional_mean(mean_obs, mean_target, cov_obs, cov_target_obs, observed,
                              rcond: float = 1e-12) -> np.ndarray:
    """Exact Gaussian conditioning ``m_b + K_ba K_aa^+ (a - m_a)`` (claims C4, C6).

    ``mean_obs`` ``(n_a,)``, ``mean_target`` ``(n_b,)``, ``cov_obs`` ``(n_a, n_a)``,
    ``cov_target_obs`` ``(n_b, n_a)``, ``observed`` ``(..., n_a)``; returns ``(..., n_b)``.
    The pseudo-inverse handles a singular ``K_aa`` (fewer features than observations).

    Statement: {prf:ref}`lem-rf-blp`.
    """
    m_a, m_b = np.asarray(mean_obs, float), np.asarray(mean_target, float)
    K_aa, K_ba = np.asarray(cov_obs, float), np.asarray(cov_target_obs, float)
    if K_aa.shape != (m_a.size, m_a.size) or K_ba.shape != (m_b.size, m_a.size):
        raise ValueError(f"cov_target_obs: expected shape ({m_b.size}, {m_a.size}) and cov_obs "
                         f"({m_a.size}, {m_a.size}); got {K_ba.shape}, {K_aa.shape}")
    a = np.asarray(observed, float)
    return m_b + (a - m_a) @ np.linalg.pinv(K_aa, rcond=rcond, hermitian=True) @ K_ba.T
