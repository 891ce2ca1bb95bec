"""Two-level intervals for the runs of a sweep (claim C9, Chapter 5).

Every run of :func:`~w2sg_utils.experiments.sweep.run_sweep` stores its test logits. From them
and the test labels of each seed, this module builds per-pair tables ``(S, n)`` (seeds x
test pairs; every seed evaluates the same test pairs) and gives every reported accuracy,
risk and PGR an interval that includes the sampling of the test pairs as well as the
seeds (:mod:`w2sg_utils.intervals`). Comparisons are paired: the two runs of a
difference share their seed, teacher and test pairs.

What the intervals are conditional on: the training pools (the first rows of
``train_gt`` and ``train_w2s``), the pretrained models and the hyperparameters.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..intervals import difference_interval, mean_interval, pgr_interval

__all__ = ["labels_by_seed", "labels_from_store", "pair_table", "interval_summary",
           "paired_difference", "ORDERINGS", "ORDERING_LEVEL", "ALTERNATIVES",
           "ordering_tables", "ordering_differences", "check_orderings", "ordering_power",
           "formatted", "ordering_logits", "committed_store"]


def labels_by_seed(cfg, seeds, data_dir=None) -> dict[int, np.ndarray]:
    """The test labels of each seed of configuration ``cfg`` (the swap depends on the
    seed; the pairs do not)."""
    from .data import load_hh_helpful

    sizes = cfg.sizes.to_dict()
    return {int(s): load_hh_helpful(sizes, seed=int(s), data_dir=data_dir)["test"].label
            for s in seeds}


def labels_from_store(store, df: pd.DataFrame, data_dir=None) -> dict[int, np.ndarray]:
    """Test labels of each seed of a HH-helpful sweep, from its stored runs alone.

    The swap of the test split depends only on the seed and the number of test pairs,
    read from the length of the first run's test logits.
    """
    from .data import load_hh_helpful

    out = {}
    for s, g in df.groupby("seed", sort=True):
        arrays = store.load_artifact(g["run_id"].iloc[0])
        if arrays is None or "z_test" not in arrays:
            raise ValueError(f"df: run {g['run_id'].iloc[0]} has no test logits in {store.root}")
        n = len(arrays["z_test"])
        out[int(s)] = load_hh_helpful({"test": n}, seed=int(s), data_dir=data_dir)["test"].label
    return out


def _per_pair(z, y, metric: str) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    if metric == "acc":  # 0/1 correctness, an exact tie counts one half (E.accuracy)
        return np.where(z == 0, 0.5, (z > 0) == (y == 1)).astype(float)
    if metric == "risk":  # test cross-entropy against the human label, nats
        return np.logaddexp(0.0, z) - y * z
    raise ValueError(f"metric: 'acc' or 'risk', got {metric!r}")


def pair_table(store, rows: pd.DataFrame, labels: dict, metric: str = "acc",
               key: str = "z_test") -> tuple[np.ndarray, list[int], int]:
    """Per-pair values ``(S, n)`` of the runs ``rows``, averaged over runs within a seed.

    Returns ``(table, seeds, n_nan)``: runs whose logits contain NaN are *not* used and
    are counted in ``n_nan``; a seed with no usable run is left out (and listed by its
    absence from ``seeds``).
    """
    out, used, n_nan = [], [], 0
    for s, g in rows.groupby("seed", sort=True):
        vals = []
        for rid in g["run_id"]:
            arrays = store.load_artifact(rid)
            if arrays is None:
                raise ValueError(f"rows: run {rid} has no valid artifact in {store.root}")
            z = arrays[key]
            if not np.all(np.isfinite(z)):
                n_nan += 1
                continue
            vals.append(_per_pair(z, labels[int(s)], metric))
        if vals:
            out.append(np.mean(vals, axis=0))
            used.append(int(s))
    return (np.array(out) if out else np.empty((0, 0))), used, n_nan


def _teacher_and_ceiling(df: pd.DataFrame, seed: int, labels_src: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    if not str(labels_src).startswith("teacher"):
        raise ValueError(f"labels: PGR needs a single teacher's labels, got {labels_src!r}")
    member = int(str(labels_src)[len("teacher"):])
    t = df[(df["stage"] == "teacher") & (df["member"] == member) & (df["seed"] == seed)]
    c = df[(df["stage"] == "ceiling") & (df["seed"] == seed)]
    return t, c


def interval_summary(df: pd.DataFrame, store, labels: dict, by, metrics=("acc", "risk"),
                     pgr: bool = False, all_runs: pd.DataFrame | None = None,
                     level: float = 0.95) -> pd.DataFrame:
    """One row per group: ``n`` runs, ``n_nan`` runs left out, and two-level intervals.

    ``metrics`` (``acc``, ``risk``) give ``<m>_mean``, ``_se``, ``_lo``, ``_hi``;
    ``pgr=True`` adds the PGR of the pooled accuracies with a Fieller interval, for
    student runs trained on one teacher's labels (the teacher run of the same member
    and seed, and the seed's ceiling, looked up in ``all_runs``, default ``df``; on the
    same test pairs).
    """
    all_runs = df if all_runs is None else all_runs
    by = [by] if isinstance(by, str) else list(by)
    rows = []
    for key, g in df.groupby(by, dropna=False, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(by, key)) | {"n": len(g)}
        n_nan = 0
        for m in metrics:
            tab, seeds, nn = pair_table(store, g, labels, m)
            n_nan = max(n_nan, nn)
            iv = mean_interval(tab, level) if len(seeds) else None
            row |= iv.as_dict(f"{m}_") if iv else {f"{m}_{k}": np.nan for k in ("mean", "se", "lo", "hi")}
        if pgr:
            row |= _pgr_row(all_runs, g, store, labels, level)
        row["n_nan"] = n_nan
        rows.append(row)
    return pd.DataFrame(rows)


def _pgr_row(df, g, store, labels, level) -> dict:
    s_tabs, w_tabs, c_tabs = [], [], []
    for s, gs in g.groupby("seed", sort=True):
        src = gs["labels"].unique()
        if len(src) != 1:
            raise ValueError(f"labels: one label source per seed for a PGR, got {list(src)}")
        t, c = _teacher_and_ceiling(df, int(s), src[0])
        parts = [pair_table(store, x, labels, "acc") for x in (gs, t, c)]
        if any(p[2] or not p[1] for p in parts):
            continue  # a NaN run: left out (counted by the accuracy table)
        for lst, p in zip((s_tabs, w_tabs, c_tabs), parts):
            lst.append(p[0][0])
    if not s_tabs:
        return {f"pgr_{k}": np.nan for k in ("mean", "se", "lo", "hi")}
    return pgr_interval(np.array(s_tabs), np.array(w_tabs), np.array(c_tabs), level).as_dict("pgr_")


def paired_difference(store, rows_a: pd.DataFrame, rows_b: pd.DataFrame, labels: dict,
                      metric: str = "acc", level: float = 0.95):
    """Interval for ``metric(a) - metric(b)``, paired on the same seeds and test pairs.

    Seeds where either side has no usable run are dropped from both sides.
    """
    ta, sa, _ = pair_table(store, rows_a, labels, metric)
    tb, sb, _ = pair_table(store, rows_b, labels, metric)
    common = sorted(set(sa) & set(sb))
    if not common:
        raise ValueError("rows_a, rows_b: no seed with a usable run on both sides")
    pick = lambda tab, ss: tab[[ss.index(s) for s in common]]  # noqa: E731
    return difference_interval(pick(ta, sa), pick(tb, sb), level)


# ---------------------------------------------------------------------------------------
# The pre-registered ordering checks of Chapter 5 and their measured power
# ---------------------------------------------------------------------------------------
ORDERINGS = {
    "ceiling above chance": ("ceiling", None),
    "teacher above chance": ("teacher", None),
    "ceiling above teacher": ("ceiling", "teacher"),
    "reverse BCE above BCE (L2 = 0)": ("reverse_bce", "bce"),
}
"""The orderings Chapter 5 asserts: name -> (run, run it beats, or ``None`` for 1/2)."""

ORDERING_LEVEL = 1 - 0.05 / len(ORDERINGS)
"""Level of each ordering's two-sided interval: Bonferroni over the chapter's four
orderings, so a true null (no ordering) passes one of them with probability at most
``0.05 / 8`` each (the lower end only), ``0.025`` over all four."""

ALTERNATIVES = {
    "sign flipped": lambda z, y, y_first: (-z, y),
    "first seed's labels": lambda z, y, y_first: (z, y_first),
    "swap ignored": lambda z, y, y_first: (z, np.ones_like(y)),
}
"""Plausible wrong implementations of the accuracies the orderings compare (Chapter 5's
power analysis): each maps ``(z, y, y_first)`` (a seed's test logits, its labels and
the first seed's labels) to the logits and labels that implementation would score:
the pair's logit computed as ``r(b) - r(a)``; every seed scored with the first seed's
labels (the per-seed swap of the pairs lost); the swap ignored (every label 1)."""


def ordering_tables(logits: dict, labels: dict, alternative: str | None = None) -> dict:
    """Per-pair correctness ``(S, n)`` of each run kind, as implemented or under one of
    :data:`ALTERNATIVES` (claim C9, {ref}`sec-ch05`).

    ``logits`` maps a run kind (``ceiling``, ``teacher``, ``bce``, ...) to ``{seed:
    z_test}``; ``labels`` maps each seed to its test labels (the first seed in sorted
    order is ``y_first``). An exact tie ``z = 0`` counts one half.
    """
    if alternative is not None and alternative not in ALTERNATIVES:
        raise ValueError(f"alternative: one of {sorted(ALTERNATIVES)}, got {alternative!r}")
    seeds = sorted(labels)
    y_first = np.asarray(labels[seeds[0]])
    out = {}
    for kind, by_seed in logits.items():
        rows = []
        for s in seeds:
            z, y = np.asarray(by_seed[s], dtype=np.float64), np.asarray(labels[s])
            if alternative is not None:
                z, y = ALTERNATIVES[alternative](z, y, y_first)
            rows.append(_per_pair(z, y, "acc"))
        out[kind] = np.array(rows)
    return out


def ordering_differences(tables: dict) -> dict:
    """Per-pair differences ``(S, n)`` of each of :data:`ORDERINGS` (C9,
    {ref}`sec-ch05-prereg`)."""
    out = {}
    for name, (a, b) in ORDERINGS.items():
        if a in tables and (b is None or b in tables):
            out[name] = tables[a] - (0.5 if b is None else tables[b])
    return out


def check_orderings(tables: dict, level: float = ORDERING_LEVEL) -> dict:
    """Two-level interval of each ordering's mean difference; an ordering *holds* when
    the interval's lower end is above zero (Chapter 5 asserts that; claim C9,
    {ref}`sec-ch05-prereg`)."""
    return {name: mean_interval(d, level) for name, d in ordering_differences(tables).items()}


def ordering_power(logits: dict, labels: dict, n_boot: int = 200, seed: int = 20261128,
                   level: float = ORDERING_LEVEL) -> pd.DataFrame:
    """Measured behaviour of :func:`check_orderings` on resamples of a sweep (C9).

    Each of ``n_boot`` replicates draws seeds and test pairs with replacement (the same
    draw for every run kind, keeping the pairing), then applies the check as implemented
    (``alternative = "none"``: the rate at which it passes) and under each of
    :data:`ALTERNATIVES` (the rate at which it fails, i.e. rejects that wrong
    implementation). Returns one row per (ordering, alternative) with ``rate``.

    Statement: {ref}`sec-ch05-prereg`.
    """
    if not isinstance(n_boot, int) or n_boot < 1:
        raise ValueError(f"n_boot: a positive integer, got {n_boot!r}")
    variants = {"none": ordering_tables(logits, labels)}
    variants |= {alt: ordering_tables(logits, labels, alt) for alt in ALTERNATIVES}
    diffs = {k: ordering_differences(t) for k, t in variants.items()}
    n_seeds, n_pairs = next(iter(variants["none"].values())).shape
    rng = np.random.default_rng(seed)
    hits: dict = {}
    for _ in range(n_boot):
        si = rng.integers(0, n_seeds, n_seeds)
        pi = rng.integers(0, n_pairs, n_pairs)
        for alt, by_name in diffs.items():
            for name, d in by_name.items():
                holds = mean_interval(d[np.ix_(si, pi)], level).lo > 0
                hits[name, alt] = hits.get((name, alt), 0) + (holds if alt == "none" else not holds)
    return pd.DataFrame([{"ordering": n, "alternative": a, "rate": h / n_boot}
                         for (n, a), h in hits.items()])


def formatted(table: pd.DataFrame, keys, metrics, digits: int = 3) -> pd.DataFrame:
    """A results table in a few columns for the book (C9, {ref}`sec-ch05`): the ``keys``
    columns as they are, then one column per metric ``m``, ``"mean [lo, hi]"`` from
    ``m_mean``, ``m_lo``, ``m_hi`` (only the mean where the table has no interval)."""
    keys = [keys] if isinstance(keys, str) else list(keys)
    missing = [c for c in keys + [f"{m}_mean" for m in metrics] if c not in table]
    if missing:
        raise ValueError(f"table: missing columns {missing}")
    f = f"{{:.{int(digits)}f}}"
    out = table[keys].copy()
    for k in keys:  # e.g. an L2 strength: 0.001, not 1.000e-03
        if pd.api.types.is_float_dtype(out[k]):
            out[k] = out[k].map("{:g}".format)
    for m in metrics:
        mean = table[f"{m}_mean"].map(f.format)
        if f"{m}_lo" in table and f"{m}_hi" in table:
            mean = mean + " [" + table[f"{m}_lo"].map(f.format) + ", " + table[
                f"{m}_hi"].map(f.format) + "]"
        out[m] = mean.to_numpy()
    return out.reset_index(drop=True)


def ordering_logits(df: pd.DataFrame, store, l2: float = 0.0) -> dict:
    """The test logits ``{kind: {seed: z_test}}`` that :data:`ORDERINGS` compare, from a
    sweep's runs (C9, {ref}`sec-ch05`): the ceiling, the teacher (member 0) and the BCE
    and reverse-BCE students on its labels at student L2 strength ``l2``."""
    pick = {
        "ceiling": df["stage"] == "ceiling",
        "teacher": (df["stage"] == "teacher") & (df["member"] == 0),
    }
    student = (df["stage"] == "student") & (df["labels"] == "teacher0") & np.isclose(
        df["l2"].astype(float), l2)
    for obj in ("bce", "reverse_bce"):
        pick[obj] = student & (df["objective"] == obj)
    out = {}
    for kind, mask in pick.items():
        rows = df[mask]
        if rows["seed"].duplicated().any():
            raise ValueError(f"df: more than one {kind} run per seed")
        if len(rows):
            out[kind] = {int(r.seed): store.load_artifact(r.run_id)["z_test"]
                         for r in rows.itertuples()}
    return out


def committed_store(name: str, start=None):
    """The run store of the committed sweep ``results/<name>`` (searched upwards from
    ``start`` like :func:`~w2sg_utils.experiments.store.committed_results`), or ``None``
    (C9, {ref}`sec-ch05`)."""
    from pathlib import Path

    from .store import RunStore, committed_results

    if committed_results(name, start) is None:
        return None
    here = Path(start or ".").resolve()
    root = next(d for d in (here, *here.parents) if (d / "results" / name).is_dir())
    return RunStore(root / "results" / name, create=False)
