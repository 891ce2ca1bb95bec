"""The ``w2sg embed`` sub-command: compute the shipped embedding artifact (claim C9).

Usage::

    w2sg embed --model sentence-transformers/all-mpnet-base-v2 --split train_w2s,test \\
        --rows 600,2000          # first 600 train_w2s rows, first 2000 test rows
    w2sg embed --model sentence-transformers/all-MiniLM-L6-v2 --split train_gt

Chunked (``--chunk-rows``), resumable (finished chunks are verified and kept), atomic
(each chunk and the manifest are written to a temporary file and renamed), with a
progress bar. See :mod:`.embedding_artifact` for the format.
"""

from __future__ import annotations

import argparse

from .data import SPLITS

__all__ = ["add_embed_parser", "run_embed"]


def _csv(s: str) -> list[str]:
    out = [x.strip() for x in s.split(",") if x.strip()]
    if not out:
        raise argparse.ArgumentTypeError("expected at least one value")
    return out


def add_embed_parser(sub) -> argparse.ArgumentParser:
    """Register ``embed`` on an ``add_subparsers`` object."""
    e = sub.add_parser(
        "embed", help="compute the checksummed embedding artifact (resumable)",
        description="Embed the first rows of HH-helpful splits with a frozen encoder "
                    "(mean pooling, L2 norm, left truncation) into a checksummed artifact.")
    e.add_argument("--model", default="sentence-transformers/all-mpnet-base-v2",
                   help="encoder (hub id or local folder; default all-mpnet-base-v2)")
    e.add_argument("--split", type=_csv, default=list(SPLITS),
                   help="comma-separated splits (default: all three)")
    e.add_argument("--rows", type=_csv, default=None,
                   help="rows per split, comma-separated, one per split or one for all "
                        "(default: every row)")
    e.add_argument("--max-length", type=int, default=128, help="tokens kept (default 128)")
    e.add_argument("--chunk-rows", type=int, default=200, help="rows per chunk (default 200)")
    e.add_argument("--batch-size", type=int, default=32)
    e.add_argument("--out", default=None,
                   help="artifact root (default $W2SG_EMBEDDINGS or results/embeddings)")
    e.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return e


def _plan(args) -> list[tuple[str, int | None]]:
    bad = [s for s in args.split if s not in SPLITS]
    if bad:
        raise ValueError(f"--split: unknown {bad}; use {SPLITS}")
    rows = args.rows or ["all"]
    if len(rows) not in (1, len(args.split)):
        raise ValueError(f"--rows: give one count or one per split ({len(args.split)})")
    rows = rows * len(args.split) if len(rows) == 1 else rows
    out = []
    for s, r in zip(args.split, rows):
        if r == "all":
            out.append((s, None))
            continue
        try:
            n = int(r)
        except ValueError as exc:
            raise ValueError(f"--rows: integers or 'all', got {r!r}") from exc
        if not 1 <= n <= 4000:
            raise ValueError(f"--rows: must be in [1, 4000], got {n}")
        out.append((s, n))
    for name in ("max_length", "chunk_rows", "batch_size"):
        if getattr(args, name) < 1 + (name == "max_length"):
            raise ValueError(f"--{name.replace('_', '-')}: must be a positive integer "
                             f"(max length >= 2), got {getattr(args, name)}")
    return out


def run_embed(parser: argparse.ArgumentParser, args) -> int:
    """Execute ``w2sg embed`` (argument errors exit with status 2 before any work)."""
    try:
        plan = _plan(args)
    except ValueError as exc:
        parser.error(str(exc))
    from .embedding_artifact import embed_split

    for split, n in plan:
        folder = embed_split(args.model, split, n, max_length=args.max_length, root=args.out,
                             chunk_rows=args.chunk_rows, batch_size=args.batch_size,
                             progress=not args.no_progress)
    print(f"embeddings written to {folder}")
    return 0
