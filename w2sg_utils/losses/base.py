"""Base of the training objectives: constants, the :class:`Objective` class and the
per-row cross-entropy pieces every objective is built from (claims C7-C9, Chapter 4).

See :mod:`w2sg_utils.losses` for the conventions (shapes, reductions, smoothing).
"""

from __future__ import annotations

import math

import torch

from .._common import check_real

DEFAULT_EPS = 1e-3
"""Default label smoothing of the reverse terms (see the module docstring)."""

NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
"""Regular expression of a number written in an objective's name (``CACE_0.1``, ``SL_a1_b1e-2``)."""


# ---------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------
def fmt_number(x: float) -> str:
    """Shortest round-tripping decimal for a float, without a trailing ``.0``."""
    s = repr(float(x))
    return s[:-2] if s.endswith(".0") else s


def smooth_labels(teacher_probs, eps: float, n_classes: int):
    """Smoothed label ``y_eps = y (1 - eps) + eps / K``, computed as ``y + eps (1/K - y)``.

    Works for numpy arrays and torch tensors. The second form maps an exactly uniform
    teacher to itself, so the reverse-CE gradient at a uniform teacher is exactly zero
    (claim C8).

    Statement: {prf:ref}`prop-ce-rce-gradients`.
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

    Statement: {ref}`sec-ch04-experiment`.
    """

    name: str = "abstract"
    #: keyword options accepted by :func:`get_objective` for this objective
    options: tuple[str, ...] = ()

    # -- the objective table (read by :mod:`.registry`; every registered class sets
    # -- its own ``summary``, ``example``, ``aliases`` and ``released``) ---------------
    #: other names accepted by :func:`get_objective` (lowercase)
    aliases: tuple[str, ...] = ()
    #: one line for ``OBJECTIVE_FAMILIES`` and the error messages
    summary: str = ""
    #: one valid name (``OBJECTIVE_NAMES``, ``w2sg objectives``, the sweeps' default)
    example: str = ""
    #: options the released reward loop sets besides ``eps = 0`` (``release_objective``);
    #: ``None``: not an objective of the release
    released: dict | None = None
    #: families only (parameters written in the name, e.g. ``CACE_<c>``): the family's
    #: lowercase key, its listed form, the parameters in the name, a case-insensitive
    #: regular expression of the name with one named group per parameter, the
    #: parameters' type, and the form of the name for error messages
    family: str = ""
    label: str = ""
    params: tuple[str, ...] = ()
    pattern: str = ""
    param_type: type = float
    hint: str = ""

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
        progress = check_real(progress, "progress", 0.0, 1.0)
        return self._per_example(z, y, binary, progress)

    def reset(self) -> None:
        """Forget any state (the rolling quantile buffer); stateless objectives ignore it."""

    def observe(self, student_logits, teacher_probs) -> None:
        """Add examples to the quantile buffer without computing a loss (no-op if stateless)."""

    def fit(self, teacher_probs) -> Objective:
        """See every training label once, before training; returns ``self``.

        The training loops call it with all the teacher labels they train on. Only
        ``Quan_CACE_k`` (``scope="train"``, the released threshold) uses it; for every
        other objective it is a no-op.
        """
        return self

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


def forward_ce(logp: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``CE(y, p) = -sum_k y_k log p_k`` per row."""
    return -(y * logp).sum(dim=-1)


def entropy_labels(y: torch.Tensor) -> torch.Tensor:
    """``H(y) = -sum_k y_k log y_k`` with ``0 log 0 = 0``."""
    return -torch.xlogy(y, y).sum(dim=-1)


def log_smoothed(y: torch.Tensor, eps: float, used: torch.Tensor | None, who: str):
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


def reverse_ce(p: torch.Tensor, log_ye: torch.Tensor) -> torch.Tensor:
    """``RCE(p, y_eps) = -sum_k p_k log y_eps,k`` per row."""
    return -(p * log_ye).sum(dim=-1)


def confidence(y: torch.Tensor, binary: bool) -> torch.Tensor:
    """Teacher confidence ``max_k y_k - 1/K`` (binary: ``|y - 1/2|``), in ``[0, 1 - 1/K]``."""
    if binary:
        return (y[:, 1] - 0.5).abs()
    return y.max(dim=-1).values - 1.0 / y.shape[-1]


class SmoothedLabels(Objective):
    """Base of the reverse objectives: the option ``eps`` smooths the teacher's label,
    ``y_eps = y (1 - eps) + eps / K``, with ``0 <= eps < 1``."""

    options = ("eps",)

    def __init__(self, eps: float = DEFAULT_EPS, **kw):
        super().__init__(**kw)
        self.eps = check_real(eps, "eps", 0.0, 1.0, max_open=True)


class QuantileBuffer:
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


def need_two(n: int, who: str, buffer_size: int) -> None:
    if n < 2:
        raise ValueError(
            f"{who}: the batch quantile needs at least 2 examples but the quantile sample "
            f"has {n} (buffer_size={buffer_size}); for gradient accumulation pass "
            "buffer_size=<optimiser batch size> to get_objective, or call .observe() first "
            "(group_size=1 reproduces the released minibatch of one)"
        )
