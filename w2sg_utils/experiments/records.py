"""Run records and the rebuildable index of a run store (claim C9, Chapter 5).

Each finished run of a sweep is one small JSON file ``<store>/runs/<run_id>.json``,
written atomically, holding the run's row, its position ``seq`` in the store, the
SHA-256 of its artifact file (``artifacts/<run_id>.npz``, ``None`` if it has none) and
a SHA-256 of all of that. The records are the truth; ``<store>/results.csv`` is an
index rebuilt from them (:func:`index_frame`), so a torn, stale or deleted index loses
nothing. :func:`read_index` reads an index strictly: a torn last line (no final
newline, or fewer fields than the header) or an unparsable file raises
:class:`StoreError` with a one-line message naming the file and the repair command.
:func:`parse_index_lenient` keeps the complete lines of a torn index of an old store
(one written before records existed), to migrate them into records.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .._common import file_sha256

__all__ = ["RECORD_FORMAT", "RUNS_DIR", "INDEX", "TEXT_COLUMNS", "StoreError", "check_run_id",
           "encode_record", "decode_record", "file_sha256", "index_frame", "index_text",
           "read_index", "parse_index_lenient", "plain_row"]

RECORD_FORMAT = "w2sg-run/1"
RUNS_DIR = "runs"
INDEX = "results.csv"
_RID = re.compile(r"[0-9A-Za-z_.-]+")
# hex hashes that may be all digits (about 1 in 2000 run ids): read as text, not numbers
TEXT_COLUMNS = {"run_id": str, "data_hash": str}


class StoreError(RuntimeError):
    """A run store that cannot be used as it is; the message says how to repair it."""


def check_run_id(rid) -> str:
    """``rid`` if it is a run id usable as a file name (letters, digits, ``-_.``)."""
    if not isinstance(rid, str) or not _RID.fullmatch(rid) or rid.startswith("."):
        raise ValueError(f"run_id: letters, digits, '-', '_' or '.', got {rid!r}")
    return rid


def _plain(v):
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None  # an empty cell in the index, as before
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    raise TypeError(f"row: value {v!r} of type {type(v).__name__} is not a number or text")


def plain_row(row: dict) -> dict:
    """The row with JSON-native values (NumPy scalars converted, NaN as ``None``)."""
    out = {}
    for k, v in row.items():
        if not isinstance(k, str):
            raise TypeError(f"row: column names must be text, got {k!r}")
        out[k] = _plain(v)
    return out


def _canonical(obj) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()




def encode_record(rid: str, row: dict, seq: int, artifact_sha256: str | None) -> bytes:
    """The bytes of run ``rid``'s record (its row keeps its column order)."""
    body = {"format": RECORD_FORMAT, "run_id": check_run_id(rid), "seq": int(seq),
            "artifact_sha256": artifact_sha256, "row": plain_row(row)}
    if body["row"].get("run_id", rid) != rid:
        raise ValueError(f"run_id: the row says {body['row']['run_id']!r}, not {rid!r}")
    text = _canonical(body)
    return (_canonical({"checksum": _sha(text), "record": body}) + "\n").encode("utf-8")


def decode_record(data: bytes, rid: str) -> dict | None:
    """The record of run ``rid`` in ``data``, or ``None`` if it is not a valid one
    (unparsable, another run's, another format, or a checksum that does not match)."""
    try:
        obj = json.loads(data.decode("utf-8"))
        body = obj["record"]
        ok = (isinstance(body, dict) and body.get("format") == RECORD_FORMAT
              and body.get("run_id") == rid and isinstance(body.get("seq"), int)
              and isinstance(body.get("row"), dict)
              and obj.get("checksum") == _sha(_canonical(body)))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return body if ok else None


def index_frame(records) -> pd.DataFrame:
    """The index table of ``records`` (ordered by ``seq``, then run id)."""
    recs = sorted(records, key=lambda r: (r["seq"], r["run_id"]))
    if not recs:
        return pd.DataFrame()
    return pd.DataFrame([{"run_id": r["run_id"], **r["row"]} for r in recs])


def index_text(records) -> str:
    """The CSV text of the index of ``records``."""
    df = index_frame(records)
    return df.to_csv(index=False) if len(df.columns) else ""


def _repair_hint(path: Path) -> str:
    return f"run `w2sg repair --out {path.parent}` to rebuild it (every intact run is kept)"


def read_index(path: str | os.PathLike) -> pd.DataFrame:
    """The index at ``path``, read strictly (:class:`StoreError` if torn or unparsable)."""
    path = Path(path)
    data = path.read_bytes()
    if not data:
        return pd.DataFrame()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise StoreError(f"{path} is not UTF-8 text (corrupt); {_repair_hint(path)}") from None
    good, n_bad = _complete_lines(text)
    if n_bad:
        raise StoreError(f"{path} is torn or unparsable ({n_bad} incomplete line(s) at "
                         f"the end); {_repair_hint(path)}")
    try:
        return pd.read_csv(io.StringIO(good), dtype=TEXT_COLUMNS)
    except (pd.errors.ParserError, ValueError) as exc:
        msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise StoreError(f"{path} is unparsable ({msg}); {_repair_hint(path)}") from None


def _complete_lines(text: str) -> tuple[str, int]:
    """The longest prefix of complete CSV records of ``text`` and the count of the rest.

    A record is complete when it ends with a newline and has as many fields as the
    header (quoted fields may hold newlines).
    """
    buf = io.StringIO(text, newline="")
    reader = csv.reader(buf)
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        return "", 1
    ends = [buf.tell()]
    n_bad = 0
    if not text[:ends[0]].endswith("\n"):
        return "", 1
    while True:
        try:
            rec = next(reader)
        except StopIteration:
            break
        except csv.Error:
            n_bad += 1
            break
        pos = buf.tell()
        if len(rec) != len(header) or not text[:pos].endswith("\n") or n_bad:
            n_bad += 1
            continue
        ends.append(pos)
    return text[:ends[-1]], n_bad


def parse_index_lenient(path: str | os.PathLike) -> tuple[pd.DataFrame, int]:
    """The complete lines of the index at ``path`` and the number left out (torn tail)."""
    data = Path(path).read_bytes()
    text = data.decode("utf-8", errors="replace")
    good, n_bad = _complete_lines(text)
    if not good:
        return pd.DataFrame(), n_bad
    try:
        return pd.read_csv(io.StringIO(good), dtype=TEXT_COLUMNS), n_bad
    except (pd.errors.ParserError, ValueError):
        return pd.DataFrame(), n_bad + 1
