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
``Quan_CACE_k``    ``CACE_c`` with ``c`` the ``k``-th decile of ``conf(y)`` over
                   all training labels (``fit``; ``scope="batch"``: per batch)   C9
``SL_a<a>_b<b>``   ``a CE(y, p) + b RCE(p, y_eps)``                              C9
``aux``            ``CE((1 - w) y + w h, p)``, ``h`` the hardened student
                   (Burns et al. auxiliary confidence loss, see below)           C9
``logconf``        ``aux`` with the OpenAI code's schedule and tie rule          C9
``product``        ``CE(t, p)``, ``t proportional to y^alpha p^beta`` (detached) C9
``entropy``        ``CE((1 - w) y + w p, p)`` (EleutherAI; ``p`` detached by
                   default, see :class:`EntropyLoss`)                            C9
``window``         ``CE(y, p) * 1[max_k p_k < 1/2 + radius]`` (EleutherAI)       C9
=================  ============================================================  =======

Hardening (``aux``/``logconf``). Binary (and ``K = 2``): ``aux`` sets ``h = 1[s >= t]``
with ``t`` the quantile of the student's class-1 probabilities ``s`` at level
``1 - mean(y)``; ``logconf`` sets ``h_0 = 1[p_0 >= t_0]`` with ``t_0`` the quantile of the
class-0 probabilities ``p_0`` themselves at level ``mean(y)`` (as the OpenAI and EleutherAI
code). Both are taken over the *quantile sample*: the current batch or the rolling
buffer (at least two examples), or with ``group_size=g`` each run of ``g`` examples of
the call (``g = 1``, the released minibatch of one, hardens every label to 1).
``K > 2``: ``h = onehot(argmax_k p_k)`` (Burns et al. define the threshold for the
binary case only). The weight ``w`` ramps linearly from 0 to ``aux_coef`` over the first
``warmup_frac`` of training (``progress``).

Reductions are explicit: per-example losses are **summed over classes** (never averaged
over the ``K`` coordinates, which would silently halve the binary loss; ``kl`` and
``reverse_kl`` take ``class_mean=True`` to do exactly that, as the released code's
``F.kl_div(..., reduction="mean")`` does) and then averaged over the batch (``reduction="mean"``, the default), summed (``"sum"``) or returned as a
``(B,)`` tensor (``"none"``). Teacher probabilities are labels: they are detached.

Label smoothing. ``eps`` (default :data:`DEFAULT_EPS` ``= 1e-3``) enters only the reverse
terms (``reverse_bce``, ``reverse_kl``, the reverse parts of ``CACE``, ``Quan_CACE`` and
``SL``), where the released code smooths too, ``y (1 - eps) + eps / 2``, but with
``eps = 0`` by default (its soft teacher labels keep the reverse terms finite). With ``eps = 1e-3`` a hard label gives a
finite reverse-CE gradient, at most ``max_z s (1 - s) logit(1 - eps/2) ~ 0.25 * 7.6`` in
the binary case, and a soft label ``y`` in ``[0.01, 0.99]`` moves by less than ``5e-4``.
``eps = 0`` is accepted, but a call in which a reverse term meets a label equal to 0
(or 1) raises ``ValueError`` (its value and gradient would be infinite).

Batch quantiles and gradient accumulation. ``aux`` and ``logconf`` (and ``Quan_CACE``
with ``scope="batch"``) need a quantile over a batch. The released code computes the
``aux`` quantile over each minibatch of its loop, one pair in its command, where it is
meaningless (every hard label is 1); ``group_size=1`` reproduces that. By default the
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
during the first microbatches. ``Quan_CACE`` with ``scope="batch"`` needs one from the
first call: pre-fill its buffer with ``obj.observe(None, teacher_probs_of_first_batch)``.

The released threshold of ``Quan_CACE_k`` (the default, ``scope="train"``) is fixed once
from every training label: ``obj.fit(all_teacher_probs)`` before training (the package's
training loops call ``fit`` for every objective; it is a no-op for the others).

The released protocol. :func:`release_objective` builds an objective exactly as the
authors' released reward loop computes it (``eps = 0``, ``class_mean=True`` for the
KLs, the global ``Quan_CACE`` threshold, ``aux`` over minibatches of one); each is
compared with the released formula, written out, in ``tests/test_release_protocol.py``.
"""

from __future__ import annotations

from .auxiliary import AuxConfidence, EntropyLoss, LogConf, ProductLoss, WindowLoss
from .base import DEFAULT_EPS, Objective, smooth_labels
from .gradients import forward_ce_grad, kl_grad, reverse_ce_grad, reverse_kl_grad
from .objectives import CACE, ForwardCE, ForwardKL, QuanCACE, ReverseCE, ReverseKL, SymmetricLoss
from .registry import (
    OBJECTIVE_FAMILIES,
    OBJECTIVE_NAMES,
    OBJECTIVES,
    RELEASED_OBJECTIVES,
    get_objective,
    release_objective,
)

__all__ = [
    "DEFAULT_EPS",
    "OBJECTIVE_NAMES",
    "OBJECTIVE_FAMILIES",
    "OBJECTIVES",
    "Objective",
    "get_objective",
    "release_objective",
    "RELEASED_OBJECTIVES",
    "smooth_labels",
    "forward_ce_grad",
    "reverse_ce_grad",
    "kl_grad",
    "reverse_kl_grad",
    "ForwardCE",
    "ReverseCE",
    "ForwardKL",
    "ReverseKL",
    "CACE",
    "QuanCACE",
    "SymmetricLoss",
    "AuxConfidence",
    "LogConf",
    "ProductLoss",
    "EntropyLoss",
    "WindowLoss",
]
