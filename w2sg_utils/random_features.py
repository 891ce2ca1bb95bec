"""Random-features ridge regression teachers and students (claim C6, Chapter 3).

The model of Chapter 3, with squared loss throughout:

* inputs ``x ~ N(0, I_d)``; target ``y = ybar(x) + noise_sd * xi`` with
  ``ybar(x) = linear * x_1 + quad * (x_2^2 - 1) / sqrt(2)`` (:class:`RFTask`);
* a random-features model of width ``p``: ``f(x) = phi_W(x)^T beta`` with
  ``phi_W(x) = act(W x / sqrt(d)) / sqrt(p)`` and ``W`` a ``p x d`` matrix of i.i.d.
  ``N(0, 1)`` first-layer weights (:func:`random_features`);
* ridge regression with a per-sample ridge ``lam``:
  ``beta = argmin (1/m) ||y - Phi beta||^2 + lam ||beta||^2`` on ``m`` samples, i.e.
  :func:`~w2sg_utils.ridge.ridge_fit` with ``alpha = m * lam`` (``lam = 0``: min-norm);
* teacher ``f_w``: width ``d_w``, ridge ``lam_w``, fitted on ``n`` true labels;
  student ``f_s``: width ``d_s``, ridge ``lam_s``, fitted on ``N`` fresh inputs labelled
  by the teacher's predictions (no extra noise).

:func:`simulate_w2s` repeats the whole pipeline ``reps`` times (fresh teacher weights and
data, student weights and inputs, test inputs each time) and returns per-repetition
risks, misfits and distances for every student width and ridge level, batched through
:func:`~w2sg_utils.ridge.ridge_path`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ._common import check_int, torch_threads
from .checks import mean_and_se
from .ridge import DEFAULT_THREADS, ridge_fit, ridge_path

__all__ = [
    "RFTask",
    "ACTIVATIONS",
    "random_features",
    "W2SResult",
    "simulate_w2s",
    "naive_w2s_repetition",
]

ACTIVATIONS = {
    "relu": torch.relu,
    "tanh": torch.tanh,
}


@dataclass(frozen=True)
class RFTask:
    """Gaussian inputs and a fixed target (claim C6).

    ``ybar(x) = linear * x_1 + quad * (x_2^2 - 1) / sqrt(2)``: a unit-variance linear part
    plus a unit-variance quadratic part, which random ReLU features of finite width can
    only approximate. ``noise_sd`` is the standard deviation of the label noise, so the
    Bayes risk is ``noise_sd ** 2``.

    Statement: {prf:ref}`def-rf-model`.
    """

    d: int = 20
    noise_sd: float = 0.5
    linear: float = 1.0
    quad: float = 0.5

    def __post_init__(self):
        if not (isinstance(self.d, int | np.integer) and self.d >= 2):
            raise ValueError(f"d: must be an integer >= 2, got {self.d!r}")
        if not self.noise_sd >= 0:
            raise ValueError(f"noise_sd: must be >= 0, got {self.noise_sd!r}")

    def ybar(self, X):
        """Conditional mean ``E[y | x]`` for inputs of shape ``(..., d)``."""
        X = torch.as_tensor(X, dtype=torch.float64)
        if X.shape[-1] != self.d:
            raise ValueError(f"X: last axis must have length d = {self.d}, got {X.shape[-1]}")
        return self.linear * X[..., 0] + self.quad * (X[..., 1] ** 2 - 1.0) / np.sqrt(2.0)

    def signal_variance(self) -> float:
        """``Var ybar(x) = linear^2 + quad^2`` (both parts have unit variance)."""
        return float(self.linear**2 + self.quad**2)


def random_features(X, W, activation: str = "relu"):
    """Random-features map ``act(X W^T / sqrt(d)) / sqrt(p)`` (claim C6).

    ``X`` has shape ``(..., m, d)``, ``W`` shape ``(..., p, d)``; returns ``(..., m, p)``
    as a float64 torch tensor. The ``1 / sqrt(p)`` scaling makes the feature kernel
    converge to its infinite-width limit as ``p`` grows.

    Statement: {prf:ref}`def-rf-model`.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation: must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    X = torch.as_tensor(X, dtype=torch.float64)
    W = torch.as_tensor(W, dtype=torch.float64)
    if X.shape[-1] != W.shape[-1]:
        raise ValueError(f"W: last axis {W.shape[-1]} differs from the input dimension {X.shape[-1]}")
    d, p = X.shape[-1], W.shape[-2]
    return ACTIVATIONS[activation](X @ W.transpose(-1, -2) / np.sqrt(d)) / np.sqrt(p)


#: Per-repetition arrays stored in :class:`W2SResult` (student ones have shape
#: ``(reps, len(d_s), len(lam_s))``, teacher ones ``(reps,)``).
STUDENT_FIELDS = ("risk_s", "misfit", "dist_mean", "cov_sw", "eps_mean")
TEACHER_FIELDS = ("risk_w", "teacher_var")


@dataclass
class W2SResult:
    """Per-repetition measurements of :func:`simulate_w2s` (claim C6).

    Student arrays have shape ``(reps, len(d_s), len(lam_s))``:

    ``risk_s``     ``R(f_s) = noise_sd^2 + E_x (ybar - f_s)^2``
    ``misfit``     ``M(f_s, f_w) = E_x (f_s - f_w)^2``
    ``dist_mean``  ``E_x (f_s - m)^2``, distance to the population mean teacher
                   ``m = E f_w``, estimated with an independent ensemble of ``K``
                   teachers and corrected for the ensemble's own variance
                   (``- teacher_var / K``), so it is unbiased
    ``cov_sw``     ``E_x <f_s - m, f_w - m>``: how much of *its own* teacher's
                   fluctuation the student copies (same correction)
    ``eps_mean``   ``2 E_x <ybar - f_s, f_s - m>``: ``eps`` with ``m`` in place of the
                   posterior-mean teacher

    Teacher arrays have shape ``(reps,)``: ``risk_w`` and ``teacher_var`` (the
    unbiased ensemble estimate of ``E_x Var f_w(x)``). All ``E_x`` are averages over
    ``n_test`` fresh test inputs per repetition.

    Statement: {prf:ref}`lem-rf-eps-split`.
    """

    params: dict
    d_s: np.ndarray
    lam_s: np.ndarray
    risk_s: np.ndarray
    misfit: np.ndarray
    dist_mean: np.ndarray
    cov_sw: np.ndarray
    eps_mean: np.ndarray
    risk_w: np.ndarray
    teacher_var: np.ndarray
    derived: tuple = field(default=("gain", "cross"), repr=False)

    @property
    def reps(self) -> int:
        return self.risk_w.shape[0]

    def per_rep(self, name: str) -> np.ndarray:
        """Per-repetition values of a field or of ``gain`` / ``cross`` (broadcast shape).

        ``gain = R(f_w) - R(f_s)`` and ``cross = gain - M(f_s, f_w)``, the cross term of
        claim C2 against the student's own teacher. Its expectation equals the ``eps`` of
        C3 by the tower property, but only *as a consequence* of the theorem: it is not an
        independent estimate of ``eps`` (for that, see :mod:`w2sg_utils.rf_posterior`).
        """
        if name == "gain":
            return self.risk_w[:, None, None] - self.risk_s
        if name == "cross":
            return self.per_rep("gain") - self.misfit
        if name in TEACHER_FIELDS:
            return np.broadcast_to(getattr(self, name)[:, None, None], self.risk_s.shape)
        if name in STUDENT_FIELDS:
            return getattr(self, name)
        raise ValueError(
            f"name: unknown quantity {name!r}; valid: "
            f"{sorted(STUDENT_FIELDS + TEACHER_FIELDS + self.derived)}"
        )

    def mean_se(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Mean over repetitions and its standard error, shape ``(len(d_s), len(lam_s))``."""
        return mean_and_se(self.per_rep(name), axis=0)

    def summary(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """``{name: (mean, se)}`` for every field and derived quantity."""
        names = STUDENT_FIELDS + TEACHER_FIELDS + self.derived
        return {k: self.mean_se(k) for k in names}


def _validate_grid(values, name: str, integer: bool) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(values))
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name}: expected a non-empty 1-D sequence")
    if integer:
        if not np.issubdtype(arr.dtype, np.integer) or (arr < 1).any():
            raise ValueError(f"{name}: must be positive integers, got {arr!r}")
        return arr.astype(np.int64)
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all() or (arr < 0).any():
        raise ValueError(f"{name}: must be finite and >= 0, got {arr!r}")
    return arr


def _draw_repetition(task: RFTask, rng: np.random.Generator, n, d_w, N, d_s_max, K, n_test):
    """All random inputs of one repetition (teacher 0 is the student's teacher)."""
    d = task.d
    return {
        "W_w": rng.standard_normal((K + 1, d_w, d)),
        "X_n": rng.standard_normal((K + 1, n, d)),
        "xi_n": rng.standard_normal((K + 1, n)),
        "X_N": rng.standard_normal((N, d)),
        "X_test": rng.standard_normal((n_test, d)),
        "W_s": rng.standard_normal((d_s_max, d)),
    }


def _teacher_predictions(task, draws, lam_w, activation):
    """Fit the ``K + 1`` teachers; predictions on the test and (teacher 0) student inputs."""
    X_n = torch.as_tensor(draws["X_n"])
    y_n = task.ybar(X_n) + task.noise_sd * torch.as_tensor(draws["xi_n"])
    Phi = random_features(X_n, draws["W_w"], activation)
    n = X_n.shape[-2]
    beta = ridge_fit(Phi, y_n, n * lam_w)  # (B, K+1, d_w)
    X_eval = torch.cat([torch.as_tensor(draws["X_test"]), torch.as_tensor(draws["X_N"])], -2)
    f_eval = (random_features(X_eval.unsqueeze(-3), draws["W_w"], activation)
              @ beta.unsqueeze(-1)).squeeze(-1)  # (B, K+1, n_test + N)
    n_test = draws["X_test"].shape[-2]
    return f_eval[..., :n_test], f_eval[..., 0, n_test:]


def simulate_w2s(
    task: RFTask,
    *,
    n: int,
    d_w: int,
    lam_w: float,
    N: int,
    d_s,
    lam_s,
    reps: int,
    n_ensemble: int = 16,
    n_test: int = 1000,
    seed: int = 0,
    activation: str = "relu",
    chunk: int | None = None,
    threads: int | None = DEFAULT_THREADS,
) -> W2SResult:
    """Monte Carlo of the random-features teacher/student pipeline of claim C6.

    Each repetition ``r`` draws, from ``numpy.random.default_rng([seed, r])``: the
    weights and training sets of ``n_ensemble + 1`` independent teachers (teacher 0
    labels the student; the other ``K = n_ensemble`` estimate the population mean
    teacher ``m = E f_w``), the student's ``N`` inputs, ``max(d_s)`` student feature
    weights (a student of width ``p`` uses the first ``p``: common random numbers across
    widths) and ``n_test`` test inputs. Students of every width in ``d_s`` and ridge in
    ``lam_s`` are fitted on teacher 0's labels with :func:`~w2sg_utils.ridge.ridge_path`
    (one Gram matrix per width, all repetitions of a chunk at once). The teachers' draws
    come first in each repetition's stream, so runs that differ only in ``N``, ``d_s``
    or ``lam_s`` share their teachers (common random numbers).
    Results do not depend on ``chunk`` (repetitions processed together). ``threads``:
    torch threads during the call (see :data:`~w2sg_utils.ridge.DEFAULT_THREADS`).

    Statements: {prf:ref}`def-rf-model`, {prf:ref}`lem-rf-eps-split`.
    """
    if not isinstance(task, RFTask):
        raise ValueError(f"task: expected an RFTask, got {type(task).__name__}")
    n = check_int(n, "n", 1)
    d_w = check_int(d_w, "d_w", 1)
    N = check_int(N, "N", 1)
    reps = check_int(reps, "reps", 2)
    K = check_int(n_ensemble, "n_ensemble", 2)
    n_test = check_int(n_test, "n_test", 1)
    if not (isinstance(lam_w, int | float | np.floating) and np.isfinite(lam_w) and lam_w >= 0):
        raise ValueError(f"lam_w: must be finite and >= 0, got {lam_w!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation: must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    widths = _validate_grid(d_s, "d_s", integer=True)
    lams = _validate_grid(lam_s, "lam_s", integer=False)
    p_max = int(widths.max())
    if chunk is None:  # keep the largest feature block (student or teachers) near 100 MB
        per_rep = max((N + n_test) * p_max, (K + 1) * (N + n_test + n) * d_w)
        chunk = max(1, min(reps, int(1.2e7 // per_rep)))
    chunk = check_int(chunk, "chunk", 1)

    shape = (reps, widths.size, lams.size)
    out = {k: np.empty(shape) for k in STUDENT_FIELDS}
    risk_w = np.empty(reps)
    teacher_var = np.empty(reps)
    noise = task.noise_sd**2
    with torch_threads(threads):
        for start in range(0, reps, chunk):
            idx = range(start, min(reps, start + chunk))
            draws = [_draw_repetition(task, np.random.default_rng([seed, r]), n, d_w, N, p_max, K,
                                      n_test) for r in idx]
            draws = {k: np.stack([dr[k] for dr in draws]) for k in draws[0]}
            f_test, f_lab = _teacher_predictions(task, draws, lam_w, activation)
            ybar = task.ybar(draws["X_test"])  # (B, n_test)
            f_w = f_test[:, 0]
            ens = f_test[:, 1:]
            m_hat = ens.mean(1)
            v_hat = ens.var(1, correction=1).mean(-1)  # (B,)
            sl = slice(start, start + len(idx))
            risk_w[sl] = (noise + ((ybar - f_w) ** 2).mean(-1)).numpy()
            teacher_var[sl] = v_hat.numpy()

            X_all = torch.cat([torch.as_tensor(draws["X_N"]), torch.as_tensor(draws["X_test"])], -2)
            act = ACTIVATIONS[activation]
            pre = X_all @ torch.as_tensor(draws["W_s"]).transpose(-1, -2) / np.sqrt(task.d)
            for j, p in enumerate(widths):
                feats = act(pre[..., :p]) / np.sqrt(p)
                Phi, Phi_test = feats[:, :N], feats[:, N:]
                coef = ridge_path(Phi, f_lab, N * lams)  # (B, L, p)
                f_s = coef @ Phi_test.transpose(-1, -2)  # (B, L, n_test)
                dw = (f_w - m_hat).unsqueeze(1)
                ds = f_s - m_hat.unsqueeze(1)
                corr = (v_hat / K).unsqueeze(1)
                vals = {
                    "risk_s": noise + ((ybar.unsqueeze(1) - f_s) ** 2).mean(-1),
                    "misfit": ((f_s - f_w.unsqueeze(1)) ** 2).mean(-1),
                    "dist_mean": (ds**2).mean(-1) - corr,
                    "cov_sw": (ds * dw).mean(-1) - corr,
                    "eps_mean": 2 * ((ybar.unsqueeze(1) - f_s) * ds).mean(-1),
                }
                for k, v in vals.items():
                    out[k][sl, j, :] = v.numpy()
    params = dict(task=task, n=n, d_w=d_w, lam_w=float(lam_w), N=N, reps=reps, n_ensemble=K,
                  n_test=n_test, seed=seed, activation=activation)
    return W2SResult(params=params, d_s=widths, lam_s=lams, risk_w=risk_w,
                     teacher_var=teacher_var, **out)


def naive_w2s_repetition(task: RFTask, r: int, *, n, d_w, lam_w, N, d_s, lam_s, n_ensemble=16,
                         n_test=1000, seed=0, activation="relu") -> dict[str, float]:
    """One repetition of :func:`simulate_w2s` for one width and ridge, written plainly.

    Uses ``numpy.linalg.solve`` on the primal normal equations (or ``lstsq`` when
    ``lam = 0``) for every fit; returns ``risk_w``, ``risk_s`` and ``misfit``. Used by
    the tests and the chapter as the reference for the batched pipeline.
    """
    K = n_ensemble
    dr = _draw_repetition(task, np.random.default_rng([seed, r]), n, d_w, N, d_s, K, n_test)
    act = {"relu": lambda z: np.maximum(z, 0.0), "tanh": np.tanh}[activation]

    def feats(X, W):
        return act(X @ W.T / np.sqrt(task.d)) / np.sqrt(W.shape[0])

    def fit(Phi, y, lam):
        if lam == 0:
            return np.linalg.lstsq(Phi, y, rcond=None)[0]
        A = Phi.T @ Phi + len(y) * lam * np.eye(Phi.shape[1])
        return np.linalg.solve(A, Phi.T @ y)

    ybar = task.ybar(dr["X_n"][0]).numpy()
    beta_w = fit(feats(dr["X_n"][0], dr["W_w"][0]), ybar + task.noise_sd * dr["xi_n"][0], lam_w)
    f_w = feats(dr["X_test"], dr["W_w"][0]) @ beta_w
    labels = feats(dr["X_N"], dr["W_w"][0]) @ beta_w
    beta_s = fit(feats(dr["X_N"], dr["W_s"]), labels, lam_s)
    f_s = feats(dr["X_test"], dr["W_s"]) @ beta_s
    yt = task.ybar(dr["X_test"]).numpy()
    noise = task.noise_sd**2
    return {
        "risk_w": noise + np.mean((yt - f_w) ** 2),
        "risk_s": noise + np.mean((yt - f_s) ** 2),
        "misfit": np.mean((f_s - f_w) ** 2),
    }
