"""GPU throughput of the Chapter 5 student loop (claim C9): fast loop vs released loop.

Builds a GPT-2-sized reward model with **random weights from a config** (no download:
``GPT2Config()`` defaults, 124M parameters, or ``--size medium``), a locally trained
BPE tokenizer, and trains it for a few optimiser steps on HH-helpful pairs with

* the released loop: minibatch 1, 32 accumulation steps, fp32;
* the fast loop: dynamic padding, microbatches of ``--micro`` pairs, bf16 autocast,
  optionally gradient checkpointing (``--checkpointing``);

in the same run, and prints pairs/s of each and their ratio. Needs CUDA; runs in
well under 5 minutes on one recent GPU with the defaults.

    python benchmarks/gpu_throughput.py [--size small|medium] [--steps 3] [--micro 16]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from w2sg_utils.data import load_hh_helpful  # noqa: E402
from w2sg_utils.losses import get_objective  # noqa: E402
from w2sg_utils.models import build_tiny_gpt2, load_causal_lm_reward  # noqa: E402
from w2sg_utils.training import (  # noqa: E402
    tokenize_pairs,
    train_reward_model,
    train_reward_model_paper,
)

SIZES = {"tiny": dict(n_layer=2, n_embd=64, n_head=2),  # smoke test of the script on CPU
         "small": dict(n_layer=12, n_embd=768, n_head=12),
         "medium": dict(n_layer=24, n_embd=1024, n_head=16)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="small")
    ap.add_argument("--steps", type=int, default=3, help="optimiser steps of 32 pairs per loop")
    ap.add_argument("--micro", type=int, default=16, help="pairs per microbatch (fast loop)")
    ap.add_argument("--max-length", type=int, default=1024)
    ap.add_argument("--checkpointing", action="store_true")
    ap.add_argument("--device", default="cuda", help="cuda (default); cpu only to smoke-test")
    args = ap.parse_args()
    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        raise SystemExit("gpu_throughput.py: needs a CUDA GPU (see bench_training_loop.py for CPU)")
    if args.steps < 1:
        raise SystemExit(f"steps: must be positive, got {args.steps}")
    n = 32 * args.steps
    ds = load_hh_helpful({"train_gt": 1, "train_w2s": n, "test": 1}, seed=0)["train_w2s"]
    y = np.random.default_rng(0).uniform(0.05, 0.95, n)
    with tempfile.TemporaryDirectory() as tmp:
        path = build_tiny_gpt2(tmp, **SIZES[args.size], n_positions=1024, vocab_size=50257)
        _, tok = load_causal_lm_reward(str(path))
        pre = tokenize_pairs(tok, ds.text_a, ds.text_b, args.max_length)
        kw = dict(lr=1e-5, batch_size=32, epochs=1, max_length=args.max_length, device=args.device,
                  seed=0, progress=False, pretokenized=pre)
        times = {}
        for name in ("warmup", "paper", "fast"):
            model, _ = load_causal_lm_reward(str(path), seed=0,
                                             gradient_checkpointing=args.checkpointing and name == "fast")
            if cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            if name == "paper":
                train_reward_model_paper(model, tok, ds.text_a, ds.text_b, y, get_objective("bce"), **kw)
            else:
                train_reward_model(model, tok, ds.text_a, ds.text_b, y, get_objective("bce"),
                                   micro_batch_size=args.micro, bf16=cuda,
                                   **{**kw, "max_steps": 1 if name == "warmup" else None})
            if cuda:
                torch.cuda.synchronize()
            times[name] = time.perf_counter() - t0
            del model
            if cuda:
                torch.cuda.empty_cache()
    n_tok = sum(len(a) + len(b) for a, b in zip(*pre))
    dev = torch.cuda.get_device_name() if cuda else "CPU"
    print(f"{dev}; GPT-2 {args.size} (random weights), {n} pairs, "
          f"{n_tok} tokens, max length {args.max_length}, microbatch {args.micro}, "
          f"checkpointing {args.checkpointing}")
    for name in ("paper", "fast"):
        print(f"  {name:5s} loop: {times[name]:7.2f} s  {n / times[name]:7.1f} pairs/s")
    print(f"  speed-up (fast / paper): {times['paper'] / times['fast']:.2f}x")


if __name__ == "__main__":
    main()
