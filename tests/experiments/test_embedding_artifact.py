"""The embedding artifact: chunked, resumable, verified; the shipped one recomputed (C9)."""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pytest

from w2sg_utils.experiments import embedding_artifact as A
from w2sg_utils.experiments.data import load_hh_helpful, load_pairs
from w2sg_utils.experiments.embeddings import Encoder, resolve_model_path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
MINI = "sentence-transformers/all-MiniLM-L6-v2"
MPNET = "sentence-transformers/all-mpnet-base-v2"
# float16 keeps 11 significant bits: each coordinate (|x| <= 1 on a unit vector) moves by
# at most 2 ** -12 |x| <= 2.5e-4 when rounded; float32 batching / padding adds ~1e-5.
ATOL = 2.0 ** -12 + 1e-4


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("artifact")
    A.embed_split(MINI, "test", 6, max_length=32, root=root, chunk_rows=4, progress=False)
    return root


def test_artifact_matches_the_encoder_and_its_manifest(small):
    folder = A.artifact_dir(MINI, 32, small)
    man = json.loads((folder / "manifest.json").read_text())
    assert [(c["start"], c["stop"]) for c in man["splits"]["test"]] == [(0, 4), (4, 6)]
    assert man["truncation_side"] == "left" and man["max_length"] == 32
    assert man["model_sha256"] == A.model_sha256(MINI)
    ch, rj = A.load_rows(MINI, "test", 6, max_length=32, root=small)
    rows = load_pairs("test")[:6]
    ref = Encoder(MINI, max_length=32).encode([r["chosen"] for r in rows]
                                              + [r["rejected"] for r in rows], progress=False)
    np.testing.assert_allclose(ch, ref[:6], atol=ATOL)
    np.testing.assert_allclose(rj, ref[6:], atol=ATOL)
    # a prefix is served from the same chunks
    np.testing.assert_array_equal(A.load_rows(MINI, "test", 3, 32, small)[0], ch[:3])


def test_resume_keeps_valid_chunks_and_extends(small):
    folder = A.artifact_dir(MINI, 32, small)
    before = (folder / "test-00000.npz").stat().st_mtime_ns
    A.embed_split(MINI, "test", 8, max_length=32, root=small, chunk_rows=4, progress=False)
    assert (folder / "test-00000.npz").stat().st_mtime_ns == before  # not recomputed
    assert A.load_rows(MINI, "test", 8, 32, small)[0].shape[0] == 8


def test_missing_or_corrupted_rows_are_refused_or_recomputed(small, tmp_path):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(small, root)
    # 8 rows in two chunks, whether or not the resume test ran first (a no-op if it did)
    A.embed_split(MINI, "test", 8, max_length=32, root=root, chunk_rows=4, progress=False)
    with pytest.raises(A.ArtifactError, match="rows missing or stale"):
        A.load_rows(MINI, "test", 12, 32, root)
    f = A.artifact_dir(MINI, 32, root) / "test-00004.npz"
    good = A.load_rows(MINI, "test", 8, 32, root)
    with np.load(f) as z:
        ch, rj = z["chosen"].copy(), z["rejected"].copy()
    np.savez(f, chosen=ch + np.float16(0.01), rejected=rj)  # tampered chunk
    with pytest.raises(A.ArtifactError, match="stale chunk"):
        A.load_rows(MINI, "test", 8, 32, root)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        again = A.load_rows(MINI, "test", 8, 32, root, on_missing="compute")
    assert any("computing them now" in str(x.message) for x in w)
    np.testing.assert_allclose(again[0], good[0], atol=ATOL)
    with pytest.warns(UserWarning, match="digest differs; not used"):
        vec = A.artifact_vectors(MINI, resolve_model_path(MINI), 32, root=root)
    assert vec.keys().isdisjoint(A.text_hash(r["chosen"]) for r in load_pairs("test")[4:8])
    assert A.text_hash(load_pairs("test")[0]["chosen"]) in vec


def test_stale_settings_are_refused(small, tmp_path):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(small, root)
    mf = A.artifact_dir(MINI, 32, root) / "manifest.json"
    man = json.loads(mf.read_text())
    man["model_sha256"] = "0" * 64  # weights changed since the artifact was made
    mf.write_text(json.dumps(man))
    with pytest.raises(A.ArtifactError, match="model_sha256"):
        A.load_rows(MINI, "test", 4, 32, root)
    with pytest.raises(A.ArtifactError, match="settings differ"):
        A.embed_split(MINI, "test", 4, max_length=32, root=root, progress=False)
    with pytest.warns(UserWarning, match="settings differ"):
        assert A.artifact_vectors(MINI, resolve_model_path(MINI), 32, root=root) == {}


def test_pair_embeddings_undo_the_seeded_swap(small):
    # 8 rows, whether or not the resume test ran first (a no-op if it did)
    A.embed_split(MINI, "test", 8, max_length=32, root=small, chunk_rows=4, progress=False)
    ch, rj = A.load_rows(MINI, "test", 8, 32, small)
    for seed in (0, 5):
        ds = load_hh_helpful({"test": 8}, seed=seed)["test"]
        a, b = A.pair_embeddings(ds, MINI, 32, small)
        lab = ds.label == 1
        np.testing.assert_array_equal(a[lab], ch[lab])
        np.testing.assert_array_equal(b[lab], rj[lab])
        np.testing.assert_array_equal(a[~lab], rj[~lab])
    assert not np.all(load_hh_helpful({"test": 8}, seed=0)["test"].label == 1)


def test_bad_arguments_fail_early(small):
    with pytest.raises(ValueError, match="split"):
        A.load_rows(MINI, "train", 4, 32, small)
    with pytest.raises(ValueError, match="on_missing"):
        A.load_rows(MINI, "test", 4, 32, small, on_missing="reuse")
    with pytest.raises(ValueError, match="n_rows"):
        A.load_rows(MINI, "test", 0, 32, small)


def _shipped(model):
    mf = A.artifact_dir(model, 128) / "manifest.json"
    man = json.loads(mf.read_text()) if mf.is_file() else None
    if not man or not man.get("splits"):
        pytest.skip(f"no shipped artifact for {model}")
    return man


@pytest.mark.parametrize("model", [MINI, MPNET])
def test_shipped_artifact_recomputed_on_a_random_sample(model):
    """Three random rows of each shipped split, re-encoded with the real model."""
    man = _shipped(model)
    rng = np.random.default_rng(20261206)
    enc = Encoder(model, max_length=128)
    for split, chunks in sorted(man["splits"].items()):
        n = max(c["stop"] for c in chunks)
        ch, rj = A.load_rows(model, split, n)  # verified: settings, digests, texts
        rows = load_pairs(split)
        pick = rng.choice(n, size=3, replace=False)
        ref = enc.encode([rows[i]["chosen"] for i in pick]
                         + [rows[i]["rejected"] for i in pick], progress=False)
        np.testing.assert_allclose(ch[pick], ref[:3], atol=ATOL)
        np.testing.assert_allclose(rj[pick], ref[3:], atol=ATOL)
        # the check can fail: a neighbouring row's vector is far outside the tolerance
        assert np.abs(ch[(pick + 1) % n] - ref[:3]).max() > 10 * ATOL


def test_embed_texts_reads_the_artifact_instead_of_encoding(small, tmp_path, monkeypatch):
    from w2sg_utils.experiments.embeddings import embed_texts

    monkeypatch.setenv("W2SG_EMBEDDINGS", str(small))
    enc = Encoder(MINI, max_length=32)

    def refuse(*args, **kwargs):
        raise AssertionError("encoded although the artifact holds the texts")

    monkeypatch.setattr(enc, "encode", refuse)
    rows = load_pairs("test")[:4]
    e = embed_texts([r["rejected"] for r in rows], enc, progress=False, root=tmp_path)
    np.testing.assert_array_equal(e, A.load_rows(MINI, "test", 4, 32, small)[1])
    other = Encoder(MINI, max_length=32, num_layers=1)  # another encoder: not served
    monkeypatch.setattr(other, "encode", refuse)
    with pytest.raises(AssertionError, match="encoded although"):
        embed_texts([rows[0]["chosen"]], other, progress=False, root=tmp_path)


def test_embed_command_validates_then_writes(tmp_path, capsys):
    from w2sg_utils.experiments.cli import main

    for bad, name in ((["--split", "train"], "--split"), (["--split", "test", "--rows", "1,2"],
                      "--rows"), (["--split", "test", "--rows", "0"], "--rows"),
                      (["--max-length", "1"], "--max-length")):
        with pytest.raises(SystemExit) as e:
            main(["embed", "--model", MINI, "--out", str(tmp_path), *bad])
        assert e.value.code == 2 and name in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing written before the arguments pass
    assert main(["embed", "--model", MINI, "--split", "test", "--rows", "3", "--max-length",
                 "32", "--out", str(tmp_path), "--no-progress"]) == 0
    assert A.available_rows(MINI, "test", 32, tmp_path) == 3
