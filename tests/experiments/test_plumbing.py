"""The plumbing's promises, each checked directly (claim C9, Chapter 5): atomic writes
and digests, run ids and records that refuse what is not theirs, a store that loses no
run under concurrent writers, configuration checks naming their parameter, data and
embedding fingerprints that see every byte they identify, and a sweep that resumes an
unfinished run instead of skipping it. (Planted bugs: ``tests/mutants/catalog_plumbing.py``.)
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

from w2sg_utils import experiments as E
from w2sg_utils._common import atomic_write, atomic_write_text, file_sha256
from w2sg_utils.experiments import data as D
from w2sg_utils.experiments import sources as S
from w2sg_utils.experiments.records import check_run_id

pytestmark = pytest.mark.usefixtures("isolated_w2sg_cache")
MINI = "sentence-transformers/all-MiniLM-L6-v2"


# ------------------------------------------------------------------ atomic writes, digests
def test_failed_atomic_write_keeps_the_old_file_and_no_temporary(tmp_path):
    p = tmp_path / "results.csv"
    atomic_write_text(p, "old\n")

    def half_then_fail(f):
        f.write(b"new, half writ")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        atomic_write(p, half_then_fail)
    assert p.read_text() == "old\n"  # readers never see a partial file
    assert sorted(q.name for q in tmp_path.iterdir()) == ["results.csv"]  # no temporary


def test_file_sha256_reads_every_chunk(tmp_path):
    data = np.random.default_rng(0).bytes((1 << 22) + 12345)  # more than one 4 MiB chunk
    p = tmp_path / "big.bin"
    p.write_bytes(data)
    assert file_sha256(p) == hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------------ run store
@pytest.mark.parametrize("rid", ["..", ".hidden", "a/b", "", "a b"])
def test_run_ids_that_are_not_plain_file_names_are_refused(tmp_path, rid):
    with pytest.raises(ValueError, match="run_id"):
        check_run_id(rid)
    with pytest.raises(ValueError, match="run_id"):
        E.RunStore(tmp_path).append({"run_id": rid, "acc": 0.5})


def test_rewritten_artifact_with_its_old_checksum_is_refused(tmp_path):
    st = E.RunStore(tmp_path)
    st.save_artifact("a", z=np.arange(4.0))
    with np.load(st.artifact_path("a")) as f:
        kept = {k: f[k] for k in f.files}
    kept["z"] = kept["z"] + 1.0  # same id and checksum field, other numbers
    with open(st.artifact_path("a"), "wb") as f:
        np.savez(f, **kept)
    assert st.load_artifact("a") is None


_WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from w2sg_utils.experiments.store import RunStore
    root, tag, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
    st = RunStore(root)
    (Path(root) / f"ready-{tag}").touch()  # start together: the writes overlap
    while len(list(Path(root).glob("ready-*"))) < 3:
        time.sleep(0.01)
    for i in range(k):
        st.append({"run_id": f"{tag}{i:03d}", "acc": i / k})
""")


def test_concurrent_writers_keep_every_run_in_order(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), *sys.path])}
    root = tmp_path / "store"
    root.mkdir()
    procs = [subprocess.Popen([sys.executable, str(script), str(root), tag, "25"], env=env)
             for tag in "abc"]
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0]
    st = E.RunStore(root)
    recs, bad = st.records()
    assert not bad and len(recs) == 75
    assert sorted(r["seq"] for r in recs) == list(range(75))  # one position per run
    index = E.records.read_index(st.csv)  # rebuilt after every run: none missing
    assert sorted(index["run_id"]) == sorted(r["run_id"] for r in recs)


# ---------------------------------------------------------------------- configuration
def test_causal_lm_teacher_needs_a_causal_lm_preset():
    lm = {"kind": "causal_lm", "model": "gpt2", "lr": 1e-5, "batch_size": 8,
          "micro_batch_size": 4, "epochs": 1, "max_length": 64}
    for preset in ("hh-minilm-cpu", "minilm-finetune"):
        with pytest.raises(ValueError, match="teacher.kind"):
            E.make_config(preset, teacher=lm)


def test_finetune_dtype_is_float32_or_bfloat16():
    with pytest.raises(ValueError, match="strong.dtype"):
        E.make_config("minilm-finetune", strong={"dtype": "float16"})


def test_full_uses_the_full_sizes():
    full = E.make_config(full=True)
    assert full.sizes == E.get_preset("hh-minilm-cpu").config.full_sizes
    assert full.sizes.to_dict() == {"train_gt": 4000, "train_w2s": 4000, "test": 4000}
    assert E.make_config().sizes != full.sizes


def _model_folder(tmp_path, name, **config):
    d = tmp_path / name
    d.mkdir()
    (d / "config.json").write_text(json.dumps(config))
    return d


def test_model_max_length_leaves_out_mpnets_reserved_positions(tmp_path):
    from w2sg_utils.experiments.finetune import model_max_length

    mp = _model_folder(tmp_path, "mpnet", model_type="mpnet", max_position_embeddings=514,
                       pad_token_id=1)
    bert = _model_folder(tmp_path, "bert", model_type="bert", max_position_embeddings=512,
                         pad_token_id=0)
    assert model_max_length(str(mp)) == 512  # positions 0 and 1 are the padding's
    assert model_max_length(str(bert)) == 512


def _args(*argv):
    from w2sg_utils.experiments.cli import build_parser

    return build_parser().parse_args(["run", "--out", "x", *argv])


def test_command_line_overrides_reach_their_own_fields():
    from w2sg_utils.experiments.cli import config_from_args

    base = E.make_config()
    cfg = config_from_args(_args("--student-l2", "0.25"))
    assert cfg.strong.l2 == 0.25 and cfg.teacher == base.teacher
    assert config_from_args(_args("--n-seeds", "3")).seeds == (0, 1, 2)
    assert config_from_args(_args("--teacher-labels", "7")).teacher.n_labels == 7
    for opt in ("--student-model", "--teacher-model"):
        with pytest.raises(ValueError, match=opt[2:].replace("-", "_")):
            config_from_args(_args(opt, "gpt2"))  # causal-LM only: never silently ignored


# ------------------------------------------------------------------------------ data
def test_pair_fingerprint_sees_both_texts_and_the_labels():
    a, b, y = ("x1", "x2"), ("y1", "y2"), np.array([1, 0])
    ref = D.PairDataset(a, b, y).fingerprint
    assert D.PairDataset(a, ("y1", "y2 changed"), y).fingerprint != ref
    assert D.PairDataset(("x1 changed", "x2"), b, y).fingerprint != ref
    assert D.PairDataset(a, b, 1 - y).fingerprint != ref
    assert D.PairDataset(a, b, y.copy()).fingerprint == ref
    fp = D.data_fingerprint({"test": D.PairDataset(a, b, y)})
    assert fp != D.data_fingerprint({"test": D.PairDataset(a, ("y1", "y2 changed"), y)})


def test_boolean_class_labels_are_refused(tmp_path):
    p = tmp_path / "cls.jsonl"
    p.write_text('{"text": "hello", "label": true}\n{"text": "world", "label": false}\n')
    with pytest.raises(D.DataError, match=":1: key 'label' is not a class index"):
        D.load_hf_classification(str(p))


def _own_folder(d, fmt, rejected="bad"):
    import pandas as pd

    d.mkdir(parents=True)
    for split in D.SPLITS:
        rows = [{"chosen": f"Human: q{i} Assistant: good {split} {i}",
                 "rejected": f"Human: q{i} Assistant: {rejected} {i}"} for i in range(6)]
        if fmt == "jsonl":
            (d / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        else:
            pd.DataFrame(rows).to_csv(d / f"{split}.csv", index=False)
    return d


def test_changed_table_file_is_refused_against_its_manifest(tmp_path):
    d = _own_folder(tmp_path / "own", "csv")
    S.write_manifest(d)
    assert S.FolderSource(d).n_rows("test") == 6
    p = d / "test.csv"
    p.write_text(p.read_text().replace("good test 3", "good test three"))
    with pytest.raises(D.DataError, match="test.csv: SHA-256 .* does not match"):
        S.FolderSource(d).rows("test")


def test_data_label_sees_the_rejected_texts(tmp_path):
    sizes = {s: 6 for s in D.SPLITS}
    one = S.FolderSource(_own_folder(tmp_path / "one", "jsonl"))
    two = S.FolderSource(_own_folder(tmp_path / "two", "jsonl", rejected="poor"))
    same = S.FolderSource(_own_folder(tmp_path / "same", "jsonl"))
    lab = S.data_label(one, sizes).split("#")[1]
    assert lab == S.data_label(same, sizes).split("#")[1]
    assert lab != S.data_label(two, sizes).split("#")[1]


# ------------------------------------------------------------------------ embeddings
def test_encoder_cache_key_changes_with_the_weights(tmp_path):
    from w2sg_utils.experiments.embeddings import Encoder

    d = _model_folder(tmp_path, "enc", model_type="bert")
    (d / "model.safetensors").write_bytes(b"weights one")
    k1 = Encoder(str(d), max_length=16).key
    (d / "model.safetensors").write_bytes(b"weights two")
    assert Encoder(str(d), max_length=16).key != k1
    assert Encoder(str(d), max_length=32).key != Encoder(str(d), max_length=16).key


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    from w2sg_utils.experiments import embedding_artifact as A

    root = tmp_path_factory.mktemp("artifact")
    A.embed_split(MINI, "test", 4, max_length=32, root=root, chunk_rows=2, progress=False)
    return root


def _vectors(root, model_dir=None, **kw):
    from w2sg_utils.experiments.embedding_store import artifact_vectors
    from w2sg_utils.experiments.embeddings import resolve_model_path

    return artifact_vectors(MINI, model_dir or resolve_model_path(MINI), 32, root=root, **kw)


def test_artifact_vectors_only_from_verified_chunks_of_the_same_encoder(artifact, tmp_path):
    import shutil

    from w2sg_utils.experiments.embedding_artifact import artifact_dir
    from w2sg_utils.experiments.embeddings import text_hash

    rows = D.load_pairs("test")[:4]
    full = _vectors(artifact)
    assert set(full) == {text_hash(r[k]) for r in rows for k in ("chosen", "rejected")}
    assert _vectors(artifact, num_layers=1) == {}  # a truncated encoder's are its own
    other = tmp_path / "other-weights"
    other.mkdir()
    (other / "model.safetensors").write_bytes(b"not MiniLM")
    with pytest.warns(UserWarning, match="settings differ"):
        assert _vectors(artifact, model_dir=other) == {}
    root = tmp_path / "copy"
    shutil.copytree(artifact, root)
    chunk = artifact_dir(MINI, 32, root) / "test-00000.npz"
    with np.load(chunk) as z:
        ch, rj = z["chosen"], z["rejected"]
    with open(chunk, "wb") as f:  # valid file, other numbers, digest not updated
        np.savez(f, chosen=np.zeros_like(ch), rejected=rj)
    with pytest.warns(UserWarning, match="digest differs"):
        served = _vectors(root)
    assert text_hash(rows[0]["chosen"]) not in served
    assert text_hash(rows[2]["chosen"]) in served  # the intact chunk is still used


# ------------------------------------------------------------------------------ sweep
def test_run_with_an_artifact_but_no_record_is_finished_on_resume(tmp_path):
    from tests.experiments.small import SMALL

    cfg = E.make_config(**{**SMALL, "objectives": ["bce"], "ensemble_size": 0})
    ref = E.run_sweep(cfg, tmp_path, progress=False)
    st = E.RunStore(tmp_path)
    rid = ref[ref["stage"] == "student"]["run_id"].iloc[0]
    st.record_path(rid).unlink()  # killed after the artifact, before the record
    atomic_write_text(st.csv, E.records.index_text(st.records()[0]))
    new = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = E.run_sweep(cfg, tmp_path, progress=False, on_row=lambda r: new.append(r))
    assert [r["run_id"] for r in new] == [rid]  # recomputed and recorded, nothing else
    assert sorted(df["run_id"]) == sorted(ref["run_id"])


def test_pair_embeddings_refuse_a_pair_whose_label_does_not_match_its_texts(artifact):
    from w2sg_utils.experiments import embedding_artifact as A

    ds = D.load_hh_helpful({"test": 4}, seed=0)["test"]
    A.pair_embeddings(ds, MINI, 32, artifact)  # the seeded swap is undone
    wrong = D.PairDataset(ds.text_a, ds.text_b, 1 - ds.label, name="test")
    with pytest.raises(A.ArtifactError, match="pair 0 of 'test' is not row 0"):
        A.pair_embeddings(wrong, MINI, 32, artifact)


def test_embedding_cache_refuses_foreign_or_rewritten_shards(tmp_path):
    import shutil

    from w2sg_utils.experiments.embeddings import EmbeddingCache

    hashes = [hashlib.sha256(t.encode()).hexdigest() for t in ("a", "b")]
    emb = np.arange(6, dtype=np.float32).reshape(2, 3)
    mine = EmbeddingCache("key-one", tmp_path)
    shard = mine.save(hashes, emb)
    np.testing.assert_array_equal(mine.load()[hashes[1]], emb[1])
    other = EmbeddingCache("key-two", tmp_path)  # another encoder's folder
    other.dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(shard, other.dir / shard.name)
    with pytest.warns(UserWarning, match="invalid shard"):
        assert other.load() == {}
    with np.load(shard) as z:
        kept = {k: z[k] for k in z.files}
    kept["emb"] = kept["emb"] + 1.0  # same key and checksum fields, other vectors
    with open(shard, "wb") as f:
        np.savez(f, **kept)
    with pytest.warns(UserWarning, match="invalid shard"):
        assert mine.load() == {}


def test_manifest_of_another_file_is_named_in_the_error(tmp_path):
    import pandas as pd

    d = _own_folder(tmp_path / "own", "jsonl")
    S.write_manifest(d)
    (d / "test.jsonl").unlink()
    pd.DataFrame([{"chosen": "c", "rejected": "r"}] * 3).to_csv(d / "test.csv", index=False)
    with pytest.raises(D.DataError, match="lists test.jsonl for split 'test', but the "
                                          "folder's file is test.csv"):
        S.FolderSource(d).rows("test")


def test_chunk_of_other_texts_is_refused_as_stale(artifact, tmp_path):
    import shutil

    from w2sg_utils.experiments import embedding_artifact as A

    root = tmp_path / "copy"
    shutil.copytree(artifact, root)
    mf = A.artifact_dir(MINI, 32, root) / "manifest.json"
    man = json.loads(mf.read_text())
    man["splits"]["test"][1]["text_sha256"][0][1] = "0" * 64  # row 2's text changed
    mf.write_text(json.dumps(man))
    A.load_rows(MINI, "test", 2, 32, root)  # the first chunk is intact
    with pytest.raises(A.ArtifactError, match="test-00002.npz: file digest or texts "
                                              "differ"):
        A.load_rows(MINI, "test", 4, 32, root)
