"""Power of Chapter 5's pre-registered ordering checks (claim C9, issue 17).

The chapter asserts an ordering (ceiling above chance, teacher above chance, ceiling
above teacher, reverse BCE above BCE without L2) only where the committed development
runs (``results/ch05_prereg_*``, seeds 1000-1004) show that its check, the lower end of
the two-level interval at the Bonferroni level, passes and rejects each named wrong
implementation (``run_intervals.ALTERNATIVES``) in at least 95% of resamples. These
tests run the chapter's own check code (``run_intervals.ordering_power``, which calls
``check_orderings``) on the development runs at the chapter's default parameters
(``n_boot = 200``, seed 20261128), and check the pieces against plain computations.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from w2sg_utils.experiments import committed_results
from w2sg_utils.experiments import run_intervals as RI
from w2sg_utils.intervals import mean_interval

DEFAULT = "ch05_prereg_default"  # the chapter's default sizes: 400 / 600 / 2000 pairs


def _dev(name):
    store = RI.committed_store(name)
    df = committed_results(name)
    assert store is not None and df is not None, f"results/{name} is not committed"
    return RI.ordering_logits(df, store), RI.labels_from_store(store, df)


@pytest.fixture(scope="module")
def power_default():
    z, y = _dev(DEFAULT)
    return RI.ordering_power(z, y, n_boot=200, seed=20261128)


def test_development_runs_are_on_their_own_seeds():
    for name in ("ch05_prereg_default", "ch05_prereg_labels50", "ch05_prereg_small"):
        df = committed_results(name)
        assert df is not None, name
        assert sorted(df["seed"].unique()) == [1000, 1001, 1002, 1003, 1004]


def test_committed_power_is_what_the_check_code_gives(power_default):
    """``results/ch05_prereg_default/power.csv``, rendered by the chapter, is the output
    of the chapter's check code at its settings (``n_boot = 200``, seed 20261128)."""
    committed = pd.read_csv(RI.committed_store(DEFAULT).root / "power.csv")
    pd.testing.assert_frame_equal(committed, power_default, check_exact=False, atol=1e-12)


def test_power_at_the_chapter_defaults(power_default):
    """Each ordering the chapter asserts at its defaults passes as implemented and
    rejects every wrong alternative in at least 95% of the resamples."""
    p = power_default.pivot_table(index="ordering", columns="alternative", values="rate")
    assert set(p.columns) == {"none"} | set(RI.ALTERNATIVES)
    asserted = [o for o in p.index if (p.loc[o] >= 0.95).all()]
    assert "ceiling above teacher" in asserted, p
    assert "ceiling above chance" in asserted, p
    for o in asserted:
        for alt in RI.ALTERNATIVES:
            assert p.loc[o, alt] >= 0.95, (o, alt)


def test_sign_flip_is_always_rejected(power_default):
    """An ordering that holds cannot also hold with the logit's sign flipped: the
    check rejects that alternative in every resample where it passes as implemented."""
    p = power_default.pivot_table(index="ordering", columns="alternative", values="rate")
    flip = "sign flipped"
    assert (p[flip] >= p["none"]).all()


def _toy(n_seeds=5, n=400, seed=3):
    rng = np.random.default_rng(seed)
    labels = {s: rng.integers(0, 2, n) for s in range(10, 10 + n_seeds)}
    sign = {s: 2 * y - 1 for s, y in labels.items()}
    noise = lambda: rng.normal(0, 1, n)  # noqa: E731
    logits = {
        "ceiling": {s: 1.2 * sign[s] + 1.5 * noise() for s in labels},
        "teacher": {s: 0.5 * sign[s] + 1.5 * noise() for s in labels},
    }
    return logits, labels


def test_tables_and_alternatives_against_plain_formulas():
    logits, labels = _toy()
    first = labels[min(labels)]
    for alt, (zf, yf) in {
        None: (lambda z: z, lambda s: labels[s]),
        "sign flipped": (lambda z: -z, lambda s: labels[s]),
        "first seed's labels": (lambda z: z, lambda s: first),
        "swap ignored": (lambda z: z, lambda s: np.ones_like(first)),
    }.items():
        tabs = RI.ordering_tables(logits, labels, alt)
        for kind, by_seed in logits.items():
            plain = np.array([[0.5 if v == 0 else float((v > 0) == (t == 1))
                               for v, t in zip(zf(by_seed[s]), yf(s))]
                              for s in sorted(labels)])
            np.testing.assert_array_equal(tabs[kind], plain)


def test_check_orderings_is_the_bonferroni_interval_of_the_difference():
    logits, labels = _toy()
    tabs = RI.ordering_tables(logits, labels)
    got = RI.check_orderings(tabs)
    assert set(got) == {"ceiling above chance", "teacher above chance",
                        "ceiling above teacher"}
    d = tabs["ceiling"] - tabs["teacher"]
    ref = mean_interval(d, 1 - 0.05 / 4)
    assert got["ceiling above teacher"].lo == pytest.approx(ref.lo, rel=1e-12)
    assert got["ceiling above teacher"].level == pytest.approx(1 - 0.0125)
    chance = mean_interval(tabs["teacher"] - 0.5, 1 - 0.05 / 4)
    assert got["teacher above chance"].estimate == pytest.approx(chance.estimate)


def test_power_on_a_planted_ordering_and_on_none():
    """A large planted margin is found with power near 1; with the two runs identical
    (the null: no ordering) the check never passes."""
    logits, labels = _toy(n=1500)
    p = RI.ordering_power(logits, labels, n_boot=40, seed=1)
    rate = p.set_index(["ordering", "alternative"])["rate"]
    assert rate["ceiling above teacher", "none"] >= 0.95
    assert rate["ceiling above teacher", "sign flipped"] == 1.0
    same = {"ceiling": logits["teacher"], "teacher": logits["teacher"]}
    p0 = RI.ordering_power(same, labels, n_boot=40, seed=1).set_index(
        ["ordering", "alternative"])["rate"]
    assert p0["ceiling above teacher", "none"] == 0.0


def test_bad_arguments():
    logits, labels = _toy()
    with pytest.raises(ValueError, match="alternative"):
        RI.ordering_tables(logits, labels, "nope")
    with pytest.raises(ValueError, match="n_boot"):
        RI.ordering_power(logits, labels, n_boot=0)


def test_formatted_table():
    t = pd.DataFrame({"k": ["a"], "acc_mean": [0.6666], "acc_lo": [0.66],
                      "acc_hi": [0.674], "ent_mean": [0.5]})
    out = RI.formatted(t, "k", ["acc", "ent"])
    assert list(out.columns) == ["k", "acc", "ent"]
    assert out.loc[0, "acc"] == "0.667 [0.660, 0.674]" and out.loc[0, "ent"] == "0.500"
    with pytest.raises(ValueError, match="missing"):
        RI.formatted(t, "k", ["risk"])
