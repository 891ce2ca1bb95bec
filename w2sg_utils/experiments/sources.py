"""Where a sweep's preference pairs come from: a folder of the user's own pairs or a
Hugging Face data set (claim C9, Chapter 5).

A *source* gives the rows (``{"chosen": text, "rejected": text}``) of the three splits
``train_gt``, ``train_w2s`` and ``test``; :func:`~.data.load_hh_helpful` accepts one as
``data_dir`` and turns the rows into pairwise tasks exactly as for the shipped data.

- :class:`FolderSource` (``w2sg run --data-dir DIR``): one file per split, named
  ``<split>.jsonl`` or ``<split>.jsonl.gz`` (one JSON object per line with the keys
  ``chosen`` and ``rejected``), or ``<split>.parquet`` / ``<split>.csv`` with those two
  columns (read through ``datasets``). Every row is validated (the file and line are
  named in the error). If the folder holds a ``manifest.json`` (written by
  ``w2sg data manifest DIR``, :func:`write_manifest`), each file must match its SHA-256
  there; files named like the shipped ones (``hh_helpful_<split>.jsonl[.gz]``) must
  match the shipped manifest.
- :class:`HubSource` (``w2sg run --dataset NAME[:SUBSET]``): a data set loaded with
  ``datasets.load_dataset``, from the hub (online only) or a local folder. Splits named
  ``train_gt``/``train_w2s``/``test`` are used as they are; otherwise the first half of
  the ``train`` (or ``train_prefs``) split is ``train_gt``, the second half
  ``train_w2s``, and ``test`` (or ``test_prefs``) is ``test``. A text column may also be
  a list of chat messages (``{"role", "content"}``), rendered as ``\\n\\nHuman: ...
  \\n\\nAssistant: ...`` like HH-RLHF. For ``Anthropic/hh-rlhf`` the subset is the data
  folder (``harmless-base``, ``helpful-base``, ...); for other names the configuration.

The run ids of a sweep hash the content of the rows it uses
(:func:`~.data.data_fingerprint`), so runs on different data never mix in one store,
and the same rows (e.g. a copy of the shipped files) give the same runs.
"""

from __future__ import annotations

import json
import os
import socket
from contextlib import contextmanager
from pathlib import Path

from .data import (
    HH_ROWS,
    SPLITS,
    DataError,
    packaged_data_dir,
    parse_pair_lines,
    read_manifest,
    read_uncompressed,
    sha256_bytes,
)

__all__ = ["MANIFEST", "FolderSource", "HubSource", "open_source", "write_manifest",
           "split_files", "data_label"]

MANIFEST = "manifest.json"
_SUFFIXES = (".jsonl", ".jsonl.gz", ".parquet", ".csv")


def split_files(folder: str | os.PathLike) -> dict[str, Path]:
    """The file of each split in ``folder`` (``FileNotFoundError`` naming a missing one)."""
    d = Path(folder)
    if not d.is_dir():
        raise FileNotFoundError(f"data_dir: {d} is not a folder")
    out = {}
    for split in SPLITS:
        names = [f"{split}{s}" for s in _SUFFIXES]
        names += [f"hh_helpful_{split}.jsonl", f"hh_helpful_{split}.jsonl.gz"]
        found = [d / n for n in names if (d / n).is_file()]
        if not found:
            raise FileNotFoundError(f"data_dir: {d} has no file for split {split!r} "
                                    f"(expected {split}.jsonl, .jsonl.gz, .parquet or .csv)")
        out[split] = found[0]
    return out


class _Source:
    """Rows of the three splits, read once and cached."""

    description = "pairs"

    def __init__(self):
        self._rows: dict[str, list[dict]] = {}

    def rows(self, split: str) -> list[dict]:
        if split not in SPLITS:
            raise ValueError(f"split: must be one of {SPLITS}, got {split!r}")
        if split not in self._rows:
            self._rows[split] = self._load(split)
        return self._rows[split]

    def n_rows(self, split: str) -> int:
        return len(self.rows(split))

    def check(self) -> dict[str, int]:
        """Read and validate every split now; the number of rows of each."""
        return {s: self.n_rows(s) for s in SPLITS}

    def _load(self, split):  # pragma: no cover - abstract
        raise NotImplementedError


def _file_bytes_and_sha(path: Path) -> tuple[bytes, str]:
    data = read_uncompressed(path)
    return data, sha256_bytes(data)


@contextmanager
def _progress(show: bool):
    """``datasets`` progress bars on or off inside the block."""
    import datasets as hfd

    was = hfd.is_progress_bar_enabled()
    if not show:
        hfd.disable_progress_bars()
    try:
        yield hfd
    finally:
        if was and not show:
            hfd.enable_progress_bars()


def _table_rows(path: Path, source: str) -> list[dict]:
    fmt = "parquet" if path.suffix == ".parquet" else "csv"
    with _progress(False) as hfd:
        ds = hfd.load_dataset(fmt, data_files=str(path), split="train")
    return _validated(ds, source)


class FolderSource(_Source):
    """The user's own pairs in a folder (see the module docstring)."""

    def __init__(self, folder: str | os.PathLike):
        super().__init__()
        self.folder = Path(folder)
        self.files = split_files(self.folder)
        mf = self.folder / MANIFEST
        self.manifest = None
        if mf.is_file():
            try:
                self.manifest = json.loads(mf.read_text(encoding="utf-8"))["files"]
                for s in SPLITS:
                    self.manifest[s]["sha256_uncompressed"]
            except (ValueError, KeyError, TypeError) as exc:
                raise DataError(f"{mf}: not a data manifest ({type(exc).__name__}: {exc}); "
                                f"rewrite it with `w2sg data manifest {self.folder}`") from None
        self.description = str(self.folder)

    def _expected(self, split: str, path: Path) -> tuple[str | None, str]:
        if self.manifest is not None:
            e = self.manifest[split]
            if e.get("file", path.name) != path.name:
                raise DataError(f"{self.folder / MANIFEST}: lists {e['file']} for split "
                                f"{split!r}, but the folder's file is {path.name}; rewrite "
                                f"it with `w2sg data manifest {self.folder}`")
            return e["sha256_uncompressed"], f"{self.folder / MANIFEST}"
        if path.name.startswith("hh_helpful_"):
            shipped = read_manifest(packaged_data_dir())["files"][split]
            return shipped["sha256_uncompressed"], "the shipped manifest"
        return None, ""

    def _load(self, split):
        path = self.files[split]
        want, where = self._expected(split, path)
        if path.suffix in (".parquet", ".csv"):
            data, got = path.read_bytes(), None
            if want is not None:
                got = sha256_bytes(data)
        else:
            data, got = _file_bytes_and_sha(path)
        if want is not None and got != want:
            todo = (f"accept the change with `w2sg data manifest {self.folder}`"
                    if self.manifest is not None else
                    f"rename it to {split}{path.name.split(split, 1)[1]} to use it as "
                    "your own data")
            raise DataError(f"{path}: SHA-256 {got[:12]}... does not match {want[:12]}... in "
                            f"{where}: the file changed; restore it, or {todo}")
        if path.suffix in (".parquet", ".csv"):
            return _table_rows(path, str(path))
        return parse_pair_lines(data.split(b"\n"), str(path))


def write_manifest(folder: str | os.PathLike) -> Path:
    """Validate every split file of ``folder`` and write ``folder/manifest.json``
    (file name, SHA-256 of the uncompressed bytes and row count of each split)."""
    folder = Path(folder)
    files = split_files(folder)
    entries = {}
    for split, path in files.items():
        if path.suffix in (".parquet", ".csv"):
            data, sha = path.read_bytes(), sha256_bytes(path.read_bytes())
            n = len(_table_rows(path, str(path)))
        else:
            data, sha = _file_bytes_and_sha(path)
            n = len(parse_pair_lines(data.split(b"\n"), str(path)))
        entries[split] = {"file": path.name, "sha256_uncompressed": sha, "n_rows": n}
    out = folder / MANIFEST
    out.write_text(json.dumps({"source": f"pairs in {folder.name} (w2sg data manifest)",
                               "files": entries}, indent=2) + "\n", encoding="utf-8")
    return out


# ------------------------------------------------------------ Hugging Face datasets

def _offline() -> bool:
    return any(os.environ.get(k, "").lower() in ("1", "true", "yes", "on")
               for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def _hub_reachable(timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection(("huggingface.co", 443), timeout=timeout):
            return True
    except OSError:
        return False


def _as_text(v, source: str, i: int, key: str) -> str:
    if isinstance(v, list):  # chat messages
        parts = []
        for m in v:
            if not isinstance(m, dict) or "content" not in m:
                raise DataError(f"{source}:{i}: key {key!r} is a list but not of chat "
                                "messages ({'role', 'content'})")
            role = "Human" if m.get("role") in ("user", "human") else "Assistant"
            parts.append(f"\n\n{role}: {m['content']}")
        return "".join(parts)
    return v


def _validated(ds, source: str, n: int | None = None) -> list[dict]:
    cols = ds.column_names
    for k in ("chosen", "rejected"):
        if k not in cols:
            raise DataError(f"{source}: missing column {k!r} (have {cols})")
    m = len(ds) if n is None else min(n, len(ds))
    lines = []
    for i, r in enumerate(ds.select(range(m)), start=1):
        lines.append(json.dumps({k: _as_text(r[k], source, i, k)
                                 for k in ("chosen", "rejected")}))
    return parse_pair_lines(lines + [""], source)


class HubSource(_Source):
    """A Hugging Face data set (``name`` a hub id or a local folder; see the module
    docstring). Loads at most ``HH_ROWS`` rows per split; ``progress`` shows the
    download and preparation bars of ``datasets``."""

    def __init__(self, name: str, subset: str | None = None, progress: bool = True):
        super().__init__()
        self.progress = progress
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"dataset: a Hugging Face data set name, got {name!r}")
        self.name, self.subset = name, subset
        self.description = name + (f":{subset}" if subset else "")
        self._splits = None

    def _dataset(self):
        try:
            import datasets  # noqa: F401
        except ImportError:  # pragma: no cover - optional extra
            raise DataError("dataset: needs the `datasets` package (pip install "
                            "'w2sg-book[experiments]')") from None
        local = Path(self.name).exists()
        if not local and not _offline() and not _hub_reachable():
            raise DataError(f"dataset: cannot reach huggingface.co to load {self.description}"
                            "; connect to the network, or pass a local copy")
        kw = {}
        if self.subset:
            kw = ({"data_dir": self.subset} if self.name == "Anthropic/hh-rlhf"
                  else {"name": self.subset})
        try:
            with _progress(self.progress) as hfd:
                return hfd.load_dataset(self.name, **kw)
        except Exception as exc:  # noqa: BLE001 - one line for the command line
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            hint = (" (offline: HF_HUB_OFFLINE=1; run with W2SG_ONLINE=1 on a machine with "
                    "network access, or pass a local copy)" if _offline() and not local
                    else "")
            raise DataError(f"dataset: cannot load {self.description}: "
                            f"{type(exc).__name__}: {msg}{hint}") from None

    def _split_sets(self):
        if self._splits is None:
            dd = self._dataset()
            names = list(dd)
            if all(s in dd for s in SPLITS):
                self._splits = {s: (dd[s], 0, None) for s in SPLITS}
            else:
                train = next((k for k in ("train", "train_prefs") if k in dd), None)
                test = next((k for k in ("test", "test_prefs") if k in dd), None)
                if train is None or test is None:
                    raise DataError(f"dataset: {self.description} has splits {names}; need "
                                    "train_gt/train_w2s/test, or train and test")
                h = len(dd[train]) // 2
                self._splits = {"train_gt": (dd[train], 0, h),
                                "train_w2s": (dd[train], h, len(dd[train])),
                                "test": (dd[test], 0, None)}
        return self._splits

    def _load(self, split):
        ds, a, b = self._split_sets()[split]
        b = len(ds) if b is None else b
        part = ds.select(range(a, min(b, a + HH_ROWS)))
        return _validated(part, f"{self.description}[{split}]")


def data_label(source, sizes) -> str:
    """``<description>#<hash>``: the source and a SHA-256 (12 hex) of the rows a sweep
    uses (the first ``sizes[split]`` rows of each split, before the seeded swap)."""
    import hashlib

    h = hashlib.sha256()
    for split in SPLITS:
        for r in source.rows(split)[: sizes[split]]:
            h.update(json.dumps([r["chosen"], r["rejected"]]).encode("utf-8"))
    return f"{source.description}#{h.hexdigest()[:12]}"


def open_source(data_dir=None, dataset: str | None = None, progress: bool = True):
    """The source of ``--data-dir`` / ``--dataset NAME[:SUBSET]`` (``None``: shipped data)."""
    if data_dir is not None and dataset is not None:
        raise ValueError("dataset: --data-dir and --dataset are mutually exclusive")
    if data_dir is not None:
        return FolderSource(data_dir)
    if dataset is not None:
        name, subset = dataset, None
        if not Path(dataset).exists() and ":" in dataset:
            name, subset = dataset.rsplit(":", 1)
        return HubSource(name, subset or None, progress=progress)
    return None
