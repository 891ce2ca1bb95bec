"""Training loops of the weak-to-strong experiments (claim C9, Chapter 5).

Three loops, all minimising ``objective(z, y, progress)`` over pairs (``z`` the pair
logit, ``y`` the target probability that ``a`` is preferred; see
:mod:`w2sg_utils.losses`), with ``progress`` in ``[0, 1)`` the fraction of training done:

- :func:`train_head`: a :func:`~w2sg_utils.models.PairHead` on frozen embeddings (the
  CPU strong student and ceiling), Adam with an explicit L2 penalty
  ``l2 * sum(theta^2)`` on the head's weights.
- :func:`train_reward_model`: the fast causal-LM loop: texts tokenized once, minibatch
  of ``batch_size`` pairs split into microbatches of pairs of similar length, each
  padded only to its own longest sequence (dynamic padding), gradient accumulation to
  the minibatch, optional bf16 autocast on CUDA and gradient checkpointing.
- :func:`train_reward_model_paper`: the released code's loop (minibatch 1, gradient
  accumulation over ``batch_size`` steps, fp32), kept as the baseline of
  ``benchmarks/bench_training_loop.py``.

Both causal-LM loops use Adam at the released code's ``lr = 1e-5`` by default and the same
seeded order of pairs, so they compute the same update up to floating-point order
(checked in ``tests/experiments/test_models.py``) for objectives that are a mean over examples.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from .._common import non_negative, positive, positive_int, torch_threads
from .distributed import current as processes

__all__ = [
    "torch_threads",
    "train_head",
    "head_logits",
    "tokenize_pairs",
    "Loop",
    "minibatches",
    "train_reward_model",
    "train_reward_model_paper",
    "reward_logits",
]


def _check_targets(targets, n):
    y = np.asarray(targets, dtype=np.float64)
    if y.shape != (n,):
        raise ValueError(f"targets: expected shape ({n},), got {y.shape}")
    if not np.all((y >= 0) & (y <= 1)):
        raise ValueError("targets: probabilities must lie in [0, 1]")
    return y


HEAD_STREAM = 77
"""The minibatch stream of the heads on frozen embeddings (:func:`minibatches`)."""


def train_head(head, e_a, e_b, targets, objective: Callable, *, l2: float = 0.0,
               epochs: int = 30, lr: float = 1e-2, batch_size: int = 64, seed: int = 0,
               progress: bool = False, num_threads: int | None = 1):
    """Train a pairwise head on frozen embeddings (strong student / ceiling, claim C9).

    Loss per minibatch: ``objective(z, y, progress) + l2 * sum(w^2)`` over the head's
    weight matrices (biases unpenalised). Returns the trained head (in eval mode).

    Statement: {prf:ref}`def-ch05-pairwise`.
    """
    with torch_threads(num_threads):
        return _train_head(head, e_a, e_b, targets, objective, l2=l2, epochs=epochs, lr=lr,
                           batch_size=batch_size, seed=seed, progress=progress)


def _train_head(head, e_a, e_b, targets, objective, *, l2, epochs, lr, batch_size, seed,
                progress):
    import torch
    from tqdm import tqdm

    e_a = np.asarray(e_a, dtype=np.float32)
    e_b = np.asarray(e_b, dtype=np.float32)
    if e_a.shape != e_b.shape or e_a.ndim != 2:
        raise ValueError(f"e_b: shape {e_b.shape} must equal e_a's {e_a.shape} (n, dim)")
    y = _check_targets(targets, len(e_a))
    non_negative(l2, "l2")
    positive(lr, "lr")
    positive_int(epochs, "epochs")
    positive_int(batch_size, "batch_size")
    torch.manual_seed(seed)
    A, B = torch.from_numpy(e_a), torch.from_numpy(e_b)
    Y = torch.from_numpy(y.astype(np.float32))
    n = len(Y)
    total = epochs * math.ceil(n / batch_size)
    weights = [p for name, p in head.named_parameters() if name.endswith("weight")]
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    objective.fit(Y)  # Quan_CACE: threshold from all training labels (no-op otherwise)
    head.train()
    # batch-quantile objectives need two examples: a last block of one is skipped
    batches = minibatches(n, batch_size, epochs, seed, stream=HEAD_STREAM, min_size=2)
    for step, idx in enumerate(tqdm(batches, disable=not progress, desc="head",
                                    leave=False, total=total)):
        idx = torch.from_numpy(idx)
        z = head(A[idx], B[idx])
        loss = objective(z, Y[idx], progress=step / total)
        if l2 > 0:
            loss = loss + l2 * sum((w ** 2).sum() for w in weights)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return head.eval()


def head_logits(head, e_a, e_b) -> np.ndarray:
    """Pair logits ``z`` of a trained head (float64 numpy)."""
    import torch

    with torch.inference_mode():
        z = head(torch.as_tensor(np.asarray(e_a, np.float32)),
                 torch.as_tensor(np.asarray(e_b, np.float32)))
    return z.double().numpy()


def tokenize_pairs(tokenizer, text_a, text_b, max_length: int) -> tuple[list, list]:
    """Token ids of both texts of every pair, left-truncated to ``max_length``."""
    positive_int(max_length, "max_length")
    tokenizer.truncation_side = "left"
    ids_a = tokenizer(list(text_a), truncation=True, max_length=max_length)["input_ids"]
    ids_b = tokenizer(list(text_b), truncation=True, max_length=max_length)["input_ids"]
    return ids_a, ids_b


def _collate(seqs, pad_id, device):
    """Left-pad to the longest sequence of this microbatch (dynamic padding)."""
    import torch

    L = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), L), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), L), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, L - len(s):] = torch.tensor(s, dtype=torch.long)
        mask[i, L - len(s):] = 1
    return ids.to(device), mask.to(device)


def _pad_id(tokenizer):
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


ORDERS = ("reshuffle", "release")
"""Minibatch orders: a new permutation every epoch, or the released code's."""
LR_SCHEDULES = ("constant", "cosine")
"""Learning-rate schedules: constant, or cosine annealing to 0 over the run, per step."""


def minibatches(n: int, batch_size: int, epochs: int, seed: int, order: str = "reshuffle",
                stream: int = 4242, min_size: int = 1):
    """Minibatches of indices of ``n`` examples: the one generator of every loop.

    ``"reshuffle"``: a new permutation of ``numpy.random.default_rng([seed, stream])``
    every epoch, cut into ``batch_size`` blocks (the last may be short; a block under
    ``min_size`` examples is skipped when ``n >= min_size``). ``"release"``: the
    training set shuffled once (``datasets.Dataset.shuffle(seed)`` draws
    ``numpy.random.default_rng(seed).permutation(n)``), the same order in every epoch,
    the stream cut into ``n * epochs // batch_size`` full minibatches that may span two
    epochs (``itertools.repeat`` in the release's ``train_reward_model``).
    """
    if order == "release":
        perm = np.tile(np.random.default_rng(seed).permutation(n), epochs)
        for s in range(n * epochs // batch_size):
            yield perm[s * batch_size: (s + 1) * batch_size]
        return
    gen = np.random.default_rng([seed, stream])
    for _ in range(epochs):
        perm = gen.permutation(n)
        for s in range(0, n, batch_size):
            if min(batch_size, n - s) < min_size <= n:
                continue
            yield perm[s: s + batch_size]


@dataclass(frozen=True)
class Loop:
    """Settings of the reward-model loops (:func:`train_reward_model`): Adam's ``lr``,
    minibatches of ``batch_size`` pairs in microbatches of ``micro_batch_size``,
    ``epochs``, ``max_length`` tokens (left truncation), ``device``, ``bf16`` autocast
    (CUDA), the minibatch ``order``, the ``lr_schedule`` and ``dropout`` (``False``: the
    model trains in ``eval()`` mode, as released). Defaults: the loop's own; a
    configuration section gives its values with ``section.loop(device)``."""

    lr: float = 1e-5
    batch_size: int = 32
    micro_batch_size: int = 8
    epochs: int = 2
    max_length: int = 1024
    device: str = "cpu"
    bf16: bool = False
    order: str = "reshuffle"
    lr_schedule: str = "constant"
    dropout: bool = True

    def __post_init__(self):
        positive(self.lr, "lr")
        for k in ("batch_size", "micro_batch_size", "epochs", "max_length"):
            positive_int(getattr(self, k), k)
        if self.order not in ORDERS:
            raise ValueError(f"order: one of {ORDERS}, got {self.order!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(
                f"lr_schedule: one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        if not isinstance(self.dropout, bool):
            raise ValueError(f"dropout: expected True or False, got {self.dropout!r}")
        dev = str(self.device)
        if dev.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                raise ValueError(f"device: {dev!r} requested but CUDA is not available")
        if self.bf16 and not dev.startswith("cuda"):
            raise ValueError("bf16: autocast to bf16 is only used on CUDA devices")

    def check_pairs(self, n: int) -> None:
        """``ValueError`` if ``n`` pairs cannot fill one minibatch of the released order."""
        if self.order == "release" and n * self.epochs < self.batch_size:
            raise ValueError(f"batch_size: {self.batch_size} exceeds the "
                             f"{n * self.epochs} pairs of the run; order='release' "
                             "keeps full minibatches only")


def _loop(loop: Loop | None, fields: dict) -> Loop:
    if loop is not None and fields:
        raise ValueError(f"loop: give a Loop or its fields, not both ({sorted(fields)})")
    return loop if loop is not None else Loop(**fields)


@dataclass
class _Run:
    """What both reward-model loops start from (:func:`_start_training`)."""

    ids_a: list
    ids_b: list
    pad: int
    opt: object
    sched: object
    batches: list
    n_steps: int
    Y: object
    stats: dict


def _start_training(model, tokenizer, text_a, text_b, y, loop: Loop, seed, max_steps,
                    objective, pretokenized) -> _Run:
    """Shared set-up of both training loops: tokens, optimiser, the seeded minibatch order,
    the schedule and the dropout state (``model.train()`` or, as released, ``eval()``)."""
    import torch

    loop.check_pairs(len(y))
    ids_a, ids_b = pretokenized or tokenize_pairs(tokenizer, text_a, text_b, loop.max_length)
    torch.manual_seed(seed)
    model.to(loop.device).train(loop.dropout)
    # a model may give its own groups (the fine-tuned encoder: head lr and L2 penalty)
    groups = (model.param_groups(loop.lr) if hasattr(model, "param_groups")
              else model.parameters())
    opt = torch.optim.Adam(groups, lr=loop.lr)
    batches = list(minibatches(len(y), loop.batch_size, loop.epochs, seed, loop.order))
    total = len(batches)  # progress and schedule refer to the whole run
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, total)
             if loop.lr_schedule == "cosine" else None)
    if max_steps is not None:
        positive_int(max_steps, "max_steps")
        batches = batches[:max_steps]
    Y = torch.tensor(y, dtype=torch.float32)
    objective.fit(Y)  # Quan_CACE: threshold from all training labels (no-op otherwise)
    stats = {"steps": 0, "pairs": 0, "tokens": 0, "loss": float("nan"), "lr": []}
    return _Run(ids_a, ids_b, _pad_id(tokenizer), opt, sched, batches, total, Y, stats)


def _upcast(z):
    """Half-precision logits (bf16 autocast) to float32; float32/64 unchanged."""
    import torch

    return z.float() if z.dtype in (torch.float16, torch.bfloat16) else z


def _end_step(opt, sched, stats, n_pairs, loss):
    """Optimiser step, then the schedule's (per step, as released); records the lr used."""
    stats["lr"].append(opt.param_groups[0]["lr"])
    opt.step()
    if sched is not None:
        sched.step()
    stats["steps"] += 1
    stats["pairs"] += n_pairs
    stats["loss"] = loss


def train_reward_model(model, tokenizer, text_a, text_b, targets, objective: Callable,
                       loop: Loop | None = None, *, seed: int = 0,
                       max_steps: int | None = None, progress: bool = True,
                       pretokenized=None, **loop_fields) -> dict:
    """Fast loop for the causal-LM reward model (claim C9 protocol, faster execution).

    ``loop``: a :class:`Loop` (or its fields as keywords, e.g. ``lr=1e-5,
    micro_batch_size=4``). Each minibatch of ``batch_size`` pairs (seeded order) is
    sorted by length and cut into microbatches of ``micro_batch_size`` pairs; both texts
    of a microbatch go through the model in one left-padded batch of ``2 * m`` rows.
    Losses are weighted by ``m / batch_size`` so the accumulated gradient is that of the
    minibatch mean. Returns ``{"steps", "pairs", "tokens", "loss", "lr"}`` (``loss`` the
    last minibatch's, ``lr`` the learning rate of each step). The released protocol is
    ``order="release"``, ``lr_schedule="cosine"``, ``dropout=False`` (the model trains
    in ``eval()`` mode, the release's ``train_with_dropout=False``) in float32; checked
    against a loop written from the release in ``tests/experiments/test_release_loop.py``.
    Under ``accelerate launch`` with several processes, each takes a share of every
    minibatch and the update is the same (:mod:`w2sg_utils.experiments.distributed`).

    Statement: {prf:ref}`def-ch05-pairwise`.
    """
    import torch
    from tqdm import tqdm

    loop = _loop(loop, loop_fields)
    y = _check_targets(targets, len(text_a))
    par = processes(loop.device)  # one process, or several through accelerate
    device = par.device(loop.device)
    loop = replace(loop, device=device)
    run = _start_training(model, tokenizer, text_a, text_b, y, loop, seed, max_steps,
                          objective, pretokenized)
    ids_a, ids_b, stats = run.ids_a, run.ids_b, run.stats
    net, opt = par.prepare(model, run.opt)
    for step, idx in enumerate(tqdm(run.batches, disable=not progress, desc="train (fast)")):
        idx = sorted(idx, key=lambda i: max(len(ids_a[i]), len(ids_b[i])))
        opt.zero_grad(set_to_none=True)
        total = 0.0
        for mb, num, den, last in par.microbatches(idx, loop.micro_batch_size):
            ids, mask = _collate([ids_a[i] for i in mb] + [ids_b[i] for i in mb], run.pad,
                                 device)
            with par.no_sync(net, last):
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bool(loop.bf16)):
                    z = par.pair_logits(net, ids, mask)
                if num:
                    loss = objective(_upcast(z), run.Y[mb].to(device),
                                     progress=step / run.n_steps)
                else:  # zero-weight padding of a short share: no objective state touched
                    loss = _upcast(z).sum()
                par.backward(loss * num / den)
            total += float(loss.detach()) * num / den / par.num_processes
            stats["tokens"] += int(mask.sum()) if num else 0
        _end_step(opt, run.sched, stats, len(idx), total)
    stats["loss"] = par.reduce_sum(stats["loss"])
    stats["tokens"] = int(par.reduce_sum(stats["tokens"]))
    par.release()
    model.eval()
    return stats


def train_reward_model_paper(model, tokenizer, text_a, text_b, targets, objective: Callable,
                             loop: Loop | None = None, *, seed: int = 0,
                             max_steps: int | None = None, progress: bool = True,
                             pretokenized=None, **loop_fields) -> dict:
    """Baseline: the released code's loop, one pair per forward pass, ``batch_size``
    accumulation steps per update, fp32. Same seeded order as :func:`train_reward_model`.
    """
    from tqdm import tqdm

    loop = _loop(loop, loop_fields)
    if loop.bf16:
        raise ValueError("bf16: the paper's loop trains in float32")
    y = _check_targets(targets, len(text_a))
    run = _start_training(model, tokenizer, text_a, text_b, y, loop, seed, max_steps,
                          objective, pretokenized)
    for step, idx in enumerate(tqdm(run.batches, disable=not progress, desc="train (paper)")):
        run.opt.zero_grad(set_to_none=True)
        total = 0.0
        for i in idx:
            ids, mask = _collate([run.ids_a[i], run.ids_b[i]], run.pad, loop.device)
            z = model.pair_logits(ids, mask)
            loss = objective(z, run.Y[[i]].to(loop.device), progress=step / run.n_steps)
            (loss / len(idx)).backward()
            total += float(loss.detach()) / len(idx)
            run.stats["tokens"] += int(mask.sum())
        _end_step(run.opt, run.sched, run.stats, len(idx), total)
    model.eval()
    return run.stats


def reward_logits(model, tokenizer, text_a, text_b, *, max_length: int = 1024,
                  batch_size: int = 16, device: str = "cpu", bf16: bool = False,
                  progress: bool = True, pretokenized=None) -> np.ndarray:
    """Pair logits ``z = r(a) - r(b)`` of a reward model (length-sorted batches)."""
    import torch
    from tqdm import tqdm

    positive_int(batch_size, "batch_size")
    par = processes(device)
    device = par.device(device)
    ids_a, ids_b = pretokenized or tokenize_pairs(tokenizer, text_a, text_b, max_length)
    pad = _pad_id(tokenizer)
    n = len(ids_a)
    order = np.argsort([max(len(a), len(b)) for a, b in zip(ids_a, ids_b)], kind="stable")
    batches, keep = par.eval_split(order, batch_size)  # this process's share, padded
    values = []
    model.to(device).eval()
    with torch.inference_mode() if par.num_processes == 1 else torch.no_grad():
        for mb in tqdm(batches, disable=not progress, desc="predict"):
            ids, mask = _collate([ids_a[i] for i in mb] + [ids_b[i] for i in mb], pad, device)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bool(bf16)):
                z = model.pair_logits(ids, mask)
            values.append(z.float().cpu().numpy())
    return par.gather_eval(keep, np.concatenate(values), n)  # each pair once
