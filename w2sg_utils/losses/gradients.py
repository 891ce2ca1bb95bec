"""Closed-form gradients of the objectives with respect to the student's logits
(claim C8), numpy float64; the references the torch objectives are tested against."""

from __future__ import annotations

import numpy as np
from scipy.special import expit, log_softmax, softmax

from .._common import check_real
from .base import DEFAULT_EPS, smooth_labels


def _np_inputs(student_logits, teacher_probs):
    z = np.asarray(student_logits, dtype=np.float64)
    y = np.asarray(teacher_probs, dtype=np.float64)
    if z.shape != y.shape or z.ndim not in (1, 2):
        raise ValueError(
            f"teacher_probs: shape {y.shape} must equal student_logits' {z.shape}, "
            "(B,) binary or (B, K) multi-class"
        )
    return z, y


def _smoothed_inputs(student_logits, teacher_probs, eps):
    """``z``, ``y`` and the smoothed label ``y_eps`` (``K = 2`` for binary inputs)."""
    eps = check_real(eps, "eps", 0.0, 1.0, max_open=True)
    z, y = _np_inputs(student_logits, teacher_probs)
    return z, y, smooth_labels(y, eps, 2 if z.ndim == 1 else z.shape[-1])


def forward_ce_grad(student_logits, teacher_probs) -> np.ndarray:
    """Gradient of the per-example forward CE w.r.t. the logits: ``p - y`` (claim C8).

    Binary: ``s - y`` with ``s = sigmoid(z)``. Same shape as ``student_logits``.
    The same is the gradient of the forward KL (``H(y)`` does not depend on ``z``).

    Statement: {prf:ref}`prop-ce-rce-gradients`.
    """
    z, y = _np_inputs(student_logits, teacher_probs)
    if z.ndim == 1:
        return expit(z) - y
    return softmax(z, axis=-1) - y


kl_grad = forward_ce_grad


def reverse_ce_grad(student_logits, teacher_probs, eps: float = DEFAULT_EPS) -> np.ndarray:
    """Gradient of the per-example reverse CE w.r.t. the logits (claim C8).

    Multi-class: ``dRCE/dz_j = -p_j (log y_eps,j - sum_k p_k log y_eps,k)``.
    Binary: ``-s (1 - s) logit(y_eps)``. An exactly uniform teacher gives exactly zero
    (``log y_eps`` is shifted by its maximum before use, which the formula allows).

    Statement: {prf:ref}`prop-ce-rce-gradients`.
    """
    z, _, ye = _smoothed_inputs(student_logits, teacher_probs, eps)
    with np.errstate(divide="ignore"):
        if z.ndim == 1:
            s = expit(z)
            return -s * (1.0 - s) * (np.log(ye) - np.log1p(-ye))
        p = softmax(z, axis=-1)
        L = np.log(ye)
    L = L - L.max(axis=-1, keepdims=True)  # exact zeros for a uniform teacher
    return -p * (L - np.sum(p * L, axis=-1, keepdims=True))


def reverse_kl_grad(student_logits, teacher_probs, eps: float = DEFAULT_EPS) -> np.ndarray:
    """Gradient of ``KL(p || y_eps)`` w.r.t. the logits: ``p_j (A_j - sum_k p_k A_k)``,
    ``A = log p - log y_eps`` (claim C7). Binary: ``s (1 - s) (z - logit(y_eps))``.

    Statement: {prf:ref}`prop-ce-rce-gradients`.
    """
    z, _, ye = _smoothed_inputs(student_logits, teacher_probs, eps)
    with np.errstate(divide="ignore"):
        if z.ndim == 1:
            s = expit(z)
            return s * (1.0 - s) * (z - (np.log(ye) - np.log1p(-ye)))
        logp = log_softmax(z, axis=-1)
        A = logp - np.log(ye)
    p = np.exp(logp)
    return p * (A - np.sum(p * A, axis=-1, keepdims=True))
