"""GPU check, stage ``mpnet_pair`` (issue 18, claim C9): the pretrained pair end to end.

Weak teacher: a bias-free logistic head on frozen ``all-MiniLM-L6-v2`` embeddings (128
tokens, left truncation, mean pooling, L2 norm) trained on ``n_gt`` ground-truth pairs
of ``train_gt``. Strong: the whole ``all-mpnet-base-v2`` encoder plus a zero-initialised
bias-free head (:func:`w2sg_utils.experiments.finetune.load_encoder_reward`), fine-tuned
end to end in bf16 autocast on CUDA (float32 in the CPU dry run) with binary
cross-entropy: the *student* on the teacher's soft labels of ``train_w2s``, the
*ceiling* on their true labels. Reports test accuracy of weak, student and ceiling, PGR,
and the training time per pair (seconds of the training loop, CUDA-synchronised, over
the pairs it processed). One seed: the accuracies are conditional on it and on the
``n_test`` test pairs (binomial standard error about ``0.5 / sqrt(n_test)``).
"""

from __future__ import annotations

import time

import numpy as np

MINI = "sentence-transformers/all-MiniLM-L6-v2"
MPNET = "sentence-transformers/all-mpnet-base-v2"
# (GPU run, dry run)
PAIR = {False: dict(n_gt=500, n_train=2000, n_test=2000, max_length=128, epochs=1,
                    batch=32, micro=32, lr=2e-5, head_lr=1e-3, C=10.0, device="cuda",
                    dtype="bfloat16"),
        True: dict(n_gt=16, n_train=4, n_test=8, max_length=32, epochs=1, batch=4, micro=4,
                   lr=2e-5, head_lr=1e-3, C=10.0, device="cpu", dtype="float32")}


def _sync(device):
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def _acc(z, y) -> float:
    return float(np.mean(np.where(z == 0, 0.5, (z > 0) == (y == 1))))


def _finetune(spec, ds_train, targets, ds_test, seed: int) -> dict:
    from w2sg_utils.experiments.config import new_objective
    from w2sg_utils.experiments.finetune import load_encoder_reward
    from w2sg_utils.experiments.training import Loop, reward_logits, train_reward_model

    dev = spec["device"]
    model, tok = load_encoder_reward(MPNET, max_length=spec["max_length"],
                                     head_lr=spec["head_lr"], dtype=spec["dtype"],
                                     device=dev, seed=seed)
    loop = Loop(lr=spec["lr"], batch_size=spec["batch"], micro_batch_size=spec["micro"],
                epochs=spec["epochs"], max_length=spec["max_length"], device=dev,
                bf16=spec["dtype"] == "bfloat16", dropout=False)
    _sync(dev)
    t0 = time.perf_counter()
    info = train_reward_model(model, tok, ds_train.text_a, ds_train.text_b,
                              np.asarray(targets, float), new_objective("bce"), loop,
                              seed=seed, progress=False)
    _sync(dev)
    secs = time.perf_counter() - t0
    z = reward_logits(model, tok, ds_test.text_a, ds_test.text_b,
                      max_length=spec["max_length"], batch_size=64, device=dev,
                      bf16=loop.bf16, progress=False)
    del model
    return {"acc": _acc(z, ds_test.label), "train_seconds": secs, "pairs": info["pairs"],
            "tokens": info["tokens"], "steps": info["steps"],
            "seconds_per_pair": secs / max(1, info["pairs"]),
            "pairs_per_s": info["pairs"] / secs}


def mpnet_pair(dry: bool) -> dict:
    """Weak MiniLM head, MPNet student and ceiling fine-tuned end to end; one JSON dict."""
    from w2sg_utils.experiments.data import load_hh_helpful
    from w2sg_utils.experiments.embeddings import Encoder
    from w2sg_utils.experiments.pair_gap import fit_head

    spec = PAIR[dry]
    data = load_hh_helpful({"train_gt": spec["n_gt"], "train_w2s": spec["n_train"],
                            "test": spec["n_test"]}, seed=0)
    enc = Encoder(MINI, max_length=spec["max_length"], device=spec["device"], batch_size=128)
    t0 = time.perf_counter()
    emb = {}
    for k, ds in data.items():
        e = enc.encode(list(ds.text_a) + list(ds.text_b), progress=False)
        emb[k] = e[: len(ds)] - e[len(ds):]
    weak_embed_s = time.perf_counter() - t0
    w = fit_head(emb["train_gt"], np.zeros_like(emb["train_gt"]),
                 data["train_gt"].label.astype(float), spec["C"])
    soft = 1.0 / (1.0 + np.exp(-(emb["train_w2s"] @ w)))
    weak = _acc(emb["test"] @ w, data["test"].label)
    student = _finetune(spec, data["train_w2s"], soft, data["test"], seed=1)
    ceiling = _finetune(spec, data["train_w2s"], data["train_w2s"].label, data["test"],
                        seed=2)
    gap = ceiling["acc"] - weak
    return {"status": "passed", "spec": spec, "weak_acc": weak,
            "weak_embed_seconds": weak_embed_s, "student": student, "ceiling": ceiling,
            "pgr": (student["acc"] - weak) / gap if gap != 0 else None,
            "note": "one seed; accuracies conditional on it and on the test pairs"}
