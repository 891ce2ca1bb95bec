"""A committed sweep's test predictions, packed small (claim C9, Chapter 5).

A run store keeps every run's predictions in ``artifacts/*.npz`` (about
10 MB for the full split), too large to commit. Two packed forms keep
only what the two-level intervals of :mod:`.run_intervals` need, each
run's test logits ``z_test``:

- :func:`pack_logits16`: rounded to ``float16`` (relative error at most
  ``2**-11``; their signs, hence every accuracy and PGR, are exact: the
  packing refuses a run whose sign would change), ``logits16.npz``
  (risks too; the full split, {ref}`sec-ch05-full`);
- :func:`pack_signs`: their signs only (``int8``, ``0`` for an exact tie),
  ``signs.npz``, all that accuracies need (the pretrained pair's stores,
  {ref}`sec-ch05-pair`).

Each file has its SHA-256 beside it (``<name>.sha256``, as ``sha256sum``
writes it), verified when :class:`PackedStore` opens it as a read-only
stand-in for the :class:`~.store.RunStore`; :func:`open_store` opens a
folder's packed file, or its run store when none is committed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .._common import file_sha256

__all__ = ["LOGITS16", "SIGNS", "CHECKSUM", "pack_logits16", "pack_signs",
           "PackedStore", "open_store"]

LOGITS16 = "logits16.npz"
"""Packed logits: ``ids`` (run ids) and ``z_test`` (``float16``, runs x
pairs)."""

SIGNS = "signs.npz"
"""Packed signs: ``ids`` and ``signs`` (``int8``, runs x pairs)."""

CHECKSUM = "logits16.sha256"
"""The checksum of :data:`LOGITS16` (one for each packed file:
``<stem>.sha256``)."""

_KEYS = {LOGITS16: "z_test", SIGNS: "signs"}


def _checksum_path(path: Path) -> Path:
    return path.with_suffix(".sha256")


def _test_logits(store_path, every_run: bool):
    """``(run id, z_test)`` of the runs of the store at ``store_path``, in
    the order of its ``results.csv``; runs without test logits (the
    bias-variance records) are skipped unless ``every_run``."""
    from .records import TEXT_COLUMNS
    from .store import RunStore

    st = RunStore(store_path, create=False)
    for rid in pd.read_csv(st.csv, dtype=TEXT_COLUMNS)["run_id"].astype(str):
        arrays = st.load_artifact(rid)
        if arrays is None or ("z_test" not in arrays and every_run):
            raise ValueError(f"store_path: run {rid} has no test logits "
                             f"in {store_path}")
        if "z_test" not in arrays:
            continue  # a bias-variance record: no test logits of its own
        z = np.asarray(arrays["z_test"], dtype=np.float64)
        if not np.all(np.isfinite(z)):
            raise ValueError(f"store_path: run {rid}: non-finite logits")
        yield rid, z


def _write(out: Path, ids: list, rows: list) -> Path:
    if not rows:
        raise ValueError(f"store_path: no test logits for {out.name}")
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, ids=np.array(ids), **{_KEYS[out.name]: np.array(rows)})
    _checksum_path(out).write_text(f"{file_sha256(out)}  {out.name}\n")
    return out


def pack_logits16(store_path, out_dir) -> Path:
    """Write ``out_dir/logits16.npz`` and its checksum from the run store
    at ``store_path``: the ``float16`` test logits of every run that has
    them (C9, {ref}`sec-ch05-full`). Refuses non-finite logits and any
    whose sign ``float16`` would change."""
    ids, rows = [], []
    for rid, z in _test_logits(store_path, every_run=False):
        z16 = z.astype(np.float16)
        if np.any(np.sign(z16) != np.sign(z)):
            raise ValueError(f"store_path: run {rid}: float16 changes a sign")
        ids.append(rid)
        rows.append(z16)
    return _write(Path(out_dir) / LOGITS16, ids, rows)


def pack_signs(store_path, out_dir=None) -> Path:
    """Write ``signs.npz`` and its checksum (in ``out_dir``, default the
    store's folder) from the run store at ``store_path``: the sign of every
    run's test logits; every run must have them (C9,
    {ref}`sec-ch05-pair`). Refuses non-finite logits."""
    ids, rows = [], []
    for rid, z in _test_logits(store_path, every_run=True):
        ids.append(rid)
        rows.append(np.sign(z).astype(np.int8))
    return _write(Path(out_dir or store_path) / SIGNS, ids, rows)


class PackedStore:
    """Read-only stand-in for a :class:`~.store.RunStore` packed by
    :func:`pack_logits16` or :func:`pack_signs` (``name``):
    ``load_artifact(run_id)`` gives ``{"z_test": ...}`` (``float64``; the
    signs for :data:`SIGNS`); the checksum is verified on opening (C9,
    {ref}`sec-ch05-full`)."""

    def __init__(self, root, name: str = LOGITS16):
        if name not in _KEYS:
            raise ValueError(f"name: one of {sorted(_KEYS)}, got {name!r}")
        self.root = Path(root)
        self.csv = self.root / "results.csv"
        path = self.root / name
        want = _checksum_path(path).read_text().split()[0]
        if file_sha256(path) != want:
            raise ValueError(f"root: {path} does not match "
                             f"{_checksum_path(path).name}")
        with np.load(path) as f:
            ids, z = f["ids"], f[_KEYS[name]]
        self._rows = {str(r): z[i] for i, r in enumerate(ids)}

    def load_artifact(self, run_id):
        """``{"z_test": test logits}``, or ``None`` for a run not packed."""
        z = self._rows.get(str(run_id))
        return None if z is None else {"z_test": z.astype(np.float64)}


def open_store(path):
    """The run store at ``path``: its packed file where one is committed
    (:data:`LOGITS16`, else :data:`SIGNS`), else the
    :class:`~.store.RunStore` (C9, {ref}`sec-ch05-pair`)."""
    from .store import RunStore

    path = Path(path)
    for name in _KEYS:
        if (path / name).is_file():
            return PackedStore(path, name)
    return RunStore(path, create=False)
