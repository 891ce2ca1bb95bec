"""Tests of w2sg_utils.experiments.models, .training and .embeddings (claim C9, Chapter 5)."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import torch

from w2sg_utils.experiments import embeddings as EM
from w2sg_utils.experiments import models as M
from w2sg_utils.experiments import training as T
from w2sg_utils.experiments.data import load_hh_helpful
from w2sg_utils.losses import get_objective

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def pairs():
    return load_hh_helpful({"train_gt": 40, "train_w2s": 16, "test": 8}, seed=0)


# ------------------------------------------------------------------------ heads

@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_pair_head_is_antisymmetric_and_bias_free(kind):
    torch.manual_seed(0)
    h = M.PairHead(8, kind, hidden=5)
    torch.nn.init.normal_(h.head.weight)
    a, b = torch.randn(4, 8), torch.randn(4, 8)
    torch.testing.assert_close(h(a, b), -h(b, a))
    torch.testing.assert_close(h(a, a), torch.zeros(4))
    assert h.head.bias is None


def test_pair_head_argument_errors():
    with pytest.raises(ValueError, match="kind"):
        M.PairHead(8, "cnn")
    with pytest.raises(ValueError, match="dim"):
        M.PairHead(0)


def test_train_head_fits_a_linear_teacher():
    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(300, 6)), rng.normal(size=(300, 6))
    w = rng.normal(size=6)
    y = M.sigmoid((A - B) @ w)
    h = T.train_head(M.PairHead(6), A, B, y, get_objective("bce"), epochs=200, lr=5e-2)
    z = T.head_logits(h, A, B)
    assert np.corrcoef(z, (A - B) @ w)[0, 1] > 0.99
    with pytest.raises(ValueError, match="l2"):
        T.train_head(M.PairHead(6), A, B, y, get_objective("bce"), l2=-1.0)
    with pytest.raises(ValueError, match="targets"):
        T.train_head(M.PairHead(6), A, B, y + 1, get_objective("bce"))


def test_tfidf_teacher(pairs):
    gt = pairs["train_gt"]
    t = M.TfidfTeacher(C=10.0).fit(gt.text_a, gt.text_b, gt.label)
    z = t.logits(gt.text_a, gt.text_b)
    np.testing.assert_allclose(t.logits(gt.text_b, gt.text_a), -z, atol=1e-12)
    assert np.mean((z > 0) == (gt.label == 1)) > 0.5  # fits its own training pairs
    with pytest.raises(ValueError, match="C"):
        M.TfidfTeacher(C=0)
    with pytest.raises(ValueError, match="single class"):
        M.TfidfTeacher().fit(gt.text_a[:3], gt.text_b[:3], np.ones(3))


# ------------------------------------------------------------------- embeddings

def test_embedding_cache_roundtrip_and_validation(tmp_path, pairs):
    texts = list(pairs["test"].text_a[:4]) + ["short text"]
    enc = EM.Encoder(max_length=32)
    e1 = EM.embed_texts(texts, enc, progress=False, root=tmp_path)
    np.testing.assert_allclose(np.linalg.norm(e1, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(e1, enc.encode(texts, progress=False), atol=1e-5)
    cache = EM.EmbeddingCache(enc.key, tmp_path)
    assert set(cache.load()) == {EM.text_hash(t) for t in texts}
    # a corrupted shard is ignored (with a warning) and the texts are recomputed
    shard = next(cache.dir.glob("shard-*.npz"))
    shard.write_bytes(b"corrupt")
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        e2 = EM.embed_texts(texts, enc, progress=False, root=tmp_path)
    assert any("invalid shard" in str(x.message) for x in w)
    np.testing.assert_allclose(e1, e2, atol=1e-5)
    # a weaker (truncated) encoder has another key and other vectors
    weak = EM.Encoder(max_length=32, num_layers=1)
    assert weak.key != enc.key
    assert not np.allclose(EM.embed_texts(texts, weak, progress=False, root=tmp_path), e1, atol=1e-3)


def test_encoder_argument_errors():
    with pytest.raises(ValueError, match="max_length"):
        EM.Encoder(max_length=1)
    with pytest.raises(ValueError, match="num_layers"):
        EM.Encoder(num_layers=0)
    with pytest.raises(ValueError, match="truncation_side"):
        EM.Encoder(truncation_side="middle")


def test_offline_model_path_and_cache_dir(monkeypatch, tmp_path):
    p = EM.resolve_model_path(EM.DEFAULT_ENCODER)
    assert os.path.isdir(p) and os.path.isfile(os.path.join(p, "config.json"))
    assert EM.resolve_model_path("some-org/some-model") == "some-org/some-model"
    monkeypatch.setenv("W2SG_CACHE", str(tmp_path / "c"))
    assert EM.cache_dir() == tmp_path / "c"


# -------------------------------------------------------------------- tiny GPT-2

@pytest.fixture(scope="module")
def tiny(tmp_path_factory, pairs):
    texts = list(pairs["train_gt"].text_a) + list(pairs["train_gt"].text_b)
    path = M.build_tiny_gpt2(tmp_path_factory.mktemp("tiny"), n_layer=2, n_embd=32, n_head=2,
                             n_positions=128, vocab_size=300, texts=texts)
    return str(path)


def test_tiny_gpt2_is_built_offline_and_reused(tiny, pairs):
    assert os.path.isfile(os.path.join(tiny, "config.json"))
    mtime = os.path.getmtime(os.path.join(tiny, "config.json"))
    again = M.build_tiny_gpt2(tiny, n_layer=2, n_embd=32, n_head=2, n_positions=128,
                              vocab_size=300)
    assert str(again) == tiny and os.path.getmtime(os.path.join(tiny, "config.json")) == mtime
    with pytest.raises(ValueError, match="n_head"):
        M.build_tiny_gpt2(tiny + "-x", n_embd=30, n_head=4)


def test_last_token_reward_ignores_left_padding(tiny):
    model, tok = M.load_causal_lm_reward(tiny, seed=0)
    ids = tok(["\n\nHuman: hello there\n\nAssistant: hi"])["input_ids"][0]
    r1 = model(torch.tensor([ids]), torch.ones(1, len(ids), dtype=torch.long))
    padded = torch.tensor([[tok.pad_token_id] * 5 + ids])
    mask = torch.tensor([[0] * 5 + [1] * len(ids)])
    r2 = model(padded, mask)
    torch.testing.assert_close(r1, r2, atol=1e-5, rtol=1e-5)
    assert model.head.bias is None


def test_fast_loop_matches_paper_loop(tiny, pairs):
    """Dynamic-padding microbatches compute the same update as minibatch-1 accumulation.

    In float64: in float32, Adam turns rounding noise into full steps of size ``lr`` for
    the parameters whose exact gradient is zero (the final layer norm's bias cancels in
    ``r(a) - r(b)``), so only a tolerance of the order of ``lr`` would hold there."""
    ds = pairs["train_w2s"]
    y = np.linspace(0.1, 0.9, len(ds))
    kw = dict(lr=1e-3, batch_size=8, epochs=1, max_length=48, seed=3, progress=False)
    m1, tok = M.load_causal_lm_reward(tiny, seed=0)
    m2, _ = M.load_causal_lm_reward(tiny, seed=0)
    m1.double()
    m2.double()
    s1 = T.train_reward_model(m1, tok, ds.text_a, ds.text_b, y, get_objective("bce"),
                              micro_batch_size=4, **kw)
    s2 = T.train_reward_model_paper(m2, tok, ds.text_a, ds.text_b, y, get_objective("bce"), **kw)
    assert s1["steps"] == s2["steps"] == 2 and s1["pairs"] == s2["pairs"] == len(ds)
    assert s1["tokens"] >= s2["tokens"]  # padding is the only extra work
    for p1, p2 in zip(m1.parameters(), m2.parameters()):
        torch.testing.assert_close(p1, p2, atol=1e-9, rtol=1e-9)
    z1 = T.reward_logits(m1, tok, ds.text_a, ds.text_b, max_length=48, progress=False)
    z2 = T.reward_logits(m2, tok, ds.text_a, ds.text_b, max_length=48, batch_size=1, progress=False)
    np.testing.assert_allclose(z1, z2, atol=1e-9)


def test_gradient_checkpointing_option(tiny, pairs):
    ds = pairs["train_w2s"]
    m, tok = M.load_causal_lm_reward(tiny, gradient_checkpointing=True, seed=0)
    st = T.train_reward_model(m, tok, ds.text_a[:8], ds.text_b[:8], np.full(8, 0.7),
                              get_objective("reverse_bce"), lr=1e-3, batch_size=8,
                              micro_batch_size=8, epochs=1, max_length=32, progress=False)
    assert np.isfinite(st["loss"])


def test_loop_argument_errors(tiny, pairs):
    ds = pairs["train_w2s"]
    m, tok = M.load_causal_lm_reward(tiny, seed=0)
    y = np.full(len(ds), 0.5)
    obj = get_objective("bce")
    with pytest.raises(ValueError, match="bf16"):
        T.train_reward_model(m, tok, ds.text_a, ds.text_b, y, obj, bf16=True, progress=False)
    with pytest.raises(ValueError, match="micro_batch_size"):
        T.train_reward_model(m, tok, ds.text_a, ds.text_b, y, obj, micro_batch_size=0,
                             progress=False)
    with pytest.raises(ValueError, match="targets"):
        T.train_reward_model_paper(m, tok, ds.text_a, ds.text_b, y[:-1], obj, progress=False)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            T.train_reward_model(m, tok, ds.text_a, ds.text_b, y, obj, device="cuda",
                                 progress=False)


def test_embedding_shards_are_written_per_chunk(tmp_path):
    enc = EM.Encoder(max_length=16)
    texts = [f"text number {i}" for i in range(5)]
    e = EM.embed_texts(texts, enc, progress=False, root=tmp_path, shard_size=2)
    assert len(list(EM.EmbeddingCache(enc.key, tmp_path).dir.glob("shard-*.npz"))) == 3
    np.testing.assert_allclose(EM.embed_texts(texts[::-1], enc, progress=False, root=tmp_path),
                               e[::-1])
    with pytest.raises(ValueError, match="shard_size"):
        EM.embed_texts(texts, enc, shard_size=0, root=tmp_path)
