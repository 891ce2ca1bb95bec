"""GPU throughput of the Chapter 5 student loop (claim C9): fast loop vs released loop.

Builds a GPT-2-sized reward model with **random weights from a config** (no download:
``GPT2Config()`` sizes, GPT-2 small by default, or ``--size medium``), a locally trained
BPE tokenizer, and trains it for a few optimiser steps of 32 HH-helpful pairs with

* the released loop: minibatch 1, 32 accumulation steps, fp32;
* the fast loop: dynamic padding, microbatches of ``--micro`` pairs, bf16 autocast on
  CUDA, optionally gradient checkpointing (``--checkpointing``);

in the same run, after one warm-up step, and reports for each: pairs/s, tokens/s (real
tokens, padding excluded) and the model-FLOPs utilisation (MFU, :func:`flops_per_token`
over the device's dense bf16 peak, the same denominator for both loops). Needs CUDA
unless ``--device cpu`` (a smoke test; MFU is then reported only with ``--peak-tflops``).
Used by ``benchmarks/gpu_check.sh``.

    python benchmarks/gpu_throughput.py [--size small|medium] [--steps 3] [--micro 16] [--json F]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from w2sg_utils.experiments.data import load_hh_helpful  # noqa: E402
from w2sg_utils.experiments.models import build_tiny_gpt2, load_causal_lm_reward  # noqa: E402
from w2sg_utils.experiments.training import (  # noqa: E402
    tokenize_pairs,
    train_reward_model,
    train_reward_model_paper,
)
from w2sg_utils.losses import get_objective  # noqa: E402

SIZES = {"tiny": dict(n_layer=2, n_embd=64, n_head=2),  # smoke test of the script on CPU
         "small": dict(n_layer=12, n_embd=768, n_head=12),
         "medium": dict(n_layer=24, n_embd=1024, n_head=16)}

# Dense bf16 tensor-core peaks (vendor data sheets, FLOP/s, no sparsity); the first
# substring found in torch.cuda.get_device_name() wins.
PEAK_BF16 = [("H200", 989e12), ("H100 PCIe", 756e12), ("H100", 989e12),
             ("A100", 312e12), ("L40S", 362e12), ("L4", 121e12)]


def peak_flops(device_name: str) -> float | None:
    """Dense bf16 peak of a known GPU (``None`` if unknown)."""
    for key, v in PEAK_BF16:
        if key in device_name:
            return v
    return None


def flops_per_token(n_params_nonembedding: int, n_layer: int, n_embd: int,
                    lengths) -> float:
    """Training FLOPs per token: ``6 N + 12 L d T`` (the PaLM paper's count, appendix B).

    ``N``: parameters that multiply (token and position embeddings are lookups and are
    left out); ``T``: attention context, here ``sum(len^2) / sum(len)`` over the
    sequences (each token attends to its own sequence); full (not causal) attention is
    counted, as in the PaLM convention.
    """
    lengths = np.asarray(lengths, dtype=np.float64)
    t_eff = float((lengths ** 2).sum() / lengths.sum())
    return 6.0 * n_params_nonembedding + 12.0 * n_layer * n_embd * t_eff


def _nonembedding_params(model) -> int:
    emb = {id(p) for name, p in model.named_parameters() if name.endswith(("wte.weight", "wpe.weight"))}
    return sum(p.numel() for p in model.parameters() if id(p) not in emb)


def measure(size: str = "small", steps: int = 3, micro: int = 16, max_length: int = 1024,
            device: str = "cuda", checkpointing: bool = False,
            peak_tflops: float | None = None) -> dict:
    """Time both loops on the same model, data and order; return the figures as a dict."""
    cuda = device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        raise SystemExit("gpu_throughput.py: needs a CUDA GPU (see bench_training_loop.py for CPU)")
    if size not in SIZES:
        raise ValueError(f"size: one of {sorted(SIZES)}, got {size!r}")
    if steps < 1:
        raise ValueError(f"steps: must be positive, got {steps}")
    n = 32 * steps
    ds = load_hh_helpful({"train_gt": 1, "train_w2s": n, "test": 1}, seed=0)["train_w2s"]
    y = np.random.default_rng(0).uniform(0.05, 0.95, n)
    res = {"size": size, **SIZES[size], "pairs": n, "max_length": max_length, "micro": micro,
           "checkpointing": checkpointing, "device": device,
           "device_name": torch.cuda.get_device_name() if cuda else "CPU"}
    with tempfile.TemporaryDirectory() as tmp:
        path = build_tiny_gpt2(tmp, **SIZES[size], n_positions=max(1024, max_length),
                               vocab_size=50257 if size != "tiny" else 1024)
        _, tok = load_causal_lm_reward(str(path))
        pre = tokenize_pairs(tok, ds.text_a, ds.text_b, max_length)
        kw = dict(lr=1e-5, batch_size=32, epochs=1, max_length=max_length, device=device,
                  seed=0, progress=False, pretokenized=pre)
        for name in ("warmup", "paper", "fast"):
            model, _ = load_causal_lm_reward(str(path), seed=0,
                                             gradient_checkpointing=checkpointing and name == "fast")
            res["params_nonembedding"] = _nonembedding_params(model)
            if cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            if name == "paper":
                st = train_reward_model_paper(model, tok, ds.text_a, ds.text_b, y,
                                              get_objective("bce"), **kw)
            else:
                st = train_reward_model(model, tok, ds.text_a, ds.text_b, y, get_objective("bce"),
                                        micro_batch_size=micro, bf16=cuda,
                                        **{**kw, "max_steps": 1 if name == "warmup" else None})
            if cuda:
                torch.cuda.synchronize()
            dt = time.perf_counter() - t0
            if name != "warmup":
                res[name] = {"seconds": dt, "pairs_per_s": n / dt, "tokens": st["tokens"],
                             "tokens_per_s": st["tokens"] / dt}
            del model
            if cuda:
                torch.cuda.empty_cache()
    lengths = [len(s) for s in pre[0] + pre[1]]
    res["tokens"] = int(sum(lengths))
    res["flops_per_token"] = flops_per_token(res["params_nonembedding"], SIZES[size]["n_layer"],
                                             SIZES[size]["n_embd"], lengths)
    peak = peak_tflops * 1e12 if peak_tflops else (peak_flops(res["device_name"]) if cuda else None)
    res["peak_flops_bf16"] = peak
    for name in ("paper", "fast"):
        r = res[name]
        r["mfu"] = r["tokens_per_s"] * res["flops_per_token"] / peak if peak else None
    res["speedup"] = res["paper"]["seconds"] / res["fast"]["seconds"]
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="small")
    ap.add_argument("--steps", type=int, default=3, help="optimiser steps of 32 pairs per loop")
    ap.add_argument("--micro", type=int, default=16, help="pairs per microbatch (fast loop)")
    ap.add_argument("--max-length", type=int, default=1024)
    ap.add_argument("--checkpointing", action="store_true")
    ap.add_argument("--device", default="cuda", help="cuda (default); cpu only to smoke-test")
    ap.add_argument("--peak-tflops", type=float, default=None,
                    help="dense bf16 peak of the device, if not in the built-in table")
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    args = ap.parse_args()
    r = measure(args.size, args.steps, args.micro, args.max_length, args.device,
                args.checkpointing, args.peak_tflops)
    print(f"{r['device_name']}; GPT-2 {args.size} (random weights), {r['pairs']} pairs, "
          f"{r['tokens']} tokens, max length {args.max_length}, microbatch {args.micro}, "
          f"checkpointing {args.checkpointing}")
    for name in ("paper", "fast"):
        x = r[name]
        mfu = f"{100 * x['mfu']:.1f}%" if x["mfu"] is not None else "n/a"
        print(f"  {name:5s} loop: {x['seconds']:7.2f} s  {x['pairs_per_s']:7.1f} pairs/s  "
              f"{x['tokens_per_s']:9.0f} tokens/s  MFU {mfu}")
    print(f"  speed-up (fast / paper): {r['speedup']:.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(r, f, indent=2)


if __name__ == "__main__":
    main()
