"""Fault injection on a sweep's run store, through the real ``w2sg`` command (claim C9).

One small sweep on a folder of the user's own pairs (8 runs: 2 seeds x teacher,
ceiling, BCE and reverse-BCE students) is the reference. Each test copies or restarts
it, injects one fault (a torn index, a truncated artifact, a record with a wrong
checksum, a disk that fills up, a file-size limit, a read-only output folder, one of
two shards killed), checks that the command fails in one line (or ``summarize`` works
or says in one line how to repair), and that after ``w2sg repair`` and a resumed
``w2sg run`` the store holds every run exactly once, equal to the reference.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from w2sg_utils.experiments import cli
from w2sg_utils.experiments.data import load_pairs
from w2sg_utils.experiments.store import RunStore

SWEEP = ["--n-train-gt", "40", "--n-train-w2s", "20", "--n-test", "20", "--seeds", "0,1",
         "--objectives", "bce,reverse_bce", "--teacher-labels", "20", "--l2-grid", "",
         "--ensemble-size", "0", "--no-progress"]
N_RUNS = 8
FAULT_CLI = Path(__file__).with_name("_fault_cli.py")
TIMEOUT = 300


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = Path(__file__).resolve().parents[2]
    return {**os.environ, "W2SG_CACHE": str(tmp_path_factory.mktemp("cache")),
            "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join([str(root), *sys.path])}


@pytest.fixture(scope="module")
def own(tmp_path_factory):
    """A folder of the user's own pairs (60 per split) with its manifest."""
    d = tmp_path_factory.mktemp("own")
    for split in ("train_gt", "train_w2s", "test"):
        rows = [{"chosen": r["chosen"] + " Glad to help.", "rejected": r["rejected"]}
                for r in load_pairs(split)[:60]]
        (d / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert cli.main(["data", "manifest", str(d)]) == 0
    return d


def w2sg(env, *args, fault=None, **kw):
    pre = [str(FAULT_CLI), *fault, "--"] if fault else ["-m", "w2sg_utils"]
    return subprocess.run([sys.executable, *pre, *args], env=env, capture_output=True,
                          text=True, timeout=TIMEOUT, **kw)


def run_args(own, out):
    return ["run", "--data-dir", str(own), "--out", str(out), *SWEEP]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, env, own):
    """The uninterrupted sweep on the user's own pairs, end to end from the command line."""
    out = tmp_path_factory.mktemp("reference")
    r = w2sg(env, *run_args(own, out))
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"{N_RUNS} runs in" in r.stdout
    labels = set(RunStore(out, create=False).rows()["data"])
    assert len(labels) == 1 and labels.pop().startswith(f"{own}#")  # the data, by content
    return out


def one_line_error(r, code, *needles):
    """The command failed with status ``code`` and one line naming ``needles``."""
    assert r.returncode == code, (r.returncode, r.stderr[-3000:])
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("w2sg ") and ": error: " in last, r.stderr[-3000:]
    for n in needles:
        assert n in last, (n, last)
    return last


def resume(monkeypatch, env, own, out, *, repair=True):
    monkeypatch.setenv("W2SG_CACHE", env["W2SG_CACHE"])
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    if repair:
        assert cli.main(["repair", "--out", str(out)]) == 0
    assert cli.main(run_args(own, out)) == 0


def assert_same_store(out, ref):
    """Every run exactly once, with the reference's rows and arrays."""
    a, b = RunStore(ref, create=False), RunStore(out, create=False)
    ra, rb = a.rows(), b.rows()
    assert rb["run_id"].is_unique and len(rb) == N_RUNS
    key = sorted(ra.columns)
    pd.testing.assert_frame_equal(rb.sort_values("run_id")[key].reset_index(drop=True),
                                  ra.sort_values("run_id")[key].reset_index(drop=True))
    for rid in ra["run_id"]:
        x, y = a.load_artifact(rid), b.load_artifact(rid)
        assert y is not None and set(x) == set(y), rid
        for k in x:
            np.testing.assert_array_equal(y[k], x[k], err_msg=f"{rid}:{k}")
    assert not RunStore(out).repair().dropped


def records_of(out) -> dict:
    return {p.name: p.read_bytes() for p in (Path(out) / "runs").glob("*.json")}


def assert_only_recomputed(before, out, rid):
    """Every other run's record is untouched; ``rid``'s was written again."""
    after = records_of(out)
    assert set(after) == set(before) | {f"{rid}.json"}
    assert {k: v for k, v in after.items() if k != f"{rid}.json"} == \
        {k: v for k, v in before.items() if k != f"{rid}.json"}


def copy_of(ref, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(ref, out)
    return out


def test_torn_index(tmp_path, env, own, reference, monkeypatch, capsys):
    out = copy_of(reference, tmp_path)
    csv = out / "results.csv"
    csv.write_bytes(csv.read_bytes()[:-15])
    r = w2sg(env, "summarize", "--out", str(out))
    one_line_error(r, 1, str(csv), f"w2sg repair --out {out}")
    resume(monkeypatch, env, own, out)
    assert_same_store(out, reference)
    csv.write_bytes(csv.read_bytes()[:-15])  # the next run repairs it by itself
    resume(monkeypatch, env, own, out, repair=False)
    assert "repaired" not in capsys.readouterr().err  # intact runs: nothing dropped
    assert_same_store(out, reference)


def test_truncated_artifact(tmp_path, env, own, reference, monkeypatch):
    out = copy_of(reference, tmp_path)
    st = RunStore(out)
    rows = st.rows()
    rid = rows[(rows["stage"] == "teacher") & (rows["seed"] == 0)]["run_id"].iloc[0]
    art = st.artifact_path(rid)
    art.write_bytes(art.read_bytes()[: art.stat().st_size // 2])
    r = w2sg(env, "summarize", "--out", str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"w2sg repair --out {out}" in r.stdout
    before = records_of(out)
    resume(monkeypatch, env, own, out)
    assert_only_recomputed(before, out, rid)
    assert_same_store(out, reference)


def test_record_with_wrong_checksum(tmp_path, env, own, reference, monkeypatch):
    out = copy_of(reference, tmp_path)
    st = RunStore(out)
    rows = st.rows()
    rid = rows[rows["objective"] == "reverse_bce"]["run_id"].iloc[0]
    p = st.record_path(rid)
    rec = json.loads(p.read_text())
    rec["record"]["row"]["acc"] = 0.99  # valid JSON, wrong checksum
    p.write_text(json.dumps(rec))
    r = w2sg(env, "summarize", "--out", str(out))
    one_line_error(r, 1, f"{rid}.json", "checksum", f"w2sg repair --out {out}")
    before = records_of(out)
    resume(monkeypatch, env, own, out)
    assert_only_recomputed(before, out, rid)
    assert_same_store(out, reference)


def assert_completed_runs_once(out, reference):
    rows = RunStore(out, create=False).rows()
    assert len(rows) >= 1 and rows["run_id"].is_unique
    ref = RunStore(reference, create=False).rows().set_index("run_id")
    got = rows.set_index("run_id")
    for c in ("acc", "stage", "seed"):
        assert (got[c] == ref.loc[got.index, c]).all(), c
    return len(rows)


def test_disk_full_during_the_sweep(tmp_path, env, own, reference, monkeypatch):
    """Each atomic write syncs its file; from the 9th on, the disk is full (ENOSPC)."""
    out = tmp_path / "out"
    r = w2sg(env, *run_args(own, out), fault=["enospc-after", "8"])
    one_line_error(r, 1, "No space left on device", "rerun the same command")
    assert 1 <= assert_completed_runs_once(out, reference) < N_RUNS
    r = w2sg(env, "summarize", "--out", str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    resume(monkeypatch, env, own, out, repair=False)
    assert_same_store(out, reference)


def test_file_size_limit(tmp_path, env, own, reference, monkeypatch):
    """RLIMIT_FSIZE: every record and artifact fits, the growing index does not."""
    files = [p for p in Path(reference).rglob("*") if p.is_file() and p.suffix in (".json",
                                                                                    ".npz")]
    limit = max(p.stat().st_size for p in files) + 64
    assert (Path(reference) / "results.csv").stat().st_size > limit

    def limited():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    out = tmp_path / "out"
    r = w2sg(env, *run_args(own, out), preexec_fn=limited)
    one_line_error(r, 1, "File too large", "rerun the same command")
    assert 1 <= assert_completed_runs_once(out, reference) < N_RUNS
    resume(monkeypatch, env, own, out, repair=False)
    assert_same_store(out, reference)


def test_read_only_output_folder(tmp_path, env, own, reference, monkeypatch):
    out = copy_of(reference, tmp_path)
    st = RunStore(out)
    rid = st.rows()["run_id"].iloc[-1]
    st.record_path(rid).unlink()  # one run left to do
    st.repair()
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    if os.geteuid() == 0:  # root writes through permissions: a read-only file system
        r = w2sg(env, *run_args(own, out), fault=["readonly", str(out)])
        one_line_error(r, 1, "Read-only file system", "writable --out")
    else:
        for p in [out, *out.rglob("*")]:
            p.chmod(0o555 if p.is_dir() else 0o444)
        try:
            r = w2sg(env, *run_args(own, out))
        finally:
            for p in [out, *out.rglob("*")]:
                p.chmod(0o755 if p.is_dir() else 0o644)
        one_line_error(r, 1, "Permission denied", "writable --out")
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    resume(monkeypatch, env, own, out, repair=False)
    assert_same_store(out, reference)


def test_two_shards_one_killed(tmp_path, env, own, reference, monkeypatch):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "w2sg_utils", *run_args(own, out)]
    victim, other = (subprocess.Popen([*cmd, "--shard", f"{i}/2"], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                      text=True) for i in range(2))
    try:
        deadline = time.monotonic() + TIMEOUT
        while victim.poll() is None and not list((out / "runs").glob("*.json")):
            assert time.monotonic() < deadline, "no run finished"
            time.sleep(0.05)
        victim.send_signal(signal.SIGKILL)
        victim.communicate(timeout=60)
        _, err = other.communicate(timeout=TIMEOUT)
        assert other.returncode == 0, err[-3000:]
    finally:
        for p in (victim, other):
            if p.poll() is None:
                p.kill()
                p.wait()
    assert_completed_runs_once(out, reference)
    resume(monkeypatch, env, own, out, repair=False)
    assert_same_store(out, reference)
