"""The committed full-split logits (issue 17, claim C9, Chapter 5's
sec-ch05-full): results/ch05_hh_minilm_full/logits16.npz matches its
checksum and the committed results.csv, and the packing refuses what it
cannot keep exactly."""

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from w2sg_utils._common import file_sha256
from w2sg_utils.experiments import load_hh_helpful
from w2sg_utils.experiments.packed_logits import (
    CHECKSUM,
    LOGITS16,
    SIGNS,
    PackedStore,
    open_store,
    pack_logits16,
    pack_signs,
)
from w2sg_utils.experiments.records import TEXT_COLUMNS
from w2sg_utils.experiments.store import RunStore

FULL = Path(__file__).resolve().parents[1] / "results" / "ch05_hh_minilm_full"


def test_checksum_matches_the_shipped_file():
    want = (FULL / CHECKSUM).read_text().split()
    assert want[1] == LOGITS16
    assert file_sha256(FULL / LOGITS16) == want[0]
    assert (FULL / LOGITS16).stat().st_size < 3_000_000


def test_every_run_has_logits_giving_its_committed_accuracy():
    df = pd.read_csv(FULL / "results.csv", dtype=TEXT_COLUMNS)
    st = PackedStore(FULL)
    runs = df[df["stage"] != "bias_variance"]
    with np.load(FULL / LOGITS16) as f:
        packed = [str(i) for i in f["ids"]]
    assert len(runs) == 185 and sorted(packed) == sorted(runs["run_id"])
    for bv in df.loc[df["stage"] == "bias_variance", "run_id"]:
        assert st.load_artifact(bv) is None
    labels = {
        s: load_hh_helpful({"test": 4000}, seed=s)["test"].label
        for s in range(5)
    }
    for r in runs.itertuples():
        z = st.load_artifact(r.run_id)["z_test"]
        y = labels[int(r.seed)]
        assert z.shape == (4000,)
        acc = np.where(z == 0, 0.5, (z > 0) == (y == 1)).mean()
        # accuracies of 4000 pairs step by 1/8000: exact up to rounding
        assert abs(acc - r.acc) < 1e-12, r.run_id
        # a sign flip (a planted bug) would be far off
        flipped = np.where(z == 0, 0.5, (z < 0) == (y == 1)).mean()
        assert abs(flipped - r.acc) > 0.1


def test_a_changed_file_is_refused(tmp_path):
    for name in ("results.csv", LOGITS16, CHECKSUM):
        shutil.copy(FULL / name, tmp_path / name)
    PackedStore(tmp_path)  # an exact copy opens
    with np.load(tmp_path / LOGITS16) as f:
        ids, z = f["ids"], f["z_test"].copy()
    z[0, 0] = -z[0, 0] if z[0, 0] else 1
    np.savez_compressed(tmp_path / LOGITS16, ids=ids, z_test=z)
    with pytest.raises(ValueError, match="does not match"):
        PackedStore(tmp_path)


def _store(root, z):
    st = RunStore(root)
    rid = "0123456789abcdef"
    st.save_artifact(rid, z_test=np.asarray(z, dtype=np.float64))
    st.append({"run_id": rid, "stage": "student", "seed": 0, "acc": 0.5})
    return rid


def test_pack_round_trip_and_refusals(tmp_path):
    z = np.array([-3.25, 0.0, 1.5, 24.0])
    rid = _store(tmp_path / "a", z)
    pack_logits16(tmp_path / "a", tmp_path / "out")
    shutil.copy(tmp_path / "a" / "results.csv", tmp_path / "out")
    got = PackedStore(tmp_path / "out").load_artifact(rid)["z_test"]
    assert np.array_equal(got, z)  # exact in float16
    _store(tmp_path / "b", [1e-9, -1.0])  # float16 rounds 1e-9 to 0
    with pytest.raises(ValueError, match="changes a sign"):
        pack_logits16(tmp_path / "b", tmp_path / "out_b")
    _store(tmp_path / "c", [np.nan, 1.0])
    with pytest.raises(ValueError, match="non-finite"):
        pack_logits16(tmp_path / "c", tmp_path / "out_c")


def test_signs_round_trip_and_the_committed_sign_files_open():
    """The pair's stores ship signs only (sec-ch05-pair); each has its
    checksum, and a changed one is refused."""
    pair = FULL.parent / "pair_c9"
    folders = sorted(p.parent for p in pair.rglob(SIGNS))
    assert len(folders) >= 4
    for folder in folders:
        st = open_store(folder)
        assert isinstance(st, PackedStore)
        ids = pd.read_csv(folder / "results.csv", dtype=TEXT_COLUMNS)["run_id"]
        assert all(st.load_artifact(r) is not None for r in ids)


def test_signs_pack_and_refusal(tmp_path):
    z = np.array([-3.25, 0.0, 1e-9, 24.0])
    rid = _store(tmp_path / "a", z)
    pack_signs(tmp_path / "a")
    assert isinstance(open_store(tmp_path / "a"), PackedStore)
    got = PackedStore(tmp_path / "a", SIGNS).load_artifact(rid)["z_test"]
    assert np.array_equal(got, np.sign(z))
    with np.load(tmp_path / "a" / SIGNS) as f:
        ids, s = f["ids"], f["signs"].copy()
    s[0, 0] = 1
    np.savez_compressed(tmp_path / "a" / SIGNS, ids=ids, signs=s)
    with pytest.raises(ValueError, match="does not match"):
        open_store(tmp_path / "a")
