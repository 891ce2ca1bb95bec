"""A committed sweep's test logits, packed small (claim C9, Chapter 5).

A run store keeps every run's predictions in ``artifacts/*.npz`` (about
10 MB for the full split), too large to commit. :func:`pack_logits16`
keeps only what the two-level intervals of :mod:`.run_intervals` need,
each run's test logits ``z_test``, rounded to ``float16`` (relative error
at most ``2**-11``; their signs, hence every accuracy and PGR, are exact:
the packing refuses a run whose sign would change), in ``logits16.npz``
with its SHA-256 in ``logits16.sha256``. :class:`PackedStore` reads it
back as a stand-in for the :class:`~.store.RunStore`. Statement:
{ref}`sec-ch05-full`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["LOGITS16", "CHECKSUM", "pack_logits16", "sha256_file",
           "PackedStore"]

LOGITS16 = "logits16.npz"
"""The packed file: ``ids`` (run ids) and ``z_test`` (``float16``, runs x
pairs)."""

CHECKSUM = "logits16.sha256"
"""Its checksum, one line as written by ``sha256sum``."""


def sha256_file(path) -> str:
    """The SHA-256 hex digest of the file at ``path`` (C9,
    {ref}`sec-ch05-full`)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def pack_logits16(store_path, out_dir) -> Path:
    """Write ``out_dir/logits16.npz`` and its checksum from the run store
    at ``store_path``: the ``float16`` test logits of every run that has
    them, in the order of its ``results.csv`` (C9, {ref}`sec-ch05-full`).
    Refuses non-finite logits and any whose sign ``float16`` would
    change."""
    from .records import TEXT_COLUMNS
    from .store import RunStore

    st = RunStore(store_path, create=False)
    df = pd.read_csv(st.csv, dtype=TEXT_COLUMNS)
    ids, rows = [], []
    for rid in df["run_id"].astype(str):
        arrays = st.load_artifact(rid)
        if arrays is None:
            raise ValueError(f"store_path: run {rid} has no artifact")
        if "z_test" not in arrays:
            continue  # a bias-variance record: no test logits of its own
        z = np.asarray(arrays["z_test"], dtype=np.float64)
        if not np.all(np.isfinite(z)):
            raise ValueError(f"store_path: run {rid}: non-finite logits")
        z16 = z.astype(np.float16)
        if np.any(np.sign(z16) != np.sign(z)):
            raise ValueError(f"store_path: run {rid}: float16 changes a sign")
        ids.append(rid)
        rows.append(z16)
    if not rows:
        raise ValueError(f"store_path: no test logits in {store_path}")
    out = Path(out_dir) / LOGITS16
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, ids=np.array(ids), z_test=np.array(rows))
    digest = sha256_file(out)
    (out.parent / CHECKSUM).write_text(f"{digest}  {LOGITS16}\n")
    return out


class PackedStore:
    """Read-only stand-in for a :class:`~.store.RunStore` packed by
    :func:`pack_logits16`: ``load_artifact(run_id)`` gives ``{"z_test":
    ...}`` (``float64``); the checksum is verified on opening (C9,
    {ref}`sec-ch05-full`)."""

    def __init__(self, root):
        self.root = Path(root)
        self.csv = self.root / "results.csv"
        path = self.root / LOGITS16
        want = (self.root / CHECKSUM).read_text().split()[0]
        if sha256_file(path) != want:
            raise ValueError(f"root: {path} does not match {CHECKSUM}")
        with np.load(path) as f:
            ids, z = f["ids"], f["z_test"]
        self._rows = {str(r): z[i] for i, r in enumerate(ids)}

    def load_artifact(self, run_id):
        """``{"z_test": test logits}``, or ``None`` for a run not packed."""
        z = self._rows.get(str(run_id))
        return None if z is None else {"z_test": z.astype(np.float64)}
