"""Tests of sweeps and resumption (w2sg_utils.experiments.sweep) (claim C9)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.experiments.small import CLI_SMALL, SMALL
from w2sg_utils import experiments as E
from w2sg_utils.divergences import get_divergence

pytestmark = pytest.mark.usefixtures("isolated_w2sg_cache")


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


def test_results_csv_path(full_run):
    out, _ = full_run
    assert (Path(out) / "results.csv").is_file()


def test_tiny_gpt2_preset_end_to_end(tmp_path):
    cfg = E.make_config("tiny-gpt2", sizes={"train_gt": 12, "train_w2s": 12, "test": 8},
                        teacher={"n_labels": 12}, ensemble_size=2)
    df = E.run_sweep(cfg, tmp_path, progress=False)
    assert len(df) == len(E.plan_runs(cfg)) and df["run_id"].is_unique
    st = df[df["stage"] == "student"]
    assert np.all(np.isfinite(st["misfit_kl_sw"])) and np.all(st["misfit_kl_sw"] >= 0)
    assert len(E.run_sweep(cfg, tmp_path, progress=False)) == len(df)


def test_truncated_encoder_teacher(tmp_path):
    cfg = E.make_config(**{**SMALL, "ensemble_size": 0, "l2_grid": [], "objectives": ["bce"],
                           "teacher": {"kind": "encoder", "n_labels": 30, "num_layers": 1}})
    df = E.run_sweep(cfg, tmp_path, progress=False)
    assert list(df["stage"]) == ["teacher", "ceiling", "student"]
    with pytest.raises(ValueError, match="teacher.num_layers"):
        E.make_config(teacher={"kind": "encoder", "num_layers": 0})
    with pytest.raises(ValueError, match="teacher.kind"):
        E.make_config(teacher={"kind": "forest"})


def test_binary_kl_dual_mean_is_the_ensemble_label(full_run):
    out, ref = full_run
    st = E.RunStore(out)
    t = ref[(ref["stage"] == "teacher") & (ref["member"] > 0)].sort_values("member")
    Z = np.stack([st.load_artifact(r)["z_w2s"] for r in t["run_id"]])
    P = 1 / (1 + np.exp(-Z))
    dual = get_divergence("binary_kl").dual_mean(P[:, :, None], axis=0)[:, 0]
    np.testing.assert_allclose(dual, 1 / (1 + np.exp(-Z.mean(0))), rtol=1e-10)
