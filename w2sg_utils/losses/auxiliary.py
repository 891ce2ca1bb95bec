"""Auxiliary-target objectives of the weak-to-strong literature: ``aux``, ``logconf``
(Burns et al.), ``product`` (OpenAI code), ``entropy`` and ``window`` (EleutherAI
``w2s``) (claim C9, Chapter 4)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .._common import check_int, check_real
from .base import Objective, QuantileBuffer, forward_ce, need_two


class AuxConfidence(Objective):
    """Auxiliary confidence loss of Burns et al. (``aux``; claim C9).

    ``CE((1 - w) y + w h, p)`` with ``w = aux_coef * min(1, progress / warmup_frac)``
    (``w = aux_coef`` if ``warmup_frac = 0``) and the hardened student ``h``: binary
    ``h = 1[s >= t]``, ``t`` the quantile of ``s`` at level ``1 - mean(y)``; ``K > 2``:
    ``h = onehot(argmax p)``. When ``w = 0`` no quantile is needed and the loss is
    forward CE. The quantile is taken over the *quantile sample*:

    * ``group_size=0`` (default): the current batch (``buffer_size=0``, at least two
      examples) or the rolling buffer of the last ``buffer_size`` examples;
    * ``group_size=g >= 1``: each run of ``g`` consecutive examples of the call on its
      own, as the released code, which calls ``aux_conf_loss`` on every minibatch of
      ``minibatch_size_per_device`` pairs (``weak_to_strong/loss.py``,
      ``train.py``). ``g = 1`` (the released command) hardens every label to 1.

    Statement: {ref}`sec-ch04-experiment`.
    """

    name = "aux"
    options = ("aux_coef", "warmup_frac", "buffer_size", "group_size")
    aliases = ()
    summary = "Burns et al. auxiliary confidence loss (batch-quantile hardening)"
    example = "aux"
    released = {"group_size": 1, "aux_coef": 0.5, "warmup_frac": 0.2}
    _default_warmup = 0.2
    _cls = 1  # the class whose probability is thresholded

    def __init__(self, aux_coef: float = 0.5, warmup_frac: float | None = None,
                 buffer_size: int = 0, group_size: int = 0, **kw):
        super().__init__(**kw)
        self.aux_coef = check_real(aux_coef, "aux_coef", 0.0, 1.0)
        wf = self._default_warmup if warmup_frac is None else warmup_frac
        self.warmup_frac = check_real(wf, "warmup_frac", 0.0, 1.0)
        self.buffer_size = check_int(buffer_size, "buffer_size", 0)
        self.group_size = check_int(group_size, "group_size", 0)
        if self.group_size and self.buffer_size:
            raise ValueError("group_size: a per-group quantile takes no buffer; pass "
                             "buffer_size=0 with group_size > 0")
        self._buffer = QuantileBuffer(self.buffer_size)
        self.last_threshold: float | None = None

    def weight(self, progress: float) -> float:
        """The auxiliary weight ``w`` at training progress ``progress`` in ``[0, 1]``."""
        progress = check_real(progress, "progress", 0.0, 1.0)
        if self.warmup_frac == 0:
            return self.aux_coef
        return self.aux_coef * min(1.0, progress / self.warmup_frac)

    def reset(self) -> None:
        self._buffer.reset()

    def observe(self, student_logits, teacher_probs) -> None:
        z, y, _ = self._prepare(student_logits, teacher_probs)
        if z.shape[-1] == 2:
            self._buffer.push(q=torch.softmax(z, dim=-1)[:, self._cls], y=y[:, 1])

    def _level(self, y1: torch.Tensor) -> torch.Tensor:
        """Quantile level: the share of the sample the teacher puts on class 0."""
        return (1.0 - y1.mean()).clamp(0.0, 1.0)

    def _harden(self, p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if p.shape[-1] > 2:
            return F.one_hot(p.argmax(dim=-1), p.shape[-1]).to(p)
        q, y1 = p[:, self._cls].detach(), y[:, 1]
        if self.group_size:
            hard = torch.empty_like(q)
            for s in range(0, q.shape[0], self.group_size):
                qg, yg = q[s:s + self.group_size], y1[s:s + self.group_size]
                thr = torch.quantile(qg, self._level(yg))
                hard[s:s + self.group_size] = (qg >= thr).to(q)
        else:
            sample = self._buffer.sample(q=q, y=y1)
            need_two(sample["q"].shape[0], self.name, self.buffer_size)
            thr = torch.quantile(sample["q"], self._level(sample["y"]))
            self._buffer.push(q=q, y=y1)
            hard = (q >= thr).to(q)
        self.last_threshold = float(thr)
        hard = hard.to(p)
        pair = [1.0 - hard, hard] if self._cls == 1 else [hard, 1.0 - hard]
        return torch.stack(pair, dim=-1)

    def _per_example(self, z, y, binary, progress):
        logp = F.log_softmax(z, dim=-1)
        w = self.weight(progress)
        if w == 0:
            if logp.shape[-1] == 2:  # keep the buffer current even while w = 0
                self._buffer.push(q=logp.exp()[:, self._cls], y=y[:, 1])
            return forward_ce(logp, y)
        h = self._harden(logp.exp().detach(), y)
        return forward_ce(logp, (1.0 - w) * y + w * h)


class LogConf(AuxConfidence):
    """``logconf``: the auxiliary confidence loss as in the OpenAI weak-to-strong code (C9).

    Differs from :class:`AuxConfidence` in two details of that code
    (``weak_to_strong/loss.py``, ``logconf_loss_fn``; EleutherAI ``w2s/loss.py``,
    ``log_confidence_loss``, hardens the same way): the weight is
    ``w = aux_coef * (progress if progress <= warmup_frac else 1)`` (a ramp to
    ``aux_coef * warmup_frac`` that then jumps to ``aux_coef``; default ``warmup_frac``
    0.1), and the hardening thresholds the class-0 probability itself:
    ``h_0 = 1[p_0 >= t_0]``, ``t_0`` the quantile of ``p_0`` at level ``mean(y)`` (ties
    go to class 0). ``last_threshold`` is ``t_0``.

    Statement: {ref}`sec-ch04-experiment`.
    """

    name = "logconf"
    aliases = ()
    summary = "aux as in the OpenAI weak-to-strong code"
    example = "logconf"
    released = None
    _default_warmup = 0.1
    _cls = 0

    def weight(self, progress: float) -> float:
        progress = check_real(progress, "progress", 0.0, 1.0)
        return self.aux_coef * (1.0 if progress > self.warmup_frac else progress)

    def _level(self, y1: torch.Tensor) -> torch.Tensor:
        return y1.mean().clamp(0.0, 1.0)


class ProductLoss(Objective):
    """``product`` (OpenAI code): ``CE(t, p)`` with ``t_k = y_k^alpha p_k^beta / sum_j (...)``.

    ``t`` is detached (a fixed target each step); ``alpha`` weighs the teacher, ``beta``
    the student. Computed in log space (``0^0 = 1``), so hard labels and saturated logits
    stay finite.
    """

    name = "product"
    options = ("alpha", "beta")
    aliases = ()
    summary = "CE to the normalised product y^alpha p^beta (OpenAI code)"
    example = "product"
    released = None

    def __init__(self, alpha: float = 1.0, beta: float = 1.0, **kw):
        super().__init__(**kw)
        self.alpha = check_real(alpha, "alpha", 0.0)
        self.beta = check_real(beta, "beta", 0.0)

    def _per_example(self, z, y, binary, progress):
        logp = F.log_softmax(z, dim=-1)
        a = torch.as_tensor(self.alpha, dtype=y.dtype, device=y.device)
        logt = torch.xlogy(a, y) + self.beta * logp.detach()
        if self.alpha > 0:
            logt = torch.where(y > 0, logt, torch.full_like(logt, -math.inf))
        t = torch.softmax(logt, dim=-1)
        return forward_ce(logp, t)


class EntropyLoss(Objective):
    """``entropy`` (EleutherAI ``w2s``): ``CE((1 - w) y + w p', p)``, ``w`` ramped like ``aux``.

    With ``detach=True`` (as in that code) ``p' = stopgrad(p)``: the value is
    ``(1 - w) CE(y, p) + w H(p)`` but the gradient is ``(1 - w) (p - y)``, i.e. forward CE
    rescaled; no entropy is minimised. With ``detach=False``, ``p' = p`` and the loss
    ``(1 - w) CE(y, p) + w H(p)`` is a true entropy penalty (claim C7's direction).
    Default ``warmup_frac`` 0.1.

    Statement: {prf:ref}`cor-entropy-gain`.
    """

    name = "entropy"
    options = ("aux_coef", "warmup_frac", "detach")
    aliases = ()
    summary = "CE to (1 - w) y + w p (EleutherAI w2s)"
    example = "entropy"
    released = None

    def __init__(self, aux_coef: float = 0.5, warmup_frac: float = 0.1, detach: bool = True,
                 **kw):
        super().__init__(**kw)
        self.aux_coef = check_real(aux_coef, "aux_coef", 0.0, 1.0)
        self.warmup_frac = check_real(warmup_frac, "warmup_frac", 0.0, 1.0)
        if not isinstance(detach, bool):
            raise ValueError(f"detach: expected True or False, got {detach!r}")
        self.detach = detach

    weight = AuxConfidence.weight

    def _per_example(self, z, y, binary, progress):
        logp = F.log_softmax(z, dim=-1)
        p = logp.exp()
        w = self.weight(progress)
        target = (1.0 - w) * y + w * (p.detach() if self.detach else p)
        return forward_ce(logp, target)


class WindowLoss(Objective):
    """``window`` (EleutherAI ``w2s``): ``CE(y, p) * 1[max_k p_k < 1/2 + radius]``.

    Forward CE only on examples where the student is uncertain; the sum is divided by
    the full batch size (so the mean counts the others as zero). ``radius`` in
    ``[0, 1]``; ``radius > 1/2`` keeps every example.
    """

    name = "window"
    options = ("radius",)
    aliases = ()
    summary = "CE on examples where the student is uncertain (EleutherAI w2s)"
    example = "window"
    released = None

    def __init__(self, radius: float = 0.15, **kw):
        super().__init__(**kw)
        self.radius = check_real(radius, "radius", 0.0, 1.0)

    def _per_example(self, z, y, binary, progress):
        logp = F.log_softmax(z, dim=-1)
        uncertain = logp.detach().exp().max(dim=-1).values < 0.5 + self.radius
        ce = forward_ce(logp, y)
        return torch.where(uncertain, ce, torch.zeros_like(ce))
