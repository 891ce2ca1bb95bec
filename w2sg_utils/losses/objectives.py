"""Divergence objectives: forward/reverse CE and KL, ``CACE``, ``Quan_CACE`` and
``SL`` (claims C7-C9, Chapter 4)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .._common import check_int, check_real
from .base import (
    DEFAULT_EPS,
    NUMBER,
    Objective,
    QuantileBuffer,
    SmoothedLabels,
    confidence,
    entropy_labels,
    fmt_number,
    forward_ce,
    log_smoothed,
    need_two,
    reverse_ce,
)


class ForwardCE(Objective):
    """Forward cross-entropy ``CE(y, p) = -sum_k y_k log p_k`` (claims C7, C8).

    Binary: ``-[y log s + (1 - y) log(1 - s)]``, gradient ``s - y`` in the logit.
    Finite for hard labels and saturated logits (computed from ``log_softmax``).

    Statements: {prf:ref}`prop-ce-rce-gradients`, {prf:ref}`prop-population-minimisers`.
    """

    name = "bce"
    aliases = ("ce", "xent", "forward_ce")
    summary = "forward cross-entropy CE(y, p) (aliases: ce, xent, forward_ce)"
    example = "bce"
    released = {}

    def _per_example(self, z, y, binary, progress):
        return forward_ce(F.log_softmax(z, dim=-1), y)


class ReverseCE(SmoothedLabels):
    """Reverse cross-entropy ``RCE(p, y_eps) = -sum_k p_k log y_eps,k`` (claims C7, C8).

    Binary: ``-[s log y_eps + (1 - s) log(1 - y_eps)]``, gradient
    ``-s (1 - s) logit(y_eps)``; ``RCE(p, y) = KL(p || y) + H(p)``.

    Statements: {prf:ref}`prop-ce-rce-gradients`, {prf:ref}`prop-population-minimisers`.
    """

    name = "reverse_bce"
    aliases = ("rce", "reverse_ce")
    summary = "reverse cross-entropy RCE(p, y_eps) (aliases: rce, reverse_ce)"
    example = "reverse_bce"
    released = {}
    def _per_example(self, z, y, binary, progress):
        return reverse_ce(torch.softmax(z, dim=-1), log_smoothed(y, self.eps, None, self.name))


class _ClassMean:
    """Option ``class_mean``: divide the per-example divergence by ``K``, as the released
    code's ``F.kl_div(..., reduction="mean")`` over the ``(B, K)`` entries does
    (``weak_to_strong/loss.py``, ``kl_loss`` / ``reverse_kl_loss``). Off by default:
    the book's divergences sum over classes."""

    def _init_class_mean(self, class_mean) -> None:
        if not isinstance(class_mean, bool):
            raise ValueError(f"class_mean: expected True or False, got {class_mean!r}")
        self.class_mean = class_mean

    def _scale(self, per: torch.Tensor, n_classes: int) -> torch.Tensor:
        return per / n_classes if self.class_mean else per


class ForwardKL(_ClassMean, Objective):
    """Forward KL ``KL(y || p) = CE(y, p) - H(y)`` (same gradient as forward CE; C7).

    ``class_mean=True`` divides it by ``K`` (the released ``kl``, see :class:`_ClassMean`).

    Statement: {prf:ref}`prop-population-minimisers`.
    """

    name = "kl"
    options = ("class_mean",)
    aliases = ()
    summary = "forward KL(y || p) (class_mean=True: divided by K, as released)"
    example = "kl"
    released = {"class_mean": True}

    def __init__(self, class_mean: bool = False, **kw):
        super().__init__(**kw)
        self._init_class_mean(class_mean)

    def _per_example(self, z, y, binary, progress):
        per = forward_ce(F.log_softmax(z, dim=-1), y) - entropy_labels(y)
        return self._scale(per, z.shape[-1])


class ReverseKL(_ClassMean, SmoothedLabels):
    """Reverse KL ``KL(p || y_eps) = sum_k p_k (log p_k - log y_eps,k) = RCE - H(p)`` (C7).

    ``class_mean=True`` divides it by ``K`` (the released ``reverse_kl``).

    Statement: {prf:ref}`prop-population-minimisers`.
    """

    name = "reverse_kl"
    options = ("eps", "class_mean")
    aliases = ()
    summary = "reverse KL(p || y_eps) (class_mean=True: divided by K, as released)"
    example = "reverse_kl"
    released = {"class_mean": True}

    def __init__(self, eps: float = DEFAULT_EPS, class_mean: bool = False, **kw):
        super().__init__(eps=eps, **kw)
        self._init_class_mean(class_mean)

    def _per_example(self, z, y, binary, progress):
        logp = F.log_softmax(z, dim=-1)
        per = (logp.exp() * (logp - log_smoothed(y, self.eps, None, self.name))).sum(dim=-1)
        return self._scale(per, z.shape[-1])


class CACE(Objective):
    """Confidence-adaptive CE ``CACE_c`` (claim C9).

    Per example: ``CE(y, p)`` if ``conf(y) >= c`` else ``RCE(p, y_eps)``, with
    ``conf(y) = max_k y_k - 1/K`` (binary ``|y - 1/2|``). ``c = 0`` is forward CE;
    ``c > 1 - 1/K`` (binary: ``c > 0.5``) is reverse CE.

    Statement: {ref}`sec-ch04-experiment`.
    """

    options = ("eps",)
    aliases = ()
    summary = "CE where conf(y) >= c, RCE elsewhere; c in [0, 1], e.g. CACE_0.1"
    example = "CACE_0.1"
    released = {}
    family, label, params = "cace", "CACE_<c>", ("c",)
    pattern = rf"cace_(?P<c>{NUMBER})"
    param_type = float
    hint = "CACE_<c> with c a number in [0, 1], e.g. CACE_0.1"

    def __init__(self, c: float, eps: float = DEFAULT_EPS, **kw):
        super().__init__(**kw)
        self.c = check_real(c, "c", 0.0, 1.0)
        self.eps = check_real(eps, "eps", 0.0, 1.0, max_open=True)
        self.name = f"CACE_{fmt_number(self.c)}"

    def _threshold(self, y, binary):
        return self.c

    def _per_example(self, z, y, binary, progress):
        conf = confidence(y, binary)
        confident = conf >= self._threshold(y, binary)
        logp = F.log_softmax(z, dim=-1)
        ce = forward_ce(logp, y)
        rce = reverse_ce(logp.exp(), log_smoothed(y, self.eps, ~confident, self.name))
        return torch.where(confident, ce, rce)


class QuanCACE(CACE):
    """``Quan_CACE_k``: ``CACE_c`` with ``c`` the ``k``-th decile of ``conf(y)`` (C9).

    ``scope="train"`` (default, the released threshold): ``c`` is fixed once, before
    training, by :meth:`fit` on every teacher label of the training set, as
    ``numpy.quantile(conf, numpy.linspace(0, 1, 11)[k])`` in float64 (``train_w2s.py``,
    ``main``, of the release); batches never move it. A call before ``fit`` raises.
    ``scope="batch"`` (the book's variant): the quantile (``torch.quantile``, linear
    interpolation, level ``k / 10``) of the quantile sample, the current batch
    (``buffer_size=0``, at least 2 examples) or the rolling buffer of the last
    ``buffer_size`` teacher confidences. ``k = 0`` is forward CE.

    Statement: {ref}`sec-ch04-experiment`.
    """

    options = ("eps", "scope", "buffer_size")
    aliases = ()
    summary = ("CACE with c the k-th decile of conf(y) over the training labels (fit); "
               "integer k in 0..10, e.g. Quan_CACE_5; scope='batch': per batch")
    example = "Quan_CACE_5"
    released = {"scope": "train"}
    family, label, params = "quan_cace", "Quan_CACE_<k>", ("k",)
    pattern = r"quan_cace_(?P<k>\d+)"
    param_type = int
    hint = "Quan_CACE_<k> with k an integer in 0..10, e.g. Quan_CACE_5"

    def __init__(self, k: int, eps: float = DEFAULT_EPS, scope: str = "train",
                 buffer_size: int = 0, **kw):
        super().__init__(c=0.0, eps=eps, **kw)
        self.k = check_int(k, "k", 0, 10)
        if scope not in ("train", "batch"):
            raise ValueError(f"scope: 'train' (released) or 'batch', got {scope!r}")
        self.scope = scope
        self.buffer_size = check_int(buffer_size, "buffer_size", 0)
        if scope == "train" and self.buffer_size:
            raise ValueError("buffer_size: only with scope='batch'; scope='train' fixes the "
                             "threshold from all training labels (fit)")
        self._buffer = QuantileBuffer(self.buffer_size)
        self.name = f"Quan_CACE_{self.k}"
        self.threshold: float | None = None
        self.last_threshold: float | None = None

    def reset(self) -> None:
        self._buffer.reset()

    def fit(self, teacher_probs) -> QuanCACE:
        """Fix the threshold from every training label (``scope="train"``; no-op otherwise)."""
        if self.scope != "train":
            return self
        y = torch.as_tensor(teacher_probs).detach().cpu().to(torch.float64)
        if y.ndim not in (1, 2) or y.shape[0] == 0:
            raise ValueError(f"teacher_probs: expected a non-empty (n,) or (n, K) array, got "
                             f"shape {tuple(y.shape)}")
        if not bool(torch.isfinite(y).all()) or bool((y < 0).any()) or bool((y > 1).any()):
            raise ValueError("teacher_probs: probabilities must be finite and lie in [0, 1]")
        conf = (y - 0.5).abs() if y.ndim == 1 else y.max(dim=-1).values - 1.0 / y.shape[-1]
        levels = np.linspace(0.0, 1.0, 11)  # the released deciles, bit for bit
        self.threshold = float(np.quantile(conf.numpy(), levels[self.k]))
        self.last_threshold = self.threshold
        return self

    def observe(self, student_logits, teacher_probs) -> None:
        """Add teacher confidences to the buffer (``scope="batch"``); ``student_logits``
        may be ``None``. A no-op with ``scope="train"`` (use :meth:`fit`)."""
        if self.scope != "batch":
            return
        if student_logits is None:
            student_logits = torch.zeros_like(torch.as_tensor(teacher_probs), dtype=torch.float64)
        _, y, binary = self._prepare(student_logits, teacher_probs)
        self._buffer.push(conf=confidence(y, binary))

    def _threshold(self, y, binary):
        if self.scope == "train":
            if self.threshold is None:
                raise ValueError(
                    f"{self.name}: the threshold is the k-th decile of all the training "
                    "labels; call .fit(teacher_probs) with them first (the training loops "
                    "do), or pass scope='batch' for a per-batch quantile")
            return self.threshold
        conf = confidence(y, binary)
        sample = self._buffer.sample(conf=conf)["conf"]
        need_two(sample.shape[0], self.name, self.buffer_size)
        thr = torch.quantile(sample, self.k / 10.0)
        self._buffer.push(conf=conf)
        self.last_threshold = float(thr)
        return thr


class SymmetricLoss(Objective):
    """``SL_a<alpha>_b<beta>``: ``alpha CE(y, p) + beta RCE(p, y_eps)`` (Wang et al.; C9).

    Statement: {ref}`sec-ch04-experiment`.
    """

    options = ("eps",)
    aliases = ()
    summary = "alpha CE + beta RCE; alpha, beta >= 0, e.g. SL_a1_b0.1"
    example = "SL_a1_b0.1"
    released = {}
    family, label, params = "sl", "SL_a<alpha>_b<beta>", ("alpha", "beta")
    pattern = rf"sl_a(?P<alpha>{NUMBER})_b(?P<beta>{NUMBER})"
    param_type = float
    hint = "SL_a<alpha>_b<beta> with alpha, beta >= 0, e.g. SL_a1_b0.1"

    def __init__(self, alpha: float, beta: float, eps: float = DEFAULT_EPS, **kw):
        super().__init__(**kw)
        self.alpha = check_real(alpha, "alpha", 0.0)
        self.beta = check_real(beta, "beta", 0.0)
        if self.alpha == 0 and self.beta == 0:
            raise ValueError("alpha, beta: at least one of the two weights must be positive")
        self.eps = check_real(eps, "eps", 0.0, 1.0, max_open=True)
        self.name = f"SL_a{fmt_number(self.alpha)}_b{fmt_number(self.beta)}"

    def _per_example(self, z, y, binary, progress):
        logp = F.log_softmax(z, dim=-1)
        out = self.alpha * forward_ce(logp, y)
        if self.beta > 0:
            out = out + self.beta * reverse_ce(
                logp.exp(), log_smoothed(y, self.eps, None, self.name)
            )
        return out
