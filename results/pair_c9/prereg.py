"""Pre-register the pair's regimes from the development runs only (issue 18, C9).

    .venv/bin/python results/pair_c9/prereg.py N_SEEDS FIRST_CONFIRM_SEED

reads ``results/pair_c9/dev`` (seeds 1000-1009, 2000 test pairs), writes
``dev/power.csv`` (``pair_prereg.regime_power`` at the confirmatory design: N_SEEDS
seeds, 200 resamples, seed 20261128) and ``prereg.json`` (the candidates, the check,
its level, the alternatives, the rule, the design, the confirmatory seeds and the
regimes chosen). Nothing here reads a confirmatory run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from w2sg_utils.experiments import pair_prereg as PP

HERE = Path(__file__).resolve().parent
N_BOOT, SEED, MIN_POWER = 200, 20261128, 0.95


def main(n_seeds: int, first: int) -> None:
    logits, labels = PP.load_pair(HERE / "dev")
    dev_seeds = sorted(labels["l2_default"])
    n_pairs = len(next(iter(labels["l2_default"].values())))
    ivs = PP.check_regimes(PP.regime_tables(logits, labels))
    power = PP.regime_power(logits, labels, n_seeds=n_seeds, n_boot=N_BOOT, seed=SEED)
    power.to_csv(HERE / "dev" / "power.csv", index=False)
    chosen = PP.chosen_regimes(power, MIN_POWER)
    out = {
        "dev_seeds": dev_seeds,
        "n_test": n_pairs,
        "candidates": {k: {"store": s, "differences": [list(p) for p in pairs]}
                       for k, (s, pairs) in PP.REGIMES.items()},
        "statistic": "lower end of the two-level interval (test pairs and seeds) of "
                     "each mean paired accuracy difference; a regime holds when every "
                     "one of its differences has lo > 0",
        "level": PP.LEVEL,
        "alternatives": list(PP.POWER_ALTERNATIVES),
        "rule": f"chosen if the check passes ('none') and rejects each alternative "
                f"in >= {MIN_POWER} of the resamples at the confirmatory design",
        "min_power": MIN_POWER,
        "n_seeds": n_seeds,
        "confirm_seeds": list(range(first, first + n_seeds)),
        "n_boot": N_BOOT,
        "seed": SEED,
        "dev_intervals": {k: [iv.estimate, iv.lo, iv.hi] for k, iv in ivs.items()},
        "chosen": chosen,
    }
    (HERE / "prereg.json").write_text(json.dumps(out, indent=1) + "\n")
    print(power.pivot_table(index="regime", columns="alternative",
                            values="rate").to_string())
    print("chosen:", chosen)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
