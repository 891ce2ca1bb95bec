"""Models trained ``K`` at a time (claim C9; the ensembles of Chapter 6), used by
:func:`~.learners.fit_teachers` and :func:`~.learners.fit_strongs`.

- TF-IDF teachers (:func:`tfidf_teacher_logits`): the texts are tokenised and counted
  once; each teacher's vocabulary, IDF weights and features are then cut from the shared
  count matrix exactly as :class:`~w2sg_utils.experiments.models.TfidfTeacher` computes
  them on its own texts (same vocabulary rule, same feature order; tested to rounding).
- Linear heads on frozen embeddings (:func:`train_heads`): ``K`` heads trained at once as
  one ``(K, d)`` weight matrix, each with its own loss and penalty; Adam is elementwise,
  so this is ``K`` runs of :func:`~w2sg_utils.experiments.training.train_head` with the
  same minibatch order (tested). Objectives with state (a batch quantile, or
  ``Quan_CACE_k``'s threshold fitted to the training labels) get one objective object
  per head.
"""

from __future__ import annotations

import math

import numpy as np

from .._common import non_negative, positive, positive_int
from .training import HEAD_STREAM, minibatches

__all__ = ["tfidf_teacher_logits", "train_heads", "head_logits_many"]


# ------------------------------------------------------------------ TF-IDF teachers

_COUNTS: dict = {}


def _count_matrix(texts: tuple, ngram_max: int):
    """Sparse counts of every text over the union vocabulary (sorted), cached per corpus."""
    from sklearn.feature_extraction.text import CountVectorizer

    key = (hash(texts), len(texts), ngram_max)
    if key not in _COUNTS:
        _COUNTS.clear()
        vec = CountVectorizer(ngram_range=(1, ngram_max), dtype=np.float64)
        _COUNTS[key] = vec.fit_transform(list(texts)).tocsc()
    return _COUNTS[key]


def _tfidf(counts, idf):
    """Sublinear TF times IDF, rows L2-normalised (``TfidfVectorizer(sublinear_tf=True)``)."""
    from sklearn.preprocessing import normalize

    x = counts.tocsr(copy=True)
    x.data = np.log(x.data) + 1.0
    return normalize(x.multiply(idf[None, :]).tocsr(), norm="l2")


def tfidf_teacher_logits(pool, draws, eval_sets: dict, C: float = 10.0, ngram_max: int = 2,
                         max_features: int = 20000) -> dict[str, np.ndarray]:
    """Logits ``(K, n)`` on each evaluation set of ``K`` TF-IDF teachers (claim C9), batched.

    Teacher ``k`` is :class:`~w2sg_utils.experiments.models.TfidfTeacher` fitted on the pairs
    ``pool.subset(draws[k])``: vocabulary and IDF from its own ``2 m`` texts (every term
    when at most ``max_features``, else the ``max_features`` most frequent, chosen as
    scikit-learn does), sublinear TF, L2 rows, a logistic regression without intercept
    on ``tfidf(a) - tfidf(b)``. Only the counting is shared between teachers.

    Statement: {prf:ref}`def-ch05-pairwise`.
    """
    from sklearn.linear_model import LogisticRegression

    draws = np.asarray(draws)
    if draws.ndim != 2:
        raise ValueError(f"draws: expected shape (K, n_labels), got {draws.shape}")
    positive(C, "C")
    if ngram_max not in (1, 2, 3):
        raise ValueError(f"ngram_max: 1, 2 or 3, got {ngram_max!r}")
    used = np.unique(draws)
    names = list(eval_sets)
    texts = ([pool.text_a[i] for i in used] + [pool.text_b[i] for i in used]
             + [t for nm in names for t in (*eval_sets[nm].text_a, *eval_sets[nm].text_b)])
    X = _count_matrix(tuple(texts), ngram_max)
    pos = {int(i): j for j, i in enumerate(used)}
    u = len(used)
    rows, start = {}, 2 * u
    for nm in names:
        n = len(eval_sets[nm])
        rows[nm] = (np.arange(start, start + n), np.arange(start + n, start + 2 * n))
        start += 2 * n
    out = {nm: np.empty((len(draws), len(eval_sets[nm]))) for nm in names}
    for k, idx in enumerate(draws):
        ra = np.array([pos[int(i)] for i in idx])
        fit = X[np.concatenate([ra, ra + u])]  # the teacher's 2 m texts, a's then b's
        df = np.asarray((fit > 0).sum(axis=0)).ravel()
        cols = np.flatnonzero(df)
        if len(cols) > max_features:  # scikit-learn's _limit_features, same array and sort
            tfs = np.asarray(fit[:, cols].sum(axis=0)).ravel()
            cols = cols[np.sort((-tfs).argsort()[:max_features])]
        idf = np.log((1 + fit.shape[0]) / (1 + df[cols])) + 1.0
        feats = _tfidf(fit[:, cols], idf)
        m = len(idx)
        clf = LogisticRegression(C=float(C), fit_intercept=False, max_iter=2000)
        clf.fit(feats[:m] - feats[m:], pool.label[idx])
        for nm in names:
            fa, fb = (_tfidf(X[r][:, cols], idf) for r in rows[nm])
            out[nm][k] = clf.decision_function(fa - fb)
    return out


# ------------------------------------------------------------------- batched heads

def _objectives(name: str, K: int):
    """One shared objective, or one per head for objectives with state: a batch quantile
    (``buffer_size``) or a threshold fitted to the training labels (``fit``)."""
    from ..losses import Objective, get_objective

    first = get_objective(name, validate=False)
    if "buffer_size" in type(first).options or type(first).fit is not Objective.fit:
        return [first] + [get_objective(name, validate=False) for _ in range(K - 1)], True
    return [first], False


def train_heads(e_a, e_b, targets, objective: str, *, l2: float = 0.0, epochs: int = 40,
                lr: float = 1e-2, batch_size: int = 64, seed: int = 0,
                num_threads: int | None = 1) -> np.ndarray:
    """Train ``K`` bias-free linear pair heads at once; return their weights ``(K, d)``.

    Head ``k`` minimises ``objective(z_k, targets[k]) + l2 * |w_k|^2`` with Adam from
    zero, the minibatch order of :func:`~w2sg_utils.experiments.training.train_head` with ``seed``
    (claim C9; the students of Chapter 6). Logits: ``(e_a - e_b) @ W.T``.

    Statement: {prf:ref}`def-ch05-pairwise`.
    """
    import torch

    from .._common import torch_threads

    e_a, e_b = np.asarray(e_a, np.float32), np.asarray(e_b, np.float32)
    if e_a.shape != e_b.shape or e_a.ndim != 2:
        raise ValueError(f"e_b: shape {e_b.shape} must equal e_a's {e_a.shape} (n, dim)")
    Y = np.asarray(targets, dtype=np.float64)
    if Y.ndim != 2 or Y.shape[1] != len(e_a) or not np.all((Y >= 0) & (Y <= 1)):
        raise ValueError(f"targets: expected probabilities of shape (K, {len(e_a)}), got {Y.shape}")
    non_negative(l2, "l2")
    positive(lr, "lr")
    positive_int(epochs, "epochs")
    positive_int(batch_size, "batch_size")
    K, n = Y.shape
    objs, per_head = _objectives(objective, K)
    with torch_threads(num_threads):
        A, B = torch.from_numpy(e_a), torch.from_numpy(e_b)
        Yt = torch.from_numpy(Y.T.astype(np.float32).copy())  # (n, K)
        W = torch.zeros(K, e_a.shape[1], requires_grad=True)
        opt = torch.optim.Adam([W], lr=lr)
        if per_head:  # e.g. Quan_CACE: threshold from each head's own training labels
            for k in range(K):
                objs[k].fit(Yt[:, k])
        total = epochs * math.ceil(n / batch_size)
        for step, idx in enumerate(minibatches(n, batch_size, epochs, seed,
                                               stream=HEAD_STREAM, min_size=2)):
            idx = torch.from_numpy(idx)
            z, y = A[idx] @ W.T - B[idx] @ W.T, Yt[idx]  # (b, K)
            prog = step / total
            if per_head:
                loss = sum(objs[k](z[:, k], y[:, k], progress=prog) for k in range(K))
            else:
                per = objs[0].per_example(z.T.reshape(-1), y.T.reshape(-1), progress=prog)
                loss = per.reshape(K, -1).mean(dim=1).sum()
            if l2 > 0:
                loss = loss + l2 * (W ** 2).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return W.detach().double().numpy()


def head_logits_many(W, e_a, e_b) -> np.ndarray:
    """Logits ``(K, n)`` of the linear heads ``W`` (``(K, d)``) on pairs ``(e_a, e_b)``."""
    return (np.asarray(e_a, np.float64) @ W.T - np.asarray(e_b, np.float64) @ W.T).T
