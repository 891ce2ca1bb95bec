"""Internal pieces shared by every module: argument checks, array helpers of the
divergences (``as_float``, ``xlogy``, ``rowsum``, ``check_broadcast``), thread control,
atomic writes.

Not part of the book's API (chapters use :mod:`w2sg_utils.params` for their parameters).
Every check takes ``(value, name, ...)`` in that order, returns the normalised value and
raises ``ValueError`` whose message starts with ``name:`` (the parameter's name), before
any work starts.
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import numpy as np

__all__ = [
    "as_float",
    "xlogy",
    "rowsum",
    "check_broadcast",
    "check_int",
    "check_real",
    "positive_int",
    "non_negative",
    "positive",
    "probability",
    "sample_weights",
    "torch_threads",
    "atomic_write",
    "atomic_write_text",
    "file_sha256",
]

_INTS = (int, np.integer)
_REALS = (int, float, np.integer, np.floating)


def as_float(x, name: str) -> np.ndarray:
    """Convert to a float64 array and reject NaN with an error naming ``name``."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: cannot be converted to a float array ({exc})") from exc
    if arr.ndim == 0:
        raise ValueError(
            f"{name}: expected an array whose last axis holds coordinates, got a scalar; "
            "pass scalars with a trailing axis of length 1"
        )
    if np.isnan(arr).any():
        raise ValueError(f"{name}: contains NaN")
    return arr


def xlogy(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``x * log(y)`` with the convention ``0 * log(0) = 0`` (faster than scipy's ufunc)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.asarray(x * np.log(y), dtype=np.float64)
    if out.ndim == 0:
        return np.float64(0.0) if x == 0 else out
    out[np.broadcast_to(x == 0, out.shape)] = 0.0
    return out


def rowsum(a: np.ndarray) -> np.ndarray:
    """Sum over the last axis; a matrix-vector product is much faster than ``sum(-1)``
    for the short coordinate axes used here."""
    return a @ np.ones(a.shape[-1])


def check_broadcast(u: np.ndarray, v: np.ndarray, names: tuple[str, str]) -> None:
    if u.shape[-1] != v.shape[-1]:
        raise ValueError(
            f"{names[1]}: last (coordinate) axis has length {v.shape[-1]}, "
            f"but {names[0]} has {u.shape[-1]}"
        )
    try:
        np.broadcast_shapes(u.shape, v.shape)
    except ValueError as exc:
        raise ValueError(
            f"{names[0]} and {names[1]}: shapes {u.shape} and {v.shape} do not broadcast"
        ) from exc


def check_int(value, name: str, min: int | None = None, max: int | None = None) -> int:
    """``value`` as an ``int`` in ``[min, max]`` (bounds optional; ``bool`` is rejected)."""
    if isinstance(value, bool) or not isinstance(value, _INTS):
        raise ValueError(f"{name}: expected an integer, got {value!r}")
    v = int(value)
    if (min is not None and v < min) or (max is not None and v > max):
        rng = (f"in {min}..{max}" if min is not None and max is not None
               else f">= {min}" if min is not None else f"<= {max}")
        raise ValueError(f"{name}: must be an integer {rng}, got {value!r}")
    return v


def check_real(value, name: str, min: float | None = None, max: float | None = None,
               min_open: bool = False, max_open: bool = False) -> float:
    """``value`` as a finite ``float`` in ``[min, max]``; ``*_open`` excludes the bound."""
    if isinstance(value, bool) or not isinstance(value, _REALS):
        raise ValueError(f"{name}: expected a real number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name}: must be finite, got {value!r}")
    if min is not None and (v < min or (min_open and v == min)):
        raise ValueError(f"{name}: must be {'>' if min_open else '>='} {min}, got {value!r}")
    if max is not None and (v > max or (max_open and v == max)):
        raise ValueError(f"{name}: must be {'<' if max_open else '<='} {max}, got {value!r}")
    return v


def positive_int(value, name: str, max: int | None = None) -> int:
    """An integer ``>= 1`` (and ``<= max`` if given)."""
    if isinstance(value, bool) or not isinstance(value, _INTS) or value < 1:
        raise ValueError(f"{name}: must be a positive integer, got {value!r}")
    if max is not None and value > max:
        raise ValueError(f"{name}: {value} exceeds the maximum {max}")
    return int(value)


def non_negative(value, name: str) -> float:
    """A finite real number ``>= 0``."""
    return check_real(value, name, 0.0)


def positive(value, name: str) -> float:
    """A finite real number ``> 0``."""
    return check_real(value, name, 0.0, min_open=True)


def probability(value, name: str) -> float:
    """A real number in ``[0, 1]``."""
    return check_real(value, name, 0.0, 1.0)


def sample_weights(weights, n: int, name: str = "weights") -> np.ndarray:
    """Weights of an exact discrete distribution over ``n`` samples, shape ``(n,)``.

    ``None`` gives the uniform ``1/n``; otherwise the weights must be non-negative and
    sum to one (to ``1e-9``).
    """
    if weights is None:
        return np.full(n, 1.0 / n)
    try:
        w = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: cannot be converted to a float array ({exc})") from exc
    if w.shape != (n,):
        raise ValueError(f"{name}: expected shape ({n},), got {w.shape}")
    if np.isnan(w).any():
        raise ValueError(f"{name}: contains NaN")
    if (w < 0).any() or abs(w.sum() - 1.0) > 1e-9:
        raise ValueError(f"{name}: must be non-negative and sum to one (sum={w.sum():.6g})")
    return w


@contextmanager
def torch_threads(threads: int | None):
    """Run a block with ``torch.set_num_threads(threads)``, restoring the old value.

    ``None`` leaves the setting alone. Small matrices (the solvers of Chapter 3, the
    heads and linear classifiers of Chapters 4-5) run several times faster on one thread
    on a loaded machine (``benchmarks/bench_ridge.py``, ``bench_training_loop.py``).
    """
    if threads is None:
        yield
        return
    threads = positive_int(threads, "threads")
    import torch

    old = torch.get_num_threads()
    if old != threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if torch.get_num_threads() != old:
            torch.set_num_threads(old)


def atomic_write(path: str | os.PathLike, write: Callable, binary: bool = True) -> None:
    """Write ``path`` atomically: ``write(f)`` fills a temporary file in the same folder,
    which is flushed, synced and renamed over ``path`` (readers never see a partial file;
    an interrupted write leaves the old file and no temporary)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """:func:`atomic_write` of a UTF-8 text."""
    atomic_write(path, lambda f: f.write(text), binary=False)


def file_sha256(path) -> str:
    """Hex SHA-256 of a file's bytes, read in 4 MiB chunks (the one implementation:
    model weights, embedding files, run records and artifacts)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()
