"""The run store: one checksummed record per run, a rebuildable index and validated
artifacts (claim C9, Chapter 5).

:class:`RunStore` keeps, in its folder,

- ``runs/<run_id>.json``: the record of each finished run (its row, its position, the
  SHA-256 of its artifact and a SHA-256 of the whole record; :mod:`.records`), written
  atomically: the truth of the store;
- ``artifacts/<run_id>.npz``: the run's arrays, with its id and a checksum inside;
- ``results.csv``: the index, one row per run, rebuilt from the records after every
  new run (and by :meth:`RunStore.repair`), so a torn or stale index loses nothing.

A torn index makes :meth:`RunStore.rows` raise :class:`~.records.StoreError` naming
the file and ``w2sg repair``; :meth:`RunStore.repair` (run by ``w2sg repair`` and at
the start of every sweep) rebuilds it, keeps every intact run and drops (moves to
``quarantine/``) the runs whose record or artifact fails its checksum, so that the
next sweep recomputes exactly those. A store of the earlier layout (``results.csv`` and
``artifacts/`` only, like the tables committed under ``results/``) is read as it is and
migrated to records at its next write. :func:`committed_results` reads the committed
tables.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .._common import atomic_write, atomic_write_text
from .records import (
    INDEX,
    RUNS_DIR,
    TEXT_COLUMNS,
    StoreError,
    check_run_id,
    decode_record,
    encode_record,
    file_sha256,
    index_frame,
    index_text,
    parse_index_lenient,
    read_index,
)
from .sharding import store_lock

__all__ = ["RunStore", "RepairReport", "StoreError", "committed_results"]

QUARANTINE = "quarantine"


@dataclass
class RepairReport:
    """What :meth:`RunStore.repair` found and did."""

    kept: int = 0
    dropped: dict = field(default_factory=dict)  # run id -> reason
    migrated: bool = False
    torn_lines: int = 0
    index_rebuilt: bool = False

    def summary(self, root) -> str:
        """One line for the command line."""
        parts = [f"{root}: {self.kept} intact run(s) kept"]
        if self.migrated:
            parts.append("migrated to run records")
        if self.torn_lines:
            parts.append(f"{self.torn_lines} torn line(s) of the old index left out")
        if self.dropped:
            parts.append(f"{len(self.dropped)} run(s) dropped ("
                         + "; ".join(f"{k}: {v}" for k, v in sorted(self.dropped.items())[:3])
                         + (", ..." if len(self.dropped) > 3 else "")
                         + "), recomputed by the next `w2sg run` of the sweep")
        if self.index_rebuilt:
            parts.append(f"{INDEX} rebuilt")
        return "; ".join(parts)


class RunStore:
    """Run records + rebuildable ``results.csv`` index + validated artifacts.

    ``create=False`` opens an existing store for reading without creating folders.
    """

    def __init__(self, root: str | os.PathLike, create: bool = True):
        self.root = Path(root)
        if create:
            for d in (self.root, self.root / "artifacts"):
                if not d.is_dir():
                    d.mkdir(parents=True, exist_ok=True)
        self.csv = self.root / INDEX
        self.runs = self.root / RUNS_DIR

    # ------------------------------------------------------------------ reading
    def has_records(self) -> bool:
        """Whether the store has the record layout (else: an old store, index only)."""
        return self.runs.is_dir()

    def record_path(self, rid: str) -> Path:
        return self.runs / f"{check_run_id(rid)}.json"

    def record_ids(self) -> set[str]:
        """Ids of the record files present (not verified)."""
        if not self.runs.is_dir():
            return set()
        return {p.name[:-5] for p in self.runs.iterdir() if p.name.endswith(".json")}

    def record(self, rid: str) -> dict | None:
        """The valid record of run ``rid``, or ``None``."""
        try:
            data = self.record_path(rid).read_bytes()
        except FileNotFoundError:
            return None
        return decode_record(data, rid)

    def records(self) -> tuple[list[dict], list[str]]:
        """The valid records, and the ids of the invalid ones."""
        good, bad = [], []
        for rid in sorted(self.record_ids()):
            rec = self.record(rid)
            (good.append(rec) if rec is not None else bad.append(rid))
        return good, bad

    def rows(self) -> pd.DataFrame:
        """All rows (empty frame if none): the index, or the records where it is stale.

        Raises :class:`~.records.StoreError` (one line, naming the file and the repair
        command) if ``results.csv`` is torn or unparsable or a record fails its checksum.
        """
        if not self.has_records():
            return read_index(self.csv) if self.csv.is_file() else pd.DataFrame()
        df = read_index(self.csv) if self.csv.is_file() else None
        recs, bad = self.records()
        if bad:
            raise StoreError(f"{self.runs / (bad[0] + '.json')} fails its checksum "
                             f"({len(bad)} broken record(s)); run `w2sg repair --out "
                             f"{self.root}` to drop them (the next `w2sg run` recomputes them)")
        ids = {r["run_id"] for r in recs}
        if df is not None:
            have = set(df["run_id"]) if "run_id" in df else set()
            if have == ids and len(df) == len(ids):
                return df
        return index_frame(recs)  # stale index (a crash after a record)

    def done(self) -> set[str]:
        """Ids of the finished runs."""
        if self.has_records():
            return self.record_ids()
        df = self.rows()
        return set(df["run_id"]) if "run_id" in df else set()

    # ------------------------------------------------------------------ writing
    def append(self, row: dict) -> None:
        """Add the record of one finished run and rebuild the index (a duplicate run id
        is an error).

        Holds the store's lock, so concurrent writers (the shards of a sweep,
        :mod:`w2sg_utils.experiments.sharding`) never lose each other's runs. The record holds the
        SHA-256 of the run's artifact if it was saved before.
        """
        rid = check_run_id(row["run_id"])
        with store_lock(self.root):
            self._migrate_if_old()
            recs, _ = self.records()
            if any(r["run_id"] == rid for r in recs):
                raise ValueError(f"run_id: {rid} is already in {self.root}")
            seq = 1 + max((r["seq"] for r in recs), default=-1)
            art = self.artifact_path(rid)
            sha = file_sha256(art) if art.is_file() else None
            data = encode_record(rid, row, seq, sha)
            atomic_write(self.record_path(rid), lambda f: f.write(data))
            recs.append(decode_record(data, rid))
            atomic_write_text(self.csv, index_text(recs))

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
        """Write run ``rid``'s arrays atomically; a record of ``rid`` is updated to the
        new artifact's SHA-256 (a recomputed artifact of a finished run)."""
        arrays = {k: np.asarray(v) for k, v in arrays.items()}
        path = self.artifact_path(check_run_id(rid))
        path.parent.mkdir(parents=True, exist_ok=True)

        def write():
            atomic_write(path, lambda f: np.savez(
                f, __run_id=np.asarray(rid),
                __checksum=np.asarray(self._checksum(rid, arrays)), **arrays))

        if not (self.has_records() and self.record_path(rid).is_file()):
            write()  # a new run: its record comes after, with this artifact's SHA-256
            return
        with store_lock(self.root):  # artifact and record change together
            write()
            rec = self.record(rid)
            if rec is not None:
                data = encode_record(rid, rec["row"], rec["seq"], file_sha256(path))
                atomic_write(self.record_path(rid), lambda f: f.write(data))

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

    # ------------------------------------------------------------------ repair
    def repair(self, clean_tmp: bool = False) -> RepairReport:
        """Check every record and artifact, drop the broken runs, rebuild the index.

        Keeps every intact run (valid record; artifact absent or matching the record's
        SHA-256); moves a record that fails its checksum, or whose artifact is missing or
        differs, to ``quarantine/`` with its artifact, so the next sweep recomputes that
        run. Migrates an old store first (its torn last line, if any, is left out: that
        run is recomputed). ``clean_tmp`` also deletes the temporary files a killed
        writer left (only when no sweep is writing to the store). Idempotent.
        """
        rep = RepairReport()
        with store_lock(self.root):
            rep.migrated, rep.torn_lines = self._migrate_if_old()
            recs, bad = self.records()
            for rid in bad:
                rep.dropped[rid] = "record fails its checksum"
                self._quarantine(rid)
            keep = []
            for rec in recs:
                why = self._artifact_problem(rec)
                if why:
                    rep.dropped[rec["run_id"]] = why
                    self._quarantine(rec["run_id"])
                else:
                    keep.append(rec)
            rep.kept = len(keep)
            text = index_text(keep)
            old = self.csv.read_bytes() if self.csv.is_file() else None
            if old != text.encode("utf-8"):
                atomic_write_text(self.csv, text)
                rep.index_rebuilt = True
            if clean_tmp:
                for p in self.root.rglob("*.tmp"):
                    p.unlink(missing_ok=True)
        return rep

    def _artifact_problem(self, rec) -> str | None:
        sha = rec["artifact_sha256"]
        if sha is None:
            return None
        p = self.artifact_path(rec["run_id"])
        if not p.is_file():
            return "artifact missing"
        return None if file_sha256(p) == sha else "artifact fails its checksum"

    def _quarantine(self, rid: str) -> None:
        q = self.root / QUARANTINE / time.strftime("%Y%m%dT%H%M%S")
        for p in (self.runs / f"{rid}.json", self.artifact_path(rid)):
            if p.is_file():
                q.mkdir(parents=True, exist_ok=True)
                os.replace(p, q / p.name)

    def _migrate_if_old(self) -> tuple[bool, int]:
        """Write a record for each row of an old store's index (under the lock)."""
        if self.has_records():
            return False, 0
        df, torn = (parse_index_lenient(self.csv) if self.csv.is_file()
                    else (pd.DataFrame(), 0))
        tmp = self.root / f"{RUNS_DIR}.migrating"
        tmp.mkdir(parents=True, exist_ok=True)
        for p in tmp.iterdir():  # a migration cut short
            p.unlink()
        rows = df.to_dict("records") if "run_id" in df else []
        for seq, row in enumerate(rows):
            rid = check_run_id(str(row["run_id"]))
            art = self.artifact_path(rid)
            sha = None
            if art.is_file():
                if self.load_artifact(rid) is not None:
                    sha = file_sha256(art)
                else:  # an invalid artifact: recomputed by the next sweep
                    self._quarantine(rid)
            data = encode_record(rid, row, seq, sha)
            atomic_write(tmp / f"{rid}.json", lambda f, d=data: f.write(d))
        os.replace(tmp, self.runs)
        return bool(rows) or torn > 0, torn


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
            return pd.read_csv(p, dtype=TEXT_COLUMNS)
    return None
