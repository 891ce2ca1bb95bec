"""One-line failures of the ``w2sg`` command (claim C9 experiments, Chapter 5).

Every failure of the command line is one line on standard error, ``w2sg <command>:
error: <what is wrong>; <what to do>``, with exit status 2 for a usage error (a bad
argument: :class:`OneLineParser`) and 1 for a failure at run time
(:func:`describe_failure`: a torn store, a data file that fails its checksum or its
validation, an output folder that cannot be written, a full disk, ...). ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import argparse
import errno
import sys

__all__ = ["CommandError", "OneLineParser", "describe_failure", "one_line", "report",
           "usage_error"]

_FULL = (errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC))
_DENIED = (errno.EROFS, errno.EACCES, errno.EPERM)
_RESUME = "rerun the same command to resume (finished runs are kept)"


def one_line(text: str) -> str:
    """``text`` on one line (newlines and runs of blanks collapsed)."""
    return " ".join(str(text).split())


class CommandError(RuntimeError):
    """A failure whose message already says what is wrong and what to do (status 1)."""


def usage_error(command: str, message) -> None:
    """Print a one-line usage error of ``w2sg <command>`` and exit with status 2."""
    print(f"w2sg {command}: error: {one_line(message)} (see `w2sg {command} --help`)",
          file=sys.stderr)
    raise SystemExit(2)


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (exit status 2)."""

    def error(self, message):  # noqa: D102 - argparse API
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see `{self.prog} --help`)\n")


def describe_failure(exc: BaseException, out=None) -> tuple[int, str]:
    """Exit status and one-line message for an exception of a ``w2sg`` command."""
    from .data import DataError
    from .records import StoreError

    if isinstance(exc, (StoreError, CommandError)):
        return 1, one_line(exc)
    if isinstance(exc, DataError):
        msg = one_line(exc)
        if "w2sg data manifest" not in msg and "dataset:" not in msg:
            msg += ("; fix the file (one JSON object per line with non-empty 'chosen' "
                    "and 'rejected' texts)")
        return 1, msg
    if isinstance(exc, OSError) and exc.errno is not None:
        where = exc.filename or out or "the output folder"
        why = exc.strerror or type(exc).__name__
        if exc.errno in _FULL:
            return 1, one_line(f"cannot write {where}: {why} (disk full or file size "
                               f"limit); free space, then {_RESUME}")
        if exc.errno in _DENIED:
            return 1, one_line(f"cannot write {where}: {why}; choose a writable --out "
                               f"folder or fix its permissions, then {_RESUME}")
        return 1, one_line(f"{where}: {why}; check the path (--out, --data-dir)")
    if isinstance(exc, TimeoutError):
        return 1, one_line(f"{exc}; another process holds the store's lock")
    return 1, one_line(f"{type(exc).__name__}: {exc} (unexpected; rerun with --debug "
                       "for the traceback and report it)")


def report(command: str, exc: BaseException, out=None) -> int:
    """Print the one-line failure of ``command`` to standard error; its exit status."""
    code, msg = describe_failure(exc, out)
    print(f"w2sg {command}: error: {msg}", file=sys.stderr)
    return code
