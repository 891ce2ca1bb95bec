"""Tests of w2sg_utils.experiments.data (claim C9 data: HH-helpful loader, checksums, row validation)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from w2sg_utils.experiments import data as D

README_SHA = {
    "train_gt": "92002603039c575b8a15f2ee1b44045bb460da533d28619f8ae597420cc48e8f",
    "train_w2s": "dd61bded72dc38319e8a5d30fa67e01a3e5a84be89f6837976b8f67bef2a64be",
    "test": "05444dcc13a590915226df3be1f083180306d9315ac2dd94c1642961b7e6b60b",
}
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "hh-helpful"


def test_manifest_matches_published_checksums():
    man = D.read_manifest()
    for split, sha in README_SHA.items():
        assert man["files"][split]["sha256_uncompressed"] == sha
        assert man["files"][split]["n_rows"] == 4000


@pytest.mark.parametrize("split", D.SPLITS)
def test_shipped_split_loads_and_verifies(split):
    rows = D.load_pairs(split)
    assert len(rows) == D.HH_ROWS
    assert all(r["chosen"].strip() and r["rejected"].strip() for r in rows)
    assert rows[0]["chosen"].startswith("\n\nHuman:")


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared data folder not present")
def test_shared_folder_gives_identical_rows():
    for split in D.SPLITS:
        assert D.load_pairs(split, data_dir=SHARED) == D.load_pairs(split)


def _write(tmp_path, name, lines, gz=False):
    text = "\n".join(lines)
    p = tmp_path / name
    if gz:
        with gzip.open(p, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        p.write_text(text, encoding="utf-8")
    return p


GOOD = json.dumps({"chosen": "\n\nHuman: hi\n\nAssistant: hello", "rejected": "\n\nHuman: hi\n\nAssistant: no"})


@pytest.mark.parametrize(
    "bad, message",
    [
        ('{"chosen": "a", "rejected": ', "malformed JSON"),
        ('{"chosen": "a"}', "missing key 'rejected'"),
        ('{"chosen": "", "rejected": "b"}', "empty text"),
        ('{"chosen": "   ", "rejected": "b"}', "empty text"),
        ('{"chosen": 3, "rejected": "b"}', "not a string"),
        ('["chosen", "rejected"]', "expected a JSON object"),
        ("", "empty line"),
    ],
)
@pytest.mark.parametrize("gz", [False, True])
def test_malformed_rows_name_file_and_line(tmp_path, bad, message, gz):
    p = _write(tmp_path, "bad.jsonl" + (".gz" if gz else ""), [GOOD, GOOD, bad, GOOD], gz=gz)
    with pytest.raises(D.DataError) as err:
        D.load_pair_file(p)
    assert f"{p}:3:" in str(err.value)
    assert message in str(err.value)


def test_trailing_newline_is_allowed(tmp_path):
    p = _write(tmp_path, "ok.jsonl", [GOOD, GOOD, ""])
    assert len(D.load_pair_file(p)) == 2


def test_checksum_mismatch_is_rejected_before_parsing(tmp_path):
    p = _write(tmp_path, "x.jsonl", [GOOD, "not json"])
    with pytest.raises(D.DataError, match="SHA-256"):
        D.load_pair_file(p, sha256="0" * 64)


def test_modified_split_in_data_dir_fails_checksum(tmp_path):
    rows = D.load_pairs("test")
    rows[5]["chosen"] += " (edited)"
    _write(tmp_path, "test.jsonl", [json.dumps(r) for r in rows])
    with pytest.raises(D.DataError, match="SHA-256"):
        D.load_pairs("test", data_dir=tmp_path)
    assert len(D.load_pairs("test", data_dir=tmp_path, verify=False)) == 4000


def test_missing_files_and_bad_arguments(tmp_path):
    with pytest.raises(FileNotFoundError, match="data_dir"):
        D.load_pairs("test", data_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="data_dir"):
        D.load_pairs("test", data_dir=tmp_path / "nope")
    with pytest.raises(ValueError, match="split"):
        D.load_pairs("validation")
    with pytest.raises(FileNotFoundError, match="path"):
        D.load_pair_file(tmp_path / "none.jsonl")


@pytest.mark.parametrize("sizes, match", [
    ({"test": 0}, r"sizes\['test'\]"),
    ({"train_gt": 4001}, r"sizes\['train_gt'\]: 4001 exceeds"),
    ({"train_w2s": 2.5}, r"sizes\['train_w2s'\]"),
    ({"dev": 3}, "unknown split"),
])
def test_size_validation(sizes, match):
    with pytest.raises(ValueError, match=match):
        D.load_hh_helpful(sizes)


def test_make_pairwise_labels_and_seeded_swap():
    rows = D.load_pairs("train_gt")[:2000]
    ds = D.make_pairwise(rows, seed=3)
    for r, a, b, y in zip(rows, ds.text_a, ds.text_b, ds.label):
        assert (a, b) == ((r["chosen"], r["rejected"]) if y == 1 else (r["rejected"], r["chosen"]))
    # the swap is a fair coin: fraction within 5 binomial standard errors of 1/2
    n = len(rows)
    assert abs(ds.label.mean() - 0.5) <= 5 * np.sqrt(0.25 / n)
    again = D.make_pairwise(rows, seed=3)
    assert np.array_equal(ds.label, again.label) and ds.fingerprint == again.fingerprint
    other = D.make_pairwise(rows, seed=4)
    assert not np.array_equal(ds.label, other.label)
    with pytest.raises(ValueError, match="seed"):
        D.make_pairwise(rows, seed=-1)


def test_load_hh_helpful_nested_subsets_and_fingerprints():
    a = D.load_hh_helpful({"train_gt": 50, "train_w2s": 60, "test": 70}, seed=1)
    assert [len(a[s]) for s in D.SPLITS] == [50, 60, 70]
    b = D.load_hh_helpful({"train_gt": 50, "train_w2s": 60, "test": 70}, seed=1)
    assert D.data_fingerprint(a) == D.data_fingerprint(b)
    c = D.load_hh_helpful({"train_gt": 50, "train_w2s": 60, "test": 71}, seed=1)
    assert D.data_fingerprint(a) != D.data_fingerprint(c)
    # the first rows are the same texts whatever the size (caches are shared)
    assert set(a["test"].text_a[:10]) | set(a["test"].text_b[:10]) == \
        set(c["test"].text_a[:10]) | set(c["test"].text_b[:10])


def test_subset_keeps_order_and_labels():
    ds = D.load_hh_helpful({"train_gt": 20, "train_w2s": 1, "test": 1}, seed=0)["train_gt"]
    sub = ds.subset([3, 1, 3])
    assert sub.text_a == (ds.text_a[3], ds.text_a[1], ds.text_a[3])
    assert list(sub.label) == [ds.label[3], ds.label[1], ds.label[3]]


def test_hf_generic_pair_loader(tmp_path):
    rows = [{"good": f"text {i} good", "bad": f"text {i} bad"} for i in range(30)]
    p = tmp_path / "pairs.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in rows))
    ds = D.load_hf_pairs(str(p), chosen_key="good", rejected_key="bad", seed=2, n=20)
    assert len(ds) == 20
    for a, b, y in zip(ds.text_a, ds.text_b, ds.label):
        assert (a if y == 1 else b).endswith("good")
    with pytest.raises(D.DataError, match="missing column 'chosen'"):
        D.load_hf_pairs(str(p))
    rows[4]["bad"] = ""
    p.write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(D.DataError, match=":5: key 'rejected' has an empty text"):
        D.load_hf_pairs(str(p), chosen_key="good", rejected_key="bad")


def test_hf_generic_classification_loader(tmp_path):
    p = tmp_path / "cls.csv"
    p.write_text("text,label\nhello,0\nworld,1\nagain,1\n")
    ds = D.load_hf_classification(str(p))
    assert ds.text == ("hello", "world", "again") and list(ds.label) == [0, 1, 1]
    p.write_text("text,label\nhello,0\n,1\n")
    with pytest.raises(D.DataError, match=":2:"):
        D.load_hf_classification(str(p))


def test_corrupt_gzip_is_a_data_error(tmp_path):
    p = tmp_path / "x.jsonl.gz"
    p.write_bytes(b'{"chosen": "a"}')
    with pytest.raises(D.DataError, match="gzip"):
        D.load_pair_file(p)
