"""What a configuration is (claim C9, Chapter 5): frozen dataclasses validated on
construction, one per section -- :class:`Sizes`, the weak :class:`TeacherConfig`, the
strong model (:class:`StrongConfig` for the ``embedding`` and ``causal_lm`` back-ends,
:class:`FinetuneConfig` for ``finetune``), an optional :class:`CeilingConfig` -- and the
whole :class:`ExperimentConfig`.

A bad field raises ``ValueError`` naming it (``sizes.test``, ``teacher.n_labels``,
``strong.lr``, ...) before any work starts. Code reads a configuration by attribute
(``cfg.strong.l2``); the read-only mapping view (``cfg["strong"]["l2"]``) serves
notebooks and :meth:`Section.to_dict`. A section's fields that a preset does not use
are ``None`` and absent from its mapping view, so ``to_dict`` gives exactly the dicts
that earlier versions hashed into run ids (committed run stores keep their ids). The
training loop's defaults live in :class:`~.training.Loop`; a section's ``loop(device)``
fills the fields it leaves ``None`` from them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

import numpy as np

from .._common import check_int, non_negative, positive, positive_int
from .data import HH_ROWS, SPLITS

__all__ = [
    "Section",
    "Sizes",
    "TeacherConfig",
    "StrongConfig",
    "FinetuneConfig",
    "CeilingConfig",
    "ExperimentConfig",
    "BACKENDS",
    "check_model_name",
    "objective_names",
    "new_objective",
]

BACKENDS = ("embedding", "causal_lm", "finetune")
"""The strong model's back-ends (:mod:`.learners`): heads on frozen embeddings, a
fine-tuned causal LM, a fine-tuned encoder."""


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


class Section(Mapping):
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
        return {k: v.to_dict() if isinstance(v, Section) else list(v) if isinstance(v, tuple)
                else v for k, v in self.items()}


def check_model_name(v, name: str) -> None:
    if not isinstance(v, str) or not v:
        raise ValueError(f"{name}: a hub id or folder, got {v!r}")


@dataclass(frozen=True)
class Sizes(Section):
    """Pairs per split (at most the rows shipped, ``HH_ROWS``)."""

    train_gt: int
    train_w2s: int
    test: int

    def __post_init__(self):
        for s in SPLITS:
            positive_int(getattr(self, s), f"sizes.{s}", HH_ROWS)
        if self.test < 2:
            raise ValueError("sizes.test: need at least 2 test pairs")


_LOOP_FIELDS = ("lr", "batch_size", "micro_batch_size", "epochs", "max_length", "bf16",
                "order", "lr_schedule", "dropout")


@dataclass(frozen=True, kw_only=True)
class _Trained(Section):
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

    def loop(self, device: str):
        """The training loop of this model on ``device``
        (:class:`~.training.Loop`; a field left ``None`` takes the loop's default)."""
        from .training import Loop

        given = {k: getattr(self, k) for k in _LOOP_FIELDS}
        return Loop(device=device, **{k: v for k, v in given.items() if v is not None})

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
    linear head on the first ``num_layers`` layers of the strong encoder, ``l2``; or, with
    ``encoder`` set, on a frozen encoder of its own, e.g. the pretrained pair's MiniLM,
    all layers unless ``num_layers``, at ``max_length`` or the strong model's; ``epochs``,
    ``lr``, ``batch_size`` are its head's settings, the strong section's where unset) or
    ``causal_lm`` (a fine-tuned causal LM: ``model``, ``lr``, batch sizes, ...)."""

    kind: str
    n_labels: int
    C: float | None = None
    ngram_max: int | None = None
    num_layers: int | None = None
    encoder: str | None = None

    def __post_init__(self):
        positive_int(self.n_labels, "teacher.n_labels")
        if self.kind == "tfidf":
            positive(self.C, "teacher.C")
            if self.ngram_max not in (1, 2, 3):
                raise ValueError(f"teacher.ngram_max: 1, 2 or 3, got {self.ngram_max!r}")
        elif self.kind == "encoder":
            if self.encoder is None or self.num_layers is not None:
                positive_int(self.num_layers, "teacher.num_layers")
            if self.encoder is not None:
                check_model_name(self.encoder, "teacher.encoder")
            if self.max_length is not None:
                positive_int(self.max_length, "teacher.max_length")
            non_negative(self.l2, "teacher.l2")
            if self.lr is not None:
                positive(self.lr, "teacher.lr")
            for k in ("epochs", "batch_size"):
                if getattr(self, k) is not None:
                    positive_int(getattr(self, k), f"teacher.{k}")
        elif self.kind == "causal_lm":
            self._check_loop("teacher")
            check_model_name(self.model, "teacher.model")
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


@dataclass(frozen=True, kw_only=True)
class FinetuneConfig(Section):
    """The strong model of the ``finetune`` back-end (issue 12): the whole encoder
    ``model`` and a bias-free head trained end to end
    (:mod:`~w2sg_utils.experiments.finetune`); ``head_lr`` is the head's learning
    rate, ``l2`` its penalty, ``dtype`` ``float32`` or (CUDA) ``bfloat16``, ``dropout``
    ``False`` to train in ``eval()`` mode (``None``: the loop's default, dropout on).
    Every field is part of the run id, ``num_threads`` ``None`` included (torch's
    default); ``dropout`` only when set (run ids of earlier presets unchanged)."""

    model: str
    max_length: int
    lr: float
    head_lr: float
    batch_size: int
    micro_batch_size: int
    epochs: int
    l2: float
    dtype: str
    num_threads: int | None = None
    dropout: bool | None = None

    def _keys(self) -> list[str]:
        return [f.name for f in fields(self)
                if f.name != "dropout" or self.dropout is not None]

    def loop(self, device: str):
        """The training loop on ``device`` (:class:`~.training.Loop`; ``bfloat16``:
        autocast)."""
        from .training import Loop

        return Loop(lr=self.lr, batch_size=self.batch_size,
                    micro_batch_size=self.micro_batch_size, epochs=self.epochs,
                    max_length=self.max_length, device=device,
                    bf16=self.dtype == "bfloat16",
                    **({} if self.dropout is None else {"dropout": self.dropout}))

    def __post_init__(self):
        check_model_name(self.model, "strong.model")
        for k in ("lr", "head_lr"):
            positive(getattr(self, k), f"strong.{k}")
        non_negative(self.l2, "strong.l2")
        for k in ("max_length", "batch_size", "micro_batch_size", "epochs"):
            positive_int(getattr(self, k), f"strong.{k}")
        if self.num_threads is not None:
            positive_int(self.num_threads, "strong.num_threads")
        if self.dtype not in ("float32", "bfloat16"):
            raise ValueError(f"strong.dtype: 'float32' or 'bfloat16', got {self.dtype!r}")
        if self.dropout is not None and not isinstance(self.dropout, bool):
            raise ValueError(f"strong.dropout: True, False or None, got {self.dropout!r}")


@dataclass(frozen=True, kw_only=True)
class CeilingConfig(Section):
    """A ceiling apart from the strong model (``minilm-finetune``): a head (``kind``,
    ``hidden``) on frozen ``encoder`` embeddings, trained on the true labels."""

    encoder: str
    max_length: int
    kind: str
    hidden: int
    epochs: int
    lr: float
    batch_size: int

    def __post_init__(self):
        check_model_name(self.encoder, "ceiling.encoder")
        if self.kind not in ("linear", "mlp"):
            raise ValueError(f"ceiling.kind: 'linear' or 'mlp', got {self.kind!r}")
        for k in ("max_length", "hidden", "epochs", "batch_size"):
            positive_int(getattr(self, k), f"ceiling.{k}")
        positive(self.lr, "ceiling.lr")


@dataclass(frozen=True)
class ExperimentConfig(Section):
    """A whole sweep (claim C9); see :func:`~.config.make_config` and
    :data:`~.presets.PRESETS`.

    ``objectives`` ``None`` (presets only) means every objective; ``ensemble_size`` 0
    turns the ensemble stage off.

    Statement: {ref}`sec-ch05`.
    """

    preset: str
    backend: str  # one of BACKENDS
    requires_cuda: bool
    sizes: Sizes
    full_sizes: Sizes
    seeds: tuple[int, ...]
    objectives: tuple[str, ...] | None
    teacher: TeacherConfig
    strong: StrongConfig | FinetuneConfig
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
        if self.backend not in BACKENDS:
            raise ValueError(f"backend: one of {BACKENDS}, got {self.backend!r}")
        strong = FinetuneConfig if self.backend == "finetune" else StrongConfig
        if not isinstance(self.strong, strong):
            raise ValueError(f"strong: a {strong.__name__} for back-end {self.backend!r}, "
                             f"got {type(self.strong).__name__}")
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
        if t.kind == "encoder" and self.backend == "causal_lm":
            raise ValueError("teacher.kind: 'encoder' (layers of the strong encoder) needs "
                             "an embedding or finetune preset")
        if self.backend == "embedding":
            if st.kind not in ("linear", "mlp"):
                raise ValueError(f"strong.kind: 'linear' or 'mlp', got {st.kind!r}")
            positive_int(st.hidden, "strong.hidden")
        else:
            positive_int(st.micro_batch_size, "strong.micro_batch_size")
            check_model_name(st.model, "strong.model")
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
