"""An i.i.d. law of pretrained-weak teachers on frozen embeddings (claims C3, C4; Chapter 6).

Chapter 6 needs many independent draws of *the* teacher: hundreds, so that the
posterior-mean teacher can be estimated across them (:mod:`w2sg_utils.real_posterior`).
The teacher here is a pretrained weak model fine-tuned on ground truth in miniature: a
logistic head on frozen sentence embeddings (all-MiniLM-L6-v2), trained on ``n_labels``
ground-truth preference pairs. A pair ``(a, b)`` is scored by ``z = (e_a - e_b) . w``.

The law of one draw (:func:`subset_draws`): a uniformly random subset of ``n_labels``
rows of the shipped ``train_gt`` pool, without replacement, drawn by the draw's own
generator ``default_rng([seed, 0x7EAC, k])``. Different draws use independent generators,
so the teachers are i.i.d. *given the pool*: every expectation over teachers in
Chapter 6 is conditional on the shipped ``train_gt`` rows (and on the encoder and the
hyperparameters), never over new pools. A subset holding one class only is redrawn by the
same generator (the law is the uniform subset conditioned on holding both classes).

Students (:func:`train_students`): heads on frozen embeddings of a stronger encoder
(all-mpnet-base-v2 where available), each trained on one teacher's soft labels
``sigmoid(z_w)`` at the student's inputs, with the batched trainer of
:func:`w2sg_utils.experiments.batched.train_heads`. The students' minibatch order is
fixed by the chapter's seed and shared by all draws, so a student is a deterministic
function of its teacher's logits at its inputs (the theorem's ``G``).
"""

from __future__ import annotations

import numpy as np

from ._common import check_int, positive, positive_int

__all__ = ["pair_features", "subset_draws", "fit_teachers", "head_logits",
           "train_students"]


def pair_features(model: str, split: str, n_rows: int, seed: int,
                  max_length: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Pair features ``e_a - e_b`` ``(n_rows, d)`` and labels from the shipped artifact.

    The first ``n_rows`` rows of ``split`` from the checksummed embedding artifact
    (:func:`w2sg_utils.experiments.embedding_artifact.load_rows`; a missing or stale
    artifact is refused, never recomputed silently). Each pair is swapped with
    probability 1/2 by ``default_rng([seed, 0x5A1F, split])``: ``label = 1`` when
    ``a`` is the chosen text. A head without intercept gives a swapped pair the opposite
    logit, so the swap changes nothing but the labels' balance.

    Statement: {prf:ref}`def-ch05-pairwise`.
    """
    from .experiments.data import SPLITS
    from .experiments.embedding_artifact import load_rows

    if split not in SPLITS:
        raise ValueError(f"split: one of {SPLITS}, got {split!r}")
    n_rows = positive_int(n_rows, "n_rows")
    seed = check_int(seed, "seed", min=0)
    chosen, rejected = load_rows(model, split, n_rows, max_length=max_length)
    rng = np.random.default_rng([seed, 0x5A1F, SPLITS.index(split)])
    label = (rng.random(n_rows) >= 0.5).astype(np.int64)
    sign = (2 * label - 1)[:, None]
    return sign * (chosen.astype(np.float64) - rejected), label


def subset_draws(labels, n_labels: int, n_draws: int, seed: int) -> np.ndarray:
    """Rows ``(n_draws, n_labels)`` of i.i.d. teachers' training sets in the pool (C3).

    Draw ``k`` is a uniformly random subset (without replacement) of the pool's rows,
    from its own generator ``default_rng([seed, 0x7EAC, k])``; a subset with one class
    only is redrawn. The rows of the result are therefore independent given the pool;
    they overlap as independent subsets do (unlike the disjoint blocks of one
    permutation, which are exchangeable but not independent).

    Statement: {prf:ref}`thm-expected-misfit`.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels: expected a 1-D array of pool labels, got {labels.shape}")
    n_pool = len(labels)
    n_labels = positive_int(n_labels, "n_labels", max=n_pool)
    n_draws = positive_int(n_draws, "n_draws")
    seed = check_int(seed, "seed", min=0)
    if len(np.unique(labels)) < 2:
        raise ValueError("labels: the pool holds a single class")
    out = np.empty((n_draws, n_labels), dtype=np.int64)
    for k in range(n_draws):
        rng = np.random.default_rng([seed, 0x7EAC, k])
        for _ in range(1000):
            idx = np.sort(rng.choice(n_pool, size=n_labels, replace=False))
            if len(np.unique(labels[idx])) == 2:
                break
        else:
            raise ValueError(f"n_labels: {n_labels} rows never held both classes")
        out[k] = idx
    return out


def fit_teachers(x, labels, draws, C: float = 1.0, tol: float = 1e-8,
                 max_iter: int = 50) -> np.ndarray:
    """Weights ``(M, d)`` of logistic heads, head ``k`` fitted on the rows ``draws[k]`` (C3).

    ``x``: ``(n_pool, d)`` pair features ``e_a - e_b`` of the pool; ``labels``:
    ``(n_pool,)`` in ``{0, 1}``. Head ``k`` minimises scikit-learn's objective
    ``C sum_j CE(y_j, x_j . w) + |w|^2 / 2`` without intercept (a pair and its swap get
    opposite logits). Solved for all heads at once by Newton's method in the dual
    coordinates ``w = X_k^T alpha`` (the minimiser lies in the span of the head's rows):
    with ``G = X_k X_k^T`` and ``S = diag(p (1 - p))`` the step solves
    ``(I + C S G) delta = C (p - y) + alpha``, an ``n_labels``-square system per head.
    Stops when every head's gradient norm is below ``tol``; ``tests/test_teacher_draws.py``
    compares the heads with scikit-learn's ``LogisticRegression``.

    Statement: {prf:ref}`thm-expected-misfit`.
    """
    import torch

    x = np.asarray(x, dtype=np.float64)
    labels = np.asarray(labels)
    draws = np.asarray(draws)
    if x.ndim != 2 or labels.shape != (len(x),):
        raise ValueError(f"labels: expected shape ({len(x)},) for x of shape {x.shape}")
    if draws.ndim != 2 or draws.size == 0 or draws.min() < 0 or draws.max() >= len(x):
        raise ValueError(f"draws: expected (M, n_labels) row indices below {len(x)}")
    C = positive(C, "C")
    max_iter = positive_int(max_iter, "max_iter")
    xt, idx = torch.from_numpy(x), torch.from_numpy(draws)
    gram = xt @ xt.T  # (n_pool, n_pool), shared by all heads
    G = gram[idx.unsqueeze(-1), idx.unsqueeze(-2)]  # (M, m, m)
    y = torch.from_numpy(labels.astype(np.float64))[idx]
    alpha = torch.zeros_like(y)
    eye = torch.eye(y.shape[1], dtype=torch.float64)
    for _ in range(max_iter):
        p = torch.sigmoid((G @ alpha.unsqueeze(-1)).squeeze(-1))
        r = C * (p - y) + alpha  # the gradient is X_k^T r, its squared norm r' G r
        sq = (r.unsqueeze(-2) @ G @ r.unsqueeze(-1)).squeeze((-1, -2))
        if float(sq.max()) < tol**2:
            break
        H = eye + C * (p * (1 - p)).unsqueeze(-1) * G
        alpha = alpha - torch.linalg.solve(H, r)
    else:
        raise ValueError(f"max_iter: Newton's method did not converge in {max_iter} steps")
    coef = torch.zeros(len(draws), len(x), dtype=torch.float64)
    coef.scatter_add_(1, idx, alpha)  # a row sampled twice would add up; rows are distinct
    return (coef @ xt).numpy()


def head_logits(x, W) -> np.ndarray:
    """Logits ``(M, n)`` of heads ``W`` ``(M, d)`` on pair features ``x`` ``(n, d)`` (C3).

    Statement: {prf:ref}`def-ch05-pairwise`.
    """
    x, W = np.asarray(x, dtype=np.float64), np.asarray(W, dtype=np.float64)
    if x.ndim != 2 or W.ndim != 2 or x.shape[1] != W.shape[1]:
        raise ValueError(f"W: expected shape (M, {x.shape[-1]}), got {W.shape}")
    return W @ x.T


def train_students(x_train, z_teacher, objective: str, *, l2: float = 1e-3,
                   epochs: int = 40, lr: float = 1e-2, batch_size: int = 64,
                   seed: int = 0) -> np.ndarray:
    """Weights ``(K, d)`` of students, student ``k`` fitted to ``sigmoid(z_teacher[k])`` (C3).

    ``x_train``: ``(n_s, d)`` pair features of the student's encoder at its inputs
    ``X_s``; ``z_teacher``: ``(K, n_s)`` teacher logits there. All ``K`` heads are
    trained at once with one minibatch order (``seed``), so each student is a
    deterministic function of its own teacher's logits on ``X_s``.

    Statement: {prf:ref}`thm-expected-misfit`.
    """
    from .experiments.batched import train_heads

    x = np.asarray(x_train, dtype=np.float32)
    z = np.asarray(z_teacher, dtype=np.float64)
    if x.ndim != 2 or z.ndim != 2 or z.shape[1] != len(x):
        raise ValueError(f"z_teacher: expected shape (K, {len(x)}), got {z.shape}")
    targets = 1.0 / (1.0 + np.exp(-z))
    zeros = np.zeros_like(x)
    return train_heads(x, zeros, targets, objective, l2=l2, epochs=epochs, lr=lr,
                       batch_size=batch_size, seed=seed)


def run_draws(teacher_x: dict, student_x: dict, pool_labels, *, n_draws: int,
              n_students: int, teacher_labels: int, teacher_C: float,
              objectives=("bce", "reverse_bce"), l2: float = 1e-3,
              seed: int = 0) -> dict:
    """Teachers, and students of the first ``n_students`` of them, on real data (C3).

    ``teacher_x``: the teacher encoder's pair features ``{"pool", "inputs", "test"}``
    (``train_gt`` rows, the student's inputs ``X_s``, test pairs); ``student_x``: the
    student encoder's features ``{"inputs", "test"}``. Returns ``draws`` (rows of the
    pool), the teacher logits ``z_w_inputs`` ``(M, n_s)`` and ``z_w_test`` ``(M, n)``,
    and ``students[objective]``: ``(n_students, n)`` test logits of the student trained
    on teacher ``k``'s soft labels at ``X_s`` (``k < n_students``).

    Statement: {prf:ref}`thm-expected-misfit`.
    """
    for name, d in (("teacher_x", teacher_x), ("student_x", student_x)):
        need = {"pool", "inputs", "test"} if name == "teacher_x" else {"inputs", "test"}
        if not isinstance(d, dict) or not need <= set(d):
            raise ValueError(f"{name}: expected a dict with keys {sorted(need)}")
    n_draws = positive_int(n_draws, "n_draws")
    n_students = positive_int(n_students, "n_students", max=n_draws)
    if len(teacher_x["inputs"]) != len(student_x["inputs"]):
        raise ValueError("student_x: 'inputs' must hold the same pairs as teacher_x's")
    draws = subset_draws(pool_labels, teacher_labels, n_draws, seed)
    W = fit_teachers(teacher_x["pool"], pool_labels, draws, C=teacher_C)
    out = {"draws": draws, "z_w_inputs": head_logits(teacher_x["inputs"], W),
           "z_w_test": head_logits(teacher_x["test"], W), "students": {}}
    for j, obj in enumerate(objectives):
        V = train_students(student_x["inputs"], out["z_w_inputs"][:n_students], obj,
                           l2=l2, seed=int(seed) * 7 + j)
        out["students"][obj] = head_logits(student_x["test"], V)
    return out
