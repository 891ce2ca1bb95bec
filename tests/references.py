"""Plain references for the Bregman generators, written from their formulas (tests only).

Loops over coordinates, independent of :mod:`w2sg_utils.divergences`; shared by the
tests of the divergences, decompositions and misfits.
"""

import math

import numpy as np


def phi_ref(name, u):
    if name == "squared":
        return sum(a * a for a in u)
    if name == "kl":
        return sum(a * math.log(a) for a in u if a > 0)
    if name == "binary_kl":
        return sum(a * math.log(a) + (1 - a) * math.log(1 - a) for a in u)
    if name == "i_divergence":
        return sum(a * math.log(a) - a for a in u)
    return -sum(math.log(a) for a in u)


def grad_ref(name, u):
    if name == "squared":
        return [2 * a for a in u]
    if name == "kl":
        return [math.log(a) + 1 for a in u]  # true gradient of sum p log p
    if name == "binary_kl":
        return [math.log(a / (1 - a)) for a in u]
    if name == "i_divergence":
        return [math.log(a) for a in u]
    return [-1 / a for a in u]


def grad(name, u):
    """``grad_ref`` applied to every row of ``u`` (any leading shape)."""
    u = np.asarray(u, dtype=np.float64)
    return np.apply_along_axis(lambda row: np.array(grad_ref(name, list(row))), -1, u)


def grad_inv(name, t):
    """Inverse of ``grad`` (for ``kl`` on the simplex: the softmax, shift-invariant)."""
    t = np.asarray(t, dtype=np.float64)
    if name == "kl":
        return np.exp(t) / np.exp(t).sum(-1, keepdims=True)
    if name == "squared":
        return t / 2
    if name == "binary_kl":
        return 1 / (1 + np.exp(-t))
    if name == "i_divergence":
        return np.exp(t)
    return -1 / t


def relu_features(Z, V):
    """ReLU random features of inputs ``Z`` (rows) with weights ``V``, scaled as the
    package scales them: ``max(Z V^T / sqrt(d), 0) / sqrt(width)``."""
    return np.maximum(Z @ V.T / np.sqrt(Z.shape[1]), 0) / np.sqrt(len(V))


def plain_rf_teacher_values(task, X_eval, W, X, xi, lam_w):
    """Values at ``X_eval`` of ridge teachers on ReLU random features, one per
    ``(W[j], X[j], xi[j])``: a plain loop with ``np.linalg.solve`` (the tests of
    rf_posterior and rf_matched)."""
    n, d_w = X.shape[1], W.shape[1]
    F = []
    for j in range(len(W)):
        P = relu_features(X[j], W[j])
        y = task.ybar(X[j]).numpy() + task.noise_sd * xi[j]
        beta = np.linalg.solve(P.T @ P + n * lam_w * np.eye(d_w), P.T @ y)
        F.append(relu_features(X_eval, W[j]) @ beta)
    return np.array(F)
