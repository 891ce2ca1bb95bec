"""Tests of the run records and the rebuildable index (experiments.records, .store; C9)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from w2sg_utils.experiments import records as R
from w2sg_utils.experiments.store import RunStore

RESULTS = Path(__file__).resolve().parents[2] / "results"


def test_record_round_trip_and_tamper_detection():
    row = {"run_id": "r1", "acc": 0.1 + 0.2, "seed": np.int64(3), "pgr": float("nan"),
           "spec": '{"a": 1}', "note": "é"}
    data = R.encode_record("r1", row, 4, "ab" * 32)
    rec = R.decode_record(data, "r1")
    assert rec["seq"] == 4 and rec["artifact_sha256"] == "ab" * 32
    assert rec["row"] == {"run_id": "r1", "acc": 0.1 + 0.2, "seed": 3, "pgr": None,
                          "spec": '{"a": 1}', "note": "é"}
    assert list(rec["row"]) == list(row)  # column order kept
    assert R.decode_record(data, "r2") is None  # another run's record
    assert R.decode_record(data[:-5], "r1") is None  # truncated
    tampered = data.replace(b'"seed":3', b'"seed":4')
    assert tampered != data and R.decode_record(tampered, "r1") is None
    obj = json.loads(data)
    obj["record"]["seq"] = 5  # a valid JSON whose checksum no longer matches
    assert R.decode_record(json.dumps(obj).encode(), "r1") is None
    with pytest.raises(ValueError, match="run_id"):
        R.encode_record("../x", row, 0, None)
    with pytest.raises(ValueError, match="run_id"):
        R.encode_record("r2", row, 0, None)


@pytest.mark.parametrize("cut", [1, 7, 15])
def test_torn_index_is_detected_with_one_line_naming_the_file(tmp_path, cut):
    st = RunStore(tmp_path)
    for i in range(3):
        st.append({"run_id": f"r{i}", "acc": i / 3, "stage": "teacher"})
    text = st.csv.read_text()
    st.csv.write_text(text[:-cut])
    with pytest.raises(R.StoreError) as e:
        st.rows()
    msg = str(e.value)
    assert "\n" not in msg and str(st.csv) in msg and f"w2sg repair --out {tmp_path}" in msg
    rep = st.repair()
    assert rep.kept == 3 and rep.index_rebuilt and not rep.dropped
    assert st.csv.read_text() == text


def test_stale_or_missing_index_is_rebuilt_from_records(tmp_path):
    st = RunStore(tmp_path)
    st.append({"run_id": "a", "acc": 0.5})
    st.append({"run_id": "b", "acc": 0.25})
    full = st.rows()
    st.csv.write_text("run_id,acc\na,0.5\n")  # a crash between record and index
    pd.testing.assert_frame_equal(st.rows(), full)
    st.csv.unlink()
    pd.testing.assert_frame_equal(st.rows(), full)
    assert st.done() == {"a", "b"}


def test_repair_drops_exactly_the_broken_runs(tmp_path):
    st = RunStore(tmp_path)
    for rid in ("a", "b", "c", "d"):
        st.save_artifact(rid, z=np.arange(4.0) + ord(rid))
        st.append({"run_id": rid, "acc": 0.5})
    assert st.record("a")["artifact_sha256"] == R.file_sha256(st.artifact_path("a"))
    p = st.record_path("b")  # a record whose checksum fails
    p.write_bytes(p.read_bytes().replace(b'"acc":0.5', b'"acc":0.6'))
    with pytest.raises(R.StoreError, match="w2sg repair"):
        st.rows()
    a = st.artifact_path("c")  # a truncated artifact
    a.write_bytes(a.read_bytes()[:40])
    st.artifact_path("d").unlink()  # a missing artifact
    rep = st.repair()
    assert rep.dropped == {"b": "record fails its checksum", "c": "artifact fails its checksum",
                           "d": "artifact missing"}
    assert rep.kept == 1 and list(st.rows()["run_id"]) == ["a"]
    assert st.done() == {"a"}
    assert len(list((tmp_path / "quarantine").rglob("*"))) >= 3  # kept aside, not deleted
    again = st.repair()
    assert again.kept == 1 and not again.dropped and not again.index_rebuilt


def test_recomputed_artifact_of_a_finished_run_updates_its_record(tmp_path):
    st = RunStore(tmp_path)
    st.append({"run_id": "a", "acc": 0.5})  # a run without artifact (old store)
    assert st.record("a")["artifact_sha256"] is None
    st.save_artifact("a", z=np.ones(3))
    assert st.record("a")["artifact_sha256"] == R.file_sha256(st.artifact_path("a"))
    assert not st.repair().dropped


@pytest.mark.parametrize("name", ["ch05_minilm_frozen", "ch05_hh_minilm_full"])
def test_committed_store_is_read_and_migrated_unchanged(tmp_path, name):
    """An old store (results.csv + artifacts/): read as it is, migrated to records on
    repair with the same index, byte for byte; a torn last line is left out."""
    src = RESULTS / name
    if not (src / "results.csv").is_file():
        pytest.skip(f"results/{name} not present")
    d = tmp_path / name
    shutil.copytree(src, d)
    text = (d / "results.csv").read_text()
    st = RunStore(d, create=False)
    before = st.rows()
    pd.testing.assert_frame_equal(before, pd.read_csv(src / "results.csv"))
    assert not st.has_records()
    rep = st.repair()
    assert rep.migrated and rep.kept == len(before) and not rep.dropped
    assert (d / "results.csv").read_text() == text
    pd.testing.assert_frame_equal(st.rows(), before)
    # torn old store: the complete lines are kept
    shutil.rmtree(d)
    shutil.copytree(src, d)
    (d / "results.csv").write_text(text[:-25])
    with pytest.raises(R.StoreError, match="torn"):
        RunStore(d).rows()
    rep = RunStore(d).repair()
    assert rep.torn_lines == 1 and rep.kept == len(before) - 1
    assert (d / "results.csv").read_text() == text[:text.rstrip("\n").rfind("\n") + 1]


def test_committed_run_ids_are_unchanged():
    """The run ids of an unchanged configuration on the shipped data are those of the
    committed sweep (the data identity of the shipped data adds nothing to them)."""
    from w2sg_utils import experiments as E
    from w2sg_utils.experiments.data import data_fingerprint, load_hh_helpful

    src = RESULTS / "ch05_minilm_frozen" / "results.csv"
    if not src.is_file():
        pytest.skip("results/ch05_minilm_frozen not present")
    committed = pd.read_csv(src)
    cfg = E.make_config("hh-minilm-cpu", sizes={"train_gt": 400, "train_w2s": 160,
                                                "test": 300},
                        seeds=[0, 1, 2], objectives=["bce", "reverse_bce"],
                        l2_grid=[0.0, 0.001], ensemble_size=0)
    ids = set()
    for seed in cfg["seeds"]:
        dh = data_fingerprint(load_hh_helpful(cfg["sizes"], seed=seed))
        ids |= {E.run_id(cfg, s, dh) for s in E.plan_runs(cfg) if s["seed"] == seed}
    assert ids == set(committed["run_id"])


def test_all_digit_run_ids_stay_text(tmp_path):
    """A hex run id can be all digits (about 1 in 2000): never read as a number."""
    rid = "0123456789012345"
    old = tmp_path / "old"
    old.mkdir()
    (old / "results.csv").write_text(f"run_id,data_hash,acc\n{rid},0000000000000001,0.5\n")
    assert list(RunStore(old, create=False).rows()["run_id"]) == [rid]
    st = RunStore(old)
    st.repair()
    assert st.record_ids() == {rid} and list(st.rows()["data_hash"]) == ["0000000000000001"]
    st.append({"run_id": "9" * 16, "acc": 0.1})
    assert list(st.rows()["run_id"]) == [rid, "9" * 16]
