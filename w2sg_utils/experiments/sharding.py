"""Sweeps across machines (Chapter 5 runs, claim C9): shards of a sweep and file locks.

``w2sg run --shard I/N`` runs only the runs of shard ``I`` of ``N`` (``0 <= I < N``), so
``N`` machines, for instance the tasks of a Slurm array, fill one run store on a shared
filesystem. Three pieces make that safe:

- :func:`assign_shards`: the partition. The sweep's run ids are sorted and dealt out in
  turn (``k``-th id to shard ``k mod N``): a function of the run ids alone, so every
  shard computes the same partition from the same configuration, and the shards differ
  in size by at most one run.
- :func:`run_lock`: one exclusive lock per run id. A run is computed only while its lock
  is held and only if the store does not hold it yet, so a run that several shards need
  (a teacher that every student of its seed depends on) is computed once, by the first
  shard that needs it; the others wait for it and load it.
- :func:`store_lock`: the lock around each read-modify-write of ``results.csv``, so two
  writers never lose each other's rows (the file itself is always replaced atomically,
  so a reader never sees half of it).

The locks are ``flock`` locks on small files in ``<store>/.locks/``: the kernel releases
them when their process dies, so a killed shard leaves no stale lock behind, and a
restarted shard (or another one) takes over its unfinished run. On NFS, Linux emulates
``flock`` with POSIX record locks, which work across machines; Lustre needs the
``flock`` mount option. Without ``fcntl`` (Windows) the locks do nothing, and one store
must then have one writer at a time.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .._common import positive_int

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock
    fcntl = None

__all__ = ["parse_shard", "assign_shards", "shard_run_ids", "file_lock", "run_lock",
           "store_lock", "LOCK_DIR"]

LOCK_DIR = ".locks"


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` -> ``(I, N)``, with ``N >= 1`` and ``0 <= I < N`` (ValueError otherwise).

    Zero-based, like a Slurm array declared ``--array=0-(N-1)``:
    ``--shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT``.
    """
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if m is None:
        raise ValueError(f"shard: expected I/N with integers 0 <= I < N, got {text!r}")
    i, n = int(m.group(1)), int(m.group(2))
    if n < 1 or i >= n:
        raise ValueError(f"shard: need N >= 1 and 0 <= I < N, got {i}/{n}")
    return i, n


def assign_shards(run_ids: Iterable[str], n: int) -> dict[str, int]:
    """Shard of each run id: sorted ids dealt out in turn (id ``k`` to shard ``k mod n``)."""
    n = positive_int(n, "n")
    return {rid: k % n for k, rid in enumerate(sorted(set(run_ids)))}


def shard_run_ids(run_ids: Iterable[str], shard: tuple[int, int]) -> set[str]:
    """The run ids of ``shard = (I, N)`` (see :func:`assign_shards`)."""
    i, n = shard
    if not 0 <= i < n:
        raise ValueError(f"shard: need 0 <= I < N, got {i}/{n}")
    return {rid for rid, s in assign_shards(run_ids, n).items() if s == i}


@contextmanager
def file_lock(path: str | os.PathLike, timeout: float | None = None) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) inside the block.

    Blocks until the lock is free; with ``timeout`` (seconds), raises ``TimeoutError``
    after that long instead. Not re-entrant: a process must not take the same lock twice.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            _acquire(fd, path, timeout)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _acquire(fd: int, path: Path, timeout: float | None) -> None:
    if timeout is None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"lock {path} still held after {timeout} s") from None
            time.sleep(0.05)


def run_lock(root: str | os.PathLike, rid: str, timeout: float | None = None):
    """The lock of run ``rid`` in the store at ``root`` (held while the run is computed)."""
    if not re.fullmatch(r"[0-9A-Za-z_.-]+", rid):
        raise ValueError(f"rid: a run id of letters, digits, '-', '_' or '.', got {rid!r}")
    return file_lock(Path(root) / LOCK_DIR / f"{rid}.lock", timeout)


def store_lock(root: str | os.PathLike, timeout: float | None = None):
    """The lock of ``results.csv`` in the store at ``root`` (held while rows are added)."""
    return file_lock(Path(root) / LOCK_DIR / "results.csv.lock", timeout)
