"""Best-of-N wall-clock timing shared by the training-loop benchmarks."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch


def best_times(setups: dict[str, Callable[[], Callable[[], object]]], repeats: int,
               device: str) -> dict[str, float]:
    """Best wall-clock seconds of each named run over ``repeats`` interleaved rounds.

    ``setups[name]()`` prepares a fresh run (e.g. loads a model; not timed) and returns the
    callable that is timed. Rounds interleave the runs so that a change of machine load hits
    all of them alike; on CUDA the clock stops after a synchronisation.
    """
    best = dict.fromkeys(setups, float("inf"))
    for _ in range(repeats):
        for name, setup in setups.items():
            run = setup()
            t0 = time.perf_counter()
            run()
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best
