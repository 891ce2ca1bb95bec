"""The stages of a run: teacher, ceiling, student, bias-variance (claim C9, Chapter 5).

Protocol (the authors' released code, with its known defects fixed; see Chapter 5):
a weak teacher is trained on ground truth (``train_gt``); its soft labels
``sigmoid(z_w)`` on ``train_w2s`` train one strong student per objective; the strong
ceiling trains on the true labels of ``train_w2s``; everything is evaluated on
``test``. :func:`execute` computes one run of :func:`~.plan.plan_runs` from the
runs it depends on (``ensure``).
"""

from __future__ import annotations

import json

import numpy as np

from .._common import torch_threads
from .config import new_objective
from .data import data_fingerprint, load_hh_helpful
from .metrics import accuracy, clip_probs, pair_metrics, pgr
from .models import sigmoid
from .plan import spec_seed

__all__ = ["Backend", "execute"]


class Backend:
    """Shared data and model access for one seed (embeddings cached on disk)."""

    def __init__(self, cfg, seed, data_dir, progress):
        self.cfg, self.seed, self.progress = cfg, seed, progress
        self.data = load_hh_helpful(cfg["sizes"], seed=seed, data_dir=data_dir)
        self.data_hash = data_fingerprint(self.data)
        self._emb = {}

    # -- embedding backend
    def embeddings(self, split, encoder_cfg=None):
        from .embeddings import Encoder, embed_texts

        st = encoder_cfg or self.cfg["strong"]
        key = (split, json.dumps(dict(st), sort_keys=True))
        if key not in self._emb:
            enc = _encoder_cache(st.get("encoder", "sentence-transformers/all-MiniLM-L6-v2"),
                                 st["max_length"], st.get("num_layers"), self.cfg["device"],
                                 Encoder)
            ds = self.data[split]
            e = embed_texts(list(ds.text_a) + list(ds.text_b), enc, progress=self.progress)
            self._emb[key] = (e[: len(ds)], e[len(ds):])
        return self._emb[key]

    def teacher_indices(self, member):
        """Training rows of teacher ``member`` in ``train_gt`` (0: subset; k: bootstrap).

        A teacher needs both classes among its labels. With few labels a draw can hold
        one class only (probability about ``2 ** (1 - n_labels)``); such a draw is
        rejected and redrawn from the same generator, so every draw with both classes
        (in particular every draw of the defaults) is unchanged, and the sample is the
        subset or bootstrap conditioned on containing both classes.
        """
        labels = self.data["train_gt"].label
        n_pool = len(labels)
        n = min(self.cfg["teacher"]["n_labels"], n_pool)
        if len(np.unique(labels)) < 2:
            raise ValueError(f"sizes.train_gt: the {n_pool} train_gt pairs of seed "
                             f"{self.seed} hold a single class; use more pairs")
        rng = np.random.default_rng([self.seed, 1000 + member])
        for _ in range(10_000):
            if member == 0:
                idx = np.sort(rng.choice(n_pool, size=n, replace=False))
            else:
                idx = rng.choice(n_pool, size=n, replace=True)
            if len(np.unique(labels[idx])) == 2:
                return idx
        raise ValueError(f"teacher.n_labels: {n} labels drawn from train_gt never held "
                         "both classes in 10000 draws; use more labels")


_ENCODERS: dict = {}


def _encoder_cache(model, max_length, num_layers, device, cls):
    key = (model, max_length, num_layers, device)
    if key not in _ENCODERS:
        _ENCODERS[key] = cls(model, max_length=max_length, num_layers=num_layers, device=device)
    return _ENCODERS[key]


def _run_teacher(bk: Backend, spec) -> dict:
    """Train teacher ``member``; return its logits on train_w2s and test."""
    cfg, t = bk.cfg, bk.cfg["teacher"]
    idx = bk.teacher_indices(spec["member"])
    gt = bk.data["train_gt"].subset(idx)
    w2s, test = bk.data["train_w2s"], bk.data["test"]
    if t["kind"] == "tfidf":
        from .models import TfidfTeacher

        m = TfidfTeacher(C=t["C"], ngram_max=t["ngram_max"]).fit(gt.text_a, gt.text_b, gt.label)
        return {"z_w2s": m.logits(w2s.text_a, w2s.text_b), "z_test": m.logits(test.text_a, test.text_b)}
    if t["kind"] == "encoder":
        from .models import PairHead
        from .training import head_logits, train_head

        ecfg = {"encoder": t.get("encoder", cfg["strong"]["encoder"]),
                "max_length": cfg["strong"]["max_length"], "num_layers": t["num_layers"]}
        ga, gb = bk.embeddings("train_gt", ecfg)
        head = PairHead(ga.shape[1], "linear")
        head = train_head(head, ga[idx], gb[idx], gt.label.astype(float), new_objective("bce"),
                          l2=t["l2"], epochs=cfg["strong"]["epochs"], lr=cfg["strong"]["lr"],
                          batch_size=cfg["strong"]["batch_size"], seed=1000 * bk.seed + spec["member"])
        wa, wb = bk.embeddings("train_w2s", ecfg)
        ta, tb = bk.embeddings("test", ecfg)
        return {"z_w2s": head_logits(head, wa, wb), "z_test": head_logits(head, ta, tb)}
    # causal LM teacher
    model, tok = _load_lm(t["model"], bool(t.get("gradient_checkpointing")),
                          seed=1000 * bk.seed + spec["member"], head_init=t.get("head_init"))
    _train_lm(model, tok, gt, gt.label.astype(float), "bce", t, cfg, bk,
              seed=1000 * bk.seed + spec["member"])
    return {"z_w2s": _predict_lm(model, tok, w2s, t, cfg, bk),
            "z_test": _predict_lm(model, tok, test, t, cfg, bk)}


def _resolve_lm(name: str) -> str:
    """``tiny-gpt2:<n_layer>`` builds (once, in the cache) a tiny random GPT-2."""
    if name.startswith("tiny-gpt2:"):
        from ..sharding import file_lock
        from .embeddings import cache_dir
        from .models import build_tiny_gpt2

        n_layer = int(name.split(":")[1])
        folder = cache_dir() / "models" / f"tiny-gpt2-{n_layer}"
        with file_lock(folder.with_name(folder.name + ".lock")):  # concurrent shards/processes
            return str(build_tiny_gpt2(folder, n_layer=n_layer))
    return name


def _load_lm(name, grad_ckpt, seed, head_init=None):
    from .models import load_causal_lm_reward

    return load_causal_lm_reward(_resolve_lm(name), gradient_checkpointing=grad_ckpt, seed=seed,
                                 head_init=head_init or "default")


def _objective(cfg, name, buffer_size=None):
    """A fresh objective; as released under ``protocol="release"`` (``gpt2-hh``)."""
    if hasattr(cfg, "objective"):
        return cfg.objective(name, buffer_size)
    return new_objective(name, buffer_size)


def _train_lm(model, tok, ds, targets, objective, m, cfg, bk, seed):
    from .training import train_reward_model

    buf = m["batch_size"] if m["micro_batch_size"] < m["batch_size"] else None
    obj = _objective(cfg, objective, buf)
    if buf is not None:
        # Teacher-quantile objectives (Quan_CACE_k) need a quantile sample before their
        # first microbatch: the teacher's labels are known in advance, so seed the buffer
        # with the first optimiser batch of them (a no-op for the other objectives).
        import torch

        obj.observe(None, torch.as_tensor(np.asarray(targets[:buf], dtype=np.float64)))
    with torch_threads(m.get("num_threads")):
        return train_reward_model(
            model, tok, ds.text_a, ds.text_b, targets, obj,
            lr=m["lr"], batch_size=m["batch_size"], micro_batch_size=m["micro_batch_size"],
            epochs=m["epochs"], max_length=m["max_length"], device=cfg["device"],
            bf16=_bf16(m), seed=seed, progress=bk.progress,
            order=m.get("order") or "reshuffle", lr_schedule=m.get("lr_schedule") or "constant",
            dropout=m.get("dropout", True))


def _predict_lm(model, tok, ds, m, cfg, bk):
    from .training import reward_logits

    with torch_threads(m.get("num_threads")):
        return reward_logits(model, tok, ds.text_a, ds.text_b, max_length=m["max_length"],
                             batch_size=max(1, m["micro_batch_size"]), device=cfg["device"],
                             bf16=_bf16(m), progress=bk.progress)


def _bf16(m) -> bool:
    return bool(m.get("bf16", False)) or m.get("dtype") == "bfloat16"


def _train_ceiling(bk: Backend, y, l2: float, seed: int):
    """The ceiling: the strong model on the true labels or, with a ``ceiling`` section
    (``minilm-finetune``), ``hh-minilm-cpu``'s strong model, a head on frozen embeddings."""
    if bk.cfg.get("ceiling") is None:
        return _train_strong(bk, "train_w2s", y, "bce", l2, seed)
    return _train_strong(_Frozen(bk), "train_w2s", y, "bce", l2, seed)


class _Frozen:
    """A backend's view whose strong model is its ``ceiling`` section (embedding back-end)."""

    def __init__(self, bk: Backend):
        self.bk = bk
        self.cfg = {"backend": "embedding", "strong": bk.cfg["ceiling"]}

    def embeddings(self, split, encoder_cfg=None):
        return self.bk.embeddings(split, encoder_cfg or self.cfg["strong"])


def _train_strong(bk: Backend, split: str, targets, objective: str, l2: float, seed: int):
    """Train the strong model on ``split`` with ``targets``; return its test logits."""
    cfg, st = bk.cfg, bk.cfg["strong"]
    if cfg["backend"] == "finetune":
        from .finetune import load_encoder_reward

        model, tok = load_encoder_reward(st["model"], max_length=st["max_length"],
                                         head_lr=st["head_lr"], l2=l2, dtype=st["dtype"],
                                         device=cfg["device"], seed=seed)
        _train_lm(model, tok, bk.data[split], targets, objective, st, cfg, bk, seed=seed)
        return _predict_lm(model, tok, bk.data["test"], st, cfg, bk)
    if cfg["backend"] == "embedding":
        from .models import PairHead
        from .training import head_logits, train_head

        ea, eb = bk.embeddings(split)
        import torch

        torch.manual_seed(seed)
        head = PairHead(ea.shape[1], st["kind"], st["hidden"])
        head = train_head(head, ea, eb, targets, _objective(cfg, objective), l2=l2,
                          epochs=st["epochs"], lr=st["lr"], batch_size=st["batch_size"],
                          seed=seed)
        ta, tb = bk.embeddings("test")
        return head_logits(head, ta, tb)
    model, tok = _load_lm(st["model"], bool(st.get("gradient_checkpointing")), seed=seed,
                          head_init=st.get("head_init"))
    _train_lm(model, tok, bk.data[split], targets, objective, st, cfg, bk, seed=seed)
    return _predict_lm(model, tok, bk.data["test"], st, cfg, bk)


def _base_row(spec) -> dict:
    return {"stage": spec["stage"], "seed": spec["seed"], "objective": spec.get("objective", ""),
            "l2": spec.get("l2", np.nan), "labels": spec.get("labels", ""),
            "member": spec.get("member", -1)}


def execute(spec, bk: Backend, ensure) -> tuple[dict, dict]:
    """Compute one run: its arrays (artifact) and its row of metrics."""
    seed = spec["seed"]
    test_label = bk.data["test"].label
    row = _base_row(spec)
    if spec["stage"] == "teacher":
        arrays = _run_teacher(bk, spec)
        z = arrays["z_test"]
        row |= {"acc": accuracy(z, test_label), "entropy": pair_metrics(z, z, test_label)["entropy"],
                "teacher_acc": accuracy(z, test_label),
                "acc_w2s_labels": accuracy(arrays["z_w2s"], bk.data["train_w2s"].label)}
        return arrays, row
    if spec["stage"] == "ceiling":
        y = bk.data["train_w2s"].label.astype(float)
        z = _train_ceiling(bk, y, spec["l2"], spec_seed(spec))
        t0 = ensure({"stage": "teacher", "seed": seed, "member": 0})
        m = pair_metrics(z, t0["z_test"], test_label)
        row |= m | {"ceiling_acc": m["acc"], "teacher_acc": accuracy(t0["z_test"], test_label)}
        return {"z_test": z}, row
    if spec["stage"] == "student":
        zw_w2s, zw_test = _labels(spec["labels"], seed, ensure)
        targets = sigmoid(zw_w2s)
        z = _train_strong(bk, "train_w2s", targets, spec["objective"], spec["l2"], spec_seed(spec))
        ceil = ensure({"stage": "ceiling", "seed": seed, "l2": bk.cfg["strong"]["l2"]})
        m = pair_metrics(z, zw_test, test_label)
        acc_w = accuracy(zw_test, test_label)
        acc_c = accuracy(ceil["z_test"], test_label)
        row |= m | {"teacher_acc": acc_w, "ceiling_acc": acc_c, "pgr": pgr(m["acc"], acc_w, acc_c)}
        return {"z_test": z}, row
    if spec["stage"] == "bias_variance":
        return _bias_variance(spec, bk, ensure)
    raise ValueError(f"stage: unknown stage {spec['stage']!r}")


def _labels(source: str, seed: int, ensure):
    """Teacher logits on (train_w2s, test) for ``teacher<k>`` or ``ensemble<K>``.

    The ensemble label is the dual mean for the binary KL (claims C1, C4): the sigmoid
    of the members' mean logit, i.e. the posterior-mean estimate of the teacher.
    """
    if source.startswith("teacher"):
        t = ensure({"stage": "teacher", "seed": seed, "member": int(source[len("teacher"):])})
        return t["z_w2s"], t["z_test"]
    if source.startswith("ensemble"):
        K = int(source[len("ensemble"):])
        ts = [ensure({"stage": "teacher", "seed": seed, "member": k}) for k in range(1, K + 1)]
        return (np.mean([t["z_w2s"] for t in ts], axis=0), np.mean([t["z_test"] for t in ts], axis=0))
    raise ValueError(f"labels: unknown label source {source!r}")


def _bias_variance(spec, bk: Backend, ensure) -> tuple[dict, dict]:
    """Bias-variance rows for the teacher ensemble and the students trained on it.

    Uses :func:`~w2sg_utils.decompositions.bias_variance_decomposition` with the binary
    KL: predictions are the ``K`` members' test probabilities (randomness: bootstrap of
    ``train_gt`` and seed), the target is the observed test label. With one label per
    pair the noise term is zero by construction; ``bias`` then includes the label
    noise. ``expected_loss`` is the members' mean test cross-entropy (computed directly).
    """
    from ..decompositions import bias_variance_decomposition

    seed, K = spec["seed"], spec["ensemble_size"]
    y = bk.data["test"].label.astype(float)[None, :, None]
    out_rows = {}
    groups = {"teacher": [ensure({"stage": "teacher", "seed": seed, "member": k})["z_test"]
                          for k in range(1, K + 1)]}
    l2 = bk.cfg["strong"]["l2"]
    for obj in bk.cfg["ensemble_objectives"]:
        groups[f"student_{obj}"] = [
            ensure({"stage": "student", "seed": seed, "objective": obj, "l2": l2,
                    "labels": f"teacher{k}"})["z_test"] for k in range(1, K + 1)]
    arrays = {}
    for name, zs in groups.items():
        P = clip_probs(sigmoid(np.stack(zs)))[:, :, None]
        bv = bias_variance_decomposition("binary_kl", P, y).averaged()
        for k, v in bv.items():
            out_rows[f"{name}__{k}"] = v
        arrays[name] = np.stack(zs)
    row = _base_row(spec) | {"ensemble_size": K, "bv": json.dumps(out_rows, sort_keys=True)}
    return arrays, row
