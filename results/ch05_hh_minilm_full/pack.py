"""Pack a full-split run store's test logits for committing (issue 17).

    python results/ch05_hh_minilm_full/pack.py <run store> [<out dir>]

writes <out dir>/logits16.npz and logits16.sha256 (default: this folder)
with `w2sg_utils.experiments.packed_logits.pack_logits16`, after checking
that the store's results.csv is the one committed here (same run ids).
"""

import sys
from pathlib import Path

import pandas as pd

from w2sg_utils.experiments.packed_logits import pack_logits16

HERE = Path(__file__).resolve().parent


def main(argv):
    if len(argv) not in (1, 2):
        sys.exit(__doc__)
    store = Path(argv[0])
    out = Path(argv[1]) if len(argv) == 2 else HERE
    ours = pd.read_csv(HERE / "results.csv")["run_id"].astype(str)
    theirs = pd.read_csv(store / "results.csv")["run_id"].astype(str)
    if set(ours) != set(theirs):
        sys.exit(f"{store}: its run ids differ from {HERE / 'results.csv'}")
    print(pack_logits16(store, out))


if __name__ == "__main__":
    main(sys.argv[1:])
