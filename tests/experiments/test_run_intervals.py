"""Tests of w2sg_utils.run_intervals: per-pair tables from a run store, NaN runs counted,
PGR and paired differences on the same test pairs (claim C9)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from w2sg_utils import intervals as I
from w2sg_utils.experiments import RunStore
from w2sg_utils.experiments import run_intervals as RI


@pytest.fixture
def store(tmp_path):
    """Three seeds; per seed a teacher, a ceiling and two students (one NaN run in seed 2)."""
    rng = np.random.default_rng(0)
    n = 60
    st = RunStore(tmp_path)
    labels, rows = {}, []
    ease = rng.normal(0, 1, n)
    for s in (0, 1, 2):
        y = (rng.random(n) < 0.5).astype(int)
        labels[s] = y
        sign = np.where(y == 1, 1.0, -1.0)
        for stage, obj, skill, member in [("teacher", "", 0.2, 0), ("ceiling", "", 0.9, -1),
                                          ("student", "bce", 0.5, -1), ("student", "reverse_bce", 0.6, -1)]:
            z = sign * (skill + ease) + rng.normal(0, 1, n)
            if s == 2 and obj == "reverse_bce":
                z[3] = np.nan
            rid = f"{stage}{obj}{s}"
            st.save_artifact(rid, z_test=z)
            rows.append({"run_id": rid, "stage": stage, "seed": s, "objective": obj,
                         "labels": "teacher0" if stage == "student" else "", "member": member})
    return st, pd.DataFrame(rows), labels


def _plain(store, df, labels, stage, obj=""):
    out = []
    for s in sorted(labels):
        rid = df[(df["stage"] == stage) & (df["objective"] == obj) & (df["seed"] == s)]["run_id"].iloc[0]
        z, y = store.load_artifact(rid)["z_test"], labels[s]
        out.append([0.5 if z[i] == 0 else float((z[i] > 0) == (y[i] == 1)) for i in range(len(y))])
    return np.array(out)


def test_tables_intervals_and_pgr_against_plain_loops(store):
    st, df, labels = store
    c_s, c_w, c_c = (_plain(st, df, labels, *a) for a in (("student", "bce"), ("teacher",), ("ceiling",)))
    tab, seeds, n_nan = RI.pair_table(st, df[(df["stage"] == "student") & (df["objective"] == "bce")], labels)
    np.testing.assert_array_equal(tab, c_s)
    assert seeds == [0, 1, 2] and n_nan == 0
    summ = RI.interval_summary(df[df["stage"] == "student"], st, labels, "objective", pgr=True,
                                all_runs=df)
    bce = summ.set_index("objective").loc["bce"]
    assert bce["acc_mean"] == pytest.approx(c_s.mean())
    assert bce["acc_se"] == pytest.approx(I.mean_interval(c_s).se)
    assert bce["pgr_mean"] == pytest.approx((c_s.mean() - c_w.mean()) / (c_c.mean() - c_w.mean()))
    y = labels[0]
    z = st.load_artifact("studentbce0")["z_test"]
    ce = -np.mean(y * np.log(1 / (1 + np.exp(-z))) + (1 - y) * np.log(1 - 1 / (1 + np.exp(-z))))
    r_tab, _, _ = RI.pair_table(st, df[df["run_id"] == "studentbce0"], labels, "risk")
    assert r_tab.mean() == pytest.approx(ce)


def test_nan_runs_are_counted_not_silently_dropped(store):
    st, df, labels = store
    summ = RI.interval_summary(df[df["stage"] == "student"], st, labels, "objective", pgr=True,
                                all_runs=df)
    rce = summ.set_index("objective").loc["reverse_bce"]
    assert rce["n"] == 3 and rce["n_nan"] == 1
    ok = _plain(st, df[df["seed"] < 2], {s: labels[s] for s in (0, 1)}, "student", "reverse_bce")
    assert rce["acc_mean"] == pytest.approx(ok.mean())
    assert summ.set_index("objective").loc["bce", "n_nan"] == 0


def test_paired_difference_uses_common_seeds(store):
    st, df, labels = store
    a = df[(df["objective"] == "reverse_bce")]
    b = df[(df["objective"] == "bce")]
    d = RI.paired_difference(st, a, b, labels)
    ref = _plain(st, df, labels, "student", "reverse_bce")[:2] - _plain(st, df, labels, "student", "bce")[:2]
    assert d.estimate == pytest.approx(ref.mean()) and d.n_seeds == 2
    assert d.se == pytest.approx(I.mean_interval(ref).se)


def test_bad_metric_and_missing_artifact(store):
    st, df, labels = store
    with pytest.raises(ValueError, match="metric"):
        RI.pair_table(st, df.iloc[:1], labels, "auc")
    bad = df.iloc[:1].assign(run_id="nope")
    with pytest.raises(ValueError, match="rows"):
        RI.pair_table(st, bad, labels)


def test_summarize_counts_nan_runs():
    from w2sg_utils.experiments import summarize

    df = pd.DataFrame({"g": ["a"] * 4 + ["b"] * 2, "pgr": [0.5, np.nan, 0.7, np.nan, 0.1, 0.3]})
    s = summarize(df, "g", ["pgr"]).set_index("g")
    assert s.loc["a", "n"] == 4 and s.loc["a", "pgr_nan"] == 2 and s.loc["a", "pgr_n"] == 2
    assert s.loc["a", "pgr_mean"] == pytest.approx(0.6) and s.loc["b", "pgr_nan"] == 0


def test_labels_from_store_match_the_data(tmp_path):
    from w2sg_utils.experiments.data import load_hh_helpful

    st = RunStore(tmp_path)
    st.save_artifact("r4", z_test=np.zeros(30))
    st.save_artifact("r5", z_test=np.zeros(30))
    df = pd.DataFrame({"run_id": ["r4", "r5"], "seed": [4, 5]})
    lab = RI.labels_from_store(st, df)
    for s in (4, 5):
        np.testing.assert_array_equal(lab[s], load_hh_helpful({"test": 30}, seed=s)["test"].label)
    assert not np.array_equal(lab[4], lab[5])


def test_exact_ties_count_one_half(tmp_path):
    """A logit exactly 0 is a tie: one half correct, whatever the label (as
    ``E.accuracy``); the table and the summary's mean say so, against a plain loop."""
    st = RunStore(tmp_path)
    z = np.array([0.0, 0.0, 2.0, -1.0, 0.0, 3.0])
    y = np.array([1, 0, 1, 1, 1, 0])
    st.save_artifact("t0", z_test=z)
    df = pd.DataFrame([{"run_id": "t0", "stage": "student", "seed": 0, "objective": "bce"}])
    tab, _, _ = RI.pair_table(st, df, {0: y})
    np.testing.assert_array_equal(tab[0], [0.5, 0.5, 1.0, 0.0, 0.5, 0.0])
    summ = RI.interval_summary(df, st, {0: y}, "objective", metrics=("acc",))
    assert summ.loc[0, "acc_mean"] == pytest.approx(2.5 / 6)


def test_summary_intervals_have_the_level_asked_for(store):
    """``interval_summary(level=0.8)`` gives the two-level interval at level 0.8, not at
    the default 0.95 (the same table's :func:`~w2sg_utils.intervals.mean_interval`)."""
    st, df, labels = store
    c_s = _plain(st, df, labels, "student", "bce")
    rows = df[(df["stage"] == "student") & (df["objective"] == "bce")]
    summ = RI.interval_summary(rows, st, labels, "objective", level=0.8)
    ref = I.mean_interval(c_s, 0.8)
    assert summ.loc[0, "acc_lo"] == pytest.approx(ref.lo, rel=1e-12)
    assert summ.loc[0, "acc_hi"] == pytest.approx(ref.hi, rel=1e-12)
    assert ref.hi - ref.lo < I.mean_interval(c_s).hi - I.mean_interval(c_s).lo


def test_orderings_against_chance_and_the_bonferroni_level():
    """Chapter 5's orderings: a run above chance is its correctness minus 1/2, a run
    above another is the paired difference; each interval has level ``1 - 0.05 / 4``
    (Bonferroni over the four orderings asserted), checked on hand-made tables."""
    rng = np.random.default_rng(3)
    tables = {k: rng.integers(0, 2, (3, 50)).astype(float)
              for k in ("ceiling", "teacher", "bce", "reverse_bce")}
    d = RI.ordering_differences(tables)
    assert len(d) == 4 == len(RI.ORDERINGS)
    np.testing.assert_array_equal(d["ceiling above chance"], tables["ceiling"] - 0.5)
    np.testing.assert_array_equal(d["teacher above chance"], tables["teacher"] - 0.5)
    np.testing.assert_array_equal(d["ceiling above teacher"],
                                  tables["ceiling"] - tables["teacher"])
    np.testing.assert_array_equal(d["reverse BCE above BCE (L2 = 0)"],
                                  tables["reverse_bce"] - tables["bce"])
    assert RI.ORDERING_LEVEL == pytest.approx(0.9875, abs=1e-15)
    for name, iv in RI.check_orderings(tables).items():
        ref = I.mean_interval(d[name], 0.9875)
        assert (iv.lo, iv.hi) == pytest.approx((ref.lo, ref.hi), rel=1e-12), name
