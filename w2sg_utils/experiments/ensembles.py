"""Ensembles of weak teachers and their students on real data (Chapter 6; claims C3, C4, C9).

For each seed, ``K`` weak teachers are trained on resampled ground-truth subsets of
``train_gt`` (:func:`ensemble_draws`: ``"disjoint"`` draws by default, ``"bootstrap"``
optionally), one strong student per teacher and objective is trained on that teacher's
soft labels on ``train_w2s``, and a ceiling on the true labels of ``train_w2s``.
:func:`run_ensemble` returns their logits on ``train_w2s`` and ``test``; the terms of
the misfit theorem are computed from them by :mod:`w2sg_utils.ensemble_terms`.

Batched where the model allows it, so that ``K = 16`` teachers cost little more than one:

- TF-IDF teachers (:func:`tfidf_teacher_logits`): the texts are tokenised and counted
  once; each teacher's vocabulary, IDF weights and features are then cut from the shared
  count matrix exactly as :class:`~w2sg_utils.experiments.models.TfidfTeacher` computes them on its
  own texts (same vocabulary rule, same feature order; tested to rounding).
- Linear heads on frozen embeddings (:func:`train_heads`): ``K`` heads trained at once as
  one ``(K, d)`` weight matrix, each with its own loss and penalty; Adam is elementwise,
  so this is ``K`` runs of :func:`~w2sg_utils.experiments.training.train_head` with the same
  minibatch order (tested). Objectives with state (a batch quantile, or ``Quan_CACE_k``'s
  threshold fitted to the training labels) get one objective object per head.
- Causal-LM presets (GPU): the same function loops over members with the Chapter 5
  training loop.

Runs are cached in a :class:`~w2sg_utils.experiments.store.RunStore` (validated artifacts,
keyed by a hash of the configuration, spec and data), so a re-run trains nothing.
"""

from __future__ import annotations

import math

import numpy as np

from .._common import non_negative, positive, positive_int
from . import stages as S
from .config import validate_config
from .models import sigmoid
from .plan import run_id, spec_seed
from .store import RunStore

__all__ = ["ensemble_draws", "tfidf_teacher_logits", "train_heads", "run_ensemble", "seed_tables",
           "interval_table"]

SCHEMES = ("disjoint", "bootstrap")


def ensemble_draws(labels, n_labels: int, K: int, seed: int, scheme: str = "disjoint") -> np.ndarray:
    """Row indices ``(K, n_labels)`` of the ``K`` teachers' training sets in the pool.

    ``"disjoint"``: a seeded permutation of the pool cut into ``K`` blocks, so the
    teachers are trained on disjoint samples, i.e. independent draws of the teacher
    (the pool is an i.i.d. sample of the population); needs ``K * n_labels`` pool rows.
    ``"bootstrap"``: ``K`` samples with replacement from the whole pool (independent only
    given the pool, and each holds about 63% distinct pairs). Every draw must hold both
    classes; a disjoint permutation or bootstrap sample that does not is redrawn.
    """
    labels = np.asarray(labels)
    positive_int(n_labels, "n_labels")
    positive_int(K, "K")
    if scheme not in SCHEMES:
        raise ValueError(f"scheme: one of {SCHEMES}, got {scheme!r}")
    n_pool = len(labels)
    if scheme == "disjoint" and K * n_labels > n_pool:
        raise ValueError(f"n_labels: {K} disjoint teachers of {n_labels} labels need "
                         f"{K * n_labels} pool pairs, the pool has {n_pool}")
    if scheme == "bootstrap" and n_labels > n_pool:
        raise ValueError(f"n_labels: {n_labels} exceeds the pool of {n_pool}")
    rng = np.random.default_rng([int(seed), 0xE05E])
    for _ in range(1000):
        if scheme == "disjoint":
            idx = rng.permutation(n_pool)[: K * n_labels].reshape(K, n_labels)
        else:
            idx = rng.integers(0, n_pool, (K, n_labels))
        if all(len(np.unique(labels[row])) == 2 for row in idx):
            return idx
    raise ValueError(f"n_labels: {n_labels} labels per teacher never held both classes")


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
        gen = np.random.default_rng([seed, 77])
        total, step = epochs * math.ceil(n / batch_size), 0
        for _ in range(epochs):
            perm = torch.from_numpy(gen.permutation(n))
            for s in range(0, n, batch_size):
                idx = perm[s: s + batch_size]
                if len(idx) == 1 and n > 1:
                    continue
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
                step += 1
    return W.detach().double().numpy()


# --------------------------------------------------------------------- the runner

def _teachers(bk, draws) -> tuple[np.ndarray, np.ndarray]:
    """Logits ``(K, n)`` of the ensemble's teachers on train_w2s and test."""
    cfg, t = bk.cfg, bk.cfg["teacher"]
    gt, w2s, test = bk.data["train_gt"], bk.data["train_w2s"], bk.data["test"]
    if t["kind"] == "tfidf":
        out = tfidf_teacher_logits(gt, draws, {"w2s": w2s, "test": test}, C=t["C"],
                                   ngram_max=t["ngram_max"])
        return out["w2s"], out["test"]
    if t["kind"] == "encoder":
        ecfg = {"encoder": t.get("encoder", cfg["strong"]["encoder"]),
                "max_length": cfg["strong"]["max_length"], "num_layers": t["num_layers"]}
        ga, gb = bk.embeddings("train_gt", ecfg)
        st = cfg["strong"]
        W = np.concatenate([
            train_heads(ga[idx], gb[idx], gt.label[idx][None].astype(float), "bce", l2=t["l2"],
                        epochs=st["epochs"], lr=st["lr"], batch_size=st["batch_size"],
                        seed=1000 * bk.seed + k)
            for k, idx in enumerate(draws)])
        return _head_logits(bk, W, "train_w2s", ecfg), _head_logits(bk, W, "test", ecfg)
    zs = []
    for k, idx in enumerate(draws):  # causal LM: one member at a time
        seed = 1000 * bk.seed + k
        model, tok = S._load_lm(t["model"], bool(t.get("gradient_checkpointing")), seed=seed)
        sub = gt.subset(idx)
        S._train_lm(model, tok, sub, sub.label.astype(float), "bce", t, cfg, bk, seed=seed)
        zs.append((S._predict_lm(model, tok, w2s, t, cfg, bk), S._predict_lm(model, tok, test, t, cfg, bk)))
    return np.array([a for a, _ in zs]), np.array([b for _, b in zs])


def _head_logits(bk, W, split, ecfg=None) -> np.ndarray:
    ea, eb = bk.embeddings(split, ecfg)
    return (np.asarray(ea, np.float64) @ W.T - np.asarray(eb, np.float64) @ W.T).T


def _students(bk, targets, objective, l2, seed) -> tuple[np.ndarray, np.ndarray]:
    """Logits ``(K, n)`` on train_w2s and test of students trained on ``targets (K, n)``."""
    cfg, st = bk.cfg, bk.cfg["strong"]
    if cfg["backend"] == "embedding" and st["kind"] == "linear":
        ea, eb = bk.embeddings("train_w2s")
        W = train_heads(ea, eb, targets, objective, l2=l2, epochs=st["epochs"], lr=st["lr"],
                        batch_size=st["batch_size"], seed=seed)
        return _head_logits(bk, W, "train_w2s"), _head_logits(bk, W, "test")
    if cfg["backend"] == "embedding":
        raise ValueError("strong.kind: the ensemble runner batches linear heads only")
    zs = []
    for k, y in enumerate(targets):
        model, tok = S._load_lm(st["model"], bool(st.get("gradient_checkpointing")), seed=seed + k)
        S._train_lm(model, tok, bk.data["train_w2s"], y, objective, st, cfg, bk, seed=seed + k)
        zs.append((S._predict_lm(model, tok, bk.data["train_w2s"], st, cfg, bk),
                   S._predict_lm(model, tok, bk.data["test"], st, cfg, bk)))
    return np.array([a for a, _ in zs]), np.array([b for _, b in zs])


def run_ensemble(cfg: dict, seed: int, K: int, runs, out_dir, scheme: str = "disjoint",
                 data_dir=None, progress: bool = False) -> dict:
    """Teachers, ceiling and students of one seed for Chapter 6 (claims C3, C4, C9).

    ``runs`` lists the student settings ``(objective, l2)``. Returns a dict with the
    labels ``y_w2s``, ``y_test``, the draws, and ``(train_w2s, test)`` logit pairs:
    ``teachers`` (``(K, n)`` each), ``ceiling`` (``(1, n)``) and ``students[(objective,
    l2)]`` (``(K, n)``, student ``k`` trained on teacher ``k``'s soft labels). Every
    stage is cached in ``out_dir`` (a run store) and reused when its artifact is valid.

    Statement: {ref}`sec-ch06`.
    """
    cfg = validate_config(cfg)
    positive_int(K, "K")
    if K < 2:
        raise ValueError(f"K: need at least 2 teachers, got {K}")
    runs = [(str(o), float(l2)) for o, l2 in runs]
    for _, l2 in runs:
        non_negative(l2, "runs (l2)")
    store = RunStore(out_dir)
    bk = S.Backend(cfg, seed, data_dir, progress)
    draws = ensemble_draws(bk.data["train_gt"].label, cfg["teacher"]["n_labels"], K, seed, scheme)

    def cached(spec, compute):
        rid = run_id(cfg, spec, bk.data_hash)
        arrays = store.load_artifact(rid)
        if arrays is None:
            a, b = compute()
            arrays = {"w2s": np.asarray(a), "test": np.asarray(b)}
            store.save_artifact(rid, **arrays)
        return arrays["w2s"], arrays["test"]

    base = {"seed": seed, "K": K, "scheme": scheme}
    out = {"y_w2s": bk.data["train_w2s"].label, "y_test": bk.data["test"].label, "draws": draws}
    out["teachers"] = cached({"stage": "ensemble_teachers", **base}, lambda: _teachers(bk, draws))
    y_true = bk.data["train_w2s"].label[None].astype(float)
    l2_c = cfg["strong"]["l2"]
    out["ceiling"] = cached({"stage": "ensemble_ceiling", "seed": seed, "l2": l2_c},
                            lambda: _students(bk, y_true, "bce", l2_c, 7 + seed))
    targets = sigmoid(out["teachers"][0])
    out["students"] = {}
    for obj, l2 in runs:
        spec = {"stage": "ensemble_students", **base, "objective": obj, "l2": l2}
        out["students"][(obj, l2)] = cached(
            spec, lambda o=obj, r=l2, s=spec: _students(bk, targets, o, r, spec_seed(s)))
    return out


# ------------------------------------------------------------------- summaries

def seed_tables(results: list[dict], runs) -> dict:
    """Per-seed, per-pair tables ``(S, n)`` of every term, averaged over the members (Chapter 6).

    ``results``: :func:`run_ensemble` outputs, one per seed. For each student setting
    ``(objective, l2)`` returns a dict of tables: the terms of
    :func:`~w2sg_utils.ensemble_terms.misfit_terms` on test (``eps`` with the
    leave-one-out proxy), ``coupling``, and ``misfit_train`` (``KL(p_s || p_w)`` on the
    student's own training inputs, ``(S, n_w2s)``). Each table feeds
    :func:`~w2sg_utils.intervals.mean_interval` (test pairs x seeds).
    """
    from ..ensemble_terms import binary_kl_logits, coupling, misfit_terms

    out = {}
    for run in runs:
        run = (str(run[0]), float(run[1]))
        rows: dict[str, list] = {}
        for r in results:
            zs_w2s, zs_test = r["students"][run]
            zw_w2s, zw_test = r["teachers"]
            t = {k: v.mean(0) for k, v in misfit_terms(r["y_test"], zw_test, zs_test).items()}
            t["coupling"] = coupling(zw_test, zs_test)
            t["misfit_train"] = binary_kl_logits(zs_w2s, zw_w2s).mean(0)
            for k, v in t.items():
                rows.setdefault(k, []).append(v)
        out[run] = {k: np.array(v) for k, v in rows.items()}
    return out


def interval_table(tables: dict, terms, level: float = 0.95):
    """One row per key of ``tables`` with ``<term>_mean``, ``_se``, ``_lo``, ``_hi``.

    Intervals are two-level (test pairs and seeds, :func:`~w2sg_utils.intervals.mean_interval`),
    conditional on the training pools, the pretrained models and the hyperparameters.
    """
    import pandas as pd

    from ..intervals import mean_interval

    rows = []
    for key, tab in tables.items():
        row = dict(zip(("objective", "l2"), key)) if isinstance(key, tuple) else {"key": key}
        for term in terms:
            row |= mean_interval(tab[term], level).as_dict(f"{term}_")
        rows.append(row)
    return pd.DataFrame(rows)
