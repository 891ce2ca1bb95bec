"""Shipped, checksummed embeddings of the HH-helpful splits (claim C9, Chapters 5-6).

Encoding the shipped texts with ``all-mpnet-base-v2`` takes about 10 texts per second on
two CPU cores, so the embeddings are computed once (``w2sg embed``) and committed as an
*artifact*: one folder per encoder, ``<root>/<short name>-L<max_length>/``, holding

- ``manifest.json``: the encoder's name, the SHA-256 of its ``model.safetensors``, the
  maximum length (tokens), the truncation side, the pooling, the dtype and, per split,
  its chunks: file name, SHA-256 of the file, the row range and the SHA-256 of the
  ``chosen`` and ``rejected`` text of every row;
- ``<split>-<start>.npz``: ``chosen`` and ``rejected``, float16 arrays ``(rows, dim)``
  of the rows ``start, start + 1, ...`` of the split's file (file order, before the
  seeded swap of :func:`~.data.make_pairwise`, so one artifact serves every seed).

Embeddings are mean-pooled over the attention mask and L2-normalised, with *left*
truncation to ``max_length`` tokens (the end of the dialogue holds the answer): the same
:class:`~.embeddings.Encoder` as Chapter 5's MiniLM path (which uses 256 tokens; the
pair uses 128 for both encoders, to keep MPNet's CPU cost at the issue's budget).

Every chunk is written atomically (temporary file + rename) and the manifest is
rewritten atomically after each chunk, so an interrupted run resumes where it stopped.
:func:`load_rows` verifies everything before use (settings, model digest, file digests,
each text's SHA-256 against the shipped data) and, for rows that are missing or stale,
either refuses (:class:`ArtifactError`) or recomputes them with a warning; a stale
artifact is never silently reused. Half precision rounds each coordinate of a unit
vector (entries of size about ``1 / sqrt(dim)``) with a relative error of at most
``2 ** -11``, so a cosine similarity moves by less than about ``1e-3``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from .._common import atomic_write, atomic_write_text, positive_int
from .data import SPLITS, load_pairs
from .embedding_store import (
    ArtifactError,
    artifact_dir,
    artifact_settings,
    artifact_vectors,
    available_rows,
    file_sha256,
    read_manifest,
)
from .embeddings import Encoder, resolve_model_path, text_hash

__all__ = [
    "ArtifactError",
    "artifact_dir",
    "artifact_vectors",
    "available_rows",
    "model_sha256",
    "embed_split",
    "load_rows",
    "pair_embeddings",
]


def model_sha256(model: str) -> str:
    """SHA-256 of the encoder's ``model.safetensors`` (memoised per process)."""
    from .embedding_store import weights_sha256

    return weights_sha256(resolve_model_path(model))


def _settings(model: str, max_length: int) -> dict:
    return artifact_settings(model, resolve_model_path(model), max_length)


def _check_split(split: str, n_rows) -> tuple[list[dict], int]:
    if split not in SPLITS:
        raise ValueError(f"split: one of {SPLITS}, got {split!r}")
    rows = load_pairs(split)
    n = positive_int(n_rows, "n_rows", max=len(rows)) if n_rows is not None else len(rows)
    return rows[:n], n


def _chunk_ok(folder: Path, c: dict, hashes: list[list[str]]) -> bool:
    """A chunk is usable if its file digest matches and its rows' texts are unchanged."""
    f = folder / c["file"]
    return (f.is_file() and file_sha256(f) == c["sha256"]
            and c["text_sha256"] == hashes[c["start"]: c["stop"]])


def embed_split(model: str, split: str, n_rows=None, max_length: int = 128, root=None,
                chunk_rows: int = 200, batch_size: int = 32, progress: bool = True) -> Path:
    """Embed the first ``n_rows`` rows of ``split`` into the artifact (resumable).

    Valid chunks already in the manifest are kept; missing or invalid ones are
    (re)computed and written atomically, the manifest rewritten after each. A manifest
    with other settings (model digest, length, pooling) is refused: delete the folder.
    """
    chunk_rows = positive_int(chunk_rows, "chunk_rows")
    max_length = positive_int(max_length, "max_length")
    rows, n = _check_split(split, n_rows)
    folder = artifact_dir(model, max_length, root)
    folder.mkdir(parents=True, exist_ok=True)
    settings = _settings(model, max_length)
    man = read_manifest(folder) or {**settings, "splits": {}}
    stale = {k: (man.get(k), v) for k, v in settings.items() if man.get(k) != v}
    if stale:
        raise ArtifactError(f"{folder}: manifest settings differ {stale}; delete the folder "
                            "to recompute it")
    hashes = [[text_hash(r["chosen"]), text_hash(r["rejected"])] for r in rows]
    chunks = {c["start"]: c for c in man["splits"].get(split, [])
              if c["stop"] <= n and _chunk_ok(folder, c, hashes)}
    enc = Encoder(model, max_length=max_length, truncation_side="left", batch_size=batch_size)
    from tqdm import tqdm

    bar = tqdm(total=n, desc=f"{folder.name} {split}", unit="row", disable=not progress)
    for start in range(0, n, chunk_rows):
        stop = min(n, start + chunk_rows)
        if start in chunks and chunks[start]["stop"] == stop:
            bar.update(stop - start)
            continue
        part = rows[start:stop]
        e = enc.encode([r["chosen"] for r in part] + [r["rejected"] for r in part],
                       progress=False).astype(np.float16)
        name = f"{split}-{start:05d}.npz"
        atomic_write(folder / name, lambda f, e=e, k=stop - start: np.savez(
            f, chosen=e[:k], rejected=e[k:]))
        chunks[start] = {"file": name, "start": start, "stop": stop,
                         "sha256": file_sha256(folder / name),
                         "text_sha256": hashes[start:stop]}
        man["splits"][split] = [chunks[s] for s in sorted(chunks)]
        man["dim"] = int(e.shape[1])
        atomic_write_text(folder / "manifest.json", json.dumps(man, indent=1))
        bar.update(stop - start)
    bar.close()
    return folder


def load_rows(model: str, split: str, n_rows=None, max_length: int = 128, root=None,
              on_missing: str = "raise", progress: bool = False):
    """Verified ``(chosen, rejected)`` float32 embeddings of the first ``n_rows`` rows.

    Checks the manifest's settings (format, model and the SHA-256 of its weights, maximum
    length, left truncation, pooling), each chunk file's SHA-256 and each row's text
    SHA-256 against the shipped data. Rows not covered by a valid chunk are refused
    (``on_missing="raise"``: :class:`ArtifactError` naming what is wrong) or computed
    with the same encoder, with a warning (``on_missing="compute"``).
    """
    if on_missing not in ("raise", "compute"):
        raise ValueError(f"on_missing: 'raise' or 'compute', got {on_missing!r}")
    max_length = positive_int(max_length, "max_length")
    rows, n = _check_split(split, n_rows)
    folder = artifact_dir(model, max_length, root)
    man = read_manifest(folder)
    problem = None
    if man is None:
        problem = f"no manifest in {folder}"
    else:
        settings = _settings(model, max_length)
        bad = sorted(k for k, v in settings.items() if man.get(k) != v)
        if bad:
            problem = f"{folder}: manifest differs from the encoder in {bad}"
    hashes = [[text_hash(r["chosen"]), text_hash(r["rejected"])] for r in rows]
    got = np.zeros(n, dtype=bool)
    out = None
    for c in (man or {}).get("splits", {}).get(split, []) if problem is None else []:
        if c["start"] >= n:
            continue
        stop = min(c["stop"], n)
        if not _chunk_ok(folder, {**c, "stop": stop,
                                  "text_sha256": c["text_sha256"][: stop - c["start"]]},
                         hashes):
            problem = f"{folder / c['file']}: file digest or texts differ (stale chunk)"
            continue
        with np.load(folder / c["file"], allow_pickle=False) as z:
            ch, rj = z["chosen"][: stop - c["start"]], z["rejected"][: stop - c["start"]]
        if out is None:
            out = np.zeros((2, n, ch.shape[1]), dtype=np.float32)
        out[0, c["start"]: stop], out[1, c["start"]: stop] = ch, rj
        got[c["start"]: stop] = True
    if got.all():
        return out[0], out[1]
    missing = np.flatnonzero(~got)
    msg = (f"embedding artifact {folder.name}/{split}: {len(missing)} of {n} rows missing or "
           f"stale ({problem or 'not computed yet'}); run `w2sg embed --model {model} "
           f"--split {split} --rows {n} --max-length {max_length}`")
    if on_missing == "raise":
        raise ArtifactError(msg)
    warnings.warn(msg + "; computing them now", stacklevel=2)
    enc = Encoder(model, max_length=max_length, truncation_side="left")
    texts = [rows[i]["chosen"] for i in missing] + [rows[i]["rejected"] for i in missing]
    e = enc.encode(texts, progress=progress)
    if out is None:
        out = np.zeros((2, n, e.shape[1]), dtype=np.float32)
    out[0, missing], out[1, missing] = e[: len(missing)], e[len(missing):]
    return out[0], out[1]


def pair_embeddings(ds, model: str, max_length: int = 128, root=None,
                    on_missing: str = "raise"):
    """``(e_a, e_b)`` for a :class:`~.data.PairDataset` made from the first rows of a split.

    ``ds.name`` must be the split; the swap is undone from the texts themselves: each
    ``text_a`` must hash to the row's chosen (``label 1``) or rejected text, else
    :class:`ArtifactError`.
    """
    chosen, rejected = load_rows(model, ds.name, len(ds), max_length, root, on_missing)
    a_is_chosen = np.asarray(ds.label) == 1
    rows = load_pairs(ds.name)[: len(ds)]
    for i, (ta, r) in enumerate(zip(ds.text_a, rows)):
        if ta != (r["chosen"] if a_is_chosen[i] else r["rejected"]):
            raise ArtifactError(f"ds: pair {i} of {ds.name!r} is not row {i} of the split")
    sel = a_is_chosen[:, None]
    return np.where(sel, chosen, rejected), np.where(sel, rejected, chosen)
