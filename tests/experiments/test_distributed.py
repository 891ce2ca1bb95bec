"""Tests of w2sg_utils.experiments.distributed: one and several processes train the same model.

The two-process tests launch ``accelerate launch`` on CPU (gloo backend), as CI can.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from w2sg_utils.experiments import distributed as D
from w2sg_utils.experiments import models as M
from w2sg_utils.losses import get_objective

HERE = Path(__file__).resolve().parent


# ------------------------------------------------------------- shares of a minibatch

@pytest.mark.parametrize("b, micro, size", [(8, 4, 1), (8, 4, 2), (5, 2, 2), (1, 2, 2),
                                            (7, 3, 3), (2, 1, 4), (32, 8, 4)])
def test_minibatch_shares_cover_each_pair_once_with_unit_total_weight(b, micro, size):
    idx = list(range(100, 100 + b))
    shares = [list(D.split_minibatch(idx, micro, r, size)) for r in range(size)]
    real = [i for sh in shares for mb, num, _, _ in sh if num for i in mb]
    assert sorted(real) == idx  # every pair once, padding excluded
    # DDP averages over processes: the weights must sum to `size` (a mean of 1 per pair)
    total = sum(num / den for sh in shares for _, num, den, _ in sh)
    assert total == pytest.approx(size)
    for sh in shares:  # same passes everywhere; one synchronised pass, the last
        assert len(sh) == len(shares[0]) and [last for *_, last in sh] == [False] * (len(sh) - 1) + [True]
        assert all(len(mb) <= micro for mb, *_ in sh)


def test_single_process_shares_are_the_plain_microbatches():
    idx = [5, 3, 9, 1, 7]
    got = [(mb, num, den) for mb, num, den, _ in D.split_minibatch(idx, 2)]
    assert got == [([5, 3], 2, 5), ([9, 1], 2, 5), ([7], 1, 5)]


@pytest.mark.parametrize("n, bs, size", [(10, 3, 1), (10, 3, 2), (7, 4, 3), (2, 5, 4)])
def test_eval_shares_gather_each_pair_once(n, bs, size):
    order = np.random.default_rng(n).permutation(n)
    vals = np.random.default_rng(1).normal(size=n)
    keeps, values = [], []
    for r in range(size):
        batches, keep = D.split_eval(order, bs, r, size)
        scored = np.concatenate(batches)
        assert len(scored) == len(keep) == -(-n // size)  # equal length on every process
        assert np.all(scored[keep >= 0] == keep[keep >= 0])
        keeps.append(keep)
        values.append(vals[scored])
    out = D._scatter(np.concatenate(keeps), np.concatenate(values), n)
    np.testing.assert_array_equal(out, vals)


def test_gather_refuses_missing_or_duplicate_pairs():
    with pytest.raises(RuntimeError, match="once"):
        D._scatter(np.array([0, 0, 2]), np.zeros(3), 3)
    with pytest.raises(RuntimeError, match="once"):
        D._scatter(np.array([0, 1, -1]), np.zeros(3), 3)


def test_simulated_processes_average_to_the_single_process_gradient(tmp_path):
    """The share weights give DDP's average the one-process gradient (any share sizes)."""
    path = M.build_tiny_gpt2(tmp_path / "tiny")
    model, tok = M.load_causal_lm_reward(str(path), seed=0)
    texts = [f"pair {k} " + "word " * (3 + 2 * k) for k in range(7)]
    ids = [tok(t)["input_ids"] for t in texts]
    y = torch.linspace(0.1, 0.9, 7)
    from w2sg_utils.experiments.training import _collate

    def grad(size):
        model.zero_grad()
        obj = get_objective("bce")
        for r in range(size):
            for mb, num, den, _ in D.split_minibatch(list(range(7)), 2, r, size):
                x, mask = _collate([ids[i] for i in mb] + [ids[(i + 1) % 7] for i in mb], 0, "cpu")
                z = model.pair_logits(x, mask)
                loss = obj(z, y[mb], progress=0.0) if num else z.sum()
                (loss * num / den).backward()
        return torch.cat([p.grad.reshape(-1) for p in model.parameters()]) / size

    g1 = grad(1)
    for size in (2, 3):  # float32 summation order only: relative error ~1e-7 observed
        assert float(torch.linalg.norm(grad(size) - g1) / torch.linalg.norm(g1)) < 1e-5


# ----------------------------------------------------------- two processes (gloo, CPU)

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accelerate_cmd(n: int) -> list[str]:
    """``accelerate launch`` with ``n`` CPU processes (gloo) on a free local port."""
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
            "--num_processes", str(n), "--num_machines", "1", "--mixed_precision", "no",
            "--dynamo_backend", "no", "--main_process_ip", "127.0.0.1",
            "--main_process_port", str(free_port())]


def worker_env() -> dict:
    root = str(HERE.parents[1])
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
            "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}


@pytest.mark.slow
def test_two_gloo_processes_train_like_one(tmp_path):
    """Same predictions and last gradient, to float32 summation order, in 1 and 2 processes."""
    path = str(M.build_tiny_gpt2(tmp_path / "tiny"))
    worker = str(HERE / "_accelerate_worker.py")
    env = worker_env()
    one = subprocess.run([sys.executable, worker, str(tmp_path / "one.npz"), path], env=env,
                         capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run([*accelerate_cmd(2), worker, str(tmp_path / "two.npz"), path],
                         env=env, capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    a, b = np.load(tmp_path / "one.npz"), np.load(tmp_path / "two.npz")
    for k in ("pairs", "steps", "tokens"):
        assert int(a[k]) == int(b[k]), k
    # float32 with other summation orders: observed differences ~1e-6 (z of order 1);
    # the tolerance is 100x that, far below what a wrong weight or a lost pair gives.
    np.testing.assert_allclose(b["z"], a["z"], atol=1e-4)
    assert abs(float(a["loss"]) - float(b["loss"])) < 1e-5
    rel = np.linalg.norm(b["grad"] - a["grad"]) / np.linalg.norm(a["grad"])
    assert rel < 1e-4, rel


@pytest.mark.slow
def test_accelerate_launch_of_the_cli_stores_what_one_process_stores(tmp_path, monkeypatch):
    """``accelerate launch -m w2sg_utils run`` with 2 gloo processes, tiny-gpt2 preset:
    the same stored predictions as one process (same global batch and seeds), to float32
    summation order (observed <= 2e-6; tolerance 1e-4 as for the loop itself), and the
    store holds each run once (only the main process writes)."""
    from w2sg_utils import experiments as E
    from w2sg_utils.experiments import cli

    args = ["--preset", "tiny-gpt2", "--n-train-gt", "12", "--n-train-w2s", "12", "--n-test",
            "8", "--teacher-labels", "12", "--ensemble-size", "2", "--objectives", "bce",
            "--no-progress"]
    monkeypatch.setenv("W2SG_CACHE", str(tmp_path / "cache"))
    cfg = cli.config_from_args(cli.build_parser().parse_args(["run", "--out", "x", *args]))
    one = E.RunStore(tmp_path / "one")
    E.run_sweep(cfg, one.root, progress=False)
    env = {**worker_env(), "W2SG_CACHE": str(tmp_path / "cache")}
    r = subprocess.run([*accelerate_cmd(2), "-m", "w2sg_utils", "run", "--out",
                        str(tmp_path / "two"), *args], env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count(" runs in ") == 1  # one report: the main process's
    two = E.RunStore(tmp_path / "two")
    ra, rb = one.rows(), two.rows()
    assert len(rb) == len(E.plan_runs(cfg)) and rb["run_id"].is_unique
    assert set(rb["run_id"]) == set(ra["run_id"])
    for rid in ra["run_id"]:
        x, y = one.load_artifact(rid), two.load_artifact(rid)
        for k in x:
            np.testing.assert_allclose(y[k], x[k], atol=1e-4, err_msg=f"{rid}:{k}")
    np.testing.assert_allclose(rb.set_index("run_id").loc[ra["run_id"], "acc"], ra["acc"])


def test_embedding_preset_refuses_several_processes(monkeypatch, tmp_path):
    from w2sg_utils import experiments as E
    from w2sg_utils.experiments import sweep

    class Fake(D.SingleProcess):
        num_processes = 2

    monkeypatch.setattr(sweep, "processes", lambda device: Fake())
    with pytest.raises(ValueError, match="preset"):
        E.run_sweep(E.make_config(), tmp_path, progress=False)


@pytest.mark.parametrize("name, kind", [("ddp", "MULTI_GPU"), ("fsdp", "FSDP")])
def test_shipped_accelerate_configs(name, kind):
    """The accelerate config files load, keep the preset's precision and (FSDP) wrap
    GPT-2 blocks. FSDP needs GPUs, so it is not run on CPU."""
    from accelerate.commands.config.config_args import load_config_from_file

    cfg = load_config_from_file(str(HERE.parents[1] / "configs" / "accelerate" / f"{name}.yaml"))
    assert cfg.distributed_type.name == kind and cfg.mixed_precision == "no"
    assert cfg.num_machines == 1 and cfg.num_processes >= 2
    if kind == "FSDP":
        from transformers.models.gpt2 import modeling_gpt2

        f = cfg.fsdp_config
        assert f["fsdp_version"] == 2 and f["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
        assert hasattr(modeling_gpt2, f["fsdp_transformer_layer_cls_to_wrap"])
