"""Tests of the run store (w2sg_utils.experiments.store) (claim C9)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from w2sg_utils import experiments as E


def test_run_store_atomic_rows_and_validated_artifacts(tmp_path):
    st = E.RunStore(tmp_path)
    st.append({"run_id": "a", "acc": 0.5})
    st.append({"run_id": "b", "acc": 0.6, "extra": "x"})
    with pytest.raises(ValueError, match="run_id"):
        st.append({"run_id": "a", "acc": 0.7})
    assert list(st.rows()["run_id"]) == ["a", "b"]
    assert not list(tmp_path.glob("*.tmp"))
    st.save_artifact("a", z=np.arange(3.0))
    np.testing.assert_array_equal(st.load_artifact("a")["z"], np.arange(3.0))
    # an artifact stored under another id, or tampered with, is never reused
    os.replace(st.artifact_path("a"), st.artifact_path("c"))
    assert st.load_artifact("c") is None
    st.artifact_path("d").write_bytes(b"garbage")
    assert st.load_artifact("d") is None


def test_committed_results_lookup(tmp_path):
    (tmp_path / "results" / "x").mkdir(parents=True)
    pd.DataFrame({"a": [1]}).to_csv(tmp_path / "results" / "x" / "results.csv", index=False)
    (tmp_path / "build" / "ipynb").mkdir(parents=True)
    assert E.committed_results("x", start=tmp_path / "build" / "ipynb")["a"].tolist() == [1]
    assert E.committed_results("y", start=tmp_path) is None
    with pytest.raises(ValueError, match="name"):
        E.committed_results("../x")
