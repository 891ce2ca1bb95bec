"""Small weak teachers and strong students for Monte Carlo experiments (claims C4-C5, Chapter 2).

The inputs form a finite grid of ``n_inputs`` points, so population risks are exact sums
over the grid and only the training randomness is sampled.

* :func:`histogram_teacher` -- a weak teacher: per-input label averages shrunk towards
  the pooled average (high variance, no smoothing across inputs).
* :func:`fit_mlp_students` -- strong students: one-hidden-layer ``tanh`` networks (a
  non-convex parameterisation), many trained at once in a batch with full-batch Adam on
  ``D(label, f_s)`` (squared error, or cross-entropy on soft labels for KL).
"""

from __future__ import annotations

import numpy as np

from ._common import as_float, torch_threads
from .divergences import get_divergence

__all__ = ["histogram_teacher", "fit_mlp_students"]


def histogram_teacher(x_idx, y, n_inputs: int, alpha: float = 1.0, n_classes: int | None = None):
    """Weak teachers from labelled samples on a finite grid, batched (Chapter 2).

    ``x_idx`` (shape ``(B, n)``) indexes grid points; ``y`` holds real labels (regression,
    ``n_classes=None``) or class indices. The prediction at grid point ``x`` is
    ``(sum of labels at x + alpha * pooled) / (count(x) + alpha)`` where ``pooled`` is the
    average label of the batch member (for classes, the add-one smoothed class
    frequencies, so every probability is positive). Returns shape ``(B, n_inputs, k)``.
    """
    x_idx = np.asarray(x_idx)
    if x_idx.ndim != 2 or not np.issubdtype(x_idx.dtype, np.integer):
        raise ValueError(f"x_idx: expected an integer array of shape (B, n), got {x_idx.shape}")
    if x_idx.min() < 0 or x_idx.max() >= n_inputs:
        raise ValueError(f"x_idx: entries must lie in [0, n_inputs={n_inputs})")
    if not alpha > 0:
        raise ValueError(f"alpha: must be positive, got {alpha}")
    B, n = x_idx.shape
    if n_classes is None:
        onehot_y = as_float(y, "y")[..., None]
        pooled = onehot_y.mean(axis=1, keepdims=True)
    else:
        y = np.asarray(y)
        if y.shape != x_idx.shape or y.min() < 0 or y.max() >= n_classes:
            raise ValueError(f"y: expected class indices in [0, {n_classes}) of shape {x_idx.shape}")
        onehot_y = np.eye(n_classes)[y]
        pooled = (onehot_y.sum(axis=1, keepdims=True) + 1.0) / (n + n_classes)
    if onehot_y.shape[:2] != (B, n):
        raise ValueError(f"y: expected shape {x_idx.shape}, got {onehot_y.shape[:2]}")
    onehot_x = np.zeros((B, n, n_inputs))
    np.put_along_axis(onehot_x, x_idx[..., None], 1.0, axis=2)
    sums = np.einsum("bnx,bnk->bxk", onehot_x, onehot_y)
    counts = onehot_x.sum(axis=1)[..., None]
    return (sums + alpha * pooled) / (counts + alpha)


def fit_mlp_students(
    x_train,
    labels,
    grid,
    divergence="squared",
    hidden: int = 32,
    steps: int = 300,
    lr: float = 0.02,
    weight_decay: float = 1e-3,
    seed: int = 0,
):
    """Train ``B`` independent ``tanh`` networks at once and predict on ``grid`` (Chapter 2).

    ``x_train`` has shape ``(B, N, d)`` and ``labels`` ``(B, N, k)`` (teacher predictions:
    real values for ``squared``, probabilities for ``kl``). Network ``b`` minimises
    ``mean_i D(labels[b, i], f_b(x_i)) + weight_decay * ||weights_b||^2`` (for KL, the
    cross-entropy, which differs from ``KL`` by the labels' entropy) by full-batch Adam.
    Returns predictions on ``grid`` (shape ``(n, d)``) of shape ``(B, n, k)``: raw outputs
    for squared loss, softmax probabilities for KL.
    """
    import torch

    div = get_divergence(divergence)
    if div.name not in ("squared", "kl"):
        raise ValueError(f"divergence: only 'squared' and 'kl' are supported, got {div.name!r}")
    x = as_float(x_train, "x_train")
    lab = div.validate(labels, "labels", "target")
    g = as_float(grid, "grid")
    if x.ndim != 3 or lab.ndim != 3 or x.shape[:2] != lab.shape[:2]:
        raise ValueError(f"labels: expected shape (B, N, k) matching x_train {x.shape}, got {lab.shape}")
    if g.ndim != 2 or g.shape[1] != x.shape[2]:
        raise ValueError(f"grid: expected shape (n, {x.shape[2]}), got {g.shape}")
    for name, val in (("hidden", hidden), ("steps", steps)):
        if not isinstance(val, (int, np.integer)) or val < 1:
            raise ValueError(f"{name}: must be a positive integer, got {val!r}")
    B, _, d = x.shape
    k = lab.shape[2]
    gen = torch.Generator().manual_seed(int(seed))
    dt = torch.float64
    # one row of the initial draw per network, so network b's start depends on (seed, b) only
    init = torch.randn(B, d * hidden + hidden * k, generator=gen, dtype=dt)
    params = [
        (init[:, : d * hidden].reshape(B, d, hidden) / np.sqrt(d)).contiguous(),
        torch.zeros(B, 1, hidden, dtype=dt),
        (init[:, d * hidden :].reshape(B, hidden, k) / np.sqrt(hidden)).contiguous(),
        torch.zeros(B, 1, k, dtype=dt),
    ]
    for p in params:
        p.requires_grad_(True)
    xt, yt = torch.as_tensor(x), torch.as_tensor(lab)

    def forward(inp):
        return torch.tanh(inp @ params[0] + params[1]) @ params[2] + params[3]

    opt = torch.optim.Adam(params, lr=lr)
    with torch_threads(1):  # many tiny batched products: one thread is several times faster
        _train(opt, params, forward, xt, yt, div.name, steps, weight_decay)
    with torch.no_grad():
        out = forward(torch.as_tensor(g).expand(B, -1, -1))
        if div.name == "kl":
            out = torch.softmax(out, -1)
    return out.numpy().astype(np.float64)


def _train(opt, params, forward, xt, yt, loss: str, steps: int, weight_decay: float) -> None:
    import torch

    for _ in range(steps):
        opt.zero_grad()
        out = forward(xt)
        if loss == "squared":
            per_net = ((out - yt) ** 2).sum(-1).mean(-1)
        else:
            per_net = -(yt * torch.log_softmax(out, -1)).sum(-1).mean(-1)
        penalty = (params[0] ** 2).sum((1, 2)) + (params[2] ** 2).sum((1, 2))
        (per_net + weight_decay * penalty).sum().backward()
        opt.step()
