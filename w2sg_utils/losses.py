"""Training objectives for a student trained on soft teacher labels (claims C7-C9, Chapter 4).

One registry, :func:`get_objective`, builds every objective of the authors' released code
and the common weak-to-strong objectives of Burns et al. (OpenAI code) and EleutherAI's
``w2s`` repository, each defined by the explicit formula below.

Conventions
-----------
A *student* is given by logits ``z`` and a *teacher* by probabilities ``y``:

* binary: ``z`` has shape ``(B,)`` (the logit of class 1) and ``y`` shape ``(B,)`` in
  ``[0, 1]`` (the teacher's probability of class 1);
* multi-class: ``z`` has shape ``(B, K)`` and ``y`` shape ``(B, K)``, rows on the simplex.

A binary problem is *the same* as the two-class problem with logits ``(0, z)`` and labels
``(1 - y, y)``: every objective below gives identical values and gradients (tested).
Write ``p = softmax(z)`` (binary: ``s = sigmoid(z)``), ``K`` the number of classes
(``K = 2`` for binary) and the **smoothed label**

    y_eps = y (1 - eps) + eps / K        (binary: y (1 - eps) + eps / 2),

computed as ``y + eps (1/K - y)`` so that an exactly uniform teacher stays exactly
uniform. Per-example losses (``CE(y, p) = -sum_k y_k log p_k``, ``H(p) = -sum_k p_k log p_k``):

=================  ============================================================  =======
name               per-example loss                                              claim
=================  ============================================================  =======
``bce``            forward CE ``CE(y, p) = H(y) + KL(y || p)``                   C7
``reverse_bce``    reverse CE ``RCE(p, y_eps) = -sum_k p_k log y_eps,k``
                   ``= KL(p || y_eps) + H(p)``                                   C7, C8
``kl``             ``KL(y || p) = CE(y, p) - H(y)``                              C7
``reverse_kl``     ``KL(p || y_eps) = RCE(p, y_eps) - H(p)``                     C7
``CACE_c``         ``CE(y, p)`` if ``conf(y) >= c`` else ``RCE(p, y_eps)``;
                   ``conf(y) = max_k y_k - 1/K`` (binary ``|y - 1/2|``)           C9
``Quan_CACE_k``    ``CACE_c`` with ``c`` the ``k/10`` quantile of ``conf(y)``
                   over the batch (or the rolling buffer)                        C9
``SL_a<a>_b<b>``   ``a CE(y, p) + b RCE(p, y_eps)``                              C9
``aux``            ``CE((1 - w) y + w h, p)``, ``h`` the hardened student
                   (Burns et al. auxiliary confidence loss, see below)           C9
``logconf``        ``aux`` with the OpenAI code's schedule and tie rule          C9
``product``        ``CE(t, p)``, ``t proportional to y^alpha p^beta`` (detached) C9
``entropy``        ``CE((1 - w) y + w p, p)`` (EleutherAI; ``p`` detached by
                   default, see :class:`EntropyLoss`)                            C9
``window``         ``CE(y, p) * 1[max_k p_k < 1/2 + radius]`` (EleutherAI)       C9
=================  ============================================================  =======

Hardening (``aux``/``logconf``). Binary (and ``K = 2``): ``h = 1[s >= t]`` with ``t`` the
quantile of the student's class-1 probabilities ``s`` at level ``1 - mean(y)``, both taken
over the *quantile sample* (the current batch, or the rolling buffer; never a batch of
one). ``K > 2``: ``h = onehot(argmax_k p_k)`` (Burns et al. define the threshold for the
binary case only). The weight ``w`` ramps linearly from 0 to ``aux_coef`` over the first
``warmup_frac`` of training (``progress``).

Reductions are explicit: per-example losses are **summed over classes** (never averaged
over the ``K`` coordinates, which would silently halve the binary loss) and then averaged
over the batch (``reduction="mean"``, the default), summed (``"sum"``) or returned as a
``(B,)`` tensor (``"none"``). Teacher probabilities are labels: they are detached.

Label smoothing. ``eps`` (default :data:`DEFAULT_EPS` ``= 1e-3``) enters only the reverse
terms (``reverse_bce``, ``reverse_kl``, the reverse parts of ``CACE``, ``Quan_CACE`` and
``SL``), exactly as in the released code. With ``eps = 1e-3`` a hard label gives a
finite reverse-CE gradient, at most ``max_z s (1 - s) logit(1 - eps/2) ~ 0.25 * 7.6`` in
the binary case, and a soft label ``y`` in ``[0.01, 0.99]`` moves by less than ``5e-4``.
``eps = 0`` is accepted, but a call in which a reverse term meets a label equal to 0
(or 1) raises ``ValueError`` (its value and gradient would be infinite).

Batch quantiles and gradient accumulation. ``aux``, ``logconf`` and ``Quan_CACE`` need a
quantile over a batch. The released code computed it over a minibatch of one, which makes
the hardened target (``aux``) or the threshold (``Quan_CACE``) meaningless. Here the
quantile sample is the current call's batch when ``buffer_size=0`` (the default; at least
two examples are required), or, with ``buffer_size=n > 0``, the last ``n`` examples seen
(the current batch plus earlier ones, kept detached inside the object). For gradient
accumulation with an optimiser batch of ``n`` examples split into microbatches, use
``buffer_size=n``: each microbatch's threshold is then computed from the latest ``n``
examples (the earlier microbatches' student probabilities are at most one optimiser step
old). ``observe(student_logits, teacher_probs)`` adds examples to the buffer without a
loss (e.g. to pre-fill it at the start of training) and ``reset()`` empties it. Each call
to :func:`get_objective` returns a fresh object with an empty buffer. Example, an
optimiser batch of 32 in microbatches of one::

    obj = get_objective("aux", buffer_size=32)        # or "Quan_CACE_5", buffer_size=32
    for step, batch in enumerate(batches):
        for z_i, y_i in microbatches(batch):           # z_i: (1,) logits, y_i: (1,) probs
            (obj(z_i, y_i, progress=step / n_steps) / 32).backward()
        optimiser.step(); optimiser.zero_grad()

``aux`` needs no quantile while its weight is 0 (``progress = 0``), so its buffer fills
during the first microbatches. ``Quan_CACE`` needs one from the first call: pre-fill its
buffer with ``obj.observe(None, teacher_probs_of_first_batch)`` (or pass
``buffer_size=len(train)`` and observe all teacher labels once, for a global decile).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import expit, log_softmax, softmax

__all__ = [
    "DEFAULT_EPS",
    "OBJECTIVE_NAMES",
    "OBJECTIVE_FAMILIES",
    "Objective",
    "get_objective",
    "smooth_labels",
    "forward_ce_grad",
    "reverse_ce_grad",
    "kl_grad",
    "reverse_kl_grad",
]

DEFAULT_EPS = 1e-3
"""Default label smoothing of the reverse terms (see the module docstring)."""

OBJECTIVE_NAMES = [
    "bce",
    "reverse_bce",
    "kl",
    "reverse_kl",
    "CACE_0.1",
    "Quan_CACE_5",
    "SL_a1_b0.1",
    "aux",
    "logconf",
    "product",
    "entropy",
    "window",
]
"""One example name per objective (families take their parameter in the name)."""

OBJECTIVE_FAMILIES = {
    "bce": "forward cross-entropy CE(y, p) (aliases: ce, xent, forward_ce)",
    "reverse_bce": "reverse cross-entropy RCE(p, y_eps) (aliases: rce, reverse_ce)",
    "kl": "forward KL(y || p)",
    "reverse_kl": "reverse KL(p || y_eps)",
    "CACE_<c>": "CE where conf(y) >= c, RCE elsewhere; c in [0, 1], e.g. CACE_0.1",
    "Quan_CACE_<k>": "CACE with c the k-th decile of conf(y); integer k in 0..10, e.g. Quan_CACE_5",
    "SL_a<alpha>_b<beta>": "alpha CE + beta RCE; alpha, beta >= 0, e.g. SL_a1_b0.1",
    "aux": "Burns et al. auxiliary confidence loss (batch-quantile hardening)",
    "logconf": "aux as in the OpenAI weak-to-strong code",
    "product": "CE to the normalised product y^alpha p^beta (OpenAI code)",
    "entropy": "CE to (1 - w) y + w p (EleutherAI w2s)",
    "window": "CE on examples where the student is uncertain (EleutherAI w2s)",
}

_ALIASES = {
    "bce": "bce",
    "ce": "bce",
    "xent": "bce",
    "forward_ce": "bce",
    "reverse_bce": "reverse_bce",
    "rce": "reverse_bce",
    "reverse_ce": "reverse_bce",
    "kl": "kl",
    "reverse_kl": "reverse_kl",
    "aux": "aux",
    "logconf": "logconf",
    "product": "product",
    "entropy": "entropy",
    "window": "window",
}

_NUM = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_RE_CACE = re.compile(rf"^cace_(?P<c>{_NUM})$", re.IGNORECASE)
_RE_QUAN = re.compile(r"^quan_cace_(?P<k>\d+)$", re.IGNORECASE)
_RE_SL = re.compile(rf"^sl_a(?P<a>{_NUM})_b(?P<b>{_NUM})$", re.IGNORECASE)


# ---------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------
def _fmt(x: float) -> str:
    """Shortest round-tripping decimal for a float, without a trailing ``.0``."""
    s = repr(float(x))
    return s[:-2] if s.endswith(".0") else s


def _check_real(value, name: str, lo: float | None = None, hi: float | None = None,
                lo_open: bool = False, hi_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name}: expected a real number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name}: must be finite, got {value!r}")
    if lo is not None and (v < lo or (lo_open and v == lo)):
        raise ValueError(f"{name}: must be {'>' if lo_open else '>='} {lo}, got {value!r}")
    if hi is not None and (v > hi or (hi_open and v == hi)):
        raise ValueError(f"{name}: must be {'<' if hi_open else '<='} {hi}, got {value!r}")
    return v


def _check_int(value, name: str, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name}: expected an integer, got {value!r}")
    v = int(value)
    if v < lo or (hi is not None and v > hi):
        rng = f"in {lo}..{hi}" if hi is not None else f">= {lo}"
        raise ValueError(f"{name}: must be an integer {rng}, got {value!r}")
    return v


def smooth_labels(teacher_probs, eps: float, n_classes: int):
    """Smoothed label ``y_eps = y (1 - eps) + eps / K``, computed as ``y + eps (1/K - y)``.

    Works for numpy arrays and torch tensors. The second form maps an exactly uniform
    teacher to itself, so the reverse-CE gradient at a uniform teacher is exactly zero
    (claim C8).
    """
    return teacher_probs + eps * (1.0 / n_classes - teacher_probs)


def _as_pair(z: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Binary ``(B,)`` logits/labels to two-class ``(B, 2)`` ones: ``(0, z)``, ``(1-y, y)``."""
    return torch.stack([torch.zeros_like(z), z], dim=-1), torch.stack([1.0 - y, y], dim=-1)


# ---------------------------------------------------------------------------------------
# Objectives
# ---------------------------------------------------------------------------------------
class Objective:
    """A training objective ``obj(student_logits, teacher_probs, progress=0.0)`` (C7-C9).

    Returns a scalar tensor (``reduction="mean"``: mean over the batch of the per-example
    loss, which is summed over classes). Subclasses implement :meth:`_per_example` on
    two-class / multi-class tensors: ``z`` ``(B, K)`` logits, ``y`` ``(B, K)`` labels,
    ``binary`` tells whether the caller passed the ``(B,)`` binary form.
    """

    name: str = "abstract"
    #: keyword options accepted by :func:`get_objective` for this objective
    options: tuple[str, ...] = ()

    def __init__(self, reduction: str = "mean", validate: bool = True):
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction: must be 'mean', 'sum' or 'none', got {reduction!r}")
        self.reduction = reduction
        self.validate = bool(validate)

    def __repr__(self) -> str:
        return f"<Objective {self.name}>"

    # -- public ------------------------------------------------------------------------
    def __call__(self, student_logits, teacher_probs, progress: float = 0.0) -> torch.Tensor:
        per = self.per_example(student_logits, teacher_probs, progress)
        if self.reduction == "mean":
            return per.mean()
        if self.reduction == "sum":
            return per.sum()
        return per

    def per_example(self, student_logits, teacher_probs, progress: float = 0.0) -> torch.Tensor:
        """The ``(B,)`` per-example losses (batch-dependent for the quantile objectives)."""
        z, y, binary = self._prepare(student_logits, teacher_probs)
        progress = _check_real(progress, "progress", 0.0, 1.0)
        return self._per_example(z, y, binary, progress)

    def reset(self) -> None:
        """Forget any state (the rolling quantile buffer); stateless objectives ignore it."""

    def observe(self, student_logits, teacher_probs) -> None:
        """Add examples to the quantile buffer without computing a loss (no-op if stateless)."""

    # -- internals ---------------------------------------------------------------------
    def _prepare(self, student_logits, teacher_probs):
        z = torch.as_tensor(student_logits)
        if not torch.is_floating_point(z):
            raise ValueError(f"student_logits: expected a floating tensor, got dtype {z.dtype}")
        if z.dtype in (torch.float16, torch.bfloat16):
            z = z.float()
        y = torch.as_tensor(teacher_probs).detach().to(dtype=z.dtype, device=z.device)
        if z.ndim not in (1, 2):
            raise ValueError(
                f"student_logits: expected shape (B,) (binary) or (B, K) (multi-class), "
                f"got {tuple(z.shape)}"
            )
        if y.shape != z.shape:
            raise ValueError(
                f"teacher_probs: shape {tuple(y.shape)} differs from student_logits "
                f"{tuple(z.shape)}; pass the teacher's probability of class 1 (binary) or "
                "its full probability vectors (multi-class)"
            )
        if z.shape[0] == 0:
            raise ValueError("student_logits: empty batch")
        if z.ndim == 2 and z.shape[1] < 2:
            raise ValueError(f"student_logits: need K >= 2 classes, got {z.shape[1]}")
        if self.validate:
            if not bool(torch.isfinite(z).all()):
                raise ValueError("student_logits: contains NaN or infinite values")
            if not bool(torch.isfinite(y).all()):
                raise ValueError("teacher_probs: contains NaN or infinite values")
            if bool((y < 0).any()) or bool((y > 1).any()):
                raise ValueError("teacher_probs: probabilities must lie in [0, 1]")
            if y.ndim == 2:
                tol = math.sqrt(torch.finfo(y.dtype).eps) * y.shape[1]
                dev = float((y.sum(dim=1) - 1.0).abs().max())
                if dev > tol:
                    raise ValueError(
                        f"teacher_probs: rows must sum to 1 (max |sum - 1| = {dev:.3g})"
                    )
        binary = z.ndim == 1
        if binary:
            z, y = _as_pair(z, y)
        return z, y, binary

    def _per_example(self, z, y, binary, progress):  # pragma: no cover - abstract
        raise NotImplementedError


def _forward_ce(logp: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``CE(y, p) = -sum_k y_k log p_k`` per row."""
    return -(y * logp).sum(dim=-1)


def _entropy_labels(y: torch.Tensor) -> torch.Tensor:
    """``H(y) = -sum_k y_k log y_k`` with ``0 log 0 = 0``."""
    return -torch.xlogy(y, y).sum(dim=-1)


def _log_smoothed(y: torch.Tensor, eps: float, used: torch.Tensor | None, who: str):
    """``log y_eps`` for the rows in ``used`` (all rows if ``None``); raises for ``log 0``.

    Rows not used get ``log y_eps`` replaced by 0 where ``y_eps = 0`` so that no ``inf``
    reaches a discarded branch of ``torch.where`` (whose gradient would become NaN).
    """
    ye = smooth_labels(y, eps, y.shape[-1])
    zero = ye <= 0
    if bool(zero.any()):
        bad = zero if used is None else zero & used[:, None]
        if bool(bad.any()):
            raise ValueError(
                f"teacher_probs: {who} with eps=0 meets a label equal to 0 or 1, where the "
                "reverse cross-entropy and its gradient are infinite; use eps > 0 "
                f"(default {DEFAULT_EPS}) or labels strictly inside (0, 1)"
            )
        ye = torch.where(zero, torch.ones_like(ye), ye)
    return torch.log(ye)


def _reverse_ce(p: torch.Tensor, log_ye: torch.Tensor) -> torch.Tensor:
    """``RCE(p, y_eps) = -sum_k p_k log y_eps,k`` per row."""
    return -(p * log_ye).sum(dim=-1)


def _confidence(y: torch.Tensor, binary: bool) -> torch.Tensor:
    """Teacher confidence ``max_k y_k - 1/K`` (binary: ``|y - 1/2|``), in ``[0, 1 - 1/K]``."""
    if binary:
        return (y[:, 1] - 0.5).abs()
    return y.max(dim=-1).values - 1.0 / y.shape[-1]


class _SmoothedLabels(Objective):
    """Base of the reverse objectives: the option ``eps`` smooths the teacher's label,
    ``y_eps = y (1 - eps) + eps / K``, with ``0 <= eps < 1``."""

    options = ("eps",)

    def __init__(self, eps: float = DEFAULT_EPS, **kw):
        super().__init__(**kw)
        self.eps = _check_real(eps, "eps", 0.0, 1.0, hi_open=True)


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
        self.c = _check_real(c, "c", 0.0, 1.0)
        self.eps = _check_real(eps, "eps", 0.0, 1.0, hi_open=True)
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


class _QuantileBuffer:
    """Rolling, detached buffer of per-example values for batch quantiles."""

    def __init__(self, size: int):
        self.size = size
        self.data: dict[str, torch.Tensor] = {}

    def sample(self, **current: torch.Tensor) -> dict[str, torch.Tensor]:
        """Buffer contents followed by ``current`` (never dropping current examples)."""
        out = {}
        for k, v in current.items():
            v = v.detach()
            if self.size == 0:
                out[k] = v
                continue
            old = self.data.get(k)
            both = v if old is None else torch.cat([old.to(v), v])
            out[k] = both[-max(self.size, v.shape[0]):]
        return out

    def push(self, **current: torch.Tensor) -> None:
        if self.size == 0:
            return
        for k, v in current.items():
            v = v.detach()
            old = self.data.get(k)
            both = v if old is None else torch.cat([old.to(v), v])
            self.data[k] = both[-self.size:]

    def reset(self) -> None:
        self.data = {}


def _need_two(n: int, who: str, buffer_size: int) -> None:
    if n < 2:
        raise ValueError(
            f"{who}: the batch quantile needs at least 2 examples but the quantile sample "
            f"has {n} (buffer_size={buffer_size}); for gradient accumulation pass "
            "buffer_size=<optimiser batch size> to get_objective, or call .observe() first"
        )


class QuanCACE(CACE):
    """``Quan_CACE_k``: ``CACE_c`` with ``c`` the ``k/10`` quantile of ``conf(y)`` (C9).

    The quantile (``torch.quantile``, linear interpolation) is over the quantile sample:
    the current batch (``buffer_size=0``, at least 2 examples) or the rolling buffer of
    the last ``buffer_size`` teacher confidences. ``k = 0`` is forward CE.
    """

    options = ("eps", "buffer_size")

    def __init__(self, k: int, eps: float = DEFAULT_EPS, buffer_size: int = 0, **kw):
        super().__init__(c=0.0, eps=eps, **kw)
        self.k = _check_int(k, "k", 0, 10)
        self.buffer_size = _check_int(buffer_size, "buffer_size", 0)
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
        self.alpha = _check_real(alpha, "alpha", 0.0)
        self.beta = _check_real(beta, "beta", 0.0)
        if self.alpha == 0 and self.beta == 0:
            raise ValueError("alpha, beta: at least one of the two weights must be positive")
        self.eps = _check_real(eps, "eps", 0.0, 1.0, hi_open=True)
        self.name = f"SL_a{_fmt(self.alpha)}_b{_fmt(self.beta)}"

    def _per_example(self, z, y, binary, progress):
        logp = F.log_softmax(z, dim=-1)
        out = self.alpha * _forward_ce(logp, y)
        if self.beta > 0:
            out = out + self.beta * _reverse_ce(
                logp.exp(), _log_smoothed(y, self.eps, None, self.name)
            )
        return out


class AuxConfidence(Objective):
    """Auxiliary confidence loss of Burns et al. (``aux``; claim C9).

    ``CE((1 - w) y + w h, p)`` with ``w = aux_coef * min(1, progress / warmup_frac)``
    (``w = aux_coef`` if ``warmup_frac = 0``) and the hardened student ``h``: binary
    ``h = 1[s >= t]``, ``t`` the quantile of ``s`` at level ``1 - mean(y)`` over the
    quantile sample (current batch with ``buffer_size=0``, else the rolling buffer of
    the last ``buffer_size`` examples); ``K > 2``: ``h = onehot(argmax p)``. When
    ``w = 0`` no quantile is needed and the loss is forward CE.
    """

    name = "aux"
    options = ("aux_coef", "warmup_frac", "buffer_size")
    _default_warmup = 0.2

    def __init__(self, aux_coef: float = 0.5, warmup_frac: float | None = None,
                 buffer_size: int = 0, **kw):
        super().__init__(**kw)
        self.aux_coef = _check_real(aux_coef, "aux_coef", 0.0, 1.0)
        wf = self._default_warmup if warmup_frac is None else warmup_frac
        self.warmup_frac = _check_real(wf, "warmup_frac", 0.0, 1.0)
        self.buffer_size = _check_int(buffer_size, "buffer_size", 0)
        self._buffer = _QuantileBuffer(self.buffer_size)
        self.last_threshold: float | None = None

    def weight(self, progress: float) -> float:
        """The auxiliary weight ``w`` at training progress ``progress`` in ``[0, 1]``."""
        progress = _check_real(progress, "progress", 0.0, 1.0)
        if self.warmup_frac == 0:
            return self.aux_coef
        return self.aux_coef * min(1.0, progress / self.warmup_frac)

    def reset(self) -> None:
        self._buffer.reset()

    def observe(self, student_logits, teacher_probs) -> None:
        z, y, _ = self._prepare(student_logits, teacher_probs)
        if z.shape[-1] == 2:
            self._buffer.push(s=torch.softmax(z, dim=-1)[:, 1], y=y[:, 1])

    def _harden(self, p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if p.shape[-1] > 2:
            return F.one_hot(p.argmax(dim=-1), p.shape[-1]).to(p)
        s, y1 = p[:, 1].detach(), y[:, 1]
        sample = self._buffer.sample(s=s, y=y1)
        _need_two(sample["s"].shape[0], self.name, self.buffer_size)
        level = (1.0 - sample["y"].mean()).clamp(0.0, 1.0)
        thr = torch.quantile(sample["s"], level)
        self._buffer.push(s=s, y=y1)
        self.last_threshold = float(thr)
        h1 = (s >= thr).to(p)
        return torch.stack([1.0 - h1, h1], dim=-1)

    def _per_example(self, z, y, binary, progress):
        logp = F.log_softmax(z, dim=-1)
        w = self.weight(progress)
        if w == 0:
            if logp.shape[-1] == 2:  # keep the buffer current even while w = 0
                self._buffer.push(s=logp.exp()[:, 1], y=y[:, 1])
            return _forward_ce(logp, y)
        h = self._harden(logp.exp().detach(), y)
        return _forward_ce(logp, (1.0 - w) * y + w * h)


class LogConf(AuxConfidence):
    """``logconf``: the auxiliary confidence loss as in the OpenAI weak-to-strong code (C9).

    Differs from :class:`AuxConfidence` in two details of that code: the weight is
    ``w = aux_coef * (progress if progress <= warmup_frac else 1)`` (a ramp to
    ``aux_coef * warmup_frac`` that then jumps to ``aux_coef``; default ``warmup_frac``
    0.1), and the hardening thresholds the class-0 probability: ``h_0 = 1[p_0 >= t_0]``,
    ``t_0`` the quantile of ``p_0`` at level ``mean(y)`` (ties go to class 0).
    """

    name = "logconf"
    _default_warmup = 0.1

    def weight(self, progress: float) -> float:
        progress = _check_real(progress, "progress", 0.0, 1.0)
        return self.aux_coef * (1.0 if progress > self.warmup_frac else progress)

    def _harden(self, p, y):
        if p.shape[-1] > 2:
            return F.one_hot(p.argmax(dim=-1), p.shape[-1]).to(p)
        s, y1 = p[:, 1].detach(), y[:, 1]
        sample = self._buffer.sample(s=s, y=y1)
        _need_two(sample["s"].shape[0], self.name, self.buffer_size)
        thr0 = torch.quantile(1.0 - sample["s"], sample["y"].mean().clamp(0.0, 1.0))
        self._buffer.push(s=s, y=y1)
        self.last_threshold = float(1.0 - thr0)
        h0 = (p[:, 0] >= thr0).to(p)
        return torch.stack([h0, 1.0 - h0], dim=-1)


class ProductLoss(Objective):
    """``product`` (OpenAI code): ``CE(t, p)`` with ``t_k = y_k^alpha p_k^beta / sum_j (...)``.

    ``t`` is detached (a fixed target each step); ``alpha`` weighs the teacher, ``beta``
    the student. Computed in log space (``0^0 = 1``), so hard labels and saturated logits
    stay finite.
    """

    name = "product"
    options = ("alpha", "beta")

    def __init__(self, alpha: float = 1.0, beta: float = 1.0, **kw):
        super().__init__(**kw)
        self.alpha = _check_real(alpha, "alpha", 0.0)
        self.beta = _check_real(beta, "beta", 0.0)

    def _per_example(self, z, y, binary, progress):
        logp = F.log_softmax(z, dim=-1)
        a = torch.as_tensor(self.alpha, dtype=y.dtype, device=y.device)
        logt = torch.xlogy(a, y) + self.beta * logp.detach()
        if self.alpha > 0:
            logt = torch.where(y > 0, logt, torch.full_like(logt, -math.inf))
        t = torch.softmax(logt, dim=-1)
        return _forward_ce(logp, t)


class EntropyLoss(Objective):
    """``entropy`` (EleutherAI ``w2s``): ``CE((1 - w) y + w p', p)``, ``w`` ramped like ``aux``.

    With ``detach=True`` (as in that code) ``p' = stopgrad(p)``: the value is
    ``(1 - w) CE(y, p) + w H(p)`` but the gradient is ``(1 - w) (p - y)``, i.e. forward CE
    rescaled; no entropy is minimised. With ``detach=False``, ``p' = p`` and the loss
    ``(1 - w) CE(y, p) + w H(p)`` is a true entropy penalty (claim C7's direction).
    Default ``warmup_frac`` 0.1.
    """

    name = "entropy"
    options = ("aux_coef", "warmup_frac", "detach")

    def __init__(self, aux_coef: float = 0.5, warmup_frac: float = 0.1, detach: bool = True,
                 **kw):
        super().__init__(**kw)
        self.aux_coef = _check_real(aux_coef, "aux_coef", 0.0, 1.0)
        self.warmup_frac = _check_real(warmup_frac, "warmup_frac", 0.0, 1.0)
        if not isinstance(detach, bool):
            raise ValueError(f"detach: expected True or False, got {detach!r}")
        self.detach = detach

    weight = AuxConfidence.weight

    def _per_example(self, z, y, binary, progress):
        logp = F.log_softmax(z, dim=-1)
        p = logp.exp()
        w = self.weight(progress)
        target = (1.0 - w) * y + w * (p.detach() if self.detach else p)
        return _forward_ce(logp, target)


class WindowLoss(Objective):
    """``window`` (EleutherAI ``w2s``): ``CE(y, p) * 1[max_k p_k < 1/2 + radius]``.

    Forward CE only on examples where the student is uncertain; the sum is divided by
    the full batch size (so the mean counts the others as zero). ``radius`` in
    ``[0, 1]``; ``radius > 1/2`` keeps every example.
    """

    name = "window"
    options = ("radius",)

    def __init__(self, radius: float = 0.15, **kw):
        super().__init__(**kw)
        self.radius = _check_real(radius, "radius", 0.0, 1.0)

    def _per_example(self, z, y, binary, progress):
        logp = F.log_softmax(z, dim=-1)
        uncertain = logp.detach().exp().max(dim=-1).values < 0.5 + self.radius
        ce = _forward_ce(logp, y)
        return torch.where(uncertain, ce, torch.zeros_like(ce))


_SIMPLE: dict[str, Callable[..., Objective]] = {
    "bce": ForwardCE,
    "reverse_bce": ReverseCE,
    "kl": ForwardKL,
    "reverse_kl": ReverseKL,
    "aux": AuxConfidence,
    "logconf": LogConf,
    "product": ProductLoss,
    "entropy": EntropyLoss,
    "window": WindowLoss,
}


def _allowed(cls) -> tuple[str, ...]:
    return tuple(cls.options) + ("reduction", "validate")


def _check_options(cls, options: dict, name: str) -> None:
    bad = sorted(set(options) - set(_allowed(cls)))
    if bad:
        raise ValueError(
            f"options: {bad} not accepted by objective {name!r}; valid options are "
            f"{sorted(_allowed(cls))}"
        )


def _unknown(name) -> ValueError:
    listing = "; ".join(f"{k}: {v}" for k, v in OBJECTIVE_FAMILIES.items())
    return ValueError(f"name: unknown objective {name!r}. Valid names: {listing}")


def get_objective(name: str, **options) -> Objective:
    """Build a fresh objective from its name (claims C7-C9; see the module docstring).

    ``name`` is one of ``bce`` (``ce``, ``xent``, ``forward_ce``), ``reverse_bce``
    (``rce``, ``reverse_ce``), ``kl``, ``reverse_kl``, ``CACE_<c>``, ``Quan_CACE_<k>``,
    ``SL_a<alpha>_b<beta>``, ``aux``, ``logconf``, ``product``, ``entropy``, ``window``
    (case-insensitive); the family names ``CACE``, ``Quan_CACE`` and ``SL`` may instead
    take ``c``, ``k`` or ``alpha``/``beta`` as options. Options: ``eps`` (reverse terms),
    ``buffer_size`` (quantile objectives), ``aux_coef``/``warmup_frac`` (``aux``,
    ``logconf``, ``entropy``), ``detach`` (``entropy``), ``alpha``/``beta``
    (``product``), ``radius`` (``window``), and for all ``reduction`` (``"mean"``,
    ``"sum"``, ``"none"``) and ``validate`` (input checks, default True).
    Unknown or malformed names and out-of-range values raise ``ValueError``.
    The returned object's ``name`` is canonical (e.g. ``"CACE_0.1"``).
    """
    if not isinstance(name, str):
        raise ValueError(f"name: expected a string, got {type(name).__name__} {name!r}")
    key = name.strip()
    low = key.lower()
    if low in _ALIASES:
        cls = _SIMPLE[_ALIASES[low]]
        _check_options(cls, options, key)
        return cls(**options)
    # families, with the parameter in the name or as an option
    families = {"cace": (("c",), "CACE_<c> with c a number in [0, 1], e.g. CACE_0.1"),
                "quan_cace": (("k",), "Quan_CACE_<k> with k an integer in 0..10, e.g. Quan_CACE_5"),
                "sl": (("alpha", "beta"), "SL_a<alpha>_b<beta> with alpha, beta >= 0, e.g. SL_a1_b0.1")}
    if low in families:
        params, pattern = families[low]
        missing = [p for p in params if p not in options]
        if missing:
            raise ValueError(
                f"name: objective family {key!r} needs {missing} as options, or use the "
                f"form {pattern}"
            )
        given = {p: options.pop(p) for p in params}
    elif m := _RE_CACE.match(key):
        low, given = "cace", {"c": float(m["c"])}
    elif m := _RE_QUAN.match(key):
        low, given = "quan_cace", {"k": int(m["k"])}
    elif m := _RE_SL.match(key):
        low, given = "sl", {"alpha": float(m["a"]), "beta": float(m["b"])}
    else:
        for prefix, (_, pattern) in families.items():
            if low.startswith(prefix + "_"):
                raise ValueError(f"name: malformed objective name {name!r}; expected {pattern}")
        raise _unknown(name)
    cls = {"cace": CACE, "quan_cace": QuanCACE, "sl": SymmetricLoss}[low]
    dup = sorted(set(given) & set(options))
    if dup:
        raise ValueError(f"options: {dup} given both in the name {name!r} and as options")
    _check_options(cls, options, key)
    return cls(**given, **options)


# ---------------------------------------------------------------------------------------
# Closed-form gradients with respect to the student's logits (claim C8), numpy float64
# ---------------------------------------------------------------------------------------
def _np_inputs(student_logits, teacher_probs):
    z = np.asarray(student_logits, dtype=np.float64)
    y = np.asarray(teacher_probs, dtype=np.float64)
    if z.shape != y.shape or z.ndim not in (1, 2):
        raise ValueError(
            f"teacher_probs: shape {y.shape} must equal student_logits' {z.shape}, "
            "(B,) binary or (B, K) multi-class"
        )
    return z, y


def forward_ce_grad(student_logits, teacher_probs) -> np.ndarray:
    """Gradient of the per-example forward CE w.r.t. the logits: ``p - y`` (claim C8).

    Binary: ``s - y`` with ``s = sigmoid(z)``. Same shape as ``student_logits``.
    The same is the gradient of the forward KL (``H(y)`` does not depend on ``z``).
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
    """
    eps = _check_real(eps, "eps", 0.0, 1.0, hi_open=True)
    z, y = _np_inputs(student_logits, teacher_probs)
    k = 2 if z.ndim == 1 else z.shape[-1]
    ye = smooth_labels(y, eps, k)
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
    """
    eps = _check_real(eps, "eps", 0.0, 1.0, hi_open=True)
    z, y = _np_inputs(student_logits, teacher_probs)
    k = 2 if z.ndim == 1 else z.shape[-1]
    ye = smooth_labels(y, eps, k)
    with np.errstate(divide="ignore"):
        if z.ndim == 1:
            s = expit(z)
            return s * (1.0 - s) * (z - (np.log(ye) - np.log1p(-ye)))
        logp = log_softmax(z, axis=-1)
        A = logp - np.log(ye)
    p = np.exp(logp)
    return p * (A - np.sum(p * A, axis=-1, keepdims=True))
