"""Two-level intervals of the pretrained pair's C9 sweeps (issue 18).

    .venv/bin/python results/pair_c9/summarize.py    # writes results/pair_c9/table.md

For each store (l2_default: the student's L2 = 1e-3 plus the L2 sweep of BCE / reverse
BCE; l2_0: every objective without L2): test accuracy and PGR per objective and L2,
mean over seeds and test pairs with 95% two-level intervals (test pairs and seeds,
w2sg_utils.intervals), PGR with its Fieller interval. Conditional on the shipped pools,
the encoders and the hyperparameters.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from w2sg_utils.experiments.run_intervals import interval_summary, labels_from_store
from w2sg_utils.experiments.store import RunStore

HERE = Path(__file__).resolve().parent


def _fmt(m, lo, hi) -> str:
    return "n/a" if pd.isna(m) else f"{m:.3f} [{lo:.3f}, {hi:.3f}]"


def main() -> None:
    lines = ["| store | stage / objective | L2 | accuracy | PGR |", "| --- | --- | --- | --- | --- |"]
    for name in ("l2_default", "l2_0"):
        store = RunStore(HERE / name, create=False)
        df = pd.read_csv(store.csv)
        labels = labels_from_store(store, df)
        for stage in ("teacher", "ceiling"):
            r = interval_summary(df[df["stage"] == stage], store, labels, "stage").iloc[0]
            lines.append(f"| {name} | {stage} | | {_fmt(r.acc_mean, r.acc_lo, r.acc_hi)} | |")
        st = df[df["stage"] == "student"]
        s = interval_summary(st, store, labels, ["objective", "l2"], pgr=True, all_runs=df)
        for _, r in s.iterrows():
            lines.append(f"| {name} | {r.objective} | {r.l2:g} | "
                         f"{_fmt(r.acc_mean, r.acc_lo, r.acc_hi)} | "
                         f"{_fmt(r.pgr_mean, r.pgr_lo, r.pgr_hi)} |")
    (HERE / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
