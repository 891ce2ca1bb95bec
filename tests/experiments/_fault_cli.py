"""Run the ``w2sg`` command with an injected fault (for tests/experiments/test_faults.py).

Usage: ``python _fault_cli.py MODE ARG -- w2sg-arguments...`` with MODE

- ``enospc-after N``: every ``fsync`` after the first ``N`` fails with ENOSPC (a disk
  that fills up during the sweep; every atomic write of the store syncs its file);
- ``readonly DIR``: opening a file for writing, or creating a folder, under ``DIR``
  fails with EROFS (a read-only file system, for a test that runs as root, where
  file permissions do not stop writes).
"""

from __future__ import annotations

import builtins
import errno
import os
import sys


def _enospc_after(n: int) -> None:
    real, count = os.fsync, [0]

    def fsync(fd):
        count[0] += 1
        if count[0] > n:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd)

    os.fsync = fsync


def _readonly(root: str) -> None:
    root = os.path.realpath(root)

    def under(path) -> bool:
        try:
            p = os.path.realpath(os.fsdecode(path))
        except TypeError:
            return False
        return p == root or p.startswith(root + os.sep)

    def refuse(path):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(path))

    real_open, real_mkdir, real_bopen = os.open, os.mkdir, builtins.open
    write = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

    def o(path, flags, *a, **k):
        if flags & write and under(path):
            refuse(path)
        return real_open(path, flags, *a, **k)

    def mk(path, *a, **k):
        if under(path):
            if os.path.isdir(path):
                raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), path)
            refuse(path)
        return real_mkdir(path, *a, **k)

    def bopen(file, mode="r", *a, **k):
        if isinstance(file, (str, bytes, os.PathLike)) and set(mode) & set("wax+") \
                and under(file):
            refuse(file)
        return real_bopen(file, mode, *a, **k)

    os.open, os.mkdir, builtins.open = o, mk, bopen


if __name__ == "__main__":
    mode, arg, sep, *argv = sys.argv[1:]
    assert sep == "--", "usage: _fault_cli.py MODE ARG -- w2sg-arguments"
    {"enospc-after": lambda a: _enospc_after(int(a)), "readonly": _readonly}[mode](arg)
    from w2sg_utils.experiments.cli import main

    sys.exit(main(argv))
