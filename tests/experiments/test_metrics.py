"""Tests of per-run metrics and summaries (w2sg_utils.experiments.metrics) (claim C9)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from w2sg_utils import experiments as E

pytestmark = pytest.mark.usefixtures("isolated_w2sg_cache")


def test_pair_metrics_against_plain_loops():
    rng = np.random.default_rng(0)
    n = 200
    z_s, z_w = rng.normal(0, 2, n), rng.normal(0, 2, n)
    y = rng.integers(0, 2, n)
    m = E.pair_metrics(z_s, z_w, y)
    p_s, p_w = 1 / (1 + np.exp(-z_s)), 1 / (1 + np.exp(-z_w))
    kl = [ps * np.log(ps / pw) + (1 - ps) * np.log((1 - ps) / (1 - pw)) for ps, pw in zip(p_s, p_w)]
    kl_rev = [pw * np.log(pw / ps) + (1 - pw) * np.log((1 - pw) / (1 - ps)) for ps, pw in zip(p_s, p_w)]
    ce_s = [-np.log(ps if t else 1 - ps) for ps, t in zip(p_s, y)]
    ce_w = [-np.log(pw if t else 1 - pw) for pw, t in zip(p_w, y)]
    ent = [-(p * np.log(p) + (1 - p) * np.log(1 - p)) for p in p_s]
    np.testing.assert_allclose(m["misfit_kl_sw"], np.mean(kl), rtol=1e-9)
    np.testing.assert_allclose(m["misfit_kl_ws"], np.mean(kl_rev), rtol=1e-9)
    np.testing.assert_allclose(m["risk_s"], np.mean(ce_s), rtol=1e-9)
    np.testing.assert_allclose(m["risk_w"], np.mean(ce_w), rtol=1e-9)
    np.testing.assert_allclose(m["entropy"], np.mean(ent), rtol=1e-9)
    assert m["acc"] == np.mean((z_s > 0) == (y == 1))
    assert m["agreement"] == np.mean((z_s > 0) == (z_w > 0))
    # the gain identity of claim C2 on these runs' numbers
    np.testing.assert_allclose(m["risk_w"], m["risk_s"] + m["misfit_kl_sw"] + m["cross"], atol=1e-10)


def test_saturated_logits_are_clipped_only_at_p_clip():
    """``clip_probs`` touches only the last 1e-12; pair metrics of confident runs (logits up
    to +-20) match the binary KL and entropy written with log-sigmoids."""
    from w2sg_utils.experiments.metrics import P_CLIP, clip_probs

    np.testing.assert_array_equal(clip_probs(np.array([0.0, 1e-13, 0.3, 1.0])),
                                  [P_CLIP, P_CLIP, 0.3, 1 - P_CLIP])
    z_s, z_w = np.array([20.0, -18.0, 9.0, -7.5]), np.array([15.0, -12.0, 11.0, 3.0])

    def logsig(z):
        return -np.logaddexp(0.0, -z)

    ps = 1 / (1 + np.exp(-z_s))
    kl = ps * (logsig(z_s) - logsig(z_w)) + (1 - ps) * (logsig(-z_s) - logsig(-z_w))
    ent = -(ps * logsig(z_s) + (1 - ps) * logsig(-z_s))
    m = E.pair_metrics(z_s, z_w, np.array([1, 0, 1, 0]))
    np.testing.assert_allclose(m["misfit_kl_sw"], kl.mean(), rtol=1e-6)
    np.testing.assert_allclose(m["entropy"], ent.mean(), rtol=1e-6)


def test_accuracy_ties_and_pgr():
    assert E.accuracy([0.0, 1.0, -1.0], [1, 1, 1]) == pytest.approx(0.5)
    assert E.pgr(0.6, 0.5, 0.7) == pytest.approx(0.5)
    assert E.pgr(0.65, 0.5, 0.7) == pytest.approx((0.65 - 0.5) / (0.7 - 0.5))  # 0.75, asymmetric
    assert E.pgr(0.4, 0.5, 0.7) == pytest.approx(-0.5)  # below the teacher: negative
    # a teacher away from chance: the gap is measured from the teacher, not from 1/2
    assert E.pgr(0.66, 0.62, 0.7) == pytest.approx(0.04 / 0.08)
    assert np.isnan(E.pgr(0.6, 0.7, 0.7))


def test_summarize_matches_t_interval():
    from scipy import stats

    df = pd.DataFrame({"g": ["a"] * 5 + ["b"] * 5, "acc": np.arange(10.0)})
    s = E.summarize(df, "g", ["acc"])
    x = np.arange(5.0)
    half = stats.t.ppf(0.975, 4) * x.std(ddof=1) / np.sqrt(5)
    assert s.loc[0, "acc_mean"] == 2.0
    np.testing.assert_allclose(s.loc[0, "acc_hi"] - s.loc[0, "acc_lo"], 2 * half)


def test_summarize_counts_and_skips_nan_runs():
    """A NaN (e.g. a PGR whose ceiling does not beat the teacher) is counted in
    ``_nan`` and left out of the mean, the SE and ``_n``."""
    from scipy import stats

    df = pd.DataFrame({"g": ["a"] * 4, "pgr": [0.2, np.nan, 0.6, 0.7]})
    s = E.summarize(df, "g", ["pgr"], level=0.9)
    x = np.array([0.2, 0.6, 0.7])
    assert s.loc[0, "n"] == 4 and s.loc[0, "pgr_n"] == 3 and s.loc[0, "pgr_nan"] == 1
    assert s.loc[0, "pgr_mean"] == pytest.approx(x.mean())
    se = x.std(ddof=1) / np.sqrt(3)
    assert s.loc[0, "pgr_se"] == pytest.approx(se)
    assert s.loc[0, "pgr_hi"] == pytest.approx(x.mean() + stats.t.ppf(0.95, 2) * se)


RESULTS = Path(__file__).resolve().parents[2] / "results"
STORES = sorted(p.parent.name for p in RESULTS.glob("*/results.csv")
                if (p.parent / "artifacts").is_dir())


@pytest.mark.parametrize("store", STORES)
def test_committed_metrics_are_unchanged_from_logits(store):
    """``pair_metrics`` computes from logits what the committed sweeps stored from clipped
    probabilities: their logits are far from the clip (|z| < 27), so every stored misfit,
    entropy, risk and cross term is reproduced to rounding and the code version (hence
    the run ids) need not change."""
    from w2sg_utils.experiments import run_intervals as RI

    st = E.RunStore(RESULTS / store)
    df = pd.read_csv(RESULTS / store / "results.csv")
    labels = RI.labels_from_store(st, df)
    teachers = df[(df["stage"] == "teacher") & (df["member"] == 0)].set_index("seed")
    rows = df[(df["stage"] == "student") & (df["labels"] == "teacher0")]
    assert len(rows) > 0
    for r in rows.itertuples():
        z_s = st.load_artifact(r.run_id)["z_test"]
        z_w = st.load_artifact(teachers.loc[r.seed, "run_id"])["z_test"]
        assert max(np.abs(z_s).max(), np.abs(z_w).max()) < 27
        m = E.pair_metrics(z_s, z_w, labels[r.seed])
        for k in ("misfit_kl_sw", "misfit_kl_ws", "entropy", "risk_s", "risk_w", "cross"):
            assert m[k] == pytest.approx(getattr(r, k), rel=1e-9, abs=1e-12), (r.run_id, k)
