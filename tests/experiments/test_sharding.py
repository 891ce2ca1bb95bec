"""Tests of w2sg_utils.experiments.sharding: shard partition and file locks (sweeps across machines)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from w2sg_utils.experiments import sharding as S

IDS = [f"{k:016x}" for k in (7, 3, 11, 5, 2, 13, 17)]


@pytest.mark.parametrize("text, expected", [("0/1", (0, 1)), ("2/4", (2, 4)), (" 3 / 4 ", (3, 4))])
def test_parse_shard(text, expected):
    assert S.parse_shard(text) == expected


@pytest.mark.parametrize("text", ["4/4", "1/0", "-1/2", "1", "a/b", "1/2/3", "", "1.0/2"])
def test_parse_shard_errors(text):
    with pytest.raises(ValueError, match="shard"):
        S.parse_shard(text)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 10])
def test_shards_partition_the_runs_evenly(n):
    parts = [S.shard_run_ids(IDS, (i, n)) for i in range(n)]
    assert set().union(*parts) == set(IDS)
    assert sum(len(p) for p in parts) == len(IDS)  # disjoint
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1


def test_assignment_depends_on_the_ids_only():
    a = S.assign_shards(IDS, 3)
    assert a == S.assign_shards(reversed(IDS + IDS[:2]), 3)  # order and repeats ignored
    # plain definition: k-th smallest id goes to shard k mod n
    assert a == {rid: k % 3 for k, rid in enumerate(sorted(IDS))}
    with pytest.raises(ValueError, match="n"):
        S.assign_shards(IDS, 0)


def test_run_lock_rejects_path_like_ids(tmp_path):
    with pytest.raises(ValueError, match="rid"):
        with S.run_lock(tmp_path, "../x"):
            pass


_COUNTER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from w2sg_utils.experiments.sharding import store_lock
    root, k = Path(sys.argv[1]), int(sys.argv[2])
    f = root / "count.txt"
    for _ in range(k):
        with store_lock(root):
            n = int(f.read_text()) if f.exists() else 0
            time.sleep(0.002)  # widen the read-modify-write window
            f.write_text(str(n + 1))
""")


def _env():
    return {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), *sys.path])}


def test_lock_serialises_read_modify_write_across_processes(tmp_path):
    script = tmp_path / "counter.py"
    script.write_text(_COUNTER)
    procs = [subprocess.Popen([sys.executable, str(script), str(tmp_path), "40"], env=_env())
             for _ in range(3)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    assert int((tmp_path / "count.txt").read_text()) == 120  # no update lost


def test_lock_times_out_and_is_released_when_its_holder_is_killed(tmp_path):
    holder = textwrap.dedent(f"""
        import sys, time
        from w2sg_utils.experiments.sharding import run_lock
        with run_lock({str(tmp_path)!r}, "abc"):
            print("locked", flush=True)
            time.sleep(600)
    """)
    p = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True,
                         env=_env())
    try:
        assert p.stdout.readline().strip() == "locked"
        with pytest.raises(TimeoutError, match="abc"):
            with S.run_lock(tmp_path, "abc", timeout=0.3):
                pass
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=30)
    with S.run_lock(tmp_path, "abc", timeout=30):  # the kernel released it
        pass
    assert (tmp_path / S.LOCK_DIR / "abc.lock").is_file()


# ------------------------------------------------- shards of a sweep, as processes

TINY = ["--preset", "tiny-gpt2", "--n-train-gt", "12", "--n-train-w2s", "12", "--n-test", "8",
        "--teacher-labels", "12", "--ensemble-size", "2", "--objectives", "bce", "--no-progress"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("w2sg_cache")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cache):
    """The unsharded sweep, in this process."""
    from w2sg_utils import experiments as E
    from w2sg_utils.experiments import cli

    out = tmp_path_factory.mktemp("unsharded")
    old = os.environ.get("W2SG_CACHE")
    os.environ["W2SG_CACHE"] = str(cache)
    try:
        cfg = cli.config_from_args(cli.build_parser().parse_args(["run", "--out", str(out), *TINY]))
        E.run_sweep(cfg, out, progress=False)
    finally:
        os.environ.pop("W2SG_CACHE") if old is None else os.environ.update(W2SG_CACHE=old)
    return out


def _shard(out, i, n, cache):
    cmd = [sys.executable, "-m", "w2sg_utils", "run", "--out", str(out), *TINY, "--shard", f"{i}/{n}"]
    env = {**_env(), "W2SG_CACHE": str(cache), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)


def assert_same_store(out, ref):
    """Each run once, the same run ids, and the same predictions as the reference."""
    from w2sg_utils.experiments import RunStore

    a, b = RunStore(ref), RunStore(out)
    ra, rb = a.rows(), b.rows()
    assert rb["run_id"].is_unique and set(rb["run_id"]) == set(ra["run_id"])
    for rid in ra["run_id"]:
        x, y = a.load_artifact(rid), b.load_artifact(rid)
        assert y is not None and set(x) == set(y), rid
        for k in x:  # the same deterministic computation in another process
            np.testing.assert_array_equal(y[k], x[k], err_msg=f"{rid}:{k}")
    assert not list(Path(out).rglob("*.tmp"))


@pytest.mark.slow
def test_two_concurrent_shards_equal_one_unsharded_sweep(tmp_path, reference, cache):
    from w2sg_utils import experiments as E
    from w2sg_utils.experiments import cli

    procs = [_shard(tmp_path, i, 2, cache) for i in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]
    assert_same_store(tmp_path, reference)
    # each shard ran its own share (by run id), which together make the whole plan
    cfg = cli.config_from_args(cli.build_parser().parse_args(["run", "--out", "x", *TINY]))
    assert len(E.RunStore(tmp_path).rows()) == len(E.plan_runs(cfg))


@pytest.mark.slow
def test_killed_shard_restarted_loses_and_duplicates_nothing(tmp_path, reference, cache):
    import time

    from w2sg_utils.experiments import RunStore

    victim, other = _shard(tmp_path, 0, 2, cache), _shard(tmp_path, 1, 2, cache)
    deadline = time.monotonic() + 300
    while len(RunStore(tmp_path).rows()) < 1 and victim.poll() is None:
        assert time.monotonic() < deadline, "no row written"
        time.sleep(0.1)
    victim.send_signal(signal.SIGKILL)  # mid-sweep, most likely inside a run
    victim.communicate(timeout=60)
    assert victim.returncode == -signal.SIGKILL
    _, err = other.communicate(timeout=600)
    assert other.returncode == 0, err[-3000:]
    restarted = _shard(tmp_path, 0, 2, cache)
    _, err = restarted.communicate(timeout=600)
    assert restarted.returncode == 0, err[-3000:]
    assert_same_store(tmp_path, reference)
