"""Training on several processes through Hugging Face ``accelerate`` (claim C9, Chapter 5).

The causal-LM training loop and its prediction loop (:mod:`w2sg_utils.experiments.training`) see
the processes through one small object, :func:`current`:

- :class:`SingleProcess` (no launcher, or one process): the loops run exactly as on one
  device; every method is the identity of today's code.
- :class:`Accelerated` (``accelerate launch`` with ``WORLD_SIZE > 1``): one
  ``accelerate.Accelerator``, created once per process, wraps the model (DDP by default,
  FSDP with an FSDP accelerate config file) and the optimiser.

What stays the same in 1 and ``P`` processes. The global minibatch is the configured
``batch_size``: every process draws the same seeded minibatch, sorts it by length and
takes every ``P``-th pair (:func:`split_minibatch`), cut into microbatches of at most
``micro_batch_size`` pairs. Each microbatch loss is weighted by ``P * m / b`` (``m`` its
pairs, ``b`` the minibatch's), so DDP's average over processes is the gradient of the
minibatch mean, as in one process; gradients are synchronised once per minibatch (after
the last microbatch). Precision is the preset's own (fp32, or bf16 autocast on CUDA):
the accelerator runs with ``mixed_precision="no"``. Every process runs the same number
of forward passes (short shares are padded with zero-weight microbatches), as FSDP
needs. Predictions: each process scores every ``P``-th test pair, padded to equal
length; the padded entries are dropped after the gather, and each pair is checked to
appear exactly once (:meth:`Accelerated.gather_eval`). Only the main process writes the
run store; the others follow its decisions (:meth:`Accelerated.broadcast`).

One named difference: objectives that take a quantile over the current batch (``aux``,
``logconf``, ``Quan_CACE_k`` with ``scope="batch"``) see only their process's share of
it, so they match one process only approximately. Mean-over-pairs objectives, and
``Quan_CACE_k``'s released threshold (fixed from all training labels, which every
process sees), match to rounding (``tests/experiments/test_distributed.py``).
"""

from __future__ import annotations

import math
import os
from contextlib import nullcontext

import numpy as np

__all__ = ["current", "world_size", "SingleProcess", "Accelerated", "split_minibatch",
           "split_eval"]

_ACCELERATED = None


def world_size() -> int:
    """Processes of this launch (``WORLD_SIZE`` set by ``accelerate launch``/``torchrun``)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError as exc:
        raise ValueError(f"WORLD_SIZE: an integer, got {os.environ['WORLD_SIZE']!r}") from exc


def current(device: str = "cpu"):
    """The processes of this run: :class:`SingleProcess`, or the one :class:`Accelerated`."""
    global _ACCELERATED
    if world_size() == 1:
        return SingleProcess()
    if _ACCELERATED is None:
        _ACCELERATED = Accelerated(device)
    return _ACCELERATED


def split_minibatch(idx, micro: int, rank: int = 0, size: int = 1):
    """Microbatches of process ``rank`` of ``size`` for the length-sorted minibatch ``idx``.

    Yields ``(pairs, weight_num, weight_den, last)``: the pair indices, the loss weight
    ``weight_num / weight_den`` and whether the gradients are synchronised after it. With
    ``size = 1`` these are today's microbatches ``idx[s:s+micro]`` with weight
    ``m / b``. With ``size > 1`` the process takes ``idx[rank::size]`` and weights
    ``size * m / b``; a process with fewer microbatches than the busiest one gets
    zero-weight ones (``weight_num = 0``, one pair) so all run the same passes.
    """
    b = len(idx)
    mine = list(idx[rank::size])
    count = math.ceil(math.ceil(b / size) / micro)
    for k in range(count):
        mb = mine[k * micro: (k + 1) * micro]
        last = k == count - 1
        if mb:
            yield mb, len(mb) * size, b, last
        else:
            yield [idx[0]], 0, b, last


def split_eval(order, batch_size: int, rank: int = 0, size: int = 1):
    """Prediction batches of process ``rank`` and its slots ``keep`` (``-1``: padding).

    ``size = 1``: batches ``order[s:s+batch_size]``, ``keep = order``. ``size > 1``: the
    process scores ``order[rank::size]``, padded by repeating its last pair to
    ``ceil(n / size)`` entries, so every process runs the same number of batches.
    """
    order = np.asarray(order)
    mine = order[rank::size]
    n_each = math.ceil(len(order) / size)
    pad = n_each - len(mine)
    filler = mine[-1:] if len(mine) else order[:1]
    padded = np.concatenate([mine, np.repeat(filler, pad)]).astype(order.dtype)
    keep = np.concatenate([mine, np.full(pad, -1)]).astype(np.int64)
    batches = [padded[s: s + batch_size] for s in range(0, n_each, batch_size)]
    return batches, keep


def _scatter(keep, values, n) -> np.ndarray:
    keep, values = np.asarray(keep), np.asarray(values)
    ok = keep >= 0
    got = np.sort(keep[ok])
    if len(got) != n or np.any(got != np.arange(n)):
        raise RuntimeError("gather_eval: the processes' predictions do not cover each pair once")
    out = np.zeros(n, dtype=np.float64)
    out[keep[ok]] = values[ok]
    return out


class SingleProcess:
    """One process: the training and prediction loops exactly as without ``accelerate``."""

    num_processes, process_index, is_main = 1, 0, True

    def device(self, device):
        return device

    def prepare(self, model, optimizer):
        return model, optimizer

    def microbatches(self, idx, micro):
        return split_minibatch(idx, micro)

    def no_sync(self, model, last):
        return nullcontext()

    def pair_logits(self, model, ids, mask):
        return model.pair_logits(ids, mask)

    def backward(self, loss):
        loss.backward()

    def reduce_sum(self, x: float) -> float:
        return x

    def eval_split(self, order, batch_size):
        return split_eval(order, batch_size)

    def gather_eval(self, keep, values, n):
        return _scatter(keep, values, n)

    def broadcast(self, obj):
        return obj

    def main_process_first(self):
        return nullcontext()

    def release(self):
        pass


class Accelerated(SingleProcess):
    """``P > 1`` processes through one ``accelerate.Accelerator`` (DDP, or FSDP by config)."""

    def __init__(self, device: str = "cpu"):
        from accelerate import Accelerator

        self.acc = Accelerator(cpu=str(device) == "cpu", mixed_precision="no")
        self.num_processes = self.acc.num_processes
        self.process_index = self.acc.process_index
        self.is_main = self.acc.is_main_process

    def device(self, device):
        if self.acc.device.type != str(device).split(":")[0]:
            raise ValueError(f"device: the run asks for {device!r} but this process of "
                             f"accelerate launch has {self.acc.device}")
        return self.acc.device

    def prepare(self, model, optimizer):
        return self.acc.prepare(model, optimizer)

    def microbatches(self, idx, micro):
        return split_minibatch(idx, micro, self.process_index, self.num_processes)

    def no_sync(self, model, last):
        return nullcontext() if last else self.acc.no_sync(model)

    def pair_logits(self, model, ids, mask):
        r = model(ids, mask)  # through the wrapper's forward, so DDP/FSDP hooks run
        m = r.shape[0] // 2
        return r[:m] - r[m:]

    def backward(self, loss):
        self.acc.backward(loss)

    def reduce_sum(self, x: float) -> float:
        import torch

        t = torch.tensor([float(x)], dtype=torch.float64, device=self.acc.device)
        return float(self.acc.reduce(t, reduction="sum").item())

    def eval_split(self, order, batch_size):
        return split_eval(order, batch_size, self.process_index, self.num_processes)

    def gather_eval(self, keep, values, n):
        import torch

        dev = self.acc.device
        k = self.acc.gather(torch.as_tensor(np.asarray(keep), dtype=torch.long, device=dev))
        v = self.acc.gather(torch.as_tensor(np.asarray(values), dtype=torch.float32, device=dev))
        return _scatter(k.cpu().numpy(), v.cpu().numpy(), n)

    def broadcast(self, obj):
        from accelerate.utils import broadcast_object_list

        return broadcast_object_list([obj])[0]

    def main_process_first(self):
        return self.acc.main_process_first()

    def release(self):
        """Drop the accelerator's references to the last model and optimiser."""
        self.acc.free_memory()
