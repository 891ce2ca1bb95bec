"""Command-line entry point of the Chapter 5 experiments (claim C9).

Usage::

    w2sg presets                              # list presets
    w2sg objectives                           # list student objectives
    w2sg run --out runs/hh                    # CPU default preset (hh-minilm-cpu)
    w2sg run --preset gpt2-hh --out runs/gpt2 # GPU: the GPT-2 protocol of the released code
    w2sg summarize --out runs/hh              # table per objective with 95% CIs
    w2sg embed --split test --rows 2000       # the checksummed MPNet embedding artifact
    w2sg run --shard 0/4 --out runs/hh        # one of 4 machines filling one store
    w2sg run --data-dir my_pairs --out runs/mine   # your own pairs (JSONL, Parquet, CSV)
    w2sg data manifest my_pairs               # record their checksums (then verified)
    w2sg run --dataset Anthropic/hh-rlhf:harmless-base --out runs/harmless  # online
    w2sg repair --out runs/hh                 # rebuild a torn index, drop broken runs
    accelerate launch -m w2sg_utils run --preset gpt2-hh --out runs/gpt2   # several GPUs

(``python -m w2sg_utils ...`` is the same.) Re-running ``run`` with the same ``--out``
skips finished runs and resumes an interrupted sweep (after repairing the store:
:meth:`~.store.RunStore.repair`). All arguments are validated before any work starts.
Every failure is one line naming what is wrong and what to do, exit status 2 for a
usage error and 1 at run time (:mod:`.cli_errors`); ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .._common import positive_int
from .cli_errors import CommandError, OneLineParser, report, usage_error

__all__ = ["main", "build_parser", "config_from_args"]


def _int_list(s: str) -> list[int]:
    try:
        out = [int(x) for x in s.split(",") if x.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {s!r}") from exc
    if not out:
        raise argparse.ArgumentTypeError("expected at least one integer")
    return out


def _float_list(s: str) -> list[float]:
    try:
        return [float(x) for x in s.split(",") if x.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {s!r}") from exc


def _shard(s: str) -> tuple[int, int]:
    from .sharding import parse_shard

    try:
        return parse_shard(s)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _str_list(s: str) -> list[str]:
    out = [x.strip() for x in s.split(",") if x.strip()]
    if not out:
        raise argparse.ArgumentTypeError("expected at least one name")
    return out


def build_parser() -> argparse.ArgumentParser:
    """The ``w2sg`` argument parser (sub-commands ``run``, ``summarize``, ``repair``,
    ``data manifest``, ``presets``, ``objectives``, ``embed``)."""
    from .config import PRESETS

    p = OneLineParser(
        prog="w2sg",
        description="Weak-to-strong experiments on HH-RLHF helpful or your own preference "
                    "pairs (w2sg-book, Chapter 5).")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run or resume a sweep",
                       description="Run (or resume) a sweep: teacher(s), soft labels, ceiling, "
                                   "one student per objective, ensemble, evaluation.")
    r.add_argument("--preset", default="hh-minilm-cpu",
                   help=f"one of {', '.join(sorted(PRESETS))} (default: hh-minilm-cpu)")
    r.add_argument("--out", required=True, help="output folder (results.csv + artifacts/)")
    src = r.add_mutually_exclusive_group()
    src.add_argument("--data-dir", default=None,
                     help="folder of your own pairs: train_gt, train_w2s and test as .jsonl, "
                          ".jsonl.gz, .parquet or .csv with 'chosen' and 'rejected' texts "
                          "(default: the shipped HH-helpful copy)")
    src.add_argument("--dataset", default=None, metavar="NAME[:SUBSET]",
                     help="a Hugging Face data set (online; e.g. Anthropic/hh-rlhf:harmless-"
                          "base) or a local datasets folder")
    r.add_argument("--full", action="store_true", help="4000/4000/4000 pairs")
    r.add_argument("--n-train-gt", type=int, default=None, help="pairs kept from train_gt")
    r.add_argument("--n-train-w2s", type=int, default=None, help="pairs kept from train_w2s")
    r.add_argument("--n-test", type=int, default=None, help="pairs kept from test")
    g = r.add_mutually_exclusive_group()
    g.add_argument("--seeds", type=_int_list, default=None, help="e.g. 0,1,2,3,4")
    g.add_argument("--n-seeds", type=int, default=None, help="seeds 0..n-1")
    r.add_argument("--objectives", type=_str_list, default=None,
                   help="comma-separated student objectives (default: all)")
    r.add_argument("--teacher-labels", type=int, default=None,
                   help="ground-truth labels for the weak teacher")
    r.add_argument("--student-l2", type=float, default=None, help="student L2 strength")
    r.add_argument("--l2-grid", type=_float_list, default=None,
                   help="L2 values of the regularisation sweep (empty string: none)")
    r.add_argument("--ensemble-size", type=int, default=None,
                   help="teachers in the bootstrap ensemble (0: off)")
    r.add_argument("--device", default=None, help="cpu or cuda (default: the preset's)")
    r.add_argument("--teacher-model", default=None,
                   help="causal-LM presets: teacher model (hub id or folder), e.g. gpt2")
    r.add_argument("--student-model", default=None,
                   help="causal-LM presets: strong model (hub id or folder), e.g. gpt2-large")
    r.add_argument("--micro-batch-size", type=int, default=None,
                   help="causal-LM presets: pairs per microbatch (teacher and student)")
    r.add_argument("--shard", type=_shard, default=None, metavar="I/N",
                   help="run only shard I of N (0 <= I < N, by run id), e.g. "
                        "$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT; shards may share --out")
    r.add_argument("--no-progress", action="store_true", help="hide progress bars")

    s = sub.add_parser("summarize", help="print mean and 95%% CI per objective")
    s.add_argument("--out", required=True, help="a sweep's output folder")
    rp = sub.add_parser("repair", help="rebuild a store's index; drop broken runs",
                        description="Check every run record and artifact of a store, move "
                                    "the broken ones to quarantine/ (the next `w2sg run` "
                                    "recomputes them) and rebuild results.csv from the rest; "
                                    "migrates a store of the earlier layout. Run it while "
                                    "no sweep writes to the store.")
    rp.add_argument("--out", required=True, help="a sweep's output folder")
    d = sub.add_parser("data", help="tools for your own data")
    dsub = d.add_subparsers(dest="data_command", required=True)
    m = dsub.add_parser("manifest", help="validate a folder of pairs and write its manifest",
                        description="Validate every row of DIR's train_gt, train_w2s and test "
                                    "files and write DIR/manifest.json (their SHA-256 and row "
                                    "counts); `w2sg run --data-dir DIR` then refuses a changed "
                                    "file.")
    m.add_argument("dir", help="folder of pairs")
    sub.add_parser("presets", help="list presets")
    sub.add_parser("objectives", help="list student objectives")
    from .embed_cmd import add_embed_parser
    add_embed_parser(sub)
    p.add_argument("--debug", action="store_true", help="show tracebacks of failures")
    for sp in [*sub.choices.values(), m]:
        sp.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks of failures")
    return p


def config_from_args(args):
    """The validated experiment configuration for parsed ``run`` arguments."""
    from .config import get_preset, make_config

    preset = get_preset(args.preset)
    ov: dict = {}
    sizes = {}
    for split, v in (("train_gt", args.n_train_gt), ("train_w2s", args.n_train_w2s),
                     ("test", args.n_test)):
        if v is not None:
            sizes[split] = v
    if sizes:
        ov["sizes"] = sizes
    if args.seeds is not None:
        ov["seeds"] = args.seeds
    if args.n_seeds is not None:
        ov["seeds"] = list(range(positive_int(args.n_seeds, "n_seeds")))
    if args.objectives is not None:
        ov["objectives"] = args.objectives
    if args.teacher_labels is not None:
        ov["teacher"] = {"n_labels": args.teacher_labels}
    if args.student_l2 is not None:
        ov["strong"] = {"l2": args.student_l2}
    if args.l2_grid is not None:
        ov["l2_grid"] = args.l2_grid
    if args.ensemble_size is not None:
        ov["ensemble_size"] = args.ensemble_size
    if args.device is not None:
        ov["device"] = args.device
    lm_opts = {"teacher_model": args.teacher_model, "student_model": args.student_model,
               "micro_batch_size": args.micro_batch_size}
    if preset.backend != "causal_lm":
        for k, v in lm_opts.items():
            if v is not None:
                raise ValueError(f"{k}: only for causal-LM presets, not {preset.name!r}")
    else:
        if args.teacher_model is not None:
            ov.setdefault("teacher", {})["model"] = args.teacher_model
        if args.student_model is not None:
            ov.setdefault("strong", {})["model"] = args.student_model
        if args.micro_batch_size is not None:
            ov.setdefault("teacher", {})["micro_batch_size"] = args.micro_batch_size
            ov.setdefault("strong", {})["micro_batch_size"] = args.micro_batch_size
    if args.data_dir is not None:
        from .sources import split_files

        split_files(args.data_dir)  # a folder with a file per split
    full = bool(args.full)
    if full and sizes:
        raise ValueError("full: --full and --n-* sizes are mutually exclusive")
    cfg = make_config(preset.name, full=full, **ov)
    return cfg


def main(argv=None) -> int:
    """Entry point of the ``w2sg`` console script and ``python -m w2sg_utils``."""
    if _offline_default():  # the hub is often unreachable; W2SG_ONLINE=1 opts out
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _dispatch(parser, args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"w2sg {args.command}: interrupted; rerun the same command to resume",
              file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - one line for every failure (not --debug)
        if args.debug:
            raise
        return report(args.command, exc, getattr(args, "out", None))


def _dispatch(parser, args) -> int:
    if args.command == "presets":
        from .config import PRESETS
        from .presets import RELEASE_DIFFERENCES

        for name, p in PRESETS.items():
            gpu = " [needs CUDA]" if p.requires_cuda else ""
            print(f"{name}{gpu}: {p.description}")
            for d in RELEASE_DIFFERENCES.get(name, ()):
                print(f"    differs from the release: {d}")
        return 0
    if args.command == "objectives":
        from .config import objective_names

        print("\n".join(objective_names()))
        return 0
    if args.command == "summarize":
        return _summarize(parser, args)
    if args.command == "repair":
        return _repair(parser, args)
    if args.command == "data":
        return _data_manifest(parser, args)
    if args.command == "embed":
        from .embed_cmd import run_embed
        return run_embed(parser, args)
    return _run(parser, args)


def _run(parser, args) -> int:
    from .data import DataError
    from .sources import open_source

    try:
        cfg = config_from_args(args)
        source = open_source(args.data_dir, args.dataset, progress=not args.no_progress)
    except DataError:
        raise  # a data file: a failure at run time
    except (ValueError, FileNotFoundError) as exc:
        usage_error("run", exc)
    if source is not None:
        _check_sizes(cfg, source)
    from .distributed import current
    from .store import RunStore
    from .sweep import run_sweep

    main_process = current(cfg.device).is_main
    if main_process:
        _writable(args.out)
        rep = RunStore(args.out).repair()
        if rep.dropped or rep.torn_lines or rep.migrated:
            print(f"w2sg run: repaired {rep.summary(args.out)}", file=sys.stderr)
    df = run_sweep(cfg, args.out, data_dir=source, progress=not args.no_progress,
                   shard=args.shard)
    if main_process:  # one report per launch
        print(f"{len(df)} runs in {Path(args.out) / 'results.csv'}")
        _print_summary(df)
    return 0


def _offline_default() -> bool:
    return "HF_HUB_OFFLINE" not in os.environ and os.environ.get("W2SG_ONLINE", "") != "1"


def _check_sizes(cfg, source) -> None:
    """Every split of ``source`` holds at least the configured number of pairs."""
    flags = {"train_gt": "--n-train-gt", "train_w2s": "--n-train-w2s", "test": "--n-test"}
    counts = source.check()  # reads and validates every row now
    for split, n in counts.items():
        want = getattr(cfg.sizes, split)
        if want > n:
            usage_error("run", f"sizes.{split}: {want} exceeds the {n} pairs of split {split!r} "
                         f"in {source.description}; use {flags[split]} {n} or fewer")


def _writable(out) -> None:
    """Create the output folder and check that files can be written in it."""
    import tempfile

    try:
        Path(out).mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=out, prefix=".w2sg-probe", suffix=".tmp")
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise CommandError(f"cannot create or write the output folder {out} "
                           f"({exc.strerror or exc}); choose a writable --out") from exc


def _store_or_error(command, out):
    from .store import RunStore

    store = RunStore(out, create=False)
    if not Path(out).is_dir():
        usage_error(command, f"out: {out} is not a folder")
    if not store.csv.is_file() and not store.has_records():
        usage_error(command, f"out: no results.csv (and no runs/) in {out}; is it a "
                             "sweep's --out?")
    return store


def _summarize(parser, args) -> int:
    store = _store_or_error("summarize", args.out)
    _print_summary(store.rows(), store)
    return 0


def _repair(parser, args) -> int:
    store = _store_or_error("repair", args.out)
    rep = store.repair(clean_tmp=True)
    print(rep.summary(args.out))
    return 0


def _data_manifest(parser, args) -> int:
    from .sources import write_manifest

    if not Path(args.dir).is_dir():
        usage_error("data manifest", f"dir: {args.dir} is not a folder")
    try:
        path = write_manifest(args.dir)
    except FileNotFoundError as exc:
        usage_error("data manifest", exc)
    import json

    files = json.loads(path.read_text(encoding="utf-8"))["files"]
    print(f"wrote {path}: " + ", ".join(f"{k} {v['n_rows']} rows ({v['file']})"
                                         for k, v in files.items()))
    return 0


def _print_summary(df, store=None) -> None:
    """Teacher and ceiling accuracy, then accuracy, test risk and PGR per objective and L2.

    With the runs' artifacts (``store``), intervals are two-level (test pairs and seeds,
    :mod:`.run_intervals`); without them, over seeds only (conditional on the test set).
    Runs with a NaN value are counted in ``n_nan`` / ``<metric>_nan``, not dropped silently.
    """
    import numpy as np
    import pandas as pd

    from .metrics import summarize

    if df.empty:
        print("no runs yet")
        return
    if "data" in df and df["data"].nunique(dropna=False) > 1:  # never pooled
        for name, sub in df.groupby(df["data"].fillna("shipped HH-helpful"), sort=True):
            print(f"== data: {name}")
            _print_summary(sub.drop(columns="data"), store)
        return
    st = df[(df["stage"] == "student") & (df["labels"] == "teacher0")]
    base = df[df["stage"].isin(["teacher", "ceiling"]) & (df["member"].isin([0, -1]))]
    fmt = {"index": False, "float_format": "%.4f"}
    if store is not None and _artifacts_complete(store, pd.concat([base, st])):
        from .run_intervals import interval_summary, labels_from_store

        labels = labels_from_store(store, pd.concat([base, st]))
        print("95% intervals over test pairs and seeds (conditional on the training pools):")
        if len(base):
            print(interval_summary(base, store, labels, ["stage"], ["acc"]).to_string(**fmt))
        if len(st):
            print(interval_summary(st, store, labels, ["objective", "l2"], ["acc", "risk"], pgr=True,
                                   all_runs=df).to_string(**fmt))
    else:
        print("95% intervals over seeds only (conditional on the test pairs; no artifacts):")
        if len(base):
            print(summarize(base, ["stage"], ["acc"]).to_string(**fmt))
        if len(st):
            print(summarize(st, ["objective", "l2"], ["acc", "pgr"]).to_string(**fmt))
    n_nan = int((~np.isfinite(st["pgr"].to_numpy(float))).sum()) if "pgr" in st else 0
    if n_nan:
        print(f"note: {n_nan} student run(s) with an undefined PGR (ceiling not above teacher)")
    sys.stdout.flush()


def _artifacts_complete(store, rows) -> bool:
    bad = [rid for rid in rows["run_id"] if store.load_artifact(rid) is None]
    if bad and any(store.artifact_path(rid).is_file() for rid in bad):
        print(f"note: {len(bad)} artifact(s) missing or failing their checksum; "
              f"`w2sg repair --out {store.root}` and a resumed `w2sg run` recompute them")
    return not bad
