"""Power of the pretrained pair's pre-registered regimes (claim C9, issue 18).

Chapter 5 ({ref}`sec-ch05-pair`) asserts, on the confirmatory seeds, only the regimes
chosen on the development runs (``results/pair_c9/dev``) by the rule of
``results/pair_c9/prereg.md``. These tests rerun the chapter's own check code
(``pair_prereg.check_regimes`` and ``regime_power``) at the pre-registered settings
(``results/pair_c9/prereg.json``: design, ``n_boot``, seed 20261128): the committed
power is what the code gives, the chosen regimes are what the rule picks, and on the
confirmatory runs each chosen regime's check rejects every named wrong alternative.
The pieces are checked against plain computations on a toy sweep.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from w2sg_utils.experiments import pair_prereg as PP
from w2sg_utils.experiments import run_intervals as RI
from w2sg_utils.intervals import mean_interval

ROOT = Path(__file__).resolve().parents[1] / "results" / "pair_c9"


@pytest.fixture(scope="module")
def prereg():
    return json.loads((ROOT / "prereg.json").read_text())


@pytest.fixture(scope="module")
def dev():
    return PP.load_pair(ROOT / "dev")


@pytest.fixture(scope="module")
def confirm():
    if not (ROOT / "confirm" / "l2_default" / "results.csv").is_file():
        pytest.skip("results/pair_c9/confirm is not committed yet")
    return PP.load_pair(ROOT / "confirm")


def test_seeds_are_disjoint(prereg, dev):
    dev_seeds = sorted(dev[1]["l2_default"])
    assert dev_seeds == prereg["dev_seeds"] == list(range(1000, 1010))
    conf = prereg["confirm_seeds"]
    assert len(conf) == prereg["n_seeds"]
    assert not set(conf) & (set(dev_seeds) | set(range(5)))


def test_prereg_names_the_package_settings(prereg):
    assert prereg["level"] == pytest.approx(PP.LEVEL)
    assert set(prereg["candidates"]) == set(PP.REGIMES)
    assert prereg["alternatives"] == list(PP.POWER_ALTERNATIVES)


def test_committed_power_is_what_the_check_code_gives(prereg, dev):
    """``dev/power.csv`` (rendered by the chapter) is the output of ``regime_power`` at
    the pre-registered design, for the chosen regimes (the same draws as for all)."""
    committed = pd.read_csv(ROOT / "dev" / "power.csv")
    chosen = prereg["chosen"]
    assert chosen, "nothing chosen: then the chapter asserts nothing"
    got = PP.regime_power(*dev, n_seeds=prereg["n_seeds"], n_boot=prereg["n_boot"],
                          seed=prereg["seed"], regimes=chosen)
    sub = committed[committed["regime"].isin(chosen)].reset_index(drop=True)
    pd.testing.assert_frame_equal(sub, got, check_exact=False, atol=1e-12)


def test_chosen_regimes_follow_the_rule(prereg):
    committed = pd.read_csv(ROOT / "dev" / "power.csv")
    assert PP.chosen_regimes(committed, prereg["min_power"]) == prereg["chosen"]
    p = committed.pivot_table(index="regime", columns="alternative", values="rate")
    for r in prereg["chosen"]:
        assert (p.loc[r] >= 0.95).all(), (r, p.loc[r])


def test_confirmatory_check_rejects_each_alternative(prereg, confirm):
    """At the pre-registered level, on the confirmatory runs: each chosen regime holds
    as implemented (Chapter 5 asserts it) and fails under every wrong alternative (the
    centred and reversed differences, the wrong implementations)."""
    logits, labels = confirm
    assert sorted(labels["l2_default"]) == prereg["confirm_seeds"]
    tabs = PP.regime_tables(logits, labels)
    ok = PP.check_regimes(tabs)
    diffs = PP.regime_differences(tabs)
    for r in prereg["chosen"]:
        assert ok[r].lo > 0, (r, ok[r])
        centred = [mean_interval(d - d.mean(), PP.LEVEL).lo > 0 for d in diffs[r]]
        reversed_ = [mean_interval(-d, PP.LEVEL).lo > 0 for d in diffs[r]]
        assert not all(centred) and not all(reversed_), r
        for alt in RI.ALTERNATIVES:
            wrong = PP.check_regimes(PP.regime_tables(logits, labels, alt))
            assert wrong[r].lo <= 0, (r, alt)


def _toy(n_seeds=6, n=600, margin=1.0, seed=5):
    """A pair sweep in miniature: both stores, a teacher, a ceiling and students."""
    rng = np.random.default_rng(seed)
    y = {s: rng.integers(0, 2, n) for s in range(100, 100 + n_seeds)}
    sign = {s: 2 * v - 1 for s, v in y.items()}

    def run(strength):
        return {s: strength * sign[s] + 1.5 * rng.normal(0, 1, n) for s in y}

    store = {"teacher": run(0.3), "ceiling": run(0.3 + margin)}
    l2_default = store | {f"{o}@0.001": run(0.5) for o in PP.OBJECTIVES}
    l2_default |= {"bce@0": run(0.4), "reverse_bce@0": run(0.5)}
    l2_0 = store | {f"{o}@0": run(0.4) for o in PP.OBJECTIVES}
    return {"l2_default": l2_default, "l2_0": l2_0}, {"l2_default": y, "l2_0": y}


def test_check_regimes_against_plain_intervals():
    logits, labels = _toy()
    tabs = PP.regime_tables(logits, labels)
    got = PP.check_regimes(tabs)
    assert set(got) == set(PP.REGIMES)
    acc = {k: np.array([[float((v > 0) == (t == 1)) for v, t in zip(z[s], labels[
        "l2_0"][s])] for s in sorted(z)]) for k, z in logits["l2_0"].items()}
    ref = mean_interval(acc["reverse_bce@0"] - acc["bce@0"], 1 - 0.05 / 8)
    iv = got["reverse BCE above BCE (L2 0)"]
    assert iv.lo == pytest.approx(ref.lo, rel=1e-12) and iv.level == pytest.approx(
        1 - 0.05 / 8)
    # several differences: the weakest one (lowest lower end) is reported
    every = [mean_interval(acc["ceiling"] - acc[f"{o}@0"], iv.level).lo
             for o in PP.OBJECTIVES]
    assert got["ceiling above every student (L2 0)"].lo == pytest.approx(min(every))


def test_power_on_a_planted_regime_and_on_none():
    logits, labels = _toy(n=1500)
    name = "ceiling above teacher (L2 0)"
    p = PP.regime_power(logits, labels, n_seeds=6, n_boot=30, seed=1, regimes=[name])
    rate = p.set_index("alternative")["rate"]
    assert set(rate.index) == {"none", *PP.POWER_ALTERNATIVES}
    assert rate["none"] >= 0.95 and rate["order reversed"] == 1.0
    assert rate["no difference"] >= 0.9
    same = {k: dict(v, ceiling=v["teacher"]) for k, v in logits.items()}
    p0 = PP.regime_power(same, labels, n_seeds=6, n_boot=30, seed=1, regimes=[name])
    assert p0.set_index("alternative")["rate"]["none"] == 0.0
    assert PP.chosen_regimes(pd.concat([p, p0.assign(regime="x")])) == [name]


def test_bad_arguments():
    logits, labels = _toy()
    with pytest.raises(ValueError, match="n_boot"):
        PP.regime_power(logits, labels, n_seeds=4, n_boot=0)
    with pytest.raises(ValueError, match="n_seeds"):
        PP.regime_power(logits, labels, n_seeds=1)
    with pytest.raises(ValueError, match="regimes"):
        PP.regime_power(logits, labels, n_seeds=4, regimes=["nope"])
    with pytest.raises(ValueError, match="power"):
        PP.chosen_regimes(pd.DataFrame({"regime": ["a"], "alternative": ["none"],
                                        "rate": [1.0]}))
    with pytest.raises(ValueError, match="root"):
        PP.load_pair(ROOT / "no-such-folder")


def test_fast_labels_are_the_sweeps_labels(dev):
    """``load_pair`` swaps the test split per seed itself (one read of the data); the
    labels are those of ``load_hh_helpful`` (via ``labels_from_store``) for each seed."""
    from w2sg_utils.experiments.records import TEXT_COLUMNS

    st = PP.open_store(ROOT / "dev" / "l2_0")
    df = pd.read_csv(st.csv, dtype=TEXT_COLUMNS)
    df = df[df["seed"].isin([1000, 1007])]
    ref = RI.labels_from_store(st, df)
    for s, y in ref.items():
        np.testing.assert_array_equal(dev[1]["l2_0"][s], y)
        np.testing.assert_array_equal(dev[1]["l2_default"][s], y)
    assert not np.array_equal(ref[1000], ref[1007])
