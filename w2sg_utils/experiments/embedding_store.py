"""Files of the shipped embedding artifact, without the encoder (claim C9, Chapters 5-6).

The low-level half of :mod:`.embedding_artifact` (which computes and loads the artifact):
the folder layout, the manifest, file digests and :func:`artifact_vectors`, the lookup
:func:`~.embeddings.embed_texts` uses before encoding. It imports nothing from the
encoder's module, so the encoder can consult it. Format: see :mod:`.embedding_artifact`.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np

from .._common import file_sha256

__all__ = [
    "ARTIFACT_FORMAT",
    "POOLING",
    "ArtifactError",
    "default_root",
    "artifact_dir",
    "file_sha256",
    "weights_sha256",
    "artifact_settings",
    "read_manifest",
    "artifact_vectors",
    "available_rows",
]

ARTIFACT_FORMAT = 1
POOLING = "mean over the attention mask, then L2 normalisation"
_SHORT = {"sentence-transformers/all-MiniLM-L6-v2": "all-MiniLM-L6-v2",
          "sentence-transformers/all-mpnet-base-v2": "all-mpnet-base-v2"}


class ArtifactError(RuntimeError):
    """An embedding artifact is missing rows, or is stale (settings, model or texts)."""


def default_root() -> Path:
    """``$W2SG_EMBEDDINGS`` if set, else the repository's ``results/embeddings``."""
    env = os.environ.get("W2SG_EMBEDDINGS")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "results" / "embeddings"


def artifact_dir(model: str, max_length: int, root=None) -> Path:
    """The artifact folder of one encoder and maximum length."""
    short = _SHORT.get(model, model.rstrip("/").split("/")[-1])
    return Path(root if root is not None else default_root()) / f"{short}-L{max_length}"


_DIGESTS: dict = {}




def weights_sha256(model_dir) -> str:
    """SHA-256 of ``model_dir/model.safetensors`` (memoised per process and file state)."""
    path = Path(model_dir) / "model.safetensors"
    if not path.is_file():
        raise ArtifactError(f"model: no local weights ({path} missing)")
    stamp = (str(path), path.stat().st_size, path.stat().st_mtime_ns)
    if stamp not in _DIGESTS:
        _DIGESTS[stamp] = file_sha256(path)
    return _DIGESTS[stamp]


def artifact_settings(model: str, model_dir, max_length: int) -> dict:
    """What a manifest must record for an encoder (weights at ``model_dir``)."""
    return {"format": ARTIFACT_FORMAT, "model": model, "model_sha256": weights_sha256(model_dir),
            "max_length": max_length, "truncation_side": "left", "pooling": POOLING,
            "dtype": "float16"}


def read_manifest(folder) -> dict | None:
    """The parsed ``manifest.json`` of an artifact folder, or ``None``."""
    f = Path(folder) / "manifest.json"
    if not f.is_file():
        return None
    try:
        return json.loads(f.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def artifact_vectors(model: str, model_dir, max_length: int, truncation_side: str = "left",
                     num_layers: int | None = None, root=None) -> dict[str, np.ndarray]:
    """``{text SHA-256: float32 vector}`` from every verified chunk of a matching artifact.

    Used by :func:`~.embeddings.embed_texts` before encoding: only an artifact of the same
    model (SHA-256 of its weights), maximum length, truncation side and pooling, of the
    whole encoder (``num_layers=None``; weights in the folder ``model_dir``), matches. A chunk whose file digest differs is
    skipped with a warning (its texts are then encoded); texts are matched by their own
    SHA-256, so a changed text is never served a stale vector.
    """
    if num_layers is not None or truncation_side != "left":
        return {}
    folder = artifact_dir(model, max_length, root)
    man = read_manifest(folder)
    if man is None:
        return {}
    try:
        settings = artifact_settings(model, model_dir, max_length)
    except ArtifactError:
        return {}
    if any(man.get(k) != v for k, v in settings.items()):
        warnings.warn(f"{folder}: manifest settings differ from the encoder; not used",
                      stacklevel=2)
        return {}
    out: dict[str, np.ndarray] = {}
    for chunks in man.get("splits", {}).values():
        for c in chunks:
            f = folder / c["file"]
            if not f.is_file() or file_sha256(f) != c["sha256"]:
                warnings.warn(f"{f}: missing or digest differs; not used", stacklevel=2)
                continue
            with np.load(f, allow_pickle=False) as z:
                ch, rj = z["chosen"].astype(np.float32), z["rejected"].astype(np.float32)
            for (hc, hr), vc, vr in zip(c["text_sha256"], ch, rj):
                out[hc], out[hr] = vc, vr
    return out


def available_rows(model: str, split: str, max_length: int = 128, root=None) -> int:
    """Length of the prefix of ``split`` the manifest lists as computed (0 if none).

    A listing only: :func:`load_rows` verifies the rows when they are read.
    """
    man = read_manifest(artifact_dir(model, max_length, root)) or {}
    n = 0
    for c in sorted(man.get("splits", {}).get(split, []), key=lambda c: c["start"]):
        if c["start"] != n:
            break
        n = c["stop"]
    return n
