"""Tests of the user's own data (experiments.sources): folders of pairs, their manifest,
Hugging Face ``datasets`` folders, and the data identity in run ids (claim C9)."""

from __future__ import annotations

import gzip
import json
import time

import pytest

from w2sg_utils import experiments as E
from w2sg_utils.experiments import data as D
from w2sg_utils.experiments import sources as S

SIZES = {"train_gt": 30, "train_w2s": 20, "test": 20}


def own_rows(n=40, tag="own"):
    return [{"chosen": f"\n\nHuman: q{i}\n\nAssistant: a good {tag} answer {i}",
             "rejected": f"\n\nHuman: q{i}\n\nAssistant: bad {i}"} for i in range(n)]


def write_folder(d, fmt="jsonl", n=40):
    d.mkdir(parents=True, exist_ok=True)
    for split in D.SPLITS:
        rows = own_rows(n, tag=split)
        if fmt == "jsonl":
            (d / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        elif fmt == "jsonl.gz":
            with gzip.open(d / f"{split}.jsonl.gz", "wt", encoding="utf-8") as f:
                f.write("".join(json.dumps(r) + "\n" for r in rows))
        else:
            import pandas as pd

            df = pd.DataFrame(rows)
            (df.to_csv(d / f"{split}.csv", index=False) if fmt == "csv"
             else df.to_parquet(d / f"{split}.parquet"))
    return d


def run_ids(cfg, data_dir):
    ids = set()
    for seed in cfg["seeds"]:
        dh = D.data_fingerprint(D.load_hh_helpful(cfg["sizes"], seed=seed, data_dir=data_dir))
        ids |= {E.run_id(cfg, s, dh) for s in E.plan_runs(cfg) if s["seed"] == seed}
    return ids


@pytest.mark.parametrize("fmt", ["jsonl", "jsonl.gz", "csv", "parquet"])
def test_folder_of_own_pairs_loads_in_every_format(tmp_path, fmt):
    src = S.FolderSource(write_folder(tmp_path / "own", fmt))
    assert src.check() == {s: 40 for s in D.SPLITS}
    data = D.load_hh_helpful(SIZES, seed=1, data_dir=src)
    assert [len(data[s]) for s in D.SPLITS] == [30, 20, 20]
    for a, b, y in zip(data["test"].text_a, data["test"].text_b, data["test"].label):
        assert "good" in (a if y == 1 else b)
    ref = D.load_hh_helpful(SIZES, seed=1, data_dir=S.FolderSource(
        write_folder(tmp_path / "ref", "jsonl")))
    assert D.data_fingerprint(data) == D.data_fingerprint(ref)  # same rows, same identity


def test_bad_row_in_own_folder_names_file_and_line(tmp_path):
    d = write_folder(tmp_path / "own")
    lines = (d / "train_w2s.jsonl").read_text().splitlines()
    lines[6] = json.dumps({"chosen": "x", "rejected": " "})
    (d / "train_w2s.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(D.DataError, match=r"train_w2s.jsonl:7: key 'rejected' has an empty"):
        S.FolderSource(d).check()
    with pytest.raises(FileNotFoundError, match="no file for split 'test'"):
        (d / "test.jsonl").unlink()
        S.FolderSource(d)


def test_manifest_refuses_a_changed_row_in_one_line(tmp_path):
    d = write_folder(tmp_path / "own")
    S.write_manifest(d)
    man = json.loads((d / S.MANIFEST).read_text())["files"]
    assert man["test"]["n_rows"] == 40 and man["test"]["file"] == "test.jsonl"
    assert S.FolderSource(d).check()["test"] == 40
    text = (d / "test.jsonl").read_text()
    (d / "test.jsonl").write_text(text.replace("answer 5", "answer 5!", 1))
    with pytest.raises(D.DataError) as e:
        S.FolderSource(d).check()
    msg = str(e.value)
    assert "\n" not in msg and "test.jsonl" in msg and str(d / S.MANIFEST) in msg
    assert f"w2sg data manifest {d}" in msg
    S.write_manifest(d)  # accepting the change
    assert S.FolderSource(d).check()["test"] == 40


def test_files_named_like_the_shipped_ones_are_verified(tmp_path):
    d = tmp_path / "copy"
    d.mkdir()
    for split in D.SPLITS:
        f = D.packaged_data_dir() / D.read_manifest()["files"][split]["file"]
        data = D.read_uncompressed(f)
        if split == "test":
            data = data.replace(b"Assistant:", b"Assistant: (edited)", 1)
        (d / f"hh_helpful_{split}.jsonl").write_bytes(data)
    with pytest.raises(D.DataError, match="shipped manifest.*rename") as e:
        S.FolderSource(d).rows("test")
    assert "\n" not in str(e.value)
    assert len(S.FolderSource(d).rows("train_gt")) == D.HH_ROWS


def test_run_ids_on_shipped_data_unchanged_and_own_data_distinct(tmp_path):
    """Data identity is in the run id through the content of the rows used: a copy of
    the shipped rows gives the shipped ids; one changed row changes them."""
    cfg = E.make_config(sizes=SIZES, seeds=[0], objectives=["bce"], l2_grid=[],
                        ensemble_size=0, teacher={"n_labels": 20})
    shipped = run_ids(cfg, None)
    d = tmp_path / "copy"
    d.mkdir()
    for split in D.SPLITS:
        rows = D.load_pairs(split)[:50]
        (d / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert run_ids(cfg, S.FolderSource(d)) == shipped
    rows = D.load_pairs("train_w2s")[:50]
    rows[0] = {**rows[0], "rejected": rows[0]["rejected"] + "."}
    (d / "train_w2s.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert not run_ids(cfg, S.FolderSource(d)) & shipped
    with pytest.raises(ValueError, match=r"sizes\['train_gt'\]: 30 exceeds the 10 rows"):
        small = write_folder(tmp_path / "small", n=10)
        D.load_hh_helpful(SIZES, data_dir=S.FolderSource(small))


def test_local_datasets_folder_train_and_test_splits(tmp_path):
    """A tiny local ``datasets`` folder: train halves into train_gt / train_w2s; chat
    message lists are rendered like HH-RLHF."""
    d = tmp_path / "hf"
    d.mkdir()
    def chat(n):
        return [{k: [{"role": "user", "content": f"q{i}"},
                     {"role": "assistant", "content": f"{k} {i}"}]
                 for k in ("chosen", "rejected")} for i in range(n)]

    (d / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in chat(30)))
    (d / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in chat(12)))
    src = S.open_source(dataset=str(d))
    assert src.check() == {"train_gt": 15, "train_w2s": 15, "test": 12}
    assert src.rows("train_gt")[0]["chosen"] == "\n\nHuman: q0\n\nAssistant: chosen 0"
    assert src.rows("train_w2s")[0]["rejected"] == "\n\nHuman: q15\n\nAssistant: rejected 15"
    bad = tmp_path / "bad"
    bad.mkdir()
    for split in ("train", "test"):
        (bad / f"{split}.jsonl").write_text(json.dumps({"chosen": "a", "other": "b"}) + "\n")
    with pytest.raises(D.DataError, match="missing column 'rejected'"):
        S.open_source(dataset=str(bad)).check()


def test_hub_dataset_offline_fails_at_once_in_one_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    src = S.open_source(dataset="Anthropic/hh-rlhf:harmless-base")
    assert (src.name, src.subset) == ("Anthropic/hh-rlhf", "harmless-base")
    t0 = time.monotonic()
    with pytest.raises(D.DataError) as e:
        src.check()
    assert time.monotonic() - t0 < 60
    msg = str(e.value)
    assert "\n" not in msg and "Anthropic/hh-rlhf:harmless-base" in msg and "offline" in msg
    with pytest.raises(ValueError, match="mutually exclusive"):
        S.open_source(data_dir="x", dataset="y")


def test_each_split_comes_from_its_own_file_and_sizes_are_checked(tmp_path):
    src = S.FolderSource(write_folder(tmp_path / "own", "jsonl", n=40))
    data = D.load_hh_helpful(SIZES, seed=0, data_dir=src)
    for split in D.SPLITS:
        chosen = [a if y == 1 else b for a, b, y in
                  zip(data[split].text_a, data[split].text_b, data[split].label)]
        assert chosen == [r["chosen"] for r in own_rows(40, tag=split)[:SIZES[split]]]
    for n in (41, 42):  # more pairs than the folder holds: refused, never cut short
        with pytest.raises(ValueError, match=rf"sizes\['test'\]: {n} exceeds the 40 rows"):
            D.load_hh_helpful({**SIZES, "test": n}, seed=0, data_dir=src)
