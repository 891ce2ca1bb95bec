"""Weak-to-strong experiments on real preference data (claim C9, Chapter 5).

Protocol (the authors' released code, with its known defects fixed; see Chapter 5):
pairwise reward modelling on HH-RLHF helpful. A weak teacher is trained on ground truth
(``train_gt``); its soft labels ``sigmoid(z_w)`` on ``train_w2s`` train one strong
student per objective of :mod:`w2sg_utils.losses`; the strong ceiling trains on the
true labels of ``train_w2s``; everything is evaluated on ``test``.

Stages, per seed: teacher -> soft labels -> ceiling -> students (every objective, and
a sweep of the student's L2 strength for ``bce`` / ``reverse_bce``) -> an ensemble of
bootstrapped teachers, one student per member and one on the ensemble's dual-mean
(posterior-mean) label -> bias-variance rows (claims C1, C4) -> evaluation.

Reliability. Every run is identified by :func:`run_id`, a hash of its full
configuration (stage spec, model and training settings, data fingerprint and
:data:`CODE_VERSION`). :class:`RunStore` keeps a tidy CSV (one row per run) rewritten
atomically (temporary file + ``os.replace``) and one validated ``.npz`` artifact of
predictions per run; :func:`run_sweep` skips runs whose row and artifact exist, so an
interrupted sweep resumes with nothing lost or duplicated. An artifact whose stored id
or checksum differs is never reused.

Presets (:data:`PRESETS`): ``hh-minilm-cpu`` (default: frozen MiniLM + heads on CPU,
TF-IDF teacher), ``gpt2-hh`` (the released code's GPT-2 protocol on a GPU), ``tiny-gpt2``
(the causal-LM path with a tiny random GPT-2, for tests).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ._common import (
    atomic_write,
    atomic_write_text,
    non_negative,
    positive,
    positive_int,
    torch_threads,
)
from .data import HH_ROWS, SPLITS, data_fingerprint, load_hh_helpful
from .divergences import get_divergence
from .models import sigmoid

__all__ = [
    "CODE_VERSION",
    "Preset",
    "PRESETS",
    "get_preset",
    "make_config",
    "validate_config",
    "config_hash",
    "run_id",
    "plan_runs",
    "RunStore",
    "pair_metrics",
    "pgr",
    "run_sweep",
    "summarize",
    "objective_names",
    "bias_variance_table",
    "committed_results",
]

CODE_VERSION = "ch05-v1"
P_CLIP = 1e-12


# --------------------------------------------------------------------------- presets

@dataclass(frozen=True)
class Preset:
    """A named experiment configuration (claim C9); see :func:`make_config`."""

    name: str
    description: str
    backend: str  # "embedding" or "causal_lm"
    config: dict = field(default_factory=dict)
    requires_cuda: bool = False


_HEAD = {"kind": "linear", "hidden": 256, "epochs": 40, "lr": 1e-2, "batch_size": 64}

PRESETS: dict[str, Preset] = {
    "hh-minilm-cpu": Preset(
        "hh-minilm-cpu",
        "CPU default: heads on frozen all-MiniLM-L6-v2 embeddings (strong), TF-IDF "
        "logistic regression on a few ground-truth labels (weak teacher)",
        "embedding",
        {
            "sizes": {"train_gt": 400, "train_w2s": 600, "test": 600},
            "full_sizes": {"train_gt": 4000, "train_w2s": 4000, "test": 4000},
            "seeds": [0, 1, 2, 3, 4],
            "objectives": None,  # None = every objective of w2sg_utils.losses
            # kind "tfidf" uses C and ngram_max; kind "encoder" (a linear head on the
            # first num_layers layers of the strong encoder) uses num_layers and l2
            "teacher": {"kind": "tfidf", "n_labels": 100, "C": 10.0, "ngram_max": 2,
                        "num_layers": 1, "l2": 1e-3},
            "strong": {"encoder": "sentence-transformers/all-MiniLM-L6-v2",
                       "max_length": 256, **_HEAD, "l2": 1e-3},
            "l2_grid": [0.0, 1e-4, 1e-3, 1e-2],
            "sweep_objectives": ["bce", "reverse_bce"],
            "ensemble_size": 5,
            "ensemble_objectives": ["bce", "reverse_bce"],
            "device": "cpu",
        },
    ),
    "gpt2-hh": Preset(
        "gpt2-hh",
        "GPU: the released code's protocol with GPT-2 causal LMs (teacher gpt2, student "
        "gpt2-medium), last-token bias-free head, Adam lr 1e-5, batch 32, 2 epochs, "
        "max length 1024 with left truncation",
        "causal_lm",
        {
            "sizes": {"train_gt": 4000, "train_w2s": 4000, "test": 4000},
            "full_sizes": {"train_gt": 4000, "train_w2s": 4000, "test": 4000},
            "seeds": [0, 1, 2, 3, 4],
            "objectives": None,
            "teacher": {"kind": "causal_lm", "model": "gpt2", "n_labels": 4000, "lr": 1e-5,
                        "batch_size": 32, "micro_batch_size": 8, "epochs": 2,
                        "max_length": 1024, "bf16": True, "gradient_checkpointing": False},
            "strong": {"model": "gpt2-medium", "lr": 1e-5, "batch_size": 32,
                       "micro_batch_size": 8, "epochs": 2, "max_length": 1024, "l2": 0.0,
                       "bf16": True, "gradient_checkpointing": False},
            "l2_grid": [],
            "sweep_objectives": [],
            "ensemble_size": 0,
            "ensemble_objectives": ["bce", "reverse_bce"],
            "device": "cuda",
        },
        requires_cuda=True,
    ),
    "tiny-gpt2": Preset(
        "tiny-gpt2",
        "Tests: the causal-LM path with tiny random GPT-2 models built locally from a "
        "config (no download), a few steps on CPU",
        "causal_lm",
        {
            "sizes": {"train_gt": 24, "train_w2s": 24, "test": 16},
            "full_sizes": {"train_gt": 4000, "train_w2s": 4000, "test": 4000},
            "seeds": [0],
            "objectives": ["bce", "reverse_bce"],
            "teacher": {"kind": "causal_lm", "model": "tiny-gpt2:1", "n_labels": 24,
                        "lr": 1e-3, "batch_size": 8, "micro_batch_size": 4, "epochs": 1,
                        "max_length": 64, "num_threads": 1},
            "strong": {"model": "tiny-gpt2:2", "lr": 1e-3, "batch_size": 8,
                       "micro_batch_size": 4, "epochs": 1, "max_length": 64, "l2": 0.0,
                       "bf16": False, "gradient_checkpointing": False, "num_threads": 1},
            "l2_grid": [],
            "sweep_objectives": [],
            "ensemble_size": 2,
            "ensemble_objectives": ["bce"],
            "device": "cpu",
        },
    ),
}


def get_preset(name: str) -> Preset:
    """The preset called ``name`` (ValueError listing the known ones otherwise)."""
    if name not in PRESETS:
        raise ValueError(f"preset: unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]


def objective_names() -> list[str]:
    """Every objective of :mod:`w2sg_utils.losses` (``OBJECTIVE_NAMES``)."""
    from .losses import OBJECTIVE_NAMES

    return list(OBJECTIVE_NAMES)


def _get_objective(name: str, buffer_size: int | None = None):
    """A fresh objective object (stateful objectives keep per-run state).

    ``buffer_size`` (the optimiser batch) is passed to objectives that take a batch
    quantile (``aux``, ``logconf``, ``Quan_CACE_k``) when training runs in
    microbatches, so their quantile sample is the whole optimiser batch.
    """
    from .losses import get_objective

    if buffer_size is not None:
        try:
            return get_objective(name, buffer_size=buffer_size)
        except (TypeError, ValueError):
            pass
    return get_objective(name)


def _deep_update(base: dict, upd: dict, path: str = "") -> dict:
    for k, v in upd.items():
        if k not in base:
            raise ValueError(f"{path}{k}: unknown configuration key (known: {sorted(base)})")
        if isinstance(base[k], dict) and isinstance(v, dict):
            _deep_update(base[k], v, path=f"{path}{k}.")
        else:
            base[k] = v
    return base


def make_config(preset: str = "hh-minilm-cpu", full: bool = False, **overrides) -> dict:
    """The validated configuration of a preset with ``overrides`` (nested dicts merge).

    ``full=True`` uses the preset's ``full_sizes`` (4000/4000/4000). Examples:
    ``make_config(seeds=[0, 1], sizes={"test": 200}, strong={"l2": 0.0})``.
    """
    p = get_preset(preset)
    cfg = copy.deepcopy(p.config)
    if full:
        cfg["sizes"] = dict(cfg["full_sizes"])
    cfg = _deep_update(cfg, copy.deepcopy(overrides))
    cfg["preset"] = p.name
    cfg["backend"] = p.backend
    cfg["requires_cuda"] = p.requires_cuda
    if cfg["objectives"] is None:
        cfg["objectives"] = objective_names()
    validate_config(cfg)
    return cfg


def validate_config(cfg: dict, check_objectives: bool = True) -> None:
    """Check every field before any work starts (ValueError naming the parameter)."""
    if cfg.get("backend") not in ("embedding", "causal_lm"):
        raise ValueError(f"backend: 'embedding' or 'causal_lm', got {cfg.get('backend')!r}")
    sizes = cfg["sizes"]
    if not isinstance(sizes, dict) or set(sizes) != set(SPLITS):
        raise ValueError(f"sizes: must give exactly the splits {SPLITS}, got {sizes!r}")
    for s in SPLITS:
        positive_int(sizes[s], f"sizes.{s}", HH_ROWS)
    if sizes["test"] < 2:
        raise ValueError("sizes.test: need at least 2 test pairs")
    seeds = cfg["seeds"]
    if (not isinstance(seeds, (list, tuple)) or not seeds
            or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0
                   for s in seeds)
            or len(set(seeds)) != len(seeds)):
        raise ValueError(f"seeds: must be a non-empty list of distinct non-negative integers, got {seeds!r}")
    objs = list(cfg["objectives"]) + list(cfg["sweep_objectives"]) + list(cfg["ensemble_objectives"])
    if not cfg["objectives"]:
        raise ValueError("objectives: must name at least one objective")
    if check_objectives:
        known = objective_names()
        for o in objs:
            if not isinstance(o, str):
                raise ValueError(f"objectives: names must be strings, got {o!r}")
            try:
                _get_objective(o)
            except (ValueError, KeyError) as exc:
                raise ValueError(f"objectives: unknown objective {o!r}; known: {known}") from exc
    t = cfg["teacher"]
    positive_int(t["n_labels"], "teacher.n_labels")
    if t["n_labels"] > sizes["train_gt"]:
        raise ValueError(
            f"teacher.n_labels: {t['n_labels']} exceeds sizes.train_gt = {sizes['train_gt']}")
    if t["kind"] == "tfidf":
        positive(t["C"], "teacher.C")
        if t["ngram_max"] not in (1, 2, 3):
            raise ValueError(f"teacher.ngram_max: 1, 2 or 3, got {t['ngram_max']!r}")
    elif t["kind"] == "encoder":
        positive_int(t["num_layers"], "teacher.num_layers")
        non_negative(t["l2"], "teacher.l2")
    elif t["kind"] == "causal_lm":
        if cfg["backend"] != "causal_lm":
            raise ValueError("teacher.kind: 'causal_lm' needs a causal_lm preset")
        if not isinstance(t["model"], str) or not t["model"]:
            raise ValueError(f"teacher.model: a hub id or folder, got {t['model']!r}")
        positive(t["lr"], "teacher.lr")
        for k in ("batch_size", "micro_batch_size", "epochs", "max_length"):
            positive_int(t[k], f"teacher.{k}")
    else:
        raise ValueError(f"teacher.kind: 'tfidf', 'encoder' or 'causal_lm', got {t['kind']!r}")
    st = cfg["strong"]
    non_negative(st["l2"], "strong.l2")
    positive(st["lr"], "strong.lr")
    for k in ("batch_size", "epochs", "max_length"):
        positive_int(st[k], f"strong.{k}")
    if cfg["backend"] == "embedding":
        if st["kind"] not in ("linear", "mlp"):
            raise ValueError(f"strong.kind: 'linear' or 'mlp', got {st['kind']!r}")
        positive_int(st["hidden"], "strong.hidden")
        if cfg["device"] != "cpu" and not str(cfg["device"]).startswith("cuda"):
            raise ValueError(f"device: 'cpu' or 'cuda[:k]', got {cfg['device']!r}")
    else:
        positive_int(st["micro_batch_size"], "strong.micro_batch_size")
        if not isinstance(st["model"], str) or not st["model"]:
            raise ValueError(f"strong.model: a hub id or folder, got {st['model']!r}")
    for v in cfg["l2_grid"]:
        non_negative(v, "l2_grid")
    if isinstance(cfg["ensemble_size"], bool) or not isinstance(cfg["ensemble_size"], int) \
            or cfg["ensemble_size"] < 0 or cfg["ensemble_size"] == 1:
        raise ValueError(f"ensemble_size: 0 (off) or an integer >= 2, got {cfg['ensemble_size']!r}")
    dev = str(cfg["device"])
    if dev.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ValueError(
                f"device: preset {cfg['preset']!r} needs CUDA but no GPU is available "
                "(use --device cpu only for tiny models, or the hh-minilm-cpu preset)")
    elif dev != "cpu":
        raise ValueError(f"device: 'cpu' or 'cuda[:k]', got {dev!r}")


# ----------------------------------------------------------------- hashing and plan

def config_hash(obj) -> str:
    """SHA-256 (hex, 16 chars) of the canonical JSON of ``obj`` (sorted keys)."""
    s = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_json_default)
    return hashlib.sha256(s.encode()).hexdigest()[:16]


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    raise TypeError(f"not JSON serialisable: {o!r}")


def _context(cfg: dict) -> dict:
    """The parts of a configuration every run depends on (not the sweep lists)."""
    return {k: cfg[k] for k in ("preset", "backend", "sizes", "teacher", "strong", "device")} | {
        "code": CODE_VERSION}


def run_id(cfg: dict, spec: dict, data_hash: str) -> str:
    """Hash of a run's full configuration: context + stage spec + data fingerprint."""
    spec = dict(spec)
    return config_hash({"context": _context(cfg), "spec": spec, "data": data_hash})


def plan_runs(cfg: dict) -> list[dict]:
    """Ordered run specs of a sweep (dependencies first within each seed)."""
    plan = []
    K = cfg["ensemble_size"]
    l2 = cfg["strong"]["l2"]
    for seed in cfg["seeds"]:
        plan.append({"stage": "teacher", "seed": seed, "member": 0})
        plan.append({"stage": "ceiling", "seed": seed, "l2": l2})
        for obj in cfg["objectives"]:
            plan.append({"stage": "student", "seed": seed, "objective": obj, "l2": l2,
                         "labels": "teacher0"})
        for lam in cfg["l2_grid"]:
            for obj in cfg["sweep_objectives"]:
                if lam == l2 and obj in cfg["objectives"]:
                    continue
                plan.append({"stage": "student", "seed": seed, "objective": obj, "l2": lam,
                             "labels": "teacher0"})
        if K:
            for k in range(1, K + 1):
                plan.append({"stage": "teacher", "seed": seed, "member": k})
            for obj in cfg["ensemble_objectives"]:
                for k in range(1, K + 1):
                    plan.append({"stage": "student", "seed": seed, "objective": obj,
                                 "l2": l2, "labels": f"teacher{k}"})
                plan.append({"stage": "student", "seed": seed, "objective": obj, "l2": l2,
                             "labels": f"ensemble{K}"})
            plan.append({"stage": "bias_variance", "seed": seed, "ensemble_size": K})
    return plan


# ----------------------------------------------------------------------- run store

class RunStore:
    """Tidy results CSV (one row per run, atomic rewrites) + validated artifacts.

    ``root/results.csv`` holds the rows; ``root/artifacts/<run_id>.npz`` the arrays of
    each run, with the run id and a checksum inside, checked on load.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "artifacts").mkdir(exist_ok=True)
        self.csv = self.root / "results.csv"

    def rows(self) -> pd.DataFrame:
        """All rows (empty frame if none)."""
        if not self.csv.is_file():
            return pd.DataFrame()
        return pd.read_csv(self.csv)

    def done(self) -> set[str]:
        df = self.rows()
        return set(df["run_id"]) if "run_id" in df else set()

    def append(self, row: dict) -> None:
        """Add one row; rewrite the CSV atomically; a duplicate run id is an error."""
        df = self.rows()
        if "run_id" in df and row["run_id"] in set(df["run_id"]):
            raise ValueError(f"run_id: {row['run_id']} is already in {self.csv}")
        new = pd.concat([df, pd.DataFrame([row])], ignore_index=True)
        atomic_write_text(self.csv, new.to_csv(index=False))

    def artifact_path(self, rid: str) -> Path:
        return self.root / "artifacts" / f"{rid}.npz"

    @staticmethod
    def _checksum(rid: str, arrays: dict) -> str:
        h = hashlib.sha256(rid.encode())
        for k in sorted(arrays):
            a = np.ascontiguousarray(arrays[k])
            h.update(k.encode())
            h.update(str(a.dtype).encode() + str(a.shape).encode())
            h.update(a.tobytes())
        return h.hexdigest()

    def save_artifact(self, rid: str, **arrays) -> None:
        arrays = {k: np.asarray(v) for k, v in arrays.items()}
        atomic_write(self.artifact_path(rid), lambda f: np.savez(
            f, __run_id=np.asarray(rid), __checksum=np.asarray(self._checksum(rid, arrays)),
            **arrays))

    def load_artifact(self, rid: str) -> dict | None:
        """The arrays of run ``rid``, or ``None`` if missing or invalid (never reused)."""
        p = self.artifact_path(rid)
        if not p.is_file():
            return None
        try:
            with np.load(p, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files if not k.startswith("__")}
                ok = (str(z["__run_id"]) == rid
                      and str(z["__checksum"]) == self._checksum(rid, arrays))
        except Exception:  # noqa: BLE001 - unreadable means invalid
            return None
        return arrays if ok else None


# ------------------------------------------------------------------------ metrics

def _clip(p):
    return np.clip(p, P_CLIP, 1 - P_CLIP)


def pgr(acc_student: float, acc_weak: float, acc_ceiling: float) -> float:
    """Performance gap recovered ``(acc_s - acc_w) / (acc_c - acc_w)`` (Burns et al.).

    ``nan`` when the ceiling does not beat the teacher (the ratio is meaningless).
    """
    gap = acc_ceiling - acc_weak
    return float((acc_student - acc_weak) / gap) if gap > 0 else float("nan")


def accuracy(z, label) -> float:
    """Pairwise accuracy: ``z > 0`` predicts ``a``; an exact tie counts one half."""
    z, label = np.asarray(z, float), np.asarray(label)
    return float(np.mean(np.where(z == 0, 0.5, (z > 0) == (label == 1))))


def pair_metrics(z_s, z_w, label) -> dict:
    """Per-run metrics on test pairs (claims C2, C7, C9).

    ``acc``; ``misfit_kl_sw = mean KL(p_s || p_w)`` (the Bregman misfit, student first)
    and ``misfit_kl_ws = mean KL(p_w || p_s)``; ``entropy`` (mean binary entropy of
    ``p_s``, nats); ``agreement`` of the hard decisions; the test cross-entropies
    ``risk_s`` and ``risk_w`` against the true labels and the cross term of the gain
    identity, so that ``risk_w = risk_s + misfit_kl_sw + cross`` exactly (claim C2).
    """
    from .decompositions import gain_identity

    z_s, z_w = np.asarray(z_s, float), np.asarray(z_w, float)
    y = np.asarray(label, float)
    p_s, p_w = _clip(sigmoid(z_s)), _clip(sigmoid(z_w))
    g = gain_identity("binary_kl", y[:, None], p_s[:, None], p_w[:, None]).averaged()
    bkl = get_divergence("binary_kl")
    ent = -(p_s * np.log(p_s) + (1 - p_s) * np.log1p(-p_s))
    return {
        "acc": accuracy(z_s, label),
        "misfit_kl_sw": float(np.mean(bkl.divergence(p_s[:, None], p_w[:, None]))),
        "misfit_kl_ws": float(np.mean(bkl.divergence(p_w[:, None], p_s[:, None]))),
        "entropy": float(np.mean(ent)),
        "agreement": float(np.mean((z_s > 0) == (z_w > 0))),
        "risk_s": g["risk_s"],
        "risk_w": g["risk_w"],
        "cross": g["cross"],
    }


# ------------------------------------------------------------------- stage runners

class _Backend:
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
        key = (split, json.dumps(st, sort_keys=True))
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


def _run_teacher(bk: _Backend, spec) -> dict:
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
        head = train_head(head, ga[idx], gb[idx], gt.label.astype(float), _get_objective("bce"),
                          l2=t["l2"], epochs=cfg["strong"]["epochs"], lr=cfg["strong"]["lr"],
                          batch_size=cfg["strong"]["batch_size"], seed=1000 * bk.seed + spec["member"])
        wa, wb = bk.embeddings("train_w2s", ecfg)
        ta, tb = bk.embeddings("test", ecfg)
        return {"z_w2s": head_logits(head, wa, wb), "z_test": head_logits(head, ta, tb)}
    # causal LM teacher
    model, tok = _load_lm(t["model"], bool(t.get("gradient_checkpointing")),
                          seed=1000 * bk.seed + spec["member"])
    _train_lm(model, tok, gt, gt.label.astype(float), "bce", t, cfg, bk,
              seed=1000 * bk.seed + spec["member"])
    return {"z_w2s": _predict_lm(model, tok, w2s, t, cfg, bk),
            "z_test": _predict_lm(model, tok, test, t, cfg, bk)}


def _resolve_lm(name: str) -> str:
    """``tiny-gpt2:<n_layer>`` builds (once, in the cache) a tiny random GPT-2."""
    if name.startswith("tiny-gpt2:"):
        from .embeddings import cache_dir
        from .models import build_tiny_gpt2

        n_layer = int(name.split(":")[1])
        return str(build_tiny_gpt2(cache_dir() / "models" / f"tiny-gpt2-{n_layer}", n_layer=n_layer))
    return name


def _load_lm(name, grad_ckpt, seed):
    from .models import load_causal_lm_reward

    return load_causal_lm_reward(_resolve_lm(name), gradient_checkpointing=grad_ckpt, seed=seed)


def _train_lm(model, tok, ds, targets, objective, m, cfg, bk, seed):
    from .training import train_reward_model

    buf = m["batch_size"] if m["micro_batch_size"] < m["batch_size"] else None
    obj = _get_objective(objective, buf)
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
            bf16=bool(m.get("bf16", False)), seed=seed, progress=bk.progress)


def _predict_lm(model, tok, ds, m, cfg, bk):
    from .training import reward_logits

    with torch_threads(m.get("num_threads")):
        return reward_logits(model, tok, ds.text_a, ds.text_b, max_length=m["max_length"],
                             batch_size=max(1, m["micro_batch_size"]), device=cfg["device"],
                             bf16=bool(m.get("bf16", False)), progress=bk.progress)


def _train_strong(bk: _Backend, split: str, targets, objective: str, l2: float, seed: int):
    """Train the strong model on ``split`` with ``targets``; return its test logits."""
    cfg, st = bk.cfg, bk.cfg["strong"]
    if cfg["backend"] == "embedding":
        from .models import PairHead
        from .training import head_logits, train_head

        ea, eb = bk.embeddings(split)
        import torch

        torch.manual_seed(seed)
        head = PairHead(ea.shape[1], st["kind"], st["hidden"])
        head = train_head(head, ea, eb, targets, _get_objective(objective), l2=l2,
                          epochs=st["epochs"], lr=st["lr"], batch_size=st["batch_size"],
                          seed=seed)
        ta, tb = bk.embeddings("test")
        return head_logits(head, ta, tb)
    model, tok = _load_lm(st["model"], bool(st.get("gradient_checkpointing")), seed=seed)
    _train_lm(model, tok, bk.data[split], targets, objective, st, cfg, bk, seed=seed)
    return _predict_lm(model, tok, bk.data["test"], st, cfg, bk)


def _spec_seed(spec) -> int:
    """A training seed derived from the whole spec (distinct runs, distinct streams)."""
    return int(config_hash(spec)[:8], 16) % (2 ** 31)


# ----------------------------------------------------------------------- the sweep

def run_sweep(cfg: dict, out_dir: str | os.PathLike, data_dir=None, progress: bool = True,
              on_row: Callable[[dict], None] | None = None) -> pd.DataFrame:
    """Run (or resume) every run of :func:`plan_runs` and return the results table.

    A run whose row is in ``out_dir/results.csv`` and whose artifact is valid is skipped;
    a missing or invalid artifact of a finished run is recomputed (deterministically)
    without adding a second row. ``on_row`` is called after each new row is written.
    Setting the environment variable ``W2SG_ABORT_AFTER=n`` hard-exits the process
    (``os._exit``) after ``n`` new rows, to test resumption after a kill.
    """
    from tqdm import tqdm

    validate_config(cfg)
    store = RunStore(out_dir)
    plan = plan_runs(cfg)
    state = _SweepState(cfg, store, data_dir, progress, on_row,
                        int(os.environ.get("W2SG_ABORT_AFTER", "0") or 0))
    bar = tqdm(total=len(plan), desc=f"sweep {cfg['preset']}", disable=not progress)
    seeds = list(dict.fromkeys(spec["seed"] for spec in plan))
    for seed in seeds:
        runner = _SeedRunner(state, seed)
        for spec in plan:
            if spec["seed"] == seed:
                runner.ensure(spec)
                bar.update(1)
    bar.close()
    return store.rows()


class _SweepState:
    def __init__(self, cfg, store, data_dir, progress, on_row, abort_after):
        self.cfg, self.store, self.data_dir = cfg, store, data_dir
        self.progress, self.on_row, self.abort_after = progress, on_row, abort_after
        self.done = store.done()
        self.new_rows = 0


class _SeedRunner:
    """Runs of one seed; loads the data (cheap) eagerly, models and embeddings lazily."""

    def __init__(self, state: _SweepState, seed: int):
        self.s = state
        self.bk = _Backend(state.cfg, seed, state.data_dir, state.progress)
        self.cache: dict[str, dict] = {}

    def ensure(self, spec) -> dict:
        s = self.s
        rid = run_id(s.cfg, spec, self.bk.data_hash)
        if rid in self.cache:
            return self.cache[rid]
        arrays = s.store.load_artifact(rid)
        if arrays is None or rid not in s.done:
            arrays, row = _execute(spec, self.bk, self.ensure)
            s.store.save_artifact(rid, **arrays)
            if rid not in s.done:
                row = {"run_id": rid, "preset": s.cfg["preset"], "data_hash": self.bk.data_hash,
                       **row, "spec": json.dumps(spec, sort_keys=True)}
                s.store.append(row)
                s.done.add(rid)
                s.new_rows += 1
                if s.on_row is not None:
                    s.on_row(row)
                if s.abort_after and s.new_rows >= s.abort_after:
                    os._exit(75)  # simulate a kill: no cleanup, nothing flushed beyond here
        self.cache[rid] = arrays
        return arrays


def _base_row(spec) -> dict:
    return {"stage": spec["stage"], "seed": spec["seed"], "objective": spec.get("objective", ""),
            "l2": spec.get("l2", np.nan), "labels": spec.get("labels", ""),
            "member": spec.get("member", -1)}


def _execute(spec, bk: _Backend, ensure) -> tuple[dict, dict]:
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
        z = _train_strong(bk, "train_w2s", y, "bce", spec["l2"], _spec_seed(spec))
        t0 = ensure({"stage": "teacher", "seed": seed, "member": 0})
        m = pair_metrics(z, t0["z_test"], test_label)
        row |= m | {"ceiling_acc": m["acc"], "teacher_acc": accuracy(t0["z_test"], test_label)}
        return {"z_test": z}, row
    if spec["stage"] == "student":
        zw_w2s, zw_test = _labels(spec["labels"], seed, ensure)
        targets = sigmoid(zw_w2s)
        z = _train_strong(bk, "train_w2s", targets, spec["objective"], spec["l2"], _spec_seed(spec))
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


def _bias_variance(spec, bk: _Backend, ensure) -> tuple[dict, dict]:
    """Bias-variance rows for the teacher ensemble and the students trained on it.

    Uses :func:`~w2sg_utils.decompositions.bias_variance_decomposition` with the binary
    KL: predictions are the ``K`` members' test probabilities (randomness: bootstrap of
    ``train_gt`` and seed), the target is the observed test label. With one label per
    pair the noise term is zero by construction; ``bias`` then includes the label
    noise. ``expected_loss`` is the members' mean test cross-entropy (computed directly).
    """
    from .decompositions import bias_variance_decomposition

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
        P = _clip(sigmoid(np.stack(zs)))[:, :, None]
        bv = bias_variance_decomposition("binary_kl", P, y).averaged()
        for k, v in bv.items():
            out_rows[f"{name}__{k}"] = v
        arrays[name] = np.stack(zs)
    row = _base_row(spec) | {"ensemble_size": K, "bv": json.dumps(out_rows, sort_keys=True)}
    return arrays, row


# ------------------------------------------------------------------- summaries

def summarize(df: pd.DataFrame, by, metrics=("acc", "pgr"), level: float = 0.95) -> pd.DataFrame:
    """Mean, standard error and a Student-t ``level`` interval over seeds, per group.

    Returns one row per group with ``<metric>_mean``, ``<metric>_se``,
    ``<metric>_lo``, ``<metric>_hi`` and ``n`` (number of seeds).
    """
    from scipy import stats

    if not 0 < level < 1:
        raise ValueError(f"level: must lie in (0, 1), got {level!r}")
    by = [by] if isinstance(by, str) else list(by)
    out = []
    for key, g in df.groupby(by, dropna=False, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        r = dict(zip(by, key))
        r["n"] = len(g)
        for m in metrics:
            x = g[m].to_numpy(float)
            x = x[np.isfinite(x)]
            mean = float(np.mean(x)) if len(x) else np.nan
            se = float(np.std(x, ddof=1) / np.sqrt(len(x))) if len(x) > 1 else np.nan
            half = float(stats.t.ppf(0.5 + level / 2, len(x) - 1) * se) if len(x) > 1 else np.nan
            r |= {f"{m}_mean": mean, f"{m}_se": se, f"{m}_lo": mean - half, f"{m}_hi": mean + half}
        out.append(r)
    return pd.DataFrame(out)


def bias_variance_table(df: pd.DataFrame) -> pd.DataFrame:
    """The ``bias_variance`` rows expanded to one row per (seed, model, term)."""
    rows = []
    for _, r in df[df["stage"] == "bias_variance"].iterrows():
        for k, v in json.loads(r["bv"]).items():
            model, term = k.split("__")
            rows.append({"seed": r["seed"], "model": model, "term": term, "value": v})
    return pd.DataFrame(rows)


def committed_results(name: str, start: str | os.PathLike | None = None) -> pd.DataFrame | None:
    """The committed results table ``results/<name>/results.csv``, or ``None``.

    Searched from ``start`` (default: the current folder) upwards, so a chapter finds
    it whether it runs from ``notebooks/``, the project root or ``build/ipynb/``.
    Used by Chapter 5 to render GPU-scale and full-size runs without re-running them.
    """
    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        raise ValueError(f"name: a results folder name, got {name!r}")
    here = Path(start or os.getcwd()).resolve()
    for d in (here, *here.parents):
        p = d / "results" / name / "results.csv"
        if p.is_file():
            return pd.read_csv(p)
    return None
