"""CUDA-marked tests (claim C9 loops on a GPU): skipped without CUDA.

``benchmarks/gpu_check.sh`` runs them (``pytest -m cuda``) on a GPU machine; on CPU they
are collected and skipped.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from w2sg_utils import experiments as E
from w2sg_utils.experiments import models as M
from w2sg_utils.experiments import training as T
from w2sg_utils.experiments.data import load_hh_helpful
from w2sg_utils.losses import get_objective

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
KW = dict(lr=1e-3, batch_size=8, epochs=1, max_length=48, seed=3, progress=False)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return str(M.build_tiny_gpt2(tmp_path_factory.mktemp("tiny")))


@pytest.fixture(scope="module")
def pairs():
    return load_hh_helpful({"train_gt": 4, "train_w2s": 16, "test": 4}, seed=0)["train_w2s"]


def _train(tiny, ds, device, bf16=False):
    m, tok = M.load_causal_lm_reward(tiny, seed=0)
    y = np.linspace(0.1, 0.9, len(ds))
    T.train_reward_model(m, tok, ds.text_a, ds.text_b, y, get_objective("bce"),
                         micro_batch_size=4, device=device, bf16=bf16, **KW)
    return m, tok


def test_fp32_loop_on_cuda_matches_cpu(tiny, pairs):
    """Same update on both devices: fp32 (TF32 off, torch's default for matmuls)."""
    zs = []
    for dev in ("cpu", "cuda"):
        m, tok = _train(tiny, pairs, dev)
        zs.append(T.reward_logits(m, tok, pairs.text_a, pairs.text_b, max_length=48,
                                  device=dev, progress=False))
    np.testing.assert_allclose(zs[1], zs[0], atol=1e-4)  # the CPU loop-equivalence tolerance


def test_bf16_predictions_track_fp32(tiny, pairs):
    """bf16 autocast keeps 8 significant bits (unit roundoff 2^-8 ~ 0.4%): logits of a
    random tiny model agree within a few percent of their scale."""
    m, tok = M.load_causal_lm_reward(tiny, seed=0)
    kw = dict(max_length=48, device="cuda", progress=False)
    z32 = T.reward_logits(m, tok, pairs.text_a, pairs.text_b, **kw)
    z16 = T.reward_logits(m, tok, pairs.text_a, pairs.text_b, bf16=True, **kw)
    assert np.max(np.abs(z16 - z32)) <= 0.05 * max(1.0, np.max(np.abs(z32)))


def test_bf16_training_steps_are_finite(tiny, pairs):
    m, tok = M.load_causal_lm_reward(tiny, seed=0)
    st = T.train_reward_model(m, tok, pairs.text_a, pairs.text_b, np.full(len(pairs), 0.7),
                              get_objective("reverse_bce"), micro_batch_size=4, device="cuda",
                              bf16=True, **KW)
    assert np.isfinite(st["loss"]) and st["steps"] == 2


def test_tiny_preset_sweep_on_cuda(tmp_path, monkeypatch):
    monkeypatch.setenv("W2SG_CACHE", str(tmp_path / "cache"))
    cfg = E.make_config("tiny-gpt2", sizes={"train_gt": 12, "train_w2s": 12, "test": 8},
                        teacher={"n_labels": 12}, ensemble_size=0, device="cuda")
    df = E.run_sweep(cfg, tmp_path / "out", progress=False)
    assert len(df) == len(E.plan_runs(cfg)) and df["run_id"].is_unique
    assert np.all(np.isfinite(df["acc"]))
