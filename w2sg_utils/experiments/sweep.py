"""The sweep: run or resume every run of a plan (claim C9, Chapter 5)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from contextlib import nullcontext

import pandas as pd

from .config import validate_config
from .context import SeedContext
from .distributed import current as processes
from .plan import plan_runs, run_id
from .protocol import execute, prefit
from .sharding import run_lock, shard_run_ids
from .store import RunStore

__all__ = ["run_sweep"]


def run_sweep(cfg, out_dir: str | os.PathLike, data_dir=None, progress: bool = True,
              on_row: Callable[[dict], None] | None = None,
              shard: tuple[int, int] | None = None) -> pd.DataFrame:
    """Run (or resume) every run of :func:`plan_runs` and return the results table.

    The store is first repaired (:meth:`~.store.RunStore.repair`: a torn index is
    rebuilt from the run records, runs whose record or artifact fails its checksum are
    dropped, an old store is migrated). A run with a record and a valid artifact is
    skipped; a missing or invalid artifact of a finished run is recomputed
    (deterministically) without adding a second row. ``data_dir`` is a folder or a data
    source of :mod:`.sources` (own data, Hugging Face ``datasets``). ``on_row`` is called after each new row is written.
    ``shard = (I, N)`` runs only the runs of shard ``I`` of ``N``
    (:func:`~w2sg_utils.experiments.sharding.assign_shards`) and the runs they need that no shard
    has stored yet; each run is computed while its lock is held, so concurrent shards
    compute every run once. Under ``accelerate launch`` (causal-LM presets) all
    processes train together and only the main one writes the store
    (:mod:`w2sg_utils.experiments.distributed`).
    Setting the environment variable ``W2SG_ABORT_AFTER=n`` hard-exits the process
    (``os._exit``) after ``n`` new rows, to test resumption after a kill.
    """
    from tqdm import tqdm

    cfg = validate_config(cfg)
    par = processes(cfg.device)
    if par.num_processes > 1 and cfg.backend == "embedding":
        raise ValueError(f"preset: {cfg.preset!r} trains small heads in one process; "
                         "run it without accelerate launch (several processes: --shard)")
    store = RunStore(out_dir)
    if par.is_main:  # a torn index, broken records or artifacts, an old layout
        store.repair()
    plan = plan_runs(cfg)
    state = _SweepState(cfg, store, data_dir, progress and par.is_main, on_row,
                        int(os.environ.get("W2SG_ABORT_AFTER", "0") or 0), par)
    seeds = list(dict.fromkeys(spec["seed"] for spec in plan))
    mine = None
    if shard is not None:
        ids = []
        for seed in seeds:  # run ids need each seed's data fingerprint
            r = _SeedRunner(state, seed)
            ids += [r.rid(spec) for spec in plan if spec["seed"] == seed]
        mine = shard_run_ids(ids, shard)
    bar = tqdm(total=len(plan) if mine is None else len(mine), desc=f"sweep {cfg.preset}",
               disable=not state.progress)
    for seed in seeds:
        runner = _SeedRunner(state, seed)
        specs = [spec for spec in plan
                 if spec["seed"] == seed and (mine is None or runner.rid(spec) in mine)]
        if mine is None and par.num_processes == 1:
            runner.prefit(specs)  # heads on frozen embeddings: all at once
        for spec in specs:
            runner.ensure(spec)
            bar.update(1)
    bar.close()
    return store.rows()


class _SweepState:
    def __init__(self, cfg, store, data_dir, progress, on_row, abort_after, par):
        self.cfg, self.store, self.data_dir = cfg, store, data_dir
        self.data = None  # the rows' identity, in the rows of a sweep on other data
        if hasattr(data_dir, "rows"):
            from .sources import data_label

            self.data = data_label(data_dir, cfg.sizes.to_dict())
        self.progress, self.on_row, self.abort_after = progress, on_row, abort_after
        self.par = par  # the processes of this launch; only the main one writes
        self.new_rows = 0

    def lock(self, rid):
        return run_lock(self.store.root, rid) if self.par.is_main else nullcontext()

    def record(self, rid, spec, row, data_hash) -> None:
        row = {"run_id": rid, "preset": self.cfg.preset, "data_hash": data_hash,
               **({"data": self.data} if self.data else {}), **row,
               "spec": json.dumps(spec, sort_keys=True)}
        self.store.append(row)
        self.new_rows += 1
        if self.on_row is not None:
            self.on_row(row)
        if self.abort_after and self.new_rows >= self.abort_after:
            os._exit(75)  # simulate a kill: no cleanup, nothing flushed beyond here


class _SeedRunner:
    """Runs of one seed; loads the data (cheap) eagerly, models and embeddings lazily."""

    def __init__(self, state: _SweepState, seed: int):
        self.s = state
        self.ctx = SeedContext(state.cfg, seed, state.data_dir, state.progress)
        self.cache: dict[str, dict] = {}
        self.fitted: dict[str, object] = {}  # test logits trained by prefit

    def prefit(self, specs) -> None:
        """Train the unfinished strong runs of ``specs`` that train together
        (:func:`~.protocol.prefit`); finished runs with a valid artifact are loaded."""
        store, done, todo = self.s.store, self.s.store.done(), []
        for spec in specs:
            rid = self.rid(spec)
            arrays = store.load_artifact(rid) if rid in done else None
            if arrays is None:
                todo.append(spec)
            else:
                self.cache[rid] = arrays
        for i, z in prefit(todo, self.ctx, self.ensure).items():
            self.fitted[self.rid(todo[i])] = z

    def rid(self, spec) -> str:
        return run_id(self.s.cfg, spec, self.ctx.data_hash)

    def ensure(self, spec) -> dict:
        rid = self.rid(spec)
        if rid not in self.cache:
            with self.s.lock(rid):  # another shard computing it: wait, then load it
                self.cache[rid] = self._load_or_compute(spec, rid)
        return self.cache[rid]

    def _load_or_compute(self, spec, rid) -> dict:
        s = self.s
        state = (s.store.load_artifact(rid), rid in s.store.done()) if s.par.is_main else None
        arrays, done = s.par.broadcast(state)  # every process follows the main one
        if arrays is not None and done:
            return arrays
        arrays, row = execute(spec, self.ctx, self.ensure, self.fitted.pop(rid, None))
        if s.par.is_main:
            s.store.save_artifact(rid, **arrays)
            if not done:
                s.record(rid, spec, row, self.ctx.data_hash)
        return arrays
