"""Student training loop: fast (dynamic padding, microbatches) vs the released loop.

Claim C9 protocol, Chapter 5. Both loops train the same tiny random GPT-2 reward model
(built locally from a config, no download) on the same HH-helpful pairs, in the same
seeded order, with Adam at batch 32; the released loop runs minibatch 1 with 32
gradient-accumulation steps. Prints pairs per second of each and the ratio, measured in
the same run. CPU by default; ``--device cuda`` also works.

    .venv/bin/python benchmarks/bench_training_loop.py [--pairs 128] [--micro 16]
"""

from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _timing import best_times  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

from w2sg_utils.experiments.data import load_hh_helpful  # noqa: E402
from w2sg_utils.experiments.models import build_tiny_gpt2, load_causal_lm_reward  # noqa: E402
from w2sg_utils.experiments.training import (  # noqa: E402
    tokenize_pairs,
    train_reward_model,
    train_reward_model_paper,
)
from w2sg_utils.losses import get_objective  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=128, help="training pairs (multiple of 32)")
    ap.add_argument("--micro", type=int, default=16, help="pairs per microbatch (fast loop)")
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--n-layer", type=int, default=2)
    ap.add_argument("--n-embd", type=int, default=128)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=2, help="timed repetitions (best kept)")
    args = ap.parse_args()
    if args.pairs < 32 or args.pairs % 32:
        raise ValueError(f"pairs: a positive multiple of 32, got {args.pairs}")
    ds = load_hh_helpful({"train_gt": 1, "train_w2s": args.pairs, "test": 1}, seed=0)["train_w2s"]
    y = np.random.default_rng(0).uniform(0.05, 0.95, len(ds))
    with tempfile.TemporaryDirectory() as tmp:
        path = build_tiny_gpt2(tmp, n_layer=args.n_layer, n_embd=args.n_embd, n_head=4,
                               n_positions=max(128, args.max_length), vocab_size=1024)
        _, tok = load_causal_lm_reward(str(path))
        pre = tokenize_pairs(tok, ds.text_a, ds.text_b, args.max_length)
        kw = dict(lr=1e-5, batch_size=32, epochs=1, max_length=args.max_length,
                  device=args.device, seed=0, progress=False, pretokenized=pre)
        def setup(loop, **extra):
            def prepare():
                model, _ = load_causal_lm_reward(str(path), seed=0)
                return lambda: loop(model, tok, ds.text_a, ds.text_b, y, get_objective("bce"),
                                    **extra, **kw)
            return prepare

        best = best_times({"paper": setup(train_reward_model_paper),
                           "fast": setup(train_reward_model, micro_batch_size=args.micro)},
                          args.repeats, args.device)
        n_tok = sum(len(a) + len(b) for a, b in zip(*pre))
    print(f"tiny GPT-2 ({args.n_layer} layers, width {args.n_embd}), {len(ds)} pairs, "
          f"{n_tok} tokens, max length {args.max_length}, device {args.device}, "
          f"threads {torch.get_num_threads()}")
    for name in ("paper", "fast"):
        print(f"  {name:5s} loop: {best[name]:7.2f} s  {len(ds) / best[name]:7.1f} pairs/s")
    print(f"  speed-up (fast / paper, microbatch {args.micro}): {best['paper'] / best['fast']:.2f}x")


if __name__ == "__main__":
    main()
