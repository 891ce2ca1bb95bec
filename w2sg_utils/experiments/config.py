"""Experiment configurations and presets as frozen dataclasses (claim C9, Chapter 5).

An :class:`ExperimentConfig` is validated when it is constructed: a bad field raises
``ValueError`` naming it (``sizes.test``, ``teacher.n_labels``, ``strong.lr``, ...)
before any work starts. Each section (:class:`Sizes`, :class:`TeacherConfig`,
:class:`StrongConfig`) and the configuration itself read like the nested dicts they
replace (``cfg["strong"]["l2"]``, ``cfg.strong.l2``); a section's fields that a preset
does not use are ``None`` and absent from its mapping view, so :meth:`to_dict` gives
exactly the dicts that earlier versions hashed into run ids (committed run stores keep
their ids). Whether this machine can run a configuration (CUDA) is checked separately,
by :func:`check_device`, when a configuration is made or run.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import numpy as np

from .._common import check_int, non_negative, positive, positive_int
from .data import HH_ROWS, SPLITS
from .presets import PRESET_TABLE

if TYPE_CHECKING:
    from .finetune import CeilingConfig

__all__ = [
    "Sizes",
    "TeacherConfig",
    "StrongConfig",
    "ExperimentConfig",
    "Preset",
    "PRESETS",
    "get_preset",
    "make_config",
    "validate_config",
    "check_device",
    "objective_names",
    "new_objective",
]


def objective_names() -> list[str]:
    """Every objective of :mod:`w2sg_utils.losses` (``OBJECTIVE_NAMES``)."""
    from ..losses import OBJECTIVE_NAMES

    return list(OBJECTIVE_NAMES)


def new_objective(name: str, buffer_size: int | None = None):
    """A fresh objective object (stateful objectives keep per-run state).

    ``buffer_size`` (the optimiser batch) is passed to objectives that take a batch
    quantile (``aux``, ``logconf``, ``Quan_CACE_k``) when training runs in
    microbatches, so their quantile sample is the whole optimiser batch.
    """
    from ..losses import get_objective

    if buffer_size is not None:
        try:
            return get_objective(name, buffer_size=buffer_size)
        except (TypeError, ValueError):
            pass
    return get_objective(name)


class _Section(Mapping):
    """Read-only mapping view of a frozen dataclass; ``None`` fields are absent."""

    def _keys(self) -> list[str]:
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]

    def __getitem__(self, key):
        if key not in self._keys():
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self):
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    def to_dict(self) -> dict:
        """Plain nested dicts and lists (the form hashed into run ids)."""
        return {k: v.to_dict() if isinstance(v, _Section) else list(v) if isinstance(v, tuple)
                else v for k, v in self.items()}


def _model_name(v, name: str) -> None:
    if not isinstance(v, str) or not v:
        raise ValueError(f"{name}: a hub id or folder, got {v!r}")


@dataclass(frozen=True)
class Sizes(_Section):
    """Pairs per split (at most the rows shipped, ``HH_ROWS``)."""

    train_gt: int
    train_w2s: int
    test: int

    def __post_init__(self):
        for s in SPLITS:
            positive_int(getattr(self, s), f"sizes.{s}", HH_ROWS)
        if self.test < 2:
            raise ValueError("sizes.test: need at least 2 test pairs")


@dataclass(frozen=True, kw_only=True)
class _Trained(_Section):
    """Fields of a trained model shared by the teacher and the strong model."""

    model: str | None = None
    lr: float | None = None
    l2: float | None = None
    batch_size: int | None = None
    micro_batch_size: int | None = None
    epochs: int | None = None
    max_length: int | None = None
    bf16: bool | None = None
    gradient_checkpointing: bool | None = None
    num_threads: int | None = None
    # training-loop protocol (None: the loop's defaults, reshuffle / constant / dropout
    # on / N(0, 1/(h+1)) head); the released code's: False / release / cosine / default
    dropout: bool | None = None
    order: str | None = None
    lr_schedule: str | None = None
    head_init: str | None = None

    def _check_loop(self, who: str) -> None:
        from .models import HEAD_INITS
        from .training import LR_SCHEDULES, ORDERS

        if self.dropout is not None and not isinstance(self.dropout, bool):
            raise ValueError(f"{who}.dropout: True or False, got {self.dropout!r}")
        for k, allowed in (("order", ORDERS), ("lr_schedule", LR_SCHEDULES),
                           ("head_init", HEAD_INITS)):
            v = getattr(self, k)
            if v is not None and v not in allowed:
                raise ValueError(f"{who}.{k}: one of {allowed}, got {v!r}")


@dataclass(frozen=True, kw_only=True)
class TeacherConfig(_Trained):
    """The weak teacher: ``kind`` ``tfidf`` (uses ``C``, ``ngram_max``), ``encoder`` (a
    linear head on the first ``num_layers`` layers of the strong encoder, ``l2``) or
    ``causal_lm`` (a fine-tuned causal LM: ``model``, ``lr``, batch sizes, ...)."""

    kind: str
    n_labels: int
    C: float | None = None
    ngram_max: int | None = None
    num_layers: int | None = None

    def __post_init__(self):
        positive_int(self.n_labels, "teacher.n_labels")
        if self.kind == "tfidf":
            positive(self.C, "teacher.C")
            if self.ngram_max not in (1, 2, 3):
                raise ValueError(f"teacher.ngram_max: 1, 2 or 3, got {self.ngram_max!r}")
        elif self.kind == "encoder":
            positive_int(self.num_layers, "teacher.num_layers")
            non_negative(self.l2, "teacher.l2")
        elif self.kind == "causal_lm":
            self._check_loop("teacher")
            _model_name(self.model, "teacher.model")
            positive(self.lr, "teacher.lr")
            for k in ("batch_size", "micro_batch_size", "epochs", "max_length"):
                positive_int(getattr(self, k), f"teacher.{k}")
        else:
            raise ValueError(
                f"teacher.kind: 'tfidf', 'encoder' or 'causal_lm', got {self.kind!r}")


@dataclass(frozen=True, kw_only=True)
class StrongConfig(_Trained):
    """The strong model: a head (``kind``, ``hidden``) on a frozen ``encoder``
    (embedding back-end) or a fine-tuned causal LM ``model`` (causal_lm back-end);
    ``lr``, ``l2``, ``batch_size``, ``epochs`` and ``max_length`` are required."""

    encoder: str | None = None
    kind: str | None = None
    hidden: int | None = None

    def __post_init__(self):
        self._check_loop("strong")
        non_negative(self.l2, "strong.l2")
        positive(self.lr, "strong.lr")
        for k in ("batch_size", "epochs", "max_length"):
            positive_int(getattr(self, k), f"strong.{k}")


@dataclass(frozen=True)
class ExperimentConfig(_Section):
    """A whole sweep (claim C9); see :func:`make_config` and :data:`PRESETS`.

    ``objectives`` ``None`` (presets only) means every objective; ``ensemble_size`` 0
    turns the ensemble stage off.

    Statement: {ref}`sec-ch05`.
    """

    preset: str
    backend: str  # "embedding" or "causal_lm"
    requires_cuda: bool
    sizes: Sizes
    full_sizes: Sizes
    seeds: tuple[int, ...]
    objectives: tuple[str, ...] | None
    teacher: TeacherConfig
    strong: StrongConfig
    l2_grid: tuple[float, ...]
    sweep_objectives: tuple[str, ...]
    ensemble_size: int
    ensemble_objectives: tuple[str, ...]
    device: str
    ceiling: CeilingConfig | None = None  # None: the strong model on the true labels
    protocol: str | None = None  # "release": objectives exactly as released

    def objective(self, name: str, buffer_size: int | None = None):
        """A fresh objective ``name`` of this configuration: as released
        (:func:`~w2sg_utils.losses.release_objective`) under ``protocol="release"``."""
        if self.protocol == "release":
            from ..losses import release_objective

            return release_objective(name)
        return new_objective(name, buffer_size)

    def __post_init__(self):
        if self.backend not in ("embedding", "causal_lm", "finetune"):
            raise ValueError(
                f"backend: 'embedding', 'causal_lm' or 'finetune', got {self.backend!r}")
        seeds = self.seeds
        if (not isinstance(seeds, tuple) or not seeds
                or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0
                       for s in seeds) or len(set(seeds)) != len(seeds)):
            raise ValueError(
                f"seeds: must be a non-empty list of distinct non-negative integers, got {list(seeds)!r}")
        if self.protocol not in (None, "release"):
            raise ValueError(f"protocol: None or 'release', got {self.protocol!r}")
        if self.objectives is not None:
            if not self.objectives:
                raise ValueError("objectives: must name at least one objective")
            self._check_objectives(self.objectives + self.sweep_objectives
                                   + self.ensemble_objectives)
            if self.protocol == "release":
                for o in self.objectives + self.sweep_objectives + self.ensemble_objectives:
                    self.objective(o)  # ValueError for an objective the release lacks
        t, st = self.teacher, self.strong
        if t.n_labels > self.sizes.train_gt:
            raise ValueError(f"teacher.n_labels: {t.n_labels} exceeds sizes.train_gt = "
                             f"{self.sizes.train_gt}")
        if t.kind == "causal_lm" and self.backend != "causal_lm":
            raise ValueError("teacher.kind: 'causal_lm' needs a causal_lm preset")
        if self.backend == "embedding":
            if st.kind not in ("linear", "mlp"):
                raise ValueError(f"strong.kind: 'linear' or 'mlp', got {st.kind!r}")
            positive_int(st.hidden, "strong.hidden")
        else:
            positive_int(st.micro_batch_size, "strong.micro_batch_size")
            _model_name(st.model, "strong.model")
        for v in self.l2_grid:
            non_negative(v, "l2_grid")
        if check_int(self.ensemble_size, "ensemble_size", 0) == 1:
            raise ValueError("ensemble_size: 0 (off) or an integer >= 2, got 1")
        dev = self.device
        if not isinstance(dev, str) or not (dev == "cpu" or dev.startswith("cuda")):
            raise ValueError(f"device: 'cpu' or 'cuda[:k]', got {dev!r}")

    @staticmethod
    def _check_objectives(names) -> None:
        for o in names:
            if not isinstance(o, str):
                raise ValueError(f"objectives: names must be strings, got {o!r}")
            try:
                new_objective(o)
            except (ValueError, KeyError) as exc:
                raise ValueError(
                    f"objectives: unknown objective {o!r}; known: {objective_names()}") from exc

    @classmethod
    def from_dict(cls, d: Mapping) -> ExperimentConfig:
        """Build (and validate) from nested dicts; lists become tuples."""
        d = dict(d)
        for k in ("sizes", "full_sizes"):
            if not isinstance(d.get(k), Mapping) or set(d[k]) != set(SPLITS):
                raise ValueError(f"{k}: must give exactly the splits {SPLITS}, got {d.get(k)!r}")
            d[k] = Sizes(**d[k])
        d["teacher"] = TeacherConfig(**d["teacher"])
        from .finetune import CeilingConfig, FinetuneConfig

        strong = FinetuneConfig if d.get("backend") == "finetune" else StrongConfig
        d["strong"] = strong(**d["strong"])
        if d.get("ceiling") is not None:
            d["ceiling"] = CeilingConfig(**d["ceiling"])
        for k in ("seeds", "objectives", "l2_grid", "sweep_objectives", "ensemble_objectives"):
            if isinstance(d.get(k), list | tuple):
                d[k] = tuple(d[k])
            elif k != "objectives" or d.get(k) is not None:
                raise ValueError(f"{k}: must be a list, got {d.get(k)!r}")
        return cls(**d)

    def to_dict(self) -> dict:
        """Plain nested dicts; ``objectives`` ``None`` kept (it means every objective)."""
        out = super().to_dict()
        out.setdefault("objectives", None)
        return out


def check_device(cfg: ExperimentConfig) -> None:
    """``ValueError`` if this machine cannot run ``cfg``: it needs CUDA and there is none;
    (``finetune``) its ``dtype`` is not supported on the device or its ``max_length``
    exceeds the model's positions."""
    if cfg.backend == "finetune":
        from .finetune import check_dtype, model_max_length

        st = cfg.strong
        check_dtype(st.dtype, cfg.device)
        limit = model_max_length(st.model)
        if st.max_length > limit:
            raise ValueError(f"strong.max_length: {st.max_length} exceeds the {limit} "
                             f"positions of {st.model!r}")
    if str(cfg.device).startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ValueError(
                f"device: preset {cfg.preset!r} needs CUDA but no GPU is available "
                "(use --device cpu only for tiny models, or the hh-minilm-cpu preset)")


@dataclass(frozen=True)
class Preset:
    """A named, validated experiment configuration (claim C9); see :func:`make_config`.

    Statement: {ref}`sec-ch05`.
    """

    name: str
    description: str
    config: ExperimentConfig

    @property
    def backend(self) -> str:
        return self.config.backend

    @property
    def requires_cuda(self) -> bool:
        return self.config.requires_cuda


PRESETS: dict[str, Preset] = {
    name: Preset(name, description, ExperimentConfig.from_dict(
        {**config, "preset": name, "backend": backend, "requires_cuda": cuda}))
    for name, (description, backend, cuda, config) in PRESET_TABLE.items()
}
"""``hh-minilm-cpu`` (default: frozen MiniLM + heads on CPU, TF-IDF teacher), ``gpt2-hh``
(the released code's GPT-2 protocol on a GPU), ``tiny-gpt2`` (the causal-LM path with a
tiny random GPT-2, for tests)."""


def get_preset(name: str) -> Preset:
    """The preset called ``name`` (ValueError listing the known ones otherwise)."""
    if name not in PRESETS:
        raise ValueError(f"preset: unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]


def _deep_update(base: dict, upd: dict, path: str = "") -> dict:
    for k, v in upd.items():
        if k not in base:
            raise ValueError(f"{path}{k}: unknown configuration key (known: {sorted(base)})")
        if isinstance(base[k], dict) and isinstance(v, dict):
            _deep_update(base[k], v, path=f"{path}{k}.")
        else:
            base[k] = v
    return base


def make_config(preset: str = "hh-minilm-cpu", full: bool = False,
                **overrides) -> ExperimentConfig:
    """The validated configuration of a preset with ``overrides`` (nested dicts merge).

    ``full=True`` uses the preset's ``full_sizes`` (4000/4000/4000). Examples:
    ``make_config(seeds=[0, 1], sizes={"test": 200}, strong={"l2": 0.0})``.
    """
    p = get_preset(preset)
    d = p.config.to_dict()
    fixed = {k: d.pop(k) for k in ("preset", "backend", "requires_cuda")}
    if full:
        d["sizes"] = dict(d["full_sizes"])
    d = _deep_update(d, copy.deepcopy(overrides))
    if d["objectives"] is None:
        d["objectives"] = objective_names()
    cfg = ExperimentConfig.from_dict(d | fixed)
    check_device(cfg)
    return cfg


def validate_config(cfg) -> ExperimentConfig:
    """``cfg`` (a configuration or its nested dicts) validated, device included."""
    if not isinstance(cfg, ExperimentConfig):
        cfg = ExperimentConfig.from_dict(cfg)
    if cfg.objectives is None:
        raise ValueError("objectives: must name at least one objective")
    check_device(cfg)
    return cfg
