"""Data for the weak-to-strong experiments (claim C9, Chapter 5).

The paper's reward-modelling task uses Anthropic's HH-RLHF *helpful* preference pairs,
split by its authors into ``train_gt`` (ground truth for the weak teacher),
``train_w2s`` (labelled by the teacher for the student; the strong ceiling trains on its
true labels) and ``test`` (4000 pairs each). A gzip copy ships inside the package
(``w2sg_utils/data/``) with a manifest of the SHA-256 of each *uncompressed* file, so the
default runs work anywhere; :func:`load_pairs` also reads the plain ``.jsonl`` folder
(e.g. ``../shared/data/hh-helpful/``) and verifies the same checksums.

Every row is validated: malformed JSON, a non-object row, a missing key or an empty
text raises a :class:`DataError` naming the file and the (1-based) line.

:func:`make_pairwise` turns preference rows into the pairwise task: each pair is
swapped with probability 1/2 by a seeded generator; ``label = 1`` when ``text_a`` is the
chosen text, and a model scores the pair by ``z = r(text_a) - r(text_b)``.
:func:`load_hf_pairs` and :func:`load_hf_classification` read other data sets through
Hugging Face ``datasets`` (local files or hub names).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from .._common import positive_int

__all__ = [
    "SPLITS",
    "HH_ROWS",
    "DataError",
    "PairDataset",
    "ClassificationDataset",
    "packaged_data_dir",
    "read_manifest",
    "sha256_bytes",
    "read_uncompressed",
    "parse_pair_lines",
    "load_pair_file",
    "load_pairs",
    "make_pairwise",
    "load_hh_helpful",
    "data_fingerprint",
    "load_hf_pairs",
    "load_hf_classification",
]

SPLITS = ("train_gt", "train_w2s", "test")
HH_ROWS = 4000
PAIR_KEYS = ("chosen", "rejected")


class DataError(ValueError):
    """A data file failed validation (checksum, JSON, keys or empty text)."""


@dataclass(frozen=True)
class PairDataset:
    """A pairwise preference task (claim C9).

    ``text_a[i]``, ``text_b[i]``: the two full dialogue texts of pair ``i`` after the
    seeded swap; ``label[i] = 1`` if ``text_a[i]`` is the preferred (chosen) text.
    ``fingerprint`` identifies the exact content (texts, order, swap) for cache keys.

    Statement: {prf:ref}`def-ch05-pairwise`.
    """

    text_a: tuple[str, ...]
    text_b: tuple[str, ...]
    label: np.ndarray
    name: str = "pairs"
    fingerprint: str = field(default="")

    def __post_init__(self):
        n = len(self.text_a)
        if len(self.text_b) != n or self.label.shape != (n,):
            raise ValueError(
                f"label: text_a ({n}), text_b ({len(self.text_b)}) and label "
                f"{self.label.shape} must have the same length"
            )
        if not self.fingerprint:
            object.__setattr__(self, "fingerprint", _fingerprint_pairs(self))

    def __len__(self) -> int:
        return len(self.text_a)

    def subset(self, idx) -> PairDataset:
        """The pairs at integer positions ``idx`` (order kept as given)."""
        idx = np.asarray(idx, dtype=np.int64)
        return PairDataset(
            tuple(self.text_a[i] for i in idx),
            tuple(self.text_b[i] for i in idx),
            self.label[idx].copy(),
            name=self.name,
        )


@dataclass(frozen=True)
class ClassificationDataset:
    """Texts with integer class labels (for :func:`load_hf_classification`)."""

    text: tuple[str, ...]
    label: np.ndarray
    name: str = "classification"

    def __len__(self) -> int:
        return len(self.text)


def _fingerprint_pairs(ds: PairDataset) -> str:
    h = hashlib.sha256()
    for a, b, y in zip(ds.text_a, ds.text_b, ds.label.tolist()):
        h.update(hashlib.sha256(a.encode()).digest())
        h.update(hashlib.sha256(b.encode()).digest())
        h.update(bytes([int(y) & 0xFF]))
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def packaged_data_dir() -> Path:
    """Folder of the shipped compressed HH-helpful copy and its ``manifest.json``."""
    return Path(str(resources.files("w2sg_utils") / "data"))


def read_manifest(data_dir: str | os.PathLike | None = None) -> dict:
    """The manifest (file names, SHA-256 of the uncompressed bytes, row counts)."""
    path = Path(data_dir) if data_dir is not None else packaged_data_dir()
    mf = path / "manifest.json"
    if not mf.is_file():
        mf = packaged_data_dir() / "manifest.json"
    with open(mf, encoding="utf-8") as f:
        return json.load(f)


def parse_pair_lines(lines, source: str, keys=PAIR_KEYS) -> list[dict]:
    """Validate and parse JSON lines into ``{key: text}`` dicts.

    Raises :class:`DataError` naming ``source`` and the 1-based line for malformed JSON,
    a row that is not an object, a missing key, a non-string or empty (whitespace-only)
    text. A trailing empty line (final newline) is allowed; an empty line elsewhere is
    an error.
    """
    rows = []
    lines = list(lines)
    for i, raw in enumerate(lines, start=1):
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(f"{source}:{i}: not valid UTF-8 ({exc})") from exc
        line = raw.strip("\r\n")
        if not line.strip():
            if i == len(lines):
                continue
            raise DataError(f"{source}:{i}: empty line")
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{source}:{i}: malformed JSON ({exc.msg})") from exc
        if not isinstance(obj, dict):
            raise DataError(f"{source}:{i}: expected a JSON object, got {type(obj).__name__}")
        row = {}
        for k in keys:
            if k not in obj:
                raise DataError(f"{source}:{i}: missing key {k!r}")
            v = obj[k]
            if not isinstance(v, str):
                raise DataError(f"{source}:{i}: key {k!r} is not a string")
            if not v.strip():
                raise DataError(f"{source}:{i}: key {k!r} has an empty text")
            row[k] = v
        rows.append(row)
    return rows


def read_uncompressed(path: str | os.PathLike) -> bytes:
    """The bytes of a file, uncompressed if it ends with ``.gz`` (:class:`DataError` if
    the gzip stream is corrupt)."""
    path = Path(path)
    if path.suffix == ".gz":
        try:
            with gzip.open(path, "rb") as f:
                return f.read()
        except (OSError, EOFError) as exc:
            raise DataError(f"{path}: not a valid gzip file ({exc})") from exc
    return path.read_bytes()


def load_pair_file(path: str | os.PathLike, sha256: str | None = None,
                   keys=PAIR_KEYS) -> list[dict]:
    """Read one ``.jsonl`` or ``.jsonl.gz`` file of preference rows, validated.

    ``sha256`` (optional) is the checksum of the uncompressed bytes; a mismatch raises
    :class:`DataError` before any row is parsed.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: data file {path} does not exist")
    data = read_uncompressed(path)
    if sha256 is not None:
        got = sha256_bytes(data)
        if got != sha256:
            raise DataError(f"{path}: SHA-256 {got} does not match the manifest's {sha256}")
    return parse_pair_lines(data.split(b"\n"), str(path), keys=keys)


def _split_path(data_dir: Path, split: str, entry: dict) -> Path:
    for cand in (data_dir / entry["file"], data_dir / f"{split}.jsonl",
                 data_dir / f"{split}.jsonl.gz", data_dir / f"hh_helpful_{split}.jsonl"):
        if cand.is_file():
            return cand
    raise FileNotFoundError(
        f"data_dir: no file for split {split!r} in {data_dir} (looked for {entry['file']}, "
        f"{split}.jsonl, {split}.jsonl.gz)"
    )


def load_pairs(split: str, data_dir: str | os.PathLike | None = None,
               verify: bool = True) -> list[dict]:
    """All rows of one HH-helpful split (``train_gt``, ``train_w2s`` or ``test``).

    ``data_dir=None`` reads the shipped gzip copy; otherwise a folder holding
    ``{split}.jsonl`` (as in ``../shared/data/hh-helpful/``) or the ``.jsonl.gz`` files.
    With ``verify`` the uncompressed bytes must match the manifest's SHA-256.
    """
    if split not in SPLITS:
        raise ValueError(f"split: must be one of {SPLITS}, got {split!r}")
    ddir = Path(data_dir) if data_dir is not None else packaged_data_dir()
    if not ddir.is_dir():
        raise FileNotFoundError(f"data_dir: {ddir} is not a folder")
    entry = read_manifest()["files"][split]
    path = _split_path(ddir, split, entry)
    return load_pair_file(path, entry["sha256_uncompressed"] if verify else None)


def make_pairwise(rows: list[dict], seed: int, name: str = "pairs") -> PairDataset:
    """Swap each pair with probability 1/2 (seeded) and label it (claim C9 protocol).

    ``label = 1`` when ``text_a`` is the chosen text. The swap pattern depends only on
    ``seed`` and the number of rows.

    Statement: {prf:ref}`def-ch05-pairwise`.
    """
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: must be a non-negative integer, got {seed!r}")
    rng = np.random.default_rng([int(seed), 0x5A1F])
    swap = rng.random(len(rows)) < 0.5
    a = tuple(r["rejected"] if s else r["chosen"] for r, s in zip(rows, swap))
    b = tuple(r["chosen"] if s else r["rejected"] for r, s in zip(rows, swap))
    return PairDataset(a, b, (~swap).astype(np.int64), name=name)


def _check_size(name: str, n, available: int) -> int:
    if n is None:
        return available
    n = positive_int(n, name)
    if n > available:
        raise ValueError(f"{name}: {n} exceeds the {available} rows available")
    return int(n)


def load_hh_helpful(sizes: dict | None = None, seed: int = 0,
                    data_dir: str | os.PathLike | None = None,
                    verify: bool = True) -> dict[str, PairDataset]:
    """The three HH-helpful splits as pairwise tasks (claim C9, Chapter 5).

    ``sizes`` maps split names to the number of rows kept (the first ``n`` rows of the
    file, so subsets are nested and embedding caches are shared across sizes); missing
    splits keep all 4000. The swap uses ``seed`` (a different stream per split).
    ``data_dir``: ``None`` (the shipped copy), a folder of the shipped files (verified
    against the shipped manifest), or a source of :mod:`.sources` (the user's own
    pairs, a Hugging Face data set), whose rows are used as they are.

    Statement: {prf:ref}`def-ch05-pairwise`.
    """
    sizes = dict(sizes or {})
    unknown = set(sizes) - set(SPLITS)
    if unknown:
        raise ValueError(f"sizes: unknown split(s) {sorted(unknown)}; use {SPLITS}")
    source = data_dir if hasattr(data_dir, "rows") else None
    for s in SPLITS:  # validate every size before reading anything
        _check_size(f"sizes[{s!r}]", sizes.get(s), HH_ROWS)
    out = {}
    for k, s in enumerate(SPLITS):
        if source is not None:
            rows = source.rows(s)
        else:
            rows = load_pairs(s, data_dir=data_dir, verify=verify)
        n = _check_size(f"sizes[{s!r}]", sizes.get(s), len(rows))
        out[s] = make_pairwise(rows[:n], seed=int(seed) * 3 + k, name=s)
    return out


def data_fingerprint(datasets: dict[str, PairDataset]) -> str:
    """One hash of several data sets' content (texts, order, swap, labels)."""
    h = hashlib.sha256()
    for k in sorted(datasets):
        h.update(k.encode())
        h.update(datasets[k].fingerprint.encode())
    return h.hexdigest()[:16]


def _hf_load(name_or_path: str, split: str, data_files=None, **kwargs):
    try:
        import datasets as hfd
    except ImportError as exc:  # pragma: no cover - optional extra
        raise ImportError("load_hf_*: install the 'experiments' extra (datasets)") from exc
    p = Path(name_or_path)
    if p.is_file():
        fmt = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet",
               ".gz": "json"}.get(p.suffix, "json")
        return hfd.load_dataset(fmt, data_files=str(p), split=split, **kwargs)
    if data_files is not None:
        return hfd.load_dataset(name_or_path, data_files=data_files, split=split, **kwargs)
    return hfd.load_dataset(name_or_path, split=split, **kwargs)


def load_hf_pairs(name_or_path: str, split: str = "train", chosen_key: str = "chosen",
                  rejected_key: str = "rejected", n: int | None = None, seed: int = 0,
                  data_files=None, **kwargs) -> PairDataset:
    """Any pairwise preference data set through Hugging Face ``datasets``.

    ``name_or_path`` is a local file (``.jsonl``/``.json``/``.csv``/``.parquet``), a
    builder name with ``data_files``, or a hub name (needs network). Rows are validated
    like the shipped files (the "line" is the row index + 1) and swapped by ``seed``.
    """
    ds = _hf_load(name_or_path, split, data_files=data_files, **kwargs)
    for k in (chosen_key, rejected_key):
        if k not in ds.column_names:
            raise DataError(f"{name_or_path}: missing column {k!r} (have {ds.column_names})")
    m = _check_size("n", n, len(ds))
    lines = (json.dumps({"chosen": r[chosen_key], "rejected": r[rejected_key]})
             for r in ds.select(range(m)))
    rows = parse_pair_lines(list(lines) + [""], str(name_or_path))
    return make_pairwise(rows, seed=seed, name=str(name_or_path))


def load_hf_classification(name_or_path: str, split: str = "train", text_key: str = "text",
                           label_key: str = "label", n: int | None = None,
                           data_files=None, **kwargs) -> ClassificationDataset:
    """Any text classification data set through Hugging Face ``datasets``.

    Labels must be non-negative integers; texts non-empty strings (errors name the row).
    """
    ds = _hf_load(name_or_path, split, data_files=data_files, **kwargs)
    for k in (text_key, label_key):
        if k not in ds.column_names:
            raise DataError(f"{name_or_path}: missing column {k!r} (have {ds.column_names})")
    m = _check_size("n", n, len(ds))
    texts, labels = [], []
    for i, r in enumerate(ds.select(range(m)), start=1):
        t, y = r[text_key], r[label_key]
        if not isinstance(t, str) or not t.strip():
            raise DataError(f"{name_or_path}:{i}: key {text_key!r} has an empty text")
        if isinstance(y, bool) or not isinstance(y, (int, np.integer)) or y < 0:
            raise DataError(f"{name_or_path}:{i}: key {label_key!r} is not a class index")
        texts.append(t)
        labels.append(int(y))
    return ClassificationDataset(tuple(texts), np.asarray(labels, dtype=np.int64),
                                 name=str(name_or_path))
