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
           "paired_difference"]


def labels_by_seed(cfg: dict, seeds, data_dir=None) -> dict[int, np.ndarray]:
    """The test labels of each seed (the swap depends on the seed; the pairs do not)."""
    from .data import load_hh_helpful

    return {int(s): load_hh_helpful(cfg["sizes"], seed=int(s), data_dir=data_dir)["test"].label
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
