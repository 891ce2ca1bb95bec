"""The sweep: run or resume every run of a plan (claim C9, Chapter 5)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import pandas as pd

from .config import validate_config
from .plan import plan_runs, run_id
from .stages import Backend, execute
from .store import RunStore

__all__ = ["run_sweep"]


def run_sweep(cfg, out_dir: str | os.PathLike, data_dir=None, progress: bool = True,
              on_row: Callable[[dict], None] | None = None) -> pd.DataFrame:
    """Run (or resume) every run of :func:`plan_runs` and return the results table.

    A run whose row is in ``out_dir/results.csv`` and whose artifact is valid is skipped;
    a missing or invalid artifact of a finished run is recomputed (deterministically)
    without adding a second row. ``on_row`` is called after each new row is written.
    Setting the environment variable ``W2SG_ABORT_AFTER=n`` hard-exits the process
    (``os._exit``) after ``n`` new rows, to test resumption after a kill.
    """
    from tqdm import tqdm

    cfg = validate_config(cfg)
    store = RunStore(out_dir)
    plan = plan_runs(cfg)
    state = _SweepState(cfg, store, data_dir, progress, on_row,
                        int(os.environ.get("W2SG_ABORT_AFTER", "0") or 0))
    bar = tqdm(total=len(plan), desc=f"sweep {cfg['preset']}", disable=not progress)
    seeds = list(dict.fromkeys(spec["seed"] for spec in plan))
    for seed in seeds:
        runner = _SeedRunner(state, seed)
        for spec in plan:
            if spec["seed"] == seed:
                runner.ensure(spec)
                bar.update(1)
    bar.close()
    return store.rows()


class _SweepState:
    def __init__(self, cfg, store, data_dir, progress, on_row, abort_after):
        self.cfg, self.store, self.data_dir = cfg, store, data_dir
        self.progress, self.on_row, self.abort_after = progress, on_row, abort_after
        self.done = store.done()
        self.new_rows = 0


class _SeedRunner:
    """Runs of one seed; loads the data (cheap) eagerly, models and embeddings lazily."""

    def __init__(self, state: _SweepState, seed: int):
        self.s = state
        self.bk = Backend(state.cfg, seed, state.data_dir, state.progress)
        self.cache: dict[str, dict] = {}

    def ensure(self, spec) -> dict:
        s = self.s
        rid = run_id(s.cfg, spec, self.bk.data_hash)
        if rid in self.cache:
            return self.cache[rid]
        arrays = s.store.load_artifact(rid)
        if arrays is None or rid not in s.done:
            arrays, row = execute(spec, self.bk, self.ensure)
            s.store.save_artifact(rid, **arrays)
            if rid not in s.done:
                row = {"run_id": rid, "preset": s.cfg["preset"], "data_hash": self.bk.data_hash,
                       **row, "spec": json.dumps(spec, sort_keys=True)}
                s.store.append(row)
                s.done.add(rid)
                s.new_rows += 1
                if s.on_row is not None:
                    s.on_row(row)
                if s.abort_after and s.new_rows >= s.abort_after:
                    os._exit(75)  # simulate a kill: no cleanup, nothing flushed beyond here
        self.cache[rid] = arrays
        return arrays
