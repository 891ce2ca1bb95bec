"""The GPU check's dry run (benchmarks/gpu_check.sh --dry-run): same code, tiny sizes, CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import gpu_check  # noqa: E402
import gpu_throughput  # noqa: E402


def test_flops_per_token_against_a_plain_count():
    """6N per token plus 12 L d x (its sequence's length), averaged over the tokens."""
    lengths = [3, 10, 7]
    n, L, d = 1000, 2, 8
    total = sum(ell * (6 * n + 12 * L * d * ell) for ell in lengths)
    assert gpu_throughput.flops_per_token(n, L, d, lengths) == pytest.approx(total / sum(lengths))


def test_peak_table():
    assert gpu_throughput.peak_flops("NVIDIA H100 80GB HBM3") == 989e12
    assert gpu_throughput.peak_flops("NVIDIA H100 PCIe") == 756e12
    assert gpu_throughput.peak_flops("NVIDIA H200") == 989e12
    assert gpu_throughput.peak_flops("Some Other GPU") is None


@pytest.mark.slow
def test_dry_run_writes_one_complete_json(tmp_path):
    out = tmp_path / "check.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHON": sys.executable}
    r = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--dry-run",
                        "--out", str(out)], env=env, capture_output=True, text=True, timeout=400)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    rep = json.loads(out.read_text())
    assert rep["ok"] and rep["dry_run"] and rep["seconds"] < rep["limit_seconds"]
    st = rep["stages"]
    assert set(st) == {"cuda_tests", "training_loop", "finetune_preset", "mpnet_pair"}
    assert st["cuda_tests"]["status"] in ("skipped", "passed") and st["cuda_tests"]["failed"] == 0
    assert st["cuda_tests"]["passed"] + st["cuda_tests"]["skipped"] >= 1
    loop = st["training_loop"]
    # GPT-2 block: 12 d^2 + 13 d weights and biases; final layer norm 2d; bias-free head d
    L, d = loop["n_layer"], loop["n_embd"]
    assert loop["params_nonembedding"] == L * (12 * d * d + 13 * d) + 3 * d
    for name in ("paper", "fast"):
        x = loop[name]
        assert x["tokens"] == loop["tokens"]  # both loops see every real token once
        assert x["pairs_per_s"] == pytest.approx(loop["pairs"] / x["seconds"])
        assert x["tokens_per_s"] == pytest.approx(loop["tokens"] / x["seconds"])
        assert x["mfu"] is None  # no peak known for a CPU
    assert np.isclose(loop["speedup"], loop["paper"]["seconds"] / loop["fast"]["seconds"])
    assert st["finetune_preset"]["status"] in ("passed", "not present")
    pair = st["mpnet_pair"]
    assert pair["status"] == "passed", pair.get("traceback")
    for k in ("student", "ceiling"):  # every train_w2s pair seen once (1 epoch)
        assert pair[k]["pairs"] == pair["spec"]["n_train"] * pair["spec"]["epochs"]
        assert pair[k]["seconds_per_pair"] == pytest.approx(
            pair[k]["train_seconds"] / pair[k]["pairs"])
        assert 0 <= pair[k]["acc"] <= 1


def test_finetune_stage_runs_a_preset_through_the_store(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_check, "FINETUNE_PRESETS", ("no-such-preset", "tiny-gpt2"))
    monkeypatch.setenv("W2SG_CACHE", str(tmp_path))
    r = gpu_check.finetune_preset(dry=True)
    assert r["status"] == "passed" and r["preset"] == "tiny-gpt2"
    assert r["runs"] == 3 and set(r["acc"]) == {"teacher", "ceiling", "student"}


def test_gpu_run_refused_without_cuda(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert gpu_check.main(["--out", "unused.json"]) == 2
    assert "--dry-run" in capsys.readouterr().err
