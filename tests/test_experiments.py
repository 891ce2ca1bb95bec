"""Tests of w2sg_utils.experiments (claim C9): config hashing, run store, resume, metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from w2sg_utils import experiments as E
from w2sg_utils.divergences import get_divergence

SMALL = dict(
    sizes={"train_gt": 60, "train_w2s": 40, "test": 40},
    seeds=[0],
    objectives=["bce", "reverse_bce"],
    teacher={"n_labels": 30},
    l2_grid=[0.0],
    ensemble_size=2,
)
CLI_SMALL = ["--n-train-gt", "60", "--n-train-w2s", "40", "--n-test", "40", "--seeds", "0",
             "--objectives", "bce,reverse_bce", "--teacher-labels", "30", "--l2-grid", "0",
             "--ensemble-size", "2", "--no-progress"]


pytestmark = pytest.mark.usefixtures("isolated_w2sg_cache")


# ------------------------------------------------------------------ config and hashing

def test_config_hash_is_canonical_and_sensitive():
    a = {"x": 1, "y": {"b": 2.0, "a": [1, 2]}}
    b = {"y": {"a": [1, 2], "b": 2.0}, "x": 1}
    assert E.config_hash(a) == E.config_hash(b)
    assert E.config_hash(a) != E.config_hash({**a, "x": 2})
    assert E.config_hash(a) != E.config_hash({"x": 1, "y": {"b": 2.0, "a": [2, 1]}})


def test_run_id_depends_on_spec_context_and_data():
    cfg = E.make_config(**SMALL)
    spec = {"stage": "teacher", "seed": 0, "member": 0}
    rid = E.run_id(cfg, spec, "d1")
    assert rid == E.run_id(E.make_config(**SMALL), dict(spec), "d1")
    assert rid != E.run_id(cfg, spec, "d2")
    assert rid != E.run_id(cfg, {**spec, "member": 1}, "d1")
    other = E.make_config(**{**SMALL, "teacher": {"n_labels": 31}})
    assert rid != E.run_id(other, spec, "d1")
    # sweep lists do not enter a run's id (adding objectives or seeds keeps old runs)
    wider = E.make_config(**{**SMALL, "objectives": ["bce", "reverse_bce", "kl"], "seeds": [0, 5]})
    assert rid == E.run_id(wider, spec, "d1")


def test_plan_is_ordered_and_unique():
    cfg = E.make_config(**{**SMALL, "seeds": [0, 1]})
    plan = E.plan_runs(cfg)
    keys = [json.dumps(p, sort_keys=True) for p in plan]
    assert len(keys) == len(set(keys))
    for seed in (0, 1):
        stages = [p["stage"] for p in plan if p["seed"] == seed]
        assert stages[0] == "teacher" and stages[1] == "ceiling" and stages[-1] == "bias_variance"
        assert sum(p.get("labels") == "ensemble2" for p in plan if p["seed"] == seed) == 2


@pytest.mark.parametrize("preset", sorted(E.PRESETS))
@pytest.mark.parametrize("override, match", [
    ({"sizes": {"test": 0}}, "sizes.test"),
    ({"sizes": {"train_w2s": 4001}}, "sizes.train_w2s"),
    ({"seeds": []}, "seeds"),
    ({"seeds": [1, 1]}, "seeds"),
    ({"objectives": ["bce", "nope"]}, "objectives: unknown objective 'nope'"),
    ({"objectives": []}, "objectives"),
    ({"ensemble_size": 1}, "ensemble_size"),
    ({"strong": {"l2": -1.0}}, "strong.l2"),
    ({"strong": {"lr": 0.0}}, "strong.lr"),
    ({"teacher": {"n_labels": 0}}, "teacher.n_labels"),
    ({"l2_grid": [-0.1]}, "l2_grid"),
    ({"bogus": 1}, "bogus: unknown configuration key"),
])
def test_every_preset_validates_arguments(preset, override, match, monkeypatch):
    if E.PRESETS[preset].requires_cuda:
        # validate the other fields as if CUDA were present
        import torch
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with pytest.raises(ValueError, match=match):
        E.make_config(preset, **override)


def test_gpu_preset_without_cuda_is_refused():
    import torch
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ValueError, match="needs CUDA"):
        E.make_config("gpt2-hh")


def test_unknown_preset():
    with pytest.raises(ValueError, match="preset: unknown preset 'nope'"):
        E.make_config("nope")


# ---------------------------------------------------------------------- metrics

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


# -------------------------------------------------------------------- run store

def test_run_store_atomic_rows_and_validated_artifacts(tmp_path):
    st = E.RunStore(tmp_path)
    st.append({"run_id": "a", "acc": 0.5})
    st.append({"run_id": "b", "acc": 0.6, "extra": "x"})
    with pytest.raises(ValueError, match="run_id"):
        st.append({"run_id": "a", "acc": 0.7})
    assert list(st.rows()["run_id"]) == ["a", "b"]
    assert not list(tmp_path.glob("*.tmp"))
    st.save_artifact("a", z=np.arange(3.0))
    np.testing.assert_array_equal(st.load_artifact("a")["z"], np.arange(3.0))
    # an artifact stored under another id, or tampered with, is never reused
    os.replace(st.artifact_path("a"), st.artifact_path("c"))
    assert st.load_artifact("c") is None
    st.artifact_path("d").write_bytes(b"garbage")
    assert st.load_artifact("d") is None


# ---------------------------------------------------------------- sweeps and resume

def _key_cols(df):
    return df.sort_values("run_id").reset_index(drop=True)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    df = E.run_sweep(E.make_config(**SMALL), out, progress=False)
    return out, df


def test_sweep_rows_metrics_and_identities(full_run):
    _, df = full_run
    cfg = E.make_config(**SMALL)
    assert len(df) == len(E.plan_runs(cfg)) and df["run_id"].is_unique
    st = df[df["stage"] == "student"]
    assert np.all((st["acc"] >= 0) & (st["acc"] <= 1))
    np.testing.assert_allclose(st["risk_w"], st["risk_s"] + st["misfit_kl_sw"] + st["cross"], atol=1e-9)
    gap = st["ceiling_acc"] - st["teacher_acc"]
    ok = gap > 0
    np.testing.assert_allclose(st["pgr"][ok], ((st["acc"] - st["teacher_acc"]) / gap)[ok])
    assert st["pgr"][~ok].isna().all()
    bv = E.bias_variance_table(df)
    wide = bv.pivot_table(index=["seed", "model"], columns="term", values="value")
    np.testing.assert_allclose(wide["expected_loss"], wide["noise"] + wide["bias"] + wide["variance"],
                               rtol=1e-9)


def test_resume_after_in_process_interrupt(full_run, tmp_path):
    _, ref = full_run
    cfg = E.make_config(**SMALL)
    seen = []

    def stop(row):
        seen.append(row["run_id"])
        if len(seen) == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        E.run_sweep(cfg, tmp_path, progress=False, on_row=stop)
    assert len(E.RunStore(tmp_path).rows()) == 5
    new = []
    df = E.run_sweep(cfg, tmp_path, progress=False, on_row=lambda r: new.append(r["run_id"]))
    assert len(new) == len(ref) - 5 and not set(new) & set(seen)
    a, b = _key_cols(df), _key_cols(ref)
    assert list(a["run_id"]) == list(b["run_id"])
    np.testing.assert_allclose(a["acc"].to_numpy(float), b["acc"].to_numpy(float))
    # a finished sweep is a no-op
    again = []
    E.run_sweep(cfg, tmp_path, progress=False, on_row=lambda r: again.append(r))
    assert again == []


def test_resume_after_kill_through_cli(full_run, tmp_path):
    _, ref = full_run
    env = {**os.environ, "W2SG_ABORT_AFTER": "3"}
    cmd = [sys.executable, "-m", "w2sg_utils", "run", "--out", str(tmp_path), *CLI_SMALL]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 75, r.stderr[-2000:]
    assert len(E.RunStore(tmp_path).rows()) == 3
    env.pop("W2SG_ABORT_AFTER")
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    df = E.RunStore(tmp_path).rows()
    assert df["run_id"].is_unique and set(df["run_id"]) == set(ref["run_id"])


def test_invalid_artifact_is_recomputed_without_duplicate_row(full_run, tmp_path):
    out, ref = full_run
    cfg = E.make_config(**SMALL)
    import shutil

    shutil.copytree(out, tmp_path / "copy")
    st = E.RunStore(tmp_path / "copy")
    teacher = ref[(ref["stage"] == "teacher") & (ref["member"] == 0)]["run_id"].iloc[0]
    st.artifact_path(teacher).write_bytes(b"corrupt")
    df = E.run_sweep(cfg, tmp_path / "copy", progress=False)
    assert len(df) == len(ref) and df["run_id"].is_unique
    assert st.load_artifact(teacher) is not None


def test_changed_data_changes_every_run_id(full_run, tmp_path):
    _, ref = full_run
    cfg = E.make_config(**{**SMALL, "sizes": {"train_gt": 60, "train_w2s": 40, "test": 41}})
    from w2sg_utils.experiments.data import data_fingerprint, load_hh_helpful

    dh = data_fingerprint(load_hh_helpful(cfg["sizes"], seed=0))
    ids = {E.run_id(cfg, s, dh) for s in E.plan_runs(cfg)}
    assert not ids & set(ref["run_id"])


def test_binary_kl_dual_mean_is_the_ensemble_label(full_run):
    out, ref = full_run
    st = E.RunStore(out)
    t = ref[(ref["stage"] == "teacher") & (ref["member"] > 0)].sort_values("member")
    Z = np.stack([st.load_artifact(r)["z_w2s"] for r in t["run_id"]])
    P = 1 / (1 + np.exp(-Z))
    dual = get_divergence("binary_kl").dual_mean(P[:, :, None], axis=0)[:, 0]
    np.testing.assert_allclose(dual, 1 / (1 + np.exp(-Z.mean(0))), rtol=1e-10)


def test_tiny_gpt2_preset_end_to_end(tmp_path):
    cfg = E.make_config("tiny-gpt2", sizes={"train_gt": 12, "train_w2s": 12, "test": 8},
                        teacher={"n_labels": 12}, ensemble_size=2)
    df = E.run_sweep(cfg, tmp_path, progress=False)
    assert len(df) == len(E.plan_runs(cfg)) and df["run_id"].is_unique
    st = df[df["stage"] == "student"]
    assert np.all(np.isfinite(st["misfit_kl_sw"])) and np.all(st["misfit_kl_sw"] >= 0)
    assert len(E.run_sweep(cfg, tmp_path, progress=False)) == len(df)


def test_results_csv_path(full_run):
    out, _ = full_run
    assert (Path(out) / "results.csv").is_file()


def test_truncated_encoder_teacher(tmp_path):
    cfg = E.make_config(**{**SMALL, "ensemble_size": 0, "l2_grid": [], "objectives": ["bce"],
                           "teacher": {"kind": "encoder", "n_labels": 30, "num_layers": 1}})
    df = E.run_sweep(cfg, tmp_path, progress=False)
    assert list(df["stage"]) == ["teacher", "ceiling", "student"]
    with pytest.raises(ValueError, match="teacher.num_layers"):
        E.make_config(teacher={"kind": "encoder", "num_layers": 0})
    with pytest.raises(ValueError, match="teacher.kind"):
        E.make_config(teacher={"kind": "forest"})


def test_committed_results_lookup(tmp_path):
    (tmp_path / "results" / "x").mkdir(parents=True)
    pd.DataFrame({"a": [1]}).to_csv(tmp_path / "results" / "x" / "results.csv", index=False)
    (tmp_path / "build" / "ipynb").mkdir(parents=True)
    assert E.committed_results("x", start=tmp_path / "build" / "ipynb")["a"].tolist() == [1]
    assert E.committed_results("y", start=tmp_path) is None
    with pytest.raises(ValueError, match="name"):
        E.committed_results("../x")


def test_teacher_draws_always_hold_both_classes():
    """Few teacher labels: a single-class draw is redrawn; two-class draws are unchanged."""
    cfg = E.make_config(sizes={"train_gt": 20, "train_w2s": 20, "test": 20}, seeds=[0],
                        objectives=["bce"], teacher={"n_labels": 4}, l2_grid=[],
                        ensemble_size=2)
    for seed in range(40):
        bk = E.Backend(cfg, seed, None, False)
        labels = bk.data["train_gt"].label
        for member in range(4):
            idx = bk.teacher_indices(member)
            assert len(idx) == 4 and set(labels[idx]) == {0, 1}
            # the plain draw (no rejection) whenever it already holds both classes
            rng = np.random.default_rng([seed, 1000 + member])
            plain = (np.sort(rng.choice(20, size=4, replace=False)) if member == 0
                     else rng.choice(20, size=4, replace=True))
            if len(set(labels[plain])) == 2:
                np.testing.assert_array_equal(idx, plain)


def test_ensemble_label_is_the_mean_logit_of_its_members():
    """``ensemble<K>`` labels: the binary-KL dual mean of teachers 1..K, i.e. the mean of
    their logits (claims C1, C4), on both splits; ``teacher<k>`` is member k itself."""
    from w2sg_utils.experiments.stages import _labels

    rng = np.random.default_rng(3)
    members = {k: {"z_w2s": rng.normal(0, 2, 5), "z_test": rng.normal(0, 2, 4)} for k in range(0, 5)}
    asked = []

    def ensure(spec):
        assert spec["stage"] == "teacher" and spec["seed"] == 9
        asked.append(spec["member"])
        return members[spec["member"]]

    w2s, test = _labels("ensemble3", 9, ensure)
    assert sorted(asked) == [1, 2, 3]
    for got, key in ((w2s, "z_w2s"), (test, "z_test")):
        expected = [sum(members[k][key][i] for k in (1, 2, 3)) / 3 for i in range(len(got))]
        np.testing.assert_allclose(got, expected, rtol=1e-12)
    w2s, test = _labels("teacher4", 9, ensure)
    assert w2s is members[4]["z_w2s"] and test is members[4]["z_test"]
