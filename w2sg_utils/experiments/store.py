"""The run store: a tidy results table and validated artifacts (claim C9, Chapter 5).

:class:`RunStore` keeps a CSV (one row per run) rewritten atomically and one ``.npz``
artifact of predictions per run with its id and a checksum inside, so an interrupted
sweep resumes with nothing lost or duplicated and an artifact whose id or checksum
differs is never reused. :func:`committed_results` reads the tables committed under
``results/``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .._common import atomic_write, atomic_write_text
from ..sharding import store_lock

__all__ = ["RunStore", "committed_results"]


class RunStore:
    """Tidy results CSV (one row per run, atomic rewrites) + validated artifacts.

    ``root/results.csv`` holds the rows; ``root/artifacts/<run_id>.npz`` the arrays of
    each run, with the run id and a checksum inside, checked on load.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "artifacts").mkdir(exist_ok=True)
        self.csv = self.root / "results.csv"

    def rows(self) -> pd.DataFrame:
        """All rows (empty frame if none)."""
        if not self.csv.is_file():
            return pd.DataFrame()
        return pd.read_csv(self.csv)

    def done(self) -> set[str]:
        df = self.rows()
        return set(df["run_id"]) if "run_id" in df else set()

    def append(self, row: dict) -> None:
        """Add one row; rewrite the CSV atomically; a duplicate run id is an error.

        The read-modify-write holds the store's lock, so concurrent writers (the shards
        of a sweep, :mod:`w2sg_utils.sharding`) never lose each other's rows.
        """
        with store_lock(self.root):
            df = self.rows()
            if "run_id" in df and row["run_id"] in set(df["run_id"]):
                raise ValueError(f"run_id: {row['run_id']} is already in {self.csv}")
            new = pd.concat([df, pd.DataFrame([row])], ignore_index=True)
            atomic_write_text(self.csv, new.to_csv(index=False))

    def artifact_path(self, rid: str) -> Path:
        return self.root / "artifacts" / f"{rid}.npz"

    @staticmethod
    def _checksum(rid: str, arrays: dict) -> str:
        h = hashlib.sha256(rid.encode())
        for k in sorted(arrays):
            a = np.ascontiguousarray(arrays[k])
            h.update(k.encode())
            h.update(str(a.dtype).encode() + str(a.shape).encode())
            h.update(a.tobytes())
        return h.hexdigest()

    def save_artifact(self, rid: str, **arrays) -> None:
        arrays = {k: np.asarray(v) for k, v in arrays.items()}
        atomic_write(self.artifact_path(rid), lambda f: np.savez(
            f, __run_id=np.asarray(rid), __checksum=np.asarray(self._checksum(rid, arrays)),
            **arrays))

    def load_artifact(self, rid: str) -> dict | None:
        """The arrays of run ``rid``, or ``None`` if missing or invalid (never reused)."""
        p = self.artifact_path(rid)
        if not p.is_file():
            return None
        try:
            with np.load(p, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files if not k.startswith("__")}
                ok = (str(z["__run_id"]) == rid
                      and str(z["__checksum"]) == self._checksum(rid, arrays))
        except Exception:  # noqa: BLE001 - unreadable means invalid
            return None
        return arrays if ok else None


def committed_results(name: str, start: str | os.PathLike | None = None) -> pd.DataFrame | None:
    """The committed results table ``results/<name>/results.csv``, or ``None``.

    Searched from ``start`` (default: the current folder) upwards, so a chapter finds
    it whether it runs from ``notebooks/``, the project root or ``build/ipynb/``.
    Used by Chapter 5 to render GPU-scale and full-size runs without re-running them.
    """
    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        raise ValueError(f"name: a results folder name, got {name!r}")
    here = Path(start or os.getcwd()).resolve()
    for d in (here, *here.parents):
        p = d / "results" / name / "results.csv"
        if p.is_file():
            return pd.read_csv(p)
    return None
