"""Synthetic weak-to-strong classification with Gaussian classes (claims C7-C9, Chapter 4).

The task. A class ``y`` is uniform on ``{0, ..., K-1}`` and the input is
``x = mu_y + N(0, I_d)``, so the Bayes posterior is known in closed form:
``ybar(x) = softmax(<mu_k, x> - |mu_k|^2 / 2)``. The **strong view** is ``x`` itself; the
**weak view** is ``x_w = x[:d_w] + sigma_w * xi`` with ``xi ~ N(0, I)`` drawn afresh for
every example (the teacher sees only ``d_w`` coordinates, through noise).

The models are linear-logit classifiers ``p = softmax(W u + b)`` trained with any
objective of :mod:`w2sg_utils.losses`. Because the teacher's logits are linear in its
view, the dual mean over the view noise (the teacher's *posterior mean* given what the
student sees) is exact: ``fbar_w(x) = softmax(W_w x[:d_w] + b_w)`` (the softmax of the
mean logits, :meth:`~w2sg_utils.divergences.KLSimplex.dual_mean_logits`).

:func:`w2s_terms` returns, per test example, every quantity of the chapter's identities,
computed from log-probabilities (stable for saturated students).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import log_softmax, logsumexp

from ._common import check_int, non_negative, positive, positive_int, torch_threads
from .losses import Objective

__all__ = [
    "GaussianTask",
    "make_gaussian_task",
    "LinearClassifier",
    "train_linear",
    "w2s_terms",
    "check_entropy_corollary",
    "entropy",
    "min_entropy",
]


@dataclass(frozen=True)
class GaussianTask:
    """Gaussian classes with a strong view ``x`` and a noisy weak view (Chapter 4).

    The clean weak view gives the posterior-mean teacher of a view-noise teacher, and
    independent training sets give teachers random through their training data.

    Statement: {prf:ref}`prop-noisy-view-posterior-mean`.
    """

    means: np.ndarray
    weak_dim: int
    weak_noise: float

    @property
    def n_classes(self) -> int:
        return self.means.shape[0]

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def posterior_log_probs(self, x) -> np.ndarray:
        """``log ybar(x)``: the Bayes posterior ``softmax(<mu_k, x> - |mu_k|^2 / 2)``."""
        x = np.asarray(x, dtype=np.float64)
        logits = x @ self.means.T - 0.5 * np.sum(self.means**2, axis=1)
        return log_softmax(logits, axis=-1)

    def sample(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """``n`` i.i.d. examples: ``y``, ``x``, the noisy weak view ``x_weak`` and its clean
        version ``x_weak_clean = x[:, :d_w]`` (used only for the posterior-mean teacher)."""
        n = positive_int(n, "n")
        y = rng.integers(0, self.n_classes, size=n)
        x = self.means[y] + rng.standard_normal((n, self.dim))
        clean = x[:, : self.weak_dim]
        noisy = clean + self.weak_noise * rng.standard_normal(clean.shape)
        return {"y": y, "x": x, "x_weak": noisy, "x_weak_clean": clean}


def make_gaussian_task(n_classes: int = 3, dim: int = 10, weak_dim: int = 3,
                       separation: float = 3.0, weak_noise: float = 1.0,
                       rng: np.random.Generator | None = None) -> GaussianTask:
    """Draw class means ``mu_k ~ N(0, separation^2 / dim * I_d)`` (so ``|mu_k - mu_j|`` is
    about ``sqrt(2) * separation``); the teacher sees the first ``weak_dim`` coordinates."""
    n_classes = check_int(n_classes, "n_classes", 2)
    dim = positive_int(dim, "dim")
    weak_dim = positive_int(weak_dim, "weak_dim")
    if weak_dim > dim:
        raise ValueError(f"weak_dim: must be <= dim = {dim}, got {weak_dim}")
    separation = positive(separation, "separation")
    weak_noise = non_negative(weak_noise, "weak_noise")
    rng = np.random.default_rng() if rng is None else rng
    means = rng.standard_normal((n_classes, dim)) * separation / math.sqrt(dim)
    return GaussianTask(means=means, weak_dim=weak_dim, weak_noise=weak_noise)


@dataclass(frozen=True)
class LinearClassifier:
    """``p(u) = softmax(weight @ u + bias)``, ``weight`` of shape ``(K, d)``."""

    weight: np.ndarray
    bias: np.ndarray

    def logits(self, u) -> np.ndarray:
        return np.asarray(u, dtype=np.float64) @ self.weight.T + self.bias

    def log_probs(self, u) -> np.ndarray:
        return log_softmax(self.logits(u), axis=-1)


def train_linear(u, targets, objective: Objective, *, epochs: int = 20, batch_size: int = 100,
                 lr: float = 0.05, l2: float = 1e-3, seed: int = 0) -> LinearClassifier:
    """Train ``softmax(W u + b)`` on soft ``targets`` ``(n, K)`` with ``objective`` (Chapter 4).

    Adam (``lr``) on ``objective(z, y, progress) + l2 / 2 * ||W||_F^2`` over shuffled
    minibatches of ``batch_size`` for ``epochs`` epochs, from zero weights; ``progress``
    is the fraction of steps done. For ``K = 2`` the objective gets the binary form (the
    logit of class 1 and the target's class-1 probability); the returned classifier has
    logits ``(0, z)``. Float64 throughout; ``seed`` fixes the minibatch order. Runs
    on one thread (restored afterwards): the matrices are too small to gain from more.

    Statement: {prf:ref}`prop-population-minimisers`.
    """
    u = torch.as_tensor(np.asarray(u, dtype=np.float64))
    t = torch.as_tensor(np.asarray(targets, dtype=np.float64))
    if u.ndim != 2 or t.ndim != 2 or u.shape[0] != t.shape[0]:
        raise ValueError(f"targets: expected shape (n, K) matching u (n, d); got {tuple(t.shape)}, "
                         f"{tuple(u.shape)}")
    epochs = positive_int(epochs, "epochs")
    batch_size = check_int(batch_size, "batch_size", 2)
    lr = positive(lr, "lr")
    l2 = non_negative(l2, "l2")
    with torch_threads(1):  # tiny matrices: threads only add overhead
        return _train_linear(u, t, objective, epochs, batch_size, lr, l2, seed)


def _train_linear(u, t, objective, epochs, batch_size, lr, l2, seed) -> LinearClassifier:
    n, d = u.shape
    K = t.shape[1]
    binary = K == 2
    out = 1 if binary else K
    W = torch.zeros(out, d, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(out, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([W, b], lr=lr)
    objective.fit(t[:, 1] if binary else t)  # Quan_CACE: threshold from all training labels
    gen = torch.Generator().manual_seed(int(seed))
    per_epoch = math.ceil(n / batch_size)
    total = epochs * per_epoch
    step = 0
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen)
        for i in range(per_epoch):
            idx = perm[i * batch_size:(i + 1) * batch_size]
            if idx.numel() < 2:  # a batch quantile needs two examples
                continue
            z = u[idx] @ W.T + b
            if binary:
                loss = objective(z[:, 0], t[idx, 1], progress=step / total)
            else:
                loss = objective(z, t[idx], progress=step / total)
            if l2 > 0:
                loss = loss + 0.5 * l2 * (W**2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
    Wn, bn = W.detach().numpy().copy(), b.detach().numpy().copy()
    if binary:
        Wn = np.vstack([np.zeros(d), Wn[0]])
        bn = np.array([0.0, bn[0]])
    return LinearClassifier(Wn, bn)


def entropy(logp) -> np.ndarray:
    """Shannon entropy ``H(p) = -sum_k p_k log p_k`` from log-probabilities (last axis).

    Statement: {prf:ref}`cor-entropy-gain`.
    """
    logp = np.asarray(logp, dtype=np.float64)
    p = np.exp(logp)
    with np.errstate(invalid="ignore"):  # 0 * (-inf) where p = 0; masked out
        return -np.sum(np.where(p > 0, p * logp, 0.0), axis=-1)


def min_entropy(logp) -> np.ndarray:
    """Min-entropy ``H_inf(p) = -log max_k p_k`` from log-probabilities (last axis).

    Statement: {prf:ref}`cor-entropy-gain`.
    """
    return -np.max(np.asarray(logp, dtype=np.float64), axis=-1)


def _kl(logp, logq) -> np.ndarray:
    p = np.exp(logp)
    with np.errstate(invalid="ignore"):
        return np.sum(np.where(p > 0, p * (logp - logq), 0.0), axis=-1)


def w2s_terms(y, log_ybar, logp_s, logp_w, logp_wbar) -> dict[str, np.ndarray]:
    """Per-example terms of the KL gain identity and the entropy bound (claims C2, C3, C7).

    Arguments are the true classes ``y`` ``(n,)``, the log Bayes posterior ``log ybar``,
    and the log-probabilities of the student, the teacher (on its noisy view) and the
    posterior-mean teacher, each ``(n, K)``. Returns ``(n,)`` arrays:

    * ``risk_s = KL(ybar || f_s)``, ``risk_w = KL(ybar || f_w)`` (excess cross-entropy
      risks: the noise ``H(ybar)`` cancels in the gain ``risk_w - risk_s``);
    * ``misfit = KL(f_s || f_w)`` (student first, claim C7) and
      ``misfit_fwd = KL(f_w || f_s)`` (what forward-CE training minimises);
    * ``cross = <ybar - f_s, log f_s - log f_w>`` (so ``risk_w = risk_s + misfit + cross``)
      and ``eps = <ybar - f_s, log f_s - log fbar_w>`` (the residual of claim C3);
    * ``dist_pm = KL(f_s || fbar_w)`` and ``variance_w = KL(fbar_w || f_w)``, the two
      terms of the misfit decomposition (claim C4);
    * ``rce = RCE(f_s, f_w) = misfit + H(f_s)``, ``entropy_s = H(f_s)``,
      ``entropy_w = H(f_w)``, ``min_entropy_w = -log max_k f_w,k``;
    * ``correct_s``, ``correct_w``: 0/1 accuracy of the argmax against ``y``.

    Statements: {prf:ref}`prop-ce-gain-identity`, {prf:ref}`cor-entropy-gain`,
    {prf:ref}`prop-noisy-view-posterior-mean`.
    """
    arrs = [np.asarray(a, dtype=np.float64) for a in (log_ybar, logp_s, logp_w, logp_wbar)]
    log_ybar, logp_s, logp_w, logp_wbar = arrs
    shape = log_ybar.shape
    if any(a.shape != shape for a in arrs) or len(shape) != 2:
        raise ValueError(f"logp_s, logp_w, logp_wbar: shapes must all equal log_ybar's {shape}")
    y = np.asarray(y)
    if y.shape != shape[:1]:
        raise ValueError(f"y: expected shape {shape[:1]}, got {y.shape}")
    for name, a in zip(("log_ybar", "logp_s", "logp_w", "logp_wbar"), arrs):
        if not np.all(np.isfinite(a)) or np.abs(logsumexp(a, axis=-1)).max() > 1e-8:
            raise ValueError(f"{name}: must be finite, normalised log-probabilities")
    ybar, p_s = np.exp(log_ybar), np.exp(logp_s)
    d = ybar - p_s
    return {
        "risk_s": _kl(log_ybar, logp_s),
        "risk_w": _kl(log_ybar, logp_w),
        "misfit": _kl(logp_s, logp_w),
        "misfit_fwd": _kl(logp_w, logp_s),
        "cross": np.sum(d * (logp_s - logp_w), axis=-1),
        "eps": np.sum(d * (logp_s - logp_wbar), axis=-1),
        "dist_pm": _kl(logp_s, logp_wbar),
        "variance_w": _kl(logp_wbar, logp_w),
        "rce": -np.sum(p_s * logp_w, axis=-1),
        "entropy_s": entropy(logp_s),
        "entropy_w": entropy(logp_w),
        "min_entropy_w": min_entropy(logp_w),
        "correct_s": (np.argmax(logp_s, axis=-1) == y).astype(float),
        "correct_w": (np.argmax(logp_w, axis=-1) == y).astype(float),
    }


def check_entropy_corollary(terms: dict, what: str = "", exact: bool = False,
                            tol: float = 1e-9) -> float:
    """Assert the algebra of Chapter 4's ``cor-entropy-gain``, example by example (C7).

    ``terms`` holds per-example arrays as returned by :func:`w2s_terms` (or their average
    over teacher draws). Asserted for every example, to rounding (``tol``):

    * ``RCE(f_s, f_w) = KL(f_s || f_w) + H(f_s)`` (``rce``, ``misfit``, ``entropy_s``);
    * ``RCE(f_s, f_w) >= H_inf(f_w)`` (``min_entropy_w``), the inequality of the
      corollary, which holds example by example;
    * with ``exact=True`` (the teacher's randomness averaged out exactly, as over the
      members of an ensemble that *is* the posterior-mean teacher), also
      ``gain = RCE - H(f_s) + eps`` per example.

    What this cannot check: the corollary's *expected* equality reduces, by the first
    item, to ``E gain = E misfit + eps``, i.e. to the expected misfit theorem (C3); that
    part is statistical and tested with its power by
    :func:`w2sg_utils.entropy_gain.residual_differences`. Returns the largest error of
    the first item.

    Statement: {prf:ref}`cor-entropy-gain`.
    """
    gain = np.asarray(terms["risk_w"]) - np.asarray(terms["risk_s"])
    rce = np.asarray(terms["rce"])
    err = np.abs(rce - terms["misfit"] - terms["entropy_s"])
    if not np.all(err <= tol * (1 + np.abs(rce))):
        raise AssertionError(f"RCE = KL + H {what}: per-example error up to {err.max():.3g}")
    short = terms["min_entropy_w"] - rce
    if np.any(short > tol * (1 + np.abs(rce))):
        raise AssertionError(f"RCE >= H_inf(f_w) {what}: violated by up to {short.max():.3g}")
    if exact:
        diff = gain - rce + terms["entropy_s"] - terms["eps"]
        if not np.allclose(diff, 0.0, rtol=0.0, atol=tol):
            raise AssertionError(f"gain = RCE - H + eps {what}: per-example error up to "
                                 f"{np.max(np.abs(diff)):.3g}")
    return float(err.max())
