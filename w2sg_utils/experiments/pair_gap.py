"""The gap of the pretrained pair: weak, ceiling and student accuracies (claim C9).

The pair: a *weak* teacher is a bias-free logistic head on frozen ``all-MiniLM-L6-v2``
embeddings trained on ``n_labels`` ground-truth pairs of ``train_gt``; the *strong*
models are bias-free logistic heads on frozen ``all-mpnet-base-v2`` embeddings: the
ceiling on the true labels of ``train_w2s``, the student on the teacher's soft labels
``sigmoid(z_w)`` there (binary cross-entropy with soft targets). Both read the shipped
artifact (:mod:`.embedding_artifact`: 128 tokens, left truncation, mean pooling, L2
norm). A head scores a pair by ``z = w . (e_a - e_b)``.

Per seed ``s``: the seeded swap of every split (:func:`~.data.load_hh_helpful`) and the
teacher's labels, a uniformly random subset of the ``train_gt`` pool drawn with its own
generator. Every seed shares the same test pairs, so the accuracies get the two-level
intervals of :mod:`w2sg_utils.intervals` (test pairs and seeds), and PGR its Fieller
interval; all are conditional on the shipped pools, the encoders and the inverse
regularisation strength ``C`` (fixed in advance, reported per value).

Statement: {prf:ref}`def-ch05-pairwise`.
"""

from __future__ import annotations

import numpy as np

from .._common import positive, positive_int
from .data import load_hh_helpful
from .embedding_artifact import load_rows

__all__ = ["WEAK", "STRONG", "fit_head", "pair_tables", "gap_summary"]

WEAK = "sentence-transformers/all-MiniLM-L6-v2"
STRONG = "sentence-transformers/all-mpnet-base-v2"


def fit_head(ea, eb, target, C: float, max_iter: int = 5000, tol: float = 1e-6) -> np.ndarray:
    """Weights ``w`` of a bias-free logistic head on ``d = e_a - e_b`` (claim C9).

    ``target`` in ``[0, 1]``: hard labels or soft teacher labels. Binary cross-entropy
    with a soft target ``p`` equals the weighted sum of the losses of the labels 1
    (weight ``p``) and 0 (weight ``1 - p``), which is how it is fitted; ``C`` is
    scikit-learn's inverse L2 strength (objective ``||w||^2 / 2 + C * sum BCE``).
    Statement: {ref}`sec-ch05`.
    """
    from sklearn.linear_model import LogisticRegression

    C = positive(C, "C")
    d = np.asarray(ea, np.float64) - np.asarray(eb, np.float64)
    p = np.asarray(target, np.float64)
    if p.shape != (len(d),) or np.any((p < 0) | (p > 1)):
        raise ValueError(f"target: must be {len(d)} values in [0, 1]")
    x = np.concatenate([d, d])
    y = np.concatenate([np.ones(len(d)), np.zeros(len(d))])
    w = np.concatenate([p, 1 - p])
    keep = w > 0
    m = LogisticRegression(C=C, fit_intercept=False, max_iter=max_iter, tol=tol)
    m.fit(x[keep], y[keep], sample_weight=w[keep])
    return m.coef_[0]


def _correct(z, y) -> np.ndarray:
    return np.where(z == 0, 0.5, ((z > 0) == (y == 1)).astype(float))


def pair_tables(seeds, n_labels: int, C: float, sizes: dict, root=None,
                strong_gt: bool = False) -> dict:
    """Per-pair test correctness ``(S, n_test)`` of weak, ceiling and student.

    Also ``weak_ceiling`` (a MiniLM head on the true ``train_w2s`` labels) and
    ``strong_gt`` (if asked: an MPNet head on the teacher's own ground-truth pairs; needs
    MPNet embeddings of ``train_gt``), to separate the encoders from the label counts.
    """
    n_labels = positive_int(n_labels, "n_labels", max=sizes["train_gt"])
    out: dict = {}
    need = [(WEAK, k) for k in ("train_gt", "train_w2s", "test")] + [
        (STRONG, k) for k in ("train_w2s", "test") + (("train_gt",) if strong_gt else ())]
    rows = {(m, k): load_rows(m, k, sizes[k], root=root) for m, k in need}  # verified once
    for s in seeds:
        for k, v in _one_seed(int(s), n_labels, C, sizes, rows, strong_gt).items():
            out.setdefault(k, []).append(v)
    return {k: np.asarray(v) for k, v in out.items()}


def _one_seed(s: int, n_labels: int, C: float, sizes: dict, rows: dict,
              strong_gt: bool = False) -> dict:
    data = load_hh_helpful(sizes, seed=s)
    emb = {}
    for (m, k), (ch, rj) in rows.items():  # undo the seed's swap: label 1 = a is chosen
        a_chosen = (data[k].label == 1)[:, None]
        emb[(m, k)] = np.where(a_chosen, ch, rj), np.where(a_chosen, rj, ch)
    gt, w2s, y = data["train_gt"].label, data["train_w2s"].label, data["test"].label
    rng = np.random.default_rng([s, 0x7EAC])
    idx = np.sort(rng.choice(len(gt), size=n_labels, replace=False))

    def head(model, split, target, rows=slice(None)):
        a, b = emb[(model, split)]
        return fit_head(a[rows], b[rows], target, C)

    def acc(model, w):
        a, b = emb[(model, "test")]
        return _correct((a - b) @ w, y)

    w_weak = head(WEAK, "train_gt", gt[idx].astype(float), idx)
    a, b = emb[(WEAK, "train_w2s")]
    soft = 1.0 / (1.0 + np.exp(-((a - b) @ w_weak)))
    out = {"weak": acc(WEAK, w_weak),
           "ceiling": acc(STRONG, head(STRONG, "train_w2s", w2s.astype(float))),
           "student": acc(STRONG, head(STRONG, "train_w2s", soft)),
           "weak_ceiling": acc(WEAK, head(WEAK, "train_w2s", w2s.astype(float)))}
    if strong_gt:
        out["strong_gt"] = acc(STRONG, head(STRONG, "train_gt", gt[idx].astype(float), idx))
    return out


def gap_summary(tables: dict, level: float = 0.95) -> dict:
    """Mean accuracy of each model with its two-level interval, the paired differences
    ``gap`` (ceiling - weak) and ``encoders`` (ceiling - weak_ceiling), and PGR (Fieller;
    ``None`` when the weak and ceiling accuracies tie exactly)."""
    from ..intervals import difference_interval, mean_interval, pgr_interval

    rows = {}
    for k, t in tables.items():
        iv = mean_interval(t, level=level)
        rows[k] = {"acc": float(iv.estimate), "lo": float(iv.lo), "hi": float(iv.hi)}
    # paired on the same test pairs and seeds: the gap PGR divides by, and the part of
    # the ceiling due to the strong encoder (MPNet vs MiniLM heads on the same labels)
    for name, a, b in (("gap", "ceiling", "weak"), ("encoders", "ceiling", "weak_ceiling")):
        if a in tables and b in tables:
            iv = difference_interval(tables[a], tables[b], level=level)
            rows[name] = {"acc": float(iv.estimate), "lo": float(iv.lo), "hi": float(iv.hi)}
    try:
        pg = pgr_interval(tables["student"], tables["weak"], tables["ceiling"], level=level)
        rows["pgr"] = {"acc": float(pg.estimate), "lo": float(pg.lo), "hi": float(pg.hi)}
    except ValueError:  # ceiling and weak exactly tied: PGR undefined
        rows["pgr"] = {"acc": None, "lo": None, "hi": None}
    return rows
