"""Pre-registered regimes of the pretrained pair (claim C9, issue 18, Chapter 5).

The pair sweep of the preset ``hh-minilm-mpnet`` (a MiniLM-head teacher, MPNet-head
students) is run as two run stores, ``l2_default`` (the student's L2 at ``1e-3``, plus
the L2 sweep of BCE / reverse BCE) and ``l2_0`` (every objective without L2). A
*regime* is a directional statement about test accuracies: one or more paired
differences ``acc(a) - acc(b)`` in one store, all positive. Its check
(:func:`check_regimes`) is the lower end of the two-level interval (test pairs and
seeds, :func:`~w2sg_utils.intervals.mean_interval`) of each difference, at level
:data:`LEVEL` (Bonferroni over the :data:`REGIMES` considered), above zero; a regime of
several differences holds when each does (an intersection-union test, no further
correction).

Which regimes Chapter 5 asserts was chosen from development seeds only, before the
confirmatory seeds were run (``results/pair_c9/prereg.md``): those whose check, on
resamples of the development runs at the confirmatory design (:func:`regime_power`),
passes in at least 95% of the resamples and fails under each wrong alternative of
:data:`POWER_ALTERNATIVES` in at least 95%. Statement: {ref}`sec-ch05-pair`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..intervals import mean_interval
from . import run_intervals as RI
from .packed_logits import open_store

__all__ = ["STORES", "OBJECTIVES", "REGIMES", "LEVEL", "POWER_ALTERNATIVES",
           "pair_logits", "load_pair", "test_labels", "regime_tables", "regime_differences",
           "check_regimes", "regime_power", "chosen_regimes"]

STORES = ("l2_default", "l2_0")
"""The two run stores of a pair sweep (folders under one root)."""

OBJECTIVES = ("bce", "reverse_bce", "kl", "reverse_kl", "CACE_0.1", "Quan_CACE_5",
              "SL_a1_b0.1", "aux", "logconf", "product", "entropy", "window")
"""Every student objective of the preset ``hh-minilm-mpnet``."""

REGIMES = {
    "ceiling above teacher (L2 1e-3)": ("l2_default", (("ceiling", "teacher"),)),
    "ceiling above teacher (L2 0)": ("l2_0", (("ceiling", "teacher"),)),
    "reverse BCE above BCE (L2 0)": ("l2_0", (("reverse_bce@0", "bce@0"),)),
    "BCE: L2 1e-3 above L2 0": ("l2_default", (("bce@0.001", "bce@0"),)),
    "reverse BCE above teacher (L2 0)": ("l2_0", (("reverse_bce@0", "teacher"),)),
    "every student above teacher (L2 1e-3)": (
        "l2_default", tuple((f"{o}@0.001", "teacher") for o in OBJECTIVES)),
    "ceiling above every student (L2 1e-3)": (
        "l2_default", tuple(("ceiling", f"{o}@0.001") for o in OBJECTIVES)),
    "ceiling above every student (L2 0)": (
        "l2_0", tuple(("ceiling", f"{o}@0") for o in OBJECTIVES)),
}
"""The candidate regimes, fixed before the development runs were looked at: name ->
(store, ``((a, b), ...)``: every ``acc(a) - acc(b)`` positive). Run kinds: ``teacher``
(member 0), ``ceiling``, and ``<objective>@<student L2>`` (students on the teacher's
labels)."""

LEVEL = 1 - 0.05 / len(REGIMES)
"""Level of each two-sided interval: Bonferroni over the eight candidate regimes, so a
regime whose differences are all ``<= 0`` passes with probability at most
``0.05 / 16`` (the lower end only)."""

POWER_ALTERNATIVES = ("no difference", "order reversed") + tuple(RI.ALTERNATIVES)
"""Wrong alternatives the check must reject: the truth at the null's boundary (each
difference table centred at zero), the order reversed (``acc(b) - acc(a)``), and the
wrong implementations of Chapter 5 (:data:`~.run_intervals.ALTERNATIVES`: logit sign
flipped, every seed scored with the first seed's labels, the swap ignored)."""


def _kind(obj: str, l2: float) -> str:
    return f"{obj}@{float(l2):g}"


def pair_logits(df: pd.DataFrame, store) -> dict:
    """Test logits ``{kind: {seed: z_test}}`` of one pair run store (C9,
    {ref}`sec-ch05-pair`): teacher (member 0), ceiling, and every student on the
    teacher's labels at every L2 (``kind = "<objective>@<l2>"``)."""
    need = {"stage", "seed", "member", "objective", "l2", "labels", "run_id"}
    if missing := need - set(df.columns):
        raise ValueError(f"df: missing columns {sorted(missing)}")
    rows = {"teacher": df[(df["stage"] == "teacher") & (df["member"] == 0)],
            "ceiling": df[df["stage"] == "ceiling"]}
    stu = df[(df["stage"] == "student") & (df["labels"] == "teacher0")]
    for (obj, l2), g in stu.groupby(["objective", "l2"]):
        rows[_kind(obj, l2)] = g
    out = {}
    for kind, g in rows.items():
        if g["seed"].duplicated().any():
            raise ValueError(f"df: more than one {kind} run per seed")
        out[kind] = {int(r.seed): store.load_artifact(r.run_id)["z_test"]
                     for r in g.itertuples()}
    return out


def load_pair(root) -> tuple[dict, dict]:
    """``(logits, labels)``, each ``{store: ...}``, of the pair sweep under ``root``
    (folders :data:`STORES`, each a run store or its packed signs; C9,
    {ref}`sec-ch05-pair`). The logits of a packed store are their signs."""
    from .records import TEXT_COLUMNS

    logits = {}
    for name in STORES:
        path = Path(root) / name
        if not (path / "results.csv").is_file():
            raise ValueError(f"root: no run store {path}")
        st = open_store(path)
        df = pd.read_csv(st.csv, dtype=TEXT_COLUMNS)
        logits[name] = pair_logits(df, st)
    shapes = {name: sorted((s, len(z)) for s, z in lg["teacher"].items())
              for name, lg in logits.items()}
    if len({tuple(v) for v in shapes.values()}) != 1:
        raise ValueError("root: the stores have different seeds or test sizes")
    y = test_labels(dict(shapes[STORES[0]]))
    return logits, {name: y for name in STORES}


def test_labels(sizes: dict) -> dict:
    """``{seed: test labels}`` for ``sizes = {seed: n test pairs}``: the shipped test
    split read once and swapped per seed as :func:`~.data.load_hh_helpful` does (equal
    to :func:`~.run_intervals.labels_from_store`, faster; C9, {ref}`sec-ch05-pair`)."""
    from .data import SPLITS, load_pairs, make_pairwise

    rows = load_pairs("test")
    k = SPLITS.index("test")
    return {int(s): make_pairwise(rows[:n], seed=int(s) * 3 + k).label
            for s, n in sizes.items()}


def regime_tables(logits: dict, labels: dict, alternative: str | None = None) -> dict:
    """Per-pair correctness ``{store: {kind: (S, n)}}``, as implemented or under one of
    Chapter 5's wrong implementations (:func:`~.run_intervals.ordering_tables`; C9,
    {ref}`sec-ch05-pair`)."""
    return {name: RI.ordering_tables(logits[name], labels[name], alternative)
            for name in logits}


def regime_differences(tables: dict) -> dict:
    """``{regime: [difference tables (S, n)]}`` of the :data:`REGIMES` whose runs are
    present (C9, {ref}`sec-ch05-pair`)."""
    out = {}
    for name, (store, pairs) in REGIMES.items():
        tab = tables.get(store, {})
        if all(a in tab and b in tab for a, b in pairs):
            out[name] = [tab[a] - tab[b] for a, b in pairs]
    return out


def _weakest(diffs, level):
    ivs = [mean_interval(d, level) for d in diffs]
    return min(ivs, key=lambda iv: iv.lo)


def check_regimes(tables: dict, level: float = LEVEL) -> dict:
    """``{regime: interval}``: the two-level interval of the regime's difference (for a
    regime of several, the one with the lowest lower end); the regime *holds* when
    ``lo > 0`` (C9, {ref}`sec-ch05-pair`)."""
    return {name: _weakest(d, level) for name, d in regime_differences(tables).items()}


def regime_power(logits: dict, labels: dict, n_seeds: int, n_boot: int = 200,
                 seed: int = 20261128, level: float = LEVEL,
                 regimes=None) -> pd.DataFrame:
    """Behaviour of :func:`check_regimes` at a design of ``n_seeds`` seeds, by resampling
    a sweep (the development runs; C9, {ref}`sec-ch05-pair`).

    Each of ``n_boot`` replicates draws ``n_seeds`` seeds with replacement from the
    sweep's seeds and its test pairs with replacement (one draw for every run of both
    stores, keeping the pairing), then applies the check as implemented (``none``: the
    rate at which it passes) and under each of :data:`POWER_ALTERNATIVES` (the rate at
    which it fails). Returns one row per (regime, alternative) with ``rate``; only the
    regimes named in ``regimes`` (default: all), with the same draws either way.
    """
    if not isinstance(n_boot, int) or n_boot < 1:
        raise ValueError(f"n_boot: a positive integer, got {n_boot!r}")
    if not isinstance(n_seeds, int) or n_seeds < 2:
        raise ValueError(f"n_seeds: an integer >= 2, got {n_seeds!r}")
    base = regime_differences(regime_tables(logits, labels))
    if regimes is not None:
        if unknown := set(regimes) - set(base):
            raise ValueError(f"regimes: not in this sweep's REGIMES: {sorted(unknown)}")
        base = {k: v for k, v in base.items() if k in regimes}
    variants = {"none": base,
                "no difference": {k: [d - d.mean() for d in v] for k, v in base.items()},
                "order reversed": {k: [-d for d in v] for k, v in base.items()}}
    for alt in RI.ALTERNATIVES:
        wrong = regime_differences(regime_tables(logits, labels, alt))
        variants[alt] = {k: v for k, v in wrong.items() if k in base}
    S, n = next(iter(base.values()))[0].shape
    rng = np.random.default_rng(seed)
    hits = {(r, a): 0 for a in variants for r in base}
    for _ in range(n_boot):
        ix = np.ix_(rng.integers(0, S, n_seeds), rng.integers(0, n, n))
        for alt, by_name in variants.items():
            for name, diffs in by_name.items():
                holds = all(mean_interval(d[ix], level).lo > 0 for d in diffs)
                hits[name, alt] += holds if alt == "none" else not holds
    return pd.DataFrame([{"regime": r, "alternative": a, "rate": h / n_boot}
                         for (r, a), h in hits.items()])


def chosen_regimes(power: pd.DataFrame, min_power: float = 0.95) -> list[str]:
    """The regimes whose check passes as implemented and rejects every alternative in
    at least ``min_power`` of the resamples (the pre-registration rule; C9,
    {ref}`sec-ch05-pair`)."""
    p = power.pivot_table(index="regime", columns="alternative", values="rate")
    need = {"none", *POWER_ALTERNATIVES}
    if missing := need - set(p.columns):
        raise ValueError(f"power: missing alternatives {sorted(missing)}")
    return [r for r in REGIMES if r in p.index and (p.loc[r, list(need)] >= min_power).all()]
