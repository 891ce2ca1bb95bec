"""Divergence objectives: forward/reverse CE and KL, ``CACE``, ``Quan_CACE`` and
``SL`` (claims C7-C9, Chapter 4)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .._common import check_int, check_real
from .base import (
    DEFAULT_EPS,
    Objective,
    _confidence,
    _entropy_labels,
    _fmt,
    _forward_ce,
    _log_smoothed,
    _need_two,
    _QuantileBuffer,
    _reverse_ce,
    _SmoothedLabels,
)


class ForwardCE(Objective):
    """Forward cross-entropy ``CE(y, p) = -sum_k y_k log p_k`` (claims C7, C8).

    Binary: ``-[y log s + (1 - y) log(1 - s)]``, gradient ``s - y`` in the logit.
    Finite for hard labels and saturated logits (computed from ``log_softmax``).
    """

    name = "bce"

    def _per_example(self, z, y, binary, progress):
        return _forward_ce(F.log_softmax(z, dim=-1), y)


class ReverseCE(_SmoothedLabels):
    """Reverse cross-entropy ``RCE(p, y_eps) = -sum_k p_k log y_eps,k`` (claims C7, C8).

    Binary: ``-[s log y_eps + (1 - s) log(1 - y_eps)]``, gradient
    ``-s (1 - s) logit(y_eps)``; ``RCE(p, y) = KL(p || y) + H(p)``.
    """

    name = "reverse_bce"
    def _per_example(self, z, y, binary, progress):
        return _reverse_ce(torch.softmax(z, dim=-1), _log_smoothed(y, self.eps, None, self.name))


class ForwardKL(Objective):
    """Forward KL ``KL(y || p) = CE(y, p) - H(y)`` (same gradient as forward CE; C7)."""

    name = "kl"

    def _per_example(self, z, y, binary, progress):
        return _forward_ce(F.log_softmax(z, dim=-1), y) - _entropy_labels(y)


class ReverseKL(_SmoothedLabels):
    """Reverse KL ``KL(p || y_eps) = sum_k p_k (log p_k - log y_eps,k) = RCE - H(p)`` (C7)."""

    name = "reverse_kl"
    def _per_example(self, z, y, binary, progress):
        logp = F.log_softmax(z, dim=-1)
        return (logp.exp() * (logp - _log_smoothed(y, self.eps, None, self.name))).sum(dim=-1)


class CACE(Objective):
    """Confidence-adaptive CE ``CACE_c`` (claim C9).

    Per example: ``CE(y, p)`` if ``conf(y) >= c`` else ``RCE(p, y_eps)``, with
    ``conf(y) = max_k y_k - 1/K`` (binary ``|y - 1/2|``). ``c = 0`` is forward CE;
    ``c > 1 - 1/K`` (binary: ``c > 0.5``) is reverse CE.
    """

    options = ("eps",)

    def __init__(self, c: float, eps: float = DEFAULT_EPS, **kw):
        super().__init__(**kw)
        self.c = check_real(c, "c", 0.0, 1.0)
        self.eps = check_real(eps, "eps", 0.0, 1.0, max_open=True)
        self.name = f"CACE_{_fmt(self.c)}"

    def _threshold(self, y, binary):
        return self.c

    def _per_example(self, z, y, binary, progress):
        conf = _confidence(y, binary)
        confident = conf >= self._threshold(y, binary)
        logp = F.log_softmax(z, dim=-1)
        ce = _forward_ce(logp, y)
        rce = _reverse_ce(logp.exp(), _log_smoothed(y, self.eps, ~confident, self.name))
        return torch.where(confident, ce, rce)


class QuanCACE(CACE):
    """``Quan_CACE_k``: ``CACE_c`` with ``c`` the ``k/10`` quantile of ``conf(y)`` (C9).

    The quantile (``torch.quantile``, linear interpolation) is over the quantile sample:
    the current batch (``buffer_size=0``, at least 2 examples) or the rolling buffer of
    the last ``buffer_size`` teacher confidences. ``k = 0`` is forward CE.
    """

    options = ("eps", "buffer_size")

    def __init__(self, k: int, eps: float = DEFAULT_EPS, buffer_size: int = 0, **kw):
        super().__init__(c=0.0, eps=eps, **kw)
        self.k = check_int(k, "k", 0, 10)
        self.buffer_size = check_int(buffer_size, "buffer_size", 0)
        self._buffer = _QuantileBuffer(self.buffer_size)
        self.name = f"Quan_CACE_{self.k}"
        self.last_threshold: float | None = None

    def reset(self) -> None:
        self._buffer.reset()

    def observe(self, student_logits, teacher_probs) -> None:
        """Add teacher confidences to the buffer; ``student_logits`` may be ``None``."""
        if student_logits is None:
            student_logits = torch.zeros_like(torch.as_tensor(teacher_probs), dtype=torch.float64)
        _, y, binary = self._prepare(student_logits, teacher_probs)
        self._buffer.push(conf=_confidence(y, binary))

    def _threshold(self, y, binary):
        conf = _confidence(y, binary)
        sample = self._buffer.sample(conf=conf)["conf"]
        _need_two(sample.shape[0], self.name, self.buffer_size)
        thr = torch.quantile(sample, self.k / 10.0)
        self._buffer.push(conf=conf)
        self.last_threshold = float(thr)
        return thr


class SymmetricLoss(Objective):
    """``SL_a<alpha>_b<beta>``: ``alpha CE(y, p) + beta RCE(p, y_eps)`` (Wang et al.; C9)."""

    options = ("eps",)

    def __init__(self, alpha: float, beta: float, eps: float = DEFAULT_EPS, **kw):
        super().__init__(**kw)
        self.alpha = check_real(alpha, "alpha", 0.0)
        self.beta = check_real(beta, "beta", 0.0)
        if self.alpha == 0 and self.beta == 0:
            raise ValueError("alpha, beta: at least one of the two weights must be positive")
        self.eps = check_real(eps, "eps", 0.0, 1.0, max_open=True)
        self.name = f"SL_a{_fmt(self.alpha)}_b{_fmt(self.beta)}"

    def _per_example(self, z, y, binary, progress):
        logp = F.log_softmax(z, dim=-1)
        out = self.alpha * _forward_ce(logp, y)
        if self.beta > 0:
            out = out + self.beta * _reverse_ce(
                logp.exp(), _log_smoothed(y, self.eps, None, self.name)
            )
        return out
