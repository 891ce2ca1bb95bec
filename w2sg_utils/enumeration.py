"""Exact enumeration helpers for finite examples (claim C5a, Chapter 2).

A finite example has a finite input space, a finite label space and a training set of
``n`` i.i.d. draws, so the law of everything trained on it is a finite list of outcomes
with probabilities. :func:`enumerate_iid` lists those outcomes; :func:`bregman_quantizer`
partitions a finite set of teachers into cells, whose dual means are the values of a
student with a finite (non-convex) range.
"""

from __future__ import annotations

import numpy as np

from ._common import as_float, sample_weights
from .divergences import get_divergence
from .misfit import group_dual_means
from .misfit_learners import histogram_teacher

__all__ = ["enumerate_iid", "bregman_quantizer", "exact_teachers", "MAX_OUTCOMES"]

MAX_OUTCOMES = 2_000_000


def enumerate_iid(probs, n: int) -> tuple[np.ndarray, np.ndarray]:
    """All ``K**n`` sequences of ``n`` i.i.d. draws from a categorical law (claim C5a).

    Returns ``(outcomes, weights)``: ``outcomes[j]`` (shape ``(n,)``) lists the category of
    each draw, in lexicographic order, and ``weights[j]`` is its probability (the product
    of ``probs``). Categories with zero probability are kept (weight 0).
    """
    p = as_float(probs, "probs")
    if p.ndim != 1 or (p < 0).any() or abs(p.sum() - 1.0) > 1e-9:
        raise ValueError("probs: must be a 1-D probability vector")
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n: must be a positive integer, got {n!r}")
    K = p.size
    if K**n > MAX_OUTCOMES:
        raise ValueError(f"n: {K}**{n} outcomes exceed MAX_OUTCOMES={MAX_OUTCOMES}")
    outcomes = np.indices((K,) * n).reshape(n, -1).T
    weights = np.prod(p[outcomes], axis=1)
    return outcomes, weights


def bregman_quantizer(
    divergence, values, n_cells: int, weights=None, x_weights=None, seed: int = 0, n_iter: int = 100
) -> tuple[np.ndarray, np.ndarray]:
    """Partition a finite, weighted set of functions into cells (claim C5a).

    Lloyd iterations with the student first: each value ``v`` goes to the codeword ``c``
    minimising ``E_x D(c(x), v(x))``, and each codeword is the (weighted) dual mean of its
    cell, which is the minimiser of the within-cell expected misfit. ``values`` has shape
    ``(m, n, k)``. Returns ``(cells, codebook)``: integer labels ``0..C-1`` (empty cells
    dropped, ``C <= n_cells``) and the codebook of shape ``(C, n, k)``; the quantizer
    ``f_s = codebook[cells]`` equals its posterior-mean teacher.
    """
    div = get_divergence(divergence)
    v = div.validate(values, "values", "prediction")
    if v.ndim != 3:
        raise ValueError(f"values: expected shape (m, n, k), got {v.shape}")
    m = v.shape[0]
    w = sample_weights(weights, m, "weights")
    wx = sample_weights(x_weights, v.shape[1], "x_weights")
    if not isinstance(n_cells, (int, np.integer)) or n_cells < 1:
        raise ValueError(f"n_cells: must be a positive integer, got {n_cells!r}")
    support = np.flatnonzero(w > 0)
    rng = np.random.default_rng(seed)
    start = rng.choice(support, size=min(n_cells, support.size), replace=False,
                       p=w[support] / w[support].sum())
    codebook = v[start]
    cells = np.full(m, -1)
    ws = w[support] / w[support].sum()
    for _ in range(n_iter):
        dist = div.raw_divergence(codebook[None], v[:, None]) @ wx  # (m, C)
        used = np.unique(np.argmin(dist[support], axis=1))
        codebook = codebook[used]  # drop cells that no draw of positive weight uses
        new = np.argmin(dist[:, used], axis=1)
        if np.array_equal(new, cells):
            break
        cells = new
        codebook = group_dual_means(div, v[support], cells[support], ws)
    return cells, codebook


def exact_teachers(loss: str, p_x, ybar, n_train: int, sigma: float = 1.0):
    """Every histogram teacher of a finite example, with its probability (claim C5a).

    The input ``x`` has law ``p_x`` (length ``n``). ``loss="squared"``: the label is
    ``ybar[x, 0] +/- sigma`` with probability 1/2 each; ``loss="kl"``: a class drawn from
    ``ybar[x]`` (shape ``(n, K)``). A teacher is :func:`~w2sg_utils.misfit_learners.
    histogram_teacher` on ``n_train`` i.i.d. pairs; all ``(2n)**n_train`` (or
    ``(Kn)**n_train``) training sets are enumerated. Returns ``(f_w, weights)``.

    Statement: {prf:ref}`thm-expected-misfit` (checked on this law in Chapter 2).
    """
    p_x = as_float(p_x, "p_x")
    ybar = as_float(ybar, "ybar")
    if ybar.ndim != 2 or ybar.shape[0] != p_x.size:
        raise ValueError(f"ybar: expected shape ({p_x.size}, k), got {ybar.shape}")
    n = p_x.size
    if loss == "squared":
        sets, w = enumerate_iid(np.repeat(p_x, 2) / 2, n_train)
        x_idx, sign = sets // 2, 2 * (sets % 2) - 1
        return histogram_teacher(x_idx, ybar[x_idx, 0] + sigma * sign, n), w
    if loss != "kl":
        raise ValueError(f"loss: must be 'squared' or 'kl', got {loss!r}")
    k = ybar.shape[1]
    sets, w = enumerate_iid((p_x[:, None] * ybar).ravel(), n_train)
    return histogram_teacher(sets // k, sets % k, n, n_classes=k), w
