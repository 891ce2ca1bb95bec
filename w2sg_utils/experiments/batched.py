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
    names = list(eval_sets)
    # the whole pool is counted (once per corpus: every teacher of a seed shares it)
    texts = ([*pool.text_a, *pool.text_b]
             + [t for nm in names for t in (*eval_sets[nm].text_a, *eval_sets[nm].text_b)])
    X = _count_matrix(tuple(texts), ngram_max)
    u = len(pool.text_a)
    rows, start = {}, 2 * u
    for nm in names:
        n = len(eval_sets[nm])
        rows[nm] = (np.arange(start, start + n), np.arange(start + n, start + 2 * n))
        start += 2 * n
    out = {nm: np.empty((len(draws), len(eval_sets[nm]))) for nm in names}
    for k, idx in enumerate(draws):
        ra = np.asarray(idx, dtype=np.int64)
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

def _per_head(values, K: int, name: str) -> list:
    """One value per head: ``values`` repeated, or a sequence of ``K`` values."""
    if isinstance(values, (str, int, float, np.integer, np.floating)) or not hasattr(
            values, "__len__"):
        return [values] * K
    values = list(values)
    if len(values) != K:
        raise ValueError(f"{name}: one value or one per head ({K}), got {len(values)}")
    return values


def _stateful(obj) -> bool:
    """Objectives whose loss depends on more than each example: a batch quantile
    (``buffer_size``) or a threshold fitted to the training labels (``fit``)."""
    from ..losses import Objective

    return "buffer_size" in type(obj).options or type(obj).fit is not Objective.fit


def _objective_groups(objectives: list) -> list[tuple[object, list[int]]]:
    """``(objective object, heads)``: stateless objectives of one name share one object
    and one call on all their heads' examples; the others get one object per head."""
    from ..losses import get_objective

    groups, shared, seen = [], {}, set()
    for k, o in enumerate(objectives):
        obj = get_objective(o, validate=False) if isinstance(o, str) else o
        if _stateful(obj):
            if id(obj) in seen:
                raise ValueError(f"objective: head {k} shares a {obj.name} object with "
                                 "another head; objectives with state need one each")
            seen.add(id(obj))
            groups.append((obj, [k]))
            continue
        key = (type(obj), repr(sorted(vars(obj).items())))  # same objective, same options
        if key not in shared:
            shared[key] = len(groups)
            groups.append((obj, []))
        groups[shared[key]][1].append(k)
    return groups


def train_heads(e_a, e_b, targets, objective, *, l2=0.0, epochs: int = 40,
                lr: float = 1e-2, batch_size: int = 64, seed=0,
                num_threads: int | None = 1) -> np.ndarray:
    """Train ``K`` bias-free linear pair heads at once; return their weights ``(K, d)``.

    Head ``k`` minimises ``objective_k(z_k, targets[k]) + l2_k * |w_k|^2`` with Adam
    from zero over the minibatch order of
    :func:`~w2sg_utils.experiments.training.train_head` with ``seed_k``: exactly
    ``K`` runs of that function (claim C9; the students of Chapters 5 and 6), since the
    loss is a sum over heads and Adam is elementwise. ``objective``, ``l2`` and ``seed``
    are one value for every head or a sequence of ``K``; an objective is a name or an
    objective object (one object per head for objectives with state). Heads with one
    seed share each minibatch; logits: ``(e_a - e_b) @ W.T``.

    Statement: {prf:ref}`def-ch05-pairwise`.
    """
    import torch

    from .._common import torch_threads

    e_a, e_b = np.asarray(e_a, np.float32), np.asarray(e_b, np.float32)
    if e_a.shape != e_b.shape or e_a.ndim != 2:
        raise ValueError(f"e_b: shape {e_b.shape} must equal e_a's {e_a.shape} (n, dim)")
    Y = np.asarray(targets, dtype=np.float64)
    if Y.ndim != 2 or Y.shape[1] != len(e_a) or not np.all((Y >= 0) & (Y <= 1)):
        raise ValueError(f"targets: expected probabilities of shape (K, {len(e_a)}), "
                         f"got {Y.shape}")
    K, n = Y.shape
    l2s = [non_negative(v, "l2") for v in _per_head(l2, K, "l2")]
    own_order = not isinstance(seed, (int, np.integer))  # a seed per head
    seeds = [int(v) for v in _per_head(seed, K, "seed")]
    positive(lr, "lr")
    positive_int(epochs, "epochs")
    positive_int(batch_size, "batch_size")
    groups = _objective_groups(_per_head(objective, K, "objective"))
    orders = sorted(set(seeds))
    with torch_threads(num_threads):
        A, B = torch.from_numpy(e_a), torch.from_numpy(e_b)
        D = A - B if own_order else None  # r(a) - r(b) = w . (a - b)
        Yt = torch.from_numpy(Y.astype(np.float32))  # (K, n)
        for obj, heads in groups:  # e.g. Quan_CACE: threshold from the head's labels
            if len(heads) == 1:
                obj.fit(Yt[heads[0]])
        W = torch.zeros(K, e_a.shape[1], requires_grad=True)
        opt = torch.optim.Adam([W], lr=lr)
        pen = torch.tensor(l2s, dtype=torch.float32)[:, None]
        row = torch.tensor([orders.index(s) for s in seeds])  # head -> its order
        gens = [minibatches(n, batch_size, epochs, s, stream=HEAD_STREAM, min_size=2)
                for s in orders]
        total = epochs * math.ceil(n / batch_size)
        for step, idxs in enumerate(zip(*gens)):
            if not own_order:  # one minibatch for every head
                i = torch.from_numpy(idxs[0])
                z, y = (A[i] @ W.T - B[i] @ W.T).T, Yt[:, i]  # (K, b)
            else:  # each head its own minibatch; each head's arithmetic is the same
                # whatever the other heads (a resumed run equals the batch's bit for bit)
                idx = torch.from_numpy(np.stack(idxs))[row]  # (K, b)
                z = (D[idx] * W[:, None, :]).sum(dim=2)
                y = torch.gather(Yt, 1, idx)
            prog = step / total
            loss = 0.0
            for obj, heads in groups:
                h = torch.tensor(heads)
                per = obj.per_example(z[h].reshape(-1), y[h].reshape(-1), progress=prog)
                loss = loss + per.reshape(len(heads), -1).mean(dim=1).sum()
            if not own_order and len(set(l2s)) == 1:  # one strength for every head
                if l2s[0] > 0:
                    loss = loss + l2s[0] * (W ** 2).sum()
            else:  # each head its own strength
                loss = loss + (pen * W ** 2).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return W.detach().double().numpy()


def head_logits_many(W, e_a, e_b) -> np.ndarray:
    """Logits ``(K, n)`` of the linear heads ``W`` (``(K, d)``) on pairs ``(e_a, e_b)``;
    head by head, so a head's logits do not depend on the others (bit for bit)."""
    e_a, e_b = np.asarray(e_a, np.float64), np.asarray(e_b, np.float64)
    return np.stack([e_a @ w - e_b @ w for w in np.asarray(W, np.float64)])
